//! Static assertions: removing `Send`/`Sync` from any of these breaks the build.

use std::future::Future;

use wirepool::pool::PgManager;
use wirepool::{blocking, Error, Pool, PooledConnection};

fn is_send<T: Send>(_: &T) {}
fn send<T: Send>() {}
fn send_sync_static<T: Send + Sync + 'static>() {}
fn clone_send_sync<T: Clone + Send + Sync>() {}

#[test]
fn pool_types_are_send_and_sync() {
    clone_send_sync::<Pool>();
    send::<PooledConnection>();
    send::<PooledConnection<PgManager>>();
    send_sync_static::<Error>();
}

#[test]
fn blocking_types_are_send_and_sync() {
    clone_send_sync::<blocking::Pool>();
    send_sync_static::<blocking::Pool>();
    send::<blocking::PooledConnection>();
    send_sync_static::<blocking::PooledConnection>();
    clone_send_sync::<blocking::CancelToken>();
    send::<blocking::PoolBuilder>();
    send_sync_static::<blocking::Connection>();
    send_sync_static::<blocking::Listener>();
    send::<blocking::Transaction<'static>>();
}

#[allow(dead_code, clippy::manual_async_fn)]
fn checkout_futures_are_send(pool: &Pool) {
    fn fut_send<F: Future + Send>(_: F) {}
    fut_send(pool.connection());
    fut_send(pool.getconn());
    fut_send(pool.wait(std::time::Duration::ZERO));
    fut_send(pool.check());
    fut_send(pool.close());
    is_send(&pool.clone());
}

#[test]
fn query_types_are_send_and_sync() {
    send_sync_static::<wirepool::Row>();
    send_sync_static::<wirepool::conn::Column>();
    send::<wirepool::conn::Transaction<'static>>();
}

#[allow(dead_code)]
fn query_futures_are_send(conn: &mut wirepool::Connection) {
    fn fut_send<F: Future + Send>(_: F) {}
    fut_send(conn.query("SELECT $1::int4", &[&1i32]));
    fut_send(conn.execute("SELECT $1::text", &[&"x"]));
    fut_send(conn.transaction());
}

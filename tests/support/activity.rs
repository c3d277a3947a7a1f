//! What the server itself says about a pool's sessions: `pg_stat_activity`, read through psql
//! outside the pool under test, for pools tagged with an `application_name` of their own.

use super::cluster::Cluster;

/// A conninfo for the shared cluster whose sessions carry `application_name=app`.
pub fn tagged_conninfo(app: &str) -> String {
    let c = Cluster::shared();
    format!(
        "host={} port={} dbname=postgres user=postgres application_name={app}",
        c.host(),
        c.port()
    )
}

/// `select count(*) from pg_stat_activity where <cond>`, as the server sees it.
pub fn server_count(cond: &str) -> usize {
    let n = Cluster::shared()
        .psql(&format!(
            "select count(*) from pg_stat_activity where {cond}"
        ))
        .expect("psql");
    n.parse().expect("a count")
}

/// Backends the server has for an application_name.
pub fn backends(app: &str) -> usize {
    server_count(&format!("application_name = '{app}'"))
}

//! The pool's own errors: a hook that left its connection busy, and user code that panicked.

use super::manage::ConnState;
use crate::error::{Error, Kind};

/// A hook returned `Ok` but left the connection not idle (psycopg: "connection left in status
/// ... by configure function").
pub(crate) fn left_in(state: ConnState, hook: &'static str) -> Error {
    Error::with_source(
        Kind::Hook(hook),
        format!("connection left in status {state:?} by {hook} function"),
    )
}

/// A panic in user code (`what`: the `Manage` method or the hook), caught and reported as a
/// failed attempt.
pub(crate) fn panicked(what: &'static str) -> Error {
    Error::new(Kind::Panicked(what))
}

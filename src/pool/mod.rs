//! The pool: idle slots in a lock-free queue, checkouts bounded by a FIFO semaphore, and a guard
//! that returns its connection on drop.
//!
//! STUB: to be filled in (issue #3).

use std::marker::PhantomData;

/// A pool of connections. STUB.
#[derive(Debug, Clone)]
pub struct Pool {}

/// Builds a [`Pool`]. STUB.
#[derive(Debug)]
pub struct PoolBuilder {}

/// A checked-out connection, returned to the pool on drop. STUB.
#[derive(Debug)]
pub struct PooledConnection {
    _p: PhantomData<()>,
}

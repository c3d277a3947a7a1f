//! [`Owned`]: a value of the async pool held by a blocking type, dropped with the pool's
//! runtime entered.
//!
//! Invariant: the value is `Some` from construction until it is dropped or taken by
//! [`Owned::into_parts`]; every drop of it (on any thread, in any context) happens under
//! [`Driver::enter`], so what the async pool starts from a drop (a rollback, a close) runs on
//! the pool's own runtime, and no network I/O happens in `Drop`.

use std::sync::Arc;

use super::runtime::Driver;

pub(crate) struct Owned<T> {
    value: Option<T>,
    driver: Arc<Driver>,
}

impl<T> Owned<T> {
    pub(crate) fn new(value: T, driver: Arc<Driver>) -> Self {
        Owned {
            value: Some(value),
            driver,
        }
    }

    pub(crate) fn get(&self) -> &T {
        match &self.value {
            Some(v) => v,
            None => unreachable!("an Owned value is present until dropped"),
        }
    }

    pub(crate) fn driver(&self) -> &Arc<Driver> {
        &self.driver
    }

    /// The value and the driver, borrowed together (a blocking call polls one on the other).
    pub(crate) fn parts_mut(&mut self) -> (&mut T, &Driver) {
        match &mut self.value {
            Some(v) => (v, &self.driver),
            None => unreachable!("an Owned value is present until dropped"),
        }
    }

    /// Takes the value out; the caller must drop it under `driver.enter`.
    pub(crate) fn into_parts(mut self) -> (T, Arc<Driver>) {
        match self.value.take() {
            Some(v) => (v, Arc::clone(&self.driver)),
            None => unreachable!("an Owned value is present until dropped"),
        }
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            self.driver.enter(|| drop(value));
        }
    }
}

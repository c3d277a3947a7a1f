//! wirepool's pool as a `pool_core` contender: `Pool::with_manager` over an in-memory manager.
//! (Placeholder until the pool lands: the bare primitives stand in, so the harness runs.)

use super::bare::{Bare, BareGuard};
use super::contenders::{Contender, Dummy};
use std::sync::Arc;

/// wirepool (placeholder).
pub struct Wirepool(Arc<Bare<Dummy>>);

impl Contender for Wirepool {
    const NAME: &'static str = "wirepool";
    type Guard<'a> = BareGuard<Dummy>;
    async fn build(max: usize) -> Self {
        Wirepool(Bare::new(max, Dummy::default))
    }
    async fn checkout(&self) -> BareGuard<Dummy> {
        self.0.get().await
    }
}

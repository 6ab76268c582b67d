//! Housekeeping that runs every so often for as long as its owner exists.

use std::sync::{Arc, Weak};
use std::time::Duration;

/// Calls `task` on `owner` every `period` (first after one period), from a task on the current
/// tokio runtime, until the owner is dropped. Outside a runtime nothing runs.
pub fn every<T: Send + Sync + 'static>(owner: &Arc<T>, period: Duration, task: fn(&T)) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let owner: Weak<T> = Arc::downgrade(owner);
    runtime.spawn(async move {
        let first = tokio::time::Instant::now() + period;
        let mut ticks = tokio::time::interval_at(first, period);
        loop {
            ticks.tick().await;
            match owner.upgrade() {
                Some(owner) => task(&owner),
                None => return,
            }
        }
    });
}

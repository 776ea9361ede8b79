//! Counters and gauges of a session factory's pool.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// A snapshot of a session factory's pool: gauges (what is true now) and
/// counters (what happened since the factory was built).
///
/// ```
/// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::new(":memory:").unwrap();
/// let stats = factory.stats();
/// assert_eq!(stats.in_use, 0);
/// assert_eq!(stats.checkout_timeouts, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Largest number of connections the pool opens.
    pub max_size: usize,
    /// Connections that exist now (idle, checked out, or being opened).
    pub open: usize,
    /// Connections idle in the pool now.
    pub idle: usize,
    /// Connections checked out now (held by sessions).
    pub in_use: usize,
    /// Threads and tasks waiting for a connection now.
    pub waiting: usize,
    /// Most connections ever checked out at once.
    pub max_in_use: usize,
    /// Successful checkouts.
    pub checkouts: usize,
    /// Checkouts that gave up after the checkout timeout.
    pub checkout_timeouts: usize,
    /// Connections opened.
    pub connections_created: usize,
    /// Connections closed, for any reason.
    pub connections_closed: usize,
    /// Round-trip validations (pings) made at checkout.
    pub validations: usize,
    /// Validations that found the connection dead.
    pub validation_failures: usize,
    /// Connections closed because they outlived `max_lifetime`.
    pub recycled: usize,
    /// Connections closed because they came back with a transaction open or broken.
    pub closed_dirty: usize,
    /// Units of work that found their connection dead at `BEGIN` and started
    /// again on another one.
    pub begin_retries: usize,
    /// Units of work retried after a transient error (retry option).
    pub unit_retries: usize,
    /// Total time connections spent checked out, summed over all checkouts
    /// that have ended: the pool's connection-seconds. Compare it with the
    /// time your flows spend waiting on other things to see whether any
    /// session was held across slow non-database work.
    pub held_total: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) in_use: AtomicUsize,
    pub(crate) max_in_use: AtomicUsize,
    pub(crate) checkouts: AtomicUsize,
    pub(crate) checkout_timeouts: AtomicUsize,
    pub(crate) connections_created: AtomicUsize,
    pub(crate) connections_closed: AtomicUsize,
    pub(crate) validations: AtomicUsize,
    pub(crate) validation_failures: AtomicUsize,
    pub(crate) recycled: AtomicUsize,
    pub(crate) closed_dirty: AtomicUsize,
    pub(crate) begin_retries: AtomicUsize,
    pub(crate) unit_retries: AtomicUsize,
    pub(crate) held_nanos: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(
        &self,
        max_size: usize,
        open: usize,
        idle: usize,
        waiting: usize,
    ) -> PoolStats {
        let read = |counter: &AtomicUsize| counter.load(Ordering::Relaxed);
        PoolStats {
            max_size,
            open,
            idle,
            in_use: read(&self.in_use),
            waiting,
            max_in_use: read(&self.max_in_use),
            checkouts: read(&self.checkouts),
            checkout_timeouts: read(&self.checkout_timeouts),
            connections_created: read(&self.connections_created),
            connections_closed: read(&self.connections_closed),
            validations: read(&self.validations),
            validation_failures: read(&self.validation_failures),
            recycled: read(&self.recycled),
            closed_dirty: read(&self.closed_dirty),
            begin_retries: read(&self.begin_retries),
            unit_retries: read(&self.unit_retries),
            held_total: Duration::from_nanos(self.held_nanos.load(Ordering::Relaxed)),
        }
    }
}

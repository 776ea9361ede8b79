//! Where the pool reads the time: the real clock in production, a clock the
//! tests move by hand (or tokio's paused clock) so no test of the pool's
//! timing logic depends on how fast the machine is.

use std::time::{Duration, Instant};

/// Longest a waiter sleeps before it looks at the pool again on its own, so a
/// wake-up lost to a cancelled waiter costs at most this much. Only a safety
/// net: waiters are woken by the pool when a slot frees.
const WAKE_INTERVAL: Duration = Duration::from_millis(100);

/// The pool's clock.
#[derive(Clone, Default)]
pub(crate) enum Clock {
    /// `Instant::now()`.
    #[default]
    Real,
    /// Moves only when a test says so; waiters have no safety-net wake, so a
    /// test that passes proves every wake-up it needed came from the pool.
    #[cfg(all(test, feature = "tokio"))]
    Manual(std::sync::Arc<ManualClock>),
    /// tokio's clock (paused in tests: it jumps to the next timer when every
    /// task is idle).
    #[cfg(all(test, feature = "async"))]
    Tokio,
}

impl Clock {
    /// The time now.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        match self {
            Clock::Real => Instant::now(),
            #[cfg(all(test, feature = "tokio"))]
            Clock::Manual(clock) => clock.now(),
            #[cfg(all(test, feature = "async"))]
            Clock::Tokio => tokio::time::Instant::now().into_std(),
        }
    }

    /// How long a waiter may sleep at `now` before it looks again: until its
    /// deadline, at most the safety-net interval.
    pub(crate) fn wait_for(&self, now: Instant, deadline: Instant) -> Duration {
        let left = deadline.saturating_duration_since(now);
        match self {
            #[cfg(all(test, feature = "tokio"))]
            Clock::Manual(_) => left.min(Duration::from_secs(3600)),
            _ => left.min(WAKE_INTERVAL),
        }
    }
}

/// A clock that moves only when told.
#[cfg(all(test, feature = "tokio"))]
pub(crate) struct ManualClock {
    start: Instant,
    offset: parking_lot::Mutex<Duration>,
}

#[cfg(all(test, feature = "tokio"))]
impl ManualClock {
    pub(crate) fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(ManualClock {
            start: Instant::now(),
            offset: parking_lot::Mutex::new(Duration::ZERO),
        })
    }

    pub(crate) fn now(&self) -> Instant {
        self.start + *self.offset.lock()
    }

    pub(crate) fn advance(&self, by: Duration) {
        *self.offset.lock() += by;
    }
}

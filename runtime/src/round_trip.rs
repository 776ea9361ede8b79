//! Bounds on the runtime's own round trips in the native async flavour:
//! `BEGIN`, `COMMIT`, `ROLLBACK` and the statements that undo a unit's
//! connection settings. A peer that accepts the statement and never replies
//! (a stalled proxy, a half-dead network path, a frozen server) would
//! otherwise hold the unit forever: past its bound the unit gives up, the
//! connection is closed (never pooled), and the error says what is known.
//!
//! The bound is the unit's hold budget, or the factory's checkout timeout
//! when the budget is off. The blocking flavour's drivers (libpq,
//! libmysqlclient) offer no per-call timeout through diesel; see the README's
//! "Bounded waits" section for what can still block there.

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Phase};

/// Runs `round_trip`, giving up after `bound`: `None` when no reply came.
pub(crate) async fn within<F: Future>(bound: Duration, round_trip: F) -> Option<F::Output> {
    tokio::time::timeout(bound, round_trip).await.ok()
}

/// `BEGIN` got no reply: nothing of the unit ran.
#[cold]
#[inline(never)]
pub(crate) fn no_reply_to_begin(unit: &str, bound: Duration) -> Error {
    Error::new(
        Phase::Begin,
        format!(
            "no reply to `BEGIN` of unit `{unit}` within {bound:?}, so nothing of it ran; the \
             connection was closed. The server or the network path to it stalled: check both, \
             and raise the unit's hold budget if the server is merely slow"
        ),
    )
}

/// `COMMIT` was sent and got no reply: the server may have committed.
#[cold]
#[inline(never)]
pub(crate) fn no_reply_to_commit(unit: &str, bound: Duration) -> Error {
    Error::new(
        Phase::CommitOutcomeUnknown,
        format!(
            "no reply to `COMMIT` of unit `{unit}` within {bound:?}, so it may or may not have \
             committed; the connection was closed and the unit was not retried. Check whether \
             its writes are there before running it again, or make the unit idempotent"
        ),
    )
}

/// `ROLLBACK` got no reply; the server rolls back when it sees the
/// connection end.
#[cold]
#[inline(never)]
pub(crate) fn no_reply_to_rollback(unit: &str, bound: Duration) -> Error {
    Error::new(
        Phase::Rollback,
        format!(
            "no reply to `ROLLBACK` of unit `{unit}` within {bound:?}; the connection was \
             closed, and the server rolls the transaction back when it sees it end"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_round_trip_past_its_bound_gives_up() {
        let stalled = std::future::pending::<()>();
        assert_eq!(within(Duration::from_secs(1), stalled).await, None);
        assert_eq!(within(Duration::from_secs(1), async { 7 }).await, Some(7));
    }

    #[test]
    fn a_commit_without_reply_is_an_unknown_outcome() {
        let error = no_reply_to_commit("orders::place", Duration::from_secs(1));
        assert!(error.is_commit_outcome_unknown());
        assert!(!error.is_transient());
        assert!(error.to_string().contains("may or may not have committed"));
        assert!(!error.to_string().contains("rolled back"));
    }
}

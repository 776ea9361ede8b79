//! The `tracing` span of a unit of work: one per call, every flavour.
//!
//! `unit_of_work` at INFO level, target `dbscope`, with the fields `unit`
//! (the function's path), `isolation`, `read_only`, `attempt` (1, then each
//! retry), `outcome` and `held_ms` (how long the last attempt held its
//! connection). Its events: a retry (DEBUG, with the delay), the commit (DEBUG)
//! and the after-commit work run (DEBUG, with how many). With no subscriber, or
//! one that does not want the span, it costs a few instructions.

use tracing::field::Empty;
use tracing::Span;

use crate::error::{Error, Phase};
use crate::options::{Isolation, UnitOptions};

/// What an attempt ended with, as the span's `outcome` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `COMMIT` succeeded.
    Committed,
    /// The body returned `Err` (or panicked): rolled back.
    RolledBack,
    /// The server refused the `COMMIT`: rolled back.
    CommitRefused,
    /// The connection failed with the `COMMIT` in flight.
    CommitOutcomeUnknown,
    /// No transaction began: checkout, connect or `BEGIN` failed.
    NotBegun,
    /// A transient failure; the unit runs again.
    Retrying,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Committed => "committed",
            Outcome::RolledBack => "rolled_back",
            Outcome::CommitRefused => "commit_refused",
            Outcome::CommitOutcomeUnknown => "commit_outcome_unknown",
            Outcome::NotBegun => "not_begun",
            Outcome::Retrying => "retrying",
        }
    }

    /// The outcome of a failed `COMMIT`.
    pub(crate) fn of_commit_error(error: &Error) -> Self {
        match error.phase() {
            Phase::CommitOutcomeUnknown => Outcome::CommitOutcomeUnknown,
            _ => Outcome::CommitRefused,
        }
    }
}

/// The span of one unit of work with `options`.
#[inline]
pub(crate) fn unit_span(options: &UnitOptions) -> Span {
    tracing::info_span!(
        target: "dbscope",
        "unit_of_work",
        unit = options.name(),
        isolation = options.isolation_level().map(Isolation::as_sql),
        read_only = options.is_read_only(),
        attempt = 1u32,
        outcome = Empty,
        held_ms = Empty,
    )
}

/// Records how an attempt ended on `span`.
#[inline]
pub(crate) fn record_outcome(span: &Span, outcome: Outcome) {
    if !span.is_disabled() {
        span.record("outcome", outcome.as_str());
        if outcome == Outcome::Committed {
            tracing::debug!(target: "dbscope", parent: span, "committed");
        }
    }
}

/// Records the next attempt's number on `span`.
pub(crate) fn record_attempt(span: &Span, attempt: u32) {
    span.record("attempt", attempt);
}

/// Records how long the attempt held its connection.
#[inline]
pub(crate) fn record_held(span: &Span, held: std::time::Duration) {
    if !span.is_disabled() {
        span.record(
            "held_ms",
            u64::try_from(held.as_millis()).unwrap_or(u64::MAX),
        );
    }
}

//! What a unit may say about its `COMMIT` when it does not end in `Ok`: the
//! one rule both flavours follow.
//!
//! - The server answered the `COMMIT` with an error (a serialization failure,
//!   a deferred constraint): it rolled the transaction back. Nothing was
//!   committed, and the unit may be retried.
//! - The connection failed with the `COMMIT` in flight: the server may have
//!   committed before the reply was lost. The outcome is unknown; the unit is
//!   never retried (a retry would apply its writes twice) and its error says
//!   so, never that it was rolled back.
//! - On PostgreSQL, a statement that failed inside the transaction aborted it;
//!   a `COMMIT` then rolls back and reports success. A body that swallowed that
//!   error is not committed: the session rolls back and says why.

use diesel::result::Error as DieselError;

use crate::backend::BackendKind;
use crate::error::{Error, Phase};
use crate::transient::is_connection_lost;

/// Why a `COMMIT` did not end in success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitFailure {
    /// The server refused it and rolled the transaction back.
    Refused,
    /// The connection failed with it in flight: it may have committed.
    OutcomeUnknown,
}

impl CommitFailure {
    /// Judges the error a `COMMIT` returned.
    pub(crate) fn of(error: &DieselError) -> Self {
        // diesel tries a rollback after a failed COMMIT and reports both.
        let error = match error {
            DieselError::RollbackErrorOnCommit { commit_error, .. } => commit_error,
            other => other,
        };
        if is_connection_lost(error) {
            CommitFailure::OutcomeUnknown
        } else {
            // The server's own answer, or an error the client raised before
            // sending anything (the transaction manager's own checks): either
            // way the transaction did not commit.
            CommitFailure::Refused
        }
    }

    /// The error the unit returns.
    #[cold]
    #[inline(never)]
    pub(crate) fn into_error(self, unit: &str, error: DieselError) -> Error {
        match self {
            CommitFailure::Refused => Error::query(
                Phase::Commit,
                format!("unit `{unit}` was rolled back by the server, nothing was committed"),
                error,
            ),
            CommitFailure::OutcomeUnknown => Error::query(
                Phase::CommitOutcomeUnknown,
                format!(
                    "the connection failed while `COMMIT` of unit `{unit}` was in flight, so it \
                     may or may not have committed; it was not retried. Check whether its writes \
                     are there before running it again, or make the unit idempotent (an upsert, a \
                     unique request key)"
                ),
                error,
            ),
        }
    }
}

/// Whether a statement failing inside a transaction aborts the whole
/// transaction on this backend, so that its `COMMIT` can only roll back.
pub(crate) const fn failed_statement_aborts_transaction(kind: BackendKind) -> bool {
    matches!(kind, BackendKind::Postgres)
}

/// The error of a unit whose body returned `Ok` after one of its statements
/// failed and aborted the transaction (PostgreSQL); `first_failure` names
/// that statement and its error. The session rolled back.
#[cold]
#[inline(never)]
pub(crate) fn aborted_transaction_error(unit: &str, first_failure: Option<String>) -> Error {
    let statement = first_failure.map_or_else(
        || String::from("one of its statements failed"),
        |failure| format!("its statement {failure} failed"),
    );
    Error::new(
        Phase::Commit,
        format!(
            "unit `{unit}` returned Ok after {statement}, and PostgreSQL had aborted the \
             transaction there, so it was rolled back and nothing was committed; return the \
             statement's error (`?`) instead of ignoring it, or run a statement that may fail \
             inside `conn.transaction(..)`, a savepoint that can recover"
        ),
    )
}

#[cfg(test)]
mod tests {
    use diesel::result::DatabaseErrorKind;

    use super::*;

    fn db_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn a_lost_connection_makes_the_outcome_unknown() {
        for error in [
            db_error(DatabaseErrorKind::ClosedConnection, "connection closed"),
            db_error(
                DatabaseErrorKind::Unknown,
                "server closed the connection unexpectedly",
            ),
            db_error(
                DatabaseErrorKind::Unknown,
                "Lost connection to server during query",
            ),
            db_error(
                DatabaseErrorKind::Unknown,
                "Input/output error: Input/output error: connection closed",
            ),
            DieselError::RollbackErrorOnCommit {
                rollback_error: Box::new(db_error(
                    DatabaseErrorKind::Unknown,
                    "Server has gone away",
                )),
                commit_error: Box::new(db_error(
                    DatabaseErrorKind::Unknown,
                    "Server has gone away",
                )),
            },
        ] {
            assert_eq!(CommitFailure::of(&error), CommitFailure::OutcomeUnknown);
        }
    }

    #[test]
    fn a_server_refusal_is_a_rollback() {
        for error in [
            db_error(
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access due to read/write dependencies",
            ),
            db_error(
                DatabaseErrorKind::ForeignKeyViolation,
                "FOREIGN KEY constraint failed",
            ),
        ] {
            assert_eq!(CommitFailure::of(&error), CommitFailure::Refused);
        }
    }

    #[test]
    fn an_unknown_outcome_is_never_transient_and_says_so() {
        let lost = db_error(DatabaseErrorKind::ClosedConnection, "connection closed");
        let error = CommitFailure::OutcomeUnknown.into_error("orders::place", lost);
        assert_eq!(error.phase(), Phase::CommitOutcomeUnknown);
        assert!(error.is_commit_outcome_unknown());
        assert!(!error.is_transient());
        let text = error.to_string();
        assert!(text.contains("may or may not have committed"), "{text}");
        assert!(!text.contains("rolled back"), "{text}");
    }

    #[test]
    fn a_refusal_says_nothing_was_committed_and_may_be_retried() {
        let refused = db_error(
            DatabaseErrorKind::SerializationFailure,
            "could not serialize access",
        );
        let error = CommitFailure::Refused.into_error("orders::place", refused);
        assert_eq!(error.phase(), Phase::Commit);
        assert!(error.is_transient());
        assert!(error.to_string().contains("nothing was committed"));
    }
}

//! Which diesel errors are worth retrying the whole unit of work for.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Why an error is transient: retrying the unit of work from the start, in a
/// fresh transaction, may succeed.
///
/// ```
/// use dbscope_runtime::{classify, TransientKind};
/// assert_eq!(classify(&diesel::result::Error::NotFound), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransientKind {
    /// PostgreSQL `40001` (could not serialize access).
    SerializationFailure,
    /// PostgreSQL `40P01`, MySQL/MariaDB `1213`.
    Deadlock,
    /// PostgreSQL `55P03` (lock timeout), MySQL/MariaDB `1205`.
    LockTimeout,
    /// The server closed the connection, it was killed, or it went away.
    ConnectionLost,
    /// SQLite `SQLITE_BUSY` / `SQLITE_LOCKED`: another connection holds the lock.
    DatabaseBusy,
}

/// Says whether `error` is transient, and why, for every driver in use:
/// libpq and libmysqlclient/libmariadb (blocking), tokio-postgres and
/// mysql_async (diesel-async), SQLite.
///
/// The checks use diesel's error kinds where diesel maps the server's code
/// (serialization failures, closed connections) and the servers' fixed message
/// texts otherwise (deadlocks, lock timeouts, killed connections, a busy SQLite
/// file). Each of them is tested against errors provoked on real servers.
///
/// ```
/// use diesel::result::{DatabaseErrorKind, Error};
/// use dbscope_runtime::{classify, TransientKind};
/// let lost = Error::DatabaseError(DatabaseErrorKind::ClosedConnection, Box::new("server closed the connection unexpectedly".to_string()));
/// assert_eq!(classify(&lost), Some(TransientKind::ConnectionLost));
/// ```
pub fn classify(error: &DieselError) -> Option<TransientKind> {
    let (kind, info) = match error {
        DieselError::DatabaseError(kind, info) => (kind, info),
        // A failed COMMIT that diesel then failed to roll back: the COMMIT's
        // error is what happened to the transaction.
        DieselError::RollbackErrorOnCommit { commit_error, .. } => return classify(commit_error),
        _ => return None,
    };
    match kind {
        DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
            return Some(TransientKind::ConnectionLost)
        }
        DatabaseErrorKind::SerializationFailure => {
            // MySQL reports deadlocks (1213) under this kind as well.
            return Some(if info.message().contains("Deadlock") {
                TransientKind::Deadlock
            } else {
                TransientKind::SerializationFailure
            });
        }
        _ => {}
    }
    classify_message(info.message())
}

/// Whether `error` is transient; shorthand for `classify(error).is_some()`.
///
/// ```
/// assert!(!dbscope_runtime::is_transient(&diesel::result::Error::RollbackTransaction));
/// ```
pub fn is_transient(error: &DieselError) -> bool {
    classify(error).is_some()
}

/// Fixed message texts of the servers, for the errors diesel leaves `Unknown`.
const MESSAGES: &[(&str, TransientKind)] = &[
    // PostgreSQL
    (
        "could not serialize access",
        TransientKind::SerializationFailure,
    ),
    ("deadlock detected", TransientKind::Deadlock),
    (
        "canceling statement due to lock timeout",
        TransientKind::LockTimeout,
    ),
    (
        "terminating connection due to administrator command",
        TransientKind::ConnectionLost,
    ),
    (
        "terminating connection due to idle-in-transaction timeout",
        TransientKind::ConnectionLost,
    ),
    (
        "server closed the connection unexpectedly",
        TransientKind::ConnectionLost,
    ),
    ("no connection to the server", TransientKind::ConnectionLost),
    (
        "could not receive data from server",
        TransientKind::ConnectionLost,
    ),
    (
        "could not send data to server",
        TransientKind::ConnectionLost,
    ),
    (
        "SSL connection has been closed unexpectedly",
        TransientKind::ConnectionLost,
    ),
    (
        "connection to server was lost",
        TransientKind::ConnectionLost,
    ),
    // MySQL and MariaDB
    (
        "Deadlock found when trying to get lock",
        TransientKind::Deadlock,
    ),
    ("Lock wait timeout exceeded", TransientKind::LockTimeout),
    ("server has gone away", TransientKind::ConnectionLost),
    ("Lost connection to", TransientKind::ConnectionLost),
    ("Connection was killed", TransientKind::ConnectionLost),
    (
        "disconnected by the server because of inactivity",
        TransientKind::ConnectionLost,
    ),
    ("Can't connect to", TransientKind::ConnectionLost),
    // mysql_async (diesel-async's MySQL driver): every I/O error on the
    // socket ("Input/output error: connection closed", a reset, a broken
    // pipe) leaves the connection unusable; diesel-async reports them as
    // `Unknown` with the driver's text.
    ("Input/output error:", TransientKind::ConnectionLost),
    (
        "Connection to the server is closed",
        TransientKind::ConnectionLost,
    ),
    // SQLite
    ("database is locked", TransientKind::DatabaseBusy),
    ("database table is locked", TransientKind::DatabaseBusy),
    ("database schema is locked", TransientKind::DatabaseBusy),
];

/// Matches ignoring ASCII case: client libraries capitalise the same text
/// differently (libmysqlclient "MySQL server has gone away", MariaDB
/// Connector/C "Server has gone away").
fn classify_message(message: &str) -> Option<TransientKind> {
    let message = message.to_ascii_lowercase();
    MESSAGES
        .iter()
        .find(|(text, _)| message.contains(&text.to_ascii_lowercase()))
        .map(|&(_, kind)| kind)
}

/// Whether the error means the connection itself is gone, so it must never be
/// pooled again.
pub(crate) fn is_connection_lost(error: &DieselError) -> bool {
    classify(error) == Some(TransientKind::ConnectionLost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn mysql_deadlock_under_serialization_kind_is_a_deadlock() {
        let error = db_error(
            DatabaseErrorKind::SerializationFailure,
            "Deadlock found when trying to get lock; try restarting transaction",
        );
        assert_eq!(classify(&error), Some(TransientKind::Deadlock));
    }

    #[test]
    fn mariadb_connector_gone_away_is_connection_lost() {
        // MariaDB Connector/C's text for CR_SERVER_GONE_ERROR (2006).
        let error = db_error(DatabaseErrorKind::Unknown, "Server has gone away");
        assert_eq!(classify(&error), Some(TransientKind::ConnectionLost));
    }

    #[test]
    fn mysql_async_io_errors_are_connection_lost() {
        // diesel-async passes mysql_async's `Error::to_string()` as `Unknown`.
        for message in [
            "Input/output error: Input/output error: connection closed",
            "Input/output error: Input/output error: Connection reset by peer (os error 104)",
            "Input/output error: Input/output error: Broken pipe (os error 32)",
            "Driver error: `Connection to the server is closed.'",
        ] {
            let error = db_error(DatabaseErrorKind::Unknown, message);
            assert_eq!(
                classify(&error),
                Some(TransientKind::ConnectionLost),
                "{message}"
            );
        }
        let error = db_error(
            DatabaseErrorKind::Unknown,
            "Driver error: `Packet out of order.'",
        );
        assert_eq!(classify(&error), None);
    }

    #[test]
    fn constraint_violations_are_not_transient() {
        let error = db_error(DatabaseErrorKind::UniqueViolation, "duplicate key value");
        assert_eq!(classify(&error), None);
        assert!(!is_transient(&DieselError::NotFound));
    }
}

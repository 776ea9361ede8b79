//! The one error type of the runtime, which names the phase that failed.

use std::fmt;
use std::time::Duration;

/// The phase of a unit of work in which an [`Error`] happened.
///
/// ```
/// use dbscope_runtime::Phase;
/// assert_eq!(Phase::CheckoutTimeout.to_string(), "checkout timed out");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// No connection became free within the factory's checkout timeout.
    CheckoutTimeout,
    /// Opening a new connection failed (bad URL, server down, auth refused).
    Connect,
    /// Per-connection setup (`PRAGMA`s, session variables) failed.
    Setup,
    /// `BEGIN` (with its isolation and read-only settings) failed, or the
    /// options cannot be honoured by this backend.
    Begin,
    /// `COMMIT` failed and the transaction was rolled back: nothing was
    /// committed. Also a body that returned `Ok` after PostgreSQL aborted its
    /// transaction at a failed statement.
    Commit,
    /// The connection failed while `COMMIT` was in flight: the transaction may
    /// or may not have committed. Never retried; see
    /// [`Error::is_commit_outcome_unknown`].
    CommitOutcomeUnknown,
    /// `ROLLBACK` failed: the connection was closed, never pooled again.
    Rollback,
    /// A statement run by the user's code failed.
    User,
    /// A unit of work was opened on a thread where one is already open on the
    /// same factory.
    Nesting,
    /// A row asked for by id does not exist.
    NotFound,
    /// The unit's own code gave up, with a message of its own
    /// ([`Error::user`]): a business rule, a check that failed.
    Unit,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::CheckoutTimeout => "checkout timed out",
            Phase::Connect => "connect failed",
            Phase::Setup => "connection setup failed",
            Phase::Begin => "begin failed",
            Phase::Commit => "commit failed",
            Phase::CommitOutcomeUnknown => "commit outcome unknown",
            Phase::Rollback => "rollback failed",
            Phase::User => "query failed",
            Phase::Nesting => "nested unit of work",
            Phase::NotFound => "row not found",
            Phase::Unit => "unit of work failed",
        })
    }
}

/// What went wrong underneath, if anything did.
#[derive(Debug)]
enum Cause {
    None,
    Query(diesel::result::Error),
    /// The source an [`Error::user_with_source`] was given.
    Source(Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// The error of every runtime operation: which [`Phase`] failed, a message that
/// names the fix, and the diesel error underneath.
///
/// It converts into user error types through `From`, so a unit of work may
/// return `Result<T, MyError>` with `MyError: From<dbscope::Error>`. Nothing in
/// it ever holds a password: URLs are redacted before they get here.
///
/// ```
/// use dbscope_runtime::{Error, Phase};
/// let error = Error::from(diesel::result::Error::RollbackTransaction);
/// assert_eq!(error.phase(), Phase::User);
/// assert!(error.to_string().contains("query failed"));
/// ```
#[derive(Debug)]
pub struct Error {
    phase: Phase,
    message: String,
    cause: Cause,
}

impl Error {
    pub(crate) fn new(phase: Phase, message: impl Into<String>) -> Self {
        Error {
            phase,
            message: message.into(),
            cause: Cause::None,
        }
    }

    pub(crate) fn query(
        phase: Phase,
        message: impl Into<String>,
        error: diesel::result::Error,
    ) -> Self {
        Error {
            phase,
            message: message.into(),
            cause: Cause::Query(error),
        }
    }

    /// A failed connect; `redact` removes the password from the driver's text.
    pub(crate) fn connect(
        target: &str,
        error: &diesel::ConnectionError,
        redact: impl Fn(&str) -> String,
    ) -> Self {
        Error::new(
            Phase::Connect,
            format!(
                "could not connect to {target}: {}; check the URL, that the server runs, and its credentials",
                redact(&error.to_string()).trim_end()
            ),
        )
    }

    pub(crate) fn checkout_timeout(waited: Duration, max_size: usize, in_use: usize) -> Self {
        Error::new(
            Phase::CheckoutTimeout,
            format!(
                "no connection became free within {waited:?} ({in_use} of {max_size} checked out); \
                 release sessions sooner (no slow non-database work inside a unit of work), \
                 raise `max_size`, or raise `checkout_timeout`"
            ),
        )
    }

    /// A row looked up by id does not exist; `#[detach_ids]` returns this for a
    /// `#[load]` parameter whose row is gone.
    ///
    /// ```
    /// let error = dbscope_runtime::Error::not_found("apps", "42");
    /// assert_eq!(error.phase(), dbscope_runtime::Phase::NotFound);
    /// assert!(error.is_not_found());
    /// ```
    pub fn not_found(table: &str, id: &str) -> Self {
        Error::query(
            Phase::NotFound,
            format!("no row in `{table}` with id {id}; it was deleted or never committed"),
            diesel::result::Error::NotFound,
        )
    }

    /// An error of your own, to fail a unit of work with a message without
    /// writing an error type first. Its phase is [`Phase::Unit`]; it is never
    /// transient, so a retrying unit does not run again.
    ///
    /// ```
    /// use dbscope_runtime::{Error, Phase, SessionFactory, UnitOptions};
    ///
    /// let factory = SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
    /// let stock = 0;
    /// let result = factory.run(&UnitOptions::new("reserve"), |_session| {
    ///     if stock == 0 {
    ///         return Err(Error::user("no stock left for item 7"));
    ///     }
    ///     Ok(())
    /// });
    /// let error = result.unwrap_err(); // rolled back
    /// assert_eq!(error.phase(), Phase::Unit);
    /// assert_eq!(error.to_string(), "unit of work failed: no stock left for item 7");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn user(message: impl Into<String>) -> Self {
        Error::new(Phase::Unit, message)
    }

    /// [`Error::user`] with the error that caused it, kept as the
    /// [`source`](std::error::Error::source).
    ///
    /// ```
    /// use std::error::Error as _;
    /// let parse = "x7".parse::<i32>().unwrap_err();
    /// let error = dbscope_runtime::Error::user_with_source("the quantity is not a number", parse);
    /// assert_eq!(error.to_string(), "unit of work failed: the quantity is not a number: invalid digit found in string");
    /// assert!(error.source().is_some());
    /// ```
    pub fn user_with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error {
            phase: Phase::Unit,
            message: message.into(),
            cause: Cause::Source(source.into()),
        }
    }

    /// The phase that failed.
    ///
    /// ```
    /// use dbscope_runtime::{Error, Phase};
    /// assert_eq!(Error::from(diesel::result::Error::RollbackTransaction).phase(), Phase::User);
    /// ```
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether this is a checkout timeout.
    ///
    /// ```
    /// assert!(!dbscope_runtime::Error::from(diesel::result::Error::NotFound).is_checkout_timeout());
    /// ```
    pub fn is_checkout_timeout(&self) -> bool {
        self.phase == Phase::CheckoutTimeout
    }

    /// Whether a row was not found (a diesel `NotFound`, or [`Error::not_found`]).
    ///
    /// ```
    /// assert!(dbscope_runtime::Error::from(diesel::result::Error::NotFound).is_not_found());
    /// ```
    pub fn is_not_found(&self) -> bool {
        self.phase == Phase::NotFound
            || matches!(self.cause, Cause::Query(diesel::result::Error::NotFound))
    }

    /// The diesel query error underneath, if there is one.
    ///
    /// ```
    /// let error = dbscope_runtime::Error::from(diesel::result::Error::NotFound);
    /// assert!(matches!(error.diesel_error(), Some(diesel::result::Error::NotFound)));
    /// ```
    pub fn diesel_error(&self) -> Option<&diesel::result::Error> {
        match &self.cause {
            Cause::Query(error) => Some(error),
            _ => None,
        }
    }

    /// Whether the connection failed while the unit's `COMMIT` was in flight,
    /// so that its writes may or may not be in the database. Such a unit is
    /// never retried: look for its writes (or make it idempotent) before
    /// running it again.
    ///
    /// ```
    /// let error = dbscope_runtime::Error::from(diesel::result::Error::NotFound);
    /// assert!(!error.is_commit_outcome_unknown());
    /// ```
    pub fn is_commit_outcome_unknown(&self) -> bool {
        self.phase == Phase::CommitOutcomeUnknown
    }

    /// Whether retrying the whole unit of work may succeed: a serialization
    /// failure, deadlock, lock timeout, lost connection or busy SQLite
    /// database. A checkout timeout is not: it already waited its full bound.
    /// Nor is a commit whose outcome is unknown: it may have committed. See
    /// [`classify`](crate::classify).
    ///
    /// ```
    /// assert!(!dbscope_runtime::Error::from(diesel::result::Error::NotFound).is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        if self.phase == Phase::CommitOutcomeUnknown {
            return false;
        }
        match &self.cause {
            Cause::Query(error) => crate::transient::classify(error).is_some(),
            Cause::None | Cause::Source(_) => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.phase)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        match &self.cause {
            Cause::None => Ok(()),
            Cause::Query(error) => write!(f, ": {error}"),
            Cause::Source(error) => write!(f, ": {error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::None => None,
            Cause::Query(error) => Some(error),
            Cause::Source(error) => Some(error.as_ref()),
        }
    }
}

impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        let phase = if matches!(error, diesel::result::Error::NotFound) {
            Phase::NotFound
        } else {
            Phase::User
        };
        Error::query(phase, String::new(), error)
    }
}

/// Lets a unit of work return diesel's own `QueryResult<T>`: a runtime error
/// becomes the diesel error underneath, or a `DatabaseError` carrying the
/// runtime's message (for checkout timeouts, connect failures and the like).
/// A commit whose outcome is unknown always becomes a `DatabaseError` of kind
/// `Unknown` with the runtime's message, never the lost connection underneath,
/// so no retry layer above mistakes it for a failure that is safe to retry.
///
/// ```
/// let error = dbscope_runtime::Error::not_found("apps", "7");
/// let diesel_error: diesel::result::Error = error.into();
/// assert!(matches!(diesel_error, diesel::result::Error::NotFound));
/// ```
impl From<Error> for diesel::result::Error {
    fn from(error: Error) -> Self {
        if error.phase == Phase::CommitOutcomeUnknown {
            // Not the lost connection underneath: a caller retrying on that
            // would apply a unit that may have committed a second time.
            let message = error.to_string();
            return diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                Box::new(message),
            );
        }
        match error.cause {
            Cause::Query(inner) => inner,
            Cause::None | Cause::Source(_) => {
                let message = error.to_string();
                let kind = match error.phase {
                    Phase::Connect => diesel::result::DatabaseErrorKind::ClosedConnection,
                    _ => diesel::result::DatabaseErrorKind::Unknown,
                };
                diesel::result::Error::DatabaseError(kind, Box::new(message))
            }
        }
    }
}

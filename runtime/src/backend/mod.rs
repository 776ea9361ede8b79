//! What the runtime needs to know about each database backend: how to ping,
//! how to begin a transaction with options, which options it can honour.

use std::borrow::Cow;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, Connection};
use diesel::QueryResult;

use crate::error::{Error, Phase};
use crate::options::UnitOptions;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

/// Which database a connection type talks to.
///
/// ```
/// use dbscope_runtime::{BackendKind, PoolableConnection};
/// assert_eq!(<diesel::SqliteConnection as PoolableConnection>::KIND, BackendKind::Sqlite);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// SQLite, embedded.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

/// Facts about the server learnt once per connection, at connect time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerTraits {
    /// The server can end a transaction left idle (PostgreSQL's
    /// `idle_in_transaction_session_timeout`, MariaDB's `idle_transaction_timeout`).
    pub idle_transaction_timeout: bool,
}

/// Whether a backend's server can end a transaction left idle.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleTimeoutSupport {
    /// Every supported server can (PostgreSQL).
    Always,
    /// No server can (SQLite).
    Never,
    /// The server can if it accepts this statement (MariaDB, not MySQL).
    IfAccepted(&'static str),
}

/// Whether `url` names a private SQLite in-memory database, which lives inside
/// its one connection (so the pool keeps exactly one, forever). A
/// `cache=shared` in-memory database is shared by every connection to it.
/// The one place both flavours ask.
pub(crate) fn is_private_sqlite_memory(kind: BackendKind, url: &str) -> bool {
    kind == BackendKind::Sqlite
        && (url == ":memory:"
            || url.is_empty()
            || (url.contains("mode=memory") && !url.contains("cache=shared")))
}

/// How a unit's hold-time budget reaches the server: the budget to send in
/// its BEGIN batch (only when it differs from the factory's, which the server
/// got at connect time) and the statement that puts the connection's budget
/// back afterwards (servers whose override outlives the transaction). Both
/// flavours follow it.
pub(crate) fn unit_server_budget<C: PoolableConnection>(
    unit_budget: Option<Duration>,
    factory_budget: Option<Duration>,
    server_budget: bool,
    server: ServerTraits,
) -> (Option<Duration>, Option<String>) {
    let budget = unit_budget
        .filter(|b| server_budget && server.idle_transaction_timeout && Some(*b) != factory_budget);
    let restore = match (budget, C::BUDGET_OVERRIDE_IS_LOCAL) {
        (Some(_), false) => factory_budget.map_or_else(C::budget_reset_sql, C::budget_setup_sql),
        _ => None,
    };
    (budget, restore)
}

/// A diesel connection the session factory can pool.
///
/// Implemented for `SqliteConnection`, `PgConnection` and `MysqlConnection`
/// under the features `sqlite`, `postgres` and `mysql`.
///
/// ```
/// use dbscope_runtime::{PoolableConnection, UnitOptions};
/// let sql = <diesel::SqliteConnection as PoolableConnection>::begin_sql(&UnitOptions::new("x"), None, Default::default());
/// assert_eq!(sql.unwrap().as_ref(), "BEGIN IMMEDIATE"); // a unit that may write
/// let read = <diesel::SqliteConnection as PoolableConnection>::begin_sql(&UnitOptions::new("x").read_only(true), None, Default::default());
/// assert_eq!(read.unwrap().as_ref(), "BEGIN DEFERRED; PRAGMA query_only = ON");
/// ```
pub trait PoolableConnection:
    Connection<TransactionManager = AnsiTransactionManager> + Send + 'static
{
    /// Which backend this is.
    const KIND: BackendKind;

    /// Proves the connection is alive with the cheapest statement there is.
    ///
    /// # Errors
    /// The driver's error when the connection is dead.
    #[doc(hidden)]
    fn ping(&mut self) -> QueryResult<()> {
        self.batch_execute("SELECT 1")
    }

    /// Whether the server can end a transaction left idle, and how to find
    /// out: one rule for both flavours (the async one runs the same probe).
    #[doc(hidden)]
    const IDLE_TIMEOUT: IdleTimeoutSupport = IdleTimeoutSupport::Never;

    /// Learns what the server supports, right after connecting.
    ///
    /// # Errors
    /// The driver's error when a probe fails for a reason other than "not supported".
    #[doc(hidden)]
    fn probe_server(&mut self) -> QueryResult<ServerTraits> {
        let idle_transaction_timeout = match Self::IDLE_TIMEOUT {
            IdleTimeoutSupport::Always => true,
            IdleTimeoutSupport::Never => false,
            IdleTimeoutSupport::IfAccepted(sql) => self.batch_execute(sql).is_ok(),
        };
        Ok(ServerTraits {
            idle_transaction_timeout,
        })
    }

    /// The statement that begins a transaction when no option changes it
    /// (what [`begin_sql`](Self::begin_sql) returns for default options with no
    /// budget): the common unit sends it without building anything.
    ///
    /// ```
    /// use dbscope_runtime::{PoolableConnection, ServerTraits, UnitOptions};
    /// type Sqlite = diesel::SqliteConnection;
    /// let plain = Sqlite::begin_sql(&UnitOptions::new("x"), None, ServerTraits::default())?;
    /// assert_eq!(plain, Sqlite::PLAIN_BEGIN);
    /// # Ok::<(), dbscope_runtime::Error>(())
    /// ```
    #[doc(hidden)]
    const PLAIN_BEGIN: &'static str = "BEGIN";

    /// The statements (sent in one batch) that begin a transaction with
    /// `options`; `budget`, when given, overrides the connection's
    /// idle-in-transaction limit for this transaction (the server must support
    /// one: see [`ServerTraits`]).
    ///
    /// # Errors
    /// [`Phase::Begin`] when the backend cannot honour an option.
    #[doc(hidden)]
    fn begin_sql(
        options: &UnitOptions,
        budget: Option<Duration>,
        server: ServerTraits,
    ) -> Result<Cow<'static, str>, Error>;

    /// The statement that gives the server a default idle-in-transaction limit
    /// for the whole connection, run once at connect time (so the common case,
    /// a unit with the factory's budget, pays nothing per transaction).
    #[doc(hidden)]
    fn budget_setup_sql(_budget: Duration) -> Option<String> {
        None
    }

    /// The statement that puts the connection's idle-in-transaction limit back
    /// to the server's default, after a unit overrode it on a factory that
    /// gives the server no budget of its own (only needed when
    /// [`BUDGET_OVERRIDE_IS_LOCAL`](Self::BUDGET_OVERRIDE_IS_LOCAL) is false).
    #[doc(hidden)]
    fn budget_reset_sql() -> Option<String> {
        None
    }

    /// Whether a budget passed to [`begin_sql`](Self::begin_sql) lasts only for
    /// that transaction (PostgreSQL's `SET LOCAL`); when false it must be
    /// restored with [`budget_setup_sql`](Self::budget_setup_sql) afterwards.
    #[doc(hidden)]
    const BUDGET_OVERRIDE_IS_LOCAL: bool = true;

    /// Setup statements run on every new connection unless the builder says
    /// `no_default_setup`. `in_memory` is true for a private SQLite in-memory
    /// database.
    #[doc(hidden)]
    fn default_setup_sql(_in_memory: bool) -> Vec<String> {
        Vec::new()
    }

    /// Statements to run after the transaction ends, when `begin_sql` changed
    /// connection state that must not leak into the next unit.
    #[doc(hidden)]
    fn end_sql(_options: &UnitOptions) -> Option<&'static str> {
        None
    }
}

pub(crate) fn unsupported(kind: BackendKind, what: &str, fix: &str) -> Error {
    Error::new(
        Phase::Begin,
        format!("{kind:?} cannot honour {what}; {fix}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units with default options send `PLAIN_BEGIN` without calling
    /// `begin_sql`: the two must agree on every backend.
    fn plain_begin_is_what_begin_sql_says<C: PoolableConnection>() {
        let options = UnitOptions::new("plain");
        assert!(options.begins_plainly());
        let sql = C::begin_sql(&options, None, ServerTraits::default()).expect("default options");
        assert_eq!(sql, C::PLAIN_BEGIN, "{:?}", C::KIND);
        assert_eq!(C::end_sql(&options), None, "{:?}", C::KIND);
    }

    #[test]
    fn plain_begin_matches_begin_sql() {
        #[cfg(feature = "sqlite")]
        plain_begin_is_what_begin_sql_says::<diesel::SqliteConnection>();
        #[cfg(feature = "postgres")]
        plain_begin_is_what_begin_sql_says::<diesel::PgConnection>();
        #[cfg(feature = "mysql")]
        plain_begin_is_what_begin_sql_says::<diesel::MysqlConnection>();
    }

    #[test]
    fn any_option_that_changes_begin_is_not_plain() {
        let base = UnitOptions::new("x");
        assert!(!base.read_only(true).begins_plainly());
        assert!(!base
            .isolation(crate::Isolation::Serializable)
            .begins_plainly());
        assert!(!base
            .sqlite_lock(crate::SqliteLock::Immediate)
            .begins_plainly());
        assert!(!base
            .budget(std::time::Duration::from_secs(1))
            .begins_plainly());
        assert!(base.retry(crate::RetryPolicy::attempts(3)).begins_plainly());
    }
}

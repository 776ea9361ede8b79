//! Options of one unit of work: isolation, read-only, SQLite locking, retry and
//! the hold-time budget.
//!
//! Every builder method is a `const fn`, so `#[unit_of_work]` turns its options
//! into a `const` and a unit pays nothing to build them.

use std::time::Duration;

/// The SQL isolation level a unit of work runs at.
///
/// PostgreSQL and MySQL/MariaDB honour all four. SQLite transactions are always
/// serializable: only [`Isolation::Serializable`] is accepted there, any other
/// level is an [`Error`](crate::Error) in phase [`Phase::Begin`](crate::Phase::Begin)
/// (and a compile error under `#[unit_of_work]`).
///
/// ```
/// use dbscope_runtime::{Isolation, UnitOptions};
/// const OPTIONS: UnitOptions = UnitOptions::new("transfer").isolation(Isolation::Serializable);
/// assert_eq!(OPTIONS.isolation_level(), Some(Isolation::Serializable));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// `READ UNCOMMITTED`.
    ReadUncommitted,
    /// `READ COMMITTED`.
    ReadCommitted,
    /// `REPEATABLE READ`.
    RepeatableRead,
    /// `SERIALIZABLE`.
    Serializable,
}

impl Isolation {
    /// The level as SQL writes it, for example `REPEATABLE READ`.
    ///
    /// ```
    /// assert_eq!(dbscope_runtime::Isolation::RepeatableRead.as_sql(), "REPEATABLE READ");
    /// ```
    pub const fn as_sql(self) -> &'static str {
        match self {
            Isolation::ReadUncommitted => "READ UNCOMMITTED",
            Isolation::ReadCommitted => "READ COMMITTED",
            Isolation::RepeatableRead => "REPEATABLE READ",
            Isolation::Serializable => "SERIALIZABLE",
        }
    }
}

/// How a SQLite transaction takes its locks (`BEGIN DEFERRED`, `IMMEDIATE` or
/// `EXCLUSIVE`). Only SQLite honours it; on any other backend it is an error.
///
/// ```
/// use dbscope_runtime::{SqliteLock, UnitOptions};
/// const OPTIONS: UnitOptions = UnitOptions::new("enqueue").sqlite_lock(SqliteLock::Immediate);
/// assert_eq!(OPTIONS.sqlite_lock_mode(), Some(SqliteLock::Immediate));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqliteLock {
    /// `BEGIN DEFERRED`: locks are taken on first use. The default of
    /// read-only units; a unit that reads and then writes under it fails with
    /// `database is locked` when another writer holds the lock, without
    /// waiting for the busy timeout.
    Deferred,
    /// `BEGIN IMMEDIATE`: take the write lock at once, so a writer waits at
    /// `BEGIN` (under `busy_timeout`) instead of failing mid-transaction. The
    /// default of units that are not read-only.
    Immediate,
    /// `BEGIN EXCLUSIVE`.
    Exclusive,
}

/// Retry of a unit of work on transient errors: serialization failures,
/// deadlocks, lock timeouts, lost connections and a busy SQLite database.
///
/// Each attempt is a fresh transaction on a (possibly different) connection;
/// errors that are not transient are returned at once. The wait before retry
/// `n` (counting from 1) is `initial_backoff * 2^(n-1)`, capped at `max_backoff`.
///
/// ```
/// use std::time::Duration;
/// use dbscope_runtime::RetryPolicy;
/// const RETRY: RetryPolicy = RetryPolicy::attempts(4).backoff(Duration::from_millis(5), Duration::from_millis(40));
/// assert_eq!(RETRY.max_attempts(), 4);
/// assert_eq!(RETRY.delay_before_retry(1), Duration::from_millis(5));
/// assert_eq!(RETRY.delay_before_retry(3), Duration::from_millis(20));
/// assert_eq!(RETRY.delay_before_retry(9), Duration::from_millis(40));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl RetryPolicy {
    /// At most `attempts` attempts in all (the first one included), with a
    /// backoff of 10 ms doubling up to 1 s. `attempts` below 1 counts as 1.
    ///
    /// ```
    /// assert_eq!(dbscope_runtime::RetryPolicy::attempts(3).max_attempts(), 3);
    /// ```
    pub const fn attempts(attempts: u32) -> Self {
        RetryPolicy {
            attempts: if attempts == 0 { 1 } else { attempts },
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
        }
    }

    /// Sets the first wait and the cap of the doubling waits.
    ///
    /// ```
    /// use std::time::Duration;
    /// let retry = dbscope_runtime::RetryPolicy::attempts(2).backoff(Duration::ZERO, Duration::ZERO);
    /// assert_eq!(retry.delay_before_retry(1), Duration::ZERO);
    /// ```
    pub const fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// How many attempts in all.
    ///
    /// ```
    /// assert_eq!(dbscope_runtime::RetryPolicy::attempts(0).max_attempts(), 1);
    /// ```
    pub const fn max_attempts(&self) -> u32 {
        self.attempts
    }

    /// The wait before retry number `retry` (1 for the second attempt).
    ///
    /// ```
    /// use std::time::Duration;
    /// let retry = dbscope_runtime::RetryPolicy::attempts(5);
    /// assert_eq!(retry.delay_before_retry(2), Duration::from_millis(20));
    /// ```
    pub fn delay_before_retry(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// Everything one unit of work asks of its transaction.
///
/// `#[unit_of_work(...)]` writes one of these as a `const`; code that opens units
/// by hand ([`SessionFactory::run`](crate::SessionFactory::run)) builds it the
/// same way.
///
/// ```
/// use std::time::Duration;
/// use dbscope_runtime::{Isolation, RetryPolicy, UnitOptions};
/// const OPTIONS: UnitOptions = UnitOptions::new("billing::charge")
///     .isolation(Isolation::Serializable)
///     .retry(RetryPolicy::attempts(3))
///     .budget(Duration::from_secs(2));
/// assert_eq!(OPTIONS.name(), "billing::charge");
/// assert!(!OPTIONS.is_read_only());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnitOptions {
    name: &'static str,
    isolation: Option<Isolation>,
    read_only: bool,
    sqlite_lock: Option<SqliteLock>,
    retry: Option<RetryPolicy>,
    budget: Option<Duration>,
    requires_new: bool,
}

impl UnitOptions {
    /// Options with every default: the backend's isolation level, read-write,
    /// no retry, the factory's hold-time budget. `name` appears in logs and in
    /// the hold-time warning; `#[unit_of_work]` passes the function's path.
    ///
    /// ```
    /// let options = dbscope_runtime::UnitOptions::new("users::create");
    /// assert_eq!(options.retry_policy(), None);
    /// ```
    pub const fn new(name: &'static str) -> Self {
        UnitOptions {
            name,
            isolation: None,
            read_only: false,
            sqlite_lock: None,
            retry: None,
            budget: None,
            requires_new: false,
        }
    }

    /// Runs the transaction at `level`.
    ///
    /// ```
    /// use dbscope_runtime::{Isolation, UnitOptions};
    /// let options = UnitOptions::new("report").isolation(Isolation::RepeatableRead);
    /// assert_eq!(options.isolation_level(), Some(Isolation::RepeatableRead));
    /// ```
    pub const fn isolation(mut self, level: Isolation) -> Self {
        self.isolation = Some(level);
        self
    }

    /// Makes the transaction read-only: a write in it fails.
    ///
    /// ```
    /// assert!(dbscope_runtime::UnitOptions::new("list").read_only(true).is_read_only());
    /// ```
    pub const fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// SQLite only: `BEGIN DEFERRED`, `IMMEDIATE` or `EXCLUSIVE`.
    ///
    /// ```
    /// use dbscope_runtime::{SqliteLock, UnitOptions};
    /// let options = UnitOptions::new("enqueue").sqlite_lock(SqliteLock::Exclusive);
    /// assert_eq!(options.sqlite_lock_mode(), Some(SqliteLock::Exclusive));
    /// ```
    pub const fn sqlite_lock(mut self, lock: SqliteLock) -> Self {
        self.sqlite_lock = Some(lock);
        self
    }

    /// Retries the whole unit on transient errors.
    ///
    /// ```
    /// use dbscope_runtime::{RetryPolicy, UnitOptions};
    /// let options = UnitOptions::new("transfer").retry(RetryPolicy::attempts(5));
    /// assert_eq!(options.retry_policy().map(|r| r.max_attempts()), Some(5));
    /// ```
    pub const fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// How long this unit may hold its session before a warning is logged (and,
    /// on PostgreSQL and MariaDB, before the server ends a transaction left idle
    /// that long). Overrides the factory's default.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = dbscope_runtime::UnitOptions::new("import").budget(Duration::from_secs(30));
    /// assert_eq!(options.hold_budget(), Some(Duration::from_secs(30)));
    /// ```
    pub const fn budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The name given to [`UnitOptions::new`].
    ///
    /// ```
    /// assert_eq!(dbscope_runtime::UnitOptions::new("a::b").name(), "a::b");
    /// ```
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The isolation level asked for, if any.
    ///
    /// ```
    /// assert_eq!(dbscope_runtime::UnitOptions::new("x").isolation_level(), None);
    /// ```
    pub const fn isolation_level(&self) -> Option<Isolation> {
        self.isolation
    }

    /// Whether the transaction is read-only.
    ///
    /// ```
    /// assert!(!dbscope_runtime::UnitOptions::new("x").is_read_only());
    /// ```
    pub const fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The SQLite lock mode asked for, if any.
    ///
    /// ```
    /// assert_eq!(dbscope_runtime::UnitOptions::new("x").sqlite_lock_mode(), None);
    /// ```
    pub const fn sqlite_lock_mode(&self) -> Option<SqliteLock> {
        self.sqlite_lock
    }

    /// The retry policy, if any.
    ///
    /// ```
    /// assert_eq!(dbscope_runtime::UnitOptions::new("x").retry_policy(), None);
    /// ```
    pub const fn retry_policy(&self) -> Option<RetryPolicy> {
        self.retry
    }

    /// Runs the unit in a transaction of its own even when it is called
    /// inside another unit of work on the same factory (Spring's
    /// `REQUIRES_NEW`): it takes a second connection, commits or rolls back
    /// on its own, and the outer unit goes on whatever it did. It never waits
    /// for that connection while the outer unit holds one: with none free it
    /// fails at once with [`Phase::Nesting`](crate::Phase::Nesting) instead of
    /// deadlocking a small pool. Outside another unit it is an ordinary unit.
    ///
    /// ```
    /// let audit = dbscope_runtime::UnitOptions::new("audit::record").requires_new(true);
    /// assert!(audit.is_requires_new());
    /// ```
    pub const fn requires_new(mut self, requires_new: bool) -> Self {
        self.requires_new = requires_new;
        self
    }

    /// Whether the unit runs in a transaction of its own when nested.
    ///
    /// ```
    /// assert!(!dbscope_runtime::UnitOptions::new("x").is_requires_new());
    /// ```
    pub const fn is_requires_new(&self) -> bool {
        self.requires_new
    }

    /// The hold-time budget of this unit, if it overrides the factory's.
    ///
    /// ```
    /// assert_eq!(dbscope_runtime::UnitOptions::new("x").hold_budget(), None);
    /// ```
    pub const fn hold_budget(&self) -> Option<Duration> {
        self.budget
    }

    /// Whether the transaction begins as the backend's plain `BEGIN`: no
    /// isolation level, read-only mode, SQLite lock mode or budget override.
    pub(crate) const fn begins_plainly(&self) -> bool {
        self.isolation.is_none()
            && !self.read_only
            && self.sqlite_lock.is_none()
            && self.budget.is_none()
    }
}

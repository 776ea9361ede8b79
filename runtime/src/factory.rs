//! The session factory: a cheap-to-clone handle over a pool, which opens
//! sessions and runs units of work.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::QueryResult;

use crate::backend::{is_private_sqlite_memory, PoolableConnection};
use crate::config::{PoolConfig, Validation};
use crate::error::Error;
use crate::open_units::Registration;
use crate::options::UnitOptions;
use crate::pool::{Blocking, Clock, Pool, Slot};
use crate::redact::RedactedUrl;
use crate::session::{BeginFailure, Session};
use crate::stats::PoolStats;
use crate::transient::is_connection_lost;

/// Where sessions come from: a pool of connections to one database.
///
/// Clone it freely (it is an `Arc` inside) and hand it to whatever needs
/// database access: a repository, a job worker, a test. There is no global
/// session anywhere; each unit of work checks a connection out of a factory,
/// uses it inside one transaction and gives it back.
///
/// ```
/// use diesel::prelude::*;
/// use dbscope_runtime::{Error, SessionFactory, UnitOptions};
///
/// let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
/// let count = factory.run(&UnitOptions::new("count"), |session| -> Result<usize, Error> {
///     diesel::sql_query("CREATE TABLE t (x INTEGER)").execute(&mut **session)?;
///     Ok(diesel::sql_query("INSERT INTO t VALUES (1), (2)").execute(&mut **session)?)
/// })?;
/// assert_eq!(count, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SessionFactory<C: PoolableConnection> {
    pub(crate) pool: Pool<C>,
}

impl<C: PoolableConnection> Clone for SessionFactory<C> {
    fn clone(&self) -> Self {
        SessionFactory {
            pool: self.pool.clone(),
        }
    }
}

impl<C: PoolableConnection> fmt::Debug for SessionFactory<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionFactory")
            .field("url", &self.pool.shared.url)
            .field("config", &self.pool.shared.config)
            .field("stats", &self.pool.stats())
            .finish()
    }
}

impl<C: PoolableConnection> SessionFactory<C> {
    /// A factory with every default, connecting once to check the URL.
    ///
    /// # Errors
    /// [`Phase::Connect`](crate::Phase::Connect) or
    /// [`Phase::Setup`](crate::Phase::Setup) when the first connection fails.
    ///
    /// ```
    /// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
    /// assert_eq!(factory.stats().open, 1);
    /// # Ok::<(), dbscope_runtime::Error>(())
    /// ```
    pub fn new(url: &str) -> Result<Self, Error> {
        Self::builder(url).build()
    }

    /// Starts configuring a factory for `url`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::builder("file:builder-doc.db?mode=memory&cache=shared")
    ///     .max_size(4)
    ///     .checkout_timeout(Duration::from_millis(500))
    ///     .build()?;
    /// assert_eq!(factory.stats().max_size, 4);
    /// # Ok::<(), dbscope_runtime::Error>(())
    /// ```
    pub fn builder(url: &str) -> SessionFactoryBuilder<C> {
        SessionFactoryBuilder::new(url)
    }

    /// Opens a session with default options: checks a connection out and
    /// begins a transaction. Prefer `#[unit_of_work]` or [`run`](Self::run),
    /// which cannot forget to end it.
    ///
    /// # Errors
    /// Checkout timeout, connect, setup or begin failures.
    ///
    /// ```
    /// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
    /// let session = factory.session()?;
    /// assert_eq!(factory.stats().in_use, 1);
    /// drop(session); // rolls back, returns the connection
    /// assert_eq!(factory.stats().in_use, 0);
    /// # Ok::<(), dbscope_runtime::Error>(())
    /// ```
    pub fn session(&self) -> Result<Session<C>, Error> {
        self.session_with(&UnitOptions::new("session"))
    }

    /// Opens a session with `options` (isolation, read-only, lock mode, budget).
    ///
    /// # Errors
    /// Checkout timeout, connect, setup or begin failures; [`Phase::Begin`](crate::Phase::Begin)
    /// when the backend cannot honour an option.
    ///
    /// ```
    /// use dbscope_runtime::{SessionFactory, SqliteLock, UnitOptions};
    /// let factory = SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
    /// let session = factory.session_with(&UnitOptions::new("writer").sqlite_lock(SqliteLock::Immediate))?;
    /// session.commit()?;
    /// # Ok::<(), dbscope_runtime::Error>(())
    /// ```
    pub fn session_with(&self, options: &UnitOptions) -> Result<Session<C>, Error> {
        let deadline = self.deadline();
        let slot = self.pool.acquire_slot_blocking(deadline)?;
        self.open(slot, options, deadline, Registration::session(self.id()))
    }

    /// Realises `slot` and begins the transaction. A connection found dead at
    /// `BEGIN` (nothing ran on it yet) is closed and the unit starts again on
    /// another connection, until `deadline`.
    #[inline]
    pub(crate) fn open(
        &self,
        mut slot: Slot<C>,
        options: &UnitOptions,
        deadline: Instant,
        mut registration: Registration,
    ) -> Result<Session<C>, Error> {
        loop {
            let lease = slot.realize()?;
            match Session::begin(lease, options, registration) {
                Ok(session) => return Ok(session),
                Err(failure) => {
                    (slot, registration) = self.after_failed_begin(*failure, options, deadline)?;
                }
            }
        }
    }

    /// A `BEGIN` failed: a connection found dead is closed and another slot
    /// reserved for the caller to try; any other failure is the caller's error.
    #[cold]
    #[inline(never)]
    fn after_failed_begin(
        &self,
        failure: BeginFailure<C>,
        options: &UnitOptions,
        deadline: Instant,
    ) -> Result<(Slot<C>, Registration), Error> {
        let BeginFailure {
            error,
            mut lease,
            registration,
        } = failure;
        let lost =
            error.diesel_error().is_some_and(is_connection_lost) || lease.signals().is_lost();
        // Not lost: the server may be in a transaction diesel does not know
        // about (a batch that failed half-way), so the connection is closed too.
        lease.discard();
        drop(lease);
        if !lost {
            return Err(error);
        }
        self.pool
            .shared
            .counters
            .begin_retries
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(unit = options.name(), %error, "connection dead at BEGIN; trying another");
        Ok((self.pool.acquire_slot_blocking(deadline)?, registration))
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.pool.deadline()
    }

    /// A snapshot of the pool's gauges and counters.
    ///
    /// ```
    /// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
    /// factory.session()?.commit()?;
    /// assert_eq!(factory.stats().checkouts, 1);
    /// # Ok::<(), dbscope_runtime::Error>(())
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// The database URL, password redacted.
    ///
    /// ```
    /// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
    /// assert_eq!(factory.url().to_string(), ":memory:");
    /// # Ok::<(), dbscope_runtime::Error>(())
    /// ```
    pub fn url(&self) -> &RedactedUrl {
        &self.pool.shared.url
    }

    /// An id unique to this factory (shared by its clones), used to tell
    /// factories apart when detecting nested units of work.
    ///
    /// ```
    /// let a = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
    /// assert_eq!(a.id(), a.clone().id());
    /// # Ok::<(), dbscope_runtime::Error>(())
    /// ```
    pub fn id(&self) -> u64 {
        self.pool.shared.id
    }

    /// The checkout timeout this factory was built with.
    ///
    /// ```
    /// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
    /// assert_eq!(factory.checkout_timeout(), std::time::Duration::from_secs(5));
    /// # Ok::<(), dbscope_runtime::Error>(())
    /// ```
    pub fn checkout_timeout(&self) -> Duration {
        self.pool.shared.config.checkout_timeout
    }
}

/// Anything that can hand out a [`SessionFactory`]: the factory itself,
/// references to it, `Arc`s and `Box`es of it, or your own handle type.
///
/// `#[unit_of_work(factory = ...)]` accepts any expression whose type
/// implements it, so a repository can hold whatever factory it likes and a
/// test can pass a rollback-only one.
///
/// ```
/// use dbscope_runtime::{SessionFactory, SessionSource};
/// struct Repo<F> { db: F }
/// impl<F: SessionSource> Repo<F> {
///     fn pool_size(&self) -> usize { self.db.session_factory().stats().max_size }
/// }
/// let repo = Repo { db: std::sync::Arc::new(SessionFactory::<diesel::SqliteConnection>::new(":memory:")?) };
/// assert_eq!(repo.pool_size(), 1);
/// # Ok::<(), dbscope_runtime::Error>(())
/// ```
pub trait SessionSource {
    /// The diesel connection type of the sessions.
    type Connection: PoolableConnection;

    /// The factory sessions come from.
    fn session_factory(&self) -> &SessionFactory<Self::Connection>;
}

impl<C: PoolableConnection> SessionSource for SessionFactory<C> {
    type Connection = C;

    fn session_factory(&self) -> &SessionFactory<C> {
        self
    }
}

impl<S: SessionSource + ?Sized> SessionSource for &S {
    type Connection = S::Connection;

    fn session_factory(&self) -> &SessionFactory<Self::Connection> {
        (**self).session_factory()
    }
}

impl<S: SessionSource + ?Sized> SessionSource for Arc<S> {
    type Connection = S::Connection;

    fn session_factory(&self) -> &SessionFactory<Self::Connection> {
        (**self).session_factory()
    }
}

impl<S: SessionSource + ?Sized> SessionSource for Box<S> {
    type Connection = S::Connection;

    fn session_factory(&self) -> &SessionFactory<Self::Connection> {
        (**self).session_factory()
    }
}

/// Configures a [`SessionFactory`]. Every setting has a production default.
///
/// | setting | default |
/// |---|---|
/// | `max_size` | 10 (1 for SQLite `:memory:`, whose database lives in its one connection) |
/// | `min_idle` | 0 |
/// | `checkout_timeout` | 5 s |
/// | `max_lifetime` | 30 min |
/// | `idle_timeout` | 10 min |
/// | `validation` | ping connections idle ≥ 500 ms |
/// | `hold_budget` | 5 s, also given to PostgreSQL and MariaDB |
///
/// ```
/// use std::time::Duration;
/// use dbscope_runtime::{SessionFactory, Validation};
/// let factory = SessionFactory::<diesel::SqliteConnection>::builder("file:builder-table.db?mode=memory&cache=shared")
///     .max_size(8)
///     .min_idle(2)
///     .checkout_timeout(Duration::from_secs(2))
///     .max_lifetime(Some(Duration::from_secs(600)))
///     .idle_timeout(Some(Duration::from_secs(60)))
///     .validation(Validation::IdleFor(Duration::from_millis(250)))
///     .setup_sql("PRAGMA busy_timeout = 2000")
///     .build()?;
/// assert_eq!(factory.stats().idle, 2);
/// # Ok::<(), dbscope_runtime::Error>(())
/// ```
pub struct SessionFactoryBuilder<C> {
    url: RedactedUrl,
    config: PoolConfig<C>,
    default_setup: bool,
    _connection: PhantomData<fn() -> C>,
}

impl<C: PoolableConnection> SessionFactoryBuilder<C> {
    fn new(url: &str) -> Self {
        SessionFactoryBuilder {
            url: RedactedUrl::new(url),
            config: PoolConfig::new(),
            default_setup: true,
            _connection: PhantomData,
        }
    }

    /// Most connections the pool opens. At least 1.
    ///
    /// ```
    /// let b = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::builder("file:a.db?mode=memory").max_size(3);
    /// # let _ = b;
    /// ```
    pub fn max_size(mut self, max_size: usize) -> Self {
        self.config.max_size = max_size.max(1);
        self
    }

    /// Connections kept open even when idle; opened by `build()`.
    ///
    /// ```
    /// let b = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::builder("file:b.db?mode=memory").min_idle(1);
    /// # let _ = b;
    /// ```
    pub fn min_idle(mut self, min_idle: usize) -> Self {
        self.config.min_idle = min_idle;
        self
    }

    /// How long a checkout waits for a free connection before it fails with
    /// [`Phase::CheckoutTimeout`](crate::Phase::CheckoutTimeout). Never infinite.
    ///
    /// ```
    /// let b = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::builder(":memory:")
    ///     .checkout_timeout(std::time::Duration::from_millis(200));
    /// # let _ = b;
    /// ```
    pub fn checkout_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.config.checkout_timeout = timeout;
        self
    }

    /// Connections older than this are closed instead of reused (recycling);
    /// keep it below the server's and any firewall's idle timeout. `None`
    /// keeps connections forever.
    ///
    /// ```
    /// let b = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::builder(":memory:")
    ///     .max_lifetime(Some(std::time::Duration::from_secs(300)));
    /// # let _ = b;
    /// ```
    pub fn max_lifetime(mut self, lifetime: Option<std::time::Duration>) -> Self {
        self.config.max_lifetime = lifetime;
        self
    }

    /// Idle connections beyond `min_idle` are closed after this long.
    ///
    /// ```
    /// let b = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::builder(":memory:")
    ///     .idle_timeout(None);
    /// # let _ = b;
    /// ```
    pub fn idle_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// When connections are pinged at checkout; see [`Validation`].
    ///
    /// ```
    /// let b = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::builder(":memory:")
    ///     .validation(dbscope_runtime::Validation::Always);
    /// # let _ = b;
    /// ```
    pub fn validation(mut self, validation: Validation) -> Self {
        self.config.validation = validation;
        self
    }

    /// The default hold-time budget of units of work: past it a warning names
    /// the unit and the time held. `None` turns the check off.
    ///
    /// ```
    /// let b = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::builder(":memory:")
    ///     .hold_budget(Some(std::time::Duration::from_secs(2)));
    /// # let _ = b;
    /// ```
    pub fn hold_budget(mut self, budget: Option<std::time::Duration>) -> Self {
        self.config.hold_budget = budget;
        self
    }

    /// Whether the budget is also given to the server (PostgreSQL
    /// `idle_in_transaction_session_timeout`, MariaDB `idle_transaction_timeout`),
    /// so a transaction left idle past it is ended by the database. On by default.
    ///
    /// ```
    /// let b = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::builder(":memory:")
    ///     .server_enforced_budget(false);
    /// # let _ = b;
    /// ```
    pub fn server_enforced_budget(mut self, enforced: bool) -> Self {
        self.config.server_budget = enforced;
        self
    }

    /// A statement (or `;`-separated batch) run on every new connection.
    /// Adding one keeps the backend's defaults (SQLite: `busy_timeout = 5000`,
    /// `foreign_keys = ON`, WAL for files); [`no_default_setup`](Self::no_default_setup) drops them.
    ///
    /// ```
    /// let b = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::builder(":memory:")
    ///     .setup_sql("PRAGMA cache_size = -4000");
    /// # let _ = b;
    /// ```
    pub fn setup_sql(mut self, sql: impl Into<String>) -> Self {
        self.config.setup_sql.push(sql.into());
        self
    }

    /// Drops the backend's default setup statements.
    ///
    /// ```
    /// let b = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::builder(":memory:").no_default_setup();
    /// # let _ = b;
    /// ```
    pub fn no_default_setup(mut self) -> Self {
        self.default_setup = false;
        self
    }

    /// A function run on every new connection after the setup statements.
    ///
    /// ```
    /// use diesel::connection::SimpleConnection;
    /// let b = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::builder(":memory:")
    ///     .on_connect(|conn| conn.batch_execute("PRAGMA temp_store = MEMORY"));
    /// # let _ = b;
    /// ```
    pub fn on_connect(
        mut self,
        setup: impl Fn(&mut C) -> QueryResult<()> + Send + Sync + 'static,
    ) -> Self {
        self.config.on_connect = Some(Arc::new(setup));
        self
    }

    /// A factory for tests: every unit of work runs inside one outer
    /// transaction that is never committed, as a savepoint. Nothing persists
    /// past the factory (the outer transaction rolls back when it is dropped),
    /// on every backend, SQLite in-memory included. One connection; isolation
    /// and read-only options are left to the outer transaction.
    ///
    /// ```
    /// use diesel::prelude::*;
    /// use dbscope_runtime::SessionFactory;
    /// let factory = SessionFactory::<SqliteConnection>::builder(":memory:").rollback_only().build()?;
    /// let mut session = factory.session()?;
    /// diesel::sql_query("CREATE TABLE t (x INTEGER)").execute(&mut *session)?;
    /// session.commit()?; // releases the savepoint; the outer transaction stays open
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rollback_only(mut self) -> Self {
        self.config.make_rollback_only();
        self
    }

    /// Builds the factory and opens `max(min_idle, 1)` connections, so a bad
    /// URL fails here rather than in the first request.
    ///
    /// # Errors
    /// Connect or setup failures of those connections.
    ///
    /// ```
    /// let error = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::builder("/nonexistent/dir/x.db").build().unwrap_err();
    /// assert_eq!(error.phase(), dbscope_runtime::Phase::Connect);
    /// ```
    pub fn build(self) -> Result<SessionFactory<C>, Error> {
        let count = self.config.min_idle.max(1);
        let factory = self.build_lazy();
        factory.pool.fill(count)?;
        Ok(factory)
    }

    /// Builds the factory without connecting; the first checkout connects.
    ///
    /// ```
    /// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::builder(":memory:").build_lazy();
    /// assert_eq!(factory.stats().open, 0);
    /// ```
    pub fn build_lazy(mut self) -> SessionFactory<C> {
        let in_memory = is_private_sqlite_memory(C::KIND, self.url.expose());
        let default_setup = self.default_setup.then(|| C::default_setup_sql(in_memory));
        self.config.settle(in_memory, default_setup);
        let pool = Pool::new(self.url, self.config, Blocking, Clock::Real);
        pool.start_maintenance_thread();
        SessionFactory { pool }
    }
}

//! [`AsyncSessionFactory`]: sessions over diesel-async connections, for
//! `#[unit_of_work]` on `async fn`s whose session is an async connection.
//!
//! Its pool is the blocking factory's (`pool/`) with the native
//! driver: the same FIFO queue, waited on without holding a thread, the same
//! validation window, recycling, idle timeout and `min_idle`, and connect and
//! validation bounded by the checkout deadline. Maintenance runs as a task on
//! the tokio runtime the factory is used on (a diesel-async connection lives
//! on the runtime that opened it).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use diesel::QueryResult;

use crate::backend::{is_private_sqlite_memory, PoolableConnection};
use crate::backend_async::AsyncPoolableConnection;
use crate::config::{PoolConfig, Validation};
use crate::error::Error;
use crate::options::UnitOptions;
use crate::pool::{AsyncPoolConfig, Clock, Lease, Native, Pool};
use crate::redact::RedactedUrl;
use crate::stats::PoolStats;
use crate::unit_native::{run_unit_native_retrying, AsyncUnitBodyMut};

/// A session factory over diesel-async connections: the async twin of
/// [`SessionFactory`](crate::SessionFactory). Cheap to clone (one pool).
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use diesel::SqliteConnection;
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// use diesel_async::RunQueryDsl;
/// use dbscope_runtime::{AsyncSessionFactory, Error, UnitOptions};
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let factory = AsyncSessionFactory::<SyncConnectionWrapper<SqliteConnection>>::new(":memory:")?;
/// let one: i32 = factory
///     .run(&UnitOptions::new("one"), async |conn: &mut SyncConnectionWrapper<SqliteConnection>| {
///         diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
///             .get_result(conn)
///             .await
///             .map_err(Error::from)
///     })
///     .await?;
/// assert_eq!(one, 1);
/// assert_eq!(factory.stats().in_use, 0);
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// # }
/// ```
pub struct AsyncSessionFactory<C: AsyncPoolableConnection> {
    /// The pool, shared by clones.
    pub(crate) inner: Pool<C, Native>,
}

impl<C: AsyncPoolableConnection> Clone for AsyncSessionFactory<C> {
    fn clone(&self) -> Self {
        AsyncSessionFactory {
            inner: self.inner.clone(),
        }
    }
}

impl<C: AsyncPoolableConnection> std::fmt::Debug for AsyncSessionFactory<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSessionFactory")
            .field("url", &self.inner.url)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<C: AsyncPoolableConnection> AsyncSessionFactory<C> {
    /// A factory with the default settings (see [`AsyncSessionFactoryBuilder`]).
    /// Connections are opened on first use; no tokio runtime is needed to
    /// build it.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    /// let factory = dbscope_runtime::AsyncSessionFactory::<SyncConnectionWrapper<diesel::SqliteConnection>>::new(":memory:").unwrap();
    /// assert_eq!(factory.stats().max_size, 1);
    /// # }
    /// ```
    ///
    /// # Errors
    /// None today: the settings are checked as they are given.
    pub fn new(url: &str) -> Result<Self, Error> {
        Self::builder(url).build()
    }

    /// Starts configuring a factory for `url`.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use std::time::Duration;
    /// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    /// let factory = dbscope_runtime::AsyncSessionFactory::<SyncConnectionWrapper<diesel::SqliteConnection>>::builder(":memory:")
    ///     .checkout_timeout(Duration::from_secs(1))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(factory.checkout_timeout(), Duration::from_secs(1));
    /// # }
    /// ```
    pub fn builder(url: &str) -> AsyncSessionFactoryBuilder<C> {
        AsyncSessionFactoryBuilder {
            url: url.to_owned(),
            config: PoolConfig::new(),
            default_setup: true,
        }
    }

    /// Runs `body` as one unit of work: what `#[unit_of_work]` expands to,
    /// for hand-written code. Retries on transient errors when `options` has
    /// a retry policy, so the body may run more than once (as
    /// [`SessionFactory::run`](crate::SessionFactory::run)).
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    /// use diesel_async::SimpleAsyncConnection;
    /// use dbscope_runtime::{AsyncSessionFactory, Error, UnitOptions};
    /// type Conn = SyncConnectionWrapper<diesel::SqliteConnection>;
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let factory = AsyncSessionFactory::<Conn>::new(":memory:")?;
    /// factory
    ///     .run(&UnitOptions::new("schema"), async |conn: &mut Conn| {
    ///         conn.batch_execute("CREATE TABLE t (id INTEGER)").await.map_err(Error::from)
    ///     })
    ///     .await?;
    /// # Ok::<(), Error>(())
    /// # }).unwrap();
    /// # }
    /// ```
    ///
    /// # Errors
    /// The body's error, or the runtime's converted with `E::from`.
    pub async fn run<T, E, F>(&self, options: &UnitOptions, body: F) -> Result<T, E>
    where
        E: From<Error>,
        F: for<'c> AsyncFnMut(&'c mut C) -> Result<T, E>
            + for<'c> AsyncUnitBodyMut<&'c mut C, Result<T, E>>,
    {
        run_unit_native_retrying(self, options, body).await
    }

    /// A snapshot of the pool's gauges and counters.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    /// let factory = dbscope_runtime::AsyncSessionFactory::<SyncConnectionWrapper<diesel::SqliteConnection>>::new(":memory:").unwrap();
    /// assert_eq!(factory.stats().checkouts, 0);
    /// # }
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.inner.stats()
    }

    /// The database URL, password hidden.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    /// let factory = dbscope_runtime::AsyncSessionFactory::<SyncConnectionWrapper<diesel::SqliteConnection>>::new(":memory:").unwrap();
    /// assert_eq!(factory.url().to_string(), ":memory:");
    /// # }
    /// ```
    pub fn url(&self) -> &RedactedUrl {
        &self.inner.url
    }

    /// How long a unit waits for a connection before failing with
    /// [`Phase::CheckoutTimeout`](crate::Phase::CheckoutTimeout).
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    /// let factory = dbscope_runtime::AsyncSessionFactory::<SyncConnectionWrapper<diesel::SqliteConnection>>::new(":memory:").unwrap();
    /// assert_eq!(factory.checkout_timeout(), std::time::Duration::from_secs(5));
    /// # }
    /// ```
    pub fn checkout_timeout(&self) -> Duration {
        self.inner.config.checkout_timeout
    }

    /// Checks a connection out: waits for a slot and opens or validates the
    /// connection, all within the checkout timeout.
    pub(crate) async fn lease(&self) -> Result<Lease<C, Native>, Error> {
        self.inner.start_maintenance_task();
        self.inner.checkout_async().await
    }
}

/// Where `#[unit_of_work]` on an async connection gets its sessions: an
/// [`AsyncSessionFactory`], or anything holding one (`&F`, `Arc<F>`, your
/// repository's field through `factory = self.db`).
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use dbscope_runtime::{AsyncSessionFactory, AsyncSessionSource};
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// let factory = std::sync::Arc::new(AsyncSessionFactory::<SyncConnectionWrapper<diesel::SqliteConnection>>::new(":memory:").unwrap());
/// assert_eq!(factory.async_session_factory().stats().max_size, 1);
/// # }
/// ```
pub trait AsyncSessionSource {
    /// The diesel-async connection type of the sessions.
    type Connection: AsyncPoolableConnection;

    /// The factory sessions come from.
    fn async_session_factory(&self) -> &AsyncSessionFactory<Self::Connection>;
}

impl<C: AsyncPoolableConnection> AsyncSessionSource for AsyncSessionFactory<C> {
    type Connection = C;

    fn async_session_factory(&self) -> &AsyncSessionFactory<C> {
        self
    }
}

impl<S: AsyncSessionSource + ?Sized> AsyncSessionSource for &S {
    type Connection = S::Connection;

    fn async_session_factory(&self) -> &AsyncSessionFactory<Self::Connection> {
        (**self).async_session_factory()
    }
}

impl<S: AsyncSessionSource + ?Sized> AsyncSessionSource for Arc<S> {
    type Connection = S::Connection;

    fn async_session_factory(&self) -> &AsyncSessionFactory<Self::Connection> {
        (**self).async_session_factory()
    }
}

/// Configures an [`AsyncSessionFactory`]: the same settings and defaults as
/// [`SessionFactoryBuilder`](crate::SessionFactoryBuilder) (10 connections, 1
/// for a private SQLite `:memory:`; 5 s checkout timeout; 30 min lifetime;
/// 10 min idle timeout; ping only connections idle ≥ 500 ms; 5 s hold
/// budget, also given to PostgreSQL and MariaDB). `build()` opens no
/// connection; `min_idle` connections are opened in the background once a
/// tokio runtime is at hand.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use std::time::Duration;
/// use dbscope_runtime::{AsyncSessionFactory, Validation};
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// use diesel_async::SimpleAsyncConnection;
/// let factory = AsyncSessionFactory::<SyncConnectionWrapper<diesel::SqliteConnection>>::builder(":memory:")
///     .max_size(1)
///     .min_idle(1)
///     .max_lifetime(Some(Duration::from_secs(60)))
///     .idle_timeout(None)
///     .validation(Validation::Always)
///     .hold_budget(Some(Duration::from_millis(100)))
///     .server_enforced_budget(false)
///     .setup_sql("PRAGMA foreign_keys = ON")
///     .on_connect(|conn| Box::pin(conn.batch_execute("PRAGMA temp_store = MEMORY")))
///     .build()
///     .unwrap();
/// assert_eq!(factory.stats().max_size, 1);
/// # }
/// ```
pub struct AsyncSessionFactoryBuilder<C> {
    url: String,
    config: AsyncPoolConfig<C>,
    default_setup: bool,
}

impl<C: AsyncPoolableConnection> AsyncSessionFactoryBuilder<C> {
    /// Most connections the pool opens (at least 1).
    #[must_use]
    pub fn max_size(mut self, max_size: usize) -> Self {
        self.config.max_size = max_size.max(1);
        self
    }

    /// Connections kept open even when idle, opened in the background.
    #[must_use]
    pub fn min_idle(mut self, min_idle: usize) -> Self {
        self.config.min_idle = min_idle;
        self
    }

    /// How long a unit waits for a connection (and for opening one).
    #[must_use]
    pub fn checkout_timeout(mut self, timeout: Duration) -> Self {
        self.config.checkout_timeout = timeout;
        self
    }

    /// Connections older than this are closed instead of reused.
    #[must_use]
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.config.max_lifetime = lifetime;
        self
    }

    /// Idle connections beyond `min_idle` are closed after this long.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// When a connection is pinged before it is handed out.
    #[must_use]
    pub fn validation(mut self, validation: Validation) -> Self {
        self.config.validation = validation;
        self
    }

    /// How long a session may be held before a warning is logged; PostgreSQL
    /// and MariaDB also end a transaction left idle that long (see
    /// [`server_enforced_budget`](Self::server_enforced_budget)).
    #[must_use]
    pub fn hold_budget(mut self, budget: Option<Duration>) -> Self {
        self.config.hold_budget = budget;
        self
    }

    /// Whether the budget is also given to the server (PostgreSQL
    /// `idle_in_transaction_session_timeout`, MariaDB
    /// `idle_transaction_timeout`). On by default.
    #[must_use]
    pub fn server_enforced_budget(mut self, enforced: bool) -> Self {
        self.config.server_budget = enforced;
        self
    }

    /// A statement run on every new connection, after the backend's defaults.
    #[must_use]
    pub fn setup_sql(mut self, sql: impl Into<String>) -> Self {
        self.config.setup_sql.push(sql.into());
        self
    }

    /// Drops the backend's default setup statements.
    #[must_use]
    pub fn no_default_setup(mut self) -> Self {
        self.default_setup = false;
        self
    }

    /// A function run on every new connection after the setup statements;
    /// it returns a boxed future (`|conn| Box::pin(async move { .. })`).
    #[must_use]
    pub fn on_connect(
        mut self,
        setup: impl for<'c> Fn(&'c mut C) -> Pin<Box<dyn Future<Output = QueryResult<()>> + Send + 'c>>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        self.config.on_connect = Some(Arc::new(setup));
        self
    }

    /// A factory for tests: every unit of work runs as a savepoint inside one
    /// outer transaction that is never committed, on one connection (see
    /// [`SessionFactoryBuilder::rollback_only`](crate::SessionFactoryBuilder::rollback_only)).
    #[must_use]
    pub fn rollback_only(mut self) -> Self {
        self.config.make_rollback_only();
        self
    }

    /// Builds the factory. Opens no connection.
    ///
    /// # Errors
    /// None today: the settings are checked as they are given.
    pub fn build(mut self) -> Result<AsyncSessionFactory<C>, Error> {
        let kind = <C::Dialect as PoolableConnection>::KIND;
        let in_memory = is_private_sqlite_memory(kind, &self.url);
        let default_setup = self
            .default_setup
            .then(|| C::Dialect::default_setup_sql(in_memory));
        self.config.settle(in_memory, default_setup);
        let pool = Pool::new(
            RedactedUrl::new(&self.url),
            self.config,
            Native,
            Clock::Real,
        );
        pool.start_maintenance_task();
        let factory = AsyncSessionFactory { inner: pool };
        Ok(factory)
    }
}

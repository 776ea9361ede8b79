//! [`AsyncSessionFactory`]: sessions over diesel-async connections, from a
//! validating deadpool pool, for `#[unit_of_work]` on `async fn`s whose
//! session is an async connection.
//!
//! Why deadpool, with a manager of our own: its wait queue is async and
//! bounded by a timeout, and its manager sees each connection's [`Metrics`]
//! (age) at checkout, which is where recycling by age and validating only
//! connections idle past a window belong. diesel-async's own deadpool manager
//! either pings on every checkout or never; bb8 checks on return, which is too
//! late for a connection that dies while idle.
//!
//! [`Metrics`]: deadpool::managed::Metrics

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use deadpool::managed::{Object, Pool, PoolError};
use deadpool::Runtime;
use diesel::QueryResult;

use crate::async_pool::{AsyncPoolConfig, ConnManager};
use crate::backend::{is_private_sqlite_memory, PoolableConnection};
use crate::backend_async::AsyncPoolableConnection;
use crate::config::{PoolConfig, Validation};
use crate::error::{Error, Phase};
use crate::options::UnitOptions;
use crate::redact::RedactedUrl;
use crate::stats::{Counters, PoolStats};
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
    pub(crate) inner: Arc<Inner<C>>,
}

pub(crate) struct Inner<C: AsyncPoolableConnection> {
    pub(crate) pool: Pool<ConnManager<C>>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) config: Arc<AsyncPoolConfig<C>>,
    /// Starts the maintenance task once a tokio runtime is at hand.
    maintenance: Once,
    url: RedactedUrl,
}

impl<C: AsyncPoolableConnection> Clone for AsyncSessionFactory<C> {
    fn clone(&self) -> Self {
        AsyncSessionFactory {
            inner: Arc::clone(&self.inner),
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
    /// [`Phase::Setup`] when the pool cannot be built.
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
        let status = self.inner.pool.status();
        self.inner.counters.snapshot(
            status.max_size,
            status.size,
            status.available,
            status.waiting,
        )
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
    /// [`Phase::CheckoutTimeout`].
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

    /// Checks a connection out, waiting at most the checkout timeout.
    pub(crate) async fn checkout_object(&self) -> Result<Object<ConnManager<C>>, Error> {
        self.start_maintenance();
        let started = Instant::now();
        match self.inner.pool.get().await {
            Ok(object) => Ok(object),
            Err(PoolError::Timeout(_)) => {
                let counters = &self.inner.counters;
                counters.checkout_timeouts.fetch_add(1, Ordering::Relaxed);
                Err(Error::checkout_timeout(
                    started.elapsed(),
                    self.inner.config.max_size,
                    counters.in_use.load(Ordering::Relaxed),
                ))
            }
            Err(PoolError::Backend(error)) => Err(error),
            Err(other) => Err(Error::new(
                Phase::Connect,
                format!("the pool could not hand out a connection: {other}"),
            )),
        }
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
    /// [`Phase::Setup`] when the pool cannot be built.
    pub fn build(mut self) -> Result<AsyncSessionFactory<C>, Error> {
        let kind = <C::Dialect as PoolableConnection>::KIND;
        let in_memory = is_private_sqlite_memory(kind, &self.url);
        let default_setup = self
            .default_setup
            .then(|| C::Dialect::default_setup_sql(in_memory));
        self.config.settle(in_memory, default_setup);
        let counters = Arc::new(Counters::default());
        let url = RedactedUrl::new(&self.url);
        let config = Arc::new(self.config);
        let manager = ConnManager {
            url: url.clone(),
            config: Arc::clone(&config),
            counters: Arc::clone(&counters),
        };
        let timeout = Some(config.checkout_timeout);
        let pool = Pool::builder(manager)
            .max_size(config.max_size)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|error| {
                Error::new(Phase::Setup, format!("could not build the pool: {error}"))
            })?;
        let factory = AsyncSessionFactory {
            inner: Arc::new(Inner {
                pool,
                counters,
                config,
                maintenance: Once::new(),
                url,
            }),
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            factory.start_maintenance();
        }
        Ok(factory)
    }
}

impl<C: AsyncPoolableConnection> AsyncSessionFactory<C> {
    /// Starts (once, on the current tokio runtime) the task that closes idle
    /// and expired connections and keeps `min_idle` open. It holds only a
    /// weak reference and ends with the pool.
    fn start_maintenance(&self) {
        let config = &self.inner.config;
        let shortest = [config.idle_timeout, config.max_lifetime]
            .into_iter()
            .flatten()
            .min();
        if shortest.is_none() && config.min_idle == 0 {
            return;
        }
        let interval = shortest
            .map_or(Duration::from_secs(30), |d| d / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(30));
        self.inner.maintenance.call_once(|| {
            let weak = self.inner.pool.weak();
            let config = Arc::clone(config);
            let counters = Arc::clone(&self.inner.counters);
            tokio::spawn(async move {
                loop {
                    let Some(pool) = weak.upgrade() else { return };
                    maintain(&pool, &config, &counters).await;
                    drop(pool);
                    tokio::time::sleep(interval).await;
                }
            });
        });
    }
}

/// One round of maintenance: closes idle connections past `idle_timeout`
/// (keeping `min_idle`) or past `max_lifetime`, then opens connections up to
/// `min_idle`.
async fn maintain<C: AsyncPoolableConnection>(
    pool: &Pool<ConnManager<C>>,
    config: &AsyncPoolConfig<C>,
    counters: &Counters,
) {
    let mut idle = pool.status().available;
    let result = pool.retain(|pooled, metrics| {
        let aged = config
            .max_lifetime
            .is_some_and(|limit| metrics.age() >= limit);
        let idle_too_long = idle > config.min_idle
            && config
                .idle_timeout
                .is_some_and(|limit| pooled.returned.elapsed() >= limit);
        if aged || idle_too_long {
            idle = idle.saturating_sub(1);
        }
        !(aged || idle_too_long)
    });
    if !result.removed.is_empty() {
        counters
            .connections_closed
            .fetch_add(result.removed.len(), Ordering::Relaxed);
    }
    let status = pool.status();
    let missing = config
        .min_idle
        .min(config.max_size)
        .saturating_sub(status.size);
    if missing > 0 {
        // Held until all are open: one given back at once would be reused.
        let mut opened = Vec::with_capacity(missing);
        for _ in 0..missing {
            match pool.get().await {
                Ok(object) => opened.push(object),
                Err(error) => {
                    tracing::debug!(%error, "could not top up min_idle connections");
                    break;
                }
            }
        }
    }
}

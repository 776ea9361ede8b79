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

use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool::managed::{Object, Pool, PoolError};
use deadpool::Runtime;

use crate::async_pool::{ConnManager, ManagerConfig};
use crate::async_unit::{run_unit_native, AsyncUnitBody};
use crate::backend_async::AsyncPoolableConnection;
use crate::config::Validation;
use crate::error::{Error, Phase};
use crate::options::UnitOptions;
use crate::redact::RedactedUrl;
use crate::stats::{Counters, PoolStats};

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
    pub(crate) checkout_timeout: Duration,
    pub(crate) hold_budget: Option<Duration>,
    pub(crate) max_size: usize,
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
            max_size: if url.contains(":memory:") { 1 } else { 10 },
            checkout_timeout: Duration::from_secs(5),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            validation: Validation::default(),
            hold_budget: Some(Duration::from_secs(5)),
            setup_sql: Vec::new(),
            _connection: PhantomData,
        }
    }

    /// Runs `body` as one unit of work (no retry): what `#[unit_of_work]`
    /// expands to, for hand-written code.
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
        F: for<'c> AsyncFnOnce(&'c mut C) -> Result<T, E>
            + for<'c> AsyncUnitBody<&'c mut C, Result<T, E>>,
    {
        run_unit_native(self, options, body).await
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
        self.inner.checkout_timeout
    }

    /// Checks a connection out, waiting at most the checkout timeout.
    pub(crate) async fn checkout_object(&self) -> Result<Object<ConnManager<C>>, Error> {
        let started = Instant::now();
        match self.inner.pool.get().await {
            Ok(object) => Ok(object),
            Err(PoolError::Timeout(_)) => {
                let counters = &self.inner.counters;
                counters.checkout_timeouts.fetch_add(1, Ordering::Relaxed);
                Err(Error::checkout_timeout(
                    started.elapsed(),
                    self.inner.max_size,
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

/// Configures an [`AsyncSessionFactory`]. The defaults match
/// [`SessionFactoryBuilder`](crate::SessionFactoryBuilder)'s: 10 connections
/// (1 for SQLite `:memory:`), 5 s checkout timeout, 30 min lifetime, ping only
/// connections idle ≥ 500 ms, 5 s hold budget (also given to PostgreSQL).
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use std::time::Duration;
/// use dbscope_runtime::{AsyncSessionFactory, Validation};
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// let factory = AsyncSessionFactory::<SyncConnectionWrapper<diesel::SqliteConnection>>::builder(":memory:")
///     .max_size(1)
///     .max_lifetime(Some(Duration::from_secs(60)))
///     .validation(Validation::Always)
///     .hold_budget(Some(Duration::from_millis(100)))
///     .setup_sql("PRAGMA foreign_keys = ON")
///     .build()
///     .unwrap();
/// assert_eq!(factory.stats().max_size, 1);
/// # }
/// ```
pub struct AsyncSessionFactoryBuilder<C> {
    url: String,
    max_size: usize,
    checkout_timeout: Duration,
    max_lifetime: Option<Duration>,
    validation: Validation,
    hold_budget: Option<Duration>,
    setup_sql: Vec<String>,
    _connection: PhantomData<fn() -> C>,
}

impl<C: AsyncPoolableConnection> AsyncSessionFactoryBuilder<C> {
    /// Most connections the pool opens (at least 1).
    #[must_use]
    pub fn max_size(mut self, max_size: usize) -> Self {
        self.max_size = max_size.max(1);
        self
    }

    /// How long a unit waits for a connection (and for opening one).
    #[must_use]
    pub fn checkout_timeout(mut self, timeout: Duration) -> Self {
        self.checkout_timeout = timeout;
        self
    }

    /// Connections older than this are closed at checkout and replaced.
    #[must_use]
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// When a connection is pinged before it is handed out.
    #[must_use]
    pub fn validation(mut self, validation: Validation) -> Self {
        self.validation = validation;
        self
    }

    /// How long a session may be held before a warning is logged; PostgreSQL
    /// also ends a transaction left idle that long.
    #[must_use]
    pub fn hold_budget(mut self, budget: Option<Duration>) -> Self {
        self.hold_budget = budget;
        self
    }

    /// A statement run on every new connection.
    #[must_use]
    pub fn setup_sql(mut self, sql: impl Into<String>) -> Self {
        self.setup_sql.push(sql.into());
        self
    }

    /// Builds the factory. Opens no connection.
    ///
    /// # Errors
    /// [`Phase::Setup`] when the pool cannot be built.
    pub fn build(self) -> Result<AsyncSessionFactory<C>, Error> {
        let counters = Arc::new(Counters::default());
        let url = RedactedUrl::new(&self.url);
        let manager = ConnManager {
            config: ManagerConfig {
                url: url.clone(),
                validation: self.validation,
                max_lifetime: self.max_lifetime,
                hold_budget: self.hold_budget,
                setup_sql: self.setup_sql,
            },
            counters: Arc::clone(&counters),
            _connection: PhantomData,
        };
        let timeout = Some(self.checkout_timeout);
        let pool = Pool::builder(manager)
            .max_size(self.max_size)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|error| {
                Error::new(Phase::Setup, format!("could not build the pool: {error}"))
            })?;
        Ok(AsyncSessionFactory {
            inner: Arc::new(Inner {
                pool,
                counters,
                checkout_timeout: self.checkout_timeout,
                hold_budget: self.hold_budget,
                max_size: self.max_size,
                url,
            }),
        })
    }
}

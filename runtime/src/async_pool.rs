//! The pool under an [`AsyncSessionFactory`](crate::AsyncSessionFactory):
//! deadpool with a manager of our own.
//!
//! deadpool gives an async wait queue with a checkout timeout and hands its
//! manager the connection's [`Metrics`] at each checkout. The manager uses
//! them to recycle by age, and validates (one `SELECT 1`) only a connection
//! that sat idle longer than the validation window, measured from the moment
//! its last session ended. It also installs the instrumentation that tells a
//! unit whether a statement failed with a transient error (the retry option).
//! A connection whose session ended mid-transaction never comes back here: the
//! session takes it out of the pool and closes it (see `async_session.rs`).
//!
//! Connect-time setup follows the blocking flavour's rules (`PoolConfig`):
//! default and user setup statements, `on_connect`, the server's
//! idle-transaction budget (PostgreSQL and MariaDB), the outer transaction of
//! a rollback-only factory.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use diesel::QueryResult;
use diesel_async::{AsyncConnection, TransactionManager};

use crate::backend::{IdleTimeoutSupport, PoolableConnection, ServerTraits};
use crate::backend_async::AsyncPoolableConnection;
use crate::config::PoolConfig;
use crate::error::{Error, Phase};
use crate::redact::RedactedUrl;
use crate::signals::Signals;
use crate::stats::Counters;

/// The async flavour's `on_connect` hook.
pub(crate) type AsyncOnConnect<C> = Arc<
    dyn for<'c> Fn(&'c mut C) -> Pin<Box<dyn Future<Output = QueryResult<()>> + Send + 'c>>
        + Send
        + Sync,
>;

/// The settings of an async factory.
pub(crate) type AsyncPoolConfig<C> = PoolConfig<C, AsyncOnConnect<C>>;

/// A pooled async connection and what the pool knows about it.
pub(crate) struct Pooled<C> {
    pub(crate) conn: C,
    /// When its last session ended (or when it was opened).
    pub(crate) returned: Instant,
    /// What the server supports, learnt at connect time.
    pub(crate) server: ServerTraits,
    /// What its statements reported (see `signals.rs`).
    pub(crate) signals: Arc<Signals>,
}

/// Opens, validates and recycles connections for deadpool.
pub(crate) struct ConnManager<C> {
    pub(crate) url: RedactedUrl,
    pub(crate) config: Arc<AsyncPoolConfig<C>>,
    pub(crate) counters: Arc<Counters>,
}

impl<C: AsyncPoolableConnection> ConnManager<C> {
    async fn connect(&self) -> Result<Pooled<C>, Error> {
        let url = &self.url;
        let mut conn = C::establish(url.expose())
            .await
            .map_err(|error| Error::connect(&url.to_string(), &error, |text| url.scrub(text)))?;
        self.counters
            .connections_created
            .fetch_add(1, Ordering::Relaxed);
        let setup_failed = |error| {
            Error::query(
                Phase::Setup,
                format!(
                    "a setup statement failed on a new connection to {url}; fix the statement \
                     given to `setup_sql` or `on_connect`"
                ),
                error,
            )
        };
        let config = &*self.config;
        for sql in &config.setup_sql {
            conn.batch_execute(sql).await.map_err(setup_failed)?;
        }
        if let Some(on_connect) = &config.on_connect {
            on_connect(&mut conn).await.map_err(setup_failed)?;
        }
        // As in the blocking flavour: a rollback-only factory's outer
        // transaction must never be ended by a server budget.
        let server = if config.server_budget && !config.rollback_only {
            let idle_transaction_timeout = match <C::Dialect as PoolableConnection>::IDLE_TIMEOUT {
                IdleTimeoutSupport::Always => true,
                IdleTimeoutSupport::Never => false,
                IdleTimeoutSupport::IfAccepted(sql) => conn.batch_execute(sql).await.is_ok(),
            };
            ServerTraits {
                idle_transaction_timeout,
            }
        } else {
            ServerTraits::default()
        };
        if let (Some(budget), true) = (config.hold_budget, server.idle_transaction_timeout) {
            if let Some(sql) = C::Dialect::budget_setup_sql(budget) {
                conn.batch_execute(&sql).await.map_err(setup_failed)?;
            }
        }
        if config.rollback_only {
            <C as AsyncConnection>::TransactionManager::begin_transaction(&mut conn)
                .await
                .map_err(setup_failed)?;
        }
        let (signals, recorder) = Signals::install();
        conn.set_instrumentation(recorder);
        Ok(Pooled {
            conn,
            returned: Instant::now(),
            server,
            signals,
        })
    }

    fn closed(&self) {
        self.counters
            .connections_closed
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl<C: AsyncPoolableConnection> managed::Manager for ConnManager<C> {
    type Type = Pooled<C>;
    type Error = Error;

    async fn create(&self) -> Result<Pooled<C>, Error> {
        self.connect().await
    }

    async fn recycle(&self, pooled: &mut Pooled<C>, metrics: &Metrics) -> RecycleResult<Error> {
        let config = &*self.config;
        if config
            .max_lifetime
            .is_some_and(|lifetime| metrics.age() >= lifetime)
        {
            self.counters.recycled.fetch_add(1, Ordering::Relaxed);
            self.closed();
            return Err(RecycleError::message("outlived max_lifetime"));
        }
        let idle = pooled.returned.elapsed();
        if config.idle_timeout.is_some_and(|limit| idle >= limit) {
            self.closed();
            return Err(RecycleError::message("idle past idle_timeout"));
        }
        if config.validation.needed_after(idle) {
            self.counters.validations.fetch_add(1, Ordering::Relaxed);
            if pooled.conn.batch_execute("SELECT 1").await.is_err() {
                self.counters
                    .validation_failures
                    .fetch_add(1, Ordering::Relaxed);
                self.closed();
                return Err(RecycleError::message("failed validation"));
            }
        }
        Ok(())
    }
}

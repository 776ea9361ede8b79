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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use diesel::connection::{Instrumentation, InstrumentationEvent};

use crate::backend::{BackendKind, PoolableConnection};
use crate::backend_async::AsyncPoolableConnection;
use crate::config::Validation;
use crate::error::{Error, Phase};
use crate::redact::RedactedUrl;
use crate::stats::Counters;
use crate::transient::is_transient;

/// A pooled async connection and what the pool knows about it.
pub(crate) struct Pooled<C> {
    pub(crate) conn: C,
    /// When its last session ended (or when it was opened).
    pub(crate) returned: Instant,
    /// Set by the instrumentation when a statement fails with a transient
    /// error; cleared when a unit begins.
    pub(crate) transient: Arc<AtomicBool>,
}

/// Settings the manager needs.
pub(crate) struct ManagerConfig {
    pub(crate) url: RedactedUrl,
    pub(crate) validation: Validation,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) hold_budget: Option<Duration>,
    pub(crate) setup_sql: Vec<String>,
}

/// Opens, validates and recycles connections for deadpool.
pub(crate) struct ConnManager<C> {
    pub(crate) config: ManagerConfig,
    pub(crate) counters: Arc<Counters>,
    pub(crate) _connection: std::marker::PhantomData<fn() -> C>,
}

/// Records transient statement errors into a flag.
struct TransientSeen(Arc<AtomicBool>);

impl Instrumentation for TransientSeen {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery {
            error: Some(error), ..
        } = event
        {
            if is_transient(error) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
    }
}

impl<C: AsyncPoolableConnection> ConnManager<C> {
    async fn connect(&self) -> Result<Pooled<C>, Error> {
        let url = &self.config.url;
        let mut conn = C::establish(url.expose())
            .await
            .map_err(|error| Error::connect(&url.to_string(), &error, |text| url.scrub(text)))?;
        let setup_failed = |error| {
            Error::query(
                Phase::Setup,
                "connection setup failed; check the factory's setup statements",
                error,
            )
        };
        let in_memory = url.expose().contains(":memory:");
        for sql in C::Dialect::default_setup_sql(in_memory)
            .iter()
            .chain(&self.config.setup_sql)
        {
            conn.batch_execute(sql).await.map_err(setup_failed)?;
        }
        // PostgreSQL ends a transaction left idle past the factory's budget;
        // other servers only get the warning in the async flavour.
        if let (Some(budget), BackendKind::Postgres) = (
            self.config.hold_budget,
            <C::Dialect as PoolableConnection>::KIND,
        ) {
            if let Some(sql) = C::Dialect::budget_setup_sql(budget) {
                conn.batch_execute(&sql).await.map_err(setup_failed)?;
            }
        }
        let transient = Arc::new(AtomicBool::new(false));
        conn.set_instrumentation(TransientSeen(Arc::clone(&transient)));
        self.counters
            .connections_created
            .fetch_add(1, Ordering::Relaxed);
        Ok(Pooled {
            conn,
            returned: Instant::now(),
            transient,
        })
    }
}

impl<C: AsyncPoolableConnection> managed::Manager for ConnManager<C> {
    type Type = Pooled<C>;
    type Error = Error;

    async fn create(&self) -> Result<Pooled<C>, Error> {
        self.connect().await
    }

    async fn recycle(&self, pooled: &mut Pooled<C>, metrics: &Metrics) -> RecycleResult<Error> {
        let closed = || {
            self.counters
                .connections_closed
                .fetch_add(1, Ordering::Relaxed);
        };
        if self
            .config
            .max_lifetime
            .is_some_and(|lifetime| metrics.age() >= lifetime)
        {
            self.counters.recycled.fetch_add(1, Ordering::Relaxed);
            closed();
            return Err(RecycleError::message("outlived max_lifetime"));
        }
        if self
            .config
            .validation
            .needed_after(pooled.returned.elapsed())
        {
            self.counters.validations.fetch_add(1, Ordering::Relaxed);
            if pooled.conn.batch_execute("SELECT 1").await.is_err() {
                self.counters
                    .validation_failures
                    .fetch_add(1, Ordering::Relaxed);
                closed();
                return Err(RecycleError::message("failed validation"));
            }
        }
        Ok(())
    }
}

//! The native async driver: diesel-async connections opened, set up and
//! pinged without holding a thread, inside the checkout deadline, and the
//! maintenance task.
//!
//! Connect-time setup follows the blocking driver's rules: default and user
//! setup statements, `on_connect`, the server's idle-transaction budget
//! (PostgreSQL and MariaDB), the outer transaction of a rollback-only factory.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use diesel::QueryResult;
use diesel_async::{AsyncConnection, TransactionManager};

use super::{Driver, Lease, Pool, Shared, Slot, Step, Tracked};
use crate::backend::{IdleTimeoutSupport, PoolableConnection, ServerTraits};
use crate::backend_async::AsyncPoolableConnection;
use crate::config::PoolConfig;
use crate::error::{Error, Phase};
use crate::signals::Signals;

/// The async flavour's `on_connect` hook.
pub(crate) type AsyncOnConnect<C> = Arc<
    dyn for<'c> Fn(&'c mut C) -> Pin<Box<dyn Future<Output = QueryResult<()>> + Send + 'c>>
        + Send
        + Sync,
>;

/// The settings of an async factory.
pub(crate) type AsyncPoolConfig<C> = PoolConfig<C, AsyncOnConnect<C>>;

/// Drives diesel-async connections ([`AsyncPoolableConnection`]).
pub(crate) struct Native;

impl<C: AsyncPoolableConnection> Driver<C> for Native {
    type OnConnect = AsyncOnConnect<C>;

    fn depth(&self, conn: &mut C) -> Option<u32> {
        <C as AsyncConnection>::TransactionManager::transaction_manager_status_mut(conn)
            .transaction_depth()
            .ok()
            .map(|depth| depth.map_or(0, std::num::NonZeroU32::get))
    }
}

/// The async I/O a pool needs: open and set up a connection, ping one.
pub(crate) trait NativeDriver<C>: Driver<C> {
    /// Opens and sets up a new connection for `pool`.
    fn connect(
        &self,
        pool: &Shared<C, Self>,
    ) -> impl Future<Output = Result<Box<Tracked<C>>, Error>> + Send;

    /// Whether the connection answers.
    fn ping(&self, conn: &mut C) -> impl Future<Output = bool> + Send;
}

impl<C: AsyncPoolableConnection> NativeDriver<C> for Native {
    async fn connect(&self, pool: &Shared<C, Self>) -> Result<Box<Tracked<C>>, Error> {
        let url = &pool.url;
        let mut conn = C::establish(url.expose())
            .await
            .map_err(|error| Error::connect(&url.to_string(), &error, |text| url.scrub(text)))?;
        pool.counters
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
        let config = &pool.config;
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
        Ok(Tracked::new(conn, server, signals, pool.clock.now()))
    }

    async fn ping(&self, conn: &mut C) -> bool {
        conn.batch_execute("SELECT 1").await.is_ok()
    }
}

impl<C: Send + 'static, D: NativeDriver<C>> Slot<C, D> {
    /// Turns the slot into a usable connection without holding a thread:
    /// reuses, validates or replaces an idle one as [`Shared::plan`] says,
    /// opens a new one when needed. Connect and validation end by `deadline`
    /// (the checkout's) or fail with the checkout-timeout error; on any
    /// failure, and if the future is dropped, the slot is given back.
    pub(crate) async fn realize_async(mut self, deadline: Instant) -> Result<Lease<C, D>, Error> {
        if self.next() == Step::Ready {
            return Ok(self.into_lease());
        }
        let shared = Arc::clone(&self.shared);
        let left = deadline.saturating_duration_since(shared.clock.now());
        let io = async move {
            loop {
                match self.next() {
                    Step::Ready => return Ok(self.into_lease()),
                    Step::Ping => {
                        let (driver, conn) = self.ping_parts();
                        let alive = driver.ping(conn).await;
                        self.pinged(alive);
                    }
                    Step::Connect => {
                        let tracked = self.shared().driver.connect(self.shared()).await?;
                        self.opened(tracked);
                    }
                }
            }
        };
        match tokio::time::timeout(left, io).await {
            Ok(result) => result,
            Err(_) => Err(shared.timeout()),
        }
    }
}

impl<C: Send + 'static, D: NativeDriver<C>> Pool<C, D> {
    /// Checks a connection out: waits for a slot and realises it, the whole
    /// checkout bounded by one deadline.
    pub(crate) async fn checkout_async(&self) -> Result<Lease<C, D>, Error> {
        let deadline = self.deadline();
        let slot = self.acquire_slot_async(deadline).await?;
        slot.realize_async(deadline).await
    }

    /// Opens connections until `count` are idle, failing on the first error.
    pub(crate) async fn fill_async(&self, count: usize) -> Result<(), Error> {
        while let Some(slot) = self.reserve_for_fill(count) {
            let tracked = self.shared.driver.connect(&self.shared).await?;
            slot.into_idle(tracked);
        }
        Ok(())
    }

    /// One round of maintenance: closes what is past its time, tops up
    /// `min_idle`.
    pub(crate) async fn maintain_async(&self) {
        self.shared.close_expired_idle();
        if let Err(error) = self.fill_async(self.shared.config.min_idle).await {
            tracing::debug!(%error, "could not top up min_idle connections");
        }
    }

    /// Starts (once, on the current tokio runtime, if there is one) the task
    /// that runs [`maintain_async`](Self::maintain_async). It holds only a
    /// weak reference and ends with the pool. A diesel-async connection lives
    /// on the runtime that opened it, so the task runs where the pool is used.
    pub(crate) fn start_maintenance_task(&self)
    where
        D: NativeDriver<C>,
    {
        let Some(interval) = self.shared.maintenance_interval() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        self.shared.maintenance.call_once(|| {
            let weak = Arc::downgrade(&self.shared);
            tokio::spawn(async move {
                loop {
                    let Some(shared) = weak.upgrade() else { return };
                    Pool { shared }.maintain_async().await;
                    tokio::time::sleep(interval).await;
                }
            });
        });
    }
}

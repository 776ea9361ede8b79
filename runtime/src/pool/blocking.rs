//! The blocking driver: diesel connections opened, set up and pinged on the
//! caller's thread, and the maintenance thread.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, TransactionManager};

use super::{Driver, Lease, Pool, Shared, Slot, Step, Tracked};
use crate::backend::{PoolableConnection, ServerTraits};
use crate::config::OnConnect;
use crate::error::{Error, Phase};
use crate::signals::Signals;

/// Drives diesel's blocking connections ([`PoolableConnection`]).
pub(crate) struct Blocking;

impl<C: PoolableConnection> Driver<C> for Blocking {
    type OnConnect = OnConnect<C>;

    #[inline]
    fn depth(&self, conn: &mut C) -> Option<u32> {
        <AnsiTransactionManager as TransactionManager<C>>::transaction_manager_status_mut(conn)
            .transaction_depth()
            .ok()
            .map(|depth| depth.map_or(0, std::num::NonZeroU32::get))
    }
}

/// The blocking I/O a pool needs: open and set up a connection, ping one.
pub(crate) trait BlockingDriver<C>: Driver<C> {
    /// Opens and sets up a new connection for `pool`.
    fn connect(&self, pool: &Shared<C, Self>) -> Result<Box<Tracked<C>>, Error>;

    /// Whether the connection answers.
    fn ping(&self, conn: &mut C) -> bool;
}

impl<C: PoolableConnection> BlockingDriver<C> for Blocking {
    fn connect(&self, pool: &Shared<C, Self>) -> Result<Box<Tracked<C>>, Error> {
        let url = &pool.url;
        let config = &pool.config;
        let mut conn = C::establish(url.expose())
            .map_err(|error| Error::connect(&url.to_string(), &error, |t| url.scrub(t)))?;
        pool.counters
            .connections_created
            .fetch_add(1, Ordering::Relaxed);
        let setup_failed = |error: diesel::result::Error| {
            Error::query(
                Phase::Setup,
                format!(
                    "a setup statement failed on a new connection to {url}; fix the statement given to `setup_sql` or `on_connect`"
                ),
                error,
            )
        };
        for sql in &config.setup_sql {
            conn.batch_execute(sql).map_err(setup_failed)?;
        }
        if let Some(on_connect) = &config.on_connect {
            on_connect(&mut conn).map_err(setup_failed)?;
        }
        // A rollback-only factory's outer transaction idles between units for
        // the factory's whole life: the server must never be given a budget
        // that ends it (nor may units override one), so its traits stay unknown.
        let server = if config.server_budget && !config.rollback_only {
            conn.probe_server().map_err(setup_failed)?
        } else {
            ServerTraits::default()
        };
        if let (Some(budget), true) = (config.hold_budget, server.idle_transaction_timeout) {
            if let Some(sql) = C::budget_setup_sql(budget) {
                conn.batch_execute(&sql).map_err(setup_failed)?;
            }
        }
        if config.rollback_only {
            conn.begin_test_transaction().map_err(setup_failed)?;
        }
        let (signals, recorder) = Signals::install();
        conn.set_instrumentation(recorder);
        Ok(Tracked::new(conn, server, signals, pool.clock.now()))
    }

    fn ping(&self, conn: &mut C) -> bool {
        conn.ping().is_ok()
    }
}

impl<C, D: BlockingDriver<C>> Slot<C, D> {
    /// Turns the slot into a usable connection on this thread: reuses,
    /// validates or replaces an idle one as [`Shared::plan`] says, opens a new
    /// one when needed. On failure the slot is given back.
    #[inline]
    pub(crate) fn realize(mut self) -> Result<Lease<C, D>, Error> {
        loop {
            match self.next() {
                Step::Ready => return Ok(self.into_lease()),
                Step::Ping => {
                    let (driver, conn) = self.ping_parts();
                    let alive = driver.ping(conn);
                    self.pinged(alive);
                }
                Step::Connect => {
                    let tracked = self.shared().driver.connect(self.shared())?;
                    self.opened(tracked);
                }
            }
        }
    }
}

impl<C: Send + 'static, D: BlockingDriver<C>> Pool<C, D> {
    /// Opens connections until `count` are idle, failing on the first error.
    pub(crate) fn fill(&self, count: usize) -> Result<(), Error> {
        while let Some(slot) = self.reserve_for_fill(count) {
            let tracked = self.shared.driver.connect(&self.shared)?;
            slot.into_idle(tracked);
        }
        Ok(())
    }

    /// One round of maintenance: closes what is past its time, tops up
    /// `min_idle`.
    pub(crate) fn maintain(&self) {
        self.shared.close_expired_idle();
        if let Err(error) = self.fill(self.shared.config.min_idle) {
            tracing::debug!(%error, "could not top up min_idle connections");
        }
    }

    /// Starts (once) the thread that runs [`maintain`](Self::maintain). It
    /// holds only a weak reference and ends with the pool.
    pub(crate) fn start_maintenance_thread(&self) {
        let Some(interval) = self.shared.maintenance_interval() else {
            return;
        };
        self.shared.maintenance.call_once(|| {
            let weak = Arc::downgrade(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("dbscope-pool-maintenance".into())
                .spawn(move || maintain_until_dropped(&weak, interval));
            if let Err(error) = spawned {
                tracing::warn!(%error, "could not start the pool maintenance thread; idle connections will only be recycled at checkout");
            }
        });
    }
}

fn maintain_until_dropped<C: Send + 'static, D: BlockingDriver<C>>(
    weak: &Weak<Shared<C, D>>,
    interval: Duration,
) {
    loop {
        std::thread::sleep(interval);
        let Some(shared) = weak.upgrade() else {
            return;
        };
        Pool { shared }.maintain();
    }
}

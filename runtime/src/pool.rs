//! The connection pool under a session factory.
//!
//! A checkout is two steps. First a *slot* is reserved: an idle connection, or
//! the right to open a new one while fewer than `max_size` exist. Reserving
//! waits (blocking or async) for a connection to come back, bounded by the
//! checkout timeout, and holds no lock while it waits. Then the slot is
//! *realised* into a [`Lease`]: an expired connection is closed and replaced,
//! a connection idle longer than the validation window is pinged (and replaced
//! if dead), a new one is opened and set up. Realising does blocking I/O, so
//! the async flavour does it off the executor.
//!
//! A lease goes back on drop. A connection whose transaction state is not
//! clean (open, or broken) is closed, never pooled, and so is one that lost its
//! connection or outlived `max_lifetime`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use event_listener::{Event, Listener};
use parking_lot::Mutex;

use crate::backend::{PoolableConnection, ServerTraits};
use crate::config::PoolConfig;
use crate::error::{Error, Phase};
use crate::redact::RedactedUrl;
use crate::signals::Signals;
use crate::stats::{Counters, PoolStats};

/// Longest a waiter sleeps before it looks at the pool again on its own, so a
/// wake-up lost to a cancelled waiter costs at most this much.
const WAKE_INTERVAL: Duration = Duration::from_millis(100);

static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

/// A pooled connection with the facts the pool keeps about it.
pub(crate) struct Tracked<C> {
    pub(crate) conn: C,
    created: Instant,
    last_used: Instant,
    pub(crate) server: ServerTraits,
    pub(crate) signals: Arc<Signals>,
}

pub(crate) struct State<C> {
    /// Idle connections, most recently returned last (taken LIFO, so a busy
    /// pool reuses warm connections and the rest can idle out).
    idle: Vec<Box<Tracked<C>>>,
    /// Connections that exist or are being opened, checked out or idle.
    open: usize,
    /// Threads and tasks waiting for a slot.
    waiting: usize,
}

pub(crate) struct Shared<C> {
    pub(crate) id: u64,
    pub(crate) url: RedactedUrl,
    pub(crate) config: PoolConfig<C>,
    state: Mutex<State<C>>,
    released: Event,
    pub(crate) counters: Counters,
}

/// The pool; cheap to clone.
pub(crate) struct Pool<C> {
    pub(crate) shared: Arc<Shared<C>>,
}

impl<C> Clone for Pool<C> {
    fn clone(&self) -> Self {
        Pool {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Who asks for a slot, for fairness between callers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// Has not waited: yields to callers that are waiting.
    New,
    /// Waited before and is not counted as waiting now.
    Queued,
    /// Counted as waiting, just woken: leaves the count as it asks.
    Woken,
}

impl Caller {
    /// What a caller is once a failed `try_slot` took it out of the count.
    fn out_of_queue(self) -> Self {
        match self {
            Caller::Woken => Caller::Queued,
            other => other,
        }
    }
}

enum Grant<C> {
    Idle(Box<Tracked<C>>),
    Create,
}

/// A reserved place in the pool, not yet a usable connection.
pub(crate) struct Slot<C: PoolableConnection> {
    shared: Arc<Shared<C>>,
    grant: Option<Grant<C>>,
}

/// A checked-out connection; goes back to the pool (or is closed) on drop.
pub(crate) struct Lease<C: PoolableConnection> {
    shared: Arc<Shared<C>>,
    tracked: Option<Box<Tracked<C>>>,
    discard: bool,
    /// When the connection was checked out.
    checked_out: Instant,
}

impl<C: PoolableConnection> Pool<C> {
    pub(crate) fn new(url: RedactedUrl, config: PoolConfig<C>) -> Self {
        let shared = Arc::new(Shared {
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            url,
            config,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                waiting: 0,
            }),
            released: Event::new(),
            counters: Counters::default(),
        });
        let pool = Pool { shared };
        pool.start_maintenance();
        pool
    }

    /// Opens connections until `count` are idle, failing on the first error.
    pub(crate) fn fill(&self, count: usize) -> Result<(), Error> {
        let count = count.min(self.shared.config.max_size);
        loop {
            {
                let mut state = self.shared.state.lock();
                if state.idle.len() >= count || state.open >= self.shared.config.max_size {
                    return Ok(());
                }
                state.open += 1;
            }
            match self.shared.connect() {
                Ok(tracked) => {
                    self.shared.state.lock().idle.insert(0, tracked);
                    self.shared.released.notify_additional(1);
                }
                Err(error) => {
                    self.shared.release_slot();
                    return Err(error);
                }
            }
        }
    }

    /// Reserves a slot, blocking the thread until `deadline`.
    pub(crate) fn acquire_slot_blocking(&self, deadline: Instant) -> Result<Slot<C>, Error> {
        let mut caller = Caller::New;
        loop {
            if let Some(slot) = self.try_slot(caller) {
                return Ok(slot);
            }
            caller = caller.out_of_queue();
            let listener = self.shared.released.listen();
            if let Some(slot) = self.try_slot(caller) {
                return Ok(slot);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.timeout());
            }
            self.shared.state.lock().waiting += 1;
            let _ = listener.wait_deadline(deadline.min(now + WAKE_INTERVAL));
            caller = Caller::Woken;
        }
    }

    /// Reserves a slot, waiting asynchronously until `deadline`. Dropping the
    /// future at any point holds nothing.
    #[cfg(feature = "tokio")]
    pub(crate) async fn acquire_slot_async(&self, deadline: Instant) -> Result<Slot<C>, Error> {
        /// Takes a cancelled waiter out of the count.
        struct Waiting<'a, C> {
            shared: &'a Shared<C>,
            counted: bool,
        }
        impl<C> Drop for Waiting<'_, C> {
            fn drop(&mut self) {
                if self.counted {
                    self.shared.state.lock().waiting -= 1;
                }
            }
        }
        let mut caller = Caller::New;
        loop {
            if let Some(slot) = self.try_slot(caller) {
                return Ok(slot);
            }
            caller = caller.out_of_queue();
            let listener = self.shared.released.listen();
            if let Some(slot) = self.try_slot(caller) {
                return Ok(slot);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.timeout());
            }
            self.shared.state.lock().waiting += 1;
            let mut waiting = Waiting {
                shared: &self.shared,
                counted: true,
            };
            let wake_at = tokio::time::Instant::from_std(deadline.min(now + WAKE_INTERVAL));
            let _ = tokio::time::timeout_at(wake_at, listener).await;
            // Still counted: the next `try_slot` leaves the queue under its lock.
            waiting.counted = false;
            caller = Caller::Woken;
        }
    }

    /// The timeout error; the wait began one checkout timeout before now.
    fn timeout(&self) -> Error {
        self.shared
            .counters
            .checkout_timeouts
            .fetch_add(1, Ordering::Relaxed);
        let in_use = self.shared.counters.in_use.load(Ordering::Relaxed);
        Error::checkout_timeout(
            self.shared.config.checkout_timeout,
            self.shared.config.max_size,
            in_use,
        )
    }

    /// Reserves a slot if one is free. A new caller does not take a slot that
    /// waiting callers were woken for: it queues behind them, so a thread that
    /// gives a connection back and asks again at once cannot keep it from those
    /// that waited first.
    fn try_slot(&self, caller: Caller) -> Option<Slot<C>> {
        let mut state = self.shared.state.lock();
        match caller {
            // Leaves the queue under the same lock that takes the slot, so no
            // newcomer slips in between.
            Caller::Woken => state.waiting -= 1,
            Caller::New => {
                let free =
                    state.idle.len() + self.shared.config.max_size.saturating_sub(state.open);
                if free <= state.waiting {
                    return None;
                }
            }
            Caller::Queued => {}
        }
        let grant = if let Some(tracked) = state.idle.pop() {
            Grant::Idle(tracked)
        } else if state.open < self.shared.config.max_size {
            state.open += 1;
            Grant::Create
        } else {
            return None;
        };
        drop(state);
        Some(Slot {
            shared: Arc::clone(&self.shared),
            grant: Some(grant),
        })
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let state = self.shared.state.lock();
        self.shared.counters.snapshot(
            self.shared.config.max_size,
            state.open,
            state.idle.len(),
            state.waiting,
        )
    }

    /// Starts the thread that closes idle and expired connections and keeps
    /// `min_idle` open. It holds only a weak reference and ends with the pool.
    fn start_maintenance(&self) {
        let config = &self.shared.config;
        let periods = [config.idle_timeout, config.max_lifetime];
        let shortest = periods.iter().flatten().min().copied();
        if shortest.is_none() && config.min_idle == 0 {
            return;
        }
        let interval = shortest
            .map_or(Duration::from_secs(30), |d| d / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(30));
        let weak = Arc::downgrade(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("dbscope-pool-maintenance".into())
            .spawn(move || maintain(&weak, interval));
        if let Err(error) = spawned {
            tracing::warn!(%error, "could not start the pool maintenance thread; idle connections will only be recycled at checkout");
        }
    }
}

fn maintain<C: PoolableConnection>(weak: &Weak<Shared<C>>, interval: Duration) {
    loop {
        std::thread::sleep(interval);
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let expired = shared.take_expired_idle();
        let closed = expired.len();
        drop(expired);
        if closed > 0 {
            shared
                .counters
                .connections_closed
                .fetch_add(closed, Ordering::Relaxed);
        }
        let pool = Pool { shared };
        if let Err(error) = pool.fill(pool.shared.config.min_idle) {
            tracing::debug!(%error, "could not top up min_idle connections");
        }
    }
}

impl<C: PoolableConnection> Shared<C> {
    /// Opens and sets up a new connection.
    fn connect(&self) -> Result<Box<Tracked<C>>, Error> {
        let mut conn = C::establish(self.url.expose()).map_err(|error| {
            Error::connect(&self.url.to_string(), &error, |t| self.url.scrub(t))
        })?;
        self.counters
            .connections_created
            .fetch_add(1, Ordering::Relaxed);
        let setup_failed = |error: diesel::result::Error| {
            Error::query(
                Phase::Setup,
                format!(
                    "a setup statement failed on a new connection to {}; fix the statement given to `setup_sql` or `on_connect`",
                    self.url
                ),
                error,
            )
        };
        for sql in &self.config.setup_sql {
            conn.batch_execute(sql).map_err(setup_failed)?;
        }
        if let Some(on_connect) = &self.config.on_connect {
            on_connect(&mut conn).map_err(setup_failed)?;
        }
        // A rollback-only factory's outer transaction idles between units for
        // the factory's whole life: the server must never be given a budget
        // that ends it (nor may units override one), so its traits stay unknown.
        let server = if self.config.server_budget && !self.config.rollback_only {
            conn.probe_server().map_err(setup_failed)?
        } else {
            ServerTraits::default()
        };
        if let (Some(budget), true) = (self.config.hold_budget, server.idle_transaction_timeout) {
            if let Some(sql) = C::budget_setup_sql(budget) {
                conn.batch_execute(&sql).map_err(setup_failed)?;
            }
        }
        if self.config.rollback_only {
            conn.begin_test_transaction().map_err(setup_failed)?;
        }
        let (signals, recorder) = Signals::install();
        conn.set_instrumentation(recorder);
        let now = Instant::now();
        Ok(Box::new(Tracked {
            conn,
            created: now,
            last_used: now,
            server,
            signals,
        }))
    }

    fn is_expired(&self, tracked: &Tracked<C>, now: Instant) -> bool {
        self.config
            .max_lifetime
            .is_some_and(|limit| now.duration_since(tracked.created) >= limit)
    }

    /// Removes idle connections past `idle_timeout` (keeping `min_idle`) or
    /// past `max_lifetime`; the caller drops them outside the lock.
    fn take_expired_idle(&self) -> Vec<Box<Tracked<C>>> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let mut keep_idle = state.idle.len();
        let mut expired = Vec::new();
        let mut index = 0;
        while index < state.idle.len() {
            let tracked = &state.idle[index];
            let aged = self.is_expired(tracked, now);
            let idle_too_long = keep_idle > self.config.min_idle
                && self
                    .config
                    .idle_timeout
                    .is_some_and(|limit| now.duration_since(tracked.last_used) >= limit);
            if aged || idle_too_long {
                if aged {
                    self.counters.recycled.fetch_add(1, Ordering::Relaxed);
                }
                expired.push(state.idle.remove(index));
                keep_idle -= 1;
                state.open -= 1;
            } else {
                index += 1;
            }
        }
        drop(state);
        if !expired.is_empty() {
            self.released.notify_additional(expired.len());
        }
        expired
    }

    /// Gives up a slot whose connection was closed or never opened.
    fn release_slot(&self) {
        self.state.lock().open -= 1;
        self.released.notify_additional(1);
    }

    fn close(&self, tracked: Box<Tracked<C>>) {
        drop(tracked);
        self.counters
            .connections_closed
            .fetch_add(1, Ordering::Relaxed);
        self.release_slot();
    }

    /// Whether the connection is at rest: no transaction beyond the base depth,
    /// no broken transaction manager, connection not lost.
    fn is_clean(&self, tracked: &mut Tracked<C>) -> bool {
        if tracked.signals.is_lost() {
            return false;
        }
        let status =
            <AnsiTransactionManager as TransactionManager<C>>::transaction_manager_status_mut(
                &mut tracked.conn,
            );
        match status.transaction_depth() {
            Ok(depth) => depth.map_or(0, |d| d.get()) == self.config.base_depth(),
            Err(_) => false,
        }
    }

    fn check_in(&self, mut tracked: Box<Tracked<C>>, discard: bool, now: Instant) {
        self.counters.in_use.fetch_sub(1, Ordering::Relaxed);
        if discard || !self.is_clean(&mut tracked) || self.is_expired(&tracked, now) {
            self.close_returned(tracked, discard);
            return;
        }
        tracked.last_used = now;
        self.state.lock().idle.push(tracked);
        self.released.notify_additional(1);
    }

    /// Closes a connection that came back discarded, dirty or too old.
    #[cold]
    #[inline(never)]
    fn close_returned(&self, mut tracked: Box<Tracked<C>>, discard: bool) {
        if discard {
            // The user's choice (a failed rollback, a lost connection): no warning.
        } else if self.is_clean(&mut tracked) {
            self.counters.recycled.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.closed_dirty.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                pool = %self.url,
                "a connection came back with its transaction open or broken; it was closed, not pooled"
            );
        }
        self.close(tracked);
    }
}

impl<C: PoolableConnection> Slot<C> {
    /// Turns the slot into a usable connection: recycles an expired one,
    /// validates one idle past the window, opens a new one when needed.
    pub(crate) fn realize(mut self) -> Result<Lease<C>, Error> {
        let shared = Arc::clone(&self.shared);
        let Some(grant) = self.grant.take() else {
            return Err(Error::new(Phase::Connect, "slot already used"));
        };
        let now = Instant::now();
        let reused = match grant {
            Grant::Idle(tracked) if shared.is_expired(&tracked, now) => {
                shared.counters.recycled.fetch_add(1, Ordering::Relaxed);
                shared
                    .counters
                    .connections_closed
                    .fetch_add(1, Ordering::Relaxed);
                drop(tracked);
                None
            }
            Grant::Idle(mut tracked) => {
                let idle = now.duration_since(tracked.last_used);
                if shared.config.validation.needed_after(idle) {
                    shared.counters.validations.fetch_add(1, Ordering::Relaxed);
                    if tracked.conn.ping().is_ok() {
                        Some(tracked)
                    } else {
                        shared
                            .counters
                            .validation_failures
                            .fetch_add(1, Ordering::Relaxed);
                        shared
                            .counters
                            .connections_closed
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(pool = %shared.url, "a stale connection failed validation; opening a new one");
                        drop(tracked);
                        None
                    }
                } else {
                    Some(tracked)
                }
            }
            Grant::Create => None,
        };
        let tracked = match reused {
            Some(tracked) => tracked,
            None => match shared.connect() {
                Ok(tracked) => tracked,
                Err(error) => {
                    shared.release_slot();
                    return Err(error);
                }
            },
        };
        shared.counters.checkouts.fetch_add(1, Ordering::Relaxed);
        let in_use = shared.counters.in_use.fetch_add(1, Ordering::Relaxed) + 1;
        shared
            .counters
            .max_in_use
            .fetch_max(in_use, Ordering::Relaxed);
        Ok(Lease {
            shared,
            tracked: Some(tracked),
            discard: false,
            checked_out: now,
        })
    }
}

impl<C: PoolableConnection> Drop for Slot<C> {
    fn drop(&mut self) {
        match self.grant.take() {
            Some(Grant::Idle(tracked)) => {
                // Never used: back where it was, keeping its idle time.
                self.shared.state.lock().idle.push(tracked);
                self.shared.released.notify_additional(1);
            }
            Some(Grant::Create) => self.shared.release_slot(),
            None => {}
        }
    }
}

impl<C: PoolableConnection> Lease<C> {
    pub(crate) fn conn(&mut self) -> &mut C {
        &mut self.tracked_mut().conn
    }

    pub(crate) fn conn_ref(&self) -> &C {
        &self.tracked_ref().conn
    }

    fn tracked_mut(&mut self) -> &mut Tracked<C> {
        self.tracked
            .as_mut()
            .unwrap_or_else(|| unreachable!("a lease holds its connection until dropped"))
    }

    fn tracked_ref(&self) -> &Tracked<C> {
        self.tracked
            .as_ref()
            .unwrap_or_else(|| unreachable!("a lease holds its connection until dropped"))
    }

    pub(crate) fn server(&self) -> ServerTraits {
        self.tracked_ref().server
    }

    pub(crate) fn signals(&self) -> &Signals {
        &self.tracked_ref().signals
    }

    pub(crate) fn shared(&self) -> &Shared<C> {
        &self.shared
    }

    /// When the connection was checked out.
    pub(crate) fn checked_out(&self) -> Instant {
        self.checked_out
    }

    /// How long the connection has been held at `now`.
    #[inline]
    pub(crate) fn held_at(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.checked_out)
    }

    /// Gives the connection back (or closes it), the user having read the
    /// clock at `now` and found it `held`; dropping the lease afterwards does
    /// nothing.
    #[inline]
    pub(crate) fn release(&mut self, now: Instant, held: Duration) {
        if let Some(tracked) = self.tracked.take() {
            self.shared.counters.held_nanos.fetch_add(
                u64::try_from(held.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            self.shared.check_in(tracked, self.discard, now);
        }
    }

    /// Closes the connection when the lease is dropped instead of pooling it.
    pub(crate) fn discard(&mut self) {
        self.discard = true;
    }
}

impl<C: PoolableConnection> Drop for Lease<C> {
    fn drop(&mut self) {
        if self.tracked.is_some() {
            let now = Instant::now();
            self.release(now, self.held_at(now));
        }
    }
}

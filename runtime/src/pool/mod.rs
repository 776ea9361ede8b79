//! The connection pool under both session factories, the blocking
//! [`SessionFactory`](crate::SessionFactory) and the native async
//! `AsyncSessionFactory`: one queue, one set of rules, two thin drivers.
//!
//! A checkout is two steps. First a *slot* is reserved: an idle connection, or
//! the right to open a new one while fewer than `max_size` exist. Reserving
//! waits (a blocked thread or a pending future, woken by the pool when a
//! connection comes back) until the checkout deadline, first come first
//! served, and holds no lock while it waits. Then the slot is *realised* into
//! a [`Lease`]: [`Shared::plan`] decides whether an idle connection is reused
//! as it is, validated first (idle past the window) or replaced (older than
//! `max_lifetime`), and the driver does the I/O that decision asks for (open
//! and set up, or ping).
//!
//! The I/O is the only part that differs between the flavours: [`Blocking`]
//! drives diesel connections on the caller's thread (`blocking.rs`), `Native`
//! drives diesel-async connections inside the checkout deadline (`native.rs`).
//! Each says which transaction manager to ask whether a connection came back
//! at rest ([`Driver::depth`]).
//!
//! A lease goes back on drop. A connection whose transaction state is not
//! clean (open, or broken) is closed, never pooled, and so is one that lost its
//! connection or outlived `max_lifetime`. Maintenance (idle timeout, lifetime,
//! `min_idle`) is one routine: [`Shared::close_expired_idle`] and
//! [`Pool::reserve_for_fill`], run by a thread or a tokio task.

mod blocking;
mod clock;
mod lease;
#[cfg(feature = "async")]
mod native;
// The tests poll async waiters by hand: they need the `tokio` feature.
#[cfg(all(test, feature = "tokio"))]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use event_listener::{Event, Listener};
use parking_lot::Mutex;

use crate::backend::ServerTraits;
use crate::config::PoolConfig;
use crate::error::Error;
use crate::redact::RedactedUrl;
use crate::signals::Signals;
use crate::stats::{Counters, PoolStats};

pub(crate) use blocking::Blocking;
pub(crate) use clock::Clock;
#[cfg(feature = "async")]
pub(crate) use native::{AsyncPoolConfig, Native};

static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

/// What sets one kind of pooled connection apart, beside the I/O of opening
/// and pinging one ([`blocking::BlockingDriver`], `native::NativeDriver`).
pub(crate) trait Driver<C>: Send + Sync + Sized + 'static {
    /// The `on_connect` hook of this flavour's builder.
    type OnConnect: Send + Sync + 'static;

    /// The connection's transaction depth as its transaction manager sees it;
    /// `None` when the manager is broken. Check-in compares it with the depth
    /// of a connection at rest.
    fn depth(&self, conn: &mut C) -> Option<u32>;
}

/// A pooled connection with the facts the pool keeps about it.
pub(crate) struct Tracked<C> {
    pub(crate) conn: C,
    created: Instant,
    last_used: Instant,
    pub(crate) server: ServerTraits,
    pub(crate) signals: Arc<Signals>,
}

impl<C> Tracked<C> {
    /// A connection opened at `now`.
    pub(crate) fn new(
        conn: C,
        server: ServerTraits,
        signals: Arc<Signals>,
        now: Instant,
    ) -> Box<Self> {
        Box::new(Tracked {
            conn,
            created: now,
            last_used: now,
            server,
            signals,
        })
    }
}

struct State<C> {
    /// Idle connections, most recently returned last (taken LIFO, so a busy
    /// pool reuses warm connections and the rest can idle out).
    idle: Vec<Box<Tracked<C>>>,
    /// Connections that exist or are being opened, checked out or idle.
    open: usize,
    /// Threads and tasks waiting for a slot.
    waiting: usize,
}

pub(crate) struct Shared<C, D: Driver<C>> {
    pub(crate) id: u64,
    pub(crate) url: RedactedUrl,
    pub(crate) config: PoolConfig<C, D::OnConnect>,
    state: Mutex<State<C>>,
    released: Event,
    pub(crate) counters: Counters,
    pub(crate) clock: Clock,
    pub(crate) driver: D,
    /// Starts the maintenance thread or task once.
    maintenance: Once,
}

/// The pool; cheap to clone.
pub(crate) struct Pool<C, D: Driver<C> = Blocking> {
    pub(crate) shared: Arc<Shared<C, D>>,
}

impl<C, D: Driver<C>> Clone for Pool<C, D> {
    fn clone(&self) -> Self {
        Pool {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The pool's shared state, for the factories' settings and counters.
impl<C, D: Driver<C>> std::ops::Deref for Pool<C, D> {
    type Target = Arc<Shared<C, D>>;

    fn deref(&self) -> &Arc<Shared<C, D>> {
        &self.shared
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

/// What to do with an idle connection about to be handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Hand it out as it is.
    Reuse,
    /// Idle past the validation window: ping it first.
    Validate,
    /// Older than `max_lifetime`: close it and open a new one.
    Recycle,
}

/// What a driver must do next to turn a slot into a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The connection is ready: [`Slot::into_lease`].
    Ready,
    /// Ping [`Slot::ping_parts`], then report with [`Slot::pinged`].
    Ping,
    /// Open a connection, then hand it over with [`Slot::opened`].
    Connect,
}

/// What a slot holds.
enum Grant<C> {
    /// An idle connection, not looked at yet.
    Idle(Box<Tracked<C>>),
    /// An idle connection being pinged: closed if the slot is dropped.
    Pinging(Box<Tracked<C>>),
    /// A connection ready to hand out.
    Ready(Box<Tracked<C>>),
    /// The right to open a connection.
    Create,
    /// Nothing any more (handed out).
    Spent,
}

/// A reserved place in the pool, not yet a usable connection. Dropped at any
/// step (a failed connect, a cancelled future), it gives back what it holds.
pub(crate) struct Slot<C, D: Driver<C> = Blocking> {
    shared: Arc<Shared<C, D>>,
    grant: Grant<C>,
    /// When the slot was taken: the time its plan and its lease go by.
    now: Instant,
}

/// A checked-out connection; goes back to the pool (or is closed) on drop.
pub(crate) struct Lease<C, D: Driver<C> = Blocking> {
    shared: Arc<Shared<C, D>>,
    tracked: Option<Box<Tracked<C>>>,
    discard: bool,
    /// When the connection was checked out.
    checked_out: Instant,
}

impl<C: Send + 'static, D: Driver<C>> Pool<C, D> {
    /// A pool opening no connection yet; maintenance is started by the driver.
    pub(crate) fn new(
        url: RedactedUrl,
        config: PoolConfig<C, D::OnConnect>,
        driver: D,
        clock: Clock,
    ) -> Self {
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
            clock,
            driver,
            maintenance: Once::new(),
        });
        Pool { shared }
    }

    /// The deadline of a checkout starting now.
    #[inline]
    pub(crate) fn deadline(&self) -> Instant {
        self.shared.clock.now() + self.shared.config.checkout_timeout
    }

    /// Reserves a slot, blocking the thread until `deadline`.
    pub(crate) fn acquire_slot_blocking(&self, deadline: Instant) -> Result<Slot<C, D>, Error> {
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
            let now = self.shared.clock.now();
            if now >= deadline {
                return Err(self.shared.timeout());
            }
            self.shared.state.lock().waiting += 1;
            let _ = listener.wait_timeout(self.shared.clock.wait_for(now, deadline));
            caller = Caller::Woken;
        }
    }

    /// Reserves a slot, waiting asynchronously (no thread held) until
    /// `deadline`. Dropping the future at any point holds nothing.
    #[cfg(feature = "tokio")]
    pub(crate) async fn acquire_slot_async(&self, deadline: Instant) -> Result<Slot<C, D>, Error> {
        /// Takes a cancelled waiter out of the count.
        struct Waiting<'a, C, D: Driver<C>> {
            shared: &'a Shared<C, D>,
            counted: bool,
        }
        impl<C, D: Driver<C>> Drop for Waiting<'_, C, D> {
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
            let now = self.shared.clock.now();
            if now >= deadline {
                return Err(self.shared.timeout());
            }
            self.shared.state.lock().waiting += 1;
            let mut waiting = Waiting {
                shared: &self.shared,
                counted: true,
            };
            let _ = tokio::time::timeout(self.shared.clock.wait_for(now, deadline), listener).await;
            // Still counted: the next `try_slot` leaves the queue under its lock.
            waiting.counted = false;
            caller = Caller::Woken;
        }
    }

    /// Reserves a slot if one is free. A new caller does not take a slot that
    /// waiting callers were woken for: it queues behind them, so a caller that
    /// gives a connection back and asks again at once cannot keep it from those
    /// that waited first.
    fn try_slot(&self, caller: Caller) -> Option<Slot<C, D>> {
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
            grant,
            now: self.shared.clock.now(),
        })
    }

    /// Reserves the right to open one more idle connection while fewer than
    /// `count` are idle and the pool has room: how `build` and `min_idle`
    /// maintenance decide how many to open. Hand the connection over with
    /// [`Slot::into_idle`].
    pub(crate) fn reserve_for_fill(&self, count: usize) -> Option<Slot<C, D>> {
        let count = count.min(self.shared.config.max_size);
        let mut state = self.shared.state.lock();
        if state.idle.len() >= count || state.open >= self.shared.config.max_size {
            return None;
        }
        state.open += 1;
        drop(state);
        Some(Slot {
            shared: Arc::clone(&self.shared),
            grant: Grant::Create,
            now: self.shared.clock.now(),
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
}

impl<C, D: Driver<C>> Shared<C, D> {
    /// The timeout error of a checkout that waited one checkout timeout.
    pub(crate) fn timeout(&self) -> Error {
        self.counters
            .checkout_timeouts
            .fetch_add(1, Ordering::Relaxed);
        let in_use = self.counters.in_use.load(Ordering::Relaxed);
        Error::checkout_timeout(self.config.checkout_timeout, self.config.max_size, in_use)
    }

    /// What to do with an idle connection handed out at `now`: the one rule
    /// both drivers follow.
    #[inline]
    pub(crate) fn plan(&self, tracked: &Tracked<C>, now: Instant) -> Plan {
        if self.is_expired(tracked, now) {
            Plan::Recycle
        } else if self
            .config
            .validation
            .needed_after(now.saturating_duration_since(tracked.last_used))
        {
            Plan::Validate
        } else {
            Plan::Reuse
        }
    }

    fn is_expired(&self, tracked: &Tracked<C>, now: Instant) -> bool {
        self.config
            .max_lifetime
            .is_some_and(|limit| now.saturating_duration_since(tracked.created) >= limit)
    }

    /// How often maintenance runs; `None` when there is nothing to maintain.
    pub(crate) fn maintenance_interval(&self) -> Option<Duration> {
        let config = &self.config;
        let shortest = [config.idle_timeout, config.max_lifetime]
            .into_iter()
            .flatten()
            .min();
        if shortest.is_none() && config.min_idle == 0 {
            return None;
        }
        Some(
            shortest
                .map_or(Duration::from_secs(30), |d| d / 4)
                .clamp(Duration::from_millis(50), Duration::from_secs(30)),
        )
    }

    /// Closes idle connections past `idle_timeout` (keeping `min_idle`) or
    /// past `max_lifetime`; returns how many.
    pub(crate) fn close_expired_idle(&self) -> usize {
        let now = self.clock.now();
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
                    .is_some_and(|limit| now.saturating_duration_since(tracked.last_used) >= limit);
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
        let closed = expired.len();
        drop(expired);
        if closed > 0 {
            self.counters
                .connections_closed
                .fetch_add(closed, Ordering::Relaxed);
            self.released.notify_additional(closed);
        }
        closed
    }

    /// Gives up a slot whose connection was closed or never opened.
    fn release_slot(&self) {
        self.state.lock().open -= 1;
        self.released.notify_additional(1);
    }

    /// Puts a connection (back) among the idle ones.
    fn make_idle(&self, tracked: Box<Tracked<C>>) {
        self.state.lock().idle.push(tracked);
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
        !tracked.signals.is_lost()
            && self.driver.depth(&mut tracked.conn) == Some(self.config.base_depth())
    }

    fn check_in(&self, mut tracked: Box<Tracked<C>>, discard: bool, now: Instant) {
        self.counters.in_use.fetch_sub(1, Ordering::Relaxed);
        if discard || !self.is_clean(&mut tracked) || self.is_expired(&tracked, now) {
            self.close_returned(tracked, discard);
            return;
        }
        tracked.last_used = now;
        self.make_idle(tracked);
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

    /// Wakes every waiter, as the safety-net interval would: what a test does
    /// after moving its clock.
    #[cfg(all(test, feature = "tokio"))]
    pub(crate) fn wake_all(&self) {
        self.released.notify(usize::MAX);
    }
}

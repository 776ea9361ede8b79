//! Realising a slot into a lease, step by step (the drivers run the I/O each
//! step asks for), and giving a lease back.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Driver, Grant, Lease, Plan, Shared, Slot, Step, Tracked};
use crate::backend::ServerTraits;
use crate::signals::Signals;

impl<C, D: Driver<C>> Slot<C, D> {
    /// What the driver must do next. Applies [`Shared::plan`] to an idle
    /// connection: one to reuse stays as it is and is handed out by
    /// [`into_lease`](Self::into_lease).
    #[inline]
    pub(crate) fn next(&mut self) -> Step {
        match &self.grant {
            Grant::Idle(tracked) => match self.shared.plan(tracked, self.now) {
                Plan::Reuse => Step::Ready,
                Plan::Validate => self.validate(),
                Plan::Recycle => self.recycle(),
            },
            Grant::Ready(_) => Step::Ready,
            Grant::Pinging(_) => Step::Ping,
            Grant::Create | Grant::Spent => {
                self.grant = Grant::Create;
                Step::Connect
            }
        }
    }

    #[cold]
    fn validate(&mut self) -> Step {
        self.shared
            .counters
            .validations
            .fetch_add(1, Ordering::Relaxed);
        if let Grant::Idle(tracked) = std::mem::replace(&mut self.grant, Grant::Spent) {
            self.grant = Grant::Pinging(tracked);
        }
        Step::Ping
    }

    #[cold]
    fn recycle(&mut self) -> Step {
        let counters = &self.shared.counters;
        counters.recycled.fetch_add(1, Ordering::Relaxed);
        counters.connections_closed.fetch_add(1, Ordering::Relaxed);
        // Dropping the idle connection closes it; the place stays reserved.
        self.grant = Grant::Create;
        Step::Connect
    }

    /// The driver and the connection to ping, after [`Step::Ping`].
    pub(crate) fn ping_parts(&mut self) -> (&D, &mut C) {
        match &mut self.grant {
            Grant::Pinging(tracked) => (&self.shared.driver, &mut tracked.conn),
            _ => unreachable!("`ping_parts` follows `Step::Ping`"),
        }
    }

    /// The ping's answer: a live connection is ready, a dead one is closed
    /// and a new one is to be opened.
    pub(crate) fn pinged(&mut self, alive: bool) {
        let Grant::Pinging(tracked) = std::mem::replace(&mut self.grant, Grant::Spent) else {
            unreachable!("`pinged` follows `Step::Ping`");
        };
        if alive {
            self.grant = Grant::Ready(tracked);
            return;
        }
        let counters = &self.shared.counters;
        counters.validation_failures.fetch_add(1, Ordering::Relaxed);
        counters.connections_closed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(pool = %self.shared.url, "a stale connection failed validation; opening a new one");
        drop(tracked);
        self.grant = Grant::Create;
    }

    /// The connection opened after [`Step::Connect`].
    pub(crate) fn opened(&mut self, tracked: Box<Tracked<C>>) {
        self.grant = Grant::Ready(tracked);
    }

    /// The pool this slot belongs to (for the driver's connect).
    pub(crate) fn shared(&self) -> &Shared<C, D> {
        &self.shared
    }

    /// Hands the ready connection out, after [`Step::Ready`].
    #[inline]
    pub(crate) fn into_lease(mut self) -> Lease<C, D> {
        let (Grant::Ready(tracked) | Grant::Idle(tracked)) =
            std::mem::replace(&mut self.grant, Grant::Spent)
        else {
            unreachable!("`into_lease` follows `Step::Ready`");
        };
        let counters = &self.shared.counters;
        counters.checkouts.fetch_add(1, Ordering::Relaxed);
        let in_use = counters.in_use.fetch_add(1, Ordering::Relaxed) + 1;
        counters.max_in_use.fetch_max(in_use, Ordering::Relaxed);
        Lease {
            shared: Arc::clone(&self.shared),
            tracked: Some(tracked),
            discard: false,
            checked_out: self.now,
        }
    }

    /// Puts a connection opened for [`Pool::reserve_for_fill`] among the idle
    /// ones, behind those idle already (the warm ones are taken first).
    pub(crate) fn into_idle(mut self, tracked: Box<Tracked<C>>) {
        self.grant = Grant::Spent;
        self.shared.state.lock().idle.insert(0, tracked);
        self.shared.released.notify_additional(1);
    }
}

impl<C, D: Driver<C>> Drop for Slot<C, D> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.grant, Grant::Spent) {
            // Never used: back where it was, keeping its idle time.
            Grant::Idle(tracked) | Grant::Ready(tracked) => self.shared.make_idle(tracked),
            // Cut mid-ping: its state is unknown.
            Grant::Pinging(tracked) => self.shared.close(tracked),
            Grant::Create => self.shared.release_slot(),
            Grant::Spent => {}
        }
    }
}

impl<C, D: Driver<C>> Lease<C, D> {
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

    pub(crate) fn shared(&self) -> &Shared<C, D> {
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

impl<C, D: Driver<C>> Drop for Lease<C, D> {
    fn drop(&mut self) {
        if self.tracked.is_some() {
            let now = self.shared.clock.now();
            self.release(now, self.held_at(now));
        }
    }
}

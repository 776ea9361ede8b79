//! The session of a native async unit of work: a checked-out diesel-async
//! connection with a transaction open on it, and the guard that makes
//! cancellation safe.
//!
//! No async rollback can run in `Drop`. So a session dropped while its
//! transaction is open (the unit's future was dropped at an `.await`, or the
//! body panicked) takes its connection out of the pool and closes it: the
//! server sees the connection end and rolls the transaction back. A
//! connection is pooled again only after its `COMMIT` or `ROLLBACK` completed.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use deadpool::managed::Object;

use crate::async_factory::AsyncSessionFactory;
use crate::async_pool::ConnManager;
use crate::backend::{BackendKind, PoolableConnection, ServerTraits};
use crate::backend_async::AsyncPoolableConnection;
use crate::error::{Error, Phase};
use crate::options::UnitOptions;
use crate::transient::{classify, TransientKind};

/// A connection with a transaction open, for the length of one attempt.
pub(crate) struct AsyncSession<'f, C: AsyncPoolableConnection> {
    object: Option<Object<ConnManager<C>>>,
    factory: &'f AsyncSessionFactory<C>,
    /// A transaction is (or may be) open on the connection.
    open: bool,
    opened_at: Instant,
    unit: &'static str,
    budget: Option<Duration>,
    end_sql: Option<&'static str>,
}

impl<'f, C: AsyncPoolableConnection> AsyncSession<'f, C> {
    /// Checks a connection out and begins a transaction with `options`. A
    /// connection found dead at `BEGIN` is closed and the unit starts again
    /// on another one, before any user statement ran.
    pub(crate) async fn begin(
        factory: &'f AsyncSessionFactory<C>,
        options: &UnitOptions,
    ) -> Result<Self, Error> {
        let inner = &factory.inner;
        let kind = <C::Dialect as PoolableConnection>::KIND;
        let budget = options.hold_budget().or(inner.hold_budget);
        // PostgreSQL has the factory's budget from connect time; a unit's own
        // budget is a `SET LOCAL` in the BEGIN batch.
        let server_budget = match (kind, options.hold_budget()) {
            (BackendKind::Postgres, Some(unit)) if Some(unit) != inner.hold_budget => Some(unit),
            _ => None,
        };
        let server = ServerTraits {
            idle_transaction_timeout: kind == BackendKind::Postgres,
        };
        let sql = C::Dialect::begin_sql(options, server_budget, server)?;
        let mut attempts_left = inner.max_size + 1;
        loop {
            let object = factory.checkout_object().await?;
            let counters = &inner.counters;
            counters.checkouts.fetch_add(1, Ordering::Relaxed);
            let in_use = counters.in_use.fetch_add(1, Ordering::Relaxed) + 1;
            counters.max_in_use.fetch_max(in_use, Ordering::Relaxed);
            object.transient.store(false, Ordering::Relaxed);
            let mut session = AsyncSession {
                object: Some(object),
                factory,
                // From here until BEGIN is known to have failed cleanly.
                open: true,
                opened_at: Instant::now(),
                unit: options.name(),
                budget,
                end_sql: C::Dialect::end_sql(options),
            };
            match session.connection().begin_with(sql.clone()).await {
                Ok(()) => return Ok(session),
                Err(error)
                    if classify(&error) == Some(TransientKind::ConnectionLost)
                        && attempts_left > 1 =>
                {
                    attempts_left -= 1;
                    counters.begin_retries.fetch_add(1, Ordering::Relaxed);
                    // Dropped with `open` set: closed, never pooled.
                    drop(session);
                }
                Err(error) => {
                    return Err(Error::query(
                        Phase::Begin,
                        format!("could not begin unit of work `{}`", options.name()),
                        error,
                    ))
                }
            }
        }
    }

    /// The connection, for the unit's body.
    pub(crate) fn connection(&mut self) -> &mut C {
        match &mut self.object {
            Some(object) => &mut object.conn,
            None => unreachable!("the connection is only taken in drop"),
        }
    }

    /// Whether a statement of this attempt failed with a transient error.
    pub(crate) fn saw_transient_error(&self) -> bool {
        self.object
            .as_ref()
            .is_some_and(|object| object.transient.load(Ordering::Relaxed))
    }

    /// Commits. On failure the connection is closed (the server rolled back).
    pub(crate) async fn commit(mut self) -> Result<(), Error> {
        match self.connection().commit().await {
            Ok(()) => {
                self.end().await;
                Ok(())
            }
            Err(error) => Err(Error::query(
                Phase::Commit,
                format!(
                    "commit of unit of work `{}` failed; nothing was committed",
                    self.unit
                ),
                error,
            )),
        }
    }

    /// Rolls back. On failure the connection is closed (the server rolls back
    /// when it sees the connection end).
    pub(crate) async fn rollback(mut self) -> Result<(), Error> {
        match self.connection().rollback().await {
            Ok(()) => {
                self.end().await;
                Ok(())
            }
            Err(error) => Err(Error::query(
                Phase::Rollback,
                format!("rollback of unit of work `{}` failed", self.unit),
                error,
            )),
        }
    }

    /// The transaction is over: undo per-unit connection state, then the
    /// connection may be pooled again.
    async fn end(&mut self) {
        if let Some(sql) = self.end_sql {
            if diesel_async::SimpleAsyncConnection::batch_execute(self.connection(), sql)
                .await
                .is_err()
            {
                return; // `open` stays set: closed in drop.
            }
        }
        self.open = false;
    }
}

impl<C: AsyncPoolableConnection> Drop for AsyncSession<'_, C> {
    fn drop(&mut self) {
        let Some(mut object) = self.object.take() else {
            return;
        };
        let counters = &self.factory.inner.counters;
        let now = Instant::now();
        let held = now.duration_since(self.opened_at);
        if self.open {
            // Mid-transaction (cancelled, panicked, or COMMIT/ROLLBACK failed):
            // never pooled; closing the connection makes the server roll back.
            tracing::debug!(
                unit = self.unit,
                "session ended with its transaction open; closing its connection"
            );
            counters.closed_dirty.fetch_add(1, Ordering::Relaxed);
            counters.connections_closed.fetch_add(1, Ordering::Relaxed);
            drop(Object::take(object));
        } else {
            object.returned = now;
            drop(object);
        }
        counters.in_use.fetch_sub(1, Ordering::Relaxed);
        counters.held_nanos.fetch_add(
            u64::try_from(held.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if let Some(budget) = self.budget {
            if held > budget {
                tracing::warn!(
                    unit = self.unit,
                    held_ms = held.as_millis() as u64,
                    budget_ms = budget.as_millis() as u64,
                    "a session was held longer than its budget: move slow non-database work \
                     (remote calls, sleeps, heavy computation) before or after the unit of work"
                );
            }
        }
    }
}

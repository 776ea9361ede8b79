//! The session of a native async unit of work: a checked-out diesel-async
//! connection with a transaction open on it, and the guard that makes
//! cancellation safe.
//!
//! No async rollback can run in `Drop`. So a session dropped while its
//! transaction is open (the unit's future was dropped at an `.await`, or the
//! body panicked) takes its connection out of the pool and closes it: the
//! server sees the connection end and rolls the transaction back. A
//! connection is pooled again only after its `COMMIT` or `ROLLBACK` completed
//! and the transaction manager is back at rest.
//!
//! The rules are the blocking session's: a body that left nested levels open
//! commits nothing and its connection is closed; a refused `COMMIT` that the
//! server rolled back (serialization failure, deferred constraint) keeps the
//! connection; a lost one closes it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::async_factory::AsyncSessionFactory;
use diesel_async::{AsyncConnection, TransactionManager};

use crate::backend::{unit_server_budget, PoolableConnection};
use crate::backend_async::AsyncPoolableConnection;
use crate::commit_outcome::{
    aborted_transaction_error, failed_statement_aborts_transaction, CommitFailure,
};
use crate::error::{Error, Phase};
use crate::options::UnitOptions;
use crate::pool::{Lease, Native};
use crate::round_trip::{no_reply_to_begin, no_reply_to_commit, no_reply_to_rollback, within};
use crate::session::{nested_levels_error, warn_over_budget, ROLLBACK_AFTER_REFUSED_COMMIT};
use crate::transient::{classify, TransientKind};

/// A connection with a transaction open, for the length of one attempt.
pub(crate) struct AsyncSession<'f, C: AsyncPoolableConnection> {
    lease: Lease<C, Native>,
    factory: &'f AsyncSessionFactory<C>,
    /// A transaction is (or may be) open on the connection.
    open: bool,
    opened_at: Instant,
    unit: &'static str,
    budget: Option<Duration>,
    /// How long `BEGIN`, `COMMIT`, `ROLLBACK` and cleanup statements may wait
    /// for the server's reply: the hold budget, or the checkout timeout when
    /// the budget is off. Past it the connection is closed.
    round_trip_bound: Duration,
    /// The unit's span (current when the session began): records the held time.
    span: tracing::Span,
    /// Statements that undo per-unit connection state when the transaction
    /// ends (SQLite read-only, MariaDB budget override).
    cleanup: [Option<String>; 2],
}

/// The transaction depth a session's connection has at rest, as diesel-async's
/// transaction manager sees it; `None` when the manager is broken.
fn depth<C: AsyncPoolableConnection>(conn: &mut C) -> Option<u32> {
    <C as AsyncConnection>::TransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .ok()
        .map(|depth| depth.map_or(0, std::num::NonZeroU32::get))
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
        let config = &inner.config;
        let budget = options.hold_budget().or(config.hold_budget);
        let round_trip_bound = budget.unwrap_or(config.checkout_timeout);
        let mut attempts_left = config.max_size + 1;
        loop {
            let lease = factory.lease().await?;
            let (server_budget, restore_budget) = unit_server_budget::<C::Dialect>(
                options.hold_budget(),
                config.hold_budget,
                config.server_budget,
                lease.server(),
            );
            // Inside a rollback-only factory's test transaction: a savepoint.
            let sql = match config.rollback_only {
                true => None,
                // An option the backend cannot honour: the connection goes
                // back untouched.
                false => Some(C::Dialect::begin_sql(
                    options,
                    server_budget,
                    lease.server(),
                )?),
            };
            let counters = &inner.counters;
            lease.signals().begin_attempt();
            let mut session = AsyncSession {
                lease,
                factory,
                // From here until BEGIN is known to have failed cleanly.
                open: true,
                opened_at: Instant::now(),
                unit: options.name(),
                budget,
                round_trip_bound,
                span: tracing::Span::current(),
                cleanup: [
                    C::Dialect::end_sql(options).map(str::to_owned),
                    restore_budget,
                ],
            };
            if sql.is_none() {
                session.cleanup = [None, None];
            }
            let begin = async {
                match sql {
                    Some(sql) => session.connection().begin_with(sql).await,
                    None => {
                        <C as AsyncConnection>::TransactionManager::begin_transaction(
                            session.connection(),
                        )
                        .await
                    }
                }
            };
            let Some(begun) = within(round_trip_bound, begin).await else {
                // Dropped with `open` set: closed, never pooled.
                return Err(no_reply_to_begin(options.name(), round_trip_bound));
            };
            match begun {
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
        self.lease.conn()
    }

    /// Whether a statement of this attempt failed with a transient error.
    pub(crate) fn saw_transient_error(&self) -> bool {
        self.lease.signals().saw_transient()
    }

    /// The depth of this session's own transaction (or savepoint).
    fn own_depth(&self) -> u32 {
        self.factory.inner.config.base_depth() + 1
    }

    /// Commits. A body that left nested levels open commits nothing (and the
    /// connection is closed); a refused commit rolls back and keeps the
    /// connection unless it was lost or the rollback failed.
    pub(crate) async fn commit(mut self) -> Result<(), Error> {
        let own = self.own_depth();
        match depth(self.connection()) {
            Some(depth) if depth > own => {
                // `open` stays set: closed in drop, never pooled.
                return Err(nested_levels_error(self.unit, depth - own));
            }
            _ => {}
        }
        if failed_statement_aborts_transaction(<C::Dialect as PoolableConnection>::KIND)
            && self.saw_failed_statement(own)
        {
            let unit = self.unit;
            let first_failure = self.lease.signals().first_failure();
            let _ = self.rollback().await;
            return Err(aborted_transaction_error(unit, first_failure));
        }
        let bound = self.round_trip_bound;
        match within(bound, self.connection().commit()).await {
            Some(Ok(())) => {
                self.end().await;
                Ok(())
            }
            Some(Err(error)) => Err(self.commit_failed(error).await),
            // `open` stays set: closed in drop, never pooled.
            None => Err(no_reply_to_commit(self.unit, bound)),
        }
    }

    /// Whether a statement failed at this session's level or deeper and was
    /// not rolled back since.
    fn saw_failed_statement(&self, own_depth: u32) -> bool {
        self.lease
            .signals()
            .failed_statement_not_rolled_back(own_depth)
    }

    /// A failed `COMMIT`: a lost connection is closed (and the outcome is
    /// unknown); a transaction still open is rolled back (and the connection
    /// closed if that fails); a refused top-level `COMMIT` was already rolled
    /// back by diesel-async.
    #[cold]
    async fn commit_failed(&mut self, error: diesel::result::Error) -> Error {
        let base = self.factory.inner.config.base_depth();
        let bound = self.round_trip_bound;
        let failure = CommitFailure::of(&error);
        if failure == CommitFailure::Refused {
            let at_rest = match depth(self.connection()) {
                Some(depth) if depth > base => {
                    matches!(
                        within(bound, self.connection().rollback()).await,
                        Some(Ok(()))
                    )
                }
                Some(_) => {
                    if base == 0 {
                        let rollback = self
                            .connection()
                            .batch_execute(ROLLBACK_AFTER_REFUSED_COMMIT);
                        // No reply: not at rest, closed in drop.
                        within(bound, rollback).await.is_some()
                    } else {
                        true
                    }
                }
                None => false,
            };
            if at_rest {
                self.end().await;
            }
        }
        failure.into_error(self.unit, error)
    }

    /// Rolls back. On failure the connection is closed (the server rolls back
    /// when it sees the connection end).
    pub(crate) async fn rollback(mut self) -> Result<(), Error> {
        let bound = self.round_trip_bound;
        match within(bound, self.connection().rollback()).await {
            Some(Ok(())) => {
                self.end().await;
                Ok(())
            }
            Some(Err(error)) => Err(Error::query(
                Phase::Rollback,
                format!("rollback of unit of work `{}` failed", self.unit),
                error,
            )),
            None => Err(no_reply_to_rollback(self.unit, bound)),
        }
    }

    /// The transaction is over: undo per-unit connection state, then the
    /// connection may be pooled again if the transaction manager is at rest.
    async fn end(&mut self) {
        let bound = self.round_trip_bound;
        for sql in std::mem::take(&mut self.cleanup).into_iter().flatten() {
            if !matches!(
                within(bound, self.connection().batch_execute(&sql)).await,
                Some(Ok(()))
            ) {
                return; // `open` stays set: closed in drop.
            }
        }
        let base = self.factory.inner.config.base_depth();
        self.open = depth(self.connection()) != Some(base);
    }
}

impl<C: AsyncPoolableConnection> Drop for AsyncSession<'_, C> {
    fn drop(&mut self) {
        let now = Instant::now();
        let held = now.duration_since(self.opened_at);
        if self.open {
            // Mid-transaction (cancelled, panicked, levels left open, or
            // COMMIT/ROLLBACK failed): never pooled; closing the connection
            // makes the server roll back.
            tracing::debug!(
                unit = self.unit,
                "session ended with its transaction open; closing its connection"
            );
            let counters = &self.factory.inner.counters;
            counters.closed_dirty.fetch_add(1, Ordering::Relaxed);
            self.lease.discard();
        }
        self.lease.release(now, held);
        if let Some(budget) = self.budget.filter(|budget| held > *budget) {
            warn_over_budget(self.unit, held, budget);
        }
        crate::unit_span::record_held(&self.span, held);
    }
}

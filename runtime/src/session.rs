//! A session: one checked-out connection inside one open transaction.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, TransactionManager};

use crate::backend::{unit_server_budget, PoolableConnection};
use crate::commit_outcome::{
    aborted_transaction_error, failed_statement_aborts_transaction, CommitFailure,
};
use crate::error::{Error, Phase};
use crate::open_units::{AfterCommit, Registration};
use crate::options::UnitOptions;
use crate::pool::Lease;
use crate::unit_span::record_held;

/// A `BEGIN` that failed, with what the caller needs to try another connection.
pub(crate) struct BeginFailure<C: PoolableConnection> {
    pub(crate) error: Error,
    pub(crate) lease: Lease<C>,
    pub(crate) registration: Registration,
}

/// A guard over a checked-out connection inside an open transaction.
///
/// Derefs to the diesel connection, so every diesel API takes `&mut session`
/// (or `&mut *session`). End it with [`commit`](Session::commit) or
/// [`rollback`](Session::rollback); dropped without either (an early return, a
/// `?`, a panic) it rolls back. Either way the connection goes back to the pool
/// at once, or is closed if its transaction state is not clean.
///
/// A session is neither `Send` nor `Sync`: it stays on the thread that opened
/// it, so it cannot be handed to a spawned task or thread that might outlive the
/// transaction.
///
/// ```
/// use diesel::prelude::*;
/// use dbscope_runtime::SessionFactory;
///
/// let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
/// let mut session = factory.session()?;
/// diesel::sql_query("CREATE TABLE notes (body TEXT)").execute(&mut *session)?;
/// diesel::sql_query("INSERT INTO notes VALUES ('hello')").execute(&mut *session)?;
/// session.after_commit(|| println!("the note is visible to everyone now"));
/// session.commit()?;
/// assert_eq!(factory.stats().in_use, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Session<C: PoolableConnection> {
    lease: Lease<C>,
    /// The unit's name, for logs and errors.
    unit: &'static str,
    budget: Option<Duration>,
    /// Connection state to undo when the transaction ends; only units whose
    /// options changed it have any.
    cleanup: Option<Box<Cleanup>>,
    finished: bool,
    after_commit: Registration,
    /// The span of the unit (the current span when the session began), which
    /// records how long the connection was held.
    span: tracing::Span,
    _stay_on_thread: crate::session_not_send::StayOnThread,
}

/// Statements that undo what a unit's begin statement set on the connection.
struct Cleanup {
    /// What undoes connection state the begin statement set, if anything.
    end_sql: Option<&'static str>,
    /// Statement that puts back the connection's default budget, when this
    /// unit overrode it in a way that outlives the transaction (MariaDB).
    restore_budget: Option<String>,
}

impl<C: PoolableConnection> Session<C> {
    /// Begins a transaction on `lease`. On failure the lease is handed back
    /// (boxed: the failure path is cold) so the caller can decide whether to
    /// discard it and try another.
    #[inline]
    pub(crate) fn begin(
        mut lease: Lease<C>,
        options: &UnitOptions,
        registration: Registration,
    ) -> Result<Self, Box<BeginFailure<C>>> {
        let config = &lease.shared().config;
        let budget = options.hold_budget().or(config.hold_budget);
        let plain = options.begins_plainly() && !config.rollback_only;
        lease.signals().begin_attempt();
        let begun = if plain {
            // The common unit: the backend's plain BEGIN, nothing to undo.
            AnsiTransactionManager::begin_transaction_sql(lease.conn(), C::PLAIN_BEGIN)
                .map(|()| None)
                .map_err(|e| begin_failed(C::PLAIN_BEGIN, options.name(), e))
        } else {
            begin_with_options(&mut lease, options)
        };
        match begun {
            Ok(cleanup) => Ok(Session {
                lease,
                unit: options.name(),
                budget,
                cleanup,
                finished: false,
                after_commit: registration,
                span: tracing::Span::current(),
                _stay_on_thread: PhantomData,
            }),
            Err(error) => Err(Box::new(BeginFailure {
                error,
                lease,
                registration,
            })),
        }
    }

    /// The diesel connection, for APIs that want `&mut Conn` by name.
    ///
    /// ```
    /// use diesel::prelude::*;
    /// let factory = dbscope_runtime::SessionFactory::<SqliteConnection>::new(":memory:")?;
    /// let mut session = factory.session()?;
    /// let conn: &mut SqliteConnection = session.connection();
    /// diesel::sql_query("SELECT 1").execute(conn)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connection(&mut self) -> &mut C {
        self.lease.conn()
    }

    /// Registers `work` to run once this session's transaction has committed,
    /// after the connection went back to the pool. It never runs if the
    /// session rolls back. Use it to start jobs or tasks that must see the data
    /// this unit wrote.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let mut session = factory.session()?;
    /// let flag = Arc::clone(&ran);
    /// session.after_commit(move || flag.store(true, Ordering::SeqCst));
    /// session.rollback()?;
    /// assert!(!ran.load(Ordering::SeqCst));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn after_commit(&mut self, work: impl FnOnce() + 'static) {
        self.after_commit.push(Box::new(work));
    }

    /// How long this session has held its connection.
    ///
    /// ```
    /// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
    /// let session = factory.session()?;
    /// assert!(session.held() < std::time::Duration::from_secs(60));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn held(&self) -> Duration {
        self.lease.checked_out().elapsed()
    }

    /// The name of the unit of work this session belongs to (the function's
    /// path under `#[unit_of_work]`, `"session"` for hand-opened sessions).
    ///
    /// ```
    /// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
    /// let session = factory.session()?;
    /// assert_eq!(session.unit_name(), "session");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unit_name(&self) -> &'static str {
        self.unit
    }

    /// Whether a statement in this transaction failed with a transient error
    /// (see [`classify`](crate::classify)).
    pub(crate) fn saw_transient_error(&self) -> bool {
        self.lease.signals().saw_transient()
    }

    /// Commits. Then the connection goes back to the pool and the
    /// after-commit work runs, in the order it was registered.
    ///
    /// # Errors
    /// [`Phase::Commit`] when the server refuses the commit (the transaction
    /// is rolled back then, and after-commit work is dropped), or when a
    /// statement failed earlier and PostgreSQL aborted the transaction;
    /// [`Phase::CommitOutcomeUnknown`] when the connection failed with the
    /// `COMMIT` in flight (it may have committed; after-commit work is dropped).
    ///
    /// ```
    /// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
    /// factory.session()?.commit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn commit(self) -> Result<(), Error> {
        self.commit_deferred().map(AfterCommit::run)
    }

    /// Commits and gives the connection back, handing over the after-commit
    /// work for the caller to run once the unit of work is over (units run it
    /// after leaving their nesting scope, so the work may open units of its own).
    #[inline]
    pub(crate) fn commit_deferred(mut self) -> Result<AfterCommit, Error> {
        self.finished = true;
        if let Some(depth) = self.nested_levels_left_open() {
            // Committing now would only release the inner level; the unit's own
            // transaction would stay open and be lost when the connection is
            // closed. Say so instead of reporting a commit that did not happen.
            // The pool sees the open transaction at check-in and closes the
            // connection (counted in `closed_dirty`).
            self.end();
            return Err(nested_levels_error(self.unit, depth));
        }
        if failed_statement_aborts_transaction(C::KIND)
            && self
                .lease
                .signals()
                .failed_statement_not_rolled_back(self.lease.shared().config.base_depth() + 1)
        {
            return Err(self.refuse_aborted());
        }
        let result = match AnsiTransactionManager::commit_transaction(self.lease.conn()) {
            Ok(()) => Ok(()),
            Err(error) => Err(self.commit_failed(error)),
        };
        // The connection goes back to the pool before the work runs: the work
        // may open sessions of its own (with a pool of one, it must).
        self.end();
        let work = self.after_commit.close();
        drop(self);
        result.map(|()| work)
    }

    /// A failed `COMMIT`: a lost connection is closed (and the outcome is
    /// unknown); a transaction still open is rolled back (and the connection
    /// closed if that fails); a refused top-level `COMMIT` was already rolled
    /// back by diesel.
    #[cold]
    #[inline(never)]
    fn commit_failed(&mut self, error: diesel::result::Error) -> Error {
        let failure = CommitFailure::of(&error);
        if failure == CommitFailure::OutcomeUnknown {
            self.lease.discard();
        } else if self.still_open() == Some(false) {
            if !self.lease.shared().config.rollback_only {
                // diesel counts a refused top-level COMMIT as the end of the
                // transaction, but SQLite keeps it open (a deferred foreign
                // key): end it for sure (a no-op where the server rolled back).
                let _ = self
                    .lease
                    .conn()
                    .batch_execute(ROLLBACK_AFTER_REFUSED_COMMIT);
            }
        } else if AnsiTransactionManager::rollback_transaction(self.lease.conn()).is_err() {
            self.lease.discard();
        }
        failure.into_error(self.unit, error)
    }

    /// The body returned `Ok` after PostgreSQL aborted the transaction at a
    /// failed statement: roll back instead of a `COMMIT` that would.
    #[cold]
    #[inline(never)]
    fn refuse_aborted(mut self) -> Error {
        let first_failure = self.lease.signals().first_failure();
        let _ = self.rollback_now();
        self.end();
        aborted_transaction_error(self.unit, first_failure)
    }

    /// Rolls back. The connection goes back to the pool (or is closed if the
    /// rollback failed) and after-commit work is dropped.
    ///
    /// # Errors
    /// [`Phase::Rollback`] when the rollback itself failed.
    ///
    /// ```
    /// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
    /// factory.session()?.rollback()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rollback(mut self) -> Result<(), Error> {
        self.finished = true;
        let result = self.rollback_now();
        self.end();
        result
    }

    fn rollback_now(&mut self) -> Result<(), Error> {
        AnsiTransactionManager::rollback_transaction(self.lease.conn()).map_err(|error| {
            self.lease.discard();
            Error::query(
                Phase::Rollback,
                format!(
                    "unit `{}`: the connection was closed instead of pooled",
                    self.unit
                ),
                error,
            )
        })
    }

    /// How many transaction levels above this session's own are still open
    /// (savepoints the body began and never ended), if any.
    fn nested_levels_left_open(&mut self) -> Option<u32> {
        let own = self.lease.shared().config.base_depth() + 1;
        let status =
            <AnsiTransactionManager as TransactionManager<C>>::transaction_manager_status_mut(
                self.lease.conn(),
            );
        let depth = status.transaction_depth().ok()??.get();
        (depth > own).then(|| depth - own)
    }

    /// Whether this session's transaction (or savepoint) is still open, as
    /// diesel's transaction manager sees it; `None` when the manager is broken.
    /// A failed top-level `COMMIT` is rolled back by diesel itself, leaving
    /// nothing to roll back (and the connection healthy).
    fn still_open(&mut self) -> Option<bool> {
        let base = self.lease.shared().config.base_depth();
        let status =
            <AnsiTransactionManager as TransactionManager<C>>::transaction_manager_status_mut(
                self.lease.conn(),
            );
        let depth = status.transaction_depth().ok()?;
        Some(depth.map_or(0, |d| d.get()) > base)
    }

    /// Undoes connection state `begin_sql` set, warns past the budget, and
    /// gives the connection back to the pool (or closes it).
    #[inline]
    fn end(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            self.run_cleanup(&cleanup);
        }
        let now = Instant::now();
        let held = self.lease.held_at(now);
        if let Some(budget) = self.budget.filter(|budget| held > *budget) {
            warn_over_budget(self.unit, held, budget);
        }
        record_held(&self.span, held);
        self.lease.release(now, held);
    }

    #[cold]
    #[inline(never)]
    fn run_cleanup(&mut self, cleanup: &Cleanup) {
        let statements = cleanup
            .end_sql
            .into_iter()
            .chain(cleanup.restore_budget.as_deref());
        for sql in statements {
            if self.lease.conn().batch_execute(sql).is_err() {
                self.lease.discard();
            }
        }
    }
}

/// Begins a transaction whose options change the begin statement, returning
/// what must be undone when it ends.
#[cold]
#[inline(never)]
fn begin_with_options<C: PoolableConnection>(
    lease: &mut Lease<C>,
    options: &UnitOptions,
) -> Result<Option<Box<Cleanup>>, Error> {
    let config = &lease.shared().config;
    if config.rollback_only {
        // Inside the test transaction: a savepoint. Isolation and read-only
        // cannot be set on a savepoint; the outer transaction decides them.
        return AnsiTransactionManager::begin_transaction(lease.conn())
            .map(|()| None)
            .map_err(|e| Error::query(Phase::Begin, "could not open a savepoint", e));
    }
    let (server_budget, restore_budget) = unit_server_budget::<C>(
        options.hold_budget(),
        config.hold_budget,
        config.server_budget,
        lease.server(),
    );
    let sql = C::begin_sql(options, server_budget, lease.server())?;
    AnsiTransactionManager::begin_transaction_sql(lease.conn(), &sql)
        .map_err(|e| begin_failed(&sql, options.name(), e))?;
    let end_sql = C::end_sql(options);
    Ok((end_sql.is_some() || restore_budget.is_some()).then(|| {
        Box::new(Cleanup {
            end_sql,
            restore_budget,
        })
    }))
}

/// Sent after a refused top-level `COMMIT` in both flavours: SQLite keeps the
/// transaction open after a deferred constraint fails at `COMMIT`; the other
/// servers rolled it back and treat this as a no-op.
pub(crate) const ROLLBACK_AFTER_REFUSED_COMMIT: &str = "ROLLBACK";

#[cold]
#[inline(never)]
fn begin_failed(sql: &str, unit: &str, error: diesel::result::Error) -> Error {
    Error::query(
        Phase::Begin,
        format!("`{sql}` failed for unit `{unit}`"),
        error,
    )
}

#[cold]
#[inline(never)]
pub(crate) fn nested_levels_error(unit: &str, depth: u32) -> Error {
    Error::new(
        Phase::Commit,
        format!(
            "unit `{unit}` left {depth} nested transaction level(s) open, so nothing was \
             committed; end every `begin_transaction` you open, or use \
             `conn.transaction(|conn| ..)` which always does"
        ),
    )
}

#[cold]
#[inline(never)]
pub(crate) fn warn_over_budget(unit: &str, held: Duration, budget: Duration) {
    tracing::warn!(
        unit,
        held_ms = held.as_millis() as u64,
        budget_ms = budget.as_millis() as u64,
        "a session was held longer than its budget: move slow non-database work \
         (remote calls, sleeps, heavy computation) before or after the unit of work"
    );
}

impl<C: PoolableConnection> Drop for Session<C> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if std::thread::panicking() {
            tracing::debug!(unit = self.unit, "rolling back after a panic");
        }
        let _ = self.rollback_now();
        self.end();
    }
}

impl<C: PoolableConnection> Deref for Session<C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.lease.conn_ref()
    }
}

impl<C: PoolableConnection> DerefMut for Session<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.lease.conn()
    }
}

impl<C: PoolableConnection> std::fmt::Debug for Session<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("unit", &self.unit)
            .field("held", &self.lease.checked_out().elapsed())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

//! What a connection's statements told us during the current transaction,
//! recorded by diesel's instrumentation hook. One recorder for both flavours:
//! diesel and diesel-async report through the same [`Instrumentation`] trait.
//!
//! Three facts come out of it:
//! - the last transient error (the retry option asks);
//! - whether the connection was lost (the pool closes it at check-in);
//! - whether a statement failed at a transaction level that was never rolled
//!   back. On PostgreSQL that transaction is aborted: its `COMMIT` would roll
//!   back silently and report success, so the session refuses to commit.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::result::Error as DieselError;
use parking_lot::Mutex;

use crate::transient::{classify, TransientKind};

/// The facts, shared between the connection's recorder and the pool.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    /// 0: nothing; otherwise the `TransientKind` index + 1 of the last
    /// transient error a statement returned.
    transient: AtomicU8,
    /// A statement failed because the connection is gone.
    lost: AtomicBool,
    /// The transaction depth as the transaction manager's events report it.
    depth: AtomicU32,
    /// The lowest depth at which a server-side statement error happened and
    /// was not rolled back since; 0 when there is none.
    failed_at: AtomicU32,
    /// The statement that failed first at `failed_at` and its error, for the
    /// message (SQL only: bind values are never kept).
    first_failure: Mutex<Option<String>>,
}

impl Signals {
    /// New signals and the recorder to install on the connection.
    pub(crate) fn install() -> (Arc<Signals>, SignalRecorder) {
        let signals = Arc::new(Signals::default());
        let recorder = SignalRecorder(Arc::clone(&signals));
        (signals, recorder)
    }

    /// Forgets what the previous transaction saw; called at `BEGIN`.
    #[inline]
    pub(crate) fn begin_attempt(&self) {
        self.transient.store(0, Ordering::Relaxed);
        self.failed_at.store(0, Ordering::Relaxed);
    }

    /// Whether a statement of this transaction failed with a transient error.
    pub(crate) fn saw_transient(&self) -> bool {
        self.transient.load(Ordering::Relaxed) != 0
    }

    /// Whether a statement failed because the connection is gone.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Whether a statement failed at the session's level (`own_depth`) or
    /// deeper and no rollback undid that level since: the body went on past
    /// a failed statement. On PostgreSQL the transaction is aborted then.
    #[inline]
    pub(crate) fn failed_statement_not_rolled_back(&self, own_depth: u32) -> bool {
        let failed_at = self.failed_at.load(Ordering::Relaxed);
        failed_at != 0 && failed_at >= own_depth
    }

    /// The statement that failed first and was not rolled back, with its
    /// error, when there is one.
    pub(crate) fn first_failure(&self) -> Option<String> {
        self.first_failure.lock().clone()
    }

    fn record_error(&self, error: &DieselError, statement: &dyn fmt::Display) {
        if let Some(kind) = classify(error) {
            self.transient.store(kind as u8 + 1, Ordering::Relaxed);
            if kind == TransientKind::ConnectionLost {
                self.lost.store(true, Ordering::Relaxed);
            }
        }
        // Only an error the server returned aborts its transaction; a
        // client-side one (a bind that failed to serialise) never reached it.
        if matches!(error, DieselError::DatabaseError(..)) {
            let depth = self.depth.load(Ordering::Relaxed);
            let failed_at = self.failed_at.load(Ordering::Relaxed);
            if depth != 0 && (failed_at == 0 || depth < failed_at) {
                self.failed_at.store(depth, Ordering::Relaxed);
                *self.first_failure.lock() = Some(describe_failure(statement, error));
            }
        }
    }

    fn record(&self, seen: Seen<'_>) {
        match seen {
            Seen::Failed(error, statement) => self.record_error(error, statement),
            Seen::Begin(depth) => self.depth.store(depth, Ordering::Relaxed),
            Seen::Commit(depth) => self.depth.store(depth - 1, Ordering::Relaxed),
            Seen::Rollback(depth) => {
                self.depth.store(depth - 1, Ordering::Relaxed);
                // Rolling back level `depth` undoes every failure at it or deeper.
                if self.failed_at.load(Ordering::Relaxed) >= depth {
                    self.failed_at.store(0, Ordering::Relaxed);
                }
            }
        }
    }
}

/// `` `statement` (error) ``, the statement's SQL cut short, without binds.
#[cold]
#[inline(never)]
fn describe_failure(statement: &dyn fmt::Display, error: &DieselError) -> String {
    const LONGEST: usize = 200;
    let text = statement.to_string();
    // diesel's debug form appends ` -- binds: [..]`: values stay out of logs.
    let sql = text.split(" -- binds:").next().unwrap_or_default().trim();
    let sql = match sql.char_indices().nth(LONGEST) {
        Some((cut, _)) => format!("{}...", &sql[..cut]),
        None => sql.to_owned(),
    };
    format!("`{sql}` ({error})")
}

/// The instrumentation events the signals care about.
enum Seen<'a> {
    Failed(&'a DieselError, &'a dyn fmt::Display),
    Begin(u32),
    Commit(u32),
    Rollback(u32),
}

impl<'a> Seen<'a> {
    fn of(event: &InstrumentationEvent<'a>) -> Option<Self> {
        Some(match event {
            InstrumentationEvent::FinishQuery {
                error: Some(error),
                query,
                ..
            } => Seen::Failed(error, *query),
            InstrumentationEvent::BeginTransaction { depth, .. } => Seen::Begin(depth.get()),
            InstrumentationEvent::CommitTransaction { depth, .. } => Seen::Commit(depth.get()),
            InstrumentationEvent::RollbackTransaction { depth, .. } => Seen::Rollback(depth.get()),
            _ => return None,
        })
    }
}

/// The instrumentation installed on every pooled connection.
pub(crate) struct SignalRecorder(Arc<Signals>);

impl Instrumentation for SignalRecorder {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let Some(seen) = Seen::of(&event) {
            self.0.record(seen);
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::DatabaseErrorKind;

    use super::*;

    const INSERT: &str = "INSERT INTO t (id) VALUES ($1) -- binds: [\"secret\"]";

    fn server_error() -> DieselError {
        DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new(String::from(
                "duplicate key value violates unique constraint",
            )),
        )
    }

    #[test]
    fn a_failure_at_the_top_level_stays_until_the_transaction_rolls_back() {
        let (signals, _recorder) = Signals::install();
        signals.begin_attempt();
        signals.record(Seen::Begin(1));
        signals.record(Seen::Failed(&server_error(), &INSERT));
        assert!(signals.failed_statement_not_rolled_back(1));
        assert_eq!(
            signals.first_failure().as_deref(),
            Some(
                "`INSERT INTO t (id) VALUES ($1)` (duplicate key value violates unique constraint)"
            )
        );
        signals.record(Seen::Rollback(1));
        assert!(!signals.failed_statement_not_rolled_back(1));
    }

    #[test]
    fn a_failure_inside_a_savepoint_rolled_back_is_forgotten() {
        let (signals, _recorder) = Signals::install();
        signals.begin_attempt();
        signals.record(Seen::Begin(1));
        signals.record(Seen::Begin(2));
        signals.record(Seen::Failed(&server_error(), &INSERT));
        assert!(signals.failed_statement_not_rolled_back(1));
        signals.record(Seen::Rollback(2));
        assert!(!signals.failed_statement_not_rolled_back(1));
    }

    #[test]
    fn a_failure_inside_a_released_savepoint_stays() {
        let (signals, _recorder) = Signals::install();
        signals.begin_attempt();
        signals.record(Seen::Begin(1));
        signals.record(Seen::Begin(2));
        signals.record(Seen::Failed(&server_error(), &INSERT));
        signals.record(Seen::Commit(2));
        assert!(signals.failed_statement_not_rolled_back(1));
    }

    #[test]
    fn a_client_side_error_or_one_outside_a_transaction_is_not_counted() {
        let (signals, _recorder) = Signals::install();
        signals.record(Seen::Failed(&server_error(), &INSERT));
        assert!(!signals.failed_statement_not_rolled_back(1));
        signals.record(Seen::Begin(1));
        signals.record(Seen::Failed(&DieselError::NotFound, &INSERT));
        assert!(!signals.failed_statement_not_rolled_back(1));
    }

    #[test]
    fn begin_forgets_the_previous_transaction() {
        let (signals, _recorder) = Signals::install();
        signals.record(Seen::Begin(1));
        let lost = DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new(String::from("server closed the connection unexpectedly")),
        );
        signals.record(Seen::Failed(&lost, &INSERT));
        assert!(signals.saw_transient() && signals.is_lost());
        signals.begin_attempt();
        assert!(!signals.failed_statement_not_rolled_back(1));
        assert!(!signals.saw_transient());
        assert!(signals.is_lost(), "a lost connection stays lost");
    }
}

//! Units of work: checkout, begin, body, commit or roll back, return the
//! connection; with retry on transient errors. The blocking flavour.

use std::thread;

use tracing::Span;

use crate::backend::PoolableConnection;
use crate::error::Error;
use crate::factory::{SessionFactory, SessionSource};
use crate::open_units::{no_second_connection, AfterCommit, Registration};
use crate::options::UnitOptions;
pub(crate) use crate::retry_loop::Attempt;
use crate::retry_loop::{body_failed, commit_failed, committed, Next, RetryLoop};
use crate::session::Session;
use crate::unit_span::{record_outcome, unit_span, Outcome};

/// Ends `session` according to `result`: commit on `Ok`, roll back on `Err`.
/// Says whether the failure is worth another attempt, and hands over the
/// after-commit work (empty unless committed): the caller runs it once it has
/// left the unit's nesting scope.
#[inline]
pub(crate) fn finish<C, T, E>(
    session: Session<C>,
    result: Result<T, E>,
    span: &Span,
) -> (Attempt<T, E>, AfterCommit)
where
    C: PoolableConnection,
    E: From<Error>,
{
    match result {
        Ok(value) => match session.commit_deferred() {
            Ok(work) => (committed(value, span), work),
            Err(error) => (commit_failed(error, span), AfterCommit::default()),
        },
        Err(error) => (roll_back(session, error, span), AfterCommit::default()),
    }
}

/// Rolls back a unit whose body failed. A lost connection is closed at
/// check-in (the pool saw the error); anything else is pooled as usual.
#[inline(never)]
fn roll_back<C: PoolableConnection, T, E>(
    session: Session<C>,
    error: E,
    span: &Span,
) -> Attempt<T, E> {
    let transient = session.saw_transient_error();
    let _ = session.rollback();
    body_failed(error, transient, span)
}

/// Runs `body` as one unit of work on a session from `source`, with no retry.
/// `#[unit_of_work]` expands to this; see [`SessionFactory::run`] to call it by hand.
///
/// # Errors
/// The body's error, or the runtime's converted with `E::from`.
pub fn run_unit<S, T, E, F>(source: &S, options: &UnitOptions, body: F) -> Result<T, E>
where
    S: SessionSource + ?Sized,
    E: From<Error>,
    F: FnOnce(&mut Session<S::Connection>) -> Result<T, E>,
{
    let factory = source.session_factory();
    let span = unit_span(options);
    let _in_span = span.enter();
    let mut session = factory
        .unit_session(options)
        .inspect_err(|_| not_begun(&span))?;
    let result = body(&mut session);
    // The unit is over once `finish` returns: its after-commit work may run
    // units of its own.
    let (attempt, after_commit) = finish(session, result, &span);
    after_commit.run();
    match attempt {
        Attempt::Done(result) => result,
        Attempt::Retry(error) => Err(error),
    }
}

/// Runs `body` as one unit of work, retrying it in a fresh transaction on
/// transient errors as `options` says. `#[unit_of_work(retry = ..)]` expands to this.
///
/// # Errors
/// The body's error, or the runtime's converted with `E::from`, once attempts
/// run out or the error is not transient.
pub fn run_unit_retrying<S, T, E, F>(source: &S, options: &UnitOptions, mut body: F) -> Result<T, E>
where
    S: SessionSource + ?Sized,
    E: From<Error>,
    F: FnMut(&mut Session<S::Connection>) -> Result<T, E>,
{
    let factory = source.session_factory();
    let span = unit_span(options);
    let _in_span = span.enter();
    let mut attempts = RetryLoop::new(options, &span, &factory.pool.shared.counters.unit_retries);
    loop {
        let mut session = factory
            .unit_session(options)
            .inspect_err(|_| not_begun(&span))?;
        let result = body(&mut session);
        let (outcome, after_commit) = finish(session, result, &span);
        // Empty unless committed. The unit is over: its after-commit work may
        // run units of its own.
        after_commit.run();
        match attempts.after(outcome) {
            Next::Return(result) => return result,
            Next::RetryAfter(delay) => thread::sleep(delay),
        }
    }
}

/// Records on `span` that no transaction began (checkout, connect or
/// `BEGIN` failed).
#[cold]
#[inline(never)]
pub(crate) fn not_begun(span: &Span) {
    record_outcome(span, Outcome::NotBegun);
}

impl<C: PoolableConnection> SessionFactory<C> {
    /// Opens the session of a unit of work: fails fast when nested in another
    /// unit on this factory and thread, before it waits for a connection.
    #[inline]
    pub(crate) fn unit_session(&self, options: &UnitOptions) -> Result<Session<C>, Error> {
        let (registration, outer) = Registration::unit(self.id(), options)?;
        let deadline = self.deadline();
        let slot = match outer {
            None => self.pool.acquire_slot_blocking(deadline)?,
            Some(outer) => self.second_slot(options, outer)?,
        };
        self.open(slot, options, deadline, registration)
    }

    /// The slot of a `requires_new` unit nested in `outer`: taken only if one
    /// is free now, since waiting while `outer` holds a connection could
    /// deadlock the pool.
    #[cold]
    #[inline(never)]
    pub(crate) fn second_slot(
        &self,
        options: &UnitOptions,
        outer: &'static str,
    ) -> Result<crate::pool::Slot<C>, Error> {
        self.pool
            .acquire_slot_blocking(std::time::Instant::now())
            .map_err(|error| match error.phase() {
                crate::error::Phase::CheckoutTimeout => {
                    no_second_connection(options.name(), outer, self.stats().max_size)
                }
                _ => error,
            })
    }

    /// Runs `body` as one unit of work: checkout, begin, body, commit on `Ok`,
    /// roll back on `Err` or panic, connection returned before this returns.
    /// Retries on transient errors when `options` has a retry policy, so the
    /// body may run more than once.
    ///
    /// # Errors
    /// The body's error, or the runtime's converted with `E::from`.
    ///
    /// ```
    /// use diesel::prelude::*;
    /// use dbscope_runtime::{Error, RetryPolicy, SessionFactory, UnitOptions};
    /// let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
    /// let options = UnitOptions::new("setup").retry(RetryPolicy::attempts(3));
    /// factory.run(&options, |s| diesel::sql_query("CREATE TABLE t (x INTEGER)").execute(&mut **s).map_err(Error::from))?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn run<T, E, F>(&self, options: &UnitOptions, body: F) -> Result<T, E>
    where
        E: From<Error>,
        F: FnMut(&mut Session<C>) -> Result<T, E>,
    {
        run_unit_retrying(self, options, body)
    }
}

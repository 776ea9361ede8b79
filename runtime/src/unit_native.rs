//! Native async units of work: the body awaits its queries on a diesel-async
//! connection inside one transaction. `#[unit_of_work]` expands to these when
//! the session parameter is an async connection.
//!
//! Commit on `Ok`, roll back on `Err`; a panic or a dropped future closes the
//! connection instead of pooling it (see `async_session.rs`), so the server
//! rolls back. A unit of work started inside another on the same factory, in
//! the same task, fails fast with `Phase::Nesting` instead of waiting for a
//! second connection (the macro already rejects awaiting a unit inside a
//! unit; this catches one hidden in a helper). With a retry policy, each attempt is a fresh transaction on a
//! freshly checked-out connection, and the wait between attempts holds none.

use std::future::Future;
use std::sync::Arc;

use crate::async_factory::{AsyncSessionFactory, AsyncSessionSource};
use crate::async_session::AsyncSession;
use crate::backend_async::AsyncPoolableConnection;
use crate::error::Error;
use crate::open_units::nesting_error;
use crate::options::UnitOptions;
use tracing::{Instrument, Span};

use crate::after_commit_native::{drop_since, with_after_commit, SendWork};

use crate::retry_loop::{body_failed, commit_failed, committed, Attempt, Next, RetryLoop};
use crate::unit::not_begun;
use crate::unit_span::unit_span;

/// The body of a native unit of work run once: an async closure over the
/// connection whose future is `Send`, so the unit can run in a spawned task.
/// Implemented for every `async |conn| ..` closure that fits; named only in
/// bounds.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use dbscope_runtime::AsyncUnitBody;
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// type Conn = SyncConnectionWrapper<diesel::SqliteConnection>;
/// fn takes<F: for<'c> AsyncUnitBody<&'c mut Conn, Result<(), dbscope_runtime::Error>>>(_: F) {}
/// takes(async |_conn: &mut Conn| Ok(()));
/// # }
/// ```
pub trait AsyncUnitBody<C, R>: FnOnce(C) -> <Self as AsyncUnitBody<C, R>>::Fut {
    /// The future a call returns.
    type Fut: Future<Output = R> + Send;
}

impl<F, C, Fut, R> AsyncUnitBody<C, R> for F
where
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = R> + Send,
{
    type Fut = Fut;
}

/// The body of a native unit of work with a retry policy: called once per
/// attempt, so it borrows what it captures instead of moving it.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use dbscope_runtime::AsyncUnitBodyMut;
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// type Conn = SyncConnectionWrapper<diesel::SqliteConnection>;
/// fn takes<F: for<'c> AsyncUnitBodyMut<&'c mut Conn, Result<(), dbscope_runtime::Error>>>(_: F) {}
/// let name = String::from("x");
/// takes(async |_conn: &mut Conn| { let _ = name.len(); Ok(()) });
/// # }
/// ```
pub trait AsyncUnitBodyMut<C, R>: FnMut(C) -> <Self as AsyncUnitBodyMut<C, R>>::Fut {
    /// The future a call returns.
    type Fut: Future<Output = R> + Send;
}

impl<F, C, Fut, R> AsyncUnitBodyMut<C, R> for F
where
    F: FnMut(C) -> Fut,
    Fut: Future<Output = R> + Send,
{
    type Fut = Fut;
}

tokio::task_local! {
    /// The native units of work open in this task, innermost last.
    static OPEN: OpenUnits;
}

/// Up to four (factory, unit) pairs: units of work open in one task. A
/// deeper chain of distinct factories is not tracked past the fourth.
#[derive(Clone, Copy)]
struct OpenUnits {
    entries: [(usize, &'static str); 4],
    len: usize,
}

/// Fails with [`Phase::Nesting`](crate::Phase::Nesting) when a unit of work
/// on `factory` is already open in this task (it would wait for a second
/// connection while holding the first: a pool of one would never give it
/// one); otherwise the task's open units with this one added.
fn enter<C: AsyncPoolableConnection>(
    factory: &AsyncSessionFactory<C>,
    unit: &'static str,
) -> Result<OpenUnits, Error> {
    let id = Arc::as_ptr(&factory.inner).cast::<()>() as usize;
    let mut open = OPEN.try_with(|open| *open).unwrap_or(OpenUnits {
        entries: [(0, ""); 4],
        len: 0,
    });
    if let Some((_, outer)) = open.entries[..open.len]
        .iter()
        .find(|(factory, _)| *factory == id)
    {
        return Err(nesting_error(unit, outer));
    }
    if open.len < open.entries.len() {
        open.entries[open.len] = (id, unit);
        open.len += 1;
    }
    Ok(open)
}

/// Ends `session` according to `result`.
async fn finish<C, T, E>(
    session: AsyncSession<'_, C>,
    result: Result<T, E>,
    span: &Span,
) -> Attempt<T, E>
where
    C: crate::backend_async::AsyncPoolableConnection,
    E: From<Error>,
{
    match result {
        Ok(value) => match session.commit().await {
            Ok(()) => committed(value, span),
            Err(error) => commit_failed(error, span),
        },
        Err(error) => {
            let transient = session.saw_transient_error();
            let _ = session.rollback().await;
            body_failed(error, transient, span)
        }
    }
}

/// Runs `body` as one unit of work on a diesel-async connection from
/// `source`, with no retry. `#[unit_of_work]` on an `async fn` whose session
/// is an async connection expands to this.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// use diesel_async::SimpleAsyncConnection;
/// use dbscope_runtime::{run_unit_native, AsyncSessionFactory, Error, UnitOptions};
/// type Conn = SyncConnectionWrapper<diesel::SqliteConnection>;
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let factory = AsyncSessionFactory::<Conn>::new(":memory:")?;
/// let failed: Result<(), Error> = run_unit_native(&factory, &UnitOptions::new("fails"), async |conn: &mut Conn| {
///     conn.batch_execute("CREATE TABLE t (id INTEGER)").await?;
///     Err(Error::from(diesel::result::Error::RollbackTransaction))
/// })
/// .await;
/// assert!(failed.is_err());
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// # }
/// ```
///
/// # Errors
/// The body's error, or the runtime's converted with `E::from`.
pub async fn run_unit_native<S, T, E, F>(source: &S, options: &UnitOptions, body: F) -> Result<T, E>
where
    S: AsyncSessionSource + ?Sized,
    E: From<Error>,
    F: for<'c> AsyncFnOnce(&'c mut S::Connection) -> Result<T, E>
        + for<'c> AsyncUnitBody<&'c mut S::Connection, Result<T, E>>,
{
    let factory = source.async_session_factory();
    let span = unit_span(options);
    let open = enter(factory, options.name()).inspect_err(|_| not_begun(&span))?;
    let unit = OPEN.scope(
        open,
        // Boxed: the unit's state (the body's future, the session, the
        // driver's futures) lives on the heap, not in the caller's future.
        with_after_commit(Box::pin(async {
            let mut session = AsyncSession::begin(factory, options)
                .await
                .inspect_err(|_| not_begun(&span))?;
            let result = body(session.connection()).await;
            match finish(session, result, &span).await {
                Attempt::Done(result) => result,
                Attempt::Retry(error) => Err(error),
            }
        })),
    );
    let (result, after_commit) = unit.instrument(span.clone()).await;
    run_if_committed(&result, after_commit);
    result
}

/// Runs a unit's after-commit work if it committed (its result is `Ok`);
/// drops it otherwise.
fn run_if_committed<T, E>(result: &Result<T, E>, work: Vec<SendWork>) {
    if result.is_ok() {
        crate::after_commit_native::run(work);
    }
}

/// [`run_unit_native`] with the unit's retry policy: a body that failed with a
/// transient error (serialization failure, deadlock, lost connection) runs
/// again in a fresh transaction after the policy's delay, holding no
/// connection while it waits.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// use diesel_async::SimpleAsyncConnection;
/// use dbscope_runtime::{run_unit_native_retrying, AsyncSessionFactory, Error, RetryPolicy, UnitOptions};
/// type Conn = SyncConnectionWrapper<diesel::SqliteConnection>;
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let factory = AsyncSessionFactory::<Conn>::new(":memory:")?;
/// const OPTIONS: UnitOptions = UnitOptions::new("retried").retry(RetryPolicy::attempts(3));
/// run_unit_native_retrying(&factory, &OPTIONS, async |conn: &mut Conn| {
///     conn.batch_execute("SELECT 1").await.map_err(Error::from)
/// })
/// .await?;
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// # }
/// ```
///
/// # Errors
/// The body's error, or the runtime's converted with `E::from`, once attempts
/// run out or the error is not transient.
pub async fn run_unit_native_retrying<S, T, E, F>(
    source: &S,
    options: &UnitOptions,
    mut body: F,
) -> Result<T, E>
where
    S: AsyncSessionSource + ?Sized,
    E: From<Error>,
    F: for<'c> AsyncFnMut(&'c mut S::Connection) -> Result<T, E>
        + for<'c> AsyncUnitBodyMut<&'c mut S::Connection, Result<T, E>>,
{
    let factory = source.async_session_factory();
    let span = unit_span(options);
    let open = enter(factory, options.name()).inspect_err(|_| not_begun(&span))?;
    let unit = OPEN.scope(
        open,
        // Boxed: the unit's state (the body's future, the session, the
        // driver's futures) lives on the heap, not in the caller's future.
        with_after_commit(Box::pin(async {
            let mut attempts = RetryLoop::new(options, &span, &factory.inner.counters.unit_retries);
            loop {
                let mut session = AsyncSession::begin(factory, options)
                    .await
                    .inspect_err(|_| not_begun(&span))?;
                let result = body(session.connection()).await;
                match attempts.after(finish(session, result, &span).await) {
                    Next::Return(result) => return result,
                    Next::RetryAfter(delay) => {
                        // The failed attempt's after-commit work goes with it.
                        drop_since(0);
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        })),
    );
    let (result, after_commit) = unit.instrument(span.clone()).await;
    run_if_committed(&result, after_commit);
    result
}

//! Units of work in `async fn`s over blocking diesel connections (tokio).
//!
//! Waiting for a connection is asynchronous and bounded by the checkout
//! timeout; holding a place in the queue costs no thread. Once a connection is
//! reserved, checkout, `BEGIN`, the body, and `COMMIT` run in one synchronous
//! stretch off the executor's core: `tokio::task::block_in_place` on a
//! multi-thread runtime (other tasks move to another worker), inline on a
//! current-thread runtime.
//!
//! That stretch has no `.await` in it (`#[unit_of_work]` rejects any), so the
//! future can only be dropped while it waits for a connection, when it holds
//! none. Cancellation never leaves a transaction open or a connection pooled
//! mid-transaction.

use std::time::Instant;

use tokio::runtime::{Handle, RuntimeFlavor};

use tracing::{Instrument, Span};

use crate::backend::PoolableConnection;
use crate::error::Error;
use crate::factory::SessionFactory;
use crate::factory::SessionSource;
use crate::open_units::{check_nesting, Registration};
use crate::options::UnitOptions;
use crate::pool::Slot;
use crate::retry_loop::{Attempt, Next, RetryLoop};
use crate::session::Session;
use crate::unit::{finish, not_begun};
use crate::unit_span::unit_span;

/// Runs `f` where blocking is allowed: `block_in_place` on a multi-thread
/// tokio runtime, inline elsewhere.
fn off_the_executor<R>(f: impl FnOnce() -> R) -> R {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The async twin of [`run_unit`](crate::run_unit). `#[unit_of_work]` on an
/// `async fn` expands to this. Needs a tokio runtime with the time driver.
///
/// # Errors
/// The body's error, or the runtime's converted with `E::from`.
pub async fn run_unit_async<S, T, E, F>(source: &S, options: &UnitOptions, body: F) -> Result<T, E>
where
    S: SessionSource + ?Sized,
    E: From<Error>,
    F: FnOnce(&mut Session<S::Connection>) -> Result<T, E>,
{
    let factory = source.session_factory();
    let span = unit_span(options);
    let unit = async {
        let slot = reserve(factory, options, &span).await?;
        off_the_executor(|| {
            let mut session = open(factory, slot, options, &span)?;
            let result = body(&mut session);
            let (attempt, after_commit) = finish(session, result, &span);
            // The unit is over: its after-commit work may run units of its own.
            after_commit.run();
            match attempt {
                Attempt::Done(result) => result,
                Attempt::Retry(error) => Err(error),
            }
        })
    };
    unit.instrument(span.clone()).await
}

/// Checks nesting and waits for a slot, asynchronously, until the checkout
/// deadline (a `requires_new` unit nested in another does not wait).
async fn reserve<C: PoolableConnection>(
    factory: &SessionFactory<C>,
    options: &UnitOptions,
    span: &Span,
) -> Result<(Slot<C>, Instant), Error> {
    let reserved = async {
        let outer = check_nesting(factory.id(), options)?;
        let deadline = factory.deadline();
        let slot = match outer {
            None => factory.pool.acquire_slot_async(deadline).await?,
            Some(outer) => factory.second_slot(options, outer)?,
        };
        Ok((slot, deadline))
    };
    reserved.await.inspect_err(|_| not_begun(span))
}

/// Registers the unit and begins its transaction on the reserved slot.
fn open<C: PoolableConnection>(
    factory: &SessionFactory<C>,
    (slot, deadline): (Slot<C>, Instant),
    options: &UnitOptions,
    span: &Span,
) -> Result<Session<C>, Error> {
    let opened = Registration::unit(factory.id(), options)
        .and_then(|(registration, _)| factory.open(slot, options, deadline, registration));
    opened.inspect_err(|_| not_begun(span))
}

/// The async twin of [`run_unit_retrying`](crate::run_unit_retrying): the wait
/// between attempts is a `tokio::time::sleep`, with no connection held.
///
/// # Errors
/// The body's error, or the runtime's converted with `E::from`, once attempts
/// run out or the error is not transient.
pub async fn run_unit_async_retrying<S, T, E, F>(
    source: &S,
    options: &UnitOptions,
    mut body: F,
) -> Result<T, E>
where
    S: SessionSource + ?Sized,
    E: From<Error>,
    F: FnMut(&mut Session<S::Connection>) -> Result<T, E>,
{
    let factory = source.session_factory();
    let span = unit_span(options);
    let unit = async {
        let mut attempts =
            RetryLoop::new(options, &span, &factory.pool.shared.counters.unit_retries);
        loop {
            let slot = reserve(factory, options, &span).await?;
            let outcome = off_the_executor(|| {
                let mut session = open(factory, slot, options, &span)?;
                let result = body(&mut session);
                let (attempt, after_commit) = finish(session, result, &span);
                // The unit is over: its after-commit work may run units of its own.
                after_commit.run();
                Ok(attempt)
            });
            match attempts.after(outcome?) {
                Next::Return(result) => return result,
                Next::RetryAfter(delay) => tokio::time::sleep(delay).await,
            }
        }
    };
    unit.instrument(span.clone()).await
}

//! The one retry rule of every flavour. A driver runs an attempt, hands its
//! outcome to [`RetryLoop::after`], and either returns the result or waits
//! the delay it is given (a thread sleep or a tokio sleep, holding no
//! connection) and runs the next attempt. How many attempts, how long to
//! wait, what is counted and what the unit's span records are decided here.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tracing::Span;

use crate::error::Error;
use crate::options::UnitOptions;
use crate::unit_span::{record_attempt, record_outcome, Outcome};

/// What one attempt ended with.
pub(crate) enum Attempt<T, E> {
    /// Final: committed (`Ok`), or failed in a way another attempt cannot fix.
    Done(Result<T, E>),
    /// Failed transiently; another attempt may succeed.
    Retry(E),
}

/// The attempt whose `COMMIT` succeeded: done, with `value`.
#[inline]
pub(crate) fn committed<T, E>(value: T, span: &Span) -> Attempt<T, E> {
    record_outcome(span, Outcome::Committed);
    Attempt::Done(Ok(value))
}

/// The attempt whose `COMMIT` failed: retried only when the server refused
/// it transiently (never when its outcome is unknown).
#[cold]
pub(crate) fn commit_failed<T, E: From<Error>>(error: Error, span: &Span) -> Attempt<T, E> {
    record_outcome(span, Outcome::of_commit_error(&error));
    if error.is_transient() {
        Attempt::Retry(E::from(error))
    } else {
        Attempt::Done(Err(E::from(error)))
    }
}

/// The attempt whose body failed and was rolled back: retried when one of
/// its statements failed transiently.
pub(crate) fn body_failed<T, E>(error: E, transient: bool, span: &Span) -> Attempt<T, E> {
    record_outcome(span, Outcome::RolledBack);
    if transient {
        Attempt::Retry(error)
    } else {
        Attempt::Done(Err(error))
    }
}

/// What the driver does next.
pub(crate) enum Next<T, E> {
    /// Return this to the caller.
    Return(Result<T, E>),
    /// Wait this long, then run the next attempt.
    RetryAfter(Duration),
}

/// The attempts of one unit of work.
pub(crate) struct RetryLoop<'a> {
    options: &'a UnitOptions,
    span: &'a Span,
    retries: &'a AtomicUsize,
    attempts: u32,
    attempt: u32,
}

impl<'a> RetryLoop<'a> {
    /// The loop of a unit with `options`, counting retries in `retries`.
    pub(crate) fn new(options: &'a UnitOptions, span: &'a Span, retries: &'a AtomicUsize) -> Self {
        RetryLoop {
            options,
            span,
            retries,
            attempts: options.retry_policy().map_or(1, |p| p.max_attempts()),
            attempt: 1,
        }
    }

    /// Decides what follows an attempt that ended with `outcome`.
    #[inline]
    pub(crate) fn after<T, E>(&mut self, outcome: Attempt<T, E>) -> Next<T, E> {
        match outcome {
            Attempt::Done(result) => Next::Return(result),
            Attempt::Retry(error) if self.attempt >= self.attempts => Next::Return(Err(error)),
            Attempt::Retry(_) => Next::RetryAfter(self.next_attempt()),
        }
    }

    #[cold]
    #[inline(never)]
    fn next_attempt(&mut self) -> Duration {
        self.retries.fetch_add(1, Ordering::Relaxed);
        let delay = self
            .options
            .retry_policy()
            .map_or_else(Default::default, |p| p.delay_before_retry(self.attempt));
        record_outcome(self.span, Outcome::Retrying);
        tracing::debug!(
            target: "dbscope",
            unit = self.options.name(),
            attempt = self.attempt,
            ?delay,
            "transient error; retrying the unit of work"
        );
        self.attempt += 1;
        record_attempt(self.span, self.attempt);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::RetryPolicy;

    #[test]
    fn retries_transient_failures_until_the_attempts_run_out() {
        let options = UnitOptions::new("t").retry(RetryPolicy::attempts(3));
        let (span, retries) = (Span::none(), AtomicUsize::new(0));
        let mut attempts = RetryLoop::new(&options, &span, &retries);
        assert!(matches!(
            attempts.after::<(), u8>(Attempt::Retry(1)),
            Next::RetryAfter(_)
        ));
        assert!(matches!(
            attempts.after::<(), u8>(Attempt::Retry(2)),
            Next::RetryAfter(_)
        ));
        assert!(matches!(
            attempts.after::<(), u8>(Attempt::Retry(3)),
            Next::Return(Err(3))
        ));
        assert_eq!(retries.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn without_a_policy_one_attempt_and_a_final_answer_is_returned() {
        let options = UnitOptions::new("t");
        let (span, retries) = (Span::none(), AtomicUsize::new(0));
        let mut attempts = RetryLoop::new(&options, &span, &retries);
        assert!(matches!(
            attempts.after::<u8, u8>(Attempt::Retry(1)),
            Next::Return(Err(1))
        ));
        let mut attempts = RetryLoop::new(&options, &span, &retries);
        assert!(matches!(
            attempts.after::<u8, u8>(Attempt::Done(Ok(7))),
            Next::Return(Ok(7))
        ));
        assert_eq!(retries.load(Ordering::Relaxed), 0);
    }
}

//! Starting detached async work once the data it needs is committed.

use std::future::Future;

use crate::error::Error;
use crate::open_units::after_commit;

/// Spawns `future` on the current tokio runtime once the innermost session
/// open on this thread (or the native async unit this task is in) commits;
/// drops it unspawned if that session rolls back.
///
/// This is the short path for "start a job for the row I just wrote": the
/// task can never run before the row is visible to other connections, and
/// never runs for a row that was rolled back. The runtime handle is captured
/// now (inside the unit of work, usually inside `block_in_place`), and the
/// task is spawned after the connection went back to the pool. Pass the task
/// ids, not rows: the task reloads what it needs (see `#[detach_ids]`).
///
/// # Errors
/// [`Phase::Nesting`](crate::Phase::Nesting) when no session is open on this
/// thread and the task is in no native unit (call it inside a unit of work).
///
/// # Panics
/// When called outside a tokio runtime, like `tokio::spawn`.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use dbscope_runtime::{run_unit_async, spawn_after_commit, Error, SessionFactory, UnitOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let factory = SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
/// let (tx, rx) = tokio::sync::oneshot::channel();
/// run_unit_async(&factory, &UnitOptions::new("create"), |_session| {
///     // ... insert the row ...
///     spawn_after_commit(async move {
///         let _ = tx.send("the row is committed"); // runs after COMMIT
///     })
/// })
/// .await?;
/// assert_eq!(rx.await.unwrap(), "the row is committed");
/// # Ok(())
/// # }
/// ```
pub fn spawn_after_commit<F>(future: F) -> Result<(), Error>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    let work = Box::new(move || {
        drop(handle.spawn(future));
    });
    // Inside a native async unit: its task-local list.
    #[cfg(feature = "async")]
    let work = match crate::after_commit_native::register(work) {
        Ok(()) => return Ok(()),
        Err(work) => work,
    };
    after_commit(work)
}

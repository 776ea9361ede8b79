//! After-commit work of native async units of work.
//!
//! A native unit's body may move between worker threads at each `.await`, so
//! its after-commit work lives in a task-local list (the blocking flavour's
//! lives in a thread-local one, `open_units.rs`). Work registered with
//! [`spawn_after_commit`](crate::spawn_after_commit) inside a native unit
//! runs once the unit has committed and its connection is back in the pool;
//! it is dropped unrun when the attempt rolls back (a retry starts with an
//! empty list), and work registered in a joined unit (`name_in`) whose
//! savepoint rolls back is dropped with it.

use std::cell::RefCell;
use std::future::Future;

/// Work to run after the commit; `Send`, as the unit's future is.
pub(crate) type SendWork = Box<dyn FnOnce() + Send>;

tokio::task_local! {
    static WORK: RefCell<Vec<SendWork>>;
}

/// Runs `unit` with an after-commit list of its own; gives the list back with
/// the unit's output, for the caller to run (committed) or drop.
pub(crate) async fn with_after_commit<F: Future>(unit: F) -> (F::Output, Vec<SendWork>) {
    WORK.scope(RefCell::new(Vec::new()), async {
        let output = unit.await;
        let work = WORK.with(|work| std::mem::take(&mut *work.borrow_mut()));
        (output, work)
    })
    .await
}

/// Registers `work` with the native unit this task is in; hands it back when
/// the task is in none.
pub(crate) fn register(work: SendWork) -> Result<(), SendWork> {
    let mut slot = Some(work);
    let _ = WORK.try_with(|list| {
        if let Some(work) = slot.take() {
            list.borrow_mut().push(work);
        }
    });
    slot.map_or(Ok(()), Err)
}

/// How much work is registered: a joined unit notes it before its body.
pub(crate) fn mark() -> usize {
    WORK.try_with(|list| list.borrow().len()).unwrap_or(0)
}

/// Drops the work registered since `mark` (a rolled-back attempt or savepoint).
pub(crate) fn drop_since(mark: usize) {
    let dropped = WORK
        .try_with(|list| {
            let mut list = list.borrow_mut();
            let mark = mark.min(list.len());
            list.split_off(mark)
        })
        .unwrap_or_default();
    drop(dropped);
}

/// Runs the work of a committed unit, in registration order.
pub(crate) fn run(work: Vec<SendWork>) {
    if !work.is_empty() {
        tracing::debug!(target: "dbscope", jobs = work.len(), "running after-commit work");
        for job in work {
            job();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn job(log: &Arc<Mutex<Vec<u32>>>, n: u32) -> SendWork {
        let log = Arc::clone(log);
        Box::new(move || log.lock().unwrap().push(n))
    }

    #[tokio::test]
    async fn work_is_kept_per_unit_and_dropped_since_a_mark() {
        let log = Arc::new(Mutex::new(Vec::new()));
        assert!(register(job(&log, 0)).is_err(), "outside a unit");
        let ((), work) = with_after_commit(async {
            register(job(&log, 1)).ok().unwrap();
            let mark = mark();
            register(job(&log, 2)).ok().unwrap();
            drop_since(mark);
            register(job(&log, 3)).ok().unwrap();
        })
        .await;
        assert!(
            log.lock().unwrap().is_empty(),
            "nothing runs before the caller says"
        );
        run(work);
        assert_eq!(*log.lock().unwrap(), [1, 3]);
    }
}

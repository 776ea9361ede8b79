//! What is open on this thread: sessions, the units of work among them, and the
//! work each wants run after it commits.
//!
//! One per-thread list serves two jobs, so a unit of work touches it twice in
//! all (once to open, once to close):
//! - **Nesting.** A unit of work opened while another one on the same factory
//!   is open on the same thread fails fast with
//!   [`Phase::Nesting`](crate::Phase::Nesting). The outer unit holds a
//!   connection and the inner one would wait for a second: with a pool of one
//!   that wait never ends, and with any pool it splits one logical operation
//!   over two transactions. The fix the error names: pass the session
//!   (`&mut Conn`) to a plain helper function instead.
//! - **After-commit work.** Work registered on an open session waits in the
//!   list, tagged with the session's entry, until the session commits (the
//!   work is handed back and run once the connection is back in the pool) or
//!   ends any other way (the work is dropped, never run).
//!
//! Entries are plain data and the work sits in a list of its own, so the
//! common unit (no after-commit work) opens and closes with a push and a pop.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::error::{Error, Phase};
use crate::options::UnitOptions;

type Work = Box<dyn FnOnce()>;

/// One open session: plain data, so opening and closing a unit of work is a
/// push and a pop with no allocation.
#[derive(Clone, Copy)]
struct Entry {
    id: u64,
    factory: u64,
    /// The unit's name, for units of work; `None` for hand-opened sessions.
    unit: Option<&'static str>,
}

struct Registry {
    next_id: u64,
    /// Innermost last.
    entries: Vec<Entry>,
    /// After-commit work, tagged with the id of the session it waits for; in
    /// registration order. Empty for almost every unit.
    work: Vec<(u64, Work)>,
}

thread_local! {
    static OPEN: RefCell<Registry> = const {
        RefCell::new(Registry { next_id: 0, entries: Vec::new(), work: Vec::new() })
    };
}

#[cold]
#[inline(never)]
pub(crate) fn nesting_error(unit: &str, outer: &str) -> Error {
    let function = unit.rsplit("::").next().unwrap_or(unit);
    Error::new(
        Phase::Nesting,
        format!(
            "unit of work `{unit}` was called inside unit of work `{outer}` on the same \
             session factory; it would wait for a second connection while the first is \
             held. To join `{outer}`'s transaction, call `{function}_in(conn, ..)` (generated \
             by `#[unit_of_work]` next to `{function}`) with the caller's connection; to run \
             in a transaction of its own on a second connection, give `{function}` the \
             `requires_new` option"
        ),
    )
}

/// A `requires_new` unit nested in `outer` found no free connection.
#[cold]
#[inline(never)]
pub(crate) fn no_second_connection(unit: &str, outer: &str, max_size: usize) -> Error {
    Error::new(
        Phase::Nesting,
        format!(
            "unit of work `{unit}` (requires_new) needs a second connection while `{outer}` \
             holds one on this thread, and none of the pool's {max_size} was free; it does not \
             wait, as that could deadlock the pool. Raise `max_size`, or let it join \
             `{outer}`'s transaction"
        ),
    )
}

impl Registry {
    #[inline]
    fn open_unit_on(&self, factory: u64) -> Option<&'static str> {
        // Any unit on the factory, also behind a hand-opened session on it.
        self.entries
            .iter()
            .find_map(|entry| entry.unit.filter(|_| entry.factory == factory))
    }

    #[inline]
    fn push(&mut self, factory: u64, unit: Option<&'static str>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push(Entry { id, factory, unit });
        id
    }

    #[inline]
    fn remove(&mut self, id: u64) -> Option<Vec<Work>> {
        // Sessions usually end innermost first.
        match self.entries.last() {
            Some(entry) if entry.id == id => {
                self.entries.pop();
            }
            _ => self.remove_out_of_order(id),
        }
        if self.work.is_empty() {
            None
        } else {
            Some(self.take_work(id))
        }
    }

    #[cold]
    #[inline(never)]
    fn remove_out_of_order(&mut self, id: u64) {
        if let Some(index) = self.entries.iter().rposition(|entry| entry.id == id) {
            self.entries.remove(index);
        }
    }

    #[cold]
    #[inline(never)]
    fn take_work(&mut self, id: u64) -> Vec<Work> {
        let mut taken = Vec::new();
        let mut index = 0;
        while index < self.work.len() {
            if self.work[index].0 == id {
                taken.push(self.work.remove(index).1);
            } else {
                index += 1;
            }
        }
        taken
    }
}

#[cfg(feature = "tokio")]
/// Fails with [`Phase::Nesting`] if a unit of work on `factory` is open on
/// this thread; for callers that register later (the async flavour checks
/// before it waits for a connection).
/// With `requires_new`, nesting is allowed: the outer unit's name comes back.
pub(crate) fn check_nesting(
    factory: u64,
    options: &UnitOptions,
) -> Result<Option<&'static str>, Error> {
    OPEN.with(|open| match open.borrow().open_unit_on(factory) {
        Some(outer) if !options.is_requires_new() => Err(nesting_error(options.name(), outer)),
        found => Ok(found),
    })
}

/// The id no entry has: a [`Registration`] that was closed.
const CLOSED: u64 = u64::MAX;

/// A session's entry on this thread's list; removed (its work dropped) on drop.
pub(crate) struct Registration {
    /// The entry's id; [`CLOSED`] once removed.
    id: u64,
    _stay_on_thread: crate::session_not_send::StayOnThread,
}

impl Registration {
    /// Registers a unit of work on `factory`, failing fast if one is open on
    /// it already, unless the unit `requires_new`: then the outer unit's name
    /// comes back with the registration.
    #[inline]
    pub(crate) fn unit(
        factory: u64,
        options: &UnitOptions,
    ) -> Result<(Self, Option<&'static str>), Error> {
        let unit = options.name();
        let requires_new = options.is_requires_new();
        // The closure returns three words (no error built inside the borrow),
        // so the common path stays small enough to inline.
        let opened = OPEN.with(|open| {
            let mut open = open.borrow_mut();
            match open.open_unit_on(factory) {
                Some(outer) if !requires_new => Err(outer),
                found => Ok((open.push(factory, Some(unit)), found)),
            }
        });
        match opened {
            Ok((id, outer)) => Ok((Self::new(id), outer)),
            Err(outer) => Err(nesting_error(unit, outer)),
        }
    }

    /// Registers a hand-opened session (no nesting check: two sessions by
    /// hand are legitimate, for example a reader beside a writer).
    #[inline]
    pub(crate) fn session(factory: u64) -> Self {
        Self::new(OPEN.with(|open| open.borrow_mut().push(factory, None)))
    }

    #[inline]
    fn new(id: u64) -> Self {
        Registration {
            id,
            _stay_on_thread: PhantomData,
        }
    }

    pub(crate) fn push(&self, work: Work) {
        OPEN.with(|open| open.borrow_mut().work.push((self.id, work)));
    }

    /// Removes the entry, handing its work back: the unit is over.
    #[inline]
    pub(crate) fn close(&mut self) -> AfterCommit {
        let id = std::mem::replace(&mut self.id, CLOSED);
        AfterCommit(OPEN.with(|open| open.borrow_mut().remove(id)))
    }
}

impl Drop for Registration {
    #[inline]
    fn drop(&mut self) {
        if self.id != CLOSED {
            // Dropped outside the borrow: destructors may register more work.
            let dropped = self.close();
            drop(dropped);
        }
    }
}

/// The after-commit work of a committed session, not run yet.
#[must_use = "after-commit work must be run"]
#[derive(Default)]
pub(crate) struct AfterCommit(Option<Vec<Work>>);

impl AfterCommit {
    /// Runs the work in the order it was registered.
    #[inline]
    pub(crate) fn run(self) {
        if let Some(work) = self.0 {
            run_work(work);
        }
    }
}

#[cold]
#[inline(never)]
fn run_work(work: Vec<Work>) {
    tracing::debug!(target: "dbscope", jobs = work.len(), "running after-commit work");
    for job in work {
        job();
    }
}

/// How much after-commit work is waiting on this thread: a unit that joins
/// its caller's transaction notes it, and if its savepoint rolls back it
/// drops what was registered since ([`drop_work_since`]).
pub(crate) fn work_mark() -> usize {
    OPEN.with(|open| open.borrow().work.len())
}

/// Drops the after-commit work registered since `mark` (by a joined unit
/// whose savepoint rolled back), unrun.
pub(crate) fn drop_work_since(mark: usize) {
    let dropped = OPEN.with(|open| {
        let mut open = open.borrow_mut();
        let mark = mark.min(open.work.len());
        open.work.split_off(mark)
    });
    // Outside the borrow: dropping a closure may touch the registry.
    drop(dropped);
}

/// Registers `work` to run after the innermost session open on this thread
/// commits; for code that was handed only `&mut Conn` (for example the body of
/// a `#[unit_of_work]` function whose session parameter is a plain diesel
/// connection). The work never runs if that session rolls back.
///
/// # Errors
/// [`Phase::Nesting`] when no session is open on this thread.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
/// let ran = Arc::new(AtomicBool::new(false));
/// let session = factory.session()?;
/// let flag = Arc::clone(&ran);
/// dbscope_runtime::after_commit(move || flag.store(true, Ordering::SeqCst))?;
/// session.commit()?;
/// assert!(ran.load(Ordering::SeqCst));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn after_commit(work: impl FnOnce() + 'static) -> Result<(), Error> {
    OPEN.with(|open| {
        let mut open = open.borrow_mut();
        match open.entries.last() {
            Some(entry) => {
                let id = entry.id;
                open.work.push((id, Box::new(work)));
                Ok(())
            }
            None => Err(Error::new(
                Phase::Nesting,
                "`after_commit` was called with no session open on this thread; call it inside a unit of work",
            )),
        }
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    fn log_job(log: &Rc<RefCell<Vec<u32>>>, n: u32) -> Work {
        let log = Rc::clone(log);
        Box::new(move || log.borrow_mut().push(n))
    }

    #[test]
    fn sessions_close_in_any_order_and_take_only_their_own_work() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let factory = 7;
        let mut sessions: Vec<Registration> =
            (0..5).map(|_| Registration::session(factory)).collect();
        // A unit on the factory behind hand-opened sessions on it is still seen.
        let (mut unit, outer) =
            Registration::unit(factory, &UnitOptions::new("outer")).expect("first unit");
        assert_eq!(outer, None);
        assert_eq!(
            Registration::unit(factory, &UnitOptions::new("inner"))
                .err()
                .map(|e| e.phase()),
            Some(Phase::Nesting)
        );
        let (independent, outer) =
            Registration::unit(factory, &UnitOptions::new("audit").requires_new(true))
                .expect("requires_new may nest");
        assert_eq!(outer, Some("outer"));
        drop(independent);
        assert!(Registration::unit(factory + 1, &UnitOptions::new("other factory")).is_ok());
        let innermost = log_job(&log, 100);
        after_commit(innermost).expect("a session is open");
        for (n, session) in (0..).zip(&sessions) {
            session.push(log_job(&log, n));
        }
        // The innermost (the unit) got the `after_commit` work.
        unit.close().run();
        assert_eq!(*log.borrow(), vec![100]);
        // Out of order: each hands back only its own work.
        sessions.remove(1).close().run();
        sessions.remove(2).close().run();
        assert_eq!(*log.borrow(), vec![100, 1, 3]);
        // Dropped sessions drop their work unrun.
        sessions.clear();
        assert_eq!(log.borrow().len(), 3);
        OPEN.with(|open| {
            let open = open.borrow();
            assert!(open.entries.is_empty() && open.work.is_empty());
        });
        assert!(after_commit(|| ()).is_err(), "nothing is open any more");
        assert!(Registration::unit(factory, &UnitOptions::new("after all closed")).is_ok());
    }
}

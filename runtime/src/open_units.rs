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
//! - **After-commit work.** Each open session's entry holds the work
//!   registered on it until it commits (the work is handed back and run once
//!   the connection is back in the pool) or ends any other way (the work is
//!   dropped, never run).

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::error::{Error, Phase};

type Work = Box<dyn FnOnce()>;

struct Entry {
    id: u64,
    factory: u64,
    /// The unit's name, for units of work; `None` for hand-opened sessions.
    unit: Option<&'static str>,
    work: Vec<Work>,
}

struct Registry {
    next_id: u64,
    /// Innermost last.
    entries: Vec<Entry>,
}

thread_local! {
    static OPEN: RefCell<Registry> = const {
        RefCell::new(Registry { next_id: 0, entries: Vec::new() })
    };
}

pub(crate) fn nesting_error(unit: &str, outer: &str) -> Error {
    Error::new(
        Phase::Nesting,
        format!(
            "unit of work `{unit}` was called inside unit of work `{outer}` on the same \
             session factory; it would wait for a second connection while the first is \
             held. Call a plain function that takes the session (`&mut Conn`) instead, \
             or run `{unit}` after `{outer}` returns"
        ),
    )
}

impl Registry {
    #[inline]
    fn open_unit_on(&self, factory: u64) -> Option<&'static str> {
        self.entries
            .iter()
            .find(|entry| entry.factory == factory)
            .and_then(|entry| entry.unit)
    }

    #[inline]
    fn push(&mut self, factory: u64, unit: Option<&'static str>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push(Entry {
            id,
            factory,
            unit,
            work: Vec::new(),
        });
        id
    }

    #[inline]
    fn remove(&mut self, id: u64) -> Vec<Work> {
        // Sessions usually end innermost first.
        if self.entries.last().is_some_and(|entry| entry.id == id) {
            return self
                .entries
                .pop()
                .map(|entry| entry.work)
                .unwrap_or_default();
        }
        match self.entries.iter().rposition(|entry| entry.id == id) {
            Some(index) => self.entries.remove(index).work,
            None => Vec::new(),
        }
    }
}

#[cfg(feature = "tokio")]
/// Fails with [`Phase::Nesting`] if a unit of work on `factory` is open on
/// this thread; for callers that register later (the async flavour checks
/// before it waits for a connection).
pub(crate) fn check_not_nested(factory: u64, unit: &'static str) -> Result<(), Error> {
    OPEN.with(|open| match open.borrow().open_unit_on(factory) {
        Some(outer) => Err(nesting_error(unit, outer)),
        None => Ok(()),
    })
}

/// A session's entry on this thread's list; removed (its work dropped) on drop.
pub(crate) struct Registration {
    id: u64,
    closed: bool,
    _stay_on_thread: PhantomData<*const ()>,
}

impl Registration {
    /// Registers a unit of work on `factory`, failing fast if one is open on
    /// it already.
    #[inline]
    pub(crate) fn unit(factory: u64, unit: &'static str) -> Result<Self, Error> {
        OPEN.with(|open| {
            let mut open = open.borrow_mut();
            if let Some(outer) = open.open_unit_on(factory) {
                return Err(nesting_error(unit, outer));
            }
            Ok(Self::new(open.push(factory, Some(unit))))
        })
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
            closed: false,
            _stay_on_thread: PhantomData,
        }
    }

    pub(crate) fn push(&self, work: Work) {
        OPEN.with(|open| {
            let mut open = open.borrow_mut();
            if let Some(entry) = open.entries.iter_mut().rev().find(|e| e.id == self.id) {
                entry.work.push(work);
            }
        });
    }

    /// Removes the entry, handing its work back: the unit is over.
    #[inline]
    pub(crate) fn close(&mut self) -> AfterCommit {
        self.closed = true;
        AfterCommit(OPEN.with(|open| open.borrow_mut().remove(self.id)))
    }
}

impl Drop for Registration {
    #[inline]
    fn drop(&mut self) {
        if !self.closed {
            // Dropped outside the borrow: destructors may register more work.
            let dropped = self.close();
            drop(dropped);
        }
    }
}

/// The after-commit work of a committed session, not run yet.
#[must_use = "after-commit work must be run"]
#[derive(Default)]
pub(crate) struct AfterCommit(Vec<Work>);

impl AfterCommit {
    /// Runs the work in the order it was registered.
    #[inline]
    pub(crate) fn run(self) {
        if self.0.is_empty() {
            return;
        }
        for job in self.0 {
            job();
        }
    }
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
    OPEN.with(|open| match open.borrow_mut().entries.last_mut() {
        Some(entry) => {
            entry.work.push(Box::new(work));
            Ok(())
        }
        None => Err(Error::new(
            Phase::Nesting,
            "`after_commit` was called with no session open on this thread; call it inside a unit of work",
        )),
    })
}

//! Detects a unit of work opened while another one on the same factory is open
//! on the same thread.
//!
//! The outer unit holds a connection; the inner one would wait for a second.
//! With a pool of one that wait can never end, and with any pool it splits one
//! logical operation over two transactions. So a nested unit fails fast with
//! [`Phase::Nesting`](crate::Phase::Nesting) and an error that says what to do:
//! pass the session (`&mut Conn`) to a helper function instead.

use std::cell::RefCell;

use crate::error::{Error, Phase};

thread_local! {
    static OPEN_UNITS: RefCell<Vec<(u64, &'static str)>> = const { RefCell::new(Vec::new()) };
}

/// Marks a unit of work as open on this thread until dropped.
pub(crate) struct NestingGuard {
    factory_id: u64,
}

impl NestingGuard {
    pub(crate) fn enter(factory_id: u64, unit: &'static str) -> Result<Self, Error> {
        OPEN_UNITS.with(|open| {
            let mut open = open.borrow_mut();
            if let Some((_, outer)) = open.iter().find(|(id, _)| *id == factory_id) {
                return Err(Error::new(
                    Phase::Nesting,
                    format!(
                        "unit of work `{unit}` was called inside unit of work `{outer}` on the same \
                         session factory; it would wait for a second connection while the first is \
                         held. Call a plain function that takes the session (`&mut Conn`) instead, \
                         or run `{unit}` after `{outer}` returns"
                    ),
                ));
            }
            open.push((factory_id, unit));
            Ok(NestingGuard { factory_id })
        })
    }
}

impl Drop for NestingGuard {
    fn drop(&mut self) {
        OPEN_UNITS.with(|open| {
            let mut open = open.borrow_mut();
            if let Some(index) = open.iter().rposition(|(id, _)| *id == self.factory_id) {
                open.remove(index);
            }
        });
    }
}

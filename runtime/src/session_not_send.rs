//! The marker that keeps a blocking [`Session`](crate::Session) on the
//! thread that opened it, named so that the compiler's error says what was
//! held and what to do.
//!
//! A `Session` holds a checked-out connection inside an open transaction;
//! it must not be held across an `.await` (the connection would stay checked
//! out while the task waits) or moved to another thread or task. On stable
//! Rust a type leaves `Send` through a field that is not `Send`, and rustc's
//! error names the innermost such type: "`*const ()` cannot be sent between
//! threads safely" said nothing. With this marker it reads "`*const
//! SessionIsOpen_EndItBeforeAwaitOrSpawn` cannot be sent between threads
//! safely", followed by "required because it appears within the type
//! `Session<..>`" and, for a future, the variable held across the `.await`.

use std::marker::PhantomData;

/// Never constructed: its name is the message. Public (and re-exported by
/// `dbscope`) only so that the compiler names it by a path the user can
/// read, not by this crate's private module.
#[allow(non_camel_case_types)]
#[doc(hidden)]
pub enum SessionIsOpen_EndItBeforeAwaitOrSpawn {}

/// A zero-sized field that makes its holder neither `Send` nor `Sync`.
pub(crate) type StayOnThread = PhantomData<*const SessionIsOpen_EndItBeforeAwaitOrSpawn>;

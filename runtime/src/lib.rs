//! The runtime of [dbscope](https://docs.rs/dbscope): a session factory over a
//! validating connection pool for Diesel, sessions that cannot outlive their
//! transaction, and the units of work that `#[unit_of_work]` expands into.
//!
//! Use it through the `dbscope` crate, which re-exports everything here along
//! with the macros.
//!
//! ```
//! use diesel::prelude::*;
//! use dbscope_runtime::{Error, SessionFactory, UnitOptions};
//!
//! let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
//! factory.run(&UnitOptions::new("schema"), |session| {
//!     diesel::sql_query("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
//!         .execute(&mut **session)
//!         .map_err(Error::from)
//! })?;
//! assert_eq!(factory.stats().in_use, 0);
//! # Ok::<(), Error>(())
//! ```
//!
//! # Features
//! - `sqlite` (default): SQLite, bundled, nothing to install.
//! - `postgres`: PostgreSQL through libpq.
//! - `mysql`: MySQL and MariaDB through libmysqlclient / libmariadb.
//! - `tokio` (default): units of work in `async fn`s, [`spawn_after_commit`].
//! - `serde` (default): [`Id`] serialises as its bare key.
//! - `async`: native async sessions over diesel-async ([`AsyncSessionFactory`],
//!   [`run_unit_native`]) for the enabled backends, in the same pool as the
//!   blocking flavour.

#[cfg(feature = "async")]
mod after_commit_native;
#[cfg(feature = "async")]
mod async_checkout;
#[cfg(feature = "async")]
mod async_factory;
#[cfg(feature = "async")]
mod async_session;
mod backend;
#[cfg(feature = "async")]
mod backend_async;
mod checkout;
mod commit_outcome;
mod config;
mod detach;
mod error;
mod factory;
mod id;
mod join;
mod macro_support;
mod open_units;
mod options;
mod pool;
mod redact;
mod retry_loop;
#[cfg(feature = "async")]
mod round_trip;
mod session;
mod session_not_send;
mod signals;
#[cfg(feature = "tokio")]
mod spawn;
mod stats;
mod test_database;
mod transient;
mod unit;
#[cfg(feature = "tokio")]
mod unit_block_in_place;
#[cfg(feature = "async")]
mod unit_native;
mod unit_span;

#[cfg(feature = "async")]
pub use async_checkout::AsyncPooledConnection;
#[cfg(feature = "async")]
pub use async_factory::{AsyncSessionFactory, AsyncSessionFactoryBuilder, AsyncSessionSource};
pub use backend::{BackendKind, PoolableConnection, ServerTraits};
#[cfg(feature = "async")]
pub use backend_async::AsyncPoolableConnection;
pub use checkout::PooledConnection;
pub use config::Validation;
pub use detach::Detached;
pub use error::{Error, Phase};
pub use factory::{SessionFactory, SessionFactoryBuilder, SessionSource};
pub use id::{load_by_id, Id, LoadById};
pub use join::JoinableSession;
pub use open_units::after_commit;
pub use options::{Isolation, RetryPolicy, SqliteLock, UnitOptions};
pub use redact::RedactedUrl;
pub use session::Session;
#[doc(hidden)] // named in the compiler's "cannot be sent" errors, nowhere else
pub use session_not_send::SessionIsOpen_EndItBeforeAwaitOrSpawn;
#[cfg(feature = "tokio")]
pub use spawn::spawn_after_commit;
pub use stats::PoolStats;
pub use test_database::TestDatabase;
pub use transient::{classify, is_transient, TransientKind};
#[cfg(feature = "async")]
#[doc(hidden)] // bounds of the body a native unit runs: macro plumbing
pub use unit_native::{AsyncUnitBody, AsyncUnitBodyMut};
// The runner functions `#[unit_of_work]` expands to: reachable, not public API.
#[doc(hidden)]
pub use join::join_unit;
#[cfg(feature = "async")]
#[doc(hidden)]
pub use join::join_unit_native;
#[doc(hidden)]
pub use unit::{run_unit, run_unit_retrying};
#[cfg(feature = "tokio")]
#[doc(hidden)]
pub use unit_block_in_place::{run_unit_async, run_unit_async_retrying};
#[cfg(feature = "async")]
#[doc(hidden)]
pub use unit_native::{run_unit_native, run_unit_native_retrying};

#[doc(hidden)]
pub mod __private;

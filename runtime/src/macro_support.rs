//! Compile-time checks for `#[unit_of_work]` expansions.
//!
//! Each check is a trait plus a function whose bound names it. Expansions call
//! the function with spans on the user's tokens (the return type, the option),
//! so an unmet bound reports there, with the message below instead of a bare
//! "trait bound not satisfied". The functions do nothing at run time.

use crate::backend::PoolableConnection;
use crate::error::Error;
use crate::factory::SessionSource;

/// Implemented for the return types a unit of work can have: `Result<T, E>`
/// where `E: From<Error>`, under any alias.
#[diagnostic::on_unimplemented(
    message = "a `#[unit_of_work]` function must return `Result<T, E>`, not `{Self}`",
    label = "expected `Result<T, E>` with `E: From<dbscope::Error>`",
    note = "the unit of work commits on `Ok` and rolls back on `Err`; return `Result<T, E>` (or an alias of it) whose error type converts from `dbscope::Error`"
)]
pub trait UnitResult {}

impl<T, E: From<Error>> UnitResult for Result<T, E> {}

/// Checks that `R` can be the return type of a unit of work.
#[inline(always)]
pub const fn require_unit_result<R: UnitResult>() {}

/// Implemented for connections whose transactions take SQLite lock modes
/// (`BEGIN IMMEDIATE` / `BEGIN EXCLUSIVE`).
#[diagnostic::on_unimplemented(
    message = "`immediate` and `exclusive` are SQLite lock modes, and this unit of work runs on `{Self}`",
    label = "not a SQLite connection",
    note = "remove `immediate` / `exclusive`; on PostgreSQL and MySQL take row locks with `SELECT .. FOR UPDATE`"
)]
pub trait SupportsSqliteLocking: PoolableConnection {}

#[cfg(feature = "sqlite")]
impl SupportsSqliteLocking for diesel::SqliteConnection {}

/// Implemented for connections whose transactions can run at any
/// [`Isolation`](crate::Isolation) level.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot run a transaction at this isolation level",
    label = "SQLite transactions are always serializable",
    note = "remove `isolation`, or write `isolation = serializable`"
)]
pub trait SupportsIsolationLevels: PoolableConnection {}

#[cfg(feature = "postgres")]
impl SupportsIsolationLevels for diesel::PgConnection {}

#[cfg(feature = "mysql")]
impl SupportsIsolationLevels for diesel::MysqlConnection {}

/// Checks that the connections of `source` honour `immediate` / `exclusive`.
#[inline(always)]
pub fn require_sqlite_locking<S>(_source: &S)
where
    S: SessionSource + ?Sized,
    S::Connection: SupportsSqliteLocking,
{
}

/// Checks that the connections of `source` honour an isolation level other
/// than `SERIALIZABLE`.
#[inline(always)]
pub fn require_isolation_levels<S>(_source: &S)
where
    S: SessionSource + ?Sized,
    S::Connection: SupportsIsolationLevels,
{
}

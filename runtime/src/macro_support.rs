//! Support for `#[unit_of_work]` expansions: entry points generic over the
//! return type, and compile-time checks of what a backend can honour.
//!
//! Each check is a trait plus a function whose bound names it. Expansions call
//! the function with spans on the user's tokens (the return type, the option),
//! so an unmet bound reports there, with the message below instead of a bare
//! "trait bound not satisfied". The check functions do nothing at run time.

use crate::backend::PoolableConnection;
use crate::error::Error;
use crate::factory::SessionSource;
use crate::options::UnitOptions;
use crate::session::Session;
use crate::unit::{run_unit, run_unit_retrying};
#[cfg(feature = "tokio")]
use crate::unit_block_in_place::{run_unit_async, run_unit_async_retrying};

/// Implemented for the return types a unit of work can have: `Result<T, E>`
/// where `E: From<Error>`, under any alias.
///
/// The entry points below are generic over it, so a function that returns
/// something else gets exactly one error, on its return type.
#[diagnostic::on_unimplemented(
    message = "a `#[unit_of_work]` function must return `Result<T, E>`, not `{Self}`",
    label = "expected `Result<T, E>` with `E: From<dbscope::Error>`",
    note = "the unit of work commits on `Ok` and rolls back on `Err`; return `Result<T, E>` (or an alias of it) whose error type converts from `dbscope::Error`"
)]
pub trait UnitResult: Sized {
    /// The `Ok` type.
    type Value;
    /// The `Err` type.
    type Error: From<Error>;
    /// `self` as a `Result` (the identity).
    fn into_result(self) -> Result<Self::Value, Self::Error>;
    /// Back from a `Result` (the identity).
    fn from_result(result: Result<Self::Value, Self::Error>) -> Self;
}

impl<T, E: From<Error>> UnitResult for Result<T, E> {
    type Value = T;
    type Error = E;

    #[inline(always)]
    fn into_result(self) -> Self {
        self
    }

    #[inline(always)]
    fn from_result(result: Self) -> Self {
        result
    }
}

/// [`run_unit`] for a body returning any [`UnitResult`].
///
/// # Errors
/// As [`run_unit`].
#[inline]
pub fn unit<S, R, F>(source: &S, options: &UnitOptions, body: F) -> R
where
    S: SessionSource + ?Sized,
    R: UnitResult,
    F: FnOnce(&mut Session<S::Connection>) -> R,
{
    R::from_result(run_unit(source, options, |session| {
        body(session).into_result()
    }))
}

/// [`run_unit_retrying`] for a body returning any [`UnitResult`].
///
/// # Errors
/// As [`run_unit_retrying`].
#[inline]
pub fn unit_retrying<S, R, F>(source: &S, options: &UnitOptions, mut body: F) -> R
where
    S: SessionSource + ?Sized,
    R: UnitResult,
    F: FnMut(&mut Session<S::Connection>) -> R,
{
    R::from_result(run_unit_retrying(source, options, |session| {
        body(session).into_result()
    }))
}

/// [`run_unit_async`] for a body returning any [`UnitResult`].
///
/// # Errors
/// As [`run_unit_async`].
#[cfg(feature = "tokio")]
pub async fn unit_async<S, R, F>(source: &S, options: &UnitOptions, body: F) -> R
where
    S: SessionSource + ?Sized,
    R: UnitResult,
    F: FnOnce(&mut Session<S::Connection>) -> R,
{
    R::from_result(run_unit_async(source, options, |session| body(session).into_result()).await)
}

/// [`run_unit_async_retrying`] for a body returning any [`UnitResult`].
///
/// # Errors
/// As [`run_unit_async_retrying`].
#[cfg(feature = "tokio")]
pub async fn unit_async_retrying<S, R, F>(source: &S, options: &UnitOptions, mut body: F) -> R
where
    S: SessionSource + ?Sized,
    R: UnitResult,
    F: FnMut(&mut Session<S::Connection>) -> R,
{
    R::from_result(
        run_unit_async_retrying(source, options, |session| body(session).into_result()).await,
    )
}

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

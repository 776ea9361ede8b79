//! The compile-time checks behind `#[detach_ids]`, and the short unit of work
//! that reloads its `#[load]` parameters.
//!
//! For each parameter type and the return type (and each field of a
//! `#[derive(Detached)]` payload), the macro peels known containers
//! (`Option`, `Vec`, `Box`, `Arc`, references, tuples, ...) and probes every
//! leaf type `T` with `(&&&&&&&&&&&Probe::<T>::new()).probe().param()`
//! (`.returned()`, `.field()`). Method resolution tries the receiver with
//! eleven references first and drops one at each step, so the first trait
//! below whose bound `T` meets decides (autoref specialization, on stable
//! Rust). Each returns a token; an attached token's `param()` /
//! `returned()` carries a bound on a sealed trait that nothing implements,
//! whose `#[diagnostic::on_unimplemented]` names what was found and the fix.
//!
//! Priority, highest first: [`Detached`] (accepted: the user's word, or a
//! payload whose fields were checked by `#[derive(Detached)]`); dbscope
//! sessions; types that deref to a connection (pooled connections of r2d2,
//! deadpool-style pools and ours); types that deref to a diesel-async
//! connection (`AsyncPooledConnection`, bb8/deadpool guards); diesel
//! connections; diesel-async connections; diesel tables (accepted: a table is
//! a query handle); rows
//! (`HasTable`, from `#[derive(Identifiable)]`); rows by `Selectable` for each
//! enabled backend; anything else (accepted).

use std::marker::PhantomData;
use std::ops::Deref;

use diesel::associations::HasTable;
use diesel::{Connection, Table};

use crate::backend::PoolableConnection;
use crate::error::Error;
use crate::factory::SessionSource;
use crate::options::UnitOptions;
use crate::session::Session;

/// Marks a type as safe to carry across a boundary although it looks
/// attached: `#[detach_ids]` accepts it wherever it would reject a row.
///
/// Use it for a snapshot type that derives diesel traits (so it looks like a
/// row) but is plain data the receiver never writes back. Implementing it is a
/// visible, greppable promise; for a single parameter, `#[allow_attached]` is
/// the narrower exemption.
///
/// ```
/// use diesel::prelude::*;
/// use dbscope_runtime::Detached;
///
/// diesel::table! { apps (id) { id -> Integer, name -> Text } }
///
/// /// What a report needs of an app, copied out of its session.
/// #[derive(Queryable, Selectable, Clone)]
/// #[diesel(table_name = apps)]
/// struct AppSnapshot { id: i32, name: String }
///
/// // `#[detach_ids]` functions may now take and return `AppSnapshot`.
/// impl Detached for AppSnapshot {}
/// ```
pub trait Detached {}

/// Implemented for the toolkit's own session types, which `#[detach_ids]`
/// names as such in its errors.
#[doc(hidden)]
pub trait IsSession {}

impl<C: PoolableConnection> IsSession for Session<C> {}

/// The thing probed: a type, never a value.
pub struct Probe<T: ?Sized>(PhantomData<fn() -> PhantomData<T>>);

impl<T: ?Sized> Default for Probe<T> {
    fn default() -> Self {
        Probe::new()
    }
}

impl<T: ?Sized> Probe<T> {
    /// A probe of `T`.
    #[inline(always)]
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

macro_rules! token {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<T: ?Sized>(PhantomData<fn() -> PhantomData<T>>);

        impl<T: ?Sized> $name<T> {
            #[inline(always)]
            const fn new() -> Self {
                $name(PhantomData)
            }
        }
    };
}

/// The verdict for a type that may cross a boundary.
pub struct Accepted;

impl Accepted {
    /// Nothing to report for a parameter.
    #[inline(always)]
    pub fn param(self) {}

    /// Nothing to report for a payload's field.
    #[inline(always)]
    pub fn field(self) {}

    /// Nothing to report for a return type.
    #[inline(always)]
    pub fn returned(self) {}
}

token!(
    /// `T` is a dbscope session or pooled connection.
    SessionToken
);
token!(
    /// `T` is a diesel connection.
    ConnectionToken
);
token!(
    /// `T` derefs to a diesel connection: a pooled connection of some pool.
    PooledToken
);
token!(
    /// `T` is a model row.
    RowToken
);

/// The probe traits, one per priority level; generated code imports them
/// all (`use ..::probes::*`) and lets method resolution pick one.
pub mod probes {
    use super::*;

    /// Level 11: the user marked `T` [`Detached`].
    pub trait ViaDetached {
        /// Accepted.
        #[inline(always)]
        fn probe(&self) -> Accepted {
            Accepted
        }
    }
    impl<T: ?Sized + Detached> ViaDetached for &&&&&&&&&&&Probe<T> {}

    /// Level 10: a dbscope session.
    pub trait ViaSession<T: ?Sized> {
        /// A session.
        #[inline(always)]
        fn probe(&self) -> SessionToken<T> {
            SessionToken::new()
        }
    }
    impl<T: ?Sized + IsSession> ViaSession<T> for &&&&&&&&&&Probe<T> {}

    /// Level 9: something that derefs to a connection (a pool's guard, which
    /// may be a connection itself, as r2d2's is).
    pub trait ViaPooled<T: ?Sized> {
        /// A pooled connection.
        #[inline(always)]
        fn probe(&self) -> PooledToken<T> {
            PooledToken::new()
        }
    }
    impl<T: ?Sized + Deref> ViaPooled<T> for &&&&&&&&&Probe<T> where T::Target: Connection {}

    /// Level 8: something that derefs to a diesel-async connection
    /// (`AsyncPooledConnection`, a bb8 or deadpool guard).
    pub trait ViaAsyncPooled<T: ?Sized> {
        /// A pooled connection.
        #[inline(always)]
        fn probe(&self) -> PooledToken<T> {
            PooledToken::new()
        }
    }
    #[cfg(feature = "async")]
    impl<T: ?Sized + Deref> ViaAsyncPooled<T> for &&&&&&&&Probe<T> where
        T::Target: diesel_async::AsyncConnection
    {
    }

    /// Level 7: a diesel connection.
    pub trait ViaConnection<T: ?Sized> {
        /// A connection.
        #[inline(always)]
        fn probe(&self) -> ConnectionToken<T> {
            ConnectionToken::new()
        }
    }
    impl<T: Connection> ViaConnection<T> for &&&&&&&Probe<T> {}

    /// Level 6: a diesel-async connection (`AsyncPgConnection`,
    /// `SyncConnectionWrapper<..>`).
    pub trait ViaAsyncConnection<T: ?Sized> {
        /// A connection.
        #[inline(always)]
        fn probe(&self) -> ConnectionToken<T> {
            ConnectionToken::new()
        }
    }
    #[cfg(feature = "async")]
    impl<T: diesel_async::AsyncConnection> ViaAsyncConnection<T> for &&&&&&Probe<T> {}

    /// Level 5: a diesel table (a query handle, not a row).
    pub trait ViaTable {
        /// Accepted.
        #[inline(always)]
        fn probe(&self) -> Accepted {
            Accepted
        }
    }
    impl<T: Table> ViaTable for &&&&&Probe<T> {}

    /// Level 4: a row of a table (`#[derive(Identifiable)]`).
    pub trait ViaHasTable<T: ?Sized> {
        /// A row.
        #[inline(always)]
        fn probe(&self) -> RowToken<T> {
            RowToken::new()
        }
    }
    impl<T: ?Sized + HasTable> ViaHasTable<T> for &&&&Probe<T> {}

    /// Level 3: a row selectable on PostgreSQL.
    pub trait ViaSelectablePg<T: ?Sized> {
        /// A row.
        #[inline(always)]
        fn probe(&self) -> RowToken<T> {
            RowToken::new()
        }
    }
    #[cfg(feature = "postgres")]
    impl<T: ?Sized + diesel::Selectable<diesel::pg::Pg>> ViaSelectablePg<T> for &&&Probe<T> {}

    /// Level 2: a row selectable on MySQL.
    pub trait ViaSelectableMysql<T: ?Sized> {
        /// A row.
        #[inline(always)]
        fn probe(&self) -> RowToken<T> {
            RowToken::new()
        }
    }
    #[cfg(feature = "mysql")]
    impl<T: ?Sized + diesel::Selectable<diesel::mysql::Mysql>> ViaSelectableMysql<T> for &&Probe<T> {}

    /// Level 1: a row selectable on SQLite.
    pub trait ViaSelectableSqlite<T: ?Sized> {
        /// A row.
        #[inline(always)]
        fn probe(&self) -> RowToken<T> {
            RowToken::new()
        }
    }
    #[cfg(feature = "sqlite")]
    impl<T: ?Sized + diesel::Selectable<diesel::sqlite::Sqlite>> ViaSelectableSqlite<T> for &Probe<T> {}

    /// Level 0: anything else: ids, plain data, DTOs, factories, generics.
    pub trait ViaPlain {
        /// Accepted.
        #[inline(always)]
        fn probe(&self) -> Accepted {
            Accepted
        }
    }
    impl<T: ?Sized> ViaPlain for Probe<T> {}
}

#[allow(unreachable_pub)] // the sealed-trait pattern: public, but unnameable outside
mod sealed {
    pub trait Sealed {}
}

/// Nothing implements this: a parameter that is a session.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a session: a connection inside an open transaction; a `#[detach_ids]` function cannot take one",
    label = "a session, passed across a boundary",
    note = "the transaction ends when the caller's unit of work does, while this function may run later or elsewhere",
    note = "take the session factory instead (`db: &SessionFactory<..>` or `Arc<SessionFactory<..>>`) and open a short unit of work inside, or pass the ids the session produced (`dbscope::Id<Row>` for a row type `Row`)"
)]
pub trait SessionParam: sealed::Sealed {}

/// Nothing implements this: a parameter that is a diesel connection.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a database connection; a `#[detach_ids]` function cannot take one",
    label = "a connection, passed across a boundary",
    note = "a connection held across slow work starves the pool, and one shared between tasks mixes their statements",
    note = "take the session factory instead (`db: &SessionFactory<..>`) and use `#[load]` parameters or a short `#[unit_of_work]` inside"
)]
pub trait ConnectionParam: sealed::Sealed {}

/// Nothing implements this: a parameter that derefs to a connection.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a pooled database connection; a `#[detach_ids]` function cannot take one",
    label = "a checked-out connection, passed across a boundary",
    note = "it stays checked out of its pool for as long as this function holds it",
    note = "take the session factory (or pool) instead and check a connection out for each short piece of database work"
)]
pub trait PooledParam: sealed::Sealed {}

/// Nothing implements this: a parameter that is a model row.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a row bound to a table; pass its id",
    label = "a model row, passed across a boundary",
    note = "a row copied out of its session goes stale: by the time this function runs it may have changed or been deleted",
    note = "mark the parameter `#[load]` (`#[load] name: {Self}`, with the parameter's own name) so callers pass `Id<{Self}>` and the current row is reloaded in a short unit of work when the call starts (with `#[detach_ids(factory = db)]`)",
    note = "or take `dbscope::Id<{Self}>` (`Id::of(&row)`) and load it where it is needed; for plain data that only looks like a row, `impl dbscope::Detached for {Self} {{}}`"
)]
pub trait RowParam: sealed::Sealed {}

/// Nothing implements this: a payload field that is a session.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a session: a connection inside an open transaction; a job payload cannot carry one",
    label = "a session, carried in a payload",
    note = "the transaction ends when the unit of work that opened it does, while the payload is used later or elsewhere",
    note = "carry the ids the session produced (`dbscope::Id<Row>` for a row type `Row`), and let the receiver open its own unit of work"
)]
pub trait SessionField: sealed::Sealed {}

/// Nothing implements this: a payload field that is a connection.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a database connection; a job payload cannot carry one",
    label = "a connection, carried in a payload",
    note = "carry ids or plain data; the receiver takes the session factory and opens a short unit of work"
)]
pub trait ConnectionField: sealed::Sealed {}

/// Nothing implements this: a payload field that derefs to a connection.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a pooled database connection; a job payload cannot carry one",
    label = "a checked-out connection, carried in a payload",
    note = "it stays checked out of its pool for as long as the payload lives",
    note = "carry ids or plain data; the receiver takes the session factory and checks a connection out for each short piece of database work"
)]
pub trait PooledField: sealed::Sealed {}

/// Nothing implements this: a payload field that is a model row.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a row bound to a table; a job payload carries its id",
    label = "a model row, carried in a payload",
    note = "a row copied into a payload goes stale: by the time the job runs it may have changed or been deleted",
    note = "carry `dbscope::Id<{Self}>` (`Id::of(&row)`) and reload the row in the job (a `#[detach_ids]` function with `#[load]`); for plain data that only looks like a row, `impl dbscope::Detached for {Self} {{}}`"
)]
pub trait RowField: sealed::Sealed {}

/// Nothing implements this: a return type that holds a session.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a session; a `#[detach_ids]` function cannot return one",
    label = "a session, returned across a boundary",
    note = "return the ids the session produced, and let the caller open its own unit of work"
)]
pub trait SessionReturn: sealed::Sealed {}

/// Nothing implements this: a return type that holds a connection.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a database connection; a `#[detach_ids]` function cannot return one",
    label = "a connection, returned across a boundary",
    note = "return ids or plain data; whoever needs the database takes the session factory"
)]
pub trait ConnectionReturn: sealed::Sealed {}

/// Nothing implements this: a return type that holds a pooled connection.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a pooled database connection; a `#[detach_ids]` function cannot return one",
    label = "a checked-out connection, returned across a boundary",
    note = "return ids or plain data; whoever needs the database takes the session factory"
)]
pub trait PooledReturn: sealed::Sealed {}

/// Nothing implements this: a return type that holds a model row.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a row bound to a table; return its id",
    label = "a model row, returned across a boundary",
    note = "return `dbscope::Id<{Self}>` (`Id::of(&row)`) or a plain data type with what the caller needs; for plain data that only looks like a row, `impl dbscope::Detached for {Self} {{}}`"
)]
pub trait RowReturn: sealed::Sealed {}

impl<T: ?Sized> SessionToken<T> {
    /// Rejects the parameter type `T`.
    #[inline(always)]
    pub fn param(self)
    where
        T: SessionParam,
    {
    }

    /// Rejects the payload field type `T`.
    #[inline(always)]
    pub fn field(self)
    where
        T: SessionField,
    {
    }

    /// Rejects the return type `T`.
    #[inline(always)]
    pub fn returned(self)
    where
        T: SessionReturn,
    {
    }
}

impl<T: ?Sized> ConnectionToken<T> {
    /// Rejects the parameter type `T`.
    #[inline(always)]
    pub fn param(self)
    where
        T: ConnectionParam,
    {
    }

    /// Rejects the payload field type `T`.
    #[inline(always)]
    pub fn field(self)
    where
        T: ConnectionField,
    {
    }

    /// Rejects the return type `T`.
    #[inline(always)]
    pub fn returned(self)
    where
        T: ConnectionReturn,
    {
    }
}

impl<T: ?Sized> PooledToken<T> {
    /// Rejects the parameter type `T`.
    #[inline(always)]
    pub fn param(self)
    where
        T: PooledParam,
    {
    }

    /// Rejects the payload field type `T`.
    #[inline(always)]
    pub fn field(self)
    where
        T: PooledField,
    {
    }

    /// Rejects the return type `T`.
    #[inline(always)]
    pub fn returned(self)
    where
        T: PooledReturn,
    {
    }
}

impl<T: ?Sized> RowToken<T> {
    /// Rejects the parameter type `T`.
    #[inline(always)]
    pub fn param(self)
    where
        T: RowParam,
    {
    }

    /// Rejects the payload field type `T`.
    #[inline(always)]
    pub fn field(self)
    where
        T: RowField,
    {
    }

    /// Rejects the return type `T`.
    #[inline(always)]
    pub fn returned(self)
    where
        T: RowReturn,
    {
    }
}

/// Implemented for the return types a function with `#[load]` parameters can
/// have: `Result<T, E>` where `E: From<dbscope::Error>`, under any alias.
#[diagnostic::on_unimplemented(
    message = "a `#[detach_ids]` function with `#[load]` parameters must return `Result<T, E>`, not `{Self}`",
    label = "expected `Result<T, E>` with `E: From<dbscope::Error>`",
    note = "the row may be gone by the time the function runs: return `Result<T, E>` (or an alias of it) whose error type converts from `dbscope::Error` (`Phase::NotFound`)"
)]
pub trait LoadResult {
    /// `Err(error.into())`.
    fn from_error(error: Error) -> Self;
}

impl<T, E: From<Error>> LoadResult for Result<T, E> {
    #[inline]
    fn from_error(error: Error) -> Self {
        Err(E::from(error))
    }
}

/// The early return of a function whose rows could not be loaded.
#[cold]
pub fn fail<R: LoadResult>(error: Error) -> R {
    R::from_error(error)
}

/// Runs `load` in a short read-only unit of work on `source` (retried on
/// transient errors as `options` says), returning the rows with the session
/// already released.
///
/// # Errors
/// The load's error, or the unit's (checkout, begin, commit).
pub fn load<S, T, F>(source: &S, options: &UnitOptions, mut load: F) -> Result<T, Error>
where
    S: SessionSource + ?Sized,
    F: FnMut(&mut S::Connection) -> Result<T, Error>,
{
    crate::unit::run_unit_retrying(source, options, |session| load(session.connection()))
}

/// The async twin of [`load`]: the wait for a connection is async.
///
/// # Errors
/// As [`load`].
#[cfg(feature = "tokio")]
pub async fn load_async<S, T, F>(source: &S, options: &UnitOptions, mut load: F) -> Result<T, Error>
where
    S: SessionSource + ?Sized,
    F: FnMut(&mut S::Connection) -> Result<T, Error>,
{
    crate::unit_block_in_place::run_unit_async_retrying(source, options, |session| {
        load(session.connection())
    })
    .await
}

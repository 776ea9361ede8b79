//! Units that join their caller's transaction.
//!
//! `#[unit_of_work]` generates, next to each unit `name(..)`, a twin
//! `name_in(.., conn, ..)` that takes the caller's connection instead of
//! checking one out. The twin runs the same body inside a savepoint of the
//! caller's transaction (Django's nested `atomic`, Spring's `REQUIRED` with a
//! savepoint): its `Err` rolls back only its own work, its `Ok` is committed
//! with the caller's transaction or not at all. The compiler checks the
//! composition: the twin needs the caller's connection, which only code
//! inside a unit (or holding a session) has.
//!
//! After-commit work registered inside the twin waits for the outermost
//! commit; it is dropped if the twin's savepoint rolls back. The unit's own
//! options (isolation, read-only, retry) belong to the outermost unit and are
//! not applied to a savepoint.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use diesel::connection::{AnsiTransactionManager, TransactionManager};

use crate::backend::PoolableConnection;
use crate::error::{Error, Phase};
use crate::open_units::{drop_work_since, work_mark};
use crate::options::UnitOptions;
use crate::session::{nested_levels_error, Session};

/// What the session parameter of a joined unit can be: the caller's
/// connection (`&mut PgConnection`) or its session (`&mut Session<C>`).
///
/// ```
/// use dbscope_runtime::{JoinableSession, SessionFactory};
/// fn depth<S: JoinableSession>(mut session: S) -> usize {
///     let _conn = session.joined_connection();
///     1
/// }
/// let factory = SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
/// let mut session = factory.session()?;
/// assert_eq!(depth(&mut session), 1);
/// assert_eq!(depth(&mut *session), 1);
/// # Ok::<(), dbscope_runtime::Error>(())
/// ```
pub trait JoinableSession {
    /// The diesel connection underneath.
    type Connection: PoolableConnection;

    /// The connection the savepoint is opened on.
    fn joined_connection(&mut self) -> &mut Self::Connection;
}

impl<C: PoolableConnection> JoinableSession for &mut C {
    type Connection = C;

    fn joined_connection(&mut self) -> &mut C {
        self
    }
}

impl<C: PoolableConnection> JoinableSession for &mut Session<C> {
    type Connection = C;

    fn joined_connection(&mut self) -> &mut C {
        self.connection()
    }
}

/// The transaction depth diesel's manager reports on `conn` (0 outside a
/// transaction; `None` when the manager is broken).
fn depth<C: PoolableConnection>(conn: &mut C) -> Option<u32> {
    <AnsiTransactionManager as TransactionManager<C>>::transaction_manager_status_mut(conn)
        .transaction_depth()
        .ok()
        .map(|depth| depth.map_or(0, std::num::NonZeroU32::get))
}

/// The savepoint of a joined unit could not be opened.
#[cold]
fn savepoint_not_opened(unit: &str, error: diesel::result::Error) -> Error {
    Error::query(
        Phase::Begin,
        format!("could not open the savepoint of unit `{unit}` in its caller's transaction"),
        error,
    )
}

/// The savepoint of a joined unit could not be released.
#[cold]
fn savepoint_not_released(unit: &str, error: diesel::result::Error) -> Error {
    Error::query(
        Phase::Commit,
        format!(
            "the savepoint of unit `{unit}` could not be released, so its work is not part of \
             its caller's transaction"
        ),
        error,
    )
}

/// Runs `body` in a savepoint of the transaction open on `session` (or in a
/// transaction of its own when none is open). `name_in` twins expand to this.
///
/// ```
/// use diesel::prelude::*;
/// use dbscope_runtime::{join_unit, Error, SessionFactory, UnitOptions};
/// let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
/// factory.run(&UnitOptions::new("outer"), |session| {
///     diesel::sql_query("CREATE TABLE t (x INTEGER)").execute(&mut **session)?;
///     let inner: Result<(), Error> = join_unit(&mut **session, &UnitOptions::new("inner"), |conn| {
///         diesel::sql_query("INSERT INTO t VALUES (1)").execute(&mut **conn)?;
///         Err(Error::user("changed my mind"))
///     });
///     assert!(inner.is_err()); // only the inner insert is undone
///     diesel::sql_query("INSERT INTO t VALUES (2)").execute(&mut **session)?;
///     Ok::<_, Error>(())
/// })?;
/// # Ok::<(), Error>(())
/// ```
///
/// # Errors
/// The body's error (its savepoint rolled back), or the runtime's converted
/// with `E::from` when the savepoint cannot be opened or released.
#[doc(hidden)] // `#[unit_of_work]`'s `name_in` twins call it
pub fn join_unit<S, T, E, F>(mut session: S, options: &UnitOptions, body: F) -> Result<T, E>
where
    S: JoinableSession,
    E: From<Error>,
    F: FnOnce(&mut S) -> Result<T, E>,
{
    let unit = options.name();
    let conn = session.joined_connection();
    AnsiTransactionManager::begin_transaction(conn)
        .map_err(|error| savepoint_not_opened(unit, error))?;
    let own = depth(conn);
    let mark = work_mark();
    let result = match catch_unwind(AssertUnwindSafe(|| body(&mut session))) {
        Ok(result) => result,
        Err(panic) => {
            // The caller unwinds with its transaction as it was before.
            let _ = AnsiTransactionManager::rollback_transaction(session.joined_connection());
            drop_work_since(mark);
            resume_unwind(panic);
        }
    };
    let conn = session.joined_connection();
    match result {
        Ok(value) => {
            if let (Some(own), Some(now)) = (own, depth(conn)) {
                if now > own {
                    drop_work_since(mark);
                    return Err(E::from(nested_levels_error(unit, now - own)));
                }
            }
            match AnsiTransactionManager::commit_transaction(conn) {
                Ok(()) => Ok(value),
                Err(error) => {
                    drop_work_since(mark);
                    Err(E::from(savepoint_not_released(unit, error)))
                }
            }
        }
        Err(error) => {
            drop_work_since(mark);
            // A failed rollback breaks diesel's transaction manager: the
            // caller's own COMMIT then fails and its connection is closed.
            let _ = AnsiTransactionManager::rollback_transaction(conn);
            Err(error)
        }
    }
}

/// The native async twin of [`join_unit`]: runs `body` in a savepoint of the
/// transaction open on the diesel-async connection `conn`. A body whose
/// future is dropped part-way leaves the savepoint open, so the caller's unit
/// commits nothing and its connection is closed.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// use diesel_async::SimpleAsyncConnection;
/// use dbscope_runtime::{join_unit_native, AsyncSessionFactory, Error, UnitOptions};
/// type Conn = SyncConnectionWrapper<diesel::SqliteConnection>;
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let factory = AsyncSessionFactory::<Conn>::new(":memory:")?;
/// factory.run(&UnitOptions::new("outer"), async |conn: &mut Conn| {
///     conn.batch_execute("CREATE TABLE t (x INTEGER)").await?;
///     let inner: Result<(), Error> = join_unit_native(conn, &UnitOptions::new("inner"), async |c: &mut Conn| {
///         c.batch_execute("INSERT INTO t VALUES (1)").await?;
///         Err(Error::user("changed my mind"))
///     })
///     .await;
///     assert!(inner.is_err()); // only the inner insert is undone
///     Ok::<_, Error>(())
/// })
/// .await?;
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// # }
/// ```
///
/// # Errors
/// The body's error (its savepoint rolled back), or the runtime's converted
/// with `E::from` when the savepoint cannot be opened or released.
#[cfg(feature = "async")]
#[doc(hidden)] // `#[unit_of_work]`'s `name_in` twins call it
pub async fn join_unit_native<C, T, E, F>(
    conn: &mut C,
    options: &UnitOptions,
    body: F,
) -> Result<T, E>
where
    C: crate::backend_async::AsyncPoolableConnection,
    E: From<Error>,
    F: for<'c> AsyncFnOnce(&'c mut C) -> Result<T, E>
        + for<'c> crate::unit_native::AsyncUnitBody<&'c mut C, Result<T, E>>,
{
    use diesel_async::{AsyncConnection, TransactionManager as _};
    type Manager<C> = <C as AsyncConnection>::TransactionManager;
    fn depth<C: AsyncConnection>(conn: &mut C) -> Option<u32> {
        <C as AsyncConnection>::TransactionManager::transaction_manager_status_mut(conn)
            .transaction_depth()
            .ok()
            .map(|depth| depth.map_or(0, std::num::NonZeroU32::get))
    }
    let unit = options.name();
    Manager::<C>::begin_transaction(conn)
        .await
        .map_err(|error| savepoint_not_opened(unit, error))?;
    let own = depth(conn);
    let mark = crate::after_commit_native::mark();
    let result = body(conn).await;
    match result {
        Ok(value) => {
            if let (Some(own), Some(now)) = (own, depth(conn)) {
                if now > own {
                    crate::after_commit_native::drop_since(mark);
                    return Err(E::from(nested_levels_error(unit, now - own)));
                }
            }
            match Manager::<C>::commit_transaction(conn).await {
                Ok(()) => Ok(value),
                Err(error) => {
                    crate::after_commit_native::drop_since(mark);
                    Err(E::from(savepoint_not_released(unit, error)))
                }
            }
        }
        Err(error) => {
            crate::after_commit_native::drop_since(mark);
            let _ = Manager::<C>::rollback_transaction(conn).await;
            Err(error)
        }
    }
}

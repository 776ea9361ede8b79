//! The diesel-async connections an [`AsyncSessionFactory`](crate::AsyncSessionFactory)
//! can pool, and how each begins a transaction with a unit's options.
//!
//! The SQL is the blocking backend's ([`PoolableConnection::begin_sql`]): an
//! async connection names its blocking twin as its dialect, so isolation,
//! read-only and the hold-time budget are spelled in one place.

use std::borrow::Cow;
use std::future::Future;

use diesel::QueryResult;
use diesel_async::{AsyncConnection, TransactionManager};

use crate::backend::PoolableConnection;

/// A diesel-async connection a native async session factory can pool.
///
/// Implemented for `AsyncPgConnection` (feature `postgres`),
/// `AsyncMysqlConnection` (feature `mysql`) and
/// `SyncConnectionWrapper<SqliteConnection>` (feature `sqlite`).
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use dbscope_runtime::{AsyncPoolableConnection, BackendKind, PoolableConnection};
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// type Dialect = <SyncConnectionWrapper<diesel::SqliteConnection> as AsyncPoolableConnection>::Dialect;
/// assert_eq!(<Dialect as PoolableConnection>::KIND, BackendKind::Sqlite);
/// # }
/// ```
pub trait AsyncPoolableConnection: AsyncConnection + Send + 'static {
    /// The blocking connection of the same backend, whose SQL (begin
    /// statements, setup, budget) this connection runs.
    type Dialect: PoolableConnection;

    /// Runs `sql` (from [`PoolableConnection::begin_sql`]) to begin a
    /// transaction and records it in the connection's transaction manager,
    /// so nested `transaction` calls in user code become savepoints.
    fn begin_with(
        &mut self,
        sql: Cow<'static, str>,
    ) -> impl Future<Output = QueryResult<()>> + Send;

    /// Commits the transaction [`begin_with`](Self::begin_with) opened.
    fn commit(&mut self) -> impl Future<Output = QueryResult<()>> + Send {
        Self::TransactionManager::commit_transaction(self)
    }

    /// Rolls back the transaction [`begin_with`](Self::begin_with) opened.
    fn rollback(&mut self) -> impl Future<Output = QueryResult<()>> + Send {
        Self::TransactionManager::rollback_transaction(self)
    }
}

#[cfg(feature = "postgres")]
impl AsyncPoolableConnection for diesel_async::AsyncPgConnection {
    type Dialect = diesel::PgConnection;

    async fn begin_with(&mut self, sql: Cow<'static, str>) -> QueryResult<()> {
        diesel_async::AnsiTransactionManager::begin_transaction_sql(self, &sql).await
    }
}

#[cfg(feature = "mysql")]
impl AsyncPoolableConnection for diesel_async::AsyncMysqlConnection {
    type Dialect = diesel::MysqlConnection;

    async fn begin_with(&mut self, sql: Cow<'static, str>) -> QueryResult<()> {
        diesel_async::AnsiTransactionManager::begin_transaction_sql(self, &sql).await
    }
}

#[cfg(feature = "sqlite")]
impl AsyncPoolableConnection
    for diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection>
{
    type Dialect = diesel::SqliteConnection;

    fn begin_with(
        &mut self,
        sql: Cow<'static, str>,
    ) -> impl Future<Output = QueryResult<()>> + Send {
        // The wrapper's transaction manager delegates to the inner
        // connection's, on the blocking thread that owns it.
        self.spawn_blocking(move |conn| {
            diesel::connection::AnsiTransactionManager::begin_transaction_sql(conn, &sql)
        })
    }
}

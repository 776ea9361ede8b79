//! [`AsyncPooledConnection`]: a connection checked out of an
//! [`AsyncSessionFactory`] by hand, for code that writes its own
//! transactions (`conn.transaction(async |c| ..)`).
//!
//! On drop it goes back to the pool only if no transaction is open on it (the
//! transaction manager says depth 0 and not broken). A hand-written
//! transaction whose future was dropped mid-way (diesel-async issue 96) leaves
//! depth 1: the connection is taken out of the pool and closed instead, so the
//! server rolls back and no later user inherits the transaction.

use std::ops::{Deref, DerefMut};

use crate::async_factory::AsyncSessionFactory;
use crate::backend_async::AsyncPoolableConnection;
use crate::error::Error;
use crate::pool::{Lease, Native};

/// A pooled diesel-async connection checked out by hand; derefs to the
/// connection.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// use diesel_async::{AsyncConnection, SimpleAsyncConnection};
/// use dbscope_runtime::{AsyncSessionFactory, Error};
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let factory = AsyncSessionFactory::<SyncConnectionWrapper<diesel::SqliteConnection>>::new(":memory:")?;
/// let mut conn = factory.checkout().await?;
/// conn.transaction(async |c| c.batch_execute("SELECT 1").await).await?;
/// drop(conn);
/// assert_eq!(factory.stats().idle, 1);
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// # }
/// ```
pub struct AsyncPooledConnection<C: AsyncPoolableConnection> {
    lease: Lease<C, Native>,
}

impl<C: AsyncPoolableConnection> AsyncSessionFactory<C> {
    /// Checks a connection out by hand, waiting at most the checkout timeout.
    /// Prefer `#[unit_of_work]` or [`run`](Self::run); this is for code that
    /// manages its own transactions.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    /// use dbscope_runtime::AsyncSessionFactory;
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let factory = AsyncSessionFactory::<SyncConnectionWrapper<diesel::SqliteConnection>>::new(":memory:").unwrap();
    /// let conn = factory.checkout().await.unwrap();
    /// assert_eq!(factory.stats().in_use, 1);
    /// drop(conn);
    /// assert_eq!(factory.stats().in_use, 0);
    /// # });
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Phase::CheckoutTimeout`](crate::Phase::CheckoutTimeout) or the
    /// connect error.
    pub async fn checkout(&self) -> Result<AsyncPooledConnection<C>, Error> {
        Ok(AsyncPooledConnection {
            lease: self.lease().await?,
        })
    }
}

impl<C: AsyncPoolableConnection> Deref for AsyncPooledConnection<C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.lease.conn_ref()
    }
}

impl<C: AsyncPoolableConnection> DerefMut for AsyncPooledConnection<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.lease.conn()
    }
}

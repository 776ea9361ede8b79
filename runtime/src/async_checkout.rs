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
use std::sync::atomic::Ordering;
use std::time::Instant;

use deadpool::managed::Object;
use diesel_async::{AsyncConnection, TransactionManager};

use crate::async_factory::AsyncSessionFactory;
use crate::async_pool::ConnManager;
use crate::backend_async::AsyncPoolableConnection;
use crate::error::Error;

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
    object: Option<Object<ConnManager<C>>>,
    factory: AsyncSessionFactory<C>,
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
        let object = self.checkout_object().await?;
        let counters = &self.inner.counters;
        counters.checkouts.fetch_add(1, Ordering::Relaxed);
        let in_use = counters.in_use.fetch_add(1, Ordering::Relaxed) + 1;
        counters.max_in_use.fetch_max(in_use, Ordering::Relaxed);
        Ok(AsyncPooledConnection {
            object: Some(object),
            factory: self.clone(),
        })
    }
}

impl<C: AsyncPoolableConnection> Deref for AsyncPooledConnection<C> {
    type Target = C;

    fn deref(&self) -> &C {
        match &self.object {
            Some(object) => &object.conn,
            None => unreachable!("the connection is only taken in drop"),
        }
    }
}

impl<C: AsyncPoolableConnection> DerefMut for AsyncPooledConnection<C> {
    fn deref_mut(&mut self) -> &mut C {
        match &mut self.object {
            Some(object) => &mut object.conn,
            None => unreachable!("the connection is only taken in drop"),
        }
    }
}

impl<C: AsyncPoolableConnection> Drop for AsyncPooledConnection<C> {
    fn drop(&mut self) {
        let Some(mut object) = self.object.take() else {
            return;
        };
        let counters = &self.factory.inner.counters;
        counters.in_use.fetch_sub(1, Ordering::Relaxed);
        let base = self.factory.inner.config.base_depth();
        let at_rest = <C as AsyncConnection>::TransactionManager::transaction_manager_status_mut(
            &mut object.conn,
        )
        .transaction_depth()
        .is_ok_and(|depth| depth.map_or(0, std::num::NonZeroU32::get) == base);
        if at_rest {
            object.returned = Instant::now();
        } else {
            counters.closed_dirty.fetch_add(1, Ordering::Relaxed);
            counters.connections_closed.fetch_add(1, Ordering::Relaxed);
            drop(Object::take(object));
        }
    }
}

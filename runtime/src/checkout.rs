//! A connection checked out without a transaction, for work that manages its
//! own (migrations, `LISTEN`, hand-written `conn.transaction(..)`).

use std::ops::{Deref, DerefMut};

use crate::backend::PoolableConnection;
use crate::error::Error;
use crate::factory::SessionFactory;
use crate::pool::Lease;

/// A pooled connection with no transaction opened for you: diesel's
/// `conn.transaction(|conn| ..)` works on it as on any connection.
///
/// It goes back to the pool when dropped, under the same rule as a session:
/// if it comes back with a transaction open or broken, it is closed instead.
/// Like a [`Session`](crate::Session) it is neither `Send` nor `Sync`.
///
/// ```
/// use diesel::prelude::*;
/// let factory = dbscope_runtime::SessionFactory::<SqliteConnection>::new(":memory:")?;
/// let mut conn = factory.checkout()?;
/// conn.transaction(|conn| diesel::sql_query("CREATE TABLE t (x INTEGER)").execute(conn))?;
/// drop(conn);
/// assert_eq!(factory.stats().in_use, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PooledConnection<C: PoolableConnection> {
    lease: Lease<C>,
    _stay_on_thread: std::marker::PhantomData<*const ()>,
}

impl<C: PoolableConnection> SessionFactory<C> {
    /// Checks a connection out without beginning a transaction. Prefer
    /// sessions and units of work; this is for code that manages its own
    /// transactions.
    ///
    /// # Errors
    /// Checkout timeout, connect or setup failures.
    ///
    /// ```
    /// let factory = dbscope_runtime::SessionFactory::<diesel::SqliteConnection>::new(":memory:")?;
    /// let conn = factory.checkout()?;
    /// assert_eq!(factory.stats().in_use, 1);
    /// # drop(conn);
    /// # Ok::<(), dbscope_runtime::Error>(())
    /// ```
    pub fn checkout(&self) -> Result<PooledConnection<C>, Error> {
        let slot = self.pool.acquire_slot_blocking(self.deadline())?;
        Ok(PooledConnection {
            lease: slot.realize()?,
            _stay_on_thread: std::marker::PhantomData,
        })
    }
}

impl<C: PoolableConnection> Deref for PooledConnection<C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.lease.conn_ref()
    }
}

impl<C: PoolableConnection> DerefMut for PooledConnection<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.lease.conn()
    }
}

impl<C: PoolableConnection> std::fmt::Debug for PooledConnection<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledConnection").finish_non_exhaustive()
    }
}

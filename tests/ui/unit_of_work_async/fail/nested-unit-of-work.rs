//! A unit of work awaited inside another does not use the outer session: it
//! would wait for a second connection while holding the first (a pool of one
//! deadlocks), so it is rejected at compile time. A sync `fn` cannot take an
//! async connection.
use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::SimpleAsyncConnection;
use dbscope::{unit_of_work, AsyncSessionFactory, Error};

type Db = AsyncSessionFactory<SyncConnectionWrapper<SqliteConnection>>;

#[unit_of_work(factory = db)]
async fn inner(db: &Db, conn: &mut SyncConnectionWrapper<SqliteConnection>) -> Result<(), Error> {
    conn.batch_execute("SELECT 1").await?;
    Ok(())
}

#[unit_of_work(factory = db)]
async fn outer(db: &Db, conn: &mut SyncConnectionWrapper<SqliteConnection>) -> Result<(), Error> {
    conn.batch_execute("SELECT 1").await?;
    inner(db).await
}

#[unit_of_work(factory = db)]
fn not_async(db: &Db, conn: &mut SyncConnectionWrapper<SqliteConnection>) -> Result<(), Error> {
    let _ = conn;
    Ok(())
}

fn main() {}

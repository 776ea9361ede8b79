//! A sleep awaited inside the body holds the connection, transaction open.
use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::SimpleAsyncConnection;
use dbscope::{unit_of_work, AsyncSessionFactory, Error};

#[unit_of_work(factory = db)]
async fn backoff(
    db: &AsyncSessionFactory<SyncConnectionWrapper<SqliteConnection>>,
    conn: &mut SyncConnectionWrapper<SqliteConnection>,
) -> Result<(), Error> {
    conn.batch_execute("UPDATE jobs SET tries = tries + 1").await?;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    Ok(())
}

fn main() {}

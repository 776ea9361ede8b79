//! A name that shadows the session (a `let`, a loop variable) is not the
//! session: awaiting work given it holds the connection.
use std::time::Duration;

use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::SimpleAsyncConnection;
use dbscope::{unit_of_work, AsyncSessionFactory, Error};

type Conn = SyncConnectionWrapper<SqliteConnection>;
type Db = AsyncSessionFactory<Conn>;

async fn fetch(id: u64) -> u64 {
    id
}

#[unit_of_work(factory = db)]
async fn shadowed_by_let(db: &Db, conn: &mut SyncConnectionWrapper<SqliteConnection>) -> Result<(), Error> {
    conn.batch_execute("SELECT 1").await?;
    let conn = 5;
    tokio::time::sleep(Duration::from_millis(conn)).await;
    Ok(())
}

#[unit_of_work(factory = db)]
async fn shadowed_by_loop(
    db: &Db,
    conn: &mut SyncConnectionWrapper<SqliteConnection>,
    ids: Vec<u64>,
) -> Result<(), Error> {
    conn.batch_execute("SELECT 1").await?;
    for conn in ids {
        fetch(conn).await;
    }
    Ok(())
}

/// Outside a unit, the same awaits are fine.
async fn between_units(conn: &mut Conn) -> Result<(), Error> {
    conn.batch_execute("SELECT 1").await?;
    tokio::time::sleep(Duration::from_millis(fetch(1).await)).await;
    Ok(())
}

fn main() {
    let _ = between_units;
}

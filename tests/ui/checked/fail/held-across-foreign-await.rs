//! A checked-out connection held across an `.await` on other work: in the
//! handler, in a task it was moved into, shared through a mutex, or as a
//! parameter.
use std::sync::Arc;

use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::SimpleAsyncConnection;
use dbscope::{checked, AsyncPooledConnection, AsyncSessionFactory, Error};

type Conn = SyncConnectionWrapper<SqliteConnection>;
type Db = AsyncSessionFactory<Conn>;

async fn llm(prompt: &str) -> String {
    prompt.to_owned()
}

#[checked]
async fn handler(db: &Db, prompt: &str) -> Result<String, Error> {
    let mut conn = db.checkout().await?;
    conn.batch_execute("SELECT 1").await?;
    Ok(llm(prompt).await)
}

#[checked]
async fn moved_into_task(db: &Db) -> Result<(), Error> {
    let mut conn = db.checkout().await?;
    tokio::spawn(async move {
        let _ = conn.batch_execute("SELECT 1").await;
        llm("slow").await;
    });
    Ok(())
}

#[checked]
async fn shared(db: &Db) -> Result<(), Error> {
    let conn = db.checkout().await?;
    let shared = Arc::new(tokio::sync::Mutex::new(conn));
    let mut guard = shared.lock().await;
    guard.batch_execute("SELECT 1").await?;
    llm("slow").await;
    Ok(())
}

#[checked]
async fn parameter(mut conn: AsyncPooledConnection<Conn>) -> Result<(), Error> {
    conn.batch_execute("SELECT 1").await?;
    tokio::task::yield_now().await;
    Ok(())
}

fn main() {}

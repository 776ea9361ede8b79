//! Hand-held async code under `#[checked]`: awaits before the checkout, after
//! the connection went back (a block, `drop`), the connection's own queries
//! and transactions, and a spawned task that checks out its own connection.
use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use dbscope::{checked, AsyncPooledConnection, AsyncSessionFactory, Error};

type Conn = SyncConnectionWrapper<SqliteConnection>;
type Db = AsyncSessionFactory<Conn>;

async fn llm(prompt: &str) -> String {
    tokio::task::yield_now().await;
    format!("answer to {prompt}")
}

#[checked]
async fn handler(db: &Db, prompt: &str) -> Result<String, Error> {
    let answer = llm(prompt).await;
    {
        let mut conn = db.checkout().await?;
        conn.batch_execute("SELECT 1").await?;
    }
    let mut conn = db.checkout().await?;
    conn.transaction(async |c| c.batch_execute("SELECT 2").await)
        .await?;
    drop(conn);
    let again = llm(&answer).await;
    Ok(again)
}

#[checked]
async fn with_parameter(mut conn: AsyncPooledConnection<Conn>) -> Result<(), Error> {
    conn.batch_execute("SELECT 1").await?;
    Ok(())
}

#[checked]
async fn spawner(db: Db) -> Result<(), Error> {
    let task = tokio::spawn(async move {
        let mut conn = db.checkout().await?;
        conn.batch_execute("SELECT 1").await?;
        Ok::<_, Error>(())
    });
    llm("meanwhile").await;
    task.await.expect("task")
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let db = Db::new(":memory:")?;
    assert_eq!(handler(&db, "q").await?, "answer to answer to q");
    with_parameter(db.checkout().await?).await?;
    spawner(db).await
}

//! A diesel-async session: the body awaits its queries one after another,
//! inside one transaction; `?` and `return` reach the scaffolding.
use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use dbscope::{unit_of_work, AsyncSessionFactory, Error};

type Db = AsyncSessionFactory<SyncConnectionWrapper<SqliteConnection>>;

#[unit_of_work(factory = db)]
async fn create(db: &Db, conn: &mut SyncConnectionWrapper<SqliteConnection>) -> Result<(), Error> {
    conn.batch_execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, prompt TEXT NOT NULL)").await?;
    Ok(())
}

#[unit_of_work(factory = db)]
async fn add(db: &Db, conn: &mut SyncConnectionWrapper<SqliteConnection>, prompt: &str) -> Result<usize, Error> {
    if prompt.is_empty() {
        return Ok(0);
    }
    let inserted = diesel::sql_query("INSERT INTO jobs (prompt) VALUES (?)")
        .bind::<diesel::sql_types::Text, _>(prompt)
        .execute(conn)
        .await?;
    conn.batch_execute("UPDATE jobs SET prompt = prompt").await?;
    Ok(inserted)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let db = Db::new(":memory:")?;
    create(&db).await?;
    assert_eq!(add(&db, "hello").await?, 1);
    assert_eq!(add(&db, "").await?, 0);
    // Units are Send: they run in spawned tasks.
    let spawned = db.clone();
    let handle = tokio::spawn(async move { add(&spawned, "spawned").await });
    assert_eq!(handle.await.expect("task")?, 1);
    assert_eq!(db.stats().in_use, 0);
    Ok(())
}

//! Values that carry the session are session work when awaited: a struct
//! wrapping it whose async method is awaited, a reborrow a helper hands
//! back, a query future stored in a local. A future returned out of the unit
//! is awaited by the caller after the unit ended, and a future given to
//! `spawn_after_commit` is not an await in the unit (the native flavour has
//! no after-commit registry yet: the call returns an error at run time,
//! ignored here; the blocking flavour runs it after commit).
use std::future::Future;
use std::pin::Pin;

use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::SimpleAsyncConnection;
use dbscope::{unit_of_work, AsyncSessionFactory, Error};

type Conn = SyncConnectionWrapper<SqliteConnection>;
type Db = AsyncSessionFactory<Conn>;

struct Repo<'c> {
    conn: &'c mut Conn,
}

impl Repo<'_> {
    async fn store(&mut self, id: i64) -> Result<(), Error> {
        self.conn
            .batch_execute(&format!("INSERT INTO t (id) VALUES ({id})"))
            .await?;
        Ok(())
    }
}

fn reborrow(conn: &mut Conn) -> &mut Conn {
    conn
}

async fn notify(id: i64) -> i64 {
    tokio::task::yield_now().await;
    id
}

type Later = Pin<Box<dyn Future<Output = i64> + Send>>;

#[unit_of_work(factory = db)]
async fn create(db: &Db, #[session(async)] conn: &mut Conn, id: i64) -> Result<Later, Error> {
    conn.batch_execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)")
        .await?;
    let c = reborrow(conn);
    c.batch_execute("SELECT 1").await?;
    let stored = conn.batch_execute("SELECT 2");
    stored.await?;
    let mut repo = Repo { conn: &mut *conn };
    repo.store(id + 100).await?;
    Repo { conn }.store(id + 200).await?;
    let _ = dbscope::spawn_after_commit(async move {
        notify(id).await;
    });
    let later: Later = Box::pin(async move { notify(id).await });
    Ok(later)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let db = Db::new(":memory:")?;
    let later = create(&db, 1).await?;
    assert_eq!(later.await, 1);
    Ok(())
}

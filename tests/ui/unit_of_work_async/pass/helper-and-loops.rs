//! Helpers that take the session, loops of queries, a query wrapped in a
//! timeout, a nested transaction and a rebound session are all session work;
//! awaits on anything else go between units of work. `#[session(async)]`
//! marks an async connection behind an alias; `&self` repositories work.
use std::time::Duration;

use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use dbscope::{unit_of_work, AsyncSessionFactory, AsyncSessionSource, Error};

type Conn = SyncConnectionWrapper<SqliteConnection>;

async fn insert(conn: &mut Conn, id: i64) -> Result<(), Error> {
    conn.batch_execute(&format!("INSERT INTO t (id) VALUES ({id})")).await?;
    Ok(())
}

struct Repo<F> {
    db: F,
}

impl<F: AsyncSessionSource<Connection = Conn>> Repo<F> {
    #[unit_of_work(factory = self.db)]
    async fn setup(&self, #[session(async)] conn: &mut Conn) -> Result<(), Error> {
        conn.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY)").await?;
        Ok(())
    }

    #[unit_of_work(factory = self.db, retry = 3)]
    async fn fill(&self, #[session(async)] conn: &mut Conn, ids: &[i64]) -> Result<usize, Error> {
        for id in ids {
            insert(conn, *id).await?;
        }
        let mut n = 0;
        while n < 2 {
            tokio::time::timeout(Duration::from_secs(5), conn.batch_execute("SELECT 1"))
                .await
                .map_err(|_| Error::from(diesel::result::Error::RollbackTransaction))??;
            n += 1;
        }
        let c = &mut *conn;
        c.batch_execute("SELECT 1").await?;
        conn.transaction(async |inner| inner.batch_execute("SELECT 2").await)
            .await?;
        Ok(ids.len())
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let repo = Repo { db: std::sync::Arc::new(AsyncSessionFactory::<Conn>::new(":memory:")?) };
    repo.setup().await?;
    tokio::time::sleep(Duration::from_millis(1)).await; // between units: fine
    assert_eq!(repo.fill(&[1, 2, 3]).await?, 3);
    // A retrying unit borrowing `self` and its arguments runs in a spawned task.
    let handle = tokio::spawn(async move { repo.fill(&[4, 5]).await });
    assert_eq!(handle.await.expect("task")?, 2);
    Ok(())
}

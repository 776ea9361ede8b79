//! `async fn`s: the wait for a connection is async, the body runs in one
//! synchronous stretch; with and without retry, free and on `&self`.

use std::sync::Arc;

use dbscope::{unit_of_work, Error, SessionFactory, SessionSource};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

#[unit_of_work(factory = db)]
pub async fn create(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    conn.batch_execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, prompt TEXT NOT NULL)")?;
    Ok(())
}

pub struct Jobs<F> {
    db: F,
}

impl<F: SessionSource<Connection = SqliteConnection>> Jobs<F> {
    #[unit_of_work(factory = self.db, retry = 3, immediate)]
    pub async fn add(&self, conn: &mut SqliteConnection, prompt: &str) -> Result<usize, Error> {
        Ok(diesel::sql_query("INSERT INTO jobs (prompt) VALUES (?)")
            .bind::<diesel::sql_types::Text, _>(prompt)
            .execute(conn)?)
    }
}

async fn slow_work() -> usize {
    tokio::task::yield_now().await;
    42
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let factory = Arc::new(SessionFactory::<SqliteConnection>::new(":memory:")?);
    create(&factory).await?;
    let jobs = Jobs { db: Arc::clone(&factory) };
    // Awaits go between units of work, never inside one.
    let answer = slow_work().await;
    assert_eq!(jobs.add(&answer.to_string()).await?, 1);
    let handle = tokio::spawn(async move { jobs.add("spawned").await });
    assert_eq!(handle.await.expect("task")?, 1);
    assert_eq!(factory.stats().in_use, 0);
    Ok(())
}

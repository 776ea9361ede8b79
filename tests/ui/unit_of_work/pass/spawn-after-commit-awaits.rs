//! A future given to `spawn_after_commit` runs after the unit committed, on
//! its own task: it may await anything, also inside a blocking unit.
use dbscope::{spawn_after_commit, unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

async fn push(queue: tokio::sync::mpsc::Sender<i32>, job: i32) {
    tokio::task::yield_now().await;
    let _ = queue.send(job).await;
}

#[unit_of_work(factory = db)]
async fn create(
    db: &SessionFactory<SqliteConnection>,
    conn: &mut SqliteConnection,
    queue: tokio::sync::mpsc::Sender<i32>,
) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    spawn_after_commit(async move { push(queue, 7).await })?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let db = SessionFactory::<SqliteConnection>::new(":memory:")?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    create(&db, tx).await?;
    assert_eq!(rx.recv().await, Some(7));
    Ok(())
}

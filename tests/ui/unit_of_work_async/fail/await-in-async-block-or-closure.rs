//! An async block that does not use the session is judged where it is
//! awaited: awaiting it in the unit is reported there. A closure that is
//! never called in the unit and a query future stored in a local are fine.
use diesel_async::{AsyncMysqlConnection, SimpleAsyncConnection};
use dbscope::{unit_of_work, AsyncSessionFactory, Error};

async fn notify(id: i64) -> i64 {
    id
}

#[unit_of_work(factory = db)]
async fn create(db: &AsyncSessionFactory<AsyncMysqlConnection>, conn: &mut AsyncMysqlConnection) -> Result<i64, Error> {
    conn.batch_execute("INSERT INTO t VALUES (1)").await?;
    let later = async { notify(1).await };
    let callback = |id| async move { notify(id).await };
    let _ = callback;
    let query = conn.batch_execute("SELECT 1");
    query.await?;
    Ok(later.await)
}

/// The same block awaited after the unit is fine.
async fn after_the_unit(db: &AsyncSessionFactory<AsyncMysqlConnection>) -> Result<i64, Error> {
    let mut conn = db.checkout().await?;
    conn.batch_execute("SELECT 1").await?;
    drop(conn);
    Ok(notify(2).await)
}

fn main() {
    let _ = after_the_unit;
}

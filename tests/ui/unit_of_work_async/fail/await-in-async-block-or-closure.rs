//! An `.await` inside an async block or closure in the body that does not use
//! the session is reported too (the block may be driven while the session is
//! open), as is awaiting a future held in a variable.
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

fn main() {}

//! The async session factory is a handle, not a connection: it may cross.
use std::sync::Arc;

use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use dbscope::{detach_ids, AsyncSessionFactory};

type Db = AsyncSessionFactory<SyncConnectionWrapper<SqliteConnection>>;

#[detach_ids]
async fn job(db: Arc<Db>, id: i64) -> i64 {
    let _ = db.stats();
    id
}

#[tokio::main]
async fn main() {
    let db = Arc::new(Db::new(":memory:").unwrap());
    assert_eq!(tokio::spawn(job(db, 3)).await.unwrap(), 3);
}

//! A value a query produced is data, not the session: awaiting a remote call
//! given it (even inside the same expression as the query) holds the
//! connection while the call waits.
use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::SimpleAsyncConnection;
use dbscope::{unit_of_work, AsyncSessionFactory, Error};

type Conn = SyncConnectionWrapper<SqliteConnection>;
type Db = AsyncSessionFactory<Conn>;

struct Row {
    title: String,
}

async fn load(conn: &mut Conn, _id: i32) -> Result<Row, Error> {
    conn.batch_execute("SELECT 1").await?;
    Ok(Row { title: "t".into() })
}

async fn llm(prompt: &str) -> String {
    prompt.to_owned()
}

#[unit_of_work(factory = db)]
async fn summarise(db: &Db, conn: &mut SyncConnectionWrapper<SqliteConnection>, id: i32) -> Result<String, Error> {
    Ok(llm(&load(conn, id).await?.title).await)
}

fn main() {}

//! diesel-async connections, by value or behind `&mut`, and the async pooled
//! connection cannot cross a boundary.
use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use dbscope::{detach_ids, AsyncPooledConnection};

type Conn = SyncConnectionWrapper<SqliteConnection>;

#[detach_ids]
async fn by_reference(conn: &mut Conn) {
    let _ = conn;
}

#[detach_ids]
async fn by_value(conn: diesel_async::AsyncPgConnection) {
    let _ = conn;
}

#[detach_ids]
async fn pooled(conn: AsyncPooledConnection<Conn>) {
    drop(conn);
}

#[detach_ids]
fn returned(conn: Box<Conn>) -> Option<Box<Conn>> {
    Some(conn)
}

fn main() {}

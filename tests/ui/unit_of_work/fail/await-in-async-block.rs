//! An async block in the body may be driven while the session is open.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

async fn notify(id: i32) -> i32 {
    id
}

#[unit_of_work(factory = db)]
async fn create(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    let pending = async move { notify(1).await };
    drop(pending);
    Ok(())
}

#[unit_of_work(factory = db)]
fn sync_too(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    runtime.block_on(async { notify(2).await });
    Ok(())
}

fn main() {}

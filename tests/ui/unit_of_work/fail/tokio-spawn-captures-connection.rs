//! A task spawned inside a unit of work cannot borrow its connection: the
//! task may outlive the transaction.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
async fn fan_out(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    let task = tokio::spawn(async move {
        let _ = diesel::sql_query("SELECT 1").execute(conn);
    });
    drop(task);
    Ok(())
}

fn main() {}

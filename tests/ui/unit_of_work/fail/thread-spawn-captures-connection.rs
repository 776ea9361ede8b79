//! A thread spawned inside a unit of work cannot borrow its connection: the
//! thread may outlive the transaction.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
fn background(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    let handle = std::thread::spawn(move || {
        diesel::sql_query("SELECT 1").execute(conn).map(drop)
    });
    handle.join().expect("thread")?;
    Ok(())
}

fn main() {}

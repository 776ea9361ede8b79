//! The session parameter is a `&mut ..Connection`, a `&mut Session<..>`, or marked `#[session]`.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
fn no_session(db: &SessionFactory<SqliteConnection>, name: &str) -> Result<usize, Error> {
    Ok(name.len())
}

#[unit_of_work(factory = db)]
fn shared_reference(db: &SessionFactory<SqliteConnection>, conn: &SqliteConnection) -> Result<(), Error> {
    let _ = conn;
    Ok(())
}

fn main() {}

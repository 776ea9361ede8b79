//! The body becomes a closure, whose return type must be named.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
fn names(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<impl Iterator<Item = String>, Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(Vec::new().into_iter())
}

fn main() {}

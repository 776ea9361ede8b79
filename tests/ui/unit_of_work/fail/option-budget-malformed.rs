//! `budget_ms` takes a whole number of milliseconds, at least 1.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db, budget_ms = 0)]
fn zero(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db, budget_ms = 1.5)]
fn fraction(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

fn main() {}

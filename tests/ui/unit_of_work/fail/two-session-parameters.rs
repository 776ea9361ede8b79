//! A unit of work opens exactly one session.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
fn two(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection, other: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    diesel::sql_query("SELECT 1").execute(other)?;
    Ok(())
}

#[unit_of_work(factory = db)]
fn two_marked(db: &SessionFactory<SqliteConnection>, #[session] a: &mut SqliteConnection, #[session] b: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(a)?;
    diesel::sql_query("SELECT 1").execute(b)?;
    Ok(())
}

fn caller(factory: &SessionFactory<SqliteConnection>) -> Result<(), Error> {
    two(factory)?;
    two_marked(factory)
}

fn main() {}

//! `read_only`, `immediate` and `exclusive` are flags.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db, read_only = true)]
fn read_only_true(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db, immediate(yes))]
fn immediate_call(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

fn main() {}

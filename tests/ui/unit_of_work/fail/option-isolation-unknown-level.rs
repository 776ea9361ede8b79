//! Isolation levels are written as identifiers from a fixed list.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db, isolation = snapshot)]
fn unknown(db: &SessionFactory<PgConnection>, conn: &mut PgConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db, isolation = "serializable")]
fn quoted(db: &SessionFactory<PgConnection>, conn: &mut PgConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db, isolation)]
fn missing(db: &SessionFactory<PgConnection>, conn: &mut PgConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

fn main() {}

//! `retry(..)` takes `attempts`, `backoff_ms` and `max_backoff_ms`.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db, retry(attempts = 3, jitter = 1))]
fn unknown_key(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db, retry(backoff_ms = 5))]
fn no_attempts(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db, retry(attempts = 2, backoff_ms = 100, max_backoff_ms = 10))]
fn cap_below_first_wait(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db, retry(attempts = 2, attempts = 3, backoff_ms = -1))]
fn duplicate_and_negative(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

fn main() {}

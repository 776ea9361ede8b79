//! The return type is checked with a trait bound, not by its spelling, so
//! aliases of `Result` work.

use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[derive(Debug)]
pub struct AppError(#[allow(dead_code)] Error);

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        AppError(error)
    }
}

pub type AppResult<T> = Result<T, AppError>;

mod errors {
    pub type Result<T, E = super::AppError> = std::result::Result<T, E>;
}

#[unit_of_work(factory = db)]
fn with_alias(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> AppResult<i32> {
    diesel::sql_query("SELECT 1").execute(conn).map_err(Error::from)?;
    Ok(1)
}

#[unit_of_work(factory = db)]
fn with_module_alias(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> errors::Result<i32> {
    diesel::sql_query("SELECT 1").execute(conn).map_err(Error::from)?;
    Ok(2)
}

#[unit_of_work(factory = db)]
fn with_full_path(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> std::result::Result<i32, dbscope::Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(3)
}

/// diesel's own alias: `diesel::result::Error` converts from `dbscope::Error`.
#[unit_of_work(factory = db)]
fn with_diesel_query_result(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> QueryResult<usize> {
    diesel::sql_query("SELECT 1").execute(conn)
}

fn main() -> Result<(), AppError> {
    let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
    assert_eq!(with_alias(&factory)? + with_module_alias(&factory)? + with_full_path(&factory)?, 6);
    with_diesel_query_result(&factory).expect("a unit returning diesel's QueryResult");
    Ok(())
}

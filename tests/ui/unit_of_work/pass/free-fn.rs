//! A free function: the factory is a parameter, the session parameter goes away.

use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[derive(Debug)]
pub struct AppError(#[allow(dead_code)] Error);

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        AppError(error)
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        AppError(error.into())
    }
}

/// Creates the table.
#[unit_of_work(factory = db)]
pub fn create_table(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), AppError> {
    diesel::sql_query("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db)]
pub fn count_named(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection, name: &str) -> Result<usize, AppError> {
    if name.is_empty() {
        return Ok(0);
    }
    let inserted = diesel::sql_query("INSERT INTO users (name) VALUES (?)")
        .bind::<diesel::sql_types::Text, _>(name)
        .execute(conn)?;
    Ok(inserted)
}

fn main() -> Result<(), AppError> {
    let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
    create_table(&factory)?;
    assert_eq!(count_named(&factory, "ann")?, 1);
    assert_eq!(count_named(&factory, "")?, 0);
    assert_eq!(factory.stats().in_use, 0);
    Ok(())
}

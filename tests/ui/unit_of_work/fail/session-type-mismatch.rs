//! The session type must match the factory's connection type; the error lands on the declared type.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
fn wrong_backend(db: &SessionFactory<SqliteConnection>, conn: &mut PgConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

fn main() {}

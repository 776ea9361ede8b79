//! The `name_in` twin of a `joinable` unit takes the caller's connection:
//! handing it the factory (as if it could check a connection out) does not
//! compile, and the error points at the argument.

use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db, joinable)]
fn add_line(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection, item: &str) -> Result<(), Error> {
    diesel::sql_query("INSERT INTO lines (item) VALUES (?)")
        .bind::<diesel::sql_types::Text, _>(item)
        .execute(conn)?;
    Ok(())
}

fn main() {
    let db = SessionFactory::<SqliteConnection>::new(":memory:").unwrap();
    let _ = add_line_in(&db, &db, "tea");
}

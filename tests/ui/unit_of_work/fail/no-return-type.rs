//! A unit of work commits on `Ok` and rolls back on `Err`, so it returns a `Result`.
use dbscope::{unit_of_work, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
fn nothing(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) {
    diesel::sql_query("SELECT 1").execute(conn).ok();
}

fn main() {}

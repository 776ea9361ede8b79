//! A return type that is not a `Result` is reported on the return type.
use dbscope::{unit_of_work, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
fn count(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> usize {
    diesel::sql_query("SELECT 1").execute(conn).unwrap_or(0)
}

#[unit_of_work(factory = db)]
async fn maybe(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Option<usize> {
    diesel::sql_query("SELECT 1").execute(conn).ok()
}

fn main() {}

//! The error type must convert from `dbscope::Error`: the runtime reports
//! checkout and commit failures through it. `diesel::QueryResult` is such a
//! `Result` today.
use dbscope::{unit_of_work, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
fn string_error(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<usize, String> {
    diesel::sql_query("SELECT 1").execute(conn).map_err(|e| e.to_string())
}

#[unit_of_work(factory = db)]
fn query_result(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> QueryResult<usize> {
    diesel::sql_query("SELECT 1").execute(conn)
}

fn main() {}

//! The error type must convert from `dbscope::Error`: the runtime reports
//! checkout and commit failures through it.
use dbscope::{unit_of_work, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
fn string_error(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<usize, String> {
    diesel::sql_query("SELECT 1").execute(conn).map_err(|e| e.to_string())
}

fn main() {}

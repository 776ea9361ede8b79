//! `crate = path` points the expansion at a re-export of dbscope, for crates
//! that re-export it under another name.

pub mod facade {
    pub use dbscope as db;
}

use facade::db::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = factory, crate = crate::facade::db)]
fn ping(factory: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = factory, crate = "crate::facade::db", retry = 2)]
fn ping_quoted(factory: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

fn main() -> Result<(), Error> {
    let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
    ping(&factory)?;
    ping_quoted(&factory)
}

//! The expansion does not silence lints on the user's own code.
#![deny(warnings)]
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
fn unused(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection, name: &str) -> Result<(), Error> {
    let leftover = 1;
    Ok(())
}

fn main() {}

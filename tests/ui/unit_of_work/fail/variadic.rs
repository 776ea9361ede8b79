//! Variadic parameters are not supported.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
unsafe extern "C" fn variadic(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection, args: ...) -> Result<(), Error> {
    Ok(())
}

fn main() {}

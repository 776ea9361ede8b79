//! An unknown option is an error on the key, listing the valid ones.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db, isolation_level = serializable)]
fn misspelled(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

fn main() {}

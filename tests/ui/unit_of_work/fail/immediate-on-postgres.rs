//! `immediate` and `exclusive` are SQLite lock modes; other backends reject them at compile time.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db, immediate)]
fn pg(db: &SessionFactory<PgConnection>, conn: &mut PgConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db, exclusive)]
fn mysql(db: &SessionFactory<MysqlConnection>, conn: &mut MysqlConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

fn main() {}

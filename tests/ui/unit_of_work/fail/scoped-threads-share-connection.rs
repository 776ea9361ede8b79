//! Two threads cannot use one connection at once, even scoped ones that end
//! before the transaction does.
use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db)]
fn parallel(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    std::thread::scope(|scope| {
        scope.spawn(|| diesel::sql_query("INSERT INTO a VALUES (1)").execute(conn));
        scope.spawn(|| diesel::sql_query("INSERT INTO b VALUES (1)").execute(conn));
    });
    Ok(())
}

fn main() {}

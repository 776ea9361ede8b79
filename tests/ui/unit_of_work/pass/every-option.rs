//! Every option, on the backends that honour it. SQLite units run; the
//! PostgreSQL and MySQL ones are only type-checked.

use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

#[unit_of_work(factory = db, isolation = serializable, read_only, budget_ms = 2000)]
fn read(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db, retry = 3, exclusive)]
fn exclusive(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db, retry(attempts = 4, backoff_ms = 5, max_backoff_ms = 50), immediate)]
fn immediate(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db, retry(attempts = 2, backoff_ms = 0))]
fn no_wait(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db, isolation = read_committed, read_only)]
fn pg_report(db: &SessionFactory<PgConnection>, conn: &mut PgConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db, isolation = repeatable_read, retry = 5)]
async fn mysql_transfer(db: &SessionFactory<MysqlConnection>, conn: &mut MysqlConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db, isolation = read_uncommitted)]
fn pg_dirty(db: &SessionFactory<PgConnection>, conn: &mut PgConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

fn main() -> Result<(), Error> {
    let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
    read(&factory)?;
    exclusive(&factory)?;
    immediate(&factory)?;
    no_wait(&factory)?;
    let _ = (pg_report, mysql_transfer, pg_dirty);
    Ok(())
}

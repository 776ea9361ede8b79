//! Expansions are lint-clean: every flavour and option under `deny(warnings)`.
#![deny(warnings)]

use dbscope::{unit_of_work, Error, Session, SessionFactory, SessionSource};
use diesel::prelude::*;

/// Documented, public, sync.
#[unit_of_work(factory = db)]
pub fn sync_unit(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection, name: &str) -> Result<usize, Error> {
    Ok(diesel::sql_query("SELECT ?").bind::<diesel::sql_types::Text, _>(name).execute(conn)?)
}

#[unit_of_work(factory = db, retry(attempts = 3, backoff_ms = 1, max_backoff_ms = 2), isolation = serializable, read_only, immediate, budget_ms = 100)]
fn every_option(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

#[unit_of_work(factory = db.clone())]
async fn async_unit(db: SessionFactory<SqliteConnection>, session: &mut Session<SqliteConnection>) -> Result<(), Error> {
    diesel::sql_query("SELECT 1").execute(&mut **session)?;
    Ok(())
}

#[unit_of_work(factory = db, retry = 2)]
async fn async_retry(db: &SessionFactory<SqliteConnection>, _conn: &mut SqliteConnection) -> Result<(), Error> {
    Ok(())
}

struct Repo<F> {
    db: F,
}

impl<F: SessionSource<Connection = SqliteConnection>> Repo<F> {
    #[unit_of_work(factory = self.db)]
    fn method(&self, conn: &mut SqliteConnection) -> Result<(), Error> {
        diesel::sql_query("SELECT 1").execute(conn)?;
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let factory = SessionFactory::<SqliteConnection>::new(":memory:")?;
    sync_unit(&factory, "x")?;
    every_option(&factory)?;
    async_unit(factory.clone()).await?;
    async_retry(&factory).await?;
    Repo { db: &factory }.method()?;
    Ok(())
}

//! `&self` methods of a repository generic over its factory, with
//! `factory = self.db`: the repository holds a factory, an `Arc` of one or a
//! reference, and opens a short session per operation.

use std::sync::Arc;

use dbscope::{unit_of_work, Error, SessionFactory, SessionSource};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

pub struct Repo<F> {
    db: F,
}

impl<F: SessionSource> Repo<F> {
    /// Generic over the backend: the session is the factory's own connection type.
    #[unit_of_work(factory = self.db)]
    pub fn create_schema(&self, conn: &mut F::Connection) -> Result<(), Error> {
        conn.batch_execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")?;
        Ok(())
    }
}

impl<F: SessionSource<Connection = SqliteConnection>> Repo<F> {
    #[unit_of_work(factory = self.db, read_only)]
    pub fn count(&self, conn: &mut SqliteConnection) -> Result<i64, Error> {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>("(SELECT COUNT(*) FROM notes)"))
            .get_result(conn)
            .map_err(Error::from)
    }

    #[unit_of_work(factory = self.db)]
    pub fn add(&self, conn: &mut SqliteConnection, body: String) -> Result<usize, Error> {
        Ok(diesel::sql_query("INSERT INTO notes (body) VALUES (?)")
            .bind::<diesel::sql_types::Text, _>(body)
            .execute(conn)?)
    }
}

fn main() -> Result<(), Error> {
    let factory = Arc::new(SessionFactory::<SqliteConnection>::new(":memory:")?);
    let repo = Repo { db: Arc::clone(&factory) };
    repo.create_schema()?;
    repo.add("hello".to_owned())?;
    let by_ref = Repo { db: &*factory };
    by_ref.add("again".to_owned())?;
    assert_eq!(repo.count()?, 2);
    assert_eq!(factory.stats().in_use, 0);
    Ok(())
}

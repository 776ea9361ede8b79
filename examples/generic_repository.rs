//! One repository for several backends, written once: SQLite in tests,
//! PostgreSQL or MariaDB in production. The repository is generic over its
//! factory (`F: SessionSource`); each query it runs is named once as a bound
//! on `F::Connection`, so the compiler checks every backend it is used with.
//!
//! Run: `cargo run --example generic_repository` (SQLite in memory). With
//! `DATABASE_URL=postgres://..` (feature `postgres`) or `mysql://..` (feature
//! `mysql`) it runs the same repository on that server as well.

use dbscope::{
    unit_of_work, Error, PoolableConnection, SessionFactory, SessionSource, UnitOptions,
};
use diesel::prelude::*;
use diesel::query_builder::InsertStatement;
use diesel::query_dsl::methods::{ExecuteDsl, LoadQuery};

diesel::table! {
    /// The example's table.
    example_generic_notes (id) {
        /// Key.
        id -> Integer,
        /// Text.
        body -> Text,
    }
}

use example_generic_notes as notes;

/// The insert the repository runs, as diesel types it.
type InsertNote = InsertStatement<
    notes::table,
    <(
        diesel::dsl::Eq<notes::id, i32>,
        diesel::dsl::Eq<notes::body, String>,
    ) as Insertable<notes::table>>::Values,
>;

/// The count the repository runs, as diesel types it.
type CountNotes = diesel::dsl::Select<notes::table, diesel::dsl::CountStar>;

/// Notes, stored through whatever factory the caller gives.
struct Notes<F> {
    db: F,
}

impl<F> Notes<F>
where
    F: SessionSource,
    InsertNote: ExecuteDsl<F::Connection>,
    for<'q> CountNotes: LoadQuery<'q, F::Connection, i64>,
{
    /// Stores a note.
    #[unit_of_work(factory = self.db)]
    fn add(&self, #[session] conn: &mut F::Connection, id: i32, body: &str) -> Result<(), Error> {
        diesel::insert_into(notes::table)
            .values((notes::id.eq(id), notes::body.eq(body.to_owned())))
            .execute(conn)?;
        Ok(())
    }

    /// How many notes there are.
    #[unit_of_work(factory = self.db, read_only)]
    fn count(&self, #[session] conn: &mut F::Connection) -> Result<i64, Error> {
        Ok(notes::table.count().get_result(conn)?)
    }
}

/// A fresh table on `db`, then the repository's work; prints the count.
fn demo<C: PoolableConnection>(backend: &str, db: SessionFactory<C>) -> Result<(), Error>
where
    InsertNote: ExecuteDsl<C>,
    for<'q> CountNotes: LoadQuery<'q, C, i64>,
{
    db.run(&UnitOptions::new("example::schema"), |session| {
        for sql in [
            "DROP TABLE IF EXISTS example_generic_notes",
            "CREATE TABLE example_generic_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
        ] {
            diesel::connection::SimpleConnection::batch_execute(&mut **session, sql)?;
        }
        Ok::<_, Error>(())
    })?;
    let notes = Notes { db };
    notes.add(1, "written once")?;
    notes.add(2, "runs on every backend")?;
    println!("{backend}: {} notes through one repository", notes.count()?);
    Ok(())
}

fn main() -> Result<(), Error> {
    demo(
        "sqlite",
        SessionFactory::<SqliteConnection>::new(":memory:")?,
    )?;
    let url = std::env::var("DATABASE_URL").unwrap_or_default();
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres") {
        demo("postgres", SessionFactory::<PgConnection>::new(&url)?)?;
    }
    #[cfg(feature = "mysql")]
    if url.starts_with("mysql") {
        demo("mysql", SessionFactory::<MysqlConnection>::new(&url)?)?;
    }
    let _ = url;
    Ok(())
}

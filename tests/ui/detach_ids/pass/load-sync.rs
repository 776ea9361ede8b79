//! `#[load] app: App` becomes `app: Id<App>` for callers; the row is loaded
//! in a short unit of work before the body runs. `mut`, several loads and
//! `key = ..` work; a missing row is `Phase::NotFound` through `From`.
use dbscope::{detach_ids, Error, Id, Phase, SessionFactory};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

diesel::table! { apps (id) { id -> Integer, name -> Text } }
diesel::table! { users (id) { id -> BigInt, email -> Text } }

#[derive(Queryable, Identifiable, Debug)]
pub struct App {
    pub id: i32,
    pub name: String,
}

#[derive(Queryable, Identifiable, Debug)]
pub struct User {
    pub id: i64,
    pub email: String,
}

#[derive(Debug)]
pub enum JobError {
    Db(Error),
}

impl From<Error> for JobError {
    fn from(error: Error) -> Self {
        JobError::Db(error)
    }
}

#[detach_ids(factory = db)]
fn notify(
    db: &SessionFactory<SqliteConnection>,
    #[load] mut app: App,
    #[load(key = i64)] owner: User,
    note: &str,
) -> Result<String, JobError> {
    app.name.push('!');
    assert_eq!(db.stats().in_use, 0, "the load unit is over before the body runs");
    Ok(format!("{} -> {}: {note}", app.name, owner.email))
}

fn main() {
    let db = SessionFactory::<SqliteConnection>::new("file:detach-load-sync?mode=memory&cache=shared").unwrap();
    let mut conn = db.checkout().unwrap();
    conn.batch_execute(
        "CREATE TABLE apps (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT NOT NULL);
         INSERT INTO apps VALUES (1, 'reports');
         INSERT INTO users VALUES (10, 'ann@example.com');",
    )
    .unwrap();
    drop(conn);
    let app: Id<App> = Id::new(1);
    assert_eq!(notify(&db, app, Id::new(10), "hi").unwrap(), "reports! -> ann@example.com: hi");
    let JobError::Db(error) = notify(&db, Id::new(2), Id::new(10), "hi").unwrap_err();
    assert_eq!(error.phase(), Phase::NotFound);
}

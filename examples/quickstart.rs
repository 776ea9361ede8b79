//! `cargo run --example quickstart`: a request does database work, slow non-database work
//! (an LLM call), then more database work, each piece a short `#[unit_of_work]`. Embedded SQLite
//! by default; `DATABASE_URL=postgres://..` or `mysql://..` with `--features postgres` / `mysql`.
use dbscope::{unit_of_work, Error, Session, SessionFactory};
use diesel::{connection::SimpleConnection, prelude::*, sql_types::Integer};
use std::time::Duration;

macro_rules! patterns { ($name:ident, $conn:ty, $key:literal, $last_id:literal) => { mod $name {
use super::*; type Conn = $conn; type Db = SessionFactory<Conn>; // one copy per backend
diesel::table! {
    #[sql_name = "quickstart_jobs"]
    jobs (id) { id -> Integer, prompt -> Text, answer -> Nullable<Text>, created_at -> Text }
}

/// Create: insert, read back the server-set `created_at`, commit, return the id.
#[unit_of_work(factory = db)]
fn create(db: &Db, s: &mut Session<Conn>, prompt: &str) -> Result<i32, Error> {
    diesel::insert_into(jobs::table).values(jobs::prompt.eq(prompt)).execute(&mut **s)?;
    let new_row = jobs::id.eq(diesel::dsl::sql::<Integer>($last_id)); // this connection's insert
    let (id, created_at): (i32, String) =
        jobs::table.filter(new_row).select((jobs::id, jobs::created_at)).first(&mut **s)?;
    println!("create: job {id} inserted, created_at {created_at} read back; session held {:.1?}",
        s.held());
    Ok(id)
}

/// Fetch: load and copy out what the slow work needs; the session ends on return.
#[unit_of_work(factory = db, read_only)]
fn fetch(db: &Db, s: &mut Session<Conn>, id: i32) -> Result<String, Error> {
    let prompt: String = jobs::table.find(id).select(jobs::prompt).first(&mut **s)?;
    println!("fetch:  job {id} asks {prompt:?}; session held {:.1?}", s.held());
    Ok(prompt)
}

/// Update: change the row found by id, commit, return the id.
#[unit_of_work(factory = db)]
fn answer(db: &Db, s: &mut Session<Conn>, id: i32, text: &str) -> Result<i32, Error> {
    diesel::update(jobs::table.find(id)).set(jobs::answer.eq(text)).execute(&mut **s)?;
    println!("update: job {id} answered {text:?}; session held {:.1?}", s.held());
    Ok(id)
}

pub(super) fn main(url: &str) -> Result<(), Error> {
    let db = Db::new(url)?;
    db.checkout()?.batch_execute(concat!("CREATE TABLE IF NOT EXISTS quickstart_jobs (id ", $key,
        ", prompt TEXT NOT NULL, answer TEXT,",
        " created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"))?;
    let id = create(&db, "What is a unit of work?")?;
    let prompt = fetch(&db, id)?; // each session above is back in the pool already
    std::thread::sleep(Duration::from_millis(200)); // the slow part: an LLM, an HTTP API
    println!("model:  200 ms of slow work, {} connection(s) checked out", db.stats().in_use);
    answer(&db, id, &format!("{} characters asked, answered", prompt.len()))?;
    let s = db.stats();
    println!("pool:   {} checkouts (schema, 3 units), all back ({} in use), {} at most at once,",
        s.checkouts, s.in_use, s.max_in_use);
    println!("        {} connection(s) opened, checkout timeouts: {}, held {:.1?} in all ({})",
        s.connections_created, s.checkout_timeouts, s.held_total, db.url());
    Ok(())
}
} } }

patterns! { sqlite, SqliteConnection, "INTEGER PRIMARY KEY", "last_insert_rowid()" }
#[cfg(feature = "postgres")]
patterns! { postgres, PgConnection, "SERIAL PRIMARY KEY", "lastval()" }
#[cfg(feature = "mysql")]
patterns! { mysql, MysqlConnection, "INT AUTO_INCREMENT PRIMARY KEY", "LAST_INSERT_ID()" }

fn main() -> Result<(), Error> {
    let file = std::env::temp_dir().join("dbscope-quickstart.db");
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| file.display().to_string());
    match url.split_once("://").map_or("file", |(scheme, _)| scheme) {
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => postgres::main(&url),
        #[cfg(feature = "mysql")]
        "mysql" => mysql::main(&url),
        "file" | "sqlite" => sqlite::main(&url),
        scheme => panic!("{scheme}:// URLs need `--features postgres` or `--features mysql`"),
    }
}

//! `cargo run --example quickstart`: the three patterns of a request that does
//! database work, then slow non-database work (an LLM call, an HTTP request),
//! then more database work, each piece a short unit of work. Runs on an
//! embedded SQLite file (`DATABASE_URL` overrides it); nothing to install.

use dbscope::{Error, SessionFactory, UnitOptions};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};

mod schema {
    diesel::table! {
        jobs (id) {
            id -> Integer,
            prompt -> Text,
            answer -> Nullable<Text>,
            created_at -> Text,
        }
    }
}
use schema::jobs;

/// The id and the server default the create pattern reads back.
#[derive(QueryableByName)]
struct Created {
    #[diesel(sql_type = Integer)]
    id: i32,
    #[diesel(sql_type = Text)]
    created_at: String,
}

fn main() -> Result<(), Error> {
    let path = std::env::temp_dir().join("quickstart.db");
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| path.display().to_string());
    let factory = SessionFactory::<SqliteConnection>::new(&url)?;
    factory.run(&UnitOptions::new("schema"), |s| {
        s.batch_execute("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, prompt TEXT NOT NULL, answer TEXT, created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)").map_err(Error::from)
    })?;

    // Create: insert, read back the server default, commit, return the id.
    let (row, held) = factory.run(&UnitOptions::new("create_job"), |s| {
        let sql = "INSERT INTO jobs (prompt) VALUES (?) RETURNING id, created_at";
        let row: Created = diesel::sql_query(sql)
            .bind::<Text, _>("What is a unit of work?")
            .get_result(&mut **s)?;
        Ok::<_, Error>((row, s.held()))
    })?;
    let (id, created_at) = (row.id, row.created_at);
    println!("create: job {id} inserted, created_at {created_at} read back; session held {held:?}");

    // Fetch: load, copy out what the slow work needs, return the session, then work.
    let (question, held) = factory.run(&UnitOptions::new("fetch_job").read_only(true), |s| {
        let prompt: String = jobs::table.find(id).select(jobs::prompt).first(&mut **s)?;
        Ok::<_, Error>((prompt, s.held()))
    })?;
    println!("fetch:  job {id} asks {question:?}; session held {held:?}");
    std::thread::sleep(std::time::Duration::from_millis(200)); // the slow part: an LLM, an HTTP API
    let (busy, idle) = (factory.stats().in_use, factory.stats().idle);
    println!("        200 ms of slow work with {busy} connection(s) checked out, {idle} idle");
    let reply = format!("{} characters asked, answered", question.len());

    // Update: load by id, change, commit, return the id.
    let (before, held) = factory.run(&UnitOptions::new("answer_job"), |s| {
        let before: Option<String> = jobs::table.find(id).select(jobs::answer).first(&mut **s)?;
        let change = diesel::update(jobs::table.find(id)).set(jobs::answer.eq(&reply));
        change.execute(&mut **s)?;
        Ok::<_, Error>((before, s.held()))
    })?;
    println!("update: job {id} answer {before:?} -> {reply:?}; session held {held:?}");

    let stats = factory.stats();
    let (opened, in_use, created) = (stats.checkouts, stats.in_use, stats.connections_created);
    println!(
        "pool:   {opened} sessions opened and returned, {in_use} in use, {created} connection(s)"
    );
    println!("        database: {url}");
    Ok(())
}

//! `cargo run --example job_worker`: a job queue whose jobs carry ids, never rows.
//!
//! 1. A producer creates documents, each in a `#[unit_of_work]`, and enqueues a
//!    "summarise" job (a row in `jobs` with the JSON payload `{"document": 1}`)
//!    **after commit**: a job can never run before its document is visible, and
//!    a rolled-back document never gets one.
//! 2. Two worker threads claim jobs (`SELECT .. FOR UPDATE SKIP LOCKED` on
//!    PostgreSQL; on SQLite, which has no SKIP LOCKED, one
//!    `UPDATE .. WHERE id = (SELECT ..)`), then run the `#[detach_ids]` function
//!    `summarise`, whose `#[load] doc: Document` reloads the current row in a
//!    short unit of work: a title changed after the job was enqueued is seen.
//!    The slow part (a fake remote model) runs with no connection held.
//! 3. A transient failure (the fake model times out once) puts the job back in
//!    the queue for another attempt; the units of work themselves retry
//!    transient database errors (`retry = 3`).
//!
//! Embedded SQLite by default; `DATABASE_URL=postgres://..` with
//! `--features postgres` runs the same on PostgreSQL.
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dbscope::{after_commit, detach_ids, unit_of_work, Error, Id, Session, SessionFactory};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text};
use serde::{Deserialize, Serialize};

/// What the worker's job function can fail with.
#[derive(Debug)]
enum JobError {
    Db(Error),
    /// The remote model timed out: worth another attempt.
    RemoteTimeout,
}

impl From<Error> for JobError {
    fn from(error: Error) -> Self {
        JobError::Db(error)
    }
}

impl JobError {
    fn is_transient(&self) -> bool {
        match self {
            JobError::Db(error) => error.is_transient(),
            JobError::RemoteTimeout => true,
        }
    }
}

/// The id a `RETURNING id` gives back.
#[derive(QueryableByName)]
struct NewId {
    #[diesel(sql_type = Integer)]
    id: i32,
}

/// A claimed job.
#[derive(QueryableByName, Debug)]
struct Claimed {
    #[diesel(sql_type = Integer)]
    id: i32,
    #[diesel(sql_type = Text)]
    payload: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

/// Set the first time the fake model is called, so it times out once.
static MODEL_TIMED_OUT: AtomicBool = AtomicBool::new(false);

/// The slow, non-database part: an LLM or an HTTP API.
fn call_model(text: &str) -> Result<String, JobError> {
    std::thread::sleep(Duration::from_millis(150));
    if !MODEL_TIMED_OUT.swap(true, Ordering::SeqCst) {
        return Err(JobError::RemoteTimeout);
    }
    Ok(format!("{} words", text.split_whitespace().count()))
}

const MAX_ATTEMPTS: i32 = 3;

macro_rules! job_worker { ($name:ident, $conn:ty, $schema:literal, $claim:literal, $p1:literal, $p2:literal, $p3:literal) => { mod $name {
use super::*;
type Conn = $conn;
type Db = SessionFactory<Conn>; // one copy of this module per backend

diesel::table! {
    #[sql_name = "job_worker_documents"]
    documents (id) { id -> Integer, title -> Text, body -> Text, summary -> Nullable<Text> }
}

/// A model row: it never crosses a boundary; its `Id<Document>` does.
#[derive(Queryable, Identifiable, Debug)]
pub struct Document {
    pub id: i32,
    pub title: String,
    pub body: String,
    pub summary: Option<String>,
}

/// A job's payload: ids only, serialised as `{"document": 1}`.
#[derive(Serialize, Deserialize, Debug)]
struct Summarise {
    document: Id<Document>,
}

/// Producer: inserts a document; its job is enqueued once this unit commits.
#[unit_of_work(factory = db, retry = 3)]
fn create_document(db: &Db, s: &mut Session<Conn>, title: &str, body: &str) -> Result<Id<Document>, Error> {
    let row = diesel::sql_query(concat!(
        "INSERT INTO job_worker_documents (title, body) VALUES (", $p1, ", ", $p2, ") RETURNING id"
    ))
    .bind::<Text, _>(title)
    .bind::<Text, _>(body)
    .get_result::<NewId>(&mut **s)?;
    let id = Id::<Document>::new(row.id);
    let db = db.clone();
    after_commit(move || match enqueue(&db, &Summarise { document: id }) {
        Ok(job) => println!("producer: document {id} committed, then job {job} enqueued"),
        Err(error) => eprintln!("producer: could not enqueue a job for document {id}: {error}"),
    })?;
    Ok(id)
}

/// Enqueues a job with its JSON payload of ids.
#[unit_of_work(factory = db, retry = 3)]
fn enqueue(db: &Db, s: &mut Session<Conn>, job: &Summarise) -> Result<i32, Error> {
    let payload = serde_json::to_string(job).expect("ids serialise");
    let job = diesel::sql_query(concat!(
        "INSERT INTO job_worker_jobs (kind, payload, state, attempts) VALUES ('summarise', ", $p1,
        ", 'queued', 0) RETURNING id"
    ))
    .bind::<Text, _>(payload)
    .get_result::<NewId>(&mut **s)?;
    Ok(job.id)
}

/// Producer: a change made after the job was enqueued.
#[unit_of_work(factory = db, retry = 3)]
fn retitle(db: &Db, s: &mut Session<Conn>, id: Id<Document>, title: &str) -> Result<(), Error> {
    diesel::update(id.find()).set(documents::title.eq(title)).execute(&mut **s)?;
    Ok(())
}

/// Worker: claims the oldest queued job, if any.
#[unit_of_work(factory = db, retry = 3)]
fn claim(db: &Db, s: &mut Session<Conn>) -> Result<Option<Claimed>, Error> {
    Ok(diesel::sql_query($claim).get_result::<Claimed>(&mut **s).optional()?)
}

/// The detached job: it receives an id, reloads the current row in a short
/// unit of work, and does the slow part with no connection held.
#[detach_ids(factory = db)]
fn summarise(db: &Db, #[load] doc: Document, worker: usize) -> Result<String, JobError> {
    println!("worker {worker}: document {} loaded as {:?}; {} connection(s) in use during the model call",
        doc.id, doc.title, db.stats().in_use);
    let summary = call_model(&doc.body)?;
    Ok(format!("{}: {summary}", doc.title))
}

#[unit_of_work(factory = db, retry = 3)]
fn save_summary(db: &Db, s: &mut Session<Conn>, id: Id<Document>, summary: &str) -> Result<(), Error> {
    diesel::update(id.find()).set(documents::summary.eq(summary)).execute(&mut **s)?;
    Ok(())
}

/// Ends a job: `done`, back to `queued` for another attempt, or `failed`.
#[unit_of_work(factory = db, retry = 3)]
fn settle(db: &Db, s: &mut Session<Conn>, job: i32, state: &str, error: Option<String>) -> Result<(), Error> {
    diesel::sql_query(concat!("UPDATE job_worker_jobs SET state = ", $p1, ", last_error = ", $p2, " WHERE id = ", $p3))
        .bind::<Text, _>(state)
        .bind::<Nullable<Text>, _>(error.clone())
        .bind::<Integer, _>(job)
        .execute(&mut **s)?;
    Ok(())
}

fn work(db: &Db, worker: usize) -> Result<(), Error> {
    loop {
        let Some(job) = claim(db)? else {
            println!("worker {worker}: queue empty, stopping");
            return Ok(());
        };
        let payload: Summarise = serde_json::from_str(&job.payload).expect("a payload of ids");
        println!("worker {worker}: claimed job {} (attempt {}) payload {}", job.id, job.attempts, job.payload);
        match summarise(db, payload.document, worker) {
            Ok(summary) => {
                save_summary(db, payload.document, &summary)?;
                settle(db, job.id, "done", None)?;
                println!("worker {worker}: job {} done: {summary:?}", job.id);
            }
            Err(error) if error.is_transient() && job.attempts < MAX_ATTEMPTS => {
                settle(db, job.id, "queued", Some(format!("{error:?}")))?;
                println!("worker {worker}: job {} failed transiently ({error:?}); back in the queue", job.id);
            }
            Err(error) => {
                settle(db, job.id, "failed", Some(format!("{error:?}")))?;
                println!("worker {worker}: job {} failed: {error:?}", job.id);
            }
        }
    }
}

pub(super) fn main(url: &str) -> Result<(), Error> {
    let db = Db::builder(url).max_size(3).build()?;
    db.checkout()?.batch_execute($schema)?;

    let first = create_document(&db, "Pool sizing", "size the pool for the database work only")?;
    create_document(&db, "Stale rows", "pass ids and reload the row inside the job")?;
    create_document(&db, "Retries", "retry transient failures in a fresh transaction")?;
    retitle(&db, first, "Pool sizing (revised)")?;
    println!("producer: document {first} retitled after its job was enqueued");

    let workers: Vec<_> = (1..=2)
        .map(|worker| {
            let db = db.clone();
            std::thread::spawn(move || work(&db, worker))
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker thread")?;
    }

    let mut conn = db.checkout()?;
    for doc in documents::table.order(documents::id).load::<Document>(&mut *conn)? {
        println!("result: document {} {:?}: summary {:?}", doc.id, doc.title, doc.summary);
    }
    drop(conn);
    let s = db.stats();
    println!("pool: {} checkouts, {} at most at once, {} in use now, held {:.1?} in all ({})",
        s.checkouts, s.max_in_use, s.in_use, s.held_total, db.url());
    Ok(())
}
} } }

job_worker!(
    sqlite,
    diesel::SqliteConnection,
    "DROP TABLE IF EXISTS job_worker_documents; DROP TABLE IF EXISTS job_worker_jobs;
     CREATE TABLE job_worker_documents (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL,
         body TEXT NOT NULL, summary TEXT);
     CREATE TABLE job_worker_jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
         payload TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL, last_error TEXT);",
    // SQLite has no SKIP LOCKED: one statement claims a job (writers are serialised).
    "UPDATE job_worker_jobs SET state = 'running', attempts = attempts + 1
     WHERE id = (SELECT id FROM job_worker_jobs WHERE state = 'queued' ORDER BY id LIMIT 1)
     RETURNING id, payload, attempts",
    "?",
    "?",
    "?"
);

#[cfg(feature = "postgres")]
job_worker!(
    postgres,
    diesel::PgConnection,
    "DROP TABLE IF EXISTS job_worker_documents; DROP TABLE IF EXISTS job_worker_jobs;
     CREATE TABLE job_worker_documents (id SERIAL PRIMARY KEY, title TEXT NOT NULL,
         body TEXT NOT NULL, summary TEXT);
     CREATE TABLE job_worker_jobs (id SERIAL PRIMARY KEY, kind TEXT NOT NULL,
         payload TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL, last_error TEXT);",
    // Workers skip the rows other workers hold locked instead of waiting for them.
    "UPDATE job_worker_jobs SET state = 'running', attempts = attempts + 1
     WHERE id = (SELECT id FROM job_worker_jobs WHERE state = 'queued' ORDER BY id LIMIT 1
                 FOR UPDATE SKIP LOCKED)
     RETURNING id, payload, attempts",
    "$1",
    "$2",
    "$3"
);

fn main() -> Result<(), Error> {
    match std::env::var("DATABASE_URL") {
        #[cfg(feature = "postgres")]
        Ok(url) if url.starts_with("postgres") => postgres::main(&url),
        Ok(url) if url.starts_with("postgres") => {
            eprintln!("DATABASE_URL is a PostgreSQL URL: run with `--features postgres`");
            std::process::exit(2)
        }
        Ok(url) if url.starts_with("mysql") => {
            // MariaDB has SKIP LOCKED but no UPDATE .. RETURNING, which the
            // claim query uses; rather than run on SQLite behind your back:
            eprintln!(
                "job_worker runs on PostgreSQL or embedded SQLite; unset DATABASE_URL or give a postgres:// URL"
            );
            std::process::exit(2)
        }
        _ => {
            let path =
                std::env::temp_dir().join(format!("dbscope-job-worker-{}.db", std::process::id()));
            println!(
                "embedded SQLite at {} (set DATABASE_URL=postgres://.. for PostgreSQL)",
                path.display()
            );
            let result = sqlite::main(&path.to_string_lossy());
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            result
        }
    }
}

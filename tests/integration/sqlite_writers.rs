//! SQLite write units under concurrency (issue 15). A unit that is not
//! read-only begins with `BEGIN IMMEDIATE`, so it waits for the write lock at
//! `BEGIN` under the busy timeout; a deferred transaction that reads and then
//! writes cannot wait (SQLite answers `database is locked` at its first write).
//! Read-only units stay deferred, so readers run beside a writer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::SqliteConnection;

use crate::support::{temp_dir, Scalar};

const THREADS: usize = 8;
const UNITS_PER_THREAD: usize = 200;

fn counter(conn: &mut SqliteConnection) -> QueryResult<i64> {
    diesel::sql_query("SELECT n FROM counter")
        .get_result::<Scalar>(conn)
        .map(|row| row.n)
}

/// Reads the counter, then writes it plus one.
fn fetch_then_update(conn: &mut SqliteConnection) -> QueryResult<()> {
    let n = counter(conn)?;
    diesel::sql_query(format!("UPDATE counter SET n = {}", n + 1)).execute(conn)?;
    Ok(())
}

/// Fetch, then update: the pattern a deferred transaction cannot run
/// concurrently.
#[unit_of_work(factory = db)]
fn increment(
    db: &SessionFactory<SqliteConnection>,
    conn: &mut SqliteConnection,
) -> Result<(), Error> {
    Ok(fetch_then_update(conn)?)
}

#[unit_of_work(factory = db, deferred)]
fn increment_deferred(
    db: &SessionFactory<SqliteConnection>,
    conn: &mut SqliteConnection,
) -> Result<(), Error> {
    Ok(fetch_then_update(conn)?)
}

#[unit_of_work(factory = db, read_only)]
fn read(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection) -> Result<i64, Error> {
    Ok(counter(conn)?)
}

fn file_factory(test: &str) -> (SessionFactory<SqliteConnection>, std::path::PathBuf) {
    let dir = temp_dir(test);
    let url = dir.join("writers.db").to_string_lossy().into_owned();
    let db = SessionFactory::<SqliteConnection>::builder(&url)
        .max_size(THREADS)
        .build()
        .expect("factory");
    db.checkout()
        .expect("connection")
        .batch_execute("CREATE TABLE counter (n INTEGER NOT NULL); INSERT INTO counter VALUES (0)")
        .expect("schema");
    (db, dir)
}

/// Runs `unit` `THREADS` × `UNITS_PER_THREAD` times; the failures and the
/// final count.
fn hammer(
    db: &SessionFactory<SqliteConnection>,
    unit: fn(&SessionFactory<SqliteConnection>) -> Result<(), Error>,
) -> (usize, i64) {
    let failures = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            let failures = Arc::clone(&failures);
            scope.spawn(move || {
                for _ in 0..UNITS_PER_THREAD {
                    if unit(db).is_err() {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let n = read(db).expect("count");
    (failures.load(Ordering::Relaxed), n)
}

#[test]
fn write_units_on_a_sqlite_file_neither_fail_nor_lose_updates() {
    let (db, dir) = file_factory("sqlite_writers");
    let (failures, n) = hammer(&db, increment);
    assert_eq!(failures, 0, "default write units failed");
    assert_eq!(n, (THREADS * UNITS_PER_THREAD) as i64, "lost updates");
    assert!(db.stats().max_in_use > 1, "the units ran concurrently");
    // For comparison only (how many fail depends on scheduling): the same
    // units asking for a deferred transaction.
    let (deferred_failures, _) = hammer(&db, increment_deferred);
    eprintln!(
        "deferred fetch-then-update: {deferred_failures} of {} units failed",
        THREADS * UNITS_PER_THREAD
    );
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn read_only_units_stay_deferred_beside_a_writer() {
    let (db, dir) = file_factory("sqlite_readers");
    // A writer holds the write lock (a hand-opened session begins IMMEDIATE).
    let mut writer = db.session().expect("writer");
    diesel::sql_query("UPDATE counter SET n = 1")
        .execute(&mut *writer)
        .expect("write");
    // A read-only unit does not ask for the write lock: it reads the last
    // committed value at once instead of waiting for the writer.
    let seen = std::thread::scope(|scope| scope.spawn(|| read(&db)).join().expect("reader"));
    assert_eq!(seen.expect("a reader beside a writer"), 0);
    writer.commit().expect("commit");
    assert_eq!(read(&db).expect("after"), 1);
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

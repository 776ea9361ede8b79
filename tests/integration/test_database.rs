//! `TestDatabase`: a database of its own per test, so a test can run its code
//! with as many connections as production (a `rollback_only()` factory has
//! one) while other tests run at the same time.

use std::sync::Arc;

use dbscope::{BackendKind, PoolableConnection, SqliteLock, TestDatabase, UnitOptions};
use diesel::Connection;

use crate::support::{Backend, TestError};

const THREADS: usize = 8;
const INCREMENTS: usize = 25;

/// The locking read of a fetch-then-update, and the options that make it
/// wait for the lock on this backend (SQLite has no `FOR UPDATE`: an
/// immediate transaction takes the write lock at `BEGIN`).
fn locking_read<B: Backend>() -> (&'static str, UnitOptions) {
    let options = UnitOptions::new("increment");
    match <B::Conn as PoolableConnection>::KIND {
        BackendKind::Sqlite => (
            "SELECT v AS n FROM counter WHERE id = 1",
            options.sqlite_lock(SqliteLock::Immediate),
        ),
        _ => (
            "SELECT v AS n FROM counter WHERE id = 1 FOR UPDATE",
            options,
        ),
    }
}

/// Eight threads each read a counter and write it back plus one, 25 times,
/// through a factory of four connections on a database of the test's own:
/// every unit commits and no increment is lost.
fn concurrent_increments_on_a_database_of_its_own<B: Backend>(server_url: &str, test: &str) {
    let db = TestDatabase::<B::Conn>::create(server_url, test).expect("create the test database");
    let factory = Arc::new(
        db.builder()
            .max_size(4)
            .checkout_timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("factory on the test database"),
    );
    factory
        .run(&UnitOptions::new("schema"), |session| {
            B::execute(
                session,
                "CREATE TABLE counter (id INTEGER PRIMARY KEY, v BIGINT NOT NULL)",
            )?;
            B::execute(session, "INSERT INTO counter (id, v) VALUES (1, 0)")?;
            Ok::<_, TestError>(())
        })
        .expect("schema");

    let (read_sql, options) = locking_read::<B>();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let factory = Arc::clone(&factory);
            std::thread::spawn(move || {
                for _ in 0..INCREMENTS {
                    factory
                        .run(&options, |session| {
                            let v = B::scalar(session, read_sql)?;
                            B::execute(
                                session,
                                &format!("UPDATE counter SET v = {} WHERE id = 1", v + 1),
                            )?;
                            Ok::<_, TestError>(())
                        })
                        .expect("every increment commits");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker thread");
    }

    let total = factory
        .run(&UnitOptions::new("read").read_only(true), |session| {
            Ok::<_, TestError>(B::scalar(
                session,
                "SELECT v AS n FROM counter WHERE id = 1",
            )?)
        })
        .expect("read the counter");
    assert_eq!(total, (THREADS * INCREMENTS) as i64, "lost updates");
    let stats = factory.stats();
    assert!(
        stats.max_in_use > 1,
        "the units ran one at a time (max_in_use {}): the test shows nothing about concurrency",
        stats.max_in_use
    );
    drop(factory);

    let url = db.url().to_owned();
    drop(db);
    match <B::Conn as PoolableConnection>::KIND {
        BackendKind::Sqlite => assert!(
            !std::path::Path::new(&url).exists(),
            "{url} is still there after the fixture was dropped"
        ),
        _ => assert!(
            B::Conn::establish(&url).is_err(),
            "{url} still accepts connections after the fixture was dropped"
        ),
    }
}

/// Two fixtures of one test are two databases: a table in one is not in the other.
fn two_fixtures_are_two_databases<B: Backend>(server_url: &str, test: &str) {
    let first = TestDatabase::<B::Conn>::create(server_url, test).expect("first database");
    let second = TestDatabase::<B::Conn>::create(server_url, test).expect("second database");
    assert_ne!(first.name(), second.name());
    let mut one = B::Conn::establish(first.url()).expect("connect to the first");
    B::execute(&mut one, "CREATE TABLE only_here (id INTEGER PRIMARY KEY)").expect("create table");
    let mut two = B::Conn::establish(second.url()).expect("connect to the second");
    assert!(
        B::execute(&mut two, "SELECT id FROM only_here").is_err(),
        "the second database sees the first one's table"
    );
}

macro_rules! fixture_tests {
    ($module:ident, $backend:ty, $cfg:meta) => {
        #[$cfg]
        mod $module {
            use crate::support::Backend;

            fn server_url(test: &str) -> Option<String> {
                <$backend as Backend>::database(test).map(|db| db.url.clone())
            }

            #[test]
            fn concurrent_increments_on_a_database_of_its_own() {
                let test = "concurrent_increments_on_a_database_of_its_own";
                if let Some(url) = server_url(test) {
                    super::concurrent_increments_on_a_database_of_its_own::<$backend>(&url, test);
                }
            }

            #[test]
            fn two_fixtures_are_two_databases() {
                let test = "two_fixtures_are_two_databases";
                if let Some(url) = server_url(test) {
                    super::two_fixtures_are_two_databases::<$backend>(&url, test);
                }
            }
        }
    };
}

fixture_tests!(sqlite, crate::support::Sqlite, cfg(feature = "sqlite"));
fixture_tests!(
    postgres,
    crate::support::Postgres,
    cfg(feature = "postgres")
);
fixture_tests!(mysql, crate::support::Mysql, cfg(feature = "mysql"));

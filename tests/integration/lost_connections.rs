//! Connections killed by the server are classified as lost, for every network
//! driver in use: libpq and libmariadb (blocking diesel), tokio-postgres and
//! mysql_async (diesel-async). Killed while idle (the next statement finds the
//! socket closed) and while a statement runs (`pg_terminate_backend`, MariaDB
//! `KILL`). Then through the native pool: killed idle connections used again
//! within the validation window never reach a unit (issue 12, item 3).
//! SQLite has no connection to lose: its busy errors are tested in `classify`.

use std::time::Duration;

use dbscope::{classify, TransientKind};
use diesel::connection::SimpleConnection;
use diesel::result::Error as DieselError;

use crate::faults::Killable;
use crate::support::{wait_until, Backend, Ctx};

/// What the scenarios need to kill a busy connection.
pub trait Busy: Killable {
    /// A statement that keeps the server busy for `seconds`.
    fn sleep_sql(seconds: u32) -> String;
    /// Counts (as `n`) whether connection `id` is running a statement.
    fn running_sql(id: i64) -> String;
}

#[cfg(feature = "postgres")]
impl Busy for crate::support::Postgres {
    fn sleep_sql(seconds: u32) -> String {
        format!("SELECT pg_sleep({seconds})")
    }
    fn running_sql(id: i64) -> String {
        format!(
            "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE pid = {id} AND state = 'active' \
             AND query LIKE 'SELECT pg_sleep%'"
        )
    }
}

#[cfg(feature = "mysql")]
impl Busy for crate::support::Mysql {
    fn sleep_sql(seconds: u32) -> String {
        format!("DO SLEEP({seconds})")
    }
    fn running_sql(id: i64) -> String {
        format!(
            "SELECT COUNT(*) AS n FROM information_schema.processlist WHERE id = {id} \
             AND command = 'Query' AND info LIKE 'DO SLEEP%'"
        )
    }
}

/// Kills connection `id` from a plain connection and waits until it is gone.
fn kill<B: Killable>(url: &str, id: i64) {
    let mut admin = B::plain(url);
    admin
        .batch_execute(&B::kill_sql(id))
        .unwrap_or_else(|e| panic!("kill {id}: {e}"));
    let gone = wait_until(Duration::from_secs(10), || {
        B::scalar(&mut admin, &gone_sql::<B>(id)).is_ok_and(|n| n == 0)
    });
    assert!(gone, "connection {id} still listed after the kill");
}

fn gone_sql<B: Backend>(id: i64) -> String {
    if B::NAME == "pg" {
        format!("SELECT COUNT(*) AS n FROM pg_stat_activity WHERE pid = {id}")
    } else {
        format!(
            "SELECT COUNT(*) AS n FROM information_schema.processlist WHERE id = {id} \
             AND command <> 'Killed'"
        )
    }
}

/// Waits until connection `id` runs the sleep, then kills it.
fn kill_when_running<B: Busy>(url: &str, id: i64) {
    let mut admin = B::plain(url);
    let running = wait_until(Duration::from_secs(10), || {
        B::scalar(&mut admin, &B::running_sql(id)).is_ok_and(|n| n == 1)
    });
    assert!(running, "connection {id} never started its statement");
    kill::<B>(url, id);
}

fn assert_lost(what: &str, error: &DieselError) {
    assert_eq!(
        classify(error),
        Some(TransientKind::ConnectionLost),
        "{what}: {error:?} ({error})"
    );
}

fn blocking_killed_idle_connection_is_lost<B: Busy>(ctx: &Ctx<B>) {
    let _serial = B::lock().lock().unwrap_or_else(|p| p.into_inner());
    let mut conn = ctx.plain();
    let id = B::connection_id(&mut conn);
    kill::<B>(ctx.url(), id);
    // libpq reads the termination notice first; a second statement finds
    // the socket closed. Both are lost connections.
    for attempt in ["first statement", "second statement"] {
        let error = conn.batch_execute("SELECT 1").expect_err("killed");
        assert_lost(attempt, &error);
    }
}

fn blocking_killed_busy_connection_is_lost<B: Busy>(ctx: &Ctx<B>) {
    let _serial = B::lock().lock().unwrap_or_else(|p| p.into_inner());
    let mut conn = ctx.plain();
    let id = B::connection_id(&mut conn);
    let sleeper = std::thread::spawn(move || conn.batch_execute(&B::sleep_sql(30)));
    kill_when_running::<B>(ctx.url(), id);
    let error = sleeper
        .join()
        .expect("sleeper")
        .expect_err("killed mid-statement");
    assert_lost("statement running when killed", &error);
}

#[cfg(feature = "async")]
mod native {
    use std::sync::Arc;

    use dbscope::{AsyncSessionFactory, Error, UnitOptions};
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};

    use super::*;
    use crate::commit_outcomes::io_runtime;
    use crate::uow_native::Native;

    fn id_sql<B: Backend>() -> String {
        B::CONNECTION_ID_SQL.to_owned()
    }

    /// A runtime, a new native connection outside any pool, and its id.
    fn connect<B: Native>(ctx: &Ctx<B>) -> (tokio::runtime::Runtime, B::Async, i64) {
        let runtime = io_runtime();
        let mut conn: B::Async = runtime
            .block_on(B::Async::establish(ctx.url()))
            .expect("connect");
        let id = runtime
            .block_on(B::query_n(&mut conn, id_sql::<B>()))
            .expect("id");
        (runtime, conn, id)
    }

    pub(super) fn native_killed_idle_connection_is_lost<B: Busy + Native>(ctx: &Ctx<B>) {
        let _serial = B::lock().lock().unwrap_or_else(|p| p.into_inner());
        let (runtime, mut conn, id) = connect(ctx);
        kill::<B>(ctx.url(), id);
        for attempt in ["first statement", "second statement"] {
            let error = runtime
                .block_on(conn.batch_execute("SELECT 1"))
                .expect_err("killed");
            assert_lost(attempt, &error);
        }
    }

    pub(super) fn native_killed_busy_connection_is_lost<B: Busy + Native>(ctx: &Ctx<B>) {
        let _serial = B::lock().lock().unwrap_or_else(|p| p.into_inner());
        let (runtime, mut conn, id) = connect(ctx);
        let url = ctx.url().to_owned();
        let killer = std::thread::spawn(move || {
            kill_when_running::<B>(&url, id);
        });
        let error = runtime
            .block_on(conn.batch_execute(&<B as Busy>::sleep_sql(30)))
            .expect_err("killed mid-statement");
        killer.join().expect("killer");
        assert_lost("statement running when killed", &error);
    }

    const POOL: usize = 4;
    const UNITS: i64 = 40;

    /// Issue 12, item 3: pooled connections killed while idle, used again
    /// within the validation window (no ping): BEGIN finds them dead and the
    /// unit moves to a new connection; no unit fails.
    pub(super) fn native_killed_idle_connections_never_reach_units<B: Busy + Native>(ctx: &Ctx<B>) {
        let _serial = B::lock().lock().unwrap_or_else(|p| p.into_inner());
        let factory = AsyncSessionFactory::<B::Async>::builder(ctx.url())
            .max_size(POOL)
            .checkout_timeout(Duration::from_secs(10))
            .build()
            .expect("factory");
        let runtime = io_runtime();
        // Warm: POOL units at once, each holding its connection until all
        // have one, so POOL connections are open and then idle.
        let ids: Vec<i64> = runtime.block_on(async {
            let barrier = Arc::new(tokio::sync::Barrier::new(POOL));
            let units = (0..POOL).map(|_| {
                let (factory, barrier) = (factory.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    factory
                        .run(
                            &UnitOptions::new("it::warm"),
                            async |conn: &mut B::Async| {
                                let id = B::query_n(conn, id_sql::<B>()).await?;
                                barrier.wait().await;
                                Ok::<_, Error>(id)
                            },
                        )
                        .await
                })
            });
            let mut ids = Vec::new();
            for unit in units.collect::<Vec<_>>() {
                ids.push(unit.await.expect("join").expect("warm unit"));
            }
            ids
        });
        let stats = factory.stats();
        assert_eq!((stats.open, stats.idle), (POOL, POOL), "{stats:?}");
        let killed = B::kill_idle(&mut ctx.plain(), &ids).expect("kill idle connections");
        assert_eq!(killed, POOL);

        let failures: Vec<String> = runtime.block_on(async {
            let mut failures = Vec::new();
            for id in 1..=UNITS {
                let table = ctx.table.clone();
                let outcome = factory
                    .run(
                        &UnitOptions::new("it::after_kill"),
                        async |conn: &mut B::Async| {
                            conn.batch_execute(&format!(
                                "INSERT INTO {table} (id, v) VALUES ({id}, 1)"
                            ))
                            .await?;
                            Ok::<_, Error>(())
                        },
                    )
                    .await;
                if let Err(error) = outcome {
                    failures.push(error.to_string());
                }
            }
            failures
        });
        assert!(
            failures.is_empty(),
            "{} of {UNITS} units failed: {failures:#?}",
            failures.len()
        );
        assert_eq!(ctx.count(), UNITS);
        let stats = factory.stats();
        assert!(
            stats.begin_retries + stats.validation_failures >= 1,
            "{stats:?}"
        );
    }
}

#[cfg(feature = "async")]
use native::{
    native_killed_busy_connection_is_lost, native_killed_idle_connection_is_lost,
    native_killed_idle_connections_never_reach_units,
};

#[cfg(feature = "postgres")]
mod postgres {
    crate::backend_tests!(
        run_faults,
        crate::support::Postgres,
        [
            blocking_killed_idle_connection_is_lost,
            blocking_killed_busy_connection_is_lost,
        ]
    );
}

#[cfg(feature = "mysql")]
mod mysql {
    crate::backend_tests!(
        run_faults,
        crate::support::Mysql,
        [
            blocking_killed_idle_connection_is_lost,
            blocking_killed_busy_connection_is_lost,
        ]
    );
}

#[cfg(all(feature = "async", feature = "postgres"))]
mod postgres_native {
    crate::backend_tests!(
        run_faults,
        crate::support::Postgres,
        [
            native_killed_idle_connection_is_lost,
            native_killed_busy_connection_is_lost,
            native_killed_idle_connections_never_reach_units,
        ]
    );
}

#[cfg(all(feature = "async", feature = "mysql"))]
mod mysql_native {
    crate::backend_tests!(
        run_faults,
        crate::support::Mysql,
        [
            native_killed_idle_connection_is_lost,
            native_killed_busy_connection_is_lost,
            native_killed_idle_connections_never_reach_units,
        ]
    );
}

//! Fault tests: the server kills every idle pooled connection; units of work
//! never see it. Run on the faults databases only, one at a time per backend
//! (a test's own plain connections idle too), and kill only the idle
//! connections of the faults database that this test's pool opened.

use std::sync::Mutex;
use std::time::Duration;

use dbscope::{Error, UnitOptions};
use diesel::connection::SimpleConnection;
use diesel::QueryResult;

use crate::support::{Backend, Ctx};

/// A server backend whose idle connections a test can kill.
pub trait Killable: Backend {
    /// Serialises the fault tests of this backend.
    fn lock() -> &'static Mutex<()>;

    /// Kills the connections in `ids` that are idle in the current database,
    /// from `admin`; returns how many were killed.
    fn kill_idle(admin: &mut Self::Conn, ids: &[i64]) -> QueryResult<usize>;

    /// A statement that kills connection `id` (busy or not) and returns once it is gone.
    fn kill_sql(id: i64) -> String;
}

#[cfg(feature = "postgres")]
impl Killable for crate::support::Postgres {
    fn lock() -> &'static Mutex<()> {
        static LOCK: Mutex<()> = Mutex::new(());
        &LOCK
    }

    fn kill_sql(id: i64) -> String {
        format!("SELECT pg_terminate_backend({id}, 5000)")
    }

    fn kill_idle(admin: &mut Self::Conn, ids: &[i64]) -> QueryResult<usize> {
        let ids = ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        // The 5 s form of pg_terminate_backend waits until each backend exited.
        let killed = Self::scalar(
            admin,
            &format!(
                "SELECT COUNT(*) AS n FROM (SELECT pg_terminate_backend(pid, 5000) AS killed \
                 FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle' \
                 AND pid <> pg_backend_pid() AND pid IN ({ids})) AS t WHERE killed"
            ),
        )?;
        Ok(killed as usize)
    }
}

#[cfg(feature = "mysql")]
impl Killable for crate::support::Mysql {
    fn lock() -> &'static Mutex<()> {
        static LOCK: Mutex<()> = Mutex::new(());
        &LOCK
    }

    fn kill_sql(id: i64) -> String {
        format!("KILL {id}")
    }

    fn kill_idle(admin: &mut Self::Conn, ids: &[i64]) -> QueryResult<usize> {
        use diesel::prelude::*;
        let ids = ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let idle: Vec<crate::support::Scalar> = diesel::sql_query(format!(
            "SELECT CAST(id AS SIGNED) AS n FROM information_schema.processlist \
             WHERE db = DATABASE() AND command = 'Sleep' AND id <> CONNECTION_ID() AND id IN ({ids})"
        ))
        .load(admin)?;
        for id in &idle {
            admin.batch_execute(&format!("KILL {}", id.n))?;
        }
        // KILL returns before the victim's thread is gone; wait until it is.
        let gone = crate::support::wait_until(Duration::from_secs(5), || {
            Self::scalar(
                admin,
                &format!("SELECT COUNT(*) AS n FROM information_schema.processlist WHERE id IN ({ids}) AND command <> 'Killed'"),
            )
            .is_ok_and(|n| n == 0)
        });
        assert!(gone, "killed connections still listed");
        Ok(idle.len())
    }
}

const POOL: usize = 4;
const UNITS: i64 = 50;

/// Warms a pool of 4, kills all 4 idle connections, optionally waits, then
/// runs 50 units: every one must succeed.
fn units_survive_killed_idle_connections<B: Killable>(
    ctx: &Ctx<B>,
    wait: Duration,
) -> dbscope::PoolStats {
    let _serial = B::lock()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let factory = ctx
        .builder()
        .max_size(POOL)
        .checkout_timeout(Duration::from_secs(10))
        .build()
        .expect("factory");
    // Warm: all 4 connections open at once, then idle.
    let ids: Vec<i64> = {
        let mut sessions: Vec<_> = (0..POOL)
            .map(|_| factory.session().expect("warm session"))
            .collect();
        let ids = sessions.iter_mut().map(|s| B::connection_id(s)).collect();
        for session in sessions {
            session.commit().expect("commit");
        }
        ids
    };
    let stats = factory.stats();
    assert_eq!((stats.open, stats.idle), (POOL, POOL), "{stats:?}");

    let mut admin = ctx.plain();
    let killed = B::kill_idle(&mut admin, &ids).expect("kill idle connections");
    assert_eq!(killed, POOL, "all idle pooled connections must be killed");
    std::thread::sleep(wait);

    let options = UnitOptions::new("it::after_kill");
    let results: Vec<Result<(), Error>> = (1..=UNITS)
        .map(|id| {
            factory.run(&options, |s| {
                s.batch_execute(&ctx.insert_sql(id, id))
                    .map_err(Error::from)
            })
        })
        .collect();
    let failures: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(ToString::to_string)
        .collect();
    assert!(
        failures.is_empty(),
        "{} units failed: {failures:#?}",
        failures.len()
    );
    assert_eq!(ctx.count(), UNITS);
    let stats = factory.stats();
    assert!(
        stats.begin_retries + stats.validation_failures >= 1,
        "{stats:?}"
    );
    assert_eq!(stats.in_use, 0);
    stats
}

fn killed_idle_connections_are_caught_at_begin<B: Killable>(ctx: &Ctx<B>) {
    let stats = units_survive_killed_idle_connections(ctx, Duration::ZERO);
    // Idle for less than the 500 ms validation window: no ping, BEGIN fails.
    assert!(stats.begin_retries >= 1, "{stats:?}");
}

fn killed_idle_connections_are_caught_by_validation<B: Killable>(ctx: &Ctx<B>) {
    let stats = units_survive_killed_idle_connections(ctx, Duration::from_millis(600));
    // Idle past the validation window: the ping finds them dead.
    assert!(stats.validation_failures >= 1, "{stats:?}");
    assert_eq!(stats.begin_retries, 0, "{stats:?}");
}

/// The server kills the connection of a unit while it runs (a restart, a
/// failover, an operator): the statement fails with a lost connection, the
/// connection is closed, never pooled, and with retry the unit succeeds on a
/// new one, its work applied once.
fn connection_killed_mid_unit_is_retried<B: Killable>(ctx: &Ctx<B>) {
    let factory = ctx.builder().max_size(2).build().expect("factory");
    let options = UnitOptions::new("it::killed_mid_unit").retry(dbscope::RetryPolicy::attempts(3));
    let mut admin = ctx.plain();
    let mut ids = Vec::new();
    factory
        .run(&options, |s| {
            let id = B::connection_id(s);
            s.batch_execute(&ctx.insert_sql(1, 10))?;
            if ids.is_empty() {
                admin
                    .batch_execute(&B::kill_sql(id))
                    .expect("kill the unit's connection");
            }
            ids.push(id);
            s.batch_execute(&ctx.insert_sql(2, 20))?;
            Ok::<_, Error>(())
        })
        .expect("the unit succeeds on a new connection");
    assert_eq!(ids.len(), 2, "one retry: {ids:?}");
    assert_ne!(ids[0], ids[1], "the retry ran on the killed connection");
    assert_eq!(ctx.count(), 2, "the unit's rows are applied once");
    let stats = factory.stats();
    assert_eq!(stats.unit_retries, 1, "{stats:?}");
    assert_eq!(stats.in_use, 0);
    // The dead connection was closed, not pooled: every later unit works
    // without a retry.
    for _ in 0..4 {
        factory
            .run(&UnitOptions::new("it::after"), |s| {
                Ok::<_, Error>(B::connection_id(s))
            })
            .map(|id| assert_ne!(id, ids[0]))
            .expect("later unit");
    }
    assert_eq!(factory.stats().unit_retries, 1);
}

/// Two units lock two rows in opposite order, meeting at a barrier: the server
/// picks one as the deadlock victim; with retry both succeed and each of their
/// updates is applied exactly once.
fn deadlock_victim_is_retried<B: Killable>(ctx: &Ctx<B>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    ctx.plain()
        .batch_execute(&format!(
            "{}; {}",
            ctx.insert_sql(1, 0),
            ctx.insert_sql(2, 0)
        ))
        .unwrap();
    let factory = ctx.builder().max_size(2).build().expect("factory");
    const OPTIONS: UnitOptions =
        UnitOptions::new("it::deadlock").retry(dbscope::RetryPolicy::attempts(5));
    let barrier = Arc::new(Barrier::new(2));
    let attempts = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = [(1, 2), (2, 1)]
        .into_iter()
        .map(|(first_row, second_row)| {
            let (factory, barrier, attempts, table) = (
                factory.clone(),
                Arc::clone(&barrier),
                Arc::clone(&attempts),
                ctx.table.clone(),
            );
            std::thread::spawn(move || {
                let mut first_attempt = true;
                factory.run(&OPTIONS, |s| {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    let update = |id: i64| format!("UPDATE {table} SET v = v + 1 WHERE id = {id}");
                    B::execute(s, &update(first_row))?;
                    if std::mem::take(&mut first_attempt) {
                        barrier.wait();
                    }
                    B::execute(s, &update(second_row))?;
                    Ok::<_, Error>(())
                })
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .expect("worker")
            .expect("unit succeeds after retrying");
    }
    let stats = factory.stats();
    assert!(
        stats.unit_retries >= 1,
        "no deadlock was retried: {stats:?}"
    );
    assert!(attempts.load(Ordering::SeqCst) >= 3);
    assert_eq!(stats.in_use, 0);
    let both = format!("SELECT COUNT(*) AS n FROM {} WHERE v = 2", ctx.table);
    assert_eq!(
        B::scalar(&mut ctx.plain(), &both).unwrap(),
        2,
        "each row updated twice"
    );
}

#[cfg(feature = "postgres")]
mod postgres {
    crate::backend_tests!(
        run_faults,
        crate::support::Postgres,
        [
            killed_idle_connections_are_caught_at_begin,
            killed_idle_connections_are_caught_by_validation,
            connection_killed_mid_unit_is_retried,
            deadlock_victim_is_retried,
        ]
    );
}

#[cfg(feature = "mysql")]
mod mysql {
    crate::backend_tests!(
        run_faults,
        crate::support::Mysql,
        [
            killed_idle_connections_are_caught_at_begin,
            killed_idle_connections_are_caught_by_validation,
            connection_killed_mid_unit_is_retried,
            deadlock_victim_is_retried,
        ]
    );
}

//! Checkout throughput on PostgreSQL: short one-query units of work
//! (`BEGIN; SELECT .. WHERE id = $1; COMMIT`) through dbscope's
//! `SessionFactory` (default validation: ping only connections idle past the
//! window) and, in the same process, through diesel's r2d2 pool (default
//! `test_on_check_out`: a ping on every checkout) doing the same
//! `conn.transaction(|c| ..)`. Same pool size, same threads, warm-up first,
//! alternating rounds, medians.
//!
//! Then the stale-connection scenario: the server terminates every idle
//! connection of this bench, and 200 units run through the factory at once.
//!
//! Prints `FIGURE checkout_vs_r2d2_ping <ours / r2d2>` and
//! `FIGURE checkout_stale_failures <count>`.
//!
//! Run: `PG_DATABASE_URL=postgres://postgres@127.0.0.1:5432/dbscope_test
//! cargo bench --bench checkout --all-features`. `BENCH_UNITS` (units per
//! thread per round, default 1000) and `BENCH_ROUNDS` (default 11) tune it.

mod support;

use std::process::ExitCode;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dbscope::{Error, SessionFactory, UnitOptions};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::sql_types::{Array, BigInt, Integer};

diesel::table! {
    /// The rows the units of work read by primary key.
    dbscope_bench_checkout (id) {
        /// Primary key, 1 to `ROWS`.
        id -> Integer,
        /// `row <id>`.
        label -> Text,
    }
}

use dbscope_bench_checkout::dsl::{dbscope_bench_checkout as rows, label};

/// Tags every connection of this bench, so the stale scenario terminates only
/// the bench's own connections, never those of tests running beside it.
const APPLICATION_NAME: &str = "dbscope_bench_checkout";
const THREADS: usize = 4;
const POOL_SIZE: usize = 4;
const ROWS: i32 = 100;
const STALE_UNITS: usize = 200;
const UNIT: UnitOptions = UnitOptions::new("bench_checkout");

type R2d2Pool = Pool<ConnectionManager<PgConnection>>;

fn main() -> ExitCode {
    let Some(base_url) = support::server_url("PG_DATABASE_URL") else {
        return ExitCode::SUCCESS;
    };
    match run(&base_url) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("checkout bench failed: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(base_url: &str) -> Result<(), String> {
    let units = env_number("BENCH_UNITS", 1000);
    let rounds = env_number("BENCH_ROUNDS", 11).max(1);
    let separator = if base_url.contains('?') { '&' } else { '?' };
    let url = format!("{base_url}{separator}application_name={APPLICATION_NAME}");

    let mut admin = PgConnection::establish(&url).map_err(|e| format!("connect: {e}"))?;
    create_rows(&mut admin)?;

    let factory = SessionFactory::<PgConnection>::builder(&url)
        .max_size(POOL_SIZE)
        .build()
        .map_err(|e| format!("factory: {e}"))?;
    let r2d2 = Pool::builder()
        .max_size(u32::try_from(POOL_SIZE).unwrap_or(u32::MAX))
        .build(ConnectionManager::<PgConnection>::new(&url))
        .map_err(|e| format!("r2d2 pool: {e}"))?;

    println!(
        "checkout bench: PostgreSQL, {THREADS} threads, pool size {POOL_SIZE}, \
         {units} units per thread per round, {rounds} rounds"
    );
    let raw = (0..THREADS)
        .map(|_| PgConnection::establish(&url).map(Mutex::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("connect: {e}"))?;
    // Warm-up: open every connection, prepare the statement, warm caches.
    let warm = units / 4 + 1;
    through_factory(&factory, warm)?;
    through_r2d2(&r2d2, warm)?;
    through_raw(&raw, warm)?;

    let total = (THREADS * units) as f64;
    let (mut ours, mut theirs, mut bare, mut ratios) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        // Rotate the order, so no contender always runs on a server warmed
        // (or tired) by another.
        let mut times = [Duration::ZERO; 3];
        for k in 0..3 {
            let which = (round + k) % 3;
            times[which] = match which {
                0 => through_factory(&factory, units)?,
                1 => through_r2d2(&r2d2, units)?,
                _ => through_raw(&raw, units)?,
            };
        }
        let [a, b, c] = times.map(|t| total / t.as_secs_f64());
        println!(
            "round {}: dbscope {a:.0} units/s, r2d2 (ping) {b:.0} units/s, bare connections {c:.0} units/s, dbscope/r2d2 {:.3}",
            round + 1,
            a / b
        );
        ours.push(a);
        theirs.push(b);
        bare.push(c);
        ratios.push(a / b);
    }
    let ratio = support::median(&mut ratios);
    let (ours, theirs, bare) = (
        support::median(&mut ours),
        support::median(&mut theirs),
        support::median(&mut bare),
    );
    println!("dbscope SessionFactory (validation: idle >= 500 ms): {ours:.0} units/s (median)");
    println!("diesel r2d2 (test_on_check_out: ping every checkout): {theirs:.0} units/s (median)");
    println!("bare connections, one per thread, no pool (ceiling): {bare:.0} units/s (median)");
    let stats = factory.stats();
    println!(
        "factory: {} checkouts, {} validations, {} connections created",
        stats.checkouts, stats.validations, stats.connections_created
    );
    // The median of the per-round ratios: each round's two runs share the
    // machine's load of the moment.
    support::figure("checkout_vs_r2d2_ping", ratio);

    drop(r2d2);
    drop(raw);
    let failures = stale_scenario(&factory, &mut admin)?;
    println!("FIGURE checkout_stale_failures {failures}");
    if failures > 0 {
        return Err(format!(
            "{failures} units of work failed on stale connections"
        ));
    }
    Ok(())
}

/// The table the units read, one primary-key row per id.
fn create_rows(conn: &mut PgConnection) -> Result<(), String> {
    conn.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS dbscope_bench_checkout (id INTEGER PRIMARY KEY, label TEXT NOT NULL);
         INSERT INTO dbscope_bench_checkout (id, label)
           SELECT n, 'row ' || n FROM generate_series(1, {ROWS}) AS n
           ON CONFLICT (id) DO NOTHING;"
    ))
    .map_err(|e| format!("create table: {e}"))
}

/// The id unit `unit` of thread `thread` reads.
fn id_for(thread: usize, unit: usize) -> i32 {
    ((thread * 31 + unit) % ROWS as usize) as i32 + 1
}

/// Runs `per_thread` units on each of `THREADS` threads through `unit`, which
/// gets the thread and unit numbers; returns the wall time from the moment
/// every thread is ready.
fn timed(
    per_thread: usize,
    unit: impl Fn(usize, usize) -> Result<(), String> + Sync,
) -> Result<Duration, String> {
    let ready = Barrier::new(THREADS + 1);
    let (ready, unit) = (&ready, &unit);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    ready.wait();
                    (0..per_thread).try_for_each(|i| unit(t, i))
                })
            })
            .collect();
        ready.wait();
        let started = Instant::now();
        for worker in workers {
            worker
                .join()
                .map_err(|_| "a bench thread panicked".to_string())??;
        }
        Ok(started.elapsed())
    })
}

fn through_factory(
    factory: &SessionFactory<PgConnection>,
    per_thread: usize,
) -> Result<Duration, String> {
    timed(per_thread, |t, i| {
        let id = id_for(t, i);
        let found: String = factory
            .run(&UNIT, |session| {
                rows.find(id)
                    .select(label)
                    .first::<String>(&mut **session)
                    .map_err(Error::from)
            })
            .map_err(|e| format!("dbscope unit: {e}"))?;
        debug_assert!(found.ends_with(&id.to_string()));
        Ok(())
    })
}

fn through_r2d2(pool: &R2d2Pool, per_thread: usize) -> Result<Duration, String> {
    timed(per_thread, |t, i| {
        let id = id_for(t, i);
        let mut conn = pool.get().map_err(|e| format!("r2d2 checkout: {e}"))?;
        let found: String = conn
            .transaction(|c| rows.find(id).select(label).first::<String>(c))
            .map_err(|e| format!("r2d2 unit: {e}"))?;
        debug_assert!(found.ends_with(&id.to_string()));
        Ok(())
    })
}

/// The ceiling: each thread owns one connection, no pool at all.
fn through_raw(conns: &[Mutex<PgConnection>], per_thread: usize) -> Result<Duration, String> {
    timed(per_thread, |t, i| {
        let id = id_for(t, i);
        let mut conn = conns[t].lock().map_err(|_| "poisoned".to_string())?;
        let found: String = conn
            .transaction(|c| rows.find(id).select(label).first::<String>(c))
            .map_err(|e| format!("bare unit: {e}"))?;
        debug_assert!(found.ends_with(&id.to_string()));
        Ok(())
    })
}

#[derive(QueryableByName)]
struct Backend {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Terminates every idle connection of this bench right after the factory
/// used them (so they sit idle for less than the validation window and are
/// handed out without a ping), waits until the server has closed them, then
/// runs `STALE_UNITS` units through the factory on `THREADS` threads and
/// counts the units that failed.
fn stale_scenario(
    factory: &SessionFactory<PgConnection>,
    admin: &mut PgConnection,
) -> Result<usize, String> {
    through_factory(factory, 10)?;
    let before = factory.stats();
    let killed: Vec<Backend> = diesel::sql_query(
        "WITH idle AS MATERIALIZED (
           SELECT pid FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = $1
             AND state = 'idle' AND pid <> pg_backend_pid())
         SELECT pid FROM idle WHERE pg_terminate_backend(pid)",
    )
    .bind::<diesel::sql_types::Text, _>(APPLICATION_NAME)
    .load(admin)
    .map_err(|e| format!("pg_terminate_backend: {e}"))?;
    let pids: Vec<i32> = killed.iter().map(|b| b.pid).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Count =
            diesel::sql_query("SELECT count(*) AS n FROM pg_stat_activity WHERE pid = ANY($1)")
                .bind::<Array<Integer>, _>(&pids)
                .get_result(admin)
                .map_err(|e| format!("pg_stat_activity: {e}"))?;
        if left.n == 0 {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} terminated backends still alive after 5 s",
                left.n
            ));
        }
        thread::sleep(Duration::from_millis(2));
    }
    let idle_for = factory.stats();
    let per_thread = STALE_UNITS / THREADS;
    let failures = std::sync::atomic::AtomicUsize::new(0);
    timed(per_thread, |t, i| {
        let id = id_for(t, i);
        let result = factory.run(&UNIT, |session| {
            rows.find(id)
                .select(label)
                .first::<String>(&mut **session)
                .map_err(Error::from)
        });
        if let Err(error) = result {
            failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            eprintln!("stale scenario: unit failed: {error}");
        }
        Ok(())
    })?;
    let after = factory.stats();
    println!(
        "stale scenario: terminated {} idle backends ({} idle in the factory), ran {} units: \
         {} begin retries, {} validation failures, {} new connections",
        pids.len(),
        idle_for.idle,
        per_thread * THREADS,
        after.begin_retries - before.begin_retries,
        after.validation_failures - before.validation_failures,
        after.connections_created - before.connections_created,
    );
    Ok(failures.into_inner())
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

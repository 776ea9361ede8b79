//! `cargo bench --bench starvation`: the pool-starvation scenario of
//! PROBLEMS.md section 1.
//!
//! A pool of 5 and 100 concurrent requests. Each request reads a row, waits
//! 100 ms on a fake remote call (an LLM, an HTTP API), then writes the row.
//! - *held*: hand-written code that checks a connection out at the start of
//!   the request and keeps it across the remote call.
//! - *units of work*: the same flow as two `#[unit_of_work]` functions around
//!   the call, so no connection is held while it waits.
//!
//! Prints throughput, p50/p99 latency and checkout timeouts for both, then
//! `FIGURE starvation_speedup` (units-of-work throughput over held throughput)
//! and `FIGURE starvation_ideal_fraction` (units-of-work throughput over the
//! ideal, concurrency / call latency). Runs on PostgreSQL when
//! `PG_DATABASE_URL` is set, else on a SQLite file.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dbscope::{unit_of_work, Error, SessionFactory, SessionSource};
use diesel::prelude::*;

mod schema {
    diesel::table! {
        starvation_rows (id) {
            id -> Integer,
            hits -> BigInt,
        }
    }
}
use schema::starvation_rows;

const POOL_SIZE: usize = 5;
const CONCURRENCY: usize = 100;
const CALL_LATENCY: Duration = Duration::from_millis(100);
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// The slow non-database work: a model or HTTP call.
async fn fake_remote_call(hits: i64) -> i64 {
    tokio::time::sleep(CALL_LATENCY).await;
    hits + 1
}

/// Reads and writes through whichever connection type the factory has.
macro_rules! flows {
    ($conn:ty, $read:ident, $write:ident, $held:ident, $handle:ident) => {
        #[unit_of_work(factory = db)]
        async fn $read(
            db: &SessionFactory<$conn>,
            conn: &mut $conn,
            id: i32,
        ) -> Result<i64, Error> {
            Ok(starvation_rows::table
                .find(id)
                .select(starvation_rows::hits)
                .first(conn)?)
        }

        #[unit_of_work(factory = db)]
        async fn $write(
            db: &SessionFactory<$conn>,
            conn: &mut $conn,
            id: i32,
            hits: i64,
        ) -> Result<(), Error> {
            diesel::update(starvation_rows::table.find(id))
                .set(starvation_rows::hits.eq(hits))
                .execute(conn)?;
            Ok(())
        }

        /// The flow as two units of work around the remote call.
        async fn $handle(db: Arc<SessionFactory<$conn>>, id: i32) -> Result<(), Error> {
            let hits = $read(&db, id).await?;
            let hits = fake_remote_call(hits).await;
            $write(&db, id, hits).await
        }

        /// The flow with one connection held from start to end, as a request-
        /// scoped session does. The remote call is a blocking wait here: the
        /// connection is checked out for its whole length either way.
        async fn $held(db: Arc<SessionFactory<$conn>>, id: i32) -> Result<(), Error> {
            tokio::task::spawn_blocking(move || {
                let mut conn = db.checkout()?;
                let hits: i64 = starvation_rows::table
                    .find(id)
                    .select(starvation_rows::hits)
                    .first(&mut *conn)?;
                std::thread::sleep(CALL_LATENCY);
                diesel::update(starvation_rows::table.find(id))
                    .set(starvation_rows::hits.eq(hits + 1))
                    .execute(&mut *conn)?;
                Ok(())
            })
            .await
            .expect("the held-connection request panicked")
        }
    };
}

flows!(PgConnection, pg_read, pg_write, pg_held, pg_units);
flows!(
    SqliteConnection,
    sqlite_read,
    sqlite_write,
    sqlite_held,
    sqlite_units
);

/// What one scenario measured.
struct Outcome {
    throughput: f64,
    p50: Duration,
    p99: Duration,
    timeouts: usize,
    failures: usize,
}

/// Fires `CONCURRENCY` requests at once and measures them.
async fn fire<F, Fut>(request: F) -> Outcome
where
    F: Fn(i32) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY as i32)
        .map(|id| {
            let future = request(id + 1);
            tokio::spawn(async move {
                let begun = Instant::now();
                let result = future.await;
                (begun.elapsed(), result)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(CONCURRENCY);
    let (mut timeouts, mut failures) = (0, 0);
    for task in tasks {
        let (latency, result) = task.await.expect("a request task panicked");
        match result {
            Ok(()) => latencies.push(latency),
            Err(error) if error.is_checkout_timeout() => timeouts += 1,
            Err(error) => {
                eprintln!("request failed: {error}");
                failures += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    Outcome {
        throughput: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: support::percentile(&mut latencies, 50.0),
        p99: support::percentile(&mut latencies, 99.0),
        timeouts,
        failures,
    }
}

fn report(label: &str, outcome: &Outcome) {
    println!(
        "{label:>14}: {:7.1} req/s, p50 {:7.1} ms, p99 {:7.1} ms, checkout timeouts {}, other failures {}",
        outcome.throughput,
        outcome.p50.as_secs_f64() * 1e3,
        outcome.p99.as_secs_f64() * 1e3,
        outcome.timeouts,
        outcome.failures
    );
}

/// Creates the table with one row per request, on a connection of `factory`.
fn seed<S: SessionSource>(factory: &S) {
    use diesel::connection::SimpleConnection;
    let rows: Vec<String> = (1..=CONCURRENCY).map(|id| format!("({id}, 0)")).collect();
    let mut conn = factory.session_factory().checkout().expect("checkout");
    conn.batch_execute(&format!(
        "DROP TABLE IF EXISTS starvation_rows; \
         CREATE TABLE starvation_rows (id INTEGER PRIMARY KEY, hits BIGINT NOT NULL); \
         INSERT INTO starvation_rows (id, hits) VALUES {}",
        rows.join(", ")
    ))
    .expect("seed the table");
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (held, units) = runtime.block_on(async {
        match support::server_url("PG_DATABASE_URL") {
            Some(url) => {
                let factory = Arc::new(
                    SessionFactory::<PgConnection>::builder(&url)
                        .max_size(POOL_SIZE)
                        .min_idle(POOL_SIZE)
                        .checkout_timeout(CHECKOUT_TIMEOUT)
                        .build()
                        .expect("PostgreSQL factory"),
                );
                seed(&factory);
                println!("PostgreSQL, pool of {POOL_SIZE}, {CONCURRENCY} concurrent requests, {CALL_LATENCY:?} remote call");
                let held = fire(|id| pg_held(Arc::clone(&factory), id)).await;
                let units = fire(|id| pg_units(Arc::clone(&factory), id)).await;
                (held, units)
            }
            None => {
                let dir = std::env::temp_dir().join(format!("dbscope-starvation-{}", std::process::id()));
                std::fs::create_dir_all(&dir).expect("temp dir");
                let path = dir.join("starvation.db");
                let factory = Arc::new(
                    SessionFactory::<SqliteConnection>::builder(&path.to_string_lossy())
                        .max_size(POOL_SIZE)
                        .min_idle(POOL_SIZE)
                        .checkout_timeout(CHECKOUT_TIMEOUT)
                        .build()
                        .expect("SQLite factory"),
                );
                seed(&factory);
                println!("SQLite file, pool of {POOL_SIZE}, {CONCURRENCY} concurrent requests, {CALL_LATENCY:?} remote call");
                let held = fire(|id| sqlite_held(Arc::clone(&factory), id)).await;
                let units = fire(|id| sqlite_units(Arc::clone(&factory), id)).await;
                (held, units)
            }
        }
    });
    report("held", &held);
    report("units of work", &units);
    let ideal = CONCURRENCY as f64 / CALL_LATENCY.as_secs_f64();
    support::figure("starvation_speedup", units.throughput / held.throughput);
    support::figure("starvation_ideal_fraction", units.throughput / ideal);
}

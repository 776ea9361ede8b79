//! `cargo bench --bench starvation`: the pool-starvation scenario of
//! PROBLEMS.md section 1. With the `async` feature on PostgreSQL, a third
//! line: the same flow as two native async units of work (diesel-async
//! sessions), `FIGURE starvation_native_async_speedup`.
//!
//! A pool of 5 and 100 concurrent clients, each sending 10 requests back to
//! back. Each request reads a row, waits 100 ms on a fake remote call (an LLM,
//! an HTTP API), then writes the row. Throughput is completed requests over
//! the elapsed time: the steady rate at that concurrency, whose ideal is
//! concurrency / call latency (a single burst of 100 also pays for the pool
//! draining 200 units at once; the sweep below measures bursts and the bench
//! prints that fraction too, as a plain line).
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
//!
//! Then a sweep over concurrency (one burst of 10 to 200 requests at once, same pool of 5)
//! for both forms, drawn as an SVG (throughput and p99 latency against
//! concurrency) into `target/starvation.svg`, or the path in `STARVATION_SVG`.
//! A run never touches the source tree unless asked: regenerate the committed
//! picture with
//! `STARVATION_SVG=docs/starvation.svg PG_DATABASE_URL=postgres://postgres@127.0.0.1:5432/dbscope_test cargo bench --bench starvation --all-features`.

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
/// Requests each client sends back to back in the headline run: the clients
/// spread out after the first round, and the first round's burst (which
/// still counts) weighs a tenth of the run.
const REQUESTS_PER_CLIENT: usize = 10;
/// Long enough for every held-connection request to get a connection: the
/// pool serves waiters in the order they came, so a request waits about
/// (clients ahead of it / 5) x 100 ms, at most 4 s in the sweep's burst of 200.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);
/// The concurrency levels of the sweep drawn in docs/starvation.svg.
const SWEEP: [usize; 6] = [10, 25, 50, 100, 150, 200];
/// Rows seeded: one per request of the largest run.
const ROWS: usize = 200;

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

/// The flow as two units of work over diesel-async connections (feature
/// `async`), awaiting their queries, around the same remote call.
#[cfg(feature = "async")]
mod native {
    use std::sync::Arc;

    use dbscope::{unit_of_work, AsyncSessionFactory, Error};
    use diesel::prelude::*;
    use diesel_async::{AsyncPgConnection, RunQueryDsl};

    use super::{fake_remote_call, starvation_rows};

    #[unit_of_work(factory = db)]
    async fn read(
        db: &AsyncSessionFactory<AsyncPgConnection>,
        conn: &mut AsyncPgConnection,
        id: i32,
    ) -> Result<i64, Error> {
        Ok(starvation_rows::table
            .find(id)
            .select(starvation_rows::hits)
            .first(conn)
            .await?)
    }

    #[unit_of_work(factory = db)]
    async fn write(
        db: &AsyncSessionFactory<AsyncPgConnection>,
        conn: &mut AsyncPgConnection,
        id: i32,
        hits: i64,
    ) -> Result<(), Error> {
        diesel::update(starvation_rows::table.find(id))
            .set(starvation_rows::hits.eq(hits))
            .execute(conn)
            .await?;
        Ok(())
    }

    pub(crate) async fn units(
        db: Arc<AsyncSessionFactory<AsyncPgConnection>>,
        id: i32,
    ) -> Result<(), Error> {
        let hits = read(&db, id).await?;
        let hits = fake_remote_call(hits).await;
        write(&db, id, hits).await
    }
}

/// What one scenario measured.
struct Outcome {
    throughput: f64,
    p50: Duration,
    p99: Duration,
    timeouts: usize,
    failures: usize,
}

/// Starts `concurrency` clients at once, each sending `requests_per_client`
/// requests back to back (a closed loop), and measures every request.
///
/// With one request per client this is a single burst: its throughput is how
/// fast the pool drains it. With several, the clients spread out after the
/// first round and the throughput approaches the steady rate at that
/// concurrency, the quantity whose ideal is concurrency / call latency.
async fn fire<F, Fut>(concurrency: usize, requests_per_client: usize, request: F) -> Outcome
where
    F: Fn(i32) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), Error>> + Send + 'static,
{
    let request = Arc::new(request);
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency as i32)
        .map(|client| {
            let request = Arc::clone(&request);
            tokio::spawn(async move {
                let mut results = Vec::with_capacity(requests_per_client);
                for _ in 0..requests_per_client {
                    let begun = Instant::now();
                    let result = request(client + 1).await;
                    results.push((begun.elapsed(), result));
                }
                results
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(concurrency * requests_per_client);
    let (mut timeouts, mut failures) = (0, 0);
    for client in clients {
        for (latency, result) in client.await.expect("a client task panicked") {
            match result {
                Ok(()) => latencies.push(latency),
                Err(error) if error.is_checkout_timeout() => timeouts += 1,
                Err(error) => {
                    eprintln!("request failed: {error}");
                    failures += 1;
                }
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
    let rows: Vec<String> = (1..=ROWS).map(|id| format!("({id}, 0)")).collect();
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
    let (held, units, sweep, backend, native) = runtime.block_on(async {
        match support::server_url("PG_DATABASE_URL") {
            Some(url) => {
                let factory = Arc::new(
                    SessionFactory::<PgConnection>::builder(&url)
                        .max_size(POOL_SIZE)
                        .min_idle(POOL_SIZE)
                        .checkout_timeout(CHECKOUT_TIMEOUT)
                        // The figure is about the pool, not this disk's fsync
                        // latency (which varies from run to run on a shared
                        // VM): commits of both variants skip the WAL flush wait.
                        .setup_sql("SET synchronous_commit = off")
                        .build()
                        .expect("PostgreSQL factory"),
                );
                seed(&factory);
                println!("PostgreSQL, pool of {POOL_SIZE}, {CONCURRENCY} concurrent clients x {REQUESTS_PER_CLIENT} requests, {CALL_LATENCY:?} remote call");
                let held_flow = || {
                    let factory = Arc::clone(&factory);
                    move |id| pg_held(Arc::clone(&factory), id)
                };
                let units_flow = || {
                    let factory = Arc::clone(&factory);
                    move |id| pg_units(Arc::clone(&factory), id)
                };
                let held = fire(CONCURRENCY, REQUESTS_PER_CLIENT, held_flow()).await;
                let units = fire(CONCURRENCY, REQUESTS_PER_CLIENT, units_flow()).await;
                #[cfg(feature = "async")]
                let native = {
                    let factory = Arc::new(
                        dbscope::AsyncSessionFactory::<diesel_async::AsyncPgConnection>::builder(&url)
                            .max_size(POOL_SIZE)
                            .checkout_timeout(CHECKOUT_TIMEOUT)
                            .setup_sql("SET synchronous_commit = off")
                            .build()
                            .expect("PostgreSQL async factory"),
                    );
                    let flow = move |id| native::units(Arc::clone(&factory), id);
                    Some(fire(CONCURRENCY, REQUESTS_PER_CLIENT, flow).await)
                };
                #[cfg(not(feature = "async"))]
                let native: Option<Outcome> = None;
                let mut sweep = Vec::new();
                for concurrency in SWEEP {
                    let held = fire(concurrency, 1, held_flow()).await;
                    let units = fire(concurrency, 1, units_flow()).await;
                    sweep.push(Point { concurrency, held, units });
                }
                (held, units, sweep, "PostgreSQL", native)
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
                println!("SQLite file, pool of {POOL_SIZE}, {CONCURRENCY} concurrent clients x {REQUESTS_PER_CLIENT} requests, {CALL_LATENCY:?} remote call");
                let held_flow = || {
                    let factory = Arc::clone(&factory);
                    move |id| sqlite_held(Arc::clone(&factory), id)
                };
                let units_flow = || {
                    let factory = Arc::clone(&factory);
                    move |id| sqlite_units(Arc::clone(&factory), id)
                };
                let held = fire(CONCURRENCY, REQUESTS_PER_CLIENT, held_flow()).await;
                let units = fire(CONCURRENCY, REQUESTS_PER_CLIENT, units_flow()).await;
                let mut sweep = Vec::new();
                for concurrency in SWEEP {
                    let held = fire(concurrency, 1, held_flow()).await;
                    let units = fire(concurrency, 1, units_flow()).await;
                    sweep.push(Point { concurrency, held, units });
                }
                (held, units, sweep, "SQLite file", None)
            }
        }
    });
    report("held", &held);
    report("units of work", &units);
    if let Some(native) = &native {
        report("native async", native);
    }
    let ideal = CONCURRENCY as f64 / CALL_LATENCY.as_secs_f64();
    support::figure("starvation_speedup", units.throughput / held.throughput);
    support::figure("starvation_ideal_fraction", units.throughput / ideal);
    if let Some(native) = &native {
        support::figure(
            "starvation_native_async_speedup",
            native.throughput / held.throughput,
        );
    }

    println!("sweep: pool of {POOL_SIZE}, {CALL_LATENCY:?} remote call, one burst of N requests at once per level");
    for point in &sweep {
        report(&format!("{:>3} held", point.concurrency), &point.held);
        report(&format!("{:>3} units", point.concurrency), &point.units);
    }
    if let Some(burst) = sweep.iter().find(|point| point.concurrency == CONCURRENCY) {
        // Not a headline: how fast the pool drains one burst, which on a small
        // machine is bounded by the database's own time for 200 units.
        println!(
            "one burst of {CONCURRENCY}: units of work at {:.3} of the ideal, {:.1}x held",
            burst.units.throughput / ideal,
            burst.units.throughput / burst.held.throughput
        );
    }
    let path = svg_path();
    match draw(&path, backend, &sweep) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(error) => {
            eprintln!("could not draw {}: {error}", path.display());
            std::process::exit(1);
        }
    }
}

/// Both forms measured at one concurrency level.
struct Point {
    concurrency: usize,
    held: Outcome,
    units: Outcome,
}

/// Draws the sweep: throughput (left) and p99 latency (right) against
/// concurrency, held connections against units of work.
fn draw(
    path: &std::path::Path,
    backend: &str,
    sweep: &[Point],
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    const HELD: RGBColor = RGBColor(0xc0, 0x39, 0x2b);
    const UNITS: RGBColor = RGBColor(0x1f, 0x6f, 0xb4);
    const IDEAL: RGBColor = RGBColor(0x99, 0x99, 0x99);
    let max_c = SWEEP[SWEEP.len() - 1] as f64 * 1.05;
    let ideal = |c: f64| c / CALL_LATENCY.as_secs_f64();
    let timeouts: usize = sweep
        .iter()
        .map(|p| p.held.timeouts + p.units.timeouts)
        .sum();

    let root = SVGBackend::new(path, (960, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "Pool of {POOL_SIZE}, each request: read, {} ms remote call, write ({backend}; checkout timeouts: {timeouts})",
        CALL_LATENCY.as_millis()
    );
    let root = root.titled(&title, ("sans-serif", 17))?;
    let (left, right) = root.split_horizontally(480);

    let series = |f: fn(&Outcome) -> f64, held: bool| -> Vec<(f64, f64)> {
        sweep
            .iter()
            .map(|p| {
                (
                    p.concurrency as f64,
                    f(if held { &p.held } else { &p.units }),
                )
            })
            .collect()
    };
    let throughput = |o: &Outcome| o.throughput;
    let p99 = |o: &Outcome| o.p99.as_secs_f64() * 1e3;

    let top = ideal(max_c) * 1.05;
    let mut chart = ChartBuilder::on(&left)
        .caption(
            "throughput (requests/s, higher is better)",
            ("sans-serif", 15),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..max_c, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("concurrent requests")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, 0.0), (max_c, ideal(max_c))],
            IDEAL.stroke_width(1),
        ))?
        .label("ideal: concurrency / call latency")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], IDEAL.stroke_width(1)));
    for (held, color, label) in [
        (false, UNITS, "units of work"),
        (true, HELD, "connection held"),
    ] {
        let points = series(throughput, held);
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()?;

    let top = sweep
        .iter()
        .map(|p| p99(&p.held).max(p99(&p.units)))
        .fold(0.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&right)
        .caption("p99 latency (ms, lower is better)", ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..max_c, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("concurrent requests")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (held, color, label) in [
        (true, HELD, "connection held"),
        (false, UNITS, "units of work"),
    ] {
        let points = series(p99, held);
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Where the sweep is drawn: `STARVATION_SVG` (relative to the package root),
/// else `starvation.svg` in cargo's target directory, so a bench run leaves
/// the checkout as it was.
fn svg_path() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("STARVATION_SVG") {
        Some(path) => root.join(path),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), std::path::PathBuf::from)
            .join("starvation.svg"),
    }
}

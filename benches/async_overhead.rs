//! `cargo bench --bench async_overhead`: what `#[unit_of_work]` on a
//! diesel-async session costs over the same hand-written diesel-async code
//! (checkout + `conn.transaction(async |c| ..)`) through the same pool, on
//! PostgreSQL (`PG_DATABASE_URL`).
//!
//! Rounds alternate between the two forms so drift hits both alike; the
//! figure is the median over rounds of (time per annotated unit) / (time per
//! hand-written unit). Target: at most 1.03.

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use dbscope::{unit_of_work, AsyncSessionFactory, Error};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

mod schema {
    diesel::table! {
        async_overhead_items (id) {
            id -> Integer,
            name -> Text,
        }
    }
}
use schema::async_overhead_items as items;

#[unit_of_work(factory = db)]
async fn annotated(
    db: &AsyncSessionFactory<AsyncPgConnection>,
    conn: &mut AsyncPgConnection,
    id: i32,
) -> Result<String, Error> {
    Ok(items::table
        .find(id)
        .select(items::name)
        .first(conn)
        .await?)
}

async fn handwritten(
    db: &AsyncSessionFactory<AsyncPgConnection>,
    id: i32,
) -> Result<String, Error> {
    let mut conn = db.checkout().await?;
    Ok(conn
        .transaction(async |conn| {
            items::table
                .find(id)
                .select(items::name)
                .first::<String>(conn)
                .await
        })
        .await?)
}

async fn run_units<F, Fut>(units: usize, f: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<String, Error>>,
{
    let started = Instant::now();
    for _ in 0..units {
        black_box(f().await.expect("a benchmark unit failed"));
    }
    started.elapsed()
}

fn main() {
    let Some(url) = support::server_url("PG_DATABASE_URL") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let pg = AsyncSessionFactory::<AsyncPgConnection>::builder(&url)
            .max_size(2)
            .build()
            .expect("PostgreSQL factory");
        {
            use diesel_async::SimpleAsyncConnection;
            let mut conn = pg.checkout().await.expect("checkout");
            conn.batch_execute(
                "DROP TABLE IF EXISTS async_overhead_items; \
                 CREATE TABLE async_overhead_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL); \
                 INSERT INTO async_overhead_items VALUES (1, 'one')",
            )
            .await
            .expect("create table");
        }
        let (rounds, units) = (21, 1_500);
        // Warm-up: statement caches, pool, CPU caches.
        run_units(units, || annotated(&pg, 1)).await;
        run_units(units, || handwritten(&pg, 1)).await;
        let mut ratios = Vec::with_capacity(rounds);
        let (mut total_a, mut total_h) = (0.0, 0.0);
        for round in 0..rounds {
            let (a, h) = if round % 2 == 0 {
                let a = run_units(units, || annotated(&pg, 1)).await;
                (a, run_units(units, || handwritten(&pg, 1)).await)
            } else {
                let h = run_units(units, || handwritten(&pg, 1)).await;
                (run_units(units, || annotated(&pg, 1)).await, h)
            };
            total_a += a.as_secs_f64();
            total_h += h.as_secs_f64();
            ratios.push(a.as_secs_f64() / h.as_secs_f64());
        }
        let per_unit = |total: f64| total / (rounds * units) as f64 * 1e6;
        println!(
            "postgresql (diesel-async): annotated {:.2} µs/unit, hand-written {:.2} µs/unit ({rounds} rounds x {units} units)",
            per_unit(total_a),
            per_unit(total_h)
        );
        support::figure("uow_vs_handwritten_async_pg", support::median(&mut ratios));
    });
}

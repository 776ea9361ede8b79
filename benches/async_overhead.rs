//! `cargo bench --bench async_overhead`: what `#[unit_of_work]` on a
//! diesel-async session costs over the same hand-written diesel-async code
//! (checkout + `conn.transaction(async |c| ..)`) through the same pool, on
//! PostgreSQL (`PG_DATABASE_URL`).
//!
//! Units run in small groups that alternate between the two forms (ABBA), so
//! drift hits both alike and a server stall hits a few groups, not a whole
//! round; the figure is the median time per annotated unit over the median
//! time per hand-written unit. Target: at most 1.03.

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
        let (groups, group) = (6_000, 5);
        // Warm-up: statement caches, pool, CPU caches.
        run_units(group * 100, || annotated(&pg, 1)).await;
        run_units(group * 100, || handwritten(&pg, 1)).await;
        let (mut a, mut h) = (Vec::with_capacity(groups), Vec::with_capacity(groups));
        for index in 0..groups {
            if support::a_first(index) {
                a.push(run_units(group, || annotated(&pg, 1)).await.as_secs_f64());
                h.push(run_units(group, || handwritten(&pg, 1)).await.as_secs_f64());
            } else {
                h.push(run_units(group, || handwritten(&pg, 1)).await.as_secs_f64());
                a.push(run_units(group, || annotated(&pg, 1)).await.as_secs_f64());
            }
        }
        let a = support::median_us_per_unit(&mut a, group);
        let h = support::median_us_per_unit(&mut h, group);
        println!(
            "postgresql (diesel-async): annotated {a:.2} µs/unit, hand-written {h:.2} µs/unit (medians of {groups} groups of {group} units each way)"
        );
        support::figure("uow_vs_handwritten_async_pg", a / h);
    });
}

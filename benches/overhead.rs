//! `cargo bench --bench overhead`: what `#[unit_of_work]` costs over the same
//! hand-written diesel code (checkout + `conn.transaction`) through the same
//! pool, on SQLite in-memory and on PostgreSQL (`PG_DATABASE_URL`).
//!
//! Rounds alternate between the two forms so drift hits both alike; the
//! figure is the median over rounds of (time per annotated unit) / (time per
//! hand-written unit). Target: at most 1.03.

mod support;

use std::hint::black_box;

use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::prelude::*;

mod schema {
    diesel::table! {
        overhead_items (id) {
            id -> Integer,
            name -> Text,
        }
    }
}
use schema::overhead_items;

/// The same one-query unit, annotated and by hand, for one connection type.
macro_rules! one_query_units {
    ($conn:ty, $annotated:ident, $handwritten:ident) => {
        #[unit_of_work(factory = db)]
        fn $annotated(
            db: &SessionFactory<$conn>,
            conn: &mut $conn,
            id: i32,
        ) -> Result<String, Error> {
            Ok(overhead_items::table
                .find(id)
                .select(overhead_items::name)
                .first(conn)?)
        }

        fn $handwritten(db: &SessionFactory<$conn>, id: i32) -> Result<String, Error> {
            let mut conn = db.checkout()?;
            Ok(conn.transaction(|conn| {
                overhead_items::table
                    .find(id)
                    .select(overhead_items::name)
                    .first(conn)
            })?)
        }
    };
}

one_query_units!(SqliteConnection, annotated_sqlite, handwritten_sqlite);
one_query_units!(PgConnection, annotated_pg, handwritten_pg);

/// Median over `rounds` of annotated/hand-written time for `units` units each.
fn compare(
    label: &str,
    rounds: usize,
    units: usize,
    annotated: impl Fn() -> Result<String, Error>,
    handwritten: impl Fn() -> Result<String, Error>,
) -> f64 {
    let run = |f: &dyn Fn() -> Result<String, Error>| {
        support::time(|| {
            for _ in 0..units {
                black_box(f().expect("a benchmark unit failed"));
            }
        })
    };
    // Warm-up: statement caches, pool, CPU caches.
    run(&annotated);
    run(&handwritten);
    let mut ratios = Vec::with_capacity(rounds);
    let (mut total_a, mut total_h) = (0.0, 0.0);
    for round in 0..rounds {
        let (a, h) = if round % 2 == 0 {
            let a = run(&annotated);
            (a, run(&handwritten))
        } else {
            let h = run(&handwritten);
            (run(&annotated), h)
        };
        total_a += a.as_secs_f64();
        total_h += h.as_secs_f64();
        ratios.push(a.as_secs_f64() / h.as_secs_f64());
    }
    let per_unit = |total: f64| total / (rounds * units) as f64 * 1e6;
    println!(
        "{label}: annotated {:.2} µs/unit, hand-written {:.2} µs/unit ({rounds} rounds x {units} units)",
        per_unit(total_a),
        per_unit(total_h)
    );
    support::median(&mut ratios)
}

fn main() {
    let sqlite = SessionFactory::<SqliteConnection>::new(":memory:").expect("SQLite in-memory");
    {
        let mut conn = sqlite.checkout().expect("checkout");
        diesel::sql_query(
            "CREATE TABLE overhead_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        )
        .execute(&mut *conn)
        .expect("create table");
        diesel::sql_query("INSERT INTO overhead_items VALUES (1, 'one')")
            .execute(&mut *conn)
            .expect("insert");
    }
    let ratio = compare(
        "sqlite in-memory",
        21,
        20_000,
        || annotated_sqlite(&sqlite, 1),
        || handwritten_sqlite(&sqlite, 1),
    );
    support::figure("uow_vs_handwritten_sqlite", ratio);

    if let Some(url) = support::server_url("PG_DATABASE_URL") {
        let pg = SessionFactory::<PgConnection>::builder(&url)
            .max_size(2)
            .build()
            .expect("PostgreSQL factory");
        {
            let mut conn = pg.checkout().expect("checkout");
            diesel::sql_query("DROP TABLE IF EXISTS overhead_items")
                .execute(&mut *conn)
                .expect("drop");
            diesel::sql_query(
                "CREATE TABLE overhead_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
            )
            .execute(&mut *conn)
            .expect("create table");
            diesel::sql_query("INSERT INTO overhead_items VALUES (1, 'one')")
                .execute(&mut *conn)
                .expect("insert");
        }
        let ratio = compare(
            "postgresql",
            21,
            1_500,
            || annotated_pg(&pg, 1),
            || handwritten_pg(&pg, 1),
        );
        support::figure("uow_vs_handwritten_pg", ratio);
    }
}

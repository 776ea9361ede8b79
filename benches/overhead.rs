//! `cargo bench --bench overhead`: what `#[unit_of_work]` costs over the same
//! hand-written diesel code (checkout + `conn.transaction`) through the same
//! pool, on SQLite in-memory and on PostgreSQL (`PG_DATABASE_URL`).
//!
//! Units run in small groups that alternate between the two forms, so drift
//! hits both alike; the figure is the median time per annotated unit over the
//! median time per hand-written unit. Target: at most 1.03.

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

/// Runs `units` units each way in small groups, alternating the two forms
/// group by group (ABBA, so neither always runs first), and returns the
/// median time per annotated unit over the median time per hand-written unit.
///
/// Short groups put both forms under the same machine and server state; the
/// medians ignore the stalls (a WAL flush, a scheduler hiccup) that hit a few
/// groups of either form and would dominate a total. A group is long enough
/// (`group` units) that reading the clock is noise next to it.
fn compare(
    label: &str,
    units: usize,
    group: usize,
    annotated: impl Fn() -> Result<String, Error>,
    handwritten: impl Fn() -> Result<String, Error>,
) -> f64 {
    let run_group = |f: &dyn Fn() -> Result<String, Error>| {
        support::time(|| {
            for _ in 0..group {
                black_box(f().expect("a benchmark unit failed"));
            }
        })
        .as_secs_f64()
    };
    // Warm-up: statement caches, pool, CPU caches.
    for _ in 0..(units / group / 10).max(1) {
        run_group(&annotated);
        run_group(&handwritten);
    }
    let groups = (units / group).max(2);
    let (mut a, mut h) = (Vec::with_capacity(groups), Vec::with_capacity(groups));
    for index in 0..groups {
        if support::a_first(index) {
            a.push(run_group(&annotated));
            h.push(run_group(&handwritten));
        } else {
            h.push(run_group(&handwritten));
            a.push(run_group(&annotated));
        }
    }
    let a = support::median_us_per_unit(&mut a, group);
    let h = support::median_us_per_unit(&mut h, group);
    println!(
        "{label}: annotated {a:.2} µs/unit, hand-written {h:.2} µs/unit (medians of {groups} groups of {group} units each way)"
    );
    a / h
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
        400_000,
        100,
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
            30_000,
            5,
            || annotated_pg(&pg, 1),
            || handwritten_pg(&pg, 1),
        );
        support::figure("uow_vs_handwritten_pg", ratio);
    }
}

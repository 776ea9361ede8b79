//! `cargo bench --bench callgrind`: the client-side instructions of a
//! one-query unit of work through `#[unit_of_work]` (factory, pool, session)
//! over the same query in `conn.transaction` on a bare `PgConnection` (no
//! pool), counted by valgrind's callgrind on PostgreSQL without TLS
//! (`sslmode=disable`, so libpq's TLS does not hide the client's own work).
//! Target: at most 1.05.
//!
//! The bench runs itself under callgrind four times: each form with `N` and
//! with `2N` units after the same setup and warm-up. The difference of the two
//! totals is the cost of `N` units alone (connecting, building the factory,
//! warming statement caches cancel out), so no start/stop instrumentation is
//! needed in the measured code.

mod support;

use std::hint::black_box;
use std::process::Command;

use dbscope::{unit_of_work, Error, SessionFactory};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

mod schema {
    diesel::table! {
        callgrind_items (id) {
            id -> Integer,
            name -> Text,
        }
    }
}
use schema::callgrind_items;

/// Units in the shorter of the two runs of each form.
const UNITS: u64 = 2_000;
/// Units run before counting starts to matter (caches, statement cache).
const WARM_UP: u64 = 200;
/// Set in the child processes: `<form> <units>`.
const CHILD: &str = "DBSCOPE_CALLGRIND_CHILD";

#[unit_of_work(factory = db)]
fn annotated(
    db: &SessionFactory<PgConnection>,
    conn: &mut PgConnection,
    id: i32,
) -> Result<String, Error> {
    Ok(callgrind_items::table
        .find(id)
        .select(callgrind_items::name)
        .first(conn)?)
}

fn bare(conn: &mut PgConnection, id: i32) -> QueryResult<String> {
    conn.transaction(|conn| {
        callgrind_items::table
            .find(id)
            .select(callgrind_items::name)
            .first(conn)
    })
}

/// `url` with TLS off.
fn without_tls(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=disable")
}

/// In a child under callgrind: set up, warm up, run `units` units of `form`.
fn child(url: &str, form: &str, units: u64) {
    match form {
        "annotated" => {
            let factory = SessionFactory::<PgConnection>::builder(url)
                .max_size(1)
                .build()
                .expect("factory");
            for _ in 0..WARM_UP + units {
                black_box(annotated(&factory, 1).expect("unit"));
            }
        }
        "bare" => {
            let mut conn = PgConnection::establish(url).expect("connect");
            for _ in 0..WARM_UP + units {
                black_box(bare(&mut conn, 1).expect("unit"));
            }
        }
        other => panic!("unknown form {other}"),
    }
}

/// Instructions callgrind counted for `units` units of `form`.
fn count(form: &str, units: u64) -> u64 {
    let exe = std::env::current_exe().expect("bench executable");
    let out = std::env::temp_dir().join(format!(
        "dbscope-callgrind-{}-{form}-{units}.out",
        std::process::id()
    ));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&exe)
        .env(CHILD, format!("{form} {units}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run valgrind (apt-get install valgrind)");
    assert!(
        status.success(),
        "callgrind run of {form} x{units} failed: {status}"
    );
    let text = std::fs::read_to_string(&out).expect("callgrind output");
    let _ = std::fs::remove_file(&out);
    text.lines()
        .find_map(|line| {
            line.strip_prefix("summary:")
                .or_else(|| line.strip_prefix("totals:"))
        })
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .expect("callgrind total instructions")
}

/// Instructions per unit of `form`: the difference between `2N` and `N` units.
fn per_unit(form: &str) -> f64 {
    let short = count(form, UNITS);
    let long = count(form, 2 * UNITS);
    (long.saturating_sub(short)) as f64 / UNITS as f64
}

fn main() {
    let Some(url) = support::server_url("PG_DATABASE_URL") else {
        return;
    };
    let url = without_tls(&url);
    if let Ok(spec) = std::env::var(CHILD) {
        let (form, units) = spec.split_once(' ').expect("form and units");
        child(&url, form, units.parse().expect("units"));
        return;
    }
    let mut conn = PgConnection::establish(&url).expect("connect");
    conn.batch_execute(
        "DROP TABLE IF EXISTS callgrind_items; \
         CREATE TABLE callgrind_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL); \
         INSERT INTO callgrind_items VALUES (1, 'one')",
    )
    .expect("bench table");
    let annotated = per_unit("annotated");
    let bare = per_unit("bare");
    println!(
        "PostgreSQL, sslmode=disable, callgrind: #[unit_of_work] {annotated:.0} instructions/unit, \
         bare PgConnection + conn.transaction {bare:.0} instructions/unit ({UNITS} units, difference of {UNITS} and {} unit runs)",
        2 * UNITS
    );
    support::figure("uow_instructions_vs_bare_pg", annotated / bare);
}

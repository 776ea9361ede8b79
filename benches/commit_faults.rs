//! Units of work whose `COMMIT` reply is lost, and the truth about them.
//!
//! Through the loopback fault proxy (`tests/integration/fault_proxy.rs`),
//! each unit inserts one row into a table without a key, and the proxy drops
//! the server's reply to that unit's first `COMMIT` and cuts the connection:
//! the server has committed, the client never hears it. Per backend
//! (PostgreSQL, MariaDB), flavour (blocking, native async) and retry policy
//! (none, 3 attempts), `BENCH_UNITS` units (default 100) run one after the
//! other. Afterwards the rows are counted on the server and set against what
//! each unit reported (`tests/integration/commit_outcomes.rs`):
//! - `FIGURE commit_unknown_duplicates <n>`: rows beyond the first for a unit
//!   (a unit applied twice because it was retried after its COMMIT);
//! - `FIGURE commit_misreported <n>`: units whose report contradicts the rows
//!   (`Ok` without exactly one row; "rolled back" or a plain error with the
//!   row committed; "outcome unknown" is truthful either way).
//!
//! Run: `PG_DATABASE_URL=postgres://postgres@127.0.0.1:5432/dbscope_test
//! MYSQL_DATABASE_URL=mysql://root@127.0.0.1:3306/dbscope_test
//! cargo bench --bench commit_faults --all-features` (the faults databases
//! `PG_FAULTS_DATABASE_URL` / `MYSQL_FAULTS_DATABASE_URL` when set).

#[allow(unreachable_pub)]
#[path = "../tests/integration/commit_outcomes.rs"]
mod commit_outcomes;
#[allow(unreachable_pub)]
#[path = "../tests/integration/fault_proxy.rs"]
mod fault_proxy;

use std::process::ExitCode;
use std::time::Duration;

use commit_outcomes::{
    blocking_unit_losing_commit, create_log_table, native_unit_losing_commit, rows_per_key,
    CommitServer, MyServer, PgServer, Tally,
};
use dbscope::{AsyncSessionFactory, SessionFactory};
use fault_proxy::{server_addr, FaultProxy};

fn url(var: &str, fallback: &str) -> Option<String> {
    std::env::var(var)
        .or_else(|_| std::env::var(fallback))
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// Runs `units` units of one combination; returns its tally.
fn combination<S: CommitServer>(
    url: &str,
    runtime: &tokio::runtime::Runtime,
    native: bool,
    retry: bool,
    units: i64,
) -> Tally {
    let table = format!(
        "bench_cf_{}_{}_{}",
        S::NAME,
        if native { "native" } else { "blocking" },
        if retry { "retry" } else { "once" }
    );
    create_log_table::<S>(url, &table);
    let proxy = FaultProxy::start(server_addr(url));
    let proxied = proxy.url_for(url);
    let mut reports = Vec::with_capacity(units as usize);
    if native {
        let factory = AsyncSessionFactory::<S::Async>::builder(&proxied)
            .max_size(2)
            .checkout_timeout(Duration::from_secs(10))
            .build()
            .expect("native factory");
        for k in 1..=units {
            let (report, _) = runtime.block_on(native_unit_losing_commit(
                &factory, &proxy, &table, k, retry,
            ));
            reports.push((k, report));
        }
    } else {
        let factory = SessionFactory::<S::Conn>::builder(&proxied)
            .max_size(2)
            .checkout_timeout(Duration::from_secs(10))
            .build()
            .expect("factory");
        for k in 1..=units {
            let (report, _) = blocking_unit_losing_commit(&factory, &proxy, &table, k, retry);
            reports.push((k, report));
        }
    }
    assert_eq!(
        proxy.fired() as i64,
        units,
        "every unit must lose its first COMMIT reply"
    );
    let tally = Tally::of(&reports, &rows_per_key::<S>(url, &table));
    let example = reports
        .iter()
        .map(|(_, report)| report)
        .find(|report| !matches!(report, commit_outcomes::Report::Committed));
    println!(
        "{} {} {}: {tally:?}; e.g. {example:?}",
        S::NAME,
        if native { "native" } else { "blocking" },
        if retry { "retry(3)" } else { "no retry" },
    );
    tally
}

fn main() -> ExitCode {
    let units: i64 = std::env::var("BENCH_UNITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let runtime = commit_outcomes::io_runtime();
    let mut tallies = Vec::new();
    let pg = url("PG_FAULTS_DATABASE_URL", "PG_DATABASE_URL");
    let my = url("MYSQL_FAULTS_DATABASE_URL", "MYSQL_DATABASE_URL");
    if pg.is_none() || my.is_none() {
        eprintln!("set PG_DATABASE_URL and MYSQL_DATABASE_URL (or the *_FAULTS_* ones)");
        return ExitCode::FAILURE;
    }
    for native in [false, true] {
        for retry in [false, true] {
            if let Some(url) = &pg {
                tallies.push(combination::<PgServer>(url, &runtime, native, retry, units));
            }
            if let Some(url) = &my {
                tallies.push(combination::<MyServer>(url, &runtime, native, retry, units));
            }
        }
    }
    let duplicates: i64 = tallies.iter().map(|t| t.duplicates).sum();
    let misreported: usize = tallies.iter().map(|t| t.misreported).sum();
    let total: usize = tallies.iter().map(|t| t.units).sum();
    println!("units {total} (each lost its first COMMIT reply)");
    println!("FIGURE commit_unknown_duplicates {duplicates}");
    println!("FIGURE commit_misreported {misreported}");
    ExitCode::SUCCESS
}

//! A server restarted under load, on throwaway servers the bench starts
//! (`scripts/throwaway-pg.sh` on 55432, `scripts/throwaway-mariadb.sh` on
//! 33306; never the shared servers): 4 workers insert one row per unit while
//! the server is crashed (PostgreSQL `immediate` stop, MariaDB `SIGKILL`) and
//! started again; then each unit's report is set against the rows
//! (`tests/integration/restart_scenario.rs`). Per backend and flavour
//! (blocking, native async), units retry transient errors (3 attempts).
//!
//! Prints `FIGURE restart_lost_rows <n>` (units that said `Ok` without a row),
//! `FIGURE restart_duplicated_rows <n>` (rows beyond the first of a unit),
//! `FIGURE restart_misreported <n>` (units whose report contradicts the rows)
//! and `FIGURE restart_recovery_ms <max>` (from the server accepting
//! connections again to the first unit that succeeded after the restart).
//!
//! Run: `cargo bench --bench restart_load --all-features` (needs the
//! PostgreSQL and MariaDB server packages).

#[allow(unreachable_pub)]
#[path = "../tests/integration/commit_outcomes.rs"]
mod commit_outcomes;
#[allow(unreachable_pub)]
#[path = "../tests/integration/fault_proxy.rs"]
mod fault_proxy;
#[allow(unreachable_pub)]
#[path = "../tests/integration/restart_scenario.rs"]
mod restart_scenario;

use std::process::ExitCode;

use commit_outcomes::{CommitServer, MyServer, PgServer};
use restart_scenario::{restart_under_load, RestartOutcome, Throwaway};

fn backend<S: CommitServer>(outcomes: &mut Vec<RestartOutcome>) -> Result<(), String> {
    let server = Throwaway::start::<S>()?;
    for native in [false, true] {
        let flavour = if native { "native" } else { "blocking" };
        let outcome =
            restart_under_load::<S>(&server, &format!("bench_restart_{flavour}"), native, true);
        println!("{} {flavour}: {outcome:?}", S::NAME);
        outcomes.push(outcome);
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut outcomes = Vec::new();
    for result in [
        backend::<PgServer>(&mut outcomes),
        backend::<MyServer>(&mut outcomes),
    ] {
        if let Err(reason) = result {
            eprintln!("{reason}");
            return ExitCode::FAILURE;
        }
    }
    let lost: usize = outcomes.iter().map(|o| o.lost_rows).sum();
    let duplicated: i64 = outcomes.iter().map(|o| o.duplicated_rows).sum();
    let misreported: usize = outcomes.iter().map(|o| o.tally.misreported).sum();
    let recovery = outcomes
        .iter()
        .filter_map(|o| o.recovery)
        .max()
        .map_or(0, |d| d.as_millis());
    println!("FIGURE restart_lost_rows {lost}");
    println!("FIGURE restart_duplicated_rows {duplicated}");
    println!("FIGURE restart_misreported {misreported}");
    println!("FIGURE restart_recovery_ms {recovery}");
    ExitCode::SUCCESS
}

//! A throwaway server (never the shared ones) crashed and started again while
//! units insert rows, PostgreSQL and MariaDB, blocking and native flavours;
//! see `restart_scenario`. Units that said `Ok` keep their rows and the pool
//! recovers; that no report contradicts the rows is issue 12's to build.

use std::sync::Mutex;

use crate::commit_outcomes::CommitServer;
use crate::restart_scenario::{restart_under_load, RestartOutcome, Throwaway};

/// Serialises the scenarios of one throwaway server (a restart hits every
/// pool on it).
fn serial<S: CommitServer>() -> std::sync::MutexGuard<'static, ()> {
    static PG: Mutex<()> = Mutex::new(());
    static MY: Mutex<()> = Mutex::new(());
    let lock = if S::NAME == "pg" { &PG } else { &MY };
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs the scenario on the throwaway server of `S`; `None` (skip) when it
/// cannot be started here, a panic when `CI` is set.
fn scenario<S: CommitServer>(test: &str, native: bool) -> Option<RestartOutcome> {
    let _serial = serial::<S>();
    let server = match Throwaway::start::<S>() {
        Ok(server) => server,
        Err(reason) if std::env::var_os("CI").is_some() => {
            panic!("{test}: the throwaway server does not start, and CI is set: {reason}")
        }
        Err(reason) => {
            eprintln!("skipping {test}: {reason}");
            return None;
        }
    };
    let outcome = restart_under_load::<S>(&server, &format!("rl_{test}"), native, true);
    eprintln!("{test}: {outcome:?}");
    Some(outcome)
}

/// Every unit that said `Ok` has its row (nothing acknowledged was lost),
/// and after the restart units succeed again.
fn ok_units_keep_their_rows_and_the_pool_recovers<S: CommitServer>(test: &str, native: bool) {
    let Some(outcome) = scenario::<S>(test, native) else {
        return;
    };
    assert_eq!(outcome.lost_rows, 0, "{outcome:?}");
    assert!(outcome.recovery.is_some(), "{outcome:?}");
}

/// Issue 12: every report is true: `Ok` units have their row exactly once,
/// units reported rolled back (or failed) have none.
fn every_report_matches_the_rows<S: CommitServer>(test: &str, native: bool) {
    let Some(outcome) = scenario::<S>(test, native) else {
        return;
    };
    assert_eq!(
        (
            outcome.lost_rows,
            outcome.duplicated_rows,
            outcome.rolled_back_with_row
        ),
        (0, 0, 0),
        "{outcome:?}"
    );
    assert_eq!(outcome.tally.misreported, 0, "{outcome:?}");
}

macro_rules! restart_tests {
    ($server:ty) => {
        use super::*;

        #[test]
        fn blocking_restart_ok_units_keep_their_rows_and_the_pool_recovers() {
            ok_units_keep_their_rows_and_the_pool_recovers::<$server>("b_ok", false);
        }

        #[test]
        fn native_restart_ok_units_keep_their_rows_and_the_pool_recovers() {
            ok_units_keep_their_rows_and_the_pool_recovers::<$server>("n_ok", true);
        }

        #[test]
        fn blocking_restart_every_report_matches_the_rows() {
            every_report_matches_the_rows::<$server>("b_true", false);
        }

        #[test]
        fn native_restart_every_report_matches_the_rows() {
            every_report_matches_the_rows::<$server>("n_true", true);
        }
    };
}

#[cfg(feature = "postgres")]
mod postgres {
    restart_tests!(crate::commit_outcomes::PgServer);
}

#[cfg(feature = "mysql")]
mod mysql {
    restart_tests!(crate::commit_outcomes::MyServer);
}

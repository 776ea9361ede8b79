//! A server restarted under load: units insert rows on 4 workers while the
//! throwaway server (`scripts/throwaway-pg.sh`, `scripts/throwaway-mariadb.sh`,
//! never the shared servers) is crashed and started again; afterwards each
//! unit's report is set against the rows the server holds.
//!
//! Shared by the `restart_load` integration tests and `benches/restart_load.rs`
//! (included there by path).

#![allow(dead_code)] // each includer uses a part

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbscope::{AsyncSessionFactory, Error, SessionFactory, UnitOptions};
use diesel::connection::SimpleConnection;

use crate::commit_outcomes::{
    create_log_table, io_runtime, options, rows_per_key, CommitServer, Report, Tally,
};

/// A throwaway server run by one of the project's scripts.
pub struct Throwaway {
    script: PathBuf,
    /// How `restart` ends the server: a crash, not a clean shutdown.
    crash: &'static str,
    pub url: String,
}

impl Throwaway {
    /// Starts the throwaway server of `S` (idempotent); `Err` says why it
    /// cannot run here.
    pub fn start<S: CommitServer>() -> Result<Self, String> {
        let (name, crash) = match S::NAME {
            "pg" => ("throwaway-pg.sh", "immediate"),
            _ => ("throwaway-mariadb.sh", "kill"),
        };
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("scripts")
            .join(name);
        let output = Command::new(&script)
            .arg("start")
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} start failed: {}",
                script.display(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let url = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Ok(Throwaway { script, crash, url })
    }

    /// Crashes the server and starts it again; returns when it accepts
    /// connections.
    pub fn restart(&self) {
        let status = Command::new(&self.script)
            .args(["restart", self.crash])
            .status()
            .expect("run the restart script");
        assert!(status.success(), "{} restart failed", self.script.display());
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = Command::new(&self.script).arg("stop").status();
    }
}

/// What one restart under load measured.
#[derive(Debug)]
pub struct RestartOutcome {
    pub tally: Tally,
    /// Units that said `Ok` and whose row is missing.
    pub lost_rows: usize,
    /// Rows beyond the first of a unit.
    pub duplicated_rows: i64,
    /// Units reported rolled back (or failed) whose row is there.
    pub rolled_back_with_row: usize,
    /// From the restart script's return (server accepting connections) to
    /// the first unit that succeeded after it.
    pub recovery: Option<Duration>,
    /// Units that succeeded after the restart.
    pub ok_after_restart: usize,
}

const WORKERS: usize = 4;
/// Units that must have finished before the restart, and succeeded after it.
const BEFORE: usize = 40;
const AFTER: usize = 40;
/// A bound on waiting for progress, to fail instead of hanging.
const GIVE_UP: Duration = Duration::from_secs(120);

/// Shared progress of the workers.
struct Progress {
    next_key: AtomicI64,
    stop: AtomicBool,
    reports: Mutex<Vec<(i64, Report, Instant)>>,
}

impl Progress {
    fn record(&self, k: i64, report: Report) {
        self.reports
            .lock()
            .unwrap()
            .push((k, report, Instant::now()));
    }

    fn ok_since(&self, since: Instant) -> Vec<Instant> {
        self.reports
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, report, at)| *report == Report::Committed && *at >= since)
            .map(|&(_, _, at)| at)
            .collect()
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let started = Instant::now();
        while !done(self) {
            assert!(started.elapsed() < GIVE_UP, "no progress: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs the scenario on `server` in the blocking (`native == false`) or
/// native async flavour, with a retry policy of 3 attempts or none.
pub fn restart_under_load<S: CommitServer>(
    server: &Throwaway,
    table: &str,
    native: bool,
    retry: bool,
) -> RestartOutcome {
    create_log_table::<S>(&server.url, table);
    let progress = Arc::new(Progress {
        next_key: AtomicI64::new(1),
        stop: AtomicBool::new(false),
        reports: Mutex::new(Vec::new()),
    });
    let workers = if native {
        spawn_native::<S>(&server.url, table, retry, &progress)
    } else {
        spawn_blocking::<S>(&server.url, table, retry, &progress)
    };
    progress.wait_for("units before the restart", |p| {
        p.reports.lock().unwrap().len() >= BEFORE
    });
    server.restart();
    let restarted = Instant::now();
    progress.wait_for("units after the restart", |p| {
        p.ok_since(restarted).len() >= AFTER
    });
    progress.stop.store(true, Ordering::SeqCst);
    workers();
    let reports: Vec<(i64, Report)> = progress
        .reports
        .lock()
        .unwrap()
        .iter()
        .map(|(k, report, _)| (*k, report.clone()))
        .collect();
    let rows = rows_per_key::<S>(&server.url, table);
    let row_count = |k: &i64| rows.get(k).copied().unwrap_or(0);
    let ok_after = progress.ok_since(restarted);
    RestartOutcome {
        tally: Tally::of(&reports, &rows),
        lost_rows: reports
            .iter()
            .filter(|(k, r)| *r == Report::Committed && row_count(k) == 0)
            .count(),
        duplicated_rows: reports.iter().map(|(k, _)| (row_count(k) - 1).max(0)).sum(),
        rolled_back_with_row: reports
            .iter()
            .filter(|(k, r)| {
                matches!(r, Report::RolledBack(_) | Report::Failed(_)) && row_count(k) > 0
            })
            .count(),
        recovery: ok_after.iter().min().map(|at| *at - restarted),
        ok_after_restart: ok_after.len(),
    }
}

fn insert_sql(table: &str, k: i64) -> String {
    format!("INSERT INTO {table} (k) VALUES ({k})")
}

/// Starts the workers; the returned closure joins them.
fn spawn_blocking<S: CommitServer>(
    url: &str,
    table: &str,
    retry: bool,
    progress: &Arc<Progress>,
) -> Box<dyn FnOnce()> {
    let factory = SessionFactory::<S::Conn>::builder(url)
        .max_size(WORKERS)
        .checkout_timeout(Duration::from_secs(5))
        .build()
        .expect("factory");
    let threads: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (factory, progress, table) =
                (factory.clone(), Arc::clone(progress), table.to_owned());
            std::thread::spawn(move || {
                let options: UnitOptions = options(retry);
                while !progress.stop.load(Ordering::SeqCst) {
                    let k = progress.next_key.fetch_add(1, Ordering::SeqCst);
                    let outcome = factory.run(&options, |s| {
                        s.batch_execute(&insert_sql(&table, k)).map_err(Error::from)
                    });
                    progress.record(k, Report::of(&outcome));
                    if outcome.is_err() {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    Box::new(move || {
        for thread in threads {
            thread.join().expect("worker");
        }
    })
}

fn spawn_native<S: CommitServer>(
    url: &str,
    table: &str,
    retry: bool,
    progress: &Arc<Progress>,
) -> Box<dyn FnOnce()> {
    use diesel_async::SimpleAsyncConnection;
    let factory = AsyncSessionFactory::<S::Async>::builder(url)
        .max_size(WORKERS)
        .checkout_timeout(Duration::from_secs(5))
        .build()
        .expect("native factory");
    let runtime = io_runtime();
    let tasks: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (factory, progress, table) =
                (factory.clone(), Arc::clone(progress), table.to_owned());
            runtime.spawn(async move {
                let options: UnitOptions = options(retry);
                while !progress.stop.load(Ordering::SeqCst) {
                    let k = progress.next_key.fetch_add(1, Ordering::SeqCst);
                    let sql = insert_sql(&table, k);
                    let outcome = factory
                        .run(&options, async |conn: &mut S::Async| {
                            conn.batch_execute(&sql).await?;
                            Ok::<_, Error>(())
                        })
                        .await;
                    progress.record(k, Report::of(&outcome));
                    if outcome.is_err() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    Box::new(move || {
        runtime.block_on(async {
            for task in tasks {
                task.await.expect("worker");
            }
        });
    })
}

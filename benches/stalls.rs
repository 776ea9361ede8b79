//! How long a unit waits when the peer stops answering.
//!
//! Through the loopback fault proxy (`tests/integration/fault_proxy.rs`),
//! which accepts and then holds every byte while stalled, per backend
//! (PostgreSQL, MariaDB) and flavour (blocking, native async):
//! - **checkout**: a unit on a fresh factory (checkout timeout 1 s) must open
//!   a connection through the stalled peer. `overshoot` = time to the error
//!   minus the checkout timeout.
//! - **begin**: a unit (hold budget 1 s) on a warm pooled connection sends
//!   `BEGIN` into the stall.
//! - **commit**: a unit (hold budget 1 s) stalls the peer as its body ends, so
//!   its `COMMIT` gets no reply.
//!
//! Each case runs on its own thread; a case that has not returned after
//! `GIVE_UP` (10 s) counts as that long and is released. Printed:
//! - `FIGURE stall_checkout_overshoot_ms <max>` (target: at most 100);
//! - `FIGURE stall_begin_commit_bound_ms <max>` (against the 1 s budget);
//! - the same two for the native flavour alone
//!   (`stall_checkout_overshoot_native_ms`, `stall_begin_commit_bound_native_ms`),
//!   and one line per case.
//!
//! Run: `PG_DATABASE_URL=.. MYSQL_DATABASE_URL=.. cargo bench --bench stalls --all-features`.

#[allow(unreachable_pub)]
#[path = "../tests/integration/commit_outcomes.rs"]
mod commit_outcomes;
#[allow(unreachable_pub)]
#[path = "../tests/integration/fault_proxy.rs"]
mod fault_proxy;

use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use commit_outcomes::{io_runtime, CommitServer, MyServer, PgServer};
use dbscope::{AsyncSessionFactory, Error, SessionFactory, UnitOptions};
use fault_proxy::{server_addr, FaultProxy};

const BOUND: Duration = Duration::from_secs(1);
const GIVE_UP: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    Checkout,
    Begin,
    Commit,
}

/// Runs one case; how long the unit took to return (`GIVE_UP` if it had not).
fn measure<S: CommitServer>(url: &str, native: bool, case: Case) -> Duration {
    let proxy = Arc::new(FaultProxy::start(server_addr(url)));
    let proxied = proxy.url_for(url);
    let options = UnitOptions::new("bench::stall").budget(BOUND);
    let (tx, rx) = mpsc::channel();
    let worker_proxy = Arc::clone(&proxy);
    let worker = std::thread::spawn(move || {
        let proxy = worker_proxy;
        let stall_in_body = case == Case::Commit;
        let result: Result<(), Error> = if native {
            let runtime = io_runtime();
            let factory = AsyncSessionFactory::<S::Async>::builder(&proxied)
                .max_size(1)
                .checkout_timeout(BOUND)
                .build()
                .expect("factory");
            if case != Case::Checkout {
                runtime
                    .block_on(factory.run(&options, async |_c: &mut S::Async| Ok::<_, Error>(())))
                    .expect("warm");
            }
            let proxy_in_body = Arc::clone(&proxy);
            let started = stall_now(&proxy, case);
            let result = runtime.block_on(factory.run(&options, async |_c: &mut S::Async| {
                if stall_in_body {
                    proxy_in_body.stall();
                }
                Ok::<_, Error>(())
            }));
            let _ = tx.send(started.elapsed());
            result
        } else {
            let factory = SessionFactory::<S::Conn>::builder(&proxied)
                .max_size(1)
                .checkout_timeout(BOUND)
                .build_lazy();
            if case != Case::Checkout {
                factory
                    .run(&options, |_s| Ok::<_, Error>(()))
                    .expect("warm");
            }
            let started = stall_now(&proxy, case);
            let result = factory.run(&options, |_s| {
                if stall_in_body {
                    proxy.stall();
                }
                Ok::<_, Error>(())
            });
            let _ = tx.send(started.elapsed());
            result
        };
        // A bounded unit failed while the peer stalled; an unbounded one may
        // succeed once the case gives up and releases the peer.
        drop(result);
    });
    let took = rx.recv_timeout(GIVE_UP).unwrap_or(GIVE_UP);
    proxy.release();
    worker.join().expect("worker");
    took
}

/// Stalls the peer now unless the case stalls it from the body; the start.
fn stall_now(proxy: &FaultProxy, case: Case) -> Instant {
    if case != Case::Commit {
        proxy.stall();
    }
    Instant::now()
}

fn url(var: &str, fallback: &str) -> Option<String> {
    std::env::var(var)
        .or_else(|_| std::env::var(fallback))
        .ok()
        .filter(|url| !url.trim().is_empty())
}

fn main() -> ExitCode {
    let (Some(pg), Some(my)) = (
        url("PG_FAULTS_DATABASE_URL", "PG_DATABASE_URL"),
        url("MYSQL_FAULTS_DATABASE_URL", "MYSQL_DATABASE_URL"),
    ) else {
        eprintln!("set PG_DATABASE_URL and MYSQL_DATABASE_URL (or the *_FAULTS_* ones)");
        return ExitCode::FAILURE;
    };
    let mut overshoot = [0u128; 2]; // [blocking, native]
    let mut bound = [0u128; 2];
    for native in [false, true] {
        for case in [Case::Checkout, Case::Begin, Case::Commit] {
            for (name, took) in [
                ("pg", measure::<PgServer>(&pg, native, case)),
                ("my", measure::<MyServer>(&my, native, case)),
            ] {
                let ms = took.as_millis();
                let flavour = usize::from(native);
                let (label, value) = match case {
                    Case::Checkout => {
                        let over = ms.saturating_sub(BOUND.as_millis());
                        overshoot[flavour] = overshoot[flavour].max(over);
                        ("checkout overshoot", over)
                    }
                    Case::Begin | Case::Commit => {
                        bound[flavour] = bound[flavour].max(ms);
                        (
                            if case == Case::Begin {
                                "begin took"
                            } else {
                                "commit took"
                            },
                            ms,
                        )
                    }
                };
                let gave_up = if took >= GIVE_UP {
                    " (gave up: unbounded)"
                } else {
                    ""
                };
                println!(
                    "{name} {}: {label} {value} ms{gave_up}",
                    if native { "native" } else { "blocking" }
                );
            }
        }
    }
    println!(
        "FIGURE stall_checkout_overshoot_ms {}",
        overshoot[0].max(overshoot[1])
    );
    println!(
        "FIGURE stall_begin_commit_bound_ms {}",
        bound[0].max(bound[1])
    );
    println!("FIGURE stall_checkout_overshoot_native_ms {}", overshoot[1]);
    println!("FIGURE stall_begin_commit_bound_native_ms {}", bound[1]);
    ExitCode::SUCCESS
}

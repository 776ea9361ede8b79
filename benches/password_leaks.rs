//! Passwords printed anywhere, over generated connection strings of every form
//! (`tests/integration/conn_strings.rs`: user info encoded and raw, secret
//! query parameters, multi-host URLs, libpq `key=value` strings, MySQL URLs).
//!
//! For each string, through the real runtime: the factory's `Debug` and
//! `url()`, the error of `build()` and of a first checkout or unit (connect to
//! `127.0.0.1:1`, where nothing listens), blocking and native async flavours;
//! then the same forms against `PG_DATABASE_URL`'s server (trust auth: the
//! units run, with the password in the string) and `MYSQL_DATABASE_URL`'s
//! (which refuses the password);
//! and everything logged at `TRACE` level by the runtime and the drivers
//! (`tracing` and `log` records, captured in a buffer). Counts every occurrence
//! of a generated password, or of a piece of it, in all of that.
//!
//! Prints `FIGURE password_leaks <count>`; exits non-zero when it is not 0.
//!
//! Run: `cargo bench --bench password_leaks --all-features`.
//! `BENCH_CASES` (default 450) and `BENCH_SEED` (default 12) tune it.

#[allow(unreachable_pub)]
#[path = "../tests/integration/conn_strings.rs"]
mod conn_strings;

use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conn_strings::{generate_for, leaks, Case, Family, Target};
use dbscope::{
    AsyncPoolableConnection, AsyncSessionFactory, Error, PoolableConnection, RedactedUrl,
    SessionFactory, UnitOptions,
};

/// Everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn error_texts(error: &Error) -> [String; 3] {
    [
        error.to_string(),
        format!("{error:?}"),
        format!("{error:#?}"),
    ]
}

/// What the blocking flavour prints for `url`.
fn blocking_prints<C: PoolableConnection>(url: &str) -> Vec<String> {
    let mut printed = Vec::new();
    match SessionFactory::<C>::builder(url)
        .checkout_timeout(Duration::from_secs(2))
        .build()
    {
        Ok(factory) => printed.push(format!("{factory:?}")),
        Err(error) => printed.extend(error_texts(&error)),
    }
    let factory = SessionFactory::<C>::builder(url)
        .checkout_timeout(Duration::from_secs(2))
        .build_lazy();
    printed.push(format!("{factory:?}"));
    printed.push(format!("{factory:#?}"));
    printed.push(factory.url().to_string());
    printed.push(format!("{:?}", factory.url()));
    match factory.session() {
        Ok(session) => {
            drop(session);
            let outcome = factory.run(&UnitOptions::new("password_leaks"), |s| {
                s.batch_execute("SELECT 1").map_err(Error::from)
            });
            if let Err(error) = outcome {
                printed.extend(error_texts(&error));
            }
            printed.push(format!("{factory:?}"));
        }
        Err(error) => printed.extend(error_texts(&error)),
    }
    printed
}

/// What the native async flavour prints for `url`.
fn async_prints<C: AsyncPoolableConnection>(
    runtime: &tokio::runtime::Runtime,
    url: &str,
) -> Vec<String> {
    let mut printed = Vec::new();
    let factory = match AsyncSessionFactory::<C>::builder(url)
        .checkout_timeout(Duration::from_secs(2))
        .build()
    {
        Ok(factory) => factory,
        Err(error) => {
            printed.extend(error_texts(&error));
            return printed;
        }
    };
    printed.push(format!("{factory:?}"));
    printed.push(factory.url().to_string());
    let outcome = runtime.block_on(factory.run(
        &UnitOptions::new("password_leaks"),
        async |conn: &mut C| {
            conn.batch_execute("SELECT 1").await?;
            Ok::<(), Error>(())
        },
    ));
    if let Err(error) = outcome {
        printed.extend(error_texts(&error));
    }
    printed
}

fn prints(runtime: &tokio::runtime::Runtime, case: &Case) -> Vec<String> {
    let url = RedactedUrl::new(&case.text);
    let mut printed = vec![url.to_string(), format!("{url:?}"), url.scrub(&case.text)];
    match case.family {
        Family::Postgres => {
            printed.extend(blocking_prints::<diesel::PgConnection>(&case.text));
            printed.extend(async_prints::<diesel_async::AsyncPgConnection>(
                runtime, &case.text,
            ));
        }
        Family::Mysql => {
            printed.extend(blocking_prints::<diesel::MysqlConnection>(&case.text));
            printed.extend(async_prints::<diesel_async::AsyncMysqlConnection>(
                runtime, &case.text,
            ));
        }
    }
    printed
}

fn main() -> ExitCode {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("install the capturing subscriber");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    tracing::trace!("password_leaks: capture check");
    let seed = env_number("BENCH_SEED", 12);
    let count = env_number("BENCH_CASES", 450) as usize;
    // Refused connects for every form; then, where a server is given, the
    // same forms against it (PostgreSQL `trust` ignores the password, so the
    // units run; MariaDB refuses it).
    let mut cases = generate_for(seed, count, &Target::refused(), None);
    for (var, family) in [
        ("PG_DATABASE_URL", Family::Postgres),
        ("MYSQL_DATABASE_URL", Family::Mysql),
    ] {
        match std::env::var(var)
            .ok()
            .and_then(|url| Target::from_url(&url))
        {
            Some(target) => cases.extend(generate_for(seed + 1, count / 3, &target, Some(family))),
            None => println!("{var} not set (or has a password): no live cases for it"),
        }
    }
    let mut printed_leaks = 0;
    let mut printed_count = 0;
    for case in &cases {
        let printed = prints(&runtime, case);
        printed_count += printed.len();
        let leaked: usize = printed.iter().map(|text| leaks(case, text)).sum();
        if leaked > 0 && printed_leaks == 0 {
            eprintln!("first leak: {case:?}: {printed:#?}");
        }
        printed_leaks += leaked;
    }
    drop(runtime);
    let log = String::from_utf8_lossy(&captured.0.lock().expect("buffer")).into_owned();
    assert!(
        log.contains("password_leaks: capture check"),
        "the subscriber captured nothing"
    );
    let log_leaks: usize = cases.iter().map(|case| leaks(case, &log)).sum();
    if log_leaks > 0 {
        let line = cases
            .iter()
            .find_map(|case| log.lines().find(|line| leaks(case, line) > 0));
        eprintln!("first leaking log line: {line:?}");
    }
    println!(
        "cases {} (strings printed {printed_count}, log {} lines); leaks in printed strings {printed_leaks}, in logs {log_leaks}",
        cases.len(),
        log.lines().count()
    );
    let total = printed_leaks + log_leaks;
    println!("FIGURE password_leaks {total}");
    if total == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

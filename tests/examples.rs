//! Runs every example and checks that it prints the facts it exists to show,
//! so none of them rots: on SQLite always, and on PostgreSQL and MariaDB when
//! the feature is on and `PG_DATABASE_URL` / `MYSQL_DATABASE_URL` is set
//! (`job_worker`: PostgreSQL only).
//!
//! `cargo test` builds the examples before running this; the test still asks
//! cargo to build them (a no-op then) so that `cargo test --test examples`
//! alone works and never runs a stale binary.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

const TIME_LIMIT: Duration = Duration::from_secs(120);

/// Every feature of the package and whether this test binary has it on.
const FEATURES: [(&str, bool); 6] = [
    ("sqlite", cfg!(feature = "sqlite")),
    ("tokio", cfg!(feature = "tokio")),
    ("serde", cfg!(feature = "serde")),
    ("postgres", cfg!(feature = "postgres")),
    ("mysql", cfg!(feature = "mysql")),
    ("async", cfg!(feature = "async")),
];

/// Every example with the features it requires (as in Cargo.toml).
const EXAMPLES: [(&str, &[&str]); 4] = [
    ("quickstart", &["sqlite"]),
    ("generic_repository", &["sqlite"]),
    ("llm_service", &["sqlite", "tokio"]),
    ("job_worker", &["sqlite", "serde"]),
];

fn enabled(feature: &str) -> bool {
    FEATURES.iter().any(|&(name, on)| name == feature && on)
}

/// The examples this build can compile.
fn buildable() -> impl Iterator<Item = &'static str> {
    EXAMPLES
        .iter()
        .filter(|(_, required)| required.iter().all(|f| enabled(f)))
        .map(|(name, _)| *name)
}

/// The features this test binary was built with, for building the examples
/// alike (any other set would rebuild dbscope and overwrite the examples
/// `cargo test` just built).
fn features() -> String {
    let on: Vec<&str> = FEATURES
        .iter()
        .filter(|(_, on)| *on)
        .map(|(f, _)| *f)
        .collect();
    on.join(",")
}

/// `target/<profile>/examples`, next to the `deps` folder this test runs from.
fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>")
        .join("examples")
}

fn build_examples() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--no-default-features",
            "--features",
            &features(),
        ]);
        for example in buildable() {
            command.args(["--example", example]);
        }
        // Same target dir and profile as this test binary.
        let profile_dir = examples_dir().parent().unwrap().to_path_buf();
        let target_dir = profile_dir.parent().unwrap();
        command.env("CARGO_TARGET_DIR", target_dir);
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            command.arg("--release");
        }
        let status = command.status().expect("run cargo build");
        assert!(status.success(), "cargo build of the examples failed");
    });
}

/// Runs `target/<profile>/examples/<name> args` with `DATABASE_URL` (or none:
/// SQLite) and returns its output, failing the test on a non-zero exit.
fn run(name: &str, args: &[&str], database_url: Option<&str>) -> String {
    build_examples();
    let binary = examples_dir().join(name);
    let mut command = Command::new(&binary);
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()));
    let started = Instant::now();
    while child.try_wait().expect("wait for the example").is_none() {
        if started.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            panic!("{name} {args:?} ran longer than {TIME_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("example output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} {args:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    println!("--- {name} {args:?}\n{stdout}");
    stdout
}

fn assert_prints(output: &str, facts: &[&str]) {
    for fact in facts {
        assert!(output.contains(fact), "expected {fact:?} in:\n{output}");
    }
}

fn check_quickstart(url: Option<&str>) {
    let output = run("quickstart", &[], url);
    assert_prints(
        &output,
        &[
            "create: job ",
            "read back; session held ",
            "fetch:  job ",
            "0 connection(s) checked out", // during the slow part
            "update: job ",
            "4 checkouts (schema, 3 units), all back (0 in use)",
            "checkout timeouts: 0",
        ],
    );
}

fn check_generic_repository(url: Option<&str>) {
    let output = run("generic_repository", &[], url);
    assert_prints(&output, &["sqlite: 2 notes through one repository"]);
    if let Some(url) = url {
        let backend = if url.starts_with("postgres") {
            "postgres"
        } else {
            "mysql"
        };
        assert_prints(
            &output,
            &[&format!("{backend}: 2 notes through one repository")],
        );
    }
}

fn check_llm_service(url: Option<&str>) {
    let args = ["--load", "40", "--concurrency", "20", "--model-ms", "50"];
    let output = run("llm_service", &args, url);
    assert_prints(
        &output,
        &[
            "40 of 40 requests succeeded, 0 failed",
            "-> 200 {\"id\":",
            "\"checkout_timeouts\":0",
            "pool: max_in_use ",
            "of 5, checkout_timeouts: 0",
        ],
    );
}

fn check_job_worker(url: Option<&str>) {
    if !buildable().any(|name| name == "job_worker") {
        println!("job_worker: skipped (needs the serde feature)");
        return;
    }
    let output = run("job_worker", &[], url);
    assert_prints(
        &output,
        &[
            "producer: document 1 committed, then job 1 enqueued",
            "document 1 loaded as \"Pool sizing (revised)\"", // reloaded by id
            "failed transiently (RemoteTimeout); back in the queue",
            "summary Some(\"Pool sizing (revised): 8 words\")",
            "summary Some(\"Retries: 7 words\")",
            ", 0 in use now,",
        ],
    );
    assert!(
        !output.contains(" failed: "),
        "a job failed for good:\n{output}"
    );
    // Not checked: its "N connection(s) in use during the model call" counts
    // the whole pool, so the other worker's unit of work may show there.
}

/// Server URLs from the environment when this build can use them.
fn servers() -> Vec<String> {
    let mut urls = Vec::new();
    let wanted = [
        ("PG_DATABASE_URL", cfg!(feature = "postgres")),
        ("MYSQL_DATABASE_URL", cfg!(feature = "mysql")),
    ];
    for (var, enabled) in wanted {
        match std::env::var(var) {
            Ok(url) if enabled && !url.is_empty() => urls.push(url),
            _ => println!("examples on {var}: skipped (not set, or its feature is off)"),
        }
    }
    urls
}

#[test]
fn quickstart_runs_on_sqlite() {
    check_quickstart(None);
}

#[test]
fn generic_repository_runs_on_sqlite() {
    check_generic_repository(None);
}

#[test]
fn llm_service_load_on_sqlite_keeps_the_pool_healthy() {
    check_llm_service(None);
}

#[test]
fn job_worker_runs_on_sqlite() {
    check_job_worker(None);
}

#[test]
fn examples_run_on_the_servers() {
    for url in servers() {
        check_quickstart(Some(&url));
        check_generic_repository(Some(&url));
        check_llm_service(Some(&url));
        if url.starts_with("postgres") {
            check_job_worker(Some(&url));
        }
    }
}

/// Every file in examples/ is run by a test here, and the features this test
/// passes to cargo are all of the package's.
#[test]
fn every_example_is_run() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("examples")).expect("examples/") {
        let path = entry.expect("examples/ entry").path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            EXAMPLES.iter().any(|(known, _)| *known == name),
            "examples/{name} is not run by any test: add it to tests/examples.rs"
        );
    }
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let table = manifest
        .split("\n[features]\n")
        .nth(1)
        .expect("a [features] table")
        .split("\n[")
        .next()
        .unwrap();
    for line in table.lines() {
        let Some((name, _)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        assert!(
            name.starts_with('#')
                || name == "default"
                || FEATURES.iter().any(|(known, _)| *known == name),
            "feature {name:?} is missing from FEATURES in tests/examples.rs"
        );
    }
}

//! `cargo bench --bench build_time`: what `#[unit_of_work]` costs at compile
//! time.
//!
//! Generates a small workspace under `target/build-time/` with crates of
//! `FUNCTIONS` functions each, all depending on this workspace by path and
//! sharing one target dir, so dbscope, the macro crate and diesel are built
//! once (in the warm-up) and are not part of any measurement:
//! - `uow`: each function is a `#[unit_of_work]` running one diesel query;
//! - `hand`: the same functions written by hand the way the overhead bench
//!   writes them (`db.checkout()?` then `conn.transaction(|conn| ..)`);
//! - `run`: the same through `factory.run(&OPTIONS, |session| ..)` closures
//!   (what the macro expands to, minus the macro);
//! - `empty`: no functions, to subtract what every build pays (cargo, rustc
//!   start-up, loading the dependencies' metadata).
//!
//! Each measurement touches one crate's `lib.rs` and times
//! `cargo build --offline -p <crate>` (dev profile, `CARGO_INCREMENTAL=0`, so
//! the whole crate is compiled every time), rounds alternating between the
//! crates; medians over `BUILD_TIME_ROUNDS` rounds (default 5). On Linux the
//! time measured is the CPU time (user + system) of cargo and the rustc it
//! runs, read from `/proc/self/stat`, which other work on a shared machine
//! disturbs far less than wall time; elsewhere it is wall time. Both are printed.
//!
//! Prints `FIGURE build_time_ratio <uow / hand>` (target: at most 1.3) and the
//! cost per function in ms of each form over the empty crate. Works offline:
//! the generated workspace uses this workspace's `Cargo.lock`.

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

const FUNCTIONS: usize = 300;
const CRATES: [&str; 4] = ["uow", "hand", "run", "empty"];

fn main() {
    let rounds: usize = std::env::var("BUILD_TIME_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from)
        .join("build-time");
    let crates = target.join("crates");
    generate(&workspace, &crates);

    println!("warm-up: building dbscope, the macros and diesel once for the generated crates");
    let warm = support::time(|| build(&crates, &target, None));
    println!("  {:.1} s", warm.as_secs_f64());

    let mut times: Vec<Vec<f64>> = vec![Vec::new(); CRATES.len()];
    for round in 0..rounds {
        let mut line = format!("round {}:", round + 1);
        // Alternate the order so drift (other builds on the machine) hits all alike.
        let order: Vec<usize> = if round % 2 == 0 {
            (0..CRATES.len()).collect()
        } else {
            (0..CRATES.len()).rev().collect()
        };
        for i in order {
            let name = CRATES[i];
            touch(&crates.join(name).join("src/lib.rs"));
            let cpu_before = children_cpu();
            let wall = support::time(|| build(&crates, &target, Some(name)));
            let cpu = cpu_before.zip(children_cpu()).map(|(b, a)| a - b);
            times[i].push(cpu.unwrap_or(wall).as_secs_f64());
            let _ = match cpu {
                Some(cpu) => write!(
                    line,
                    " {name} {:.2} s cpu ({:.2} s wall),",
                    cpu.as_secs_f64(),
                    wall.as_secs_f64()
                ),
                None => write!(line, " {name} {:.2} s wall,", wall.as_secs_f64()),
            };
        }
        println!("{line}");
    }
    let clock = if children_cpu().is_some() {
        "CPU time"
    } else {
        "wall time"
    };
    let medians: Vec<f64> = times.iter_mut().map(|t| support::median(t)).collect();
    let [uow, hand, run, empty] = [medians[0], medians[1], medians[2], medians[3]];
    let per_fn = |t: f64| (t - empty) / FUNCTIONS as f64 * 1e3;
    println!(
        "{clock}, medians over {rounds} rounds, crate of {FUNCTIONS} functions: #[unit_of_work] {uow:.2} s, \
         hand-written checkout + conn.transaction {hand:.2} s, factory.run closures {run:.2} s, \
         no functions {empty:.2} s"
    );
    println!(
        "per function (over the empty crate): #[unit_of_work] {:.2} ms, hand-written {:.2} ms, \
         factory.run {:.2} ms; the macro adds {:.2} ms per function over hand-written code",
        per_fn(uow),
        per_fn(hand),
        per_fn(run),
        per_fn(uow) - per_fn(hand)
    );
    println!("uow / factory.run: {:.3}", uow / run);
    support::figure("build_time_ratio", uow / hand);
}

/// Writes the generated workspace (only files whose contents changed, so a
/// second run reuses the warm target dir).
fn generate(workspace: &Path, crates: &Path) {
    let dbscope = workspace.display().to_string().replace('\\', "/");
    write_if_changed(
        &crates.join("Cargo.toml"),
        &format!(
            "# Generated by benches/build_time.rs.\n[workspace]\nmembers = {:?}\nresolver = \"2\"\n",
            CRATES
        ),
    );
    let lock = std::fs::read_to_string(workspace.join("Cargo.lock")).expect("Cargo.lock");
    write_if_changed(&crates.join("Cargo.lock"), &lock);
    for name in CRATES {
        let dir = crates.join(name);
        write_if_changed(
            &dir.join("Cargo.toml"),
            &format!(
                "[package]\nname = \"build-time-{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
                 publish = false\n\n[dependencies]\n\
                 dbscope = {{ path = \"{dbscope}\" }}\n\
                 diesel = {{ version = \"2.3\", default-features = false, features = [\"sqlite\"] }}\n"
            ),
        );
        write_if_changed(&dir.join("src/lib.rs"), &source(name));
    }
}

/// The library of crate `name`.
fn source(name: &str) -> String {
    let mut s = String::from(
        "//! Generated by benches/build_time.rs.\n#![allow(missing_docs, unused_imports)]\n\
         use dbscope::{unit_of_work, Error, SessionFactory, UnitOptions};\n\
         use diesel::prelude::*;\n\n\
         diesel::table! {\n    items (id) {\n        id -> Integer,\n        name -> Text,\n    }\n}\n\n",
    );
    for i in 0..FUNCTIONS {
        let _ = match name {
            "uow" => write!(
                s,
                "#[unit_of_work(factory = db)]\n\
                 pub fn item_{i}(db: &SessionFactory<SqliteConnection>, conn: &mut SqliteConnection, id: i32) -> Result<String, Error> {{\n    \
                     Ok(items::table.find(id + {i}).select(items::name).first(conn)?)\n}}\n\n"
            ),
            "hand" => write!(
                s,
                "pub fn item_{i}(db: &SessionFactory<SqliteConnection>, id: i32) -> Result<String, Error> {{\n    \
                     let mut conn = db.checkout()?;\n    \
                     Ok(conn.transaction(|conn| items::table.find(id + {i}).select(items::name).first(conn))?)\n}}\n\n"
            ),
            "run" => write!(
                s,
                "pub fn item_{i}(db: &SessionFactory<SqliteConnection>, id: i32) -> Result<String, Error> {{\n    \
                     const UNIT: UnitOptions = UnitOptions::new(\"item_{i}\");\n    \
                     db.run(&UNIT, |session| -> Result<String, Error> {{\n        \
                         Ok(items::table.find(id + {i}).select(items::name).first(&mut **session)?)\n    }})\n}}\n\n"
            ),
            _ => Ok(()),
        };
    }
    s
}

fn write_if_changed(path: &Path, contents: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return;
    }
    std::fs::create_dir_all(path.parent().expect("a parent dir")).expect("create dir");
    std::fs::write(path, contents).expect("write generated file");
}

/// CPU time (user + system) of this process's ended children and their
/// waited-for descendants (cargo and its rustc), on Linux.
fn children_cpu() -> Option<Duration> {
    const TICKS_PER_SECOND: u64 = 100; // USER_HZ on Linux
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces): state is field 3,
    // cutime and cstime are fields 16 and 17.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    let total = ticks(16)? + ticks(17)?;
    Some(Duration::from_millis(total * 1000 / TICKS_PER_SECOND))
}

/// Marks `path` as modified now, so cargo rebuilds its crate.
fn touch(path: &Path) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open generated lib.rs");
    file.set_modified(SystemTime::now() + Duration::from_millis(1))
        .expect("touch generated lib.rs");
}

/// `cargo build --offline` of one generated crate (or all of them).
fn build(crates: &Path, target: &Path, name: Option<&str>) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(crates)
        .args(["build", "--offline", "--quiet"])
        .env("CARGO_TARGET_DIR", target.join("target"))
        .env("CARGO_INCREMENTAL", "0")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    match name {
        Some(name) => command.args(["-p", &format!("build-time-{name}")]),
        None => command.arg("--workspace"),
    };
    let status = command.status().expect("run cargo build");
    assert!(
        status.success(),
        "cargo build of the generated crate {name:?} failed"
    );
}

//! Shared pieces of the bench harnesses: server URLs, timing, statistics and
//! the `FIGURE <name> <value>` lines CI collects.

#![allow(dead_code)] // each bench uses a different subset

use std::time::{Duration, Instant};

/// The URL in `var`, or `None` with a printed reason. Under CI a missing URL
/// is an error: the bench exits non-zero instead of skipping.
pub(crate) fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            eprintln!("{var} is not set; CI must provide it (see .ci/run)");
            std::process::exit(1);
        }
        _ => {
            println!("skipping the part of this bench that needs {var}: it is not set");
            None
        }
    }
}

/// Prints the headline line CI collects.
pub(crate) fn figure(name: &str, value: f64) {
    println!("FIGURE {name} {value:.3}");
}

/// Runs `f` and returns how long it took.
pub(crate) fn time(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

/// The median of `values` (which it sorts).
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Whether group `index` of an A/B comparison runs A first: ABBA order, so
/// neither form always runs first or always right after the other.
pub(crate) fn a_first(index: usize) -> bool {
    index % 4 == 0 || index % 4 == 3
}

/// The median of `group_times` (seconds per group of `group` units), in
/// microseconds per unit.
pub(crate) fn median_us_per_unit(group_times: &mut [f64], group: usize) -> f64 {
    median(group_times) / group as f64 * 1e6
}

/// The `p`-th percentile (0..=100) of `samples` (which it sorts), nearest rank.
pub(crate) fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

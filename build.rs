//! Sets `cfg(dbscope_all_features)` when every feature of the package is on:
//! the crate's front page (the README, whose examples need every backend) and
//! the UI tests (whose expected compiler output names every backend) depend on
//! it, and the list of features is written here once.

const FEATURES: [&str; 6] = ["sqlite", "postgres", "mysql", "tokio", "async", "serde"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(dbscope_all_features)");
    let all = FEATURES.iter().all(|feature| {
        let var = format!("CARGO_FEATURE_{}", feature.to_uppercase());
        std::env::var_os(var).is_some()
    });
    if all {
        println!("cargo::rustc-cfg=dbscope_all_features");
    }
}

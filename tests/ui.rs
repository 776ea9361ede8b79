//! Compile-pass and compile-fail tests of the macros (trybuild).
//!
//! Regenerate `.stderr` files with `TRYBUILD=overwrite cargo test --test ui --all-features`
//! and review the diff.

/// The expected compiler output names types of every backend (and rustc's
/// lists of candidate impls change with the features), so the cases run with
/// every feature on, as the test command builds them.
const ALL_FEATURES: bool = cfg!(dbscope_all_features); // set by build.rs

#[test]
fn ui() {
    if !ALL_FEATURES {
        eprintln!("skipping the UI tests: their expected output is for --all-features (run `bash scripts/test`)");
        return;
    }
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/unit_of_work/pass/*.rs");
    t.compile_fail("tests/ui/unit_of_work/fail/*.rs");
    t.pass("tests/ui/unit_of_work_async/pass/*.rs");
    t.compile_fail("tests/ui/unit_of_work_async/fail/*.rs");
    t.pass("tests/ui/checked/pass/*.rs");
    t.compile_fail("tests/ui/checked/fail/*.rs");
    t.pass("tests/ui/detach_ids/pass/*.rs");
    t.compile_fail("tests/ui/detach_ids/fail/*.rs");
    t.pass("tests/ui/detach_ids_async/pass/*.rs");
    t.compile_fail("tests/ui/detach_ids_async/fail/*.rs");
    t.compile_fail("tests/ui/session/fail/*.rs");
}

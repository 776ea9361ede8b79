//! Compile-pass and compile-fail tests of the macros (trybuild).
//!
//! Regenerate `.stderr` files with `TRYBUILD=overwrite cargo test --test ui --all-features`
//! and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/unit_of_work/pass/*.rs");
    t.compile_fail("tests/ui/unit_of_work/fail/*.rs");
    if cfg!(all(
        feature = "async",
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql"
    )) {
        t.pass("tests/ui/unit_of_work_async/pass/*.rs");
        t.compile_fail("tests/ui/unit_of_work_async/fail/*.rs");
        t.pass("tests/ui/checked/pass/*.rs");
        t.compile_fail("tests/ui/checked/fail/*.rs");
        t.pass("tests/ui/detach_ids_async/pass/*.rs");
        t.compile_fail("tests/ui/detach_ids_async/fail/*.rs");
    }
    t.pass("tests/ui/detach_ids/pass/*.rs");
    t.compile_fail("tests/ui/detach_ids/fail/*.rs");
    t.compile_fail("tests/ui/session/fail/*.rs");
}

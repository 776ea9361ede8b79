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

/// No error a user sees names the runtime crate's internal paths
/// (`dbscope_runtime::...`): every type and trait the compiler names is
/// reachable as `dbscope::...`.
#[test]
fn no_expected_error_names_an_internal_crate_path() {
    let mut offending = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("tests/ui")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("tests/ui") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "stderr") {
                let text = std::fs::read_to_string(&path).expect("stderr file");
                if text.contains("dbscope_runtime::") {
                    offending.push(path.display().to_string());
                }
            }
        }
    }
    assert!(
        offending.is_empty(),
        "expected errors name `dbscope_runtime::` paths: {offending:?}"
    );
}

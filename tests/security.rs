//! SECURITY.md names, for every threat, the tests that prove what git-pair guarantees. Those
//! names must stay true: each test it names exists (a `fn` of that name in `src/`, `tests/` or
//! `fuzz/src/`), each fuzz target it names exists in `fuzz/fuzz_targets/`, and every fuzz target
//! has its row of figures in the fuzzing table.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The backquoted names in `text`.
fn quoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

#[test]
fn every_test_and_fuzz_target_security_md_names_exists() {
    let security = fs::read_to_string(root().join("SECURITY.md")).unwrap();
    let mut files = Vec::new();
    for dir in ["src", "tests", "fuzz/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    let sources: Vec<String> = files
        .iter()
        .map(|f| fs::read_to_string(f).unwrap())
        .collect();
    let mut tests = 0;
    let mut targets = 0;
    // Table rows: | threat | they try | guarantee | proved by | figures |
    for row in security.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        if cells.len() < 5 || cells[3] == "proved by" || cells[3].starts_with("---") {
            continue;
        }
        let proved_by = cells[3];
        let (named_tests, named_targets) = match proved_by.split_once("fuzz target") {
            Some((before, after)) => (before, after),
            None => (proved_by, ""),
        };
        for name in quoted(named_tests) {
            if !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                continue;
            }
            let needle = format!("fn {name}(");
            assert!(
                sources.iter().any(|s| s.contains(&needle)),
                "SECURITY.md names the test `{name}`, which does not exist (row: {})",
                cells[0]
            );
            tests += 1;
        }
        for name in quoted(named_targets) {
            assert!(
                root()
                    .join("fuzz/fuzz_targets")
                    .join(format!("{name}.rs"))
                    .is_file(),
                "SECURITY.md names the fuzz target `{name}`, which does not exist"
            );
            targets += 1;
        }
    }
    assert!(tests > 50, "only {tests} test names found in SECURITY.md");
    assert!(
        targets >= 5,
        "only {targets} fuzz targets named as proof in SECURITY.md"
    );
    for entry in fs::read_dir(root().join("fuzz/fuzz_targets")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy();
        let row = format!("| `{name}` | ");
        assert!(
            security.lines().any(|l| l.starts_with(&row)),
            "fuzz target `{name}` has no row in SECURITY.md's fuzzing table"
        );
    }
}

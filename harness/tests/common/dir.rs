//! What a directory holds, for the tests that check what a command or a
//! writer left there: the integration tests (`#[path]` from a test file) and
//! the unit tests of `src/record/file.rs` (`#[path]` from there), which
//! cannot reach each other's modules (the harness is a binary).

use std::path::Path;

/// The names of the entries of `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

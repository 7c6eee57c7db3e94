//! Replays the fuzz seed corpus (`fuzz/corpus/<target>/`) on stable Rust
//! through the same entry points the cargo-fuzz targets call
//! (`mxdesk::fuzzing`), so every seed and every saved crash stays a
//! regression test without libFuzzer or a nightly compiler.
//!
//! Skipped: license and README files, dotfiles, and files named by a bare
//! 40-digit SHA-1, which libFuzzer adds to a corpus directory while fuzzing
//! locally (they are git-ignored and would make this test's time depend on
//! the machine's history).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read corpus directory {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("corpus directory entry").path())
        .filter(|path| path.is_file())
        .filter(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let generated = name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit());
            !(name.starts_with('.')
                || name.starts_with("LICENSE")
                || name.starts_with("README")
                || generated)
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "corpus directory {} has no seed inputs",
        dir.display()
    );
    files
}

/// Runs `entry` on every seed of `target`; reports every input that panics.
fn replay(target: &str, entry: fn(&[u8])) {
    let files = corpus_files(target);
    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path)
            .unwrap_or_else(|e| panic!("cannot read corpus file {}: {e}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| entry(&data))).is_err() {
            failures.push(path.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs panicked (see the panic messages above): {failures:#?}",
        failures.len(),
        files.len()
    );
}

#[test]
fn ingest_message_corpus() {
    replay("ingest_message", mxdesk::fuzzing::ingest_message);
}

#[test]
fn smtp_session_corpus() {
    replay("smtp_session", mxdesk::fuzzing::smtp_session);
}

#[test]
fn address_corpus() {
    replay("address", mxdesk::fuzzing::address);
}

/// The ingest seeds also go through the address target: headers are where
/// the interesting address-like strings are.
#[test]
fn ingest_seeds_through_address() {
    replay("ingest_message", mxdesk::fuzzing::address);
}

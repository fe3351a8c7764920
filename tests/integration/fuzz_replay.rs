//! Every file of every fuzz corpus (`fuzz/corpus/<target>/`) through the code its fuzz
//! target runs (`fuzz/targets/mod.rs`, shared with the cargo-fuzz binaries), as an
//! ordinary test: the seeds, what fuzzing kept, and every input that once found a bug
//! stay checked on every test run, on the stable toolchain, without libFuzzer.
//! `fuzz/README.md` says how to fuzz for longer and how a crash becomes a regression test.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

#[path = "../../fuzz/targets/mod.rs"]
mod fuzz_targets;

fn corpus_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus"))
}

/// The names in `dir` (file stems), sorted.
fn names_in(dir: PathBuf) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("an entry").path())
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

#[test]
fn every_fuzz_target_is_replayed_and_every_corpus_has_its_target() {
    let mut listed: Vec<String> = fuzz_targets::TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    // A target fuzzed but missing from TARGETS would never be replayed, and a corpus
    // without its target would never be read.
    assert_eq!(names_in(corpus_root()), listed, "fuzz/corpus/* against TARGETS");
    assert_eq!(
        names_in(corpus_root().join("../fuzz_targets")),
        listed,
        "fuzz/fuzz_targets/*.rs against TARGETS"
    );
}

#[test]
fn every_fuzz_corpus_replays_through_its_target() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (name, target) in fuzz_targets::TARGETS {
        let dir = corpus_root().join(name);
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .map(|e| e.expect("a corpus entry").path())
                .filter(|p| p.is_file())
                .collect(),
            Err(e) => panic!(
                "the corpus of fuzz target {name} is missing ({}): {e}",
                dir.display()
            ),
        };
        assert!(
            !files.is_empty(),
            "the corpus of fuzz target {name} is empty ({})",
            dir.display()
        );
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).expect("a corpus file");
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(&bytes))) {
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                failures.push(format!(
                    "fuzz/corpus/{name}/{}: {why}",
                    file.file_name().unwrap().to_string_lossy()
                ));
            }
            replayed += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {replayed} corpus files fail their fuzz target:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

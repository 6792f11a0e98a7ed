//! Replays the hostile corpus (`proto/tests/corpus/<folder>/`, see its README) through the
//! fuzzed entry points and asserts each file's expected outcome from the folder's
//! `expect.toml`: accepted, or refused with an error naming the given text. Every file needs an
//! expectation and every expectation a file, so a crash input saved by `scripts/fuzz.sh` fails
//! this test until someone says what it must do.
//!
//! `cargo test -p anefleet-proto --release --test hostile_corpus -- --ignored write_corpus`
//! regenerates the corpus files and the generated lines of `expect.toml`.

mod support;

use std::path::Path;

use support::corpus::{self, Expect};
use support::targets::{self, TARGETS};

/// At least this many hostile (not `accepted`) inputs over all folders: the security review's figure.
const MIN_HOSTILE: usize = 100;

fn replay_folder(folder: &str, run: fn(&[u8]) -> targets::Outcome) -> (usize, usize, Vec<String>) {
    let dir = corpus::root().join(folder);
    let expectations = corpus::read_expectations(&dir);
    let mut problems = Vec::new();
    let (mut files, mut hostile) = (0, 0);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "expect.toml" && !n.starts_with('.'))
        .collect();
    names.sort();
    for name in &names {
        files += 1;
        let Some(expect) = expectations.get(name) else {
            problems.push(format!("{folder}/{name}: no expectation in {folder}/expect.toml"));
            continue;
        };
        if *expect != Expect::Accepted {
            hostile += 1;
        }
        let bytes = std::fs::read(dir.join(name)).expect("read corpus file");
        let outcome = std::panic::catch_unwind(|| run(&bytes));
        let outcome = match outcome {
            Ok(o) => o,
            Err(p) => {
                let msg =
                    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                problems.push(format!("{folder}/{name}: panicked: {msg}"));
                continue;
            }
        };
        match (expect, &outcome) {
            (Expect::Accepted, Ok(())) => {}
            (Expect::Accepted, Err(e)) => problems.push(format!("{folder}/{name}: expected accepted, refused: {e}")),
            (Expect::Refused(want), Err(e)) if e.contains(want.as_str()) => {}
            (Expect::Refused(want), Err(e)) => {
                problems.push(format!("{folder}/{name}: expected refused naming {want:?}, refused with: {e}"))
            }
            (Expect::Refused(want), Ok(())) => problems.push(format!("{folder}/{name}: expected refused naming {want:?}, accepted")),
            (Expect::Gap(want), Ok(())) => eprintln!("known gap: {folder}/{name} is accepted; it should be refused naming {want:?}"),
            (Expect::Gap(want), Err(e)) if e.contains(want.as_str()) => {
                eprintln!("known gap closed: {folder}/{name} is refused ({e}); make its expectation `refused: {want}`")
            }
            (Expect::Gap(want), Err(e)) => problems.push(format!("{folder}/{name}: a known gap, refused but not naming {want:?}: {e}")),
        }
    }
    for name in expectations.keys() {
        if !names.contains(name) {
            problems.push(format!("{folder}/expect.toml: {name}: no such file"));
        }
    }
    (files, hostile, problems)
}

#[test]
fn every_corpus_file_has_its_expected_outcome() {
    let (mut files, mut hostile, mut problems) = (0, 0, Vec::new());
    for (target, folder, run) in TARGETS {
        let (f, h, p) = replay_folder(folder, *run);
        eprintln!("{target}: {f} files replayed, {h} hostile");
        assert!(f >= 20, "{folder}: only {f} corpus files");
        files += f;
        hostile += h;
        problems.extend(p);
    }
    assert!(problems.is_empty(), "{} of {files} corpus files:\n{}", problems.len(), problems.join("\n"));
    assert!(hostile >= MIN_HOSTILE, "{hostile} hostile inputs, at least {MIN_HOSTILE} wanted");
    for p in [
        "/tmp/anefleet-fuzz-evil",
        "/tmp/anefleet-fuzz-evil-absolute",
        "/tmp/anefleet-fuzz-evil-link",
        "/tmp/anefleet-fuzz-evil-long",
        "/tmp/anefleet-fuzz-evil-pax",
    ] {
        assert!(!Path::new(p).exists(), "an archive entry escaped to {p}");
    }
}

#[test]
#[ignore = "writes proto/tests/corpus: run by hand after changing the generator"]
fn write_corpus() {
    let n = corpus::write_all();
    eprintln!("wrote {n} corpus files under {}", corpus::root().display());
}

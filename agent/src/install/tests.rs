use std::path::{Path, PathBuf};

use plist::Value;

use super::*;

const SECRET: &str = "tok-3f9a1c-never-in-a-service-file";

/// A token file with the given mode, in a folder whose name has a space.
fn token_file(dir: &Path, mode: u32) -> PathBuf {
    let p = dir.join("fleet token");
    std::fs::write(&p, SECRET).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    p
}

fn service(dir: &Path, user: Option<&str>) -> Service {
    Service {
        label: DEFAULT_LABEL.into(),
        exe: "/opt/anefleet/bin/agent".into(),
        coordinator: "http://coord.lan:7070".into(),
        token_file: token_file(dir, 0o600),
        cache_dir: "/Library/Application Support/anefleet".into(),
        name: "studio m2".into(),
        tags: vec!["m2".into(), "rack \"b\"".into()],
        threads: Some(8),
        cool_below_c: Some(70.5),
        user: user.map(String::from),
    }
    .resolve()
    .unwrap()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|s| s.as_string().unwrap()).collect()
}

#[test]
fn the_launchd_plist_parses_back_with_every_key_and_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path(), Some("bench"));
    let bytes = launchd::plist_bytes(&s).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(!text.contains(SECRET), "the token must never be written into the plist:\n{text}");
    let v = Value::from_reader_xml(&bytes[..]).unwrap();
    let d = v.as_dictionary().unwrap();
    let token_path = s.token_file.to_str().unwrap();
    let want_args = [
        "/opt/anefleet/bin/agent",
        "run",
        "--coordinator",
        "http://coord.lan:7070",
        "--token-file",
        token_path,
        "--cache-dir",
        "/Library/Application Support/anefleet",
        "--name",
        "studio m2",
        "--tag",
        "m2",
        "--tag",
        "rack \"b\"",
        "--threads",
        "8",
        "--cool-below-c",
        "70.5",
    ];
    assert_eq!(strings(&d["ProgramArguments"]), want_args);
    assert_eq!(d["Label"].as_string(), Some("dev.anefleet.agent"));
    assert_eq!(d["UserName"].as_string(), Some("bench"));
    assert_eq!(d["WorkingDirectory"].as_string(), Some("/Library/Application Support/anefleet"));
    assert_eq!(d["RunAtLoad"].as_boolean(), Some(true));
    assert_eq!(d["KeepAlive"].as_boolean(), Some(true));
    assert_eq!(d["ProcessType"].as_string(), Some("Interactive"));
    assert_eq!(d["ThrottleInterval"].as_unsigned_integer(), Some(10));
    assert_eq!(d["ExitTimeOut"].as_unsigned_integer(), Some(900));
    assert_eq!(d["StandardOutPath"].as_string(), Some("/Library/Logs/anefleet/dev.anefleet.agent.log"));
    assert_eq!(d["StandardErrorPath"].as_string(), Some("/Library/Logs/anefleet/dev.anefleet.agent.log"));
    let env = d["EnvironmentVariables"].as_dictionary().unwrap();
    assert_eq!(env.len(), 1);
    assert_eq!(env["PATH"].as_string(), Some("/usr/bin:/bin:/usr/sbin:/sbin"));
    let mut keys: Vec<&str> = d.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "EnvironmentVariables",
            "ExitTimeOut",
            "KeepAlive",
            "Label",
            "ProcessType",
            "ProgramArguments",
            "RunAtLoad",
            "StandardErrorPath",
            "StandardOutPath",
            "ThrottleInterval",
            "UserName",
            "WorkingDirectory"
        ]
    );
    let root = launchd::plist(&service(dir.path(), None));
    assert!(!root.contains_key("UserName"), "without --user the daemon runs as root");
}

#[test]
fn the_systemd_unit_reads_line_by_line_with_escaped_arguments_and_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = service(dir.path(), Some("bench"));
    s.cache_dir = "/var/lib/ane fleet/100%".into();
    s.name = "lab $HOME".into();
    let unit = systemd::unit(&s);
    assert!(!unit.contains(SECRET), "the token must never be written into the unit:\n{unit}");
    let token = systemd::quote(s.token_file.to_str().unwrap());
    assert!(token.starts_with('"') && token.ends_with(" token\""), "the token file's folder has a space: {token}");
    let exec = format!(
        "ExecStart=/opt/anefleet/bin/agent run --coordinator http://coord.lan:7070 --token-file {token} \
         --cache-dir \"/var/lib/ane fleet/100%%\" --name \"lab $$HOME\" --tag m2 --tag \"rack \\\"b\\\"\" --threads 8 --cool-below-c 70.5"
    );
    let want = [
        "# Written by `agent install`; `agent uninstall --label dev.anefleet.agent` removes it.",
        "[Unit]",
        "Description=anefleet agent lab $HOME",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        &exec,
        "WorkingDirectory=/var/lib/ane fleet/100%%",
        "User=bench",
        "Restart=always",
        "RestartSec=10",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=900",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ];
    assert_eq!(unit.lines().collect::<Vec<_>>(), want);
    assert!(!systemd::unit(&service(dir.path(), None)).contains("User="));
}

#[test]
fn systemd_words_are_quoted_only_when_they_must_be() {
    assert_eq!(systemd::quote("--tag"), "--tag");
    assert_eq!(systemd::quote("http://h:7070/x,y@z"), "http://h:7070/x,y@z");
    assert_eq!(systemd::quote(""), "\"\"");
    assert_eq!(systemd::quote("two words"), "\"two words\"");
    assert_eq!(systemd::quote(r#"say "hi""#), r#""say \"hi\"""#);
    assert_eq!(systemd::quote(r"C:\dir"), r#""C:\\dir""#);
    assert_eq!(systemd::quote("it's"), "\"it's\"");
    assert_eq!(systemd::quote("50%"), "\"50%%\"");
    assert_eq!(systemd::quote("$HOME"), "\"$$HOME\"");
    assert_eq!(systemd::quote(";"), "\";\"");
}

#[test]
fn a_missing_or_world_readable_token_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-token");
    let e = check_token_file(&missing).unwrap_err().to_string();
    assert!(e.contains("does not exist") && e.contains(missing.to_str().unwrap()), "{e}");
    let e = check_token_file(dir.path()).unwrap_err().to_string();
    assert!(e.contains("does not exist"), "a folder is no token file: {e}");
    #[cfg(unix)]
    {
        let open = token_file(dir.path(), 0o644);
        let e = check_token_file(&open).unwrap_err().to_string();
        assert!(e.contains(open.to_str().unwrap()) && e.contains("readable by every user") && e.contains("644"), "{e}");
        let mut s = service(dir.path(), None);
        s.token_file = token_file(dir.path(), 0o604);
        assert!(matches!(s.resolve(), Err(InstallError::TokenFileWorldReadable { .. })));
        for mode in [0o600, 0o640, 0o400] {
            check_token_file(&token_file(dir.path(), mode)).unwrap();
        }
    }
}

#[test]
fn labels_users_and_values_that_would_escape_their_place_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for label in ["", "../evil", "a/b", ".hidden", "with space", "x;y"] {
        assert!(matches!(check_label(label), Err(InstallError::BadLabel(_))), "{label:?}");
    }
    check_label("com.example.agent-2_b").unwrap();
    let mut s = service(dir.path(), None);
    s.user = Some("root; rm".into());
    assert!(matches!(s.clone().resolve(), Err(InstallError::BadUser(_))));
    s.user = None;
    s.name = "two\nlines".into();
    assert!(matches!(s.clone().resolve(), Err(InstallError::BadValue { .. })));
    s.name = "ok".into();
    s.tags = vec!["tab\there".into()];
    assert!(matches!(s.resolve(), Err(InstallError::BadValue { .. })));
    assert!(Manager::Systemd.uninstall_plan("../../etc/passwd").is_err());
}

#[test]
fn relative_paths_become_absolute() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = service(dir.path(), None);
    s.cache_dir = "cache".into();
    let s = s.resolve().unwrap();
    assert!(s.cache_dir.is_absolute() && s.cache_dir.ends_with("cache"), "{}", s.cache_dir.display());
}

fn commands(steps: &[Step]) -> Vec<(String, bool)> {
    steps.iter().filter_map(|s| if let Step::Run { argv, may_fail } = s { Some((argv.join(" "), *may_fail)) } else { None }).collect()
}

#[test]
fn launchd_replaces_a_loaded_daemon_then_bootstraps_it_into_the_system_domain() {
    let dir = tempfile::tempdir().unwrap();
    let steps = Manager::Launchd.install_plan(&service(dir.path(), Some("bench"))).unwrap();
    let run = |c: &str, may_fail| (c.to_string(), may_fail);
    assert_eq!(
        commands(&steps),
        [
            run("chown -R bench /Library/Application Support/anefleet /Library/Logs/anefleet", false),
            run("launchctl bootout system/dev.anefleet.agent", true),
            run("launchctl enable system/dev.anefleet.agent", false),
            run("launchctl bootstrap system /Library/LaunchDaemons/dev.anefleet.agent.plist", false),
        ]
    );
    let write = steps.iter().position(|s| matches!(s, Step::Write { .. })).unwrap();
    let bootout = steps.iter().position(|s| matches!(s, Step::Run { may_fail: true, .. })).unwrap();
    assert!(bootout < write && write < steps.len() - 2, "unload, write, then load: {steps:?}");
    assert!(matches!(&steps[write], Step::Write { path, .. } if path == Path::new("/Library/LaunchDaemons/dev.anefleet.agent.plist")));
    assert!(steps.contains(&Step::CreateDir("/Library/Logs/anefleet".into())));
    let un = Manager::Launchd.uninstall_plan("x.y").unwrap();
    assert_eq!(un, [Step::try_run(&["launchctl", "bootout", "system/x.y"]), Step::Remove("/Library/LaunchDaemons/x.y.plist".into())]);
}

#[test]
fn systemd_reloads_enables_and_restarts_and_the_dry_run_shows_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path(), None);
    let steps = Manager::Systemd.install_plan(&s).unwrap();
    let cmds: Vec<String> = commands(&steps).into_iter().map(|(c, _)| c).collect();
    assert_eq!(
        cmds,
        ["systemctl daemon-reload", "systemctl enable dev.anefleet.agent.service", "systemctl restart dev.anefleet.agent.service"]
    );
    let shown = describe(&steps);
    assert!(shown.contains("cat > /etc/systemd/system/dev.anefleet.agent.service <<'EOF'\n# Written by"), "{shown}");
    assert!(shown.contains(&systemd::unit(&s)) && shown.contains("\nEOF\nsystemctl daemon-reload\n"), "{shown}");
    assert!(shown.starts_with("mkdir -p '/Library/Application Support/anefleet'\n"), "{shown}");
    let un = describe(&Manager::Systemd.uninstall_plan("a").unwrap());
    assert_eq!(un, "systemctl disable --now a.service || true\nrm -f /etc/systemd/system/a.service\nsystemctl daemon-reload\n");
}

#[test]
fn steps_are_taken_in_order_and_a_failing_command_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sub/unit.service");
    let steps = [
        Step::CreateDir(dir.path().join("sub")),
        Step::Write { path: file.clone(), contents: b"[Unit]\n".to_vec() },
        Step::try_run(&["false"]),
        Step::Remove(dir.path().join("never-there")),
    ];
    apply(&steps).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "[Unit]\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o644);
    }
    let e = apply(&[Step::run(&["sh", "-c", "echo nope >&2; exit 3"])]).unwrap_err().to_string();
    assert!(e.contains("sh -c") && e.contains("nope") && e.contains('3'), "{e}");
    apply(&[Step::Remove(file.clone())]).unwrap();
    assert!(!file.exists());
}

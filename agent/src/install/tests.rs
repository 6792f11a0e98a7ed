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
        ca_file: None,
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
fn the_daemon_trusts_the_ca_file_it_was_installed_with() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = service(dir.path(), None);
    assert!(!s.run_args().contains(&"--ca-file".to_string()));
    s.ca_file = Some("/etc/anefleet/ca.pem".into());
    let args = s.resolve().unwrap().run_args();
    let at = args.iter().position(|a| a == "--ca-file").expect("--ca-file passed on");
    assert_eq!(args[at + 1], "/etc/anefleet/ca.pem");
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
    let default = launchd::plist(&service(dir.path(), None));
    assert_eq!(default["UserName"].as_string(), Some("_anefleet"), "without --user the daemon runs as its own user");
    assert!(!default.contains_key("GroupName"), "the user's primary group is launchd's default");
    let root = launchd::plist(&service(dir.path(), Some("root")));
    assert!(!root.contains_key("UserName"), "--user root: launchd's default, no key");
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
    assert!(systemd::unit(&service(dir.path(), None)).lines().any(|l| l == "User=anefleet"), "the dedicated user by default");
    assert!(!systemd::unit(&service(dir.path(), Some("root"))).contains("User="));
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
    for user in ["root; rm", "-R", "", "a b", &"u".repeat(33)] {
        s.user = Some(user.into());
        assert!(matches!(s.clone().resolve(), Err(InstallError::BadUser(_))), "{user:?}");
    }
    s.user = Some("_anefleet".into());
    s.clone().resolve().unwrap();
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
    let s = service(dir.path(), Some("bench"));
    let token = s.token_file.to_str().unwrap();
    let steps = Manager::Launchd.install_plan(&s).unwrap();
    let run = |c: &str, may_fail| (c.to_string(), may_fail);
    assert_eq!(
        commands(&steps),
        [
            run("launchctl bootout system/dev.anefleet.agent", true),
            run("chown -R bench /Library/Application Support/anefleet /Library/Logs/anefleet", false),
            run("chmod 700 /Library/Application Support/anefleet", false),
            run(&format!("chown bench {token}"), false),
            run(&format!("chmod 600 {token}"), false),
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

/// The steps before the service file: user, folders, owners and modes.
fn hand_over_steps(steps: &[Step]) -> Vec<Step> {
    steps.iter().skip(1).take_while(|s| !matches!(s, Step::Write { .. })).cloned().collect()
}

#[test]
fn by_default_launchd_makes_the_anefleet_role_account_and_hands_it_the_cache_and_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path(), None);
    let (cache, token) = ("/Library/Application Support/anefleet", s.token_file.to_str().unwrap());
    let steps = Manager::Launchd.install_plan(&s).unwrap();
    assert_eq!(steps[0], Step::try_run(&["launchctl", "bootout", "system/dev.anefleet.agent"]), "the old daemon stops first");
    assert_eq!(
        hand_over_steps(&steps),
        [
            Step::CreateUser { name: "_anefleet".into(), home: cache.into(), tool: AccountTool::Dscl },
            Step::CreateDir(cache.into()),
            Step::CreateDir("/Library/Logs/anefleet".into()),
            Step::run(&["chown", "-R", "_anefleet", cache, "/Library/Logs/anefleet"]),
            Step::run(&["chmod", "700", cache]),
            Step::run(&["chown", "_anefleet", token]),
            Step::run(&["chmod", "600", token]),
        ]
    );
    let Step::Write { contents, .. } = &steps[8] else { panic!("the plist follows: {steps:?}") };
    let v = Value::from_reader_xml(&contents[..]).unwrap();
    assert_eq!(v.as_dictionary().unwrap()["UserName"].as_string(), Some("_anefleet"));
}

#[test]
fn the_user_flag_names_the_account_made_the_owner_and_the_service_user() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path(), Some("bench"));
    let token = s.token_file.to_str().unwrap();
    let steps = Manager::Systemd.install_plan(&s).unwrap();
    assert_eq!(
        hand_over_steps(&steps),
        [
            Step::CreateUser { name: "bench".into(), home: "/Library/Application Support/anefleet".into(), tool: AccountTool::Useradd },
            Step::CreateDir("/Library/Application Support/anefleet".into()),
            Step::run(&["chown", "-R", "bench", "/Library/Application Support/anefleet"]),
            Step::run(&["chmod", "700", "/Library/Application Support/anefleet"]),
            Step::run(&["chown", "bench", token]),
            Step::run(&["chmod", "600", token]),
        ]
    );
    assert!(systemd::unit(&s).lines().any(|l| l == "User=bench"));
    let root = service(dir.path(), Some("root"));
    let steps = Manager::Launchd.install_plan(&root).unwrap();
    assert!(!steps.iter().any(|s| matches!(s, Step::CreateUser { .. })), "root is not created: {steps:?}");
    assert!(steps.contains(&Step::run(&["chown", "-R", "root", "/Library/Application Support/anefleet", "/Library/Logs/anefleet"])));
}

/// Answers commands from a script and records them.
#[derive(Default)]
struct Fake {
    ran: Vec<String>,
    /// Output of a command line; a command not listed succeeds with no output.
    answers: Vec<(&'static str, Ran)>,
}

impl Runner for Fake {
    fn run(&mut self, argv: &[String]) -> Result<Ran, InstallError> {
        let line = argv.join(" ");
        self.ran.push(line.clone());
        Ok(self.answers.iter().find(|(c, _)| *c == line).map_or(Ran { ok: true, ..Ran::default() }, |(_, r)| r.clone()))
    }
}

fn fails() -> Ran {
    Ran { ok: false, status: "exit status: 1".into(), ..Ran::default() }
}

fn says(stdout: &str) -> Ran {
    Ran { ok: true, stdout: stdout.into(), ..Ran::default() }
}

#[test]
fn a_missing_role_account_is_made_with_dscl_at_the_lowest_free_id() {
    let home = "/Library/Application Support/anefleet";
    let step = Step::CreateUser { name: "_anefleet".into(), home: home.into(), tool: AccountTool::Dscl };
    let mut fake = Fake {
        answers: vec![
            ("id -u _anefleet", fails()),
            ("dscl . -list /Users UniqueID", says("root 0\n_www 70\n_a 200\n_b 201\nbench 501\n")),
            ("dscl . -list /Groups PrimaryGroupID", says("wheel 0\n_c 202\nstaff 20\n")),
        ],
        ..Fake::default()
    };
    apply_with(&[step], &mut fake).unwrap();
    let u = |rest: &str| format!("dscl . -create /Users/_anefleet{rest}");
    let g = |rest: &str| format!("dscl . -create /Groups/_anefleet{rest}");
    assert_eq!(
        fake.ran,
        [
            "id -u _anefleet".to_string(),
            "dscl . -list /Users UniqueID".into(),
            "dscl . -list /Groups PrimaryGroupID".into(),
            g(""),
            g(" PrimaryGroupID 203"),
            g(" Password *"),
            u(""),
            u(" UniqueID 203"),
            u(" PrimaryGroupID 203"),
            u(" UserShell /usr/bin/false"),
            u(&format!(" NFSHomeDirectory {home}")),
            u(" RealName anefleet agent"),
            u(" Password *"),
            u(" IsHidden 1"),
        ]
    );
}

#[test]
fn an_existing_user_is_left_alone_and_a_failing_account_command_is_reported() {
    let step = Step::CreateUser { name: "anefleet".into(), home: "/var/lib/anefleet".into(), tool: AccountTool::Useradd };
    let mut fake = Fake::default();
    apply_with(std::slice::from_ref(&step), &mut fake).unwrap();
    assert_eq!(fake.ran, ["id -u anefleet"], "the user exists: nothing else runs");
    let useradd = "useradd --system --user-group --no-create-home --home-dir /var/lib/anefleet --shell /usr/sbin/nologin anefleet";
    let mut fake = Fake { answers: vec![("id -u anefleet", fails())], ..Fake::default() };
    apply_with(std::slice::from_ref(&step), &mut fake).unwrap();
    assert_eq!(fake.ran, ["id -u anefleet", useradd]);
    let mut fake =
        Fake { answers: vec![("id -u anefleet", fails()), (useradd, Ran { stderr: "denied".into(), ..fails() })], ..Fake::default() };
    let e = apply_with(&[step], &mut fake).unwrap_err().to_string();
    assert_eq!(e, format!("`{useradd}` failed (exit status: 1): denied"));
}

#[test]
fn role_account_ids_skip_every_taken_id_and_keep_an_existing_group() {
    let users = "root 0\n_a 200\n_b 202\n";
    assert_eq!(launchd::account_ids(users, "g 201\n", "_x"), Some(launchd::AccountIds { uid: 203, gid: 203, new_group: true }));
    assert_eq!(launchd::account_ids(users, "_x 350\n", "_x"), Some(launchd::AccountIds { uid: 201, gid: 350, new_group: false }));
    let full: String = (200..=400).map(|i| format!("u{i} {i}\n")).collect();
    assert_eq!(launchd::account_ids(&full, "", "_x"), None);
    let mut fake = Fake { answers: vec![("id -u _x", fails()), ("dscl . -list /Users UniqueID", says(&full))], ..Fake::default() };
    let step = Step::CreateUser { name: "_x".into(), home: "/h".into(), tool: AccountTool::Dscl };
    let e = apply_with(&[step], &mut fake).unwrap_err().to_string();
    assert!(e.starts_with("no id from 200 to 400 is free for a new user `_x`"), "{e}");
}

#[test]
fn the_dry_run_shows_how_the_user_is_made() {
    let useradd = Step::CreateUser { name: "anefleet".into(), home: "/var/lib/ane fleet".into(), tool: AccountTool::Useradd };
    assert_eq!(
        describe(&[useradd]),
        "id -u anefleet >/dev/null 2>&1 || useradd --system --user-group --no-create-home --home-dir '/var/lib/ane fleet' --shell /usr/sbin/nologin anefleet\n"
    );
    let dscl = describe(&[Step::CreateUser { name: "_anefleet".into(), home: "/h".into(), tool: AccountTool::Dscl }]);
    assert!(dscl.lines().all(|l| l.starts_with('#')), "ids are chosen when it runs: shown as comments\n{dscl}");
    assert!(dscl.contains("#   dscl . -create /Users/_anefleet UniqueID ID\n"), "{dscl}");
    assert_eq!(dscl.lines().count(), 12, "{dscl}");
}

#[test]
fn systemd_reloads_enables_and_restarts_and_the_dry_run_shows_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path(), None);
    let steps = Manager::Systemd.install_plan(&s).unwrap();
    let cmds: Vec<String> = commands(&steps).into_iter().map(|(c, _)| c).collect();
    let token = s.token_file.to_str().unwrap();
    assert_eq!(
        cmds,
        [
            "systemctl stop dev.anefleet.agent.service".to_string(),
            "chown -R anefleet /Library/Application Support/anefleet".into(),
            "chmod 700 /Library/Application Support/anefleet".into(),
            format!("chown anefleet {token}"),
            format!("chmod 600 {token}"),
            "systemctl daemon-reload".into(),
            "systemctl enable dev.anefleet.agent.service".into(),
            "systemctl restart dev.anefleet.agent.service".into(),
        ]
    );
    let shown = describe(&steps);
    assert!(shown.contains("cat > /etc/systemd/system/dev.anefleet.agent.service <<'EOF'\n# Written by"), "{shown}");
    assert!(shown.contains(&systemd::unit(&s)) && shown.contains("\nEOF\nsystemctl daemon-reload\n"), "{shown}");
    assert!(
        shown.starts_with(
            "systemctl stop dev.anefleet.agent.service || true\nid -u anefleet >/dev/null 2>&1 || useradd --system --user-group \
             --no-create-home --home-dir '/Library/Application Support/anefleet' --shell /usr/sbin/nologin anefleet\n\
             mkdir -p '/Library/Application Support/anefleet'\n"
        ),
        "{shown}"
    );
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

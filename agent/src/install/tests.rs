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
        ]
    );
    let at = |f: &dyn Fn(&Step) -> bool| steps.iter().position(f).unwrap_or_else(|| panic!("missing from {steps:?}"));
    let bootout = at(&|s| matches!(s, Step::Run { may_fail: true, .. }));
    let wait = at(&|s| matches!(s, Step::WaitGone { .. }));
    let chown = at(&|s| matches!(s, Step::Run { argv, .. } if argv[0] == "chown"));
    let write = at(&|s| matches!(s, Step::Write { .. }));
    assert!(
        steps[..bootout].iter().all(|s| matches!(s, Step::CreateUser { .. } | Step::Check(_))),
        "only the user and the checks come before the old daemon stops: {steps:?}"
    );
    assert_eq!((wait, chown), (bootout + 1, bootout + 4), "stop, wait until launchd lets go, then hand over: {steps:?}");
    assert_eq!(
        steps[wait],
        Step::WaitGone {
            argv: ["launchctl", "print", "system/dev.anefleet.agent"].map(String::from).to_vec(),
            what: "launchd's system/dev.anefleet.agent".into(),
            timeout_s: 960,
        },
        "bounded by ExitTimeOut and a margin"
    );
    assert!(chown < write && write == steps.len() - 3, "hand over, write, then load: {steps:?}");
    assert!(matches!(&steps[write], Step::Write { path, .. } if path == Path::new("/Library/LaunchDaemons/dev.anefleet.agent.plist")));
    assert_eq!(
        steps.last(),
        Some(&Step::Retry {
            argv: ["launchctl", "bootstrap", "system", "/Library/LaunchDaemons/dev.anefleet.agent.plist"].map(String::from).to_vec(),
            transient: vec!["5: Input/output error".into(), "37: Operation already in progress".into()],
            pauses_s: vec![1, 2, 4, 8],
        })
    );
    assert!(steps.contains(&Step::CreateDir("/Library/Logs/anefleet".into())));
    let un = Manager::Launchd.uninstall_plan("x.y").unwrap();
    assert_eq!(un, [Step::try_run(&["launchctl", "bootout", "system/x.y"]), Step::Remove("/Library/LaunchDaemons/x.y.plist".into())]);
}

/// The steps that hand the daemon's user its files: after the old daemon stopped (and launchd
/// let go of it), before the service file.
fn hand_over_steps(steps: &[Step]) -> Vec<Step> {
    let stopped = steps.iter().rposition(|s| matches!(s, Step::WaitGone { .. } | Step::Run { may_fail: true, .. })).unwrap();
    steps[stopped + 1..].iter().take_while(|s| !matches!(s, Step::Write { .. })).cloned().collect()
}

/// The steps before the old daemon stops: the user and the checks.
fn before_stop(steps: &[Step]) -> Vec<Step> {
    steps.iter().take_while(|s| !matches!(s, Step::Run { .. })).cloned().collect()
}

#[test]
fn by_default_launchd_makes_the_anefleet_role_account_and_hands_it_the_cache_and_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path(), None);
    let (cache, token) = ("/Library/Application Support/anefleet", s.token_file.to_str().unwrap());
    let steps = Manager::Launchd.install_plan(&s).unwrap();
    assert_eq!(steps[0], Step::CreateUser { name: "_anefleet".into(), home: cache.into(), tool: AccountTool::Dscl });
    assert_eq!(
        hand_over_steps(&steps),
        [
            Step::CreateDir(cache.into()),
            Step::CreateDir("/Library/Logs/anefleet".into()),
            Step::run(&["chown", "-R", "_anefleet", cache, "/Library/Logs/anefleet"]),
            Step::run(&["chmod", "700", cache]),
            Step::run(&["chown", "_anefleet", token]),
            Step::run(&["chmod", "600", token]),
        ]
    );
    let Some(Step::Write { contents, .. }) = steps.iter().find(|s| matches!(s, Step::Write { .. })) else { panic!("a plist: {steps:?}") };
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
        steps[0],
        Step::CreateUser { name: "bench".into(), home: "/Library/Application Support/anefleet".into(), tool: AccountTool::Useradd }
    );
    assert_eq!(
        hand_over_steps(&steps),
        [
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
    assert_eq!(
        before_stop(&steps),
        [Step::Check(Check::TokenOwner { path: root.token_file.clone(), user: "root".into() })],
        "root reaches everything: only the token's owner is checked"
    );
    assert!(steps.contains(&Step::run(&["chown", "-R", "root", "/Library/Application Support/anefleet", "/Library/Logs/anefleet"])));
}

#[test]
fn the_daemons_user_must_reach_its_binary_token_and_ca_before_anything_changes_hands() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = service(dir.path(), Some("bench"));
    s.ca_file = Some("/Users/me/fleet/tls/ca.pem".into());
    let (token, folder) = (s.token_file.clone(), dir.path().to_str().unwrap().to_string());
    let reaches = |what, argv: &[&str], path: &Path| {
        Step::Check(Check::Reaches { user: "bench".into(), what, path: path.into(), argv: argv.iter().map(|a| a.to_string()).collect() })
    };
    let ca = Path::new("/Users/me/fleet/tls/ca.pem");
    let exe = Path::new("/opt/anefleet/bin/agent");
    let owner = Step::Check(Check::TokenOwner { path: token.clone(), user: "bench".into() });
    let steps = Manager::Launchd.install_plan(&s).unwrap();
    assert_eq!(
        before_stop(&steps)[1..],
        [
            reaches(Reached::Binary, &["sudo", "-n", "-u", "bench", "test", "-x", "/opt/anefleet/bin/agent"], exe),
            reaches(Reached::TokenFolder, &["sudo", "-n", "-u", "bench", "test", "-x", &folder], &token),
            reaches(Reached::CaFile, &["sudo", "-n", "-u", "bench", "test", "-r", "/Users/me/fleet/tls/ca.pem"], ca),
            owner.clone(),
        ]
    );
    let steps = Manager::Systemd.install_plan(&s).unwrap();
    assert_eq!(
        before_stop(&steps)[1..],
        [
            reaches(Reached::Binary, &["runuser", "-u", "bench", "--", "test", "-x", "/opt/anefleet/bin/agent"], exe),
            reaches(Reached::TokenFolder, &["runuser", "-u", "bench", "--", "test", "-x", &folder], &token),
            reaches(Reached::CaFile, &["runuser", "-u", "bench", "--", "test", "-r", "/Users/me/fleet/tls/ca.pem"], ca),
            owner,
        ]
    );

    // A CA file under a closed home: the install stops at its check, before the old daemon
    // stops, naming the file, the user and where to put it.
    let check = format!("sudo -n -u bench test -r {}", ca.display());
    let mut fake = Fake { answers: vec![(&check, fails())], ..Fake::default() };
    let steps = Manager::Launchd.install_plan(&s).unwrap();
    let e = apply_with(&steps, &mut fake).unwrap_err().to_string();
    assert!(matches!(
        apply_with(&steps, &mut Fake { answers: vec![(&check, fails())], ..Fake::default() }),
        Err(InstallError::Unreachable { .. })
    ));
    assert!(e.contains("`bench` cannot read the CA file /Users/me/fleet/tls/ca.pem"), "{e}");
    assert!(
        e.contains("sudo install -m 644 /Users/me/fleet/tls/ca.pem /etc/anefleet/ca.pem") && e.contains("--ca-file /etc/anefleet/ca.pem"),
        "{e}"
    );
    assert!(!fake.ran.iter().any(|c| c.starts_with("launchctl") || c.starts_with("chown")), "nothing changed: {:?}", fake.ran);

    let binary = "sudo -n -u bench test -x /opt/anefleet/bin/agent";
    let e = apply_with(
        &steps,
        &mut Fake { answers: vec![(binary, Ran { stderr: "sudo: unknown user bench".into(), ..fails() })], ..Fake::default() },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("cannot run the agent binary /opt/anefleet/bin/agent (sudo: unknown user bench)") && e.contains("/usr/local/bin/agent"),
        "{e}"
    );
    let e = apply_with(&steps, &mut Fake { answers: vec![(&format!("sudo -n -u bench test -x {folder}"), fails())], ..Fake::default() })
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("cannot reach (search every folder above) the token file {}", token.display())), "{e}");
    assert!(e.contains("/etc/anefleet/token"), "{e}");
}

#[test]
#[cfg(unix)]
fn a_token_file_of_another_user_is_not_taken_from_them() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path(), Some("bench"));
    let owner = Step::Check(Check::TokenOwner { path: s.token_file.clone(), user: "bench".into() });
    let check = |uid_of_bench: u32| {
        let answer = says(&format!("{uid_of_bench}\n"));
        apply_with(std::slice::from_ref(&owner), &mut Fake { answers: vec![("id -u bench", answer)], ..Fake::default() })
    };
    let mut mine = std::fs::metadata(&s.token_file).unwrap().uid();
    // Already the daemon's user's: nothing is taken from anyone.
    check(mine).unwrap();
    if mine == 0 {
        // Root's: put there by an administrator, handed over whoever `bench` is.
        check(4242).unwrap();
        // As root, the file can be given to someone else to see the refusal.
        std::os::unix::fs::chown(&s.token_file, Some(4343), None).unwrap();
        mine = 4343;
    }
    let e = check(mine + 1).unwrap_err().to_string();
    let path = s.token_file.display();
    assert!(e.starts_with(&format!("token file {path} belongs to uid {mine}, not to root or to the daemon's user `bench`")), "{e}");
    assert!(e.contains(&format!("sudo install -m 600 {path} /etc/anefleet/token")) && e.contains("DATA_DIR/token"), "{e}");
    // A user that does not exist (a dry run's plan taken by hand) owns nothing.
    let missing = apply_with(&[owner], &mut Fake { answers: vec![("id -u bench", fails())], ..Fake::default() });
    assert!(matches!(missing, Err(InstallError::TokenFileNotOurs { .. })));
}

/// Answers commands from a script, records them, and keeps a clock that only its sleeps move.
#[derive(Default)]
struct Fake<'a> {
    ran: Vec<String>,
    /// Output of a command line; a command not listed succeeds with no output.
    answers: Vec<(&'a str, Ran)>,
    /// Outputs of a command line, one per run, taken before `answers`.
    queued: Vec<(&'a str, std::collections::VecDeque<Ran>)>,
    clock: std::time::Duration,
    slept: Vec<u64>,
    said: Vec<String>,
}

impl Runner for Fake<'_> {
    fn run(&mut self, argv: &[String]) -> Result<Ran, InstallError> {
        let line = argv.join(" ");
        self.ran.push(line.clone());
        if let Some(next) = self.queued.iter_mut().find(|(c, _)| *c == line).and_then(|(_, q)| q.pop_front()) {
            return Ok(next);
        }
        Ok(self.answers.iter().find(|(c, _)| *c == line).map_or(Ran { ok: true, ..Ran::default() }, |(_, r)| r.clone()))
    }

    fn sleep(&mut self, d: std::time::Duration) {
        self.clock += d;
        self.slept.push(d.as_secs());
    }

    fn now(&mut self) -> std::time::Duration {
        self.clock
    }

    fn say(&mut self, message: &str) {
        self.said.push(message.to_string());
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
    let (quoted, folder) = (steps::sh_quote(token), steps::sh_quote(dir.path().to_str().unwrap()));
    assert!(
        shown.starts_with(&format!(
            "id -u anefleet >/dev/null 2>&1 || useradd --system --user-group \
             --no-create-home --home-dir '/Library/Application Support/anefleet' --shell /usr/sbin/nologin anefleet\n\
             runuser -u anefleet -- test -x /opt/anefleet/bin/agent || exit 1  # anefleet must run the agent binary /opt/anefleet/bin/agent\n\
             runuser -u anefleet -- test -x {folder} || exit 1  # anefleet must reach the token file {quoted}\n\
             # {quoted} must belong to root or to anefleet (it is handed over to anefleet, and taken from no one else)\n\
             systemctl stop dev.anefleet.agent.service || true\n\
             mkdir -p '/Library/Application Support/anefleet'\n"
        )),
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

/// The launchctl steps of a launchd install for `bench` (the rest writes to /Library).
fn launchctl_steps(dir: &Path) -> Vec<Step> {
    let steps = Manager::Launchd.install_plan(&service(dir, Some("bench"))).unwrap();
    steps
        .into_iter()
        .filter(|s| match s {
            Step::WaitGone { .. } | Step::Retry { .. } => true,
            Step::Run { argv, .. } => argv[0] == "launchctl",
            _ => false,
        })
        .collect()
}

const PRINT: &str = "launchctl print system/dev.anefleet.agent";
const BOOTSTRAP: &str = "launchctl bootstrap system /Library/LaunchDaemons/dev.anefleet.agent.plist";

fn bootstrap_fails(code: u32, text: &str) -> Ran {
    Ran { ok: false, status: format!("exit status: {code}"), stderr: format!("Bootstrap failed: {code}: {text}"), ..Ran::default() }
}

#[test]
fn a_reinstall_waits_until_launchd_lets_go_of_the_old_daemon_then_bootstraps() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake { queued: vec![(PRINT, [says("state = running"), says("state = running"), fails()].into())], ..Fake::default() };
    apply_with(&launchctl_steps(dir.path()), &mut fake).unwrap();
    assert_eq!(
        fake.ran,
        ["launchctl bootout system/dev.anefleet.agent", PRINT, PRINT, PRINT, "launchctl enable system/dev.anefleet.agent", BOOTSTRAP]
    );
    assert_eq!(fake.slept, [1, 1], "one poll a second, on the fake's clock");
    assert_eq!(
        fake.said,
        [
            format!(
                "waiting until launchd's system/dev.anefleet.agent is gone: a running cell finishes first (at most 960 s; `{PRINT}` shows it)"
            ),
            "launchd's system/dev.anefleet.agent is gone (2 s)".into(),
        ]
    );
    // Nothing loaded: no wait, no word.
    let mut fake = Fake { answers: vec![(PRINT, fails())], ..Fake::default() };
    apply_with(&launchctl_steps(dir.path()), &mut fake).unwrap();
    assert!(fake.slept.is_empty() && fake.said.is_empty(), "{:?} {:?}", fake.slept, fake.said);
}

#[test]
fn bootstrap_is_tried_again_while_launchd_answers_5_or_37_and_not_on_other_errors() {
    let dir = tempfile::tempdir().unwrap();
    let queued = [bootstrap_fails(5, "Input/output error"), bootstrap_fails(37, "Operation already in progress")];
    let mut fake = Fake { answers: vec![(PRINT, fails())], queued: vec![(BOOTSTRAP, queued.into())], ..Fake::default() };
    apply_with(&launchctl_steps(dir.path()), &mut fake).unwrap();
    assert_eq!(fake.ran.iter().filter(|c| *c == BOOTSTRAP).count(), 3, "{:?}", fake.ran);
    assert_eq!(fake.slept, [1, 2], "backing off");
    assert!(
        fake.said[0].contains("Bootstrap failed: 5: Input/output error") && fake.said[0].ends_with("trying again in 1 s"),
        "{:?}",
        fake.said
    );

    let denied = bootstrap_fails(119, "Service is disabled");
    let mut fake = Fake { answers: vec![(PRINT, fails()), (BOOTSTRAP, denied)], ..Fake::default() };
    let e = apply_with(&launchctl_steps(dir.path()), &mut fake).unwrap_err();
    assert!(matches!(e, InstallError::CommandFailed { .. }), "{e}");
    assert_eq!(fake.ran.last().map(String::as_str), Some(BOOTSTRAP));
    assert!(fake.slept.is_empty(), "another error is no reason to wait");
}

#[test]
fn a_reinstall_gives_up_with_a_clear_error_after_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    // launchd never lets go: at most ExitTimeOut and the margin, on the fake's clock.
    let mut fake = Fake::default();
    let e = apply_with(&launchctl_steps(dir.path()), &mut fake).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "launchd's system/dev.anefleet.agent was still there after 960 s (`{PRINT}` finds it): the old daemon has not stopped; \
             wait for its cell to end, or stop it, then install again"
        )
    );
    assert_eq!(fake.slept.iter().sum::<u64>(), 960);
    assert!(!fake.ran.iter().any(|c| c == BOOTSTRAP), "no bootstrap after giving up");
    assert_eq!(fake.said.len(), 32, "a word at the start and every 30 s: {:?}", fake.said);
    assert_eq!(fake.said[1], "still waiting until launchd's system/dev.anefleet.agent is gone: 30 s of at most 960 s");

    // bootstrap keeps failing with 5: five tries, then an error that says so.
    let mut fake = Fake { answers: vec![(PRINT, fails()), (BOOTSTRAP, bootstrap_fails(5, "Input/output error"))], ..Fake::default() };
    let e = apply_with(&launchctl_steps(dir.path()), &mut fake).unwrap_err().to_string();
    assert_eq!(e, format!("`{BOOTSTRAP}` still failed after 5 tries (exit status: 5): Bootstrap failed: 5: Input/output error"));
    assert_eq!(fake.slept, [1, 2, 4, 8]);
}

#[test]
fn the_dry_run_shows_the_wait_and_the_retries_as_shell() {
    let dir = tempfile::tempdir().unwrap();
    let shown = describe(&launchctl_steps(dir.path()));
    assert!(
        shown.contains(&format!(
            "# waits until launchd's system/dev.anefleet.agent is gone (at most 960 s)\nwhile {PRINT} >/dev/null 2>&1; do sleep 1; done\n"
        )),
        "{shown}"
    );
    assert!(
        shown.ends_with(&format!(
            "# tried again after 1, 2, 4, 8 s while it fails with '5: Input/output error' or '37: Operation already in progress'\n\
             for pause in 1 2 4 8 end; do {BOOTSTRAP} && break; [ $pause = end ] && exit 1; sleep $pause; done\n"
        )),
        "{shown}"
    );
}

//! What `install` and `uninstall` do, as data: printed by `--dry-run`, taken otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{InstallError, launchd, systemd};

/// How often [`Step::WaitGone`] asks again.
pub const POLL: Duration = Duration::from_secs(1);
/// How often [`Step::WaitGone`] says it is still waiting.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    CreateDir(PathBuf),
    /// Written whole (a temporary file renamed over it), mode 0644, owned by whoever runs it.
    Write {
        path: PathBuf,
        contents: Vec<u8>,
    },
    /// Removed if it is there.
    Remove(PathBuf),
    /// A command; `may_fail` where failing only means there was nothing to undo.
    Run {
        argv: Vec<String>,
        may_fail: bool,
    },
    /// The system account the daemon runs as, created unless `id -u NAME` finds it; its home is
    /// the cache dir.
    CreateUser {
        name: String,
        home: PathBuf,
        tool: AccountTool,
    },
    /// Stops the install unless it holds; changes nothing.
    Check(Check),
    /// Runs `argv` every [`POLL`] until it fails (what it asks about is gone), for at most
    /// `timeout_s`, saying every [`PROGRESS_EVERY`] that it still waits; then an error.
    WaitGone {
        argv: Vec<String>,
        /// What `argv` finds while it succeeds, for the messages: "launchd's system/LABEL".
        what: String,
        timeout_s: u32,
    },
    /// A command that may fail for a while for a passing reason: while its stderr holds one of
    /// `transient`, it runs again after each pause of `pauses_s` in turn (so `pauses_s.len() + 1`
    /// tries at most); any other failure, or the last, is an error.
    Retry {
        argv: Vec<String>,
        transient: Vec<String>,
        pauses_s: Vec<u32>,
    },
}

/// What [`Step::Check`] makes sure of before anything changes hands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `argv` (`test -r`/`-x`, run as `user`: `sudo -n -u` on macOS, `runuser -u` on Linux)
    /// succeeds: the daemon's user reaches `path`, every folder above it included.
    Reaches { user: String, what: Reached, path: PathBuf, argv: Vec<String> },
    /// The token file belongs to root or to `user` already (the rule is [`super::checks`]'s).
    TokenOwner { path: PathBuf, user: String },
}

/// Which file [`Check::Reaches`] is about (for its message and its fix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// The agent binary, run (`test -x`).
    Binary,
    /// The token file's folder, searched (`test -x`): the file itself becomes the user's.
    TokenFolder,
    /// The CA file, read (`test -r`).
    CaFile,
}

/// How a system account is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountTool {
    /// macOS: `dscl`, a hidden role account with a group of its name (see [`super::launchd::new_account`]).
    Dscl,
    /// Linux: `useradd --system --user-group`.
    Useradd,
}

/// What a command did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ran {
    pub ok: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the commands of the steps and keeps their time: [`System`] on this machine, a fake that
/// records them (and only pretends to sleep) in tests.
pub trait Runner {
    fn run(&mut self, argv: &[String]) -> Result<Ran, InstallError>;
    /// Waits `d`.
    fn sleep(&mut self, d: Duration);
    /// Monotonic time since some fixed moment.
    fn now(&mut self) -> Duration;
    /// Tells the person installing how a long step is going.
    fn say(&mut self, message: &str);
}

/// This machine's commands.
pub struct System;

impl Runner for System {
    fn run(&mut self, argv: &[String]) -> Result<Ran, InstallError> {
        let command = argv.join(" ");
        let Some((program, args)) = argv.split_first() else { return Ok(Ran { ok: true, ..Ran::default() }) };
        let out = Command::new(program).args(args).output().map_err(|source| InstallError::CommandMissing { command, source })?;
        Ok(Ran {
            ok: out.status.success(),
            status: out.status.to_string(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }

    fn now(&mut self) -> Duration {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }

    fn say(&mut self, message: &str) {
        eprintln!("{message}");
    }
}

impl Step {
    pub fn run(argv: &[&str]) -> Step {
        Step::Run { argv: words(argv), may_fail: false }
    }

    pub fn try_run(argv: &[&str]) -> Step {
        Step::Run { argv: words(argv), may_fail: true }
    }
}

/// The steps as a reader (or `sh`) would take them: files in full, commands quoted for a shell.
pub fn describe(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::CreateDir(p) => out.push_str(&format!("mkdir -p {}\n", sh_quote(&p.to_string_lossy()))),
            Step::Write { path, contents } => {
                let text = String::from_utf8_lossy(contents);
                out.push_str(&format!("cat > {} <<'EOF'\n{}{}EOF\n", sh_quote(&path.to_string_lossy()), text, newline_after(&text)));
            }
            Step::Remove(p) => out.push_str(&format!("rm -f {}\n", sh_quote(&p.to_string_lossy()))),
            Step::Run { argv, may_fail } => {
                out.push_str(&sh_line(argv));
                out.push_str(if *may_fail { " || true\n" } else { "\n" });
            }
            Step::CreateUser { name, home, tool } => out.push_str(&describe_user(name, home, *tool)),
            Step::Check(Check::Reaches { user, what, path, argv }) => {
                let need = match what {
                    Reached::Binary => "run the agent binary",
                    Reached::TokenFolder => "reach the token file",
                    Reached::CaFile => "read the CA file",
                };
                out.push_str(&format!("{} || exit 1  # {user} must {need} {}\n", sh_line(argv), sh_quote(&path.to_string_lossy())));
            }
            Step::Check(Check::TokenOwner { path, user }) => out.push_str(&format!(
                "# {} must belong to root or to {user} (it is handed over to {user}, and taken from no one else)\n",
                sh_quote(&path.to_string_lossy())
            )),
            Step::WaitGone { argv, what, timeout_s } => out.push_str(&format!(
                "# waits until {what} is gone (at most {timeout_s} s)\nwhile {} >/dev/null 2>&1; do sleep {}; done\n",
                sh_line(argv),
                POLL.as_secs()
            )),
            Step::Retry { argv, transient, pauses_s } => {
                let pauses: Vec<String> = pauses_s.iter().map(u32::to_string).collect();
                let quoted: Vec<String> = transient.iter().map(|t| sh_quote(t)).collect();
                out.push_str(&format!(
                    "# tried again after {} s while it fails with {}\nfor pause in {} end; do {} && break; [ $pause = end ] && exit 1; sleep $pause; done\n",
                    pauses.join(", "),
                    quoted.join(" or "),
                    pauses.join(" "),
                    sh_line(argv)
                ));
            }
        }
    }
    out
}

fn sh_line(argv: &[String]) -> String {
    argv.iter().map(|a| sh_quote(a)).collect::<Vec<_>>().join(" ")
}

/// `useradd` as one line; the `dscl` commands as comments, their ids being chosen when run.
fn describe_user(name: &str, home: &Path, tool: AccountTool) -> String {
    let exists = format!("id -u {} >/dev/null 2>&1", sh_quote(name));
    match tool {
        AccountTool::Useradd => format!("{exists} || {}\n", sh_line(&systemd::useradd(name, home))),
        AccountTool::Dscl => {
            let mut out = format!(
                "# unless `{exists}`: ID is the lowest id from {} to {} that no user and no group has\n",
                launchd::ROLE_IDS.start(),
                launchd::ROLE_IDS.end()
            );
            for argv in launchd::dscl_commands(name, home, "ID", "ID", true) {
                out.push_str(&format!("#   {}\n", sh_line(&argv)));
            }
            out
        }
    }
}

fn newline_after(text: &str) -> &'static str {
    if text.ends_with('\n') { "" } else { "\n" }
}

/// Single quotes unless the word needs none.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:=,@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Takes the steps in order; stops at the first that fails.
pub fn apply(steps: &[Step]) -> Result<(), InstallError> {
    apply_with(steps, &mut System)
}

/// [`apply`] with the commands run by `runner`.
pub fn apply_with(steps: &[Step], runner: &mut dyn Runner) -> Result<(), InstallError> {
    for step in steps {
        match step {
            Step::CreateDir(p) => std::fs::create_dir_all(p).map_err(io("creating", p))?,
            Step::Write { path, contents } => write(path, contents)?,
            Step::Remove(p) => match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("removing", p)(e)),
                _ => {}
            },
            Step::Run { argv, may_fail } => {
                checked(runner, argv, *may_fail)?;
            }
            Step::CreateUser { name, home, tool } => create_user(runner, name, home, *tool)?,
            Step::Check(check) => self::check(runner, check)?,
            Step::WaitGone { argv, what, timeout_s } => wait_gone(runner, argv, what, Duration::from_secs((*timeout_s).into()))?,
            Step::Retry { argv, transient, pauses_s } => retry(runner, argv, transient, pauses_s)?,
        }
    }
    Ok(())
}

fn check(runner: &mut dyn Runner, check: &Check) -> Result<(), InstallError> {
    match check {
        Check::Reaches { user, what, path, argv } => {
            let ran = runner.run(argv)?;
            if ran.ok {
                return Ok(());
            }
            Err(InstallError::Unreachable { user: user.clone(), what: *what, path: path.clone(), said: ran.stderr })
        }
        Check::TokenOwner { path, user } => {
            let owner = owner_uid(path)?;
            if owner == 0 {
                return Ok(());
            }
            // The user exists by now (its step came first) unless the install is a dry run's.
            let uid = runner.run(&words(&["id", "-u", user]))?;
            if uid.ok && uid.stdout.trim().parse::<u32>().ok() == Some(owner) {
                return Ok(());
            }
            Err(InstallError::TokenFileNotOurs { path: path.clone(), owner, user: user.clone() })
        }
    }
}

#[cfg(unix)]
fn owner_uid(path: &Path) -> Result<u32, InstallError> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path).map_err(io("reading token file", path))?.uid())
}

#[cfg(not(unix))]
fn owner_uid(_: &Path) -> Result<u32, InstallError> {
    Ok(0)
}

/// Asks `argv` every [`POLL`] until it fails, for at most `timeout`.
fn wait_gone(runner: &mut dyn Runner, argv: &[String], what: &str, timeout: Duration) -> Result<(), InstallError> {
    let start = runner.now();
    // When to say something next (time waited); `None` until the first time.
    let mut next_word: Option<Duration> = None;
    loop {
        let present = runner.run(argv)?.ok;
        let waited = runner.now().saturating_sub(start);
        if !present {
            if next_word.is_some() {
                runner.say(&format!("{what} is gone ({} s)", waited.as_secs()));
            }
            return Ok(());
        }
        if waited >= timeout {
            return Err(InstallError::StillThere { what: what.to_string(), command: argv.join(" "), waited_s: waited.as_secs() });
        }
        match next_word {
            None => runner.say(&format!(
                "waiting until {what} is gone: a running cell finishes first (at most {} s; `{}` shows it)",
                timeout.as_secs(),
                argv.join(" ")
            )),
            Some(at) if waited >= at => {
                runner.say(&format!("still waiting until {what} is gone: {} s of at most {} s", waited.as_secs(), timeout.as_secs()))
            }
            Some(_) => {}
        }
        if next_word.is_none_or(|at| waited >= at) {
            next_word = Some(waited + PROGRESS_EVERY);
        }
        runner.sleep(POLL.min(timeout - waited));
    }
}

/// Runs `argv`, again after each pause while it fails with one of the `transient` messages.
fn retry(runner: &mut dyn Runner, argv: &[String], transient: &[String], pauses_s: &[u32]) -> Result<(), InstallError> {
    let mut pauses = pauses_s.iter();
    let mut tries = 1;
    loop {
        let ran = runner.run(argv)?;
        if ran.ok {
            return Ok(());
        }
        let passing = transient.iter().any(|t| ran.stderr.contains(t.as_str()));
        match pauses.next() {
            Some(&pause) if passing => {
                runner.say(&format!("`{}` failed ({}); trying again in {pause} s", argv.join(" "), ran.stderr));
                runner.sleep(Duration::from_secs(pause.into()));
                tries += 1;
            }
            _ if passing && tries > 1 => {
                return Err(InstallError::GaveUp { command: argv.join(" "), tries, status: ran.status, stderr: ran.stderr });
            }
            _ => return Err(InstallError::CommandFailed { command: argv.join(" "), status: ran.status, stderr: ran.stderr }),
        }
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InstallError {
    let path = path.to_path_buf();
    move |source| InstallError::Io { what, path, source }
}

fn write(path: &Path, contents: &[u8]) -> Result<(), InstallError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, contents).map_err(io("writing", &tmp))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).map_err(io("setting the mode of", &tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io("writing", path))
}

/// Runs a command; its failure is an error unless `may_fail`.
pub(super) fn checked(runner: &mut dyn Runner, argv: &[String], may_fail: bool) -> Result<Ran, InstallError> {
    let ran = runner.run(argv)?;
    if ran.ok || may_fail {
        return Ok(ran);
    }
    Err(InstallError::CommandFailed { command: argv.join(" "), status: ran.status, stderr: ran.stderr })
}

fn create_user(runner: &mut dyn Runner, name: &str, home: &Path, tool: AccountTool) -> Result<(), InstallError> {
    if runner.run(&words(&["id", "-u", name]))?.ok {
        tracing::info!(user = name, "the daemon's user exists");
        return Ok(());
    }
    let commands = match tool {
        AccountTool::Useradd => vec![systemd::useradd(name, home)],
        AccountTool::Dscl => launchd::new_account(runner, name, home)?,
    };
    for argv in commands {
        checked(runner, &argv, false)?;
    }
    tracing::info!(user = name, "created the daemon's user");
    Ok(())
}

pub(super) fn words(argv: &[&str]) -> Vec<String> {
    argv.iter().map(|s| s.to_string()).collect()
}

//! What `install` and `uninstall` do, as data: printed by `--dry-run`, taken otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{InstallError, launchd, systemd};

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

/// Runs the commands of the steps: [`System`] on this machine, a fake that records them in tests.
pub trait Runner {
    fn run(&mut self, argv: &[String]) -> Result<Ran, InstallError>;
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
        }
    }
    Ok(())
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

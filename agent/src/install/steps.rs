//! What `install` and `uninstall` do, as data: printed by `--dry-run`, taken otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::InstallError;

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
}

impl Step {
    pub fn run(argv: &[&str]) -> Step {
        Step::Run { argv: argv.iter().map(|s| s.to_string()).collect(), may_fail: false }
    }

    pub fn try_run(argv: &[&str]) -> Step {
        Step::Run { argv: argv.iter().map(|s| s.to_string()).collect(), may_fail: true }
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
                let line = argv.iter().map(|a| sh_quote(a)).collect::<Vec<_>>().join(" ");
                out.push_str(&line);
                out.push_str(if *may_fail { " || true\n" } else { "\n" });
            }
        }
    }
    out
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
    for step in steps {
        match step {
            Step::CreateDir(p) => std::fs::create_dir_all(p).map_err(io("creating", p))?,
            Step::Write { path, contents } => write(path, contents)?,
            Step::Remove(p) => match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("removing", p)(e)),
                _ => {}
            },
            Step::Run { argv, may_fail } => run(argv, *may_fail)?,
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

fn run(argv: &[String], may_fail: bool) -> Result<(), InstallError> {
    let command = argv.join(" ");
    let Some((program, args)) = argv.split_first() else { return Ok(()) };
    let out =
        Command::new(program).args(args).output().map_err(|source| InstallError::CommandMissing { command: command.clone(), source })?;
    if out.status.success() || may_fail {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(InstallError::CommandFailed { command, status: out.status.to_string(), stderr })
}

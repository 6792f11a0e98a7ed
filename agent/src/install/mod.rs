//! `agent install` / `agent uninstall`: the agent as a system daemon that starts at boot with
//! nobody logged in and restarts when it dies — a launchd daemon on macOS, a systemd service on
//! Linux. What is written and run is computed first, by pure functions, as a list of [`Step`]s;
//! `--dry-run` prints them instead of taking them. The token never enters a service file: the
//! daemon reads it from the token file.
//!
//! The daemon runs as a dedicated non-root user unless `--user` names another (`root` included):
//! `_anefleet` on macOS (a hidden role account made with `dscl`), `anefleet` on Linux (made with
//! `useradd --system`), created when missing. The cache dir becomes that user's, mode 0700, and
//! the token file that user's, mode 0600: no other user reads either. Before anything changes
//! hands the install makes sure that user can run the binary and reach the token and CA files
//! (a daemon that cannot would be restarted forever), and that the token file is root's or
//! already that user's (see [`checks`]).

pub mod launchd;
mod steps;
pub mod systemd;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use steps::{AccountTool, Check, Ran, Reached, Runner, Step, System, apply, apply_with, describe};

/// The daemon's label (launchd) and unit name (systemd) unless `--label` says otherwise.
pub const DEFAULT_LABEL: &str = "dev.anefleet.agent";
/// How long the service manager waits after SIGTERM before it kills the agent: long enough for
/// the running cell to finish and be reported (a second SIGTERM cancels it sooner).
pub const STOP_TIMEOUT_S: u32 = 900;
/// The least time between two starts of a daemon that keeps dying.
pub const RESTART_DELAY_S: u32 = 10;
/// The user the service managers run a daemon as when its file names none.
const ROOT: &str = "root";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("token file {} does not exist", .0.display())]
    TokenFileMissing(PathBuf),
    #[error("token file {} is readable by every user (mode {mode:o}); `chmod 600 {}` it first", .path.display(), .path.display())]
    TokenFileWorldReadable { path: PathBuf, mode: u32 },
    #[error("label `{0}` must be 1 to 100 letters, digits, '.', '-' or '_', not starting with '.'")]
    BadLabel(String),
    #[error("user `{0}` must be 1 to 32 letters, digits, '.', '-' or '_', not starting with '-'")]
    BadUser(String),
    #[error("no id from 200 to 400 is free for a new user `{0}`; create the user yourself or name another with --user")]
    NoFreeId(String),
    #[error("{what} `{value}` holds a control character or is not valid UTF-8")]
    BadValue { what: &'static str, value: String },
    #[error("{what} {}: {source}{}", .path.display(), root_hint(.source))]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed { command: String, status: String, stderr: String },
    #[error("`{command}` still failed after {tries} tries ({status}): {stderr}")]
    GaveUp { command: String, tries: u32, status: String, stderr: String },
    #[error(
        "{what} was still there after {waited_s} s (`{command}` finds it): the old daemon has not stopped; wait for its cell to end, or stop it, then install again"
    )]
    StillThere { what: String, command: String, waited_s: u64 },
    #[error("{}", unreachable_message(.user, *.what, .path, .said))]
    Unreachable { user: String, what: Reached, path: PathBuf, said: String },
    #[error(
        "token file {} belongs to uid {owner}, not to root or to the daemon's user `{user}`: the install hands the token file \
         over to `{user}` (chown, mode 0600), which would take it from its owner (a coordinator's own DATA_DIR/token would \
         stop being the coordinator's). Give the daemon a copy of its own: `sudo install -d -m 755 /etc/anefleet && sudo \
         install -m 600 {} /etc/anefleet/token`, then install with --token-file /etc/anefleet/token",
        .path.display(), .path.display()
    )]
    TokenFileNotOurs { path: PathBuf, owner: u32, user: String },
    #[error("`{command}` could not start: {source}")]
    CommandMissing { command: String, source: std::io::Error },
    #[error("encoding the launchd plist: {0}")]
    Plist(#[from] plist::Error),
}

/// What the daemon's user cannot reach, and where the file should go instead.
fn unreachable_message(user: &str, what: Reached, path: &Path, said: &str) -> String {
    let p = path.display();
    let (need, fix) = match what {
        Reached::Binary => (
            "run the agent binary",
            format!(
                "install it where every user can run it, `sudo install -m 755 {p} /usr/local/bin/agent`, and run `sudo /usr/local/bin/agent install …`"
            ),
        ),
        Reached::TokenFolder => (
            "reach (search every folder above) the token file",
            format!(
                "copy it into a folder of its own: `sudo install -d -m 755 /etc/anefleet && sudo install -m 600 {p} /etc/anefleet/token`, then --token-file /etc/anefleet/token"
            ),
        ),
        Reached::CaFile => (
            "read the CA file",
            format!(
                "copy it where that user can read it: `sudo install -d -m 755 /etc/anefleet && sudo install -m 644 {p} /etc/anefleet/ca.pem`, then --ca-file /etc/anefleet/ca.pem"
            ),
        ),
    };
    let said = if said.is_empty() { String::new() } else { format!(" ({said})") };
    format!(
        "the daemon's user `{user}` cannot {need} {p}{said}: a folder above it is closed to that user (a home folder, mode 0700 or 0750, is); \
         launchd or systemd would restart the daemon forever. {fix}, or pick another user with --user"
    )
}

fn root_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::PermissionDenied { " (run it as root, e.g. with sudo)" } else { "" }
}

/// The daemon: what it runs and as whom.
#[derive(Debug, Clone)]
pub struct Service {
    pub label: String,
    /// The agent binary (absolute): the one running `install`.
    pub exe: PathBuf,
    pub coordinator: String,
    pub token_file: PathBuf,
    pub cache_dir: PathBuf,
    pub name: String,
    pub tags: Vec<String>,
    pub threads: Option<usize>,
    pub cool_below_c: Option<f64>,
    /// A CA certificate to trust for an https:// coordinator (its private CA).
    pub ca_file: Option<PathBuf>,
    /// Run as this user; `None`: the dedicated user ([`launchd::DEFAULT_USER`],
    /// [`systemd::DEFAULT_USER`]). Created when missing (but `root`).
    pub user: Option<String>,
}

impl Service {
    /// Refuses what cannot go into a service file and makes every path absolute (a daemon does
    /// not start where `install` ran). The token file must exist and not be world-readable.
    pub fn resolve(mut self) -> Result<Service, InstallError> {
        check_label(&self.label)?;
        if let Some(u) = &self.user {
            check_user(u)?;
        }
        self.token_file = absolute(&check_token_file(&self.token_file)?, "token file")?;
        self.cache_dir = absolute(&self.cache_dir, "cache dir")?;
        self.exe = absolute(&self.exe, "agent binary")?;
        if let Some(ca) = &self.ca_file {
            self.ca_file = Some(absolute(ca, "CA file")?);
        }
        for (what, value) in [("coordinator URL", &self.coordinator), ("name", &self.name)] {
            text(what, value)?;
        }
        for t in &self.tags {
            text("tag", t)?;
        }
        Ok(self)
    }

    /// `agent run …` as the daemon starts it, without the binary (the token as its file only).
    pub fn run_args(&self) -> Vec<String> {
        let mut args = vec!["run".to_string()];
        let mut flag = |f: &str, v: String| args.extend([format!("--{f}"), v]);
        flag("coordinator", self.coordinator.clone());
        flag("token-file", utf8(&self.token_file).to_string());
        flag("cache-dir", utf8(&self.cache_dir).to_string());
        flag("name", self.name.clone());
        if let Some(ca) = &self.ca_file {
            flag("ca-file", utf8(ca).to_string());
        }
        for t in &self.tags {
            flag("tag", t.clone());
        }
        if let Some(n) = self.threads {
            flag("threads", n.to_string());
        }
        if let Some(c) = self.cool_below_c {
            flag("cool-below-c", c.to_string());
        }
        args
    }

    /// Whom the daemon runs as: `--user`, else the service manager's `default`.
    pub fn user_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.user.as_deref().unwrap_or(default)
    }

    /// The whole command line: the binary, then [`Service::run_args`].
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(utf8(&self.exe).to_string()).chain(self.run_args()).collect()
    }
}

/// A path checked by [`Service::resolve`] as UTF-8.
fn utf8(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Which service manager this machine has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Launchd,
    Systemd,
}

impl Manager {
    pub fn here() -> Manager {
        if cfg!(target_os = "macos") { Manager::Launchd } else { Manager::Systemd }
    }

    /// Where the daemon keeps its artifact cache and identity unless `--cache-dir` says.
    pub fn default_cache_dir(self) -> PathBuf {
        match self {
            Manager::Launchd => PathBuf::from("/Library/Application Support/anefleet"),
            Manager::Systemd => PathBuf::from("/var/lib/anefleet"),
        }
    }

    pub fn install_plan(self, s: &Service) -> Result<Vec<Step>, InstallError> {
        match self {
            Manager::Launchd => launchd::install_plan(s),
            Manager::Systemd => Ok(systemd::install_plan(s)),
        }
    }

    pub fn uninstall_plan(self, label: &str) -> Result<Vec<Step>, InstallError> {
        check_label(label)?;
        Ok(match self {
            Manager::Launchd => launchd::uninstall_plan(label),
            Manager::Systemd => systemd::uninstall_plan(label),
        })
    }
}

/// A label names a file: no separators, no `..`, nothing a shell or a unit name would mangle.
pub fn check_label(label: &str) -> Result<(), InstallError> {
    let ok = (1..=100).contains(&label.len())
        && !label.starts_with('.')
        && label.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok { Ok(()) } else { Err(InstallError::BadLabel(label.to_string())) }
}

/// A user name is a word of a command line: no option (`-x`), nothing a shell would split.
fn check_user(user: &str) -> Result<(), InstallError> {
    let ok =
        (1..=32).contains(&user.len()) && !user.starts_with('-') && user.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok { Ok(()) } else { Err(InstallError::BadUser(user.to_string())) }
}

/// What comes before the old daemon stops and anything changes hands: the daemon's `user`, made
/// when missing (not `root`), and the checks that the daemon will start:
///
/// - That user can run the binary, search the token file's folder (every folder above it
///   included: the file itself becomes that user's) and read the CA file, asked of the system
///   itself by running `test` as that user (`sudo -n -u` on macOS, `runuser -u` on Linux), so
///   modes, groups and ACLs all count. Not for root, who reaches everything.
/// - The token file belongs to root or to that user already. The install hands the token file
///   over (chown, mode 0600), and a file of another user's is theirs: the coordinator's
///   `DATA_DIR/token`, say, on a machine that runs both, would stop being readable by the
///   coordinator. A root-owned file was put there by an administrator for the daemon (the
///   documented `/etc/anefleet/token`). Anything else is refused with the command that makes the
///   daemon a copy of its own.
fn checks(s: &Service, user: &str, tool: AccountTool) -> Vec<Step> {
    let mut steps = Vec::new();
    if user != ROOT {
        steps.push(Step::CreateUser { name: user.to_string(), home: s.cache_dir.clone(), tool });
        let folder = s.token_file.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        let mut reach = vec![(Reached::Binary, "-x", &s.exe, &s.exe), (Reached::TokenFolder, "-x", &folder, &s.token_file)];
        if let Some(ca) = &s.ca_file {
            reach.push((Reached::CaFile, "-r", ca, ca));
        }
        for (what, flag, tested, path) in reach {
            let mut argv = match tool {
                AccountTool::Dscl => steps::words(&["sudo", "-n", "-u", user]),
                AccountTool::Useradd => steps::words(&["runuser", "-u", user, "--"]),
            };
            argv.extend(steps::words(&["test", flag, utf8(tested)]));
            steps.push(Step::Check(Check::Reaches { user: user.to_string(), what, path: path.clone(), argv }));
        }
    }
    steps.push(Step::Check(Check::TokenOwner { path: s.token_file.clone(), user: user.to_string() }));
    steps
}

/// Hands the daemon's `user` the cache dir (mode 0700), the folders in `also` (created) and the
/// token file (mode 0600): no other user reads them.
fn hand_over(s: &Service, user: &str, also: &[&str]) -> Vec<Step> {
    let (cache, token) = (utf8(&s.cache_dir), utf8(&s.token_file));
    let mut steps = vec![Step::CreateDir(s.cache_dir.clone())];
    steps.extend(also.iter().map(|d| Step::CreateDir(d.into())));
    let mut chown = vec!["chown", "-R", user, cache];
    chown.extend(also);
    steps.extend([
        Step::run(&chown),
        Step::run(&["chmod", "700", cache]),
        Step::run(&["chown", user, token]),
        Step::run(&["chmod", "600", token]),
    ]);
    steps
}

/// The token file must exist and must not be readable by every user (it would leak the token).
pub fn check_token_file(path: &Path) -> Result<PathBuf, InstallError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Err(InstallError::TokenFileMissing(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(InstallError::TokenFileMissing(path.to_path_buf())),
        Err(source) => return Err(InstallError::Io { what: "reading token file", path: path.to_path_buf(), source }),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o004 != 0 {
            return Err(InstallError::TokenFileWorldReadable { path: path.to_path_buf(), mode });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(path.to_path_buf())
}

fn absolute(p: &Path, what: &'static str) -> Result<PathBuf, InstallError> {
    let abs = std::path::absolute(p).map_err(|source| InstallError::Io { what, path: p.to_path_buf(), source })?;
    text(what, abs.to_str().ok_or_else(|| InstallError::BadValue { what, value: abs.display().to_string() })?)?;
    Ok(abs)
}

/// Service files are line based: a value with a newline or another control character would
/// break out of its line.
fn text(what: &'static str, value: &str) -> Result<(), InstallError> {
    if value.chars().any(char::is_control) { Err(InstallError::BadValue { what, value: value.escape_debug().to_string() }) } else { Ok(()) }
}

//! macOS: a launchd daemon in `/Library/LaunchDaemons`, loaded into the system domain, so it
//! starts at boot with nobody logged in (a LaunchAgent would wait for a login).

use std::path::PathBuf;

use plist::{Dictionary, Value};

use super::{InstallError, RESTART_DELAY_S, STOP_TIMEOUT_S, Service, Step};

/// Where the daemon's stdout and stderr go (the agent logs on stderr).
pub const LOG_DIR: &str = "/Library/Logs/anefleet";
/// A daemon's PATH when launchd starts it: the system's tools only.
const PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin";

pub fn plist_path(label: &str) -> PathBuf {
    PathBuf::from(format!("/Library/LaunchDaemons/{label}.plist"))
}

pub fn log_path(label: &str) -> PathBuf {
    PathBuf::from(format!("{LOG_DIR}/{label}.log"))
}

/// The daemon's property list.
pub fn plist(s: &Service) -> Dictionary {
    let mut d = Dictionary::new();
    let mut set = |k: &str, v: Value| d.insert(k.to_string(), v);
    set("Label", s.label.as_str().into());
    set("ProgramArguments", Value::Array(s.argv().into_iter().map(Value::from).collect()));
    if let Some(u) = &s.user {
        set("UserName", u.as_str().into());
    }
    set("WorkingDirectory", s.cache_dir.to_string_lossy().as_ref().into());
    set("RunAtLoad", true.into());
    // Restarted whenever it exits, also after a clean stop: only bootout stops it for good.
    set("KeepAlive", true.into());
    // Not throttled like a background job: the measurements must not be slowed by launchd.
    set("ProcessType", "Interactive".into());
    set("ThrottleInterval", Value::Integer(RESTART_DELAY_S.into()));
    // launchd's default is 20 s before SIGKILL; the running cell finishes first.
    set("ExitTimeOut", Value::Integer(STOP_TIMEOUT_S.into()));
    let log = log_path(&s.label).to_string_lossy().into_owned();
    set("StandardOutPath", log.as_str().into());
    set("StandardErrorPath", log.into());
    let mut env = Dictionary::new();
    env.insert("PATH".into(), PATH.into());
    set("EnvironmentVariables", Value::Dictionary(env));
    d
}

/// The plist as launchd reads it (XML).
pub fn plist_bytes(s: &Service) -> Result<Vec<u8>, InstallError> {
    let mut out = Vec::new();
    Value::Dictionary(plist(s)).to_writer_xml(&mut out)?;
    out.push(b'\n');
    Ok(out)
}

/// Unloads an earlier version, writes the plist, loads it into the system domain (which starts it).
pub fn install_plan(s: &Service) -> Result<Vec<Step>, InstallError> {
    let target = format!("system/{}", s.label);
    let plist = plist_path(&s.label);
    let plist_arg = plist.to_string_lossy().into_owned();
    let mut steps = vec![Step::CreateDir(LOG_DIR.into()), Step::CreateDir(s.cache_dir.clone())];
    if let Some(u) = &s.user {
        steps.push(Step::run(&["chown", "-R", u, &s.cache_dir.to_string_lossy(), LOG_DIR]));
    }
    steps.extend([
        Step::try_run(&["launchctl", "bootout", &target]),
        Step::Write { path: plist, contents: plist_bytes(s)? },
        Step::run(&["launchctl", "enable", &target]),
        Step::run(&["launchctl", "bootstrap", "system", &plist_arg]),
    ]);
    Ok(steps)
}

/// Stops the daemon (SIGTERM: the running cell finishes first) and removes its plist; the cache,
/// the agent's identity and the logs stay.
pub fn uninstall_plan(label: &str) -> Vec<Step> {
    vec![Step::try_run(&["launchctl", "bootout", &format!("system/{label}")]), Step::Remove(plist_path(label))]
}

//! macOS: a launchd daemon in `/Library/LaunchDaemons`, loaded into the system domain, so it
//! starts at boot with nobody logged in (a LaunchAgent would wait for a login).

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use plist::{Dictionary, Value};

use super::steps::{AccountTool, Runner, checked, words};
use super::{InstallError, RESTART_DELAY_S, ROOT, STOP_TIMEOUT_S, Service, Step, checks, hand_over};

/// The daemon's user unless `--user` names another: a hidden role account (the `_` prefix is
/// macOS's convention for daemons' accounts).
pub const DEFAULT_USER: &str = "_anefleet";
/// The ids a role account takes (`sysadminctl -roleAccount` asks for 200 to 400).
pub const ROLE_IDS: RangeInclusive<u32> = 200..=400;

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
    // launchd.plist(5): UserName applies to system-domain daemons; without GroupName the job
    // takes the user's primary group, and InitGroups (default true) its supplementary groups.
    // Root is launchd's default: no key (and no GroupName `root`, which macOS lacks).
    let user = s.user_or(DEFAULT_USER);
    if user != ROOT {
        set("UserName", user.into());
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

/// How much longer than `ExitTimeOut` the install waits for launchd to release the old daemon's
/// label: launchd kills the daemon at `ExitTimeOut`, then reaps it.
pub const RELEASE_MARGIN_S: u32 = 60;
/// `launchctl bootstrap`'s errors while launchd still holds the label (`Bootstrap failed: 5:
/// Input/output error`, also right after the label is gone) or is busy with it (37).
pub const BOOTSTRAP_TRANSIENT: [&str; 2] = ["5: Input/output error", "37: Operation already in progress"];
/// The pauses between tries of `launchctl bootstrap` (s).
pub const BOOTSTRAP_PAUSES_S: [u32; 4] = [1, 2, 4, 8];

/// Makes the daemon's user and checks that it will reach its files ([`super::checks`]), unloads
/// an earlier version (so that it writes nothing while its files change hands) and waits until
/// launchd lets go of its label, hands the user the cache dir, the logs and the token file, writes
/// the plist and loads it into the system domain (which starts it).
///
/// `launchctl bootout` returns before launchd has released the label — up to `ExitTimeOut`
/// later, while the old daemon finishes its cell — and a `bootstrap` before then fails with
/// "5: Input/output error": so `launchctl print system/LABEL` is asked until it fails (the label
/// is gone), and `bootstrap` is tried again on errors 5 and 37.
pub fn install_plan(s: &Service) -> Result<Vec<Step>, InstallError> {
    let target = format!("system/{}", s.label);
    let plist = plist_path(&s.label);
    let plist_arg = plist.to_string_lossy().into_owned();
    let user = s.user_or(DEFAULT_USER);
    let mut steps = checks(s, user, AccountTool::Dscl);
    steps.extend([
        Step::try_run(&["launchctl", "bootout", &target]),
        Step::WaitGone {
            argv: words(&["launchctl", "print", &target]),
            what: format!("launchd's {target}"),
            timeout_s: STOP_TIMEOUT_S + RELEASE_MARGIN_S,
        },
    ]);
    steps.extend(hand_over(s, user, &[LOG_DIR]));
    steps.extend([
        Step::Write { path: plist, contents: plist_bytes(s)? },
        Step::run(&["launchctl", "enable", &target]),
        Step::Retry {
            argv: words(&["launchctl", "bootstrap", "system", &plist_arg]),
            transient: BOOTSTRAP_TRANSIENT.iter().map(|t| t.to_string()).collect(),
            pauses_s: BOOTSTRAP_PAUSES_S.to_vec(),
        },
    ]);
    Ok(steps)
}

/// The `dscl` commands that make account `name`: the ids come from the machine's users and
/// groups (see [`account_ids`]).
pub fn new_account(runner: &mut dyn Runner, name: &str, home: &Path) -> Result<Vec<Vec<String>>, InstallError> {
    let users = checked(runner, &words(&["dscl", ".", "-list", "/Users", "UniqueID"]), false)?.stdout;
    let groups = checked(runner, &words(&["dscl", ".", "-list", "/Groups", "PrimaryGroupID"]), false)?.stdout;
    let ids = account_ids(&users, &groups, name).ok_or_else(|| InstallError::NoFreeId(name.to_string()))?;
    Ok(dscl_commands(name, home, &ids.uid.to_string(), &ids.gid.to_string(), ids.new_group))
}

/// A new account's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountIds {
    pub uid: u32,
    pub gid: u32,
    /// Whether the group of the account's name must be made too.
    pub new_group: bool,
}

/// From `dscl . -list /Users UniqueID` and `dscl . -list /Groups PrimaryGroupID` (`name id`
/// lines): the uid is the lowest id in [`ROLE_IDS`] that no user and no group has; the group of
/// the account's name keeps its id when it is there, else it is made with the uid as its id.
pub fn account_ids(users: &str, groups: &str, name: &str) -> Option<AccountIds> {
    let listed = |text: &str| -> Vec<(String, u32)> {
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((w.next()?.to_string(), w.next()?.parse().ok()?))
            })
            .collect()
    };
    let (users, groups) = (listed(users), listed(groups));
    let taken = |id: u32| users.iter().chain(&groups).any(|(_, i)| *i == id);
    let uid = ROLE_IDS.into_iter().find(|id| !taken(*id))?;
    Some(match groups.iter().find(|(n, _)| n == name) {
        Some((_, gid)) => AccountIds { uid, gid: *gid, new_group: false },
        None => AccountIds { uid, gid: uid, new_group: true },
    })
}

/// A hidden account with no password and no shell, its home the cache dir.
pub fn dscl_commands(name: &str, home: &Path, uid: &str, gid: &str, new_group: bool) -> Vec<Vec<String>> {
    let (user, group) = (format!("/Users/{name}"), format!("/Groups/{name}"));
    let home = home.to_string_lossy();
    let mut attrs: Vec<(&str, Vec<&str>)> = Vec::new();
    if new_group {
        attrs.extend([(group.as_str(), vec![]), (&group, vec!["PrimaryGroupID", gid]), (&group, vec!["Password", "*"])]);
    }
    attrs.extend([
        (user.as_str(), vec![]),
        (&user, vec!["UniqueID", uid]),
        (&user, vec!["PrimaryGroupID", gid]),
        (&user, vec!["UserShell", "/usr/bin/false"]),
        (&user, vec!["NFSHomeDirectory", &home]),
        (&user, vec!["RealName", "anefleet agent"]),
        (&user, vec!["Password", "*"]),
        (&user, vec!["IsHidden", "1"]),
    ]);
    attrs
        .into_iter()
        .map(|(record, kv)| {
            let mut argv = words(&["dscl", ".", "-create", record]);
            argv.extend(words(&kv));
            argv
        })
        .collect()
}

/// Stops the daemon (SIGTERM: the running cell finishes first) and removes its plist; the cache,
/// the agent's identity and the logs stay.
pub fn uninstall_plan(label: &str) -> Vec<Step> {
    vec![Step::try_run(&["launchctl", "bootout", &format!("system/{label}")]), Step::Remove(plist_path(label))]
}

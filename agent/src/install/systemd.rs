//! Linux: a systemd service in `/etc/systemd/system`, enabled for `multi-user.target` and
//! started once the network is up; its logs are in the journal (`journalctl -u <label>`).

use std::path::{Path, PathBuf};

use super::steps::{AccountTool, words};
use super::{RESTART_DELAY_S, ROOT, STOP_TIMEOUT_S, Service, Step, checks, hand_over};

/// The daemon's user unless `--user` names another: a system account made by `install`.
pub const DEFAULT_USER: &str = "anefleet";

pub fn unit_path(label: &str) -> PathBuf {
    PathBuf::from(format!("/etc/systemd/system/{label}.service"))
}

/// The unit file.
pub fn unit(s: &Service) -> String {
    let exec = s.argv().iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
    let mut service = vec![
        "Type=simple".to_string(),
        format!("ExecStart={exec}"),
        format!("WorkingDirectory={}", specifiers(&s.cache_dir.to_string_lossy())),
    ];
    let user = s.user_or(DEFAULT_USER);
    if user != ROOT {
        service.push(format!("User={user}"));
    }
    service.extend([
        "Restart=always".to_string(),
        format!("RestartSec={RESTART_DELAY_S}"),
        // The first SIGTERM lets the running cell finish; `systemctl kill -s TERM` again cancels it.
        "KillSignal=SIGTERM".to_string(),
        format!("TimeoutStopSec={STOP_TIMEOUT_S}"),
    ]);
    format!(
        "# Written by `agent install`; `agent uninstall --label {label}` removes it.\n\
         [Unit]\nDescription=anefleet agent {name}\nWants=network-online.target\nAfter=network-online.target\n\n\
         [Service]\n{service}\n\n[Install]\nWantedBy=multi-user.target\n",
        label = s.label,
        name = specifiers(&s.name),
        service = service.join("\n"),
    )
}

/// One word of a command line as systemd splits it: plain when it can be, otherwise in double
/// quotes with C escapes. `%` (specifiers) and `$` (environment variables) are expanded even
/// inside quotes, so they are doubled.
pub fn quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:=,@".contains(c)) {
        return word.to_string();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value systemd takes whole but still expands `%` in.
fn specifiers(value: &str) -> String {
    value.replace('%', "%%")
}

/// Makes the daemon's user and checks that it will reach its files ([`super::checks`]), stops an
/// earlier version (so that it writes nothing while its files change hands; `systemctl stop`
/// returns once it has stopped), hands the user the cache dir and the token file, writes the
/// unit, enables it at boot and (re)starts it, so a reinstall runs the new arguments.
pub fn install_plan(s: &Service) -> Vec<Step> {
    let unit_name = format!("{}.service", s.label);
    let user = s.user_or(DEFAULT_USER);
    let mut steps = checks(s, user, AccountTool::Useradd);
    steps.push(Step::try_run(&["systemctl", "stop", &unit_name]));
    steps.extend(hand_over(s, user, &[]));
    steps.extend([
        Step::Write { path: unit_path(&s.label), contents: unit(s).into_bytes() },
        Step::run(&["systemctl", "daemon-reload"]),
        Step::run(&["systemctl", "enable", &unit_name]),
        Step::run(&["systemctl", "restart", &unit_name]),
    ]);
    steps
}

/// A system account and its group, no login shell, its home the cache dir (not created here).
pub fn useradd(name: &str, home: &Path) -> Vec<String> {
    let home = home.to_string_lossy();
    words(&["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", &home, "--shell", "/usr/sbin/nologin", name])
}

/// Stops the service (SIGTERM: the running cell finishes first), disables and removes it; the
/// cache and the agent's identity stay.
pub fn uninstall_plan(label: &str) -> Vec<Step> {
    vec![
        Step::try_run(&["systemctl", "disable", "--now", &format!("{label}.service")]),
        Step::Remove(unit_path(label)),
        Step::run(&["systemctl", "daemon-reload"]),
    ]
}

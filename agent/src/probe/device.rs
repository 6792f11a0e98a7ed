//! The device profile an agent announces in its hello.

use anefleet_proto::pb::DeviceProfile;

/// Reads what the platform tells without privileges; unknown fields stay empty.
pub fn profile() -> DeviceProfile {
    DeviceProfile {
        hostname: hostname(),
        os: std::env::consts::OS.to_string(),
        os_version: os_version(),
        arch: std::env::consts::ARCH.to_string(),
        cpu_model: cpu_model(),
        cpu_cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_bytes: memory_bytes(),
        ..Default::default()
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn hostname() -> String {
    read("/proc/sys/kernel/hostname").or_else(|| read("/etc/hostname")).or_else(|| std::env::var("HOSTNAME").ok()).unwrap_or_default()
}

fn os_version() -> String {
    let pretty = read("/etc/os-release")
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())));
    let kernel = read("/proc/sys/kernel/osrelease");
    match (pretty, kernel) {
        (Some(p), Some(k)) => format!("{p} (kernel {k})"),
        (p, k) => p.or(k).unwrap_or_default(),
    }
}

fn cpu_model() -> String {
    read("/proc/cpuinfo")
        .and_then(|t| {
            t.lines().find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
        })
        .unwrap_or_default()
}

fn memory_bytes() -> u64 {
    read("/proc/meminfo")
        .and_then(|t| {
            t.lines().find_map(|l| l.strip_prefix("MemTotal:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()))
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn profile_names_this_machine() {
        let p = super::profile();
        assert_eq!(p.os, std::env::consts::OS);
        assert!(p.cpu_cores >= 1);
        if cfg!(target_os = "linux") {
            assert!(p.memory_bytes > 0);
            assert!(!p.hostname.is_empty());
        }
    }
}

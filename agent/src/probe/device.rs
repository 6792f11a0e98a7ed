//! The device profile an agent announces in its hello.
// The /proc readers below serve every platform but macOS, which asks sysctl instead.
#![cfg_attr(target_os = "macos", allow(dead_code))]

use anefleet_proto::pb::DeviceProfile;

/// Reads what the platform tells without privileges; unknown fields stay empty.
pub fn profile() -> DeviceProfile {
    #[cfg(target_os = "macos")]
    return mac_profile();
    #[cfg(not(target_os = "macos"))]
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

/// A Mac: the chip ("Apple M2 Pro"), performance and efficiency cores, GPU cores, the Neural
/// Engine (CoreML lists it), memory and the macOS version.
#[cfg(target_os = "macos")]
fn mac_profile() -> DeviceProfile {
    use crate::probe::macos::{gpu_cores, sysctl_string, sysctl_u64};
    let chip = sysctl_string("machdep.cpu.brand_string").unwrap_or_default();
    let count = |k: &str| sysctl_u64(k).map_or(0, |v| v as u32);
    DeviceProfile {
        hostname: sysctl_string("kern.hostname").unwrap_or_default(),
        os: "macos".into(),
        os_version: sysctl_string("kern.osproductversion").map(|v| format!("macOS {v}")).unwrap_or_default(),
        arch: std::env::consts::ARCH.to_string(),
        cpu_model: chip.clone(),
        cpu_cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_bytes: sysctl_u64("hw.memsize").unwrap_or(0),
        has_ane: crate::backend::coreml::probe_units().iter().any(|u| u.unit == "ane"),
        performance_cores: count("hw.perflevel0.physicalcpu"),
        efficiency_cores: count("hw.perflevel1.physicalcpu"),
        gpu_cores: gpu_cores(),
        chip,
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

//! Peak memory of the agent process during a cell.
//!
//! Linux: the kernel's high-water mark (`VmHWM`), reset at the start of each cell through
//! `/proc/self/clear_refs`, so each cell reports its own peak. Elsewhere: not measured (0).

/// Starts a new peak-memory window. Returns false where the platform cannot reset it.
pub fn reset_peak() -> bool {
    #[cfg(target_os = "linux")]
    {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// The process's peak resident memory in bytes since the last reset (0 where unknown).
pub fn peak_bytes() -> u64 {
    #[cfg(target_os = "linux")]
    {
        status_kb("VmHWM:").map_or(0, |kb| kb * 1024)
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

#[cfg(target_os = "linux")]
fn status_kb(key: &str) -> Option<u64> {
    let t = std::fs::read_to_string("/proc/self/status").ok()?;
    t.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    // Other tests share this process and load models concurrently, so only what holds whatever
    // they do is asserted: after a reset, the peak covers an allocation that is still live.
    #[test]
    fn the_peak_covers_a_live_allocation_after_a_reset() {
        assert!(super::reset_peak(), "/proc/self/clear_refs is writable on Linux");
        let v = vec![1u8; 64 << 20];
        std::hint::black_box(&v);
        assert!(super::peak_bytes() >= 64 << 20, "peak {} below a live 64 MiB allocation", super::peak_bytes());
    }
}

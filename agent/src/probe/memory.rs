//! Memory of the agent process during a cell.
//!
//! Linux: the kernel's high-water mark (`VmHWM`), reset at the start of each cell through
//! `/proc/self/clear_refs`, so each cell reports its own peak; the current resident set
//! (`VmRSS`) before and after the model load gives what the load added. macOS: the process's
//! `phys_footprint` (what Activity Monitor shows) before and after the load, and its peak per
//! cell: `proc_reset_footprint_interval` (libproc, macOS 10.14+, looked up at run time) starts
//! the interval, `proc_pid_rusage`'s `ri_interval_max_phys_footprint` (`RUSAGE_INFO_V4`) is its
//! maximum. Where the reset is missing, [`reset_peak`] says so and the peak is reported unknown
//! ([`peak_bytes`] is then the process's lifetime maximum, which is no cell's own).
//! Elsewhere: not measured (0 / `None`).

/// Starts a new peak-memory window. Returns false where the platform cannot reset it.
pub fn reset_peak() -> bool {
    #[cfg(target_os = "linux")]
    {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }
    #[cfg(target_os = "macos")]
    {
        crate::probe::macos::reset_peak_footprint()
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        false
    }
}

/// The process's peak resident memory in bytes since the last reset (0 where unknown); on macOS
/// the peak `phys_footprint`, the same measure as [`current_rss_bytes`] there.
pub fn peak_bytes() -> u64 {
    #[cfg(target_os = "linux")]
    {
        status_kb("VmHWM:").map_or(0, |kb| kb * 1024)
    }
    #[cfg(target_os = "macos")]
    {
        crate::probe::macos::peak_footprint_bytes().unwrap_or(0)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        0
    }
}

/// The process's resident memory in bytes now; `None` where unknown.
pub fn current_rss_bytes() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        status_kb("VmRSS:").and_then(|kb| kb.checked_mul(1024))
    }
    #[cfg(target_os = "macos")]
    {
        crate::probe::macos::phys_footprint_bytes()
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        None
    }
}

/// What a step added to the resident set: `after - before`, 0 where it shrank or either is unknown.
pub fn added_bytes(before: Option<u64>, after: Option<u64>) -> u64 {
    match (before, after) {
        (Some(b), Some(a)) => a.saturating_sub(b),
        _ => 0,
    }
}

#[cfg(target_os = "linux")]
fn status_kb(key: &str) -> Option<u64> {
    parse_status_kb(&std::fs::read_to_string("/proc/self/status").ok()?, key)
}

/// A `Key:   1234 kB` line of `/proc/<pid>/status`, in kB.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod parse_tests {
    const STATUS: &str = "Name:\tagent\nVmPeak:\t  900000 kB\nVmHWM:\t  512000 kB\nVmRSS:\t  256000 kB\nThreads:\t4\n";

    #[test]
    fn status_lines_parse_in_kb() {
        assert_eq!(super::parse_status_kb(STATUS, "VmRSS:"), Some(256_000));
        assert_eq!(super::parse_status_kb(STATUS, "VmHWM:"), Some(512_000));
        assert_eq!(super::parse_status_kb(STATUS, "VmSwap:"), None);
        assert_eq!(super::parse_status_kb("VmRSS:\tlots kB\n", "VmRSS:"), None);
    }

    #[test]
    fn the_added_memory_saturates_and_is_zero_when_unknown() {
        assert_eq!(super::added_bytes(Some(100), Some(350)), 250);
        assert_eq!(super::added_bytes(Some(350), Some(100)), 0);
        assert_eq!(super::added_bytes(None, Some(100)), 0);
        assert_eq!(super::added_bytes(Some(100), None), 0);
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "macos")))]
mod tests {
    // Other tests share this process and load models concurrently, so only what holds whatever
    // they do is asserted: after a reset, the peak covers an allocation that is still live.
    #[test]
    fn the_peak_covers_a_live_allocation_after_a_reset() {
        assert!(super::reset_peak(), "/proc/self/clear_refs is writable on Linux; macOS 10.14+ has proc_reset_footprint_interval");
        let v = vec![1u8; 64 << 20];
        std::hint::black_box(&v);
        assert!(super::peak_bytes() >= 64 << 20, "peak {} below a live 64 MiB allocation", super::peak_bytes());
    }

    #[test]
    fn the_resident_set_covers_a_live_allocation() {
        let v = vec![1u8; 32 << 20];
        std::hint::black_box(&v);
        let rss = super::current_rss_bytes().expect("VmRSS is readable on Linux, phys_footprint on macOS");
        assert!(rss >= 32 << 20, "resident {rss} below a live, touched 32 MiB allocation");
    }
}

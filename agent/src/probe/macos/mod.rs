//! What a Mac tells about itself and its state while a cell runs, without root: the chip and its
//! cores (sysctl, system_profiler), the process's `phys_footprint` and its peak per cell, the thermal state, CPU/GPU/ANE
//! energy through IOReport ([`ioreport`]), and the two things a measurement needs from the OS —
//! a power assertion that keeps the Mac awake and user-initiated QoS, which keeps the measuring
//! thread on the performance cores.

pub mod cf;
pub mod ioreport;

use std::ffi::{CStr, CString, c_void};
use std::sync::OnceLock;

use objc2_foundation::{NSProcessInfo, NSProcessInfoThermalState};

/// A sysctl string value (`machdep.cpu.brand_string`, `kern.osproductversion`).
pub fn sysctl_string(name: &str) -> Option<String> {
    let key = CString::new(name).ok()?;
    let mut len: libc::size_t = 0;
    // SAFETY: first call asks for the size, second fills a buffer of that size.
    unsafe {
        if libc::sysctlbyname(key.as_ptr(), std::ptr::null_mut(), &mut len, std::ptr::null_mut(), 0) != 0 || len == 0 {
            return None;
        }
        let mut buf = vec![0u8; len];
        if libc::sysctlbyname(key.as_ptr(), buf.as_mut_ptr().cast::<c_void>(), &mut len, std::ptr::null_mut(), 0) != 0 {
            return None;
        }
        CStr::from_bytes_until_nul(&buf).ok().map(|s| s.to_string_lossy().into_owned())
    }
}

/// A sysctl integer value (`hw.memsize`, `hw.perflevel0.physicalcpu`).
pub fn sysctl_u64(name: &str) -> Option<u64> {
    let key = CString::new(name).ok()?;
    let mut value: u64 = 0;
    let mut len = std::mem::size_of::<u64>();
    // SAFETY: the buffer is a u64; a 4-byte value fills its low half (little-endian Apple Silicon).
    let rc = unsafe { libc::sysctlbyname(key.as_ptr(), (&mut value as *mut u64).cast::<c_void>(), &mut len, std::ptr::null_mut(), 0) };
    (rc == 0).then_some(value)
}

/// GPU cores from `system_profiler SPDisplaysDataType -json` (`sppci_cores`); 0 where unknown.
pub fn gpu_cores() -> u32 {
    let Ok(out) = std::process::Command::new("/usr/sbin/system_profiler").args(["SPDisplaysDataType", "-json"]).output() else {
        return 0;
    };
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v.get("SPDisplaysDataType")?.as_array()?.iter().find_map(|gpu| gpu.get("sppci_cores")?.as_str()?.parse().ok()))
        .unwrap_or(0)
}

/// The agent's `rusage_info_v4` (`RUSAGE_INFO_V4`, macOS 10.14+) from `proc_pid_rusage`.
fn rusage() -> Option<libc::rusage_info_v4> {
    // SAFETY: the kernel fills a rusage_info_v4 (libc's layout of <sys/resource.h>'s) for our own
    // process; the buffer is that struct, passed as the `rusage_info_t *` the call takes.
    unsafe {
        let mut info: libc::rusage_info_v4 = std::mem::zeroed();
        let rc = libc::proc_pid_rusage(libc::getpid(), libc::RUSAGE_INFO_V4, (&mut info as *mut libc::rusage_info_v4).cast());
        (rc == 0).then_some(info)
    }
}

/// The agent's `phys_footprint` (what Activity Monitor calls Memory), from `proc_pid_rusage`.
pub fn phys_footprint_bytes() -> Option<u64> {
    rusage().map(|info| info.ri_phys_footprint)
}

/// `int proc_reset_footprint_interval(pid_t)`: libproc, macOS 10.14+, but declared only in
/// xnu's private `libproc_internal.h`, not in the SDK's headers (nor in the `libc` crate). It
/// starts a new interval for `ri_interval_max_phys_footprint`; 0 on success.
type ResetFootprintInterval = unsafe extern "C" fn(libc::pid_t) -> libc::c_int;

/// `proc_reset_footprint_interval`, looked up once at run time (`dlsym`), so that a macOS
/// without it, or an SDK whose stubs leave it out, costs the peak and not the start.
fn reset_footprint_interval_fn() -> Option<ResetFootprintInterval> {
    static FOUND: OnceLock<Option<ResetFootprintInterval>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the symbol up.
        let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"proc_reset_footprint_interval".as_ptr()) };
        if symbol.is_null() {
            tracing::info!("proc_reset_footprint_interval is not in this macOS; cells report no peak memory");
            return None;
        }
        // SAFETY: the symbol is libproc's function of that signature (xnu's libproc_internal.h).
        Some(unsafe { std::mem::transmute::<*mut c_void, ResetFootprintInterval>(symbol) })
    })
}

/// Starts a new peak-footprint interval for this process (`proc_reset_footprint_interval`); false
/// where the call is missing or fails, so the peak is unknown.
pub fn reset_peak_footprint() -> bool {
    let Some(reset) = reset_footprint_interval_fn() else { return false };
    // SAFETY: our own pid; the call only resets a kernel ledger's interval maximum.
    let rc = unsafe { reset(libc::getpid()) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| tracing::warn!(%err, "proc_reset_footprint_interval failed; cells report no peak memory"));
    }
    rc == 0
}

/// The highest `phys_footprint` since the last [`reset_peak_footprint`]
/// (`ri_interval_max_phys_footprint`); where the reset is missing, the process's lifetime
/// maximum (`ri_lifetime_max_phys_footprint`), which is no cell's own.
pub fn peak_footprint_bytes() -> Option<u64> {
    let info = rusage()?;
    Some(if reset_footprint_interval_fn().is_some() { info.ri_interval_max_phys_footprint } else { info.ri_lifetime_max_phys_footprint })
}

/// `NSProcessInfo.thermalState`: nominal, fair, serious or critical.
pub fn thermal_state() -> &'static str {
    let state = NSProcessInfo::processInfo().thermalState();
    match state {
        NSProcessInfoThermalState::Nominal => "nominal",
        NSProcessInfoThermalState::Fair => "fair",
        NSProcessInfoThermalState::Serious => "serious",
        NSProcessInfoThermalState::Critical => "critical",
        _ => "unknown",
    }
}

/// Runs the calling thread at user-initiated QoS, so the scheduler keeps it on performance cores.
pub fn user_initiated_qos() {
    // SAFETY: changes only the calling thread's QoS class.
    let rc = unsafe { libc::pthread_set_qos_class_self_np(libc::qos_class_t::QOS_CLASS_USER_INITIATED, 0) };
    if rc != 0 {
        tracing::warn!(rc, "could not raise the measuring thread to user-initiated QoS");
    }
}

#[link(name = "IOKit", kind = "framework")]
unsafe extern "C" {
    fn IOPMAssertionCreateWithName(kind: cf::CFStringRef, level: u32, name: cf::CFStringRef, id: *mut u32) -> i32;
    fn IOPMAssertionRelease(id: u32) -> i32;
}

/// kIOPMAssertionLevelOn
const ASSERTION_ON: u32 = 255;

/// Keeps the Mac from idle-sleeping while it lives (`PreventUserIdleSystemSleep`).
pub struct KeepAwake(Option<u32>);

impl KeepAwake {
    pub fn new(reason: &str) -> KeepAwake {
        let kind = cf::string("PreventUserIdleSystemSleep");
        let name = cf::string(reason);
        let mut id = 0u32;
        // SAFETY: both strings are valid CFStrings, released after the call; `id` receives the assertion.
        let rc = unsafe { IOPMAssertionCreateWithName(kind.0, ASSERTION_ON, name.0, &mut id) };
        if rc != 0 {
            tracing::warn!(rc, "could not take a power assertion; the Mac may sleep during the cell");
            return KeepAwake(None);
        }
        KeepAwake(Some(id))
    }
}

impl Drop for KeepAwake {
    fn drop(&mut self) {
        if let Some(id) = self.0 {
            // SAFETY: releases the assertion this guard took.
            unsafe { IOPMAssertionRelease(id) };
        }
    }
}

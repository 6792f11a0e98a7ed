//! What a Mac tells about itself and its state while a cell runs, without root: the chip and its
//! cores (sysctl, system_profiler), the process's `phys_footprint`, the thermal state, CPU/GPU/ANE
//! energy through IOReport ([`ioreport`]), and the two things a measurement needs from the OS —
//! a power assertion that keeps the Mac awake and user-initiated QoS, which keeps the measuring
//! thread on the performance cores.

pub mod cf;
pub mod ioreport;

use std::ffi::{CStr, CString, c_void};

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

/// The agent's `phys_footprint` (what Activity Monitor calls Memory), from `proc_pid_rusage`.
pub fn phys_footprint_bytes() -> Option<u64> {
    // SAFETY: the kernel fills a rusage_info_v4 for our own process.
    unsafe {
        let mut info: libc::rusage_info_v4 = std::mem::zeroed();
        let rc = libc::proc_pid_rusage(libc::getpid(), libc::RUSAGE_INFO_V4, (&mut info as *mut libc::rusage_info_v4).cast());
        (rc == 0).then_some(info.ri_phys_footprint)
    }
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

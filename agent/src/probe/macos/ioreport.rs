//! CPU, GPU and ANE energy on Apple Silicon without root, from IOReport's "Energy Model" group
//! (the counters `powermetrics` and Activity Monitor read). One subscription is taken per process
//! ([`Channels::shared`]) and kept: IOReport does not give back what a subscription holds, so one
//! per cell would grow the agent with every cell. Each reading is the energy each kind of unit
//! used since the subscription's first sample, in microjoules, so the energy meter treats it like
//! any cumulative counter.

use std::ffi::c_void;
use std::sync::{Mutex, MutexGuard, OnceLock};

use super::cf::{self, CFDictionaryRef, CFStringRef, Owned};
use crate::probe::energy::{ioreport_sum, ioreport_unit};

#[link(name = "IOReport", kind = "dylib")]
unsafe extern "C" {
    fn IOReportCopyChannelsInGroup(group: CFStringRef, subgroup: CFStringRef, a: u64, b: u64, c: u64) -> CFDictionaryRef;
    fn IOReportCreateSubscription(
        a: *const c_void,
        channels: CFDictionaryRef,
        subscribed: *mut CFDictionaryRef,
        id: u64,
        b: *const c_void,
    ) -> *const c_void;
    fn IOReportCreateSamples(subscription: *const c_void, channels: CFDictionaryRef, a: *const c_void) -> CFDictionaryRef;
    fn IOReportCreateSamplesDelta(before: CFDictionaryRef, after: CFDictionaryRef, a: *const c_void) -> CFDictionaryRef;
    fn IOReportChannelGetChannelName(channel: CFDictionaryRef) -> CFStringRef;
    fn IOReportChannelGetUnitLabel(channel: CFDictionaryRef) -> CFStringRef;
    fn IOReportSimpleGetIntegerValue(channel: CFDictionaryRef, index: i32) -> i64;
}

/// The kinds of unit energy is summed for, in reading order.
pub const UNITS: [&str; 3] = ["cpu", "gpu", "ane"];

/// A live subscription to the energy channels and the sample it started from.
pub struct Channels {
    subscription: Owned,
    subscribed: Owned,
    start: Owned,
}

/// The process's subscription, or why there is none. A failure is kept too: trying again per
/// cell would take (and leak) a subscription each time where IOReport half-works.
static SHARED: OnceLock<Result<Mutex<Channels>, String>> = OnceLock::new();

impl Channels {
    /// The process's subscription to the "Energy Model" channels, taken at the first call; an
    /// error where IOReport offers none. Cells share it (one at a time, through the lock).
    pub fn shared() -> Result<&'static Mutex<Channels>, String> {
        SHARED.get_or_init(|| Channels::open().map(Mutex::new)).as_ref().map_err(Clone::clone)
    }

    /// The shared subscription, locked; a panic elsewhere while it was held left it whole (it
    /// holds no state a reading changes).
    pub fn lock(shared: &Mutex<Channels>) -> MutexGuard<'_, Channels> {
        shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Subscribes to the "Energy Model" channels and takes the first sample.
    fn open() -> Result<Channels, String> {
        let group = cf::string("Energy Model");
        // SAFETY: IOReport's documented-by-use calls; every returned object is owned and released.
        unsafe {
            let channels = Owned(IOReportCopyChannelsInGroup(group.0, std::ptr::null(), 0, 0, 0));
            if channels.0.is_null() {
                return Err("IOReport has no \"Energy Model\" channels".into());
            }
            let mut subscribed: CFDictionaryRef = std::ptr::null();
            let subscription = Owned(IOReportCreateSubscription(std::ptr::null(), channels.0, &mut subscribed, 0, std::ptr::null()));
            if subscription.0.is_null() || subscribed.is_null() {
                return Err("IOReport refused the energy subscription".into());
            }
            let subscribed = Owned(subscribed);
            let start = Owned(IOReportCreateSamples(subscription.0, subscribed.0, std::ptr::null()));
            if start.0.is_null() {
                return Err("IOReport gave no first energy sample".into());
            }
            Ok(Channels { subscription, subscribed, start })
        }
    }

    /// Microjoules per kind of unit ([`UNITS`]) since the subscription started.
    pub fn read(&self) -> Option<Vec<u64>> {
        if self.start.0.is_null() {
            return None; // `open` refuses that; a delta from null is IOReport's to crash on
        }
        // SAFETY: samples of our own subscription; the delta is owned and released.
        unsafe {
            let now = Owned(IOReportCreateSamples(self.subscription.0, self.subscribed.0, std::ptr::null()));
            if now.0.is_null() {
                return None;
            }
            let delta = Owned(IOReportCreateSamplesDelta(self.start.0, now.0, std::ptr::null()));
            if delta.0.is_null() {
                return None;
            }
            let channels: Vec<(String, String, i64)> = cf::items(cf::get(delta.0, "IOReportChannels"))
                .into_iter()
                .map(|channel| {
                    let name = cf::text(IOReportChannelGetChannelName(channel)).unwrap_or_default();
                    let unit = cf::text(IOReportChannelGetUnitLabel(channel)).unwrap_or_default();
                    // Only the channels counted are read (cheap either way).
                    let value = if ioreport_unit(&name).is_some() { IOReportSimpleGetIntegerValue(channel, 0) } else { 0 };
                    (name, unit, value)
                })
                .collect();
            let uj = ioreport_sum(channels.iter().map(|(n, u, v)| (n.as_str(), u.as_str(), *v)));
            Some(uj.iter().map(|v| v.max(0.0) as u64).collect())
        }
    }
}

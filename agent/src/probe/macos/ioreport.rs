//! CPU, GPU and ANE energy on Apple Silicon without root, from IOReport's "Energy Model" group
//! (the counters `powermetrics` and Activity Monitor read). A subscription is taken once; each
//! reading is the energy each kind of unit used since then, in microjoules, so the energy meter
//! treats it like any cumulative counter.

use std::ffi::c_void;

use super::cf::{self, CFDictionaryRef, CFStringRef, Owned};
use crate::probe::energy::{ioreport_unit, microjoules_per};

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

impl Channels {
    /// Subscribes to the "Energy Model" channels; an error where IOReport offers none.
    pub fn open() -> Result<Channels, String> {
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
            Ok(Channels { subscription, subscribed, start })
        }
    }

    /// Microjoules per kind of unit ([`UNITS`]) since the subscription started.
    pub fn read(&self) -> Option<Vec<u64>> {
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
            let mut uj = [0f64; 3];
            for channel in cf::items(cf::get(delta.0, "IOReportChannels")) {
                let name = cf::text(IOReportChannelGetChannelName(channel)).unwrap_or_default();
                let unit = cf::text(IOReportChannelGetUnitLabel(channel)).unwrap_or_default();
                if let (Some(i), Some(scale)) = (ioreport_unit(&name), microjoules_per(&unit)) {
                    uj[i] += IOReportSimpleGetIntegerValue(channel, 0) as f64 * scale;
                }
            }
            Some(uj.iter().map(|v| v.max(0.0) as u64).collect())
        }
    }
}

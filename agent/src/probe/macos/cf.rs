//! The few CoreFoundation calls the IOKit and IOReport probes need, on raw pointers: owned
//! strings and dictionaries released on drop, and reads of arrays, dictionaries and strings.

use std::ffi::{CString, c_char, c_void};

pub type CFTypeRef = *const c_void;
pub type CFStringRef = *const c_void;
pub type CFDictionaryRef = *const c_void;
pub type CFArrayRef = *const c_void;

const UTF8: u32 = 0x0800_0100; // kCFStringEncodingUTF8

#[link(name = "CoreFoundation", kind = "framework")]
unsafe extern "C" {
    fn CFStringCreateWithCString(alloc: CFTypeRef, s: *const c_char, encoding: u32) -> CFStringRef;
    fn CFStringGetCString(s: CFStringRef, buf: *mut c_char, size: isize, encoding: u32) -> bool;
    fn CFDictionaryGetValue(d: CFDictionaryRef, key: CFTypeRef) -> CFTypeRef;
    fn CFArrayGetCount(a: CFArrayRef) -> isize;
    fn CFArrayGetValueAtIndex(a: CFArrayRef, i: isize) -> CFTypeRef;
    fn CFRelease(t: CFTypeRef);
}

/// A CoreFoundation object this code owns (from a Create or Copy call); released on drop.
pub struct Owned(pub CFTypeRef);

impl Drop for Owned {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from a Create/Copy call and is released once.
            unsafe { CFRelease(self.0) };
        }
    }
}

// SAFETY: CoreFoundation objects are immutable or used from one thread at a time here.
unsafe impl Send for Owned {}

/// A new CFString.
pub fn string(s: &str) -> Owned {
    let c = CString::new(s.replace('\0', "")).unwrap_or_default();
    // SAFETY: a valid NUL-terminated UTF-8 string.
    Owned(unsafe { CFStringCreateWithCString(std::ptr::null(), c.as_ptr(), UTF8) })
}

/// A CFString's text; `None` for null or non-UTF-8.
///
/// # Safety
/// `s` is null or a valid CFString.
pub unsafe fn text(s: CFStringRef) -> Option<String> {
    if s.is_null() {
        return None;
    }
    let mut buf = [0 as c_char; 256];
    // SAFETY: the buffer's size is passed; CF writes a NUL-terminated string into it.
    let ok = unsafe { CFStringGetCString(s, buf.as_mut_ptr(), buf.len() as isize, UTF8) };
    // SAFETY: CF wrote a NUL-terminated string when it returned true.
    ok.then(|| unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
}

/// `d[key]`, borrowed from the dictionary.
///
/// # Safety
/// `d` is a valid CFDictionary with CFString keys.
pub unsafe fn get(d: CFDictionaryRef, key: &str) -> CFTypeRef {
    let k = string(key);
    // SAFETY: both are valid CF objects.
    unsafe { CFDictionaryGetValue(d, k.0) }
}

/// The items of a CFArray, borrowed from it.
///
/// # Safety
/// `a` is null or a valid CFArray.
pub unsafe fn items(a: CFArrayRef) -> Vec<CFTypeRef> {
    if a.is_null() {
        return Vec::new();
    }
    // SAFETY: indices below the array's count.
    unsafe { (0..CFArrayGetCount(a)).map(|i| CFArrayGetValueAtIndex(a, i)).collect() }
}

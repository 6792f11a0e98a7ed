//! What one credential may upload: a number of uploads at once and a number of bytes stored, in
//! flight and left unfinished (an abandoned partial counts until it is finished or expires).
//! Admins have no quota. A refused upload says what is used and what is allowed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tonic::Status;

use crate::access::{Principal, Role};

/// Uploads one credential may run at once.
pub const MAX_CONCURRENT: u32 = 4;

pub struct Quota {
    /// Bytes one user may hold (stored artifacts they uploaded, plus unfinished uploads).
    pub bytes: u64,
    /// Uploads in progress per credential name.
    in_flight: Mutex<HashMap<String, u32>>,
    /// Unfinished uploads, in progress or abandoned: digest → (who started it, its full size).
    partials: Mutex<HashMap<String, (String, u64)>>,
}

impl Quota {
    pub fn new(bytes: u64) -> Quota {
        Quota { bytes, in_flight: Mutex::new(HashMap::new()), partials: Mutex::new(HashMap::new()) }
    }

    /// Bytes of `who`'s unfinished uploads but `except`'s.
    fn partial_bytes(&self, who: &str, except: &str) -> u64 {
        let Ok(p) = self.partials.lock() else { return 0 };
        p.iter().filter(|(d, (w, _))| w == who && d.as_str() != except).map(|(_, (_, n))| n).sum()
    }

    /// `digest`'s upload ended: stored, or its partial removed.
    pub fn forget_partial(&self, digest: &str) {
        if let Ok(mut p) = self.partials.lock() {
            p.remove(digest);
        }
    }
}

/// A slot held for one upload, given back when the call ends however it ends; the upload's
/// bytes count against its uploader until it is stored or its partial expires.
pub struct Reservation {
    quota: Arc<Quota>,
    who: String,
}

impl Reservation {
    /// Reserves an upload of `digest` (`size` bytes in all) for `who`, who already stores `stored` bytes.
    pub fn take(quota: &Arc<Quota>, who: &Principal, stored: u64, digest: &str, size: u64) -> Result<Option<Reservation>, Status> {
        if who.role == Role::Admin {
            return Ok(None);
        }
        let used = stored.saturating_add(quota.partial_bytes(&who.name, digest));
        let mut m = quota.in_flight.lock().map_err(|_| Status::internal("quota lock poisoned"))?;
        let count = m.get(&who.name).copied().unwrap_or(0);
        if count >= MAX_CONCURRENT {
            return Err(Status::resource_exhausted(format!(
                "credential `{}` has {count} uploads in progress, the most at once: wait for one to end",
                who.name
            )));
        }
        if used.saturating_add(size) > quota.bytes {
            return Err(Status::resource_exhausted(format!(
                "credential `{}` holds {used} bytes of artifacts and unfinished uploads; {size} more would pass its quota \
                 of {} bytes (coordinator serve --upload-quota-gib)",
                who.name, quota.bytes
            )));
        }
        m.insert(who.name.clone(), count + 1);
        if let Ok(mut p) = quota.partials.lock() {
            p.insert(digest.to_string(), (who.name.clone(), size));
        }
        Ok(Some(Reservation { quota: quota.clone(), who: who.name.clone() }))
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Ok(mut m) = self.quota.in_flight.lock()
            && let Some(count) = m.get_mut(&self.who)
        {
            *count -= 1;
            if *count == 0 {
                m.remove(&self.who);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role) -> Principal {
        Principal { id: "c1".into(), name: "alice".into(), role, agent_id: String::new() }
    }

    #[test]
    fn a_user_holds_at_most_the_quota_and_four_uploads_at_once() {
        let q = Arc::new(Quota::new(1000));
        let alice = who(Role::User);
        let take = |stored, digest: &str, size| Reservation::take(&q, &alice, stored, digest, size);
        let e = take(600, "d1", 401).err().unwrap();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(
            e.message().contains("holds 600 bytes of artifacts and unfinished uploads; 401 more would pass its quota of 1000 bytes"),
            "{}",
            e.message()
        );
        let a = take(600, "d2", 300).unwrap();
        let e = take(600, "d3", 101).err().unwrap();
        assert!(e.message().contains("holds 900 bytes"), "{}", e.message());
        // The call ends with d2 unfinished: its 300 bytes still count, but not against d2 itself.
        drop(a);
        let e = take(600, "d3", 101).err().unwrap();
        assert!(e.message().contains("holds 900 bytes"), "{}", e.message());
        drop(take(600, "d2", 400).unwrap());
        q.forget_partial("d2");
        let held: Vec<_> = (0..4).map(|i| take(0, &format!("s{i}"), 1).unwrap()).collect();
        let e = take(0, "s9", 1).err().unwrap();
        assert!(e.message().contains("has 4 uploads in progress"), "{}", e.message());
        drop(held);
        (0..4).for_each(|i| q.forget_partial(&format!("s{i}")));
        assert!(take(0, "big", 1000).unwrap().is_some());
        assert!(Reservation::take(&q, &who(Role::Admin), 10_000, "x", 10_000).unwrap().is_none(), "admins have no quota");
    }
}

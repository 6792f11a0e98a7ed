//! What one credential may upload: a number of uploads at once and a number of bytes stored plus
//! in flight. Admins have no quota. A refused upload says what is used and what is allowed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tonic::Status;

use crate::access::{Principal, Role};

/// Uploads one credential may run at once.
pub const MAX_CONCURRENT: u32 = 4;

pub struct Quota {
    /// Bytes one user may hold (stored artifacts they uploaded, plus uploads in flight).
    pub bytes: u64,
    in_flight: Mutex<HashMap<String, (u32, u64)>>,
}

impl Quota {
    pub fn new(bytes: u64) -> Quota {
        Quota { bytes, in_flight: Mutex::new(HashMap::new()) }
    }
}

/// Bytes and a slot held for one upload, given back when it ends however it ends.
pub struct Reservation {
    quota: Arc<Quota>,
    who: String,
    bytes: u64,
}

impl Reservation {
    /// Reserves `bytes` for `who`, who already stores `stored` bytes.
    pub fn take(quota: &Arc<Quota>, who: &Principal, stored: u64, bytes: u64) -> Result<Option<Reservation>, Status> {
        if who.role == Role::Admin {
            return Ok(None);
        }
        let mut m = quota.in_flight.lock().map_err(|_| Status::internal("quota lock poisoned"))?;
        let (count, flying) = m.get(&who.name).copied().unwrap_or((0, 0));
        if count >= MAX_CONCURRENT {
            return Err(Status::resource_exhausted(format!(
                "credential `{}` has {count} uploads in progress, the most at once: wait for one to end",
                who.name
            )));
        }
        let used = stored.saturating_add(flying);
        if used.saturating_add(bytes) > quota.bytes {
            return Err(Status::resource_exhausted(format!(
                "credential `{}` holds {used} bytes of artifacts and uploads; {bytes} more would pass its quota of {} bytes \
                 (coordinator serve --upload-quota-gib)",
                who.name, quota.bytes
            )));
        }
        m.insert(who.name.clone(), (count + 1, flying + bytes));
        Ok(Some(Reservation { quota: quota.clone(), who: who.name.clone(), bytes }))
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Ok(mut m) = self.quota.in_flight.lock()
            && let Some((count, bytes)) = m.get_mut(&self.who)
        {
            *count -= 1;
            *bytes -= self.bytes;
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
        let e = Reservation::take(&q, &alice, 600, 401).err().unwrap();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(
            e.message().contains("holds 600 bytes of artifacts and uploads; 401 more would pass its quota of 1000 bytes"),
            "{}",
            e.message()
        );
        let a = Reservation::take(&q, &alice, 600, 300).unwrap();
        let e = Reservation::take(&q, &alice, 600, 101).err().unwrap();
        assert!(e.message().contains("holds 900 bytes"), "{}", e.message());
        drop(a);
        let held: Vec<_> = (0..4).map(|_| Reservation::take(&q, &alice, 0, 1).unwrap()).collect();
        let e = Reservation::take(&q, &alice, 0, 1).err().unwrap();
        assert!(e.message().contains("has 4 uploads in progress"), "{}", e.message());
        drop(held);
        assert!(Reservation::take(&q, &alice, 0, 1000).unwrap().is_some());
        assert!(Reservation::take(&q, &who(Role::Admin), 10_000, 10_000).unwrap().is_none(), "admins have no quota");
    }
}

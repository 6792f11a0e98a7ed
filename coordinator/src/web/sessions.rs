//! Browser sessions after a login: a random session id in an `HttpOnly`, `SameSite=Strict`
//! cookie (`Secure` under TLS) that expires, never the credential itself. The coordinator keeps
//! the id's SHA-256 with the credential it stands for; a revoked credential ends its sessions at
//! the next page, and a restart ends them all (sign in again).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub const COOKIE: &str = "anefleet_session";
/// How long a login lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Most sessions held at once; the oldest goes first when full.
const MAX_SESSIONS: usize = 10_000;

#[derive(Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], (String, Instant)>>,
}

impl Sessions {
    /// A new session for the credential `credential_id`; returns the cookie's value.
    pub fn open(&self, credential_id: &str, now: Instant) -> String {
        let mut id = [0u8; 32];
        rand::fill(&mut id);
        let value = hex::encode(id);
        if let Ok(mut m) = self.by_hash.lock() {
            m.retain(|_, (_, expires)| *expires > now);
            if m.len() >= MAX_SESSIONS
                && let Some(oldest) = m.iter().min_by_key(|(_, (_, e))| *e).map(|(k, _)| *k)
            {
                m.remove(&oldest);
            }
            m.insert(hash(&value), (credential_id.to_string(), now + LIFETIME));
        }
        value
    }

    /// The credential id of a live session.
    pub fn credential(&self, value: &str, now: Instant) -> Option<String> {
        let m = self.by_hash.lock().ok()?;
        m.get(&hash(value)).filter(|(_, expires)| *expires > now).map(|(c, _)| c.clone())
    }

    pub fn close(&self, value: &str) {
        if let Ok(mut m) = self.by_hash.lock() {
            m.remove(&hash(value));
        }
    }
}

fn hash(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// The `Set-Cookie` value for a new session.
pub fn cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", LIFETIME.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_names_its_credential_until_it_expires_or_closes() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let v = s.open("cred1", t0);
        assert_eq!(v.len(), 64);
        assert_eq!(s.credential(&v, t0 + Duration::from_secs(60)).as_deref(), Some("cred1"));
        assert_eq!(s.credential(&v, t0 + LIFETIME + Duration::from_secs(1)), None);
        assert_eq!(s.credential("not-a-session", t0), None);
        let w = s.open("cred2", t0);
        assert_ne!(v, w);
        s.close(&w);
        assert_eq!(s.credential(&w, t0), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_under_tls() {
        assert_eq!(cookie("ab", false), "anefleet_session=ab; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200");
        assert!(cookie("ab", true).ends_with("; Max-Age=43200; Secure"));
    }
}

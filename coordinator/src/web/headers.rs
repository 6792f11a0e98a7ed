//! Headers on every dashboard response: a Content-Security-Policy under which only the
//! dashboard's own inline scripts run (named by their SHA-256) and nothing loads from anywhere
//! else, so a name that slipped past escaping could still not run script; no framing (click
//! jacking), no MIME sniffing, no referrer.

use std::sync::OnceLock;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The inline scripts pages carry (`html::page`'s `script`).
const SCRIPTS: [&str; 2] = [super::run_page::LIVE, super::pages::REFRESH];

/// The policy: scripts by hash, inline styles (bars' widths), `data:` images (the favicon),
/// fetches and event streams to this origin only, forms posting here only.
pub fn policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        let hashes: Vec<String> = SCRIPTS
            .iter()
            .map(|s| format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))))
            .collect();
        format!(
            "default-src 'none'; script-src {}; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            hashes.join(" ")
        )
    })
}

pub async fn secure(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(policy()) {
        h.insert(CONTENT_SECURITY_POLICY, v);
    }
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_each_inline_script_by_its_hash_and_nothing_else_runs() {
        let p = policy();
        assert!(p.starts_with("default-src 'none'; script-src 'sha256-"), "{p}");
        // The REFRESH script's hash, computed apart: sha256 of its exact text.
        let refresh = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(super::super::pages::REFRESH.as_bytes()));
        assert!(p.contains(&format!("'sha256-{refresh}'")), "{p}");
        let script_src = p.split(';').find(|d| d.trim_start().starts_with("script-src")).expect("script-src");
        assert_eq!(script_src.matches("'sha256-").count(), SCRIPTS.len(), "{p}");
        assert!(!script_src.contains("unsafe"), "{p}");
        assert!(p.contains("frame-ancestors 'none'"), "{p}");
        HeaderValue::from_str(p).expect("a valid header value");
    }
}

//! Who may read the dashboard: anyone on a loopback address (when the request names this
//! machine as its Host); elsewhere a user or admin credential, as `authorization: Bearer
//! <token>` (Prometheus, scripts) or as a session cookie set by the login form (browsers).

use std::time::Instant;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::WebState;
use super::html::{Frame, esc, page, url};
use super::sessions::{COOKIE, cookie};
use crate::access::{Principal, Role, grpc::bearer};

/// The principal a request presents, from the header or the session cookie.
fn principal(web: &super::Web, headers: &HeaderMap) -> Option<Principal> {
    if let Some(t) = bearer(headers) {
        return web.access.authenticate(&t);
    }
    let session = session_cookie(headers)?;
    let credential = web.sessions.credential(&session, Instant::now())?;
    web.access.principal(&credential)
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Pages are for people and their tools: users and admins, not agents.
pub fn allowed(web: &super::Web, headers: &HeaderMap) -> bool {
    web.open || principal(web, headers).is_some_and(|p| p.role != Role::Agent)
}

pub async fn require(State(web): State<WebState>, req: Request, next: Next) -> Response {
    if allowed(&web, req.headers()) {
        return next.run(req).await;
    }
    let wants_html = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if wants_html {
        let target = req.uri().path_and_query().map_or("/".to_string(), |p| p.to_string());
        return Redirect::to(&format!("/login?next={}", url(&target))).into_response();
    }
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "missing or wrong credential: send authorization: Bearer <token>\n")
        .into_response()
}

#[derive(serde::Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    token: String,
    next: Option<String>,
}

/// Only a path on this server, never another site: no `//`, no backslash, no whitespace or
/// control character (browsers drop a tab and read `/\t/evil.example` as `//evil.example`).
fn local(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') => n.to_string(),
        _ => "/".into(),
    }
}

fn form(next: &str, wrong: bool) -> Html<String> {
    let note = if wrong { "<p class=\"bad\">That is not a user's or an admin's credential of this coordinator.</p>" } else { "" };
    let body = format!(
        "{note}<form class=\"inline\" method=\"post\" action=\"/login\"><label>Credential (a user's token, or DATA_DIR/token)<br>\
         <input type=\"password\" name=\"token\" autocomplete=\"current-password\" size=\"70\"></label>\
         <input type=\"hidden\" name=\"next\" value=\"{}\"><button type=\"submit\">Sign in</button></form>",
        esc(next)
    );
    Html(page(Frame::Dashboard, "Sign in", &body, None))
}

pub async fn login_form(Query(q): Query<NextQuery>) -> Html<String> {
    form(&local(q.next.as_deref()), false)
}

pub async fn login(State(web): State<WebState>, axum::Form(f): axum::Form<LoginForm>) -> Response {
    let next = local(f.next.as_deref());
    let Some(p) = web.access.authenticate(&f.token).filter(|p| p.role != Role::Agent) else {
        return (StatusCode::UNAUTHORIZED, form(&next, true)).into_response();
    };
    let session = web.sessions.open(&p.id, Instant::now());
    ([(header::SET_COOKIE, cookie(&session, web.tls))], Redirect::to(&next)).into_response()
}

/// Ends the browser's session.
pub async fn logout(State(web): State<WebState>, headers: HeaderMap) -> Response {
    if let Some(s) = session_cookie(&headers) {
        web.sessions.close(&s);
    }
    ([(header::SET_COOKIE, format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"))], Redirect::to("/login")).into_response()
}

/// On a loopback address the dashboard asks no credential, so it answers only requests that
/// name this machine as their Host: a web page elsewhere that re-points its own name at
/// 127.0.0.1 (DNS rebinding) gets 421, not the dashboard.
pub async fn loopback_host(State(web): State<WebState>, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).or_else(|| req.uri().host());
    if web.open && !host.is_some_and(is_loopback_host) {
        return (StatusCode::MISDIRECTED_REQUEST, "this dashboard answers only for localhost, 127.0.0.1 or [::1]\n").into_response();
    }
    next.run(req).await
}

/// `localhost`, a 127.x address or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(n, _)| n),
        None => host.rsplit_once(':').map_or(host, |(n, port)| if port.bytes().all(|b| b.is_ascii_digit()) { n } else { host }),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_comes_from_its_cookie_only() {
        let mut h = HeaderMap::new();
        assert_eq!(session_cookie(&h), None);
        h.insert(header::COOKIE, "a=b; anefleet_session=s3cret".parse().unwrap());
        assert_eq!(session_cookie(&h).as_deref(), Some("s3cret"));
    }

    #[test]
    fn login_only_sends_people_to_this_server() {
        assert_eq!(local(Some("/runs/abc?x=1")), "/runs/abc?x=1");
        assert_eq!(local(Some("//evil.example")), "/");
        assert_eq!(local(Some("/\t/evil.example")), "/");
        assert_eq!(local(Some("/\\evil.example")), "/");
        assert_eq!(local(Some("/a\u{7}b")), "/");
        assert_eq!(local(Some("/a b")), "/");
        assert_eq!(local(Some("https://evil.example")), "/");
        assert_eq!(local(None), "/");
    }

    #[test]
    fn only_names_of_this_machine_are_loopback_hosts() {
        for h in ["localhost", "localhost:7070", "127.0.0.1", "127.0.0.1:7070", "127.1.2.3:80", "[::1]", "[::1]:7070", "LOCALHOST"] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["evil.example", "evil.example:7070", "localhost.evil.example", "127.0.0.1.evil.example", "10.0.0.1:7070", "[::2]:1", ""] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}

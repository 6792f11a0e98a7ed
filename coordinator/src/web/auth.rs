//! Who may read the dashboard: anyone on a loopback address; elsewhere the API's own token, as
//! `authorization: Bearer <token>` (Prometheus, scripts) or as a cookie set by the login form
//! (browsers).

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::WebState;
use super::html::{Frame, esc, page, url};

pub const COOKIE: &str = "anefleet_token";

/// The token a request presents, from the header or the cookie.
fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) {
        return Some(t.trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

pub fn allowed(web: &super::Web, headers: &HeaderMap) -> bool {
    web.open || presented(headers).is_some_and(|t| web.token.accepts(&t))
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
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "missing or wrong token: send authorization: Bearer <token>\n")
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

/// Only a path on this server, never another site.
fn local(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".into(),
    }
}

fn form(next: &str, wrong: bool) -> Html<String> {
    let note = if wrong { "<p class=\"bad\">That is not the coordinator's token.</p>" } else { "" };
    let body = format!(
        "{note}<form class=\"inline\" method=\"post\" action=\"/login\"><label>Token (DATA_DIR/token of the coordinator)<br>\
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
    if !web.token.accepts(&f.token) {
        return (StatusCode::UNAUTHORIZED, form(&next, true)).into_response();
    }
    let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", f.token.trim());
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_header_or_the_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert(header::COOKIE, "a=b; anefleet_token=s3cret".parse().unwrap());
        assert_eq!(presented(&h).as_deref(), Some("s3cret"));
        h.insert(header::AUTHORIZATION, "Bearer other".parse().unwrap());
        assert_eq!(presented(&h).as_deref(), Some("other"));
    }

    #[test]
    fn login_only_sends_people_to_this_server() {
        assert_eq!(local(Some("/runs/abc")), "/runs/abc");
        assert_eq!(local(Some("//evil.example")), "/");
        assert_eq!(local(Some("https://evil.example")), "/");
        assert_eq!(local(None), "/");
    }
}

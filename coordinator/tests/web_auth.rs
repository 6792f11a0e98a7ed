//! The dashboard off loopback: pages and `/metrics` need the API's token, as a bearer header or
//! as the cookie the login form sets; a wrong token gets nothing; gRPC on the same port is
//! unaffected.

mod common;

use common::Fleet;

fn http() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into()
}

#[test]
fn off_loopback_the_dashboard_asks_for_the_token() {
    let f = Fleet::start_on("0.0.0.0", 60);
    let token = std::fs::read_to_string(f.token_file()).expect("token").trim().to_string();
    let (base, h) = (f.url(), http());

    let r = h.get(&format!("{base}/metrics")).call().expect("GET /metrics");
    assert_eq!(r.status(), 401);
    let r = h.get(&format!("{base}/metrics")).header("authorization", "Bearer wrong").call().expect("GET");
    assert_eq!(r.status(), 401);
    let mut r = h.get(&format!("{base}/metrics")).header("authorization", &format!("Bearer {token}")).call().expect("GET");
    assert_eq!(r.status(), 200);
    assert!(r.body_mut().read_to_string().expect("body").contains("anefleet_agents{state=\"idle\"}"));

    // A browser is sent to the login form, and back where it was going with a cookie.
    let r = h.get(&format!("{base}/runs")).header("accept", "text/html").call().expect("GET /runs");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers().get("location").and_then(|v| v.to_str().ok()), Some("/login?next=%2Fruns"));
    let r = h.post(&format!("{base}/login")).send_form([("token", "wrong"), ("next", "/runs")]).expect("POST /login");
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = h.post(&format!("{base}/login")).send_form([("token", token.as_str()), ("next", "/runs")]).expect("POST /login");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers().get("location").and_then(|v| v.to_str().ok()), Some("/runs"));
    let cookie = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("a cookie").split(';').next().unwrap().to_string();
    let mut r = h.get(&format!("{base}/runs")).header("cookie", &cookie).call().expect("GET /runs");
    assert_eq!(r.status(), 200);
    assert!(r.body_mut().read_to_string().expect("body").contains("Runs, most recent first"));

    // gRPC shares the port and keeps its own check.
    let agents = f.json(&["agents", "--format", "json"]);
    assert!(agents.as_array().is_some());
}

#[test]
fn on_loopback_the_dashboard_is_open() {
    let f = Fleet::start(60);
    let r = http().get(&format!("{}/", f.url())).call().expect("GET /");
    assert_eq!(r.status(), 200);
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(
        header("content-security-policy").starts_with("default-src 'none'; script-src 'sha256-"),
        "{}",
        header("content-security-policy")
    );
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let r = http().get(&format!("{}/runs/nothing-here", f.url())).call().expect("GET");
    assert_eq!(r.status(), 404);
}

//! The dashboard off loopback: pages and `/metrics` need a user's or admin's credential, as a
//! bearer header or as the session cookie the login form sets (never the token itself); a wrong
//! token or an agent's gets nothing; `next` only leads to this server; gRPC on the same port is
//! unaffected. On loopback it is open, but only to requests that name this machine.

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
    let set_cookie = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("a cookie").to_string();
    assert!(!set_cookie.contains(&token), "the cookie carries the token: {set_cookie}");
    assert!(set_cookie.starts_with("anefleet_session="), "{set_cookie}");
    assert!(set_cookie.ends_with("; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let mut r = h.get(&format!("{base}/runs")).header("cookie", &cookie).call().expect("GET /runs");
    assert_eq!(r.status(), 200);
    assert!(r.body_mut().read_to_string().expect("body").contains("Runs, most recent first"));

    // A `next` a browser would read as another site, or with a control character: home instead.
    for next in ["/\t/evil.example", "//evil.example", "/\\evil.example", "/runs\u{1}"] {
        let r = h.post(&format!("{base}/login")).send_form([("token", token.as_str()), ("next", next)]).expect("POST /login");
        assert_eq!(r.status(), 303, "{next:?}");
        assert_eq!(r.headers().get("location").and_then(|v| v.to_str().ok()), Some("/"), "{next:?}");
    }
    // An agent's credential opens no page; a session ends with its credential.
    let agent = f.cli(&["credentials", "add", "mac-1", "--role", "agent"]);
    let agent = String::from_utf8_lossy(&agent.stdout).trim().to_string();
    let r = h.post(&format!("{base}/login")).send_form([("token", agent.as_str()), ("next", "/")]).expect("POST /login");
    assert_eq!(r.status(), 401);
    let r = h.get(&format!("{base}/metrics")).header("authorization", &format!("Bearer {agent}")).call().expect("GET");
    assert_eq!(r.status(), 401);
    let user = f.cli(&["credentials", "add", "alice", "--role", "user"]);
    let user = String::from_utf8_lossy(&user.stdout).trim().to_string();
    let r = h.post(&format!("{base}/login")).send_form([("token", user.as_str()), ("next", "/")]).expect("POST /login");
    let alice = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("a cookie").split(';').next().unwrap().to_string();
    assert_eq!(h.get(&format!("{base}/runs")).header("cookie", &alice).call().expect("GET").status(), 200);
    assert!(f.cli(&["credentials", "revoke", "alice"]).status.success());
    assert_eq!(h.get(&format!("{base}/runs")).header("cookie", &alice).call().expect("GET").status(), 401);

    // gRPC shares the port and keeps its own check.
    let agents = f.json(&["agents", "--format", "json"]);
    assert_eq!(agents.as_array().map(Vec::len), Some(0), "{agents}");
}

#[test]
fn on_loopback_the_dashboard_answers_only_for_this_machine() {
    let f = Fleet::start(60);
    let url = format!("{}/metrics", f.url());
    for host in ["evil.example", "evil.example:80", "localhost.evil.example", "127.0.0.1.nip.io"] {
        let r = http().get(&url).header("host", host).call().expect("GET");
        assert_eq!(r.status(), 421, "Host: {host}");
    }
    for host in ["localhost", format!("127.0.0.1:{}", f.port).as_str(), "[::1]"] {
        let r = http().get(&url).header("host", host).call().expect("GET");
        assert_eq!(r.status(), 200, "Host: {host}");
    }
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

//! Credentials with roles on real processes: each role's forbidden calls are refused with the
//! reason, an agent credential is one agent (its name, its identity), nobody can take over an
//! enrolled agent, and a revoked credential stops working at once — its agent's session too.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use common::{Fleet, QUICK_SPEC, wait_until};

/// Makes a credential through the CLI (as the admin); returns its token file.
fn credential(f: &Fleet, name: &str, role: &str) -> PathBuf {
    let file = f.dir.path().join(format!("{name}.token"));
    let out = f.cli(&["credentials", "add", name, "--role", role, "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "credentials add {name}: {}", String::from_utf8_lossy(&out.stderr));
    file
}

fn token(file: &PathBuf) -> String {
    std::fs::read_to_string(file).unwrap().trim().to_string()
}

fn refused(out: &Output, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(says), "expected {says:?} in: {stderr}");
}

fn agent_state(f: &Fleet, name: &str) -> Option<String> {
    let agents = f.json(&["agents", "--format", "json"]);
    agents.as_array()?.iter().find(|a| a["name"] == name).and_then(|a| a["state"].as_str().map(String::from))
}

#[test]
fn each_role_is_refused_what_it_may_not_do() {
    let mut f = Fleet::start(60);
    let (alice, bob, mac) = (credential(&f, "alice", "user"), credential(&f, "bob", "user"), credential(&f, "mac-1", "agent"));
    let (alice, bob) = (token(&alice), token(&bob));
    f.start_agent_with("mac-1", &[], &mac, "agent-mac-1");
    f.wait_for_agents(1);

    // A user submits and reads, and may cancel only their own runs; never credentials or baselines.
    let spec = f.write_spec("roles.toml", QUICK_SPEC);
    let out = f.cli_as(&alice, &["submit", spec.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().to_string();
    refused(
        &f.cli_as(&bob, &["cancel", &run]),
        &format!("run {run} was submitted by `alice`: credential `bob` may cancel only its own runs"),
    );
    refused(
        &f.cli_as(&alice, &["credentials", "list"]),
        "credential `alice` (role user) may not call /anefleet.v1.Credentials/ListCredentials",
    );
    refused(&f.cli_as(&bob, &["baseline", "save", "b", &run]), "may not call /anefleet.v1.Runs/SaveBaseline: it needs the role admin");
    let done = f.wait_for_run(&run, Duration::from_secs(120));
    assert_eq!(done["run"]["state"], "finished", "{done}");
    assert_eq!(done["cells"][0]["agent"], "mac-1", "{done}");

    // An agent's credential runs cells, nothing else.
    let mac_token = token(&mac);
    refused(&f.cli_as(&mac_token, &["runs"]), "credential `mac-1` (role agent) may not call /anefleet.v1.Runs/ListRuns");
    refused(&f.cli_as(&mac_token, &["submit", spec.to_str().unwrap()]), "role agent");

    // The admin lists credentials (never their tokens) and sees the agent's bound identity.
    let list = f.json(&["credentials", "list", "--format", "json"]);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob", "mac-1"]);
    let id = std::fs::read_to_string(f.dir.path().join("agent-mac-1").join("agent-id")).unwrap();
    assert_eq!(list[2]["agent_id"], id.trim());
    assert!(!list.to_string().contains(&alice), "a token in the listing");
}

#[test]
fn nobody_becomes_an_enrolled_agent_and_revoking_ends_its_session() {
    let mut f = Fleet::start(60);
    let mac = credential(&f, "mac-1", "agent");
    let alice = credential(&f, "alice", "user");
    f.start_agent_with("mac-1", &[], &mac, "agent-mac-1");
    f.wait_for_agents(1);
    let id = std::fs::read_to_string(f.dir.path().join("agent-mac-1").join("agent-id")).unwrap();

    // The admin token with the enrolled agent's identity (its cache copied), another name: refused.
    let thief = f.dir.path().join("agent-thief");
    std::fs::create_dir_all(&thief).unwrap();
    std::fs::write(thief.join("agent-id"), &id).unwrap();
    f.start_agent_with("thief", &[], &f.token_file(), "agent-thief");
    // The agent credential under another name, and a user's credential: refused.
    f.start_agent_with("mac-2", &[], &mac, "agent-mac-2");
    f.start_agent_with("alice", &[], &alice, "agent-alice");
    for (log, says) in [
        ("agent-thief-1.log", "is enrolled with credential `mac-1`"),
        ("agent-mac-2-2.log", "credential `mac-1` is for the agent named `mac-1`, not `mac-2`"),
        ("agent-alice-3.log", "may not call /anefleet.v1.AgentService/Session"),
    ] {
        let path = f.dir.path().join(log);
        wait_until(&format!("{log} to say it was refused"), Duration::from_secs(30), || {
            std::fs::read_to_string(&path).ok().filter(|l| l.contains(says)).map(|_| ())
        });
    }
    assert_eq!(agent_state(&f, "mac-1").as_deref(), Some("idle"), "the real agent keeps its session");
    let agents = f.json(&["agents", "--format", "json"]);
    assert_eq!(agents.as_array().unwrap().len(), 1, "{agents}");

    let out = f.cli(&["credentials", "revoke", "mac-1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_until("the revoked agent to be offline", Duration::from_secs(60), || {
        (agent_state(&f, "mac-1").as_deref() == Some("offline")).then_some(())
    });
    let log = f.dir.path().join("agent-mac-1-0.log");
    wait_until("the revoked agent to be refused on reconnect", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).ok().filter(|l| l.contains("missing or wrong credential")).map(|_| ())
    });
}

/// Every gRPC method, called raw with each role's credential: the forbidden ones answer
/// PERMISSION_DENIED before any work, the allowed ones get past the check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_checks_the_role_of_its_caller() {
    use anefleet_proto::auth::BearerToken;
    use anefleet_proto::pb;
    use tonic::Code;

    let f = tokio::task::block_in_place(|| Fleet::start(60));
    let (agent, user) = tokio::task::block_in_place(|| (token(&credential(&f, "mac-1", "agent")), token(&credential(&f, "alice", "user"))));
    let channel = tonic::transport::Channel::from_shared(f.url()).unwrap().connect().await.unwrap();

    /// The code each method answers `token` with.
    async fn codes(channel: &tonic::transport::Channel, token: &str) -> Vec<(&'static str, Code)> {
        let t = BearerToken::new(token).unwrap();
        let mut runs = pb::runs_client::RunsClient::with_interceptor(channel.clone(), t.clone());
        let mut creds = pb::credentials_client::CredentialsClient::with_interceptor(channel.clone(), t.clone());
        let mut arts = pb::artifacts_client::ArtifactsClient::with_interceptor(channel.clone(), t.clone());
        let mut agents = pb::agent_service_client::AgentServiceClient::with_interceptor(channel.clone(), t);
        let code = |r: Result<(), tonic::Status>| r.err().map_or(Code::Ok, |s| s.code());
        let digest = format!("sha256:{}", "0".repeat(64));
        vec![
            ("ListRuns", code(runs.list_runs(pb::ListRunsRequest::default()).await.map(drop))),
            ("ListAgents", code(runs.list_agents(pb::ListAgentsRequest::default()).await.map(drop))),
            ("GetResults", code(runs.get_results(pb::GetResultsRequest { run_id: "none".into() }).await.map(drop))),
            ("SubmitRun", code(runs.submit_run(pb::SubmitRunRequest::default()).await.map(drop))),
            ("CancelRun", code(runs.cancel_run(pb::CancelRunRequest { run_id: "none".into(), ..Default::default() }).await.map(drop))),
            ("SaveBaseline", code(runs.save_baseline(pb::SaveBaselineRequest::default()).await.map(drop))),
            ("ListBaselines", code(runs.list_baselines(pb::ListBaselinesRequest::default()).await.map(drop))),
            ("ListCredentials", code(creds.list_credentials(pb::ListCredentialsRequest {}).await.map(drop))),
            (
                "CreateCredential",
                code(creds.create_credential(pb::CreateCredentialRequest { name: "x".into(), role: "admin".into() }).await.map(drop)),
            ),
            ("RevokeCredential", code(creds.revoke_credential(pb::RevokeCredentialRequest { name: "alice".into() }).await.map(drop))),
            ("Stat", code(arts.stat(pb::StatArtifactRequest { digest: digest.clone() }).await.map(drop))),
            ("Upload", code(arts.upload(tokio_stream::iter(Vec::<pb::UploadRequest>::new())).await.map(drop))),
            ("Session", code(agents.session(tokio_stream::iter(Vec::<pb::AgentMessage>::new())).await.map(drop))),
        ]
    }
    let forbidden = |role: &str| -> &'static [&'static str] {
        match role {
            "agent" => &[
                "ListRuns",
                "ListAgents",
                "GetResults",
                "SubmitRun",
                "CancelRun",
                "SaveBaseline",
                "ListBaselines",
                "ListCredentials",
                "CreateCredential",
                "RevokeCredential",
                "Upload",
            ],
            _ => &["SaveBaseline", "ListCredentials", "CreateCredential", "RevokeCredential", "Session"],
        }
    };
    for (role, token) in [("agent", &agent), ("user", &user)] {
        for (method, code) in codes(&channel, token).await {
            if forbidden(role).contains(&method) {
                assert_eq!(code, Code::PermissionDenied, "{role} calling {method}");
            } else {
                assert!(!matches!(code, Code::PermissionDenied | Code::Unauthenticated), "{role} calling {method}: {code:?}");
            }
        }
    }
    // Nothing was created or revoked by the refused calls.
    let list = tokio::task::block_in_place(|| f.json(&["credentials", "list", "--format", "json"]));
    let state: Vec<(String, u64)> =
        list.as_array().unwrap().iter().map(|c| (c["name"].as_str().unwrap().into(), c["revoked_unix_ms"].as_u64().unwrap())).collect();
    assert_eq!(state, [("mac-1".to_string(), 0), ("alice".to_string(), 0)]);
}

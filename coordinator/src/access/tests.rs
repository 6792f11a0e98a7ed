use std::sync::Arc;

use anefleet_proto::pb;

use super::*;

fn access() -> (tempfile::TempDir, Arc<Store>, AccessRef) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db")).unwrap());
    let access = Access::load(store.clone(), "bootstrap-secret").unwrap();
    (dir, store, access)
}

fn hello(id: &str, name: &str) -> pb::Hello {
    pb::Hello { agent_id: id.into(), name: name.into(), ..Default::default() }
}

#[test]
fn tokens_stand_for_their_credential_until_revoked() {
    let (_d, store, access) = access();
    assert_eq!(access.authenticate("bootstrap-secret").map(|p| p.role), Some(Role::Admin));
    let (cred, token) = access.create("alice", "user").unwrap();
    assert!(token.starts_with(&format!("anefleet_{}_", cred.id)), "{token}");
    let p = access.authenticate(&token).unwrap();
    assert_eq!((p.name.as_str(), p.role), ("alice", Role::User));
    // One character of the secret changed: refused.
    let mut wrong = token.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    assert_eq!(access.authenticate(&wrong), None);
    assert_eq!(access.authenticate("anefleet_zz_zz"), None);
    // Survives a restart (only the hash is stored), not a revocation.
    let reloaded = Access::load(store.clone(), "bootstrap-secret").unwrap();
    assert_eq!(reloaded.authenticate(&token).map(|p| p.id), Some(cred.id.clone()));
    access.revoke("alice").unwrap();
    assert_eq!(access.authenticate(&token), None);
    let e = identity::admit(&access, &store, &p, &hello("id-1", "alice")).unwrap_err();
    assert!(e.to_string().contains("credential `alice` was revoked"), "{e}");
    assert_eq!(access.principal(&cred.id), None);
    assert_eq!(Access::load(store, "bootstrap-secret").unwrap().authenticate(&token), None);
}

#[test]
fn names_and_roles_are_checked() {
    let (_d, _s, access) = access();
    assert!(access.create("mac-1", "root").unwrap_err().to_string().contains("role `root` is not one of agent, user, admin"));
    assert!(access.create("<script>", "user").unwrap_err().to_string().contains("credential name \"<script>\""));
    assert!(access.create("admin", "user").unwrap_err().to_string().contains("bootstrap token"));
    access.create("mac-1", "agent").unwrap();
    assert!(access.create("mac-1", "agent").unwrap_err().to_string().contains("a credential named `mac-1` exists"));
    access.revoke("mac-1").unwrap();
    access.create("mac-1", "agent").unwrap();
    assert_eq!(access.list().unwrap().len(), 2);
    // A person's name stays theirs after revocation: their runs are kept by it.
    access.create("alice", "user").unwrap();
    access.revoke("alice").unwrap();
    for role in ["user", "admin", "agent"] {
        let e = access.create("alice", role).unwrap_err().to_string();
        assert!(e.contains("`alice` was a revoked user credential's name"), "{role}: {e}");
    }
}

#[test]
fn an_agent_credential_is_one_agent_bound_at_its_first_session() {
    let (_d, store, access) = access();
    let (_, token) = access.create("mac-1", "agent").unwrap();
    let p = access.authenticate(&token).unwrap();
    let e = identity::admit(&access, &store, &p, &hello("id-1", "mac-2")).unwrap_err();
    assert!(e.to_string().contains("is for the agent named `mac-1`, not `mac-2`"), "{e}");
    identity::admit(&access, &store, &p, &hello("id-1", "mac-1")).unwrap();
    // Bound now: the same credential from another identity is refused, the same one admitted again.
    let p = access.authenticate(&token).unwrap();
    assert_eq!(p.agent_id, "id-1");
    let e = identity::admit(&access, &store, &p, &hello("id-2", "mac-1")).unwrap_err();
    assert!(e.to_string().contains("belongs to agent id id-1, not id-2"), "{e}");
    identity::admit(&access, &store, &p, &hello("id-1", "mac-1")).unwrap();
    // The admin token cannot open a session as the enrolled agent, by id or by name.
    let admin = access.authenticate("bootstrap-secret").unwrap();
    for h in [hello("id-1", "other"), hello("id-9", "mac-1")] {
        let e = identity::admit(&access, &store, &admin, &h).unwrap_err();
        assert!(e.to_string().contains("is enrolled with credential `mac-1`"), "{e}");
    }
    // A user's credential opens no session.
    let (_, user) = access.create("alice", "user").unwrap();
    let e = identity::admit(&access, &store, &access.authenticate(&user).unwrap(), &hello("id-5", "alice")).unwrap_err();
    assert!(e.to_string().contains("is a user's"), "{e}");
}

#[test]
fn a_name_belongs_to_the_first_identity_that_used_it() {
    let (_d, store, access) = access();
    let admin = access.authenticate("bootstrap-secret").unwrap();
    let h = hello("id-1", "studio");
    identity::admit(&access, &store, &admin, &h).unwrap();
    store.upsert_agent(&h).unwrap();
    identity::admit(&access, &store, &admin, &h).unwrap();
    let e = identity::admit(&access, &store, &admin, &hello("id-2", "studio")).unwrap_err();
    assert!(e.to_string().contains("the name `studio` belongs to agent id id-1"), "{e}");
    let e = identity::admit(&access, &store, &admin, &hello("id-1", "thief")).unwrap_err();
    assert!(e.to_string().contains("agent id id-1 is known as `studio`"), "{e}");
}

#[test]
fn a_revoked_agents_identity_cannot_be_taken_under_another_name() {
    let (_d, store, access) = access();
    let (_, token) = access.create("mac-1", "agent").unwrap();
    let h = hello("id-1", "mac-1");
    identity::admit(&access, &store, &access.authenticate(&token).unwrap(), &h).unwrap();
    store.upsert_agent(&h).unwrap();
    access.revoke("mac-1").unwrap();
    let admin = access.authenticate("bootstrap-secret").unwrap();
    let e = identity::admit(&access, &store, &admin, &hello("id-1", "thief")).unwrap_err();
    assert!(e.to_string().contains("agent id id-1 is known as `mac-1`"), "{e}");
}

#[test]
fn every_grpc_method_needs_its_roles() {
    use grpc::allowed_roles;
    let cases: &[(&str, &[Role])] = &[
        ("/anefleet.v1.AgentService/Session", &[Role::Agent, Role::Admin]),
        ("/anefleet.v1.Artifacts/Read", &[Role::Agent, Role::User, Role::Admin]),
        ("/anefleet.v1.Artifacts/Upload", &[Role::User, Role::Admin]),
        ("/anefleet.v1.Runs/SubmitRun", &[Role::User, Role::Admin]),
        ("/anefleet.v1.Runs/CancelRun", &[Role::User, Role::Admin]),
        ("/anefleet.v1.Runs/SaveBaseline", &[Role::Admin]),
        ("/anefleet.v1.Credentials/CreateCredential", &[Role::Admin]),
        ("/anefleet.v1.Future/Anything", &[Role::Admin]),
        ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", &[Role::Agent, Role::User, Role::Admin]),
    ];
    for (path, roles) in cases {
        assert_eq!(allowed_roles(path), Some(*roles), "{path}");
    }
    for page in ["/", "/runs", "/runs/abc", "/runs/abc/panels", "/metrics", "/login"] {
        assert_eq!(allowed_roles(page), None, "{page}");
    }
}

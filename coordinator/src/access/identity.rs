//! Which agent a session may claim to be. An agent credential is one agent: its name is the
//! credential's, and its identity is the one of its first session (bound then, for good). Admin
//! tokens may still run agents (the quickstart, fleets not yet enrolled) but never as an enrolled
//! agent, and a name belongs to the first identity that used it: a second identity cannot merge
//! its figures into another device's series.

use anefleet_proto::pb;

use super::{Access, Principal, Role};
use crate::error::{CoordError, Result};
use crate::store::Store;

/// `Ok` when `p` may open a session as the agent `hello` names; binds an agent credential at
/// its first session.
pub fn admit(access: &Access, store: &Store, p: &Principal, hello: &pb::Hello) -> Result<()> {
    // The call was authenticated when the stream opened; the hello may come much later.
    if access.principal(&p.id).is_none() {
        return Err(denied(format!("credential `{}` was revoked", p.name)));
    }
    match p.role {
        Role::Agent => admit_enrolled(access, store, p, hello),
        Role::Admin => admit_unenrolled(access, store, hello),
        Role::User => Err(denied(format!("credential `{}` is a user's: agents need an agent credential", p.name))),
    }
}

fn admit_enrolled(access: &Access, store: &Store, p: &Principal, hello: &pb::Hello) -> Result<()> {
    if hello.name != p.name {
        return Err(denied(format!(
            "credential `{}` is for the agent named `{}`, not `{}`: start the agent with --name {}",
            p.name, p.name, hello.name, p.name
        )));
    }
    if !p.agent_id.is_empty() {
        if p.agent_id != hello.agent_id {
            return Err(denied(format!(
                "credential `{}` belongs to agent id {}, not {} (a new cache dir?): an admin revokes it and creates a new one to enrol this agent again",
                p.name, p.agent_id, hello.agent_id
            )));
        }
        return Ok(());
    }
    if let Some((_, other, _)) = access.agent_credential(&hello.agent_id, "").filter(|(id, _, _)| *id != p.id) {
        return Err(denied(format!("agent id {} is enrolled with credential `{other}`", hello.agent_id)));
    }
    if let Some(known) = store.agent_name(&hello.agent_id)?.filter(|n| *n != hello.name) {
        return Err(denied(format!("agent id {} is already known as `{known}`", hello.agent_id)));
    }
    access.bind(&p.id, &hello.agent_id)
}

fn admit_unenrolled(access: &Access, store: &Store, hello: &pb::Hello) -> Result<()> {
    if let Some((_, name, _)) = access.agent_credential(&hello.agent_id, &hello.name) {
        return Err(denied(format!(
            "agent `{}` ({}) is enrolled with credential `{name}`: only that credential opens its sessions",
            hello.name, hello.agent_id
        )));
    }
    // An identity keeps its name: taking a known id under another name would put one machine's
    // figures under another's series (and an identity whose credential was revoked stays its own).
    let known = store.agent_name(&hello.agent_id)?;
    if let Some(known) = known.as_ref().filter(|n| **n != hello.name) {
        return Err(denied(format!(
            "agent id {} is known as `{known}`: start it with --name {known}, or give a new name a new cache dir",
            hello.agent_id
        )));
    }
    let known_as_this = known.is_some();
    let others = store.agent_ids_named(&hello.name)?.into_iter().filter(|id| *id != hello.agent_id).collect::<Vec<_>>();
    if !known_as_this && let Some(other) = others.first() {
        return Err(denied(format!(
            "the name `{}` belongs to agent id {other}: start this agent with another --name (figures are kept per name)",
            hello.name
        )));
    }
    Ok(())
}

fn denied(msg: String) -> CoordError {
    CoordError::PermissionDenied(msg)
}

//! Who may do what: credentials with a role (agent, user, admin), checked on every gRPC call and
//! every page. The bootstrap token (DATA_DIR/token, written at the first start) is an admin
//! credential, so the first start works in one command; `coordinator credentials add` makes the
//! others. Only each secret's SHA-256 is kept, in the database and in memory.

pub mod grpc;
pub mod identity;
mod token;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anefleet_proto::pb;

use crate::error::{CoordError, Result};
use crate::store::{Store, StoredCredential, now_ms};
pub use token::Token;

/// What a credential may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Run cells: the agent session and artifact downloads, as the one agent it is bound to.
    Agent,
    /// Submit, read and cancel their own runs; upload artifacts.
    User,
    /// Everything: credentials, baselines, any run.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "agent" => Ok(Role::Agent),
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            _ => Err(CoordError::InvalidArgument(format!("role `{s}` is not one of agent, user, admin"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// The caller of a request, once its token was accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The credential's id ("bootstrap" for DATA_DIR/token).
    pub id: String,
    pub name: String,
    pub role: Role,
    /// An agent credential's bound identity ("" until its first session).
    pub agent_id: String,
}

pub const BOOTSTRAP_ID: &str = "bootstrap";

/// The credentials, kept in memory (the coordinator is their only writer) and in the store.
pub struct Access {
    store: Arc<Store>,
    bootstrap: [u8; 32],
    live: RwLock<HashMap<String, StoredCredential>>,
}

pub type AccessRef = Arc<Access>;

impl Access {
    /// Loads the live credentials; `bootstrap_token` is the admin token of DATA_DIR/token.
    pub fn load(store: Arc<Store>, bootstrap_token: &str) -> Result<AccessRef> {
        let live = RwLock::new(live_credentials(&store)?);
        Ok(Arc::new(Access { store, bootstrap: token::hash(bootstrap_token.trim()), live }))
    }

    /// Reads the credentials again: another replica of a shared store created, bound or revoked one.
    pub fn reload(&self) -> Result<()> {
        let live = live_credentials(&self.store)?;
        *self.write()? = live;
        Ok(())
    }

    /// The principal a presented token stands for; `None` for an unknown, malformed or revoked one.
    pub fn authenticate(&self, presented: &str) -> Option<Principal> {
        let presented = presented.trim();
        if token::same(&token::hash(presented), &self.bootstrap) {
            return Some(bootstrap());
        }
        let t = Token::parse(presented)?;
        let live = self.live.read().ok()?;
        let c = live.get(&t.id)?;
        token::same(&token::hash(&t.secret), &c.secret_hash).then(|| principal(c))?
    }

    /// The principal of a credential id while it is valid (web sessions re-check on every page).
    pub fn principal(&self, id: &str) -> Option<Principal> {
        if id == BOOTSTRAP_ID {
            return Some(bootstrap());
        }
        self.live.read().ok()?.get(id).and_then(principal)
    }

    /// Creates a credential; the token is returned once and kept nowhere.
    pub fn create(&self, name: &str, role: &str) -> Result<(pb::Credential, String)> {
        let role = Role::parse(role.trim())?;
        let name = check_name(name)?;
        if name == "admin" {
            return Err(CoordError::InvalidArgument("the name `admin` is the bootstrap token's (DATA_DIR/token): pick another".into()));
        }
        let t = Token::generate();
        let c = StoredCredential {
            id: t.id.clone(),
            name: name.to_string(),
            role: role.as_str().into(),
            secret_hash: token::hash(&t.secret),
            agent_id: String::new(),
            created_ms: now_ms(),
            revoked_ms: 0,
        };
        self.store.insert_credential(&c)?;
        self.write()?.insert(c.id.clone(), c.clone());
        self.store.changed();
        tracing::info!(name = %c.name, role = %c.role, "credential created");
        Ok((to_pb(&c), t.to_string()))
    }

    pub fn list(&self) -> Result<Vec<pb::Credential>> {
        Ok(self.store.credentials()?.iter().map(to_pb).collect())
    }

    /// Revokes at once: the next call, session message or page with it is refused.
    pub fn revoke(&self, name: &str) -> Result<pb::Credential> {
        let c = self.store.revoke_credential(name)?;
        self.write()?.remove(&c.id);
        self.store.changed();
        tracing::warn!(name = %c.name, role = %c.role, "credential revoked");
        Ok(to_pb(&c))
    }

    /// The live agent credential bound to `agent_id`, or named `name`.
    pub fn agent_credential(&self, agent_id: &str, name: &str) -> Option<(String, String, String)> {
        let live = self.live.read().ok()?;
        live.values()
            .find(|c| c.role == "agent" && ((!c.agent_id.is_empty() && c.agent_id == agent_id) || c.name == name))
            .map(|c| (c.id.clone(), c.name.clone(), c.agent_id.clone()))
    }

    /// Binds an agent credential to the identity of its first session.
    pub fn bind(&self, credential_id: &str, agent_id: &str) -> Result<()> {
        if !self.store.bind_credential(credential_id, agent_id)? {
            return Err(CoordError::FailedPrecondition("the credential was bound to another agent meanwhile".into()));
        }
        if let Some(c) = self.write()?.get_mut(credential_id) {
            c.agent_id = agent_id.to_string();
        }
        self.store.changed();
        tracing::info!(credential = credential_id, agent = agent_id, "agent credential bound to its agent");
        Ok(())
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, HashMap<String, StoredCredential>>> {
        self.live.write().map_err(|_| CoordError::Internal("credentials lock poisoned".into()))
    }
}

fn live_credentials(store: &Store) -> Result<HashMap<String, StoredCredential>> {
    Ok(store.credentials()?.into_iter().filter(|c| c.revoked_ms == 0).map(|c| (c.id.clone(), c)).collect())
}

/// The admin that DATA_DIR/token stands for.
fn bootstrap() -> Principal {
    Principal { id: BOOTSTRAP_ID.into(), name: "admin".into(), role: Role::Admin, agent_id: String::new() }
}

fn principal(c: &StoredCredential) -> Option<Principal> {
    let role = Role::parse(&c.role).ok()?;
    Some(Principal { id: c.id.clone(), name: c.name.clone(), role, agent_id: c.agent_id.clone() })
}

/// A credential name: 1 to 64 of letters, digits, `-`, `_`, `.` (it is also an agent's name).
fn check_name(name: &str) -> Result<&str> {
    let ok = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        return Err(CoordError::InvalidArgument(format!("credential name {name:?}: use 1 to 64 letters, digits, `-`, `_` or `.`")));
    }
    Ok(name)
}

fn to_pb(c: &StoredCredential) -> pb::Credential {
    pb::Credential {
        id: c.id.clone(),
        name: c.name.clone(),
        role: c.role.clone(),
        agent_id: c.agent_id.clone(),
        created_unix_ms: c.created_ms,
        revoked_unix_ms: c.revoked_ms,
    }
}

#[cfg(test)]
mod tests;

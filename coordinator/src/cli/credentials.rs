//! `coordinator credentials add | list | revoke`: who may call the coordinator (admin only).

use std::path::{Path, PathBuf};

use anyhow::Context;

use anefleet_proto::auth::BearerToken;
use anefleet_proto::pb;
use anefleet_proto::pb::credentials_client::CredentialsClient;
use tonic::service::interceptor::InterceptedService;

use super::{ClientArgs, Format};

#[derive(clap::Subcommand, Debug)]
pub enum CredentialsCommand {
    /// Make a credential; its token is printed (or written with --out) once and kept nowhere.
    Add {
        /// For an agent credential, the agent's --name.
        name: String,
        /// agent: runs cells as the one agent it is bound to at its first session; user: submits,
        /// reads and cancels its own runs, uploads; admin: everything.
        #[arg(long, value_parser = ["agent", "user", "admin"])]
        role: String,
        /// Write the token to this new file (mode 0600) instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Every credential, revoked ones too (never their tokens).
    List {
        #[arg(long, value_enum, default_value = "md")]
        format: Format,
    },
    /// Refuse a credential from now on: its calls, its agent's session and its web logins.
    Revoke { name: String },
}

pub async fn credentials(client: &ClientArgs, command: CredentialsCommand) -> anyhow::Result<()> {
    let (channel, token) = client.channel().await?;
    let mut c = CredentialsClient::new(InterceptedService::new(channel, token));
    match command {
        CredentialsCommand::Add { name, role, out } => add(client, &mut c, name, role, out.as_deref()).await,
        CredentialsCommand::List { format } => {
            let list = c.list_credentials(pb::ListCredentialsRequest {}).await.map_err(|s| client.refused(&s))?.into_inner();
            print!("{}", render(&list.credentials, format));
            Ok(())
        }
        CredentialsCommand::Revoke { name } => {
            let r = c.revoke_credential(pb::RevokeCredentialRequest { name }).await.map_err(|s| client.refused(&s))?.into_inner();
            eprintln!("revoked {} ({})", r.name, r.role);
            Ok(())
        }
    }
}

type Client = CredentialsClient<InterceptedService<tonic::transport::Channel, BearerToken>>;

async fn add(client: &ClientArgs, c: &mut Client, name: String, role: String, out: Option<&Path>) -> anyhow::Result<()> {
    if let Some(f) = out
        && f.exists()
    {
        anyhow::bail!("{} exists: --out writes a new file only", f.display());
    }
    let made = c.create_credential(pb::CreateCredentialRequest { name, role }).await.map_err(|s| client.refused(&s))?.into_inner();
    let cred = made.credential.unwrap_or_default();
    match out {
        Some(f) => {
            crate::serve::write_private(f, &made.token).with_context(|| format!("writing {}", f.display()))?;
            eprintln!("made the {} credential `{}`: its token is in {} (0600)", cred.role, cred.name, f.display());
        }
        None => {
            eprintln!("made the {} credential `{}`; its token (shown once):", cred.role, cred.name);
            println!("{}", made.token);
        }
    }
    Ok(())
}

fn render(list: &[pb::Credential], format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(&list.iter().map(json).collect::<Vec<_>>()).unwrap_or_default() + "\n",
        Format::Csv => {
            let mut s = String::from("name,role,agent_id,created_unix_ms,state\n");
            for c in list {
                s += &format!("{},{},{},{},{}\n", c.name, c.role, c.agent_id, c.created_unix_ms, state(c));
            }
            s
        }
        Format::Md => {
            let mut s = String::from("| name | role | agent id | created | state |\n|---|---|---|---|---|\n");
            for c in list {
                let agent = if c.agent_id.is_empty() { "-" } else { &c.agent_id };
                let created =
                    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(c.created_unix_ms));
                s += &format!("| {} | {} | {agent} | {created} | {} |\n", c.name, c.role, state(c));
            }
            s
        }
    }
}

fn state(c: &pb::Credential) -> &'static str {
    if c.revoked_unix_ms > 0 { "revoked" } else { "valid" }
}

fn json(c: &pb::Credential) -> serde_json::Value {
    serde_json::json!({
        "name": c.name, "role": c.role, "agent_id": c.agent_id,
        "created_unix_ms": c.created_unix_ms, "revoked_unix_ms": c.revoked_unix_ms,
    })
}

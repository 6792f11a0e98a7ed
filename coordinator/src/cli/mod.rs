//! The client commands: every one talks to a coordinator over gRPC with the bearer token.

pub mod baseline;
pub mod compare;
pub mod quickstart;
pub mod report;
pub mod show;
pub mod submit;

use std::path::PathBuf;

use anyhow::Context;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use anefleet_proto::auth::{BearerToken, TOKEN_ENV, client_token};
use anefleet_proto::{MAX_MESSAGE_BYTES, pb};

/// Where the coordinator is and how to prove who we are. Global, so a command with subcommands
/// (`baseline save …`) takes them after its subcommand as well as before it.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// The coordinator's URL.
    #[arg(long, global = true, env = "ANEFLEET_COORDINATOR", default_value = "http://127.0.0.1:7070")]
    pub coordinator: String,
    /// File holding the bearer token (otherwise the ANEFLEET_TOKEN environment variable).
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
}

pub type Authed = InterceptedService<Channel, BearerToken>;

pub struct Clients {
    pub runs: pb::runs_client::RunsClient<Authed>,
    pub artifacts: pb::artifacts_client::ArtifactsClient<Authed>,
}

impl ClientArgs {
    pub fn token(&self) -> anyhow::Result<String> {
        client_token(self.token_file.as_deref()).map_err(anyhow::Error::msg)
    }

    /// Connects and proves the token with one small call, so a wrong address or token is told
    /// apart, with what to do about it, before any command starts its work.
    pub async fn connect(&self) -> anyhow::Result<Clients> {
        let not_a_url = || format!("`{}` is not a coordinator URL (like http://127.0.0.1:7070)", self.coordinator);
        if !self.coordinator.starts_with("http://") && !self.coordinator.starts_with("https://") {
            anyhow::bail!(not_a_url());
        }
        let token = BearerToken::new(&self.token()?).map_err(anyhow::Error::msg)?;
        let channel = Endpoint::from_shared(self.coordinator.clone())
            .with_context(not_a_url)?
            .connect_timeout(std::time::Duration::from_secs(10))
            .connect()
            .await
            .with_context(|| {
                format!(
                    "cannot reach the coordinator at {}: is `coordinator serve` running there? \
                     (pass --coordinator URL or set ANEFLEET_COORDINATOR)",
                    self.coordinator
                )
            })?;
        let mut clients = Clients {
            runs: pb::runs_client::RunsClient::with_interceptor(channel.clone(), token.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            artifacts: pb::artifacts_client::ArtifactsClient::with_interceptor(channel, token).max_decoding_message_size(MAX_MESSAGE_BYTES),
        };
        if let Err(s) = clients.runs.list_runs(pb::ListRunsRequest { limit: 1 }).await {
            return Err(self.refused(&s));
        }
        Ok(clients)
    }

    fn refused(&self, s: &tonic::Status) -> anyhow::Error {
        let source = match &self.token_file {
            Some(f) => format!("the token in {}", f.display()),
            None => format!("the token in {TOKEN_ENV}"),
        };
        match s.code() {
            tonic::Code::Unauthenticated => anyhow::anyhow!(
                "the coordinator at {} refused {source} ({}): use the token that coordinator wrote at its first start, \
                 DATA_DIR/token (e.g. --token-file ./fleet/token)",
                self.coordinator,
                s.message()
            ),
            _ => anyhow::anyhow!("the coordinator at {} answered: {} ({:?})", self.coordinator, s.message(), s.code()),
        }
    }
}

/// Output formats of the listing commands.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Md,
    Json,
    Csv,
}

pub use anefleet_proto::spec::InvalidSpec;

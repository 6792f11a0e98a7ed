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

use anefleet_proto::auth::{BearerToken, client_token};
use anefleet_proto::{MAX_MESSAGE_BYTES, pb};

/// Where the coordinator is and how to prove who we are.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// The coordinator's URL.
    #[arg(long, env = "ANEFLEET_COORDINATOR", default_value = "http://127.0.0.1:7070")]
    pub coordinator: String,
    /// File holding the bearer token (otherwise the ANEFLEET_TOKEN environment variable).
    #[arg(long)]
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

    pub async fn connect(&self) -> anyhow::Result<Clients> {
        let token = BearerToken::new(&self.token()?).map_err(anyhow::Error::msg)?;
        let channel = Endpoint::from_shared(self.coordinator.clone())
            .with_context(|| format!("coordinator URL `{}`", self.coordinator))?
            .connect_timeout(std::time::Duration::from_secs(10))
            .connect()
            .await
            .with_context(|| format!("connecting to the coordinator at {}", self.coordinator))?;
        Ok(Clients {
            runs: pb::runs_client::RunsClient::with_interceptor(channel.clone(), token.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            artifacts: pb::artifacts_client::ArtifactsClient::with_interceptor(channel, token).max_decoding_message_size(MAX_MESSAGE_BYTES),
        })
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

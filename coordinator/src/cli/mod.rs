//! The client commands: every one talks to a coordinator over gRPC with the bearer token.

pub mod baseline;
pub mod compare;
pub mod credentials;
pub mod quickstart;
pub mod report;
pub mod show;
pub mod submit;

use std::path::PathBuf;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

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
    /// A CA certificate (PEM) to trust for an https:// coordinator instead of the system's roots
    /// (DATA_DIR/tls/ca.pem of a coordinator serving --tls-self-signed).
    #[arg(long, global = true, env = "ANEFLEET_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for a coordinator that asks for one (mutual TLS), with --client-key.
    #[arg(long, global = true)]
    pub client_cert: Option<PathBuf>,
    #[arg(long, global = true)]
    pub client_key: Option<PathBuf>,
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
        let (channel, token) = self.channel().await?;
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

    /// A connected channel (plaintext or TLS, as the URL says) and the bearer token to send.
    pub async fn channel(&self) -> anyhow::Result<(Channel, BearerToken)> {
        let tls = anefleet_proto::tls::ClientTls {
            ca_file: self.ca_file.clone(),
            identity: anefleet_proto::tls::identity(self.client_cert.as_deref(), self.client_key.as_deref()).map_err(anyhow::Error::msg)?,
        };
        let endpoints = anefleet_proto::tls::endpoints(&self.coordinator, &tls).map_err(anyhow::Error::msg)?;
        let token = BearerToken::new(&self.token()?).map_err(anyhow::Error::msg)?;
        // Replicas of one store, in the order given: the first that answers.
        let mut failed = Vec::new();
        for endpoint in endpoints {
            let uri = endpoint.uri().to_string();
            match endpoint.connect_timeout(std::time::Duration::from_secs(10)).connect().await {
                Ok(channel) => return Ok((channel, token)),
                Err(e) => failed.push(format!("{uri}: {:#}", anyhow::Error::new(e))),
            }
        }
        anyhow::bail!(
            "cannot reach the coordinator at {} ({}): is `coordinator serve` running there? \
             (pass --coordinator URL or set ANEFLEET_COORDINATOR; an https:// coordinator with a \
             private CA needs --ca-file)",
            self.coordinator,
            failed.join("; ")
        )
    }

    pub fn refused(&self, s: &tonic::Status) -> anyhow::Error {
        let source = match &self.token_file {
            Some(f) => format!("the token in {}", f.display()),
            None => format!("the token in {TOKEN_ENV}"),
        };
        match s.code() {
            tonic::Code::Unauthenticated => anyhow::anyhow!(
                "the coordinator at {} refused {source} ({}): use a credential of that coordinator (one made by \
                 `coordinator credentials add`, or DATA_DIR/token, e.g. --token-file ./fleet/token)",
                self.coordinator,
                s.message()
            ),
            tonic::Code::PermissionDenied => anyhow::anyhow!("the coordinator at {} refused: {}", self.coordinator, s.message()),
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

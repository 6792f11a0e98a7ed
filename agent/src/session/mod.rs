//! `agent run`: one long-lived session with the coordinator. The agent dials, says hello,
//! runs the cells it is assigned one at a time, and reconnects with jittered backoff forever.

mod backoff;
mod cell;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use anefleet_proto::MAX_MESSAGE_BYTES;
use anefleet_proto::auth::BearerToken;
use anefleet_proto::pb::{self, agent_message, coordinator_message::Body};

use crate::cache::Cache;
use crate::probe;

pub type Authed = InterceptedService<Channel, BearerToken>;

/// Who this agent is and where it reports.
pub struct AgentConfig {
    pub coordinator: String,
    pub token: String,
    pub cache_dir: PathBuf,
    pub name: String,
    pub tags: Vec<String>,
    /// Before each cell, wait (bounded) until the hottest thermal sensor reads below this.
    pub cool_below_c: Option<f64>,
}

/// The stable identity kept in the cache dir, created on first start.
pub fn agent_id(cache_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = cache_dir.join("agent-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim().to_string();
        if !id.is_empty() {
            return Ok(id);
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

/// Connects, serves, reconnects; returns only on a configuration error.
pub async fn run_forever(cfg: AgentConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.cache_dir).with_context(|| format!("creating cache dir {}", cfg.cache_dir.display()))?;
    let cache = Arc::new(Cache::open(&cfg.cache_dir)?);
    let id = agent_id(&cfg.cache_dir)?;
    let token = BearerToken::new(&cfg.token).map_err(anyhow::Error::msg)?;
    let endpoint = Endpoint::from_shared(cfg.coordinator.clone())
        .with_context(|| format!("coordinator URL `{}`", cfg.coordinator))?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(20));
    let units = crate::backend::probe_units();
    tracing::info!(name = %cfg.name, id = %id, units = ?units.iter().map(|u| format!("{}:{}", u.backend, u.unit)).collect::<Vec<_>>(), "agent starting");
    let mut backoff = backoff::Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    loop {
        let hello = pb::Hello {
            agent_id: id.clone(),
            name: cfg.name.clone(),
            tags: cfg.tags.clone(),
            profile: Some(probe::device::profile()),
            units: units.clone(),
            cached_digests: cache.digests(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
        };
        match session(&endpoint, token.clone(), hello, cache.clone(), &mut backoff, cfg.cool_below_c).await {
            Ok(()) => tracing::warn!("session ended; reconnecting"),
            Err(e) if is_auth_error(&e) => tracing::error!(error = %format!("{e:#}"), "the coordinator refused the token; retrying"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "session failed; reconnecting"),
        }
        let wait = backoff.next_delay();
        tracing::info!(wait_ms = wait.as_millis() as u64, "reconnecting after backoff");
        tokio::time::sleep(wait).await;
    }
}

fn is_auth_error(e: &anyhow::Error) -> bool {
    e.downcast_ref::<tonic::Status>().is_some_and(|s| s.code() == tonic::Code::Unauthenticated)
}

/// One session: hello, then assignments until the stream ends.
async fn session(
    endpoint: &Endpoint,
    token: BearerToken,
    hello: pb::Hello,
    cache: Arc<Cache>,
    backoff: &mut backoff::Backoff,
    cool_below_c: Option<f64>,
) -> anyhow::Result<()> {
    let channel = endpoint.connect().await.context("connecting")?;
    let mut sessions = pb::agent_service_client::AgentServiceClient::with_interceptor(channel.clone(), token.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let artifacts = pb::artifacts_client::ArtifactsClient::with_interceptor(channel, token).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let (tx, rx) = mpsc::channel::<pb::AgentMessage>(256);
    tx.send(pb::AgentMessage { body: Some(agent_message::Body::Hello(hello)) }).await?;
    let mut inbound = sessions.session(tokio_stream::wrappers::ReceiverStream::new(rx)).await.map_err(anyhow::Error::new)?.into_inner();
    backoff.reset();
    tracing::info!("session open");
    let mut runner = cell::Runner::new(cache, artifacts, tx.clone(), cool_below_c);
    let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
    let result = loop {
        tokio::select! {
            msg = inbound.next() => match msg {
                Some(Ok(m)) => match m.body {
                    Some(Body::Welcome(w)) => {
                        let s = u64::from(w.heartbeat_interval_s.clamp(1, 60));
                        heartbeat = tokio::time::interval(Duration::from_secs(s));
                    }
                    Some(Body::Assign(a)) => runner.assign(a).await,
                    Some(Body::Cancel(c)) => runner.cancel(&c.cell_id, &c.reason),
                    Some(Body::Ping(_)) | None => {}
                },
                Some(Err(e)) => break Err(anyhow::Error::new(e).context("session stream")),
                None => break Ok(()),
            },
            _ = heartbeat.tick() => {
                let hb = pb::Heartbeat { running_cell_id: runner.running().unwrap_or_default(), unix_ms: probe_now_ms() };
                if tx.send(pb::AgentMessage { body: Some(agent_message::Body::Heartbeat(hb)) }).await.is_err() {
                    break Ok(());
                }
            }
        }
    };
    // The coordinator re-queues whatever was in flight; stop it before the next session.
    runner.abandon().await;
    result
}

fn probe_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

//! `agent run`: one long-lived session with the coordinator. The agent dials, says hello,
//! runs the cells it is assigned one at a time, and reconnects with jittered backoff until it is
//! asked to stop ([`stop`]).

mod backoff;
mod cell;
pub mod stop;

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
use stop::{Stop, StopLevel};

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
    /// The CA and client certificate for an https:// coordinator.
    pub tls: anefleet_proto::tls::ClientTls,
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

/// How long a stopping agent waits for the coordinator to take its last reports and close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// How a session ended.
enum Ended {
    /// The coordinator closed it: reconnect.
    Closed,
    /// The agent was asked to stop and its running cell is reported.
    Stopped,
}

/// Connects, serves, reconnects; returns when `stop` asks for it, or on a configuration error.
pub async fn run_forever(cfg: AgentConfig, mut stop: Stop) -> anyhow::Result<()> {
    anefleet_proto::auth::create_private_dir(&cfg.cache_dir).with_context(|| format!("creating cache dir {}", cfg.cache_dir.display()))?;
    if anefleet_proto::auth::make_private(&cfg.cache_dir, &["agent-id"])
        .with_context(|| format!("making {} private", cfg.cache_dir.display()))?
    {
        tracing::warn!(cache_dir = %cfg.cache_dir.display(), "the cache dir was readable by other users: now 0700, agent-id 0600");
    }
    let cache = Arc::new(Cache::open(&cfg.cache_dir)?);
    let id = agent_id(&cfg.cache_dir)?;
    let token = BearerToken::new(&cfg.token).map_err(anyhow::Error::msg)?;
    let endpoint = anefleet_proto::tls::endpoint(&cfg.coordinator, &cfg.tls)
        .map_err(anyhow::Error::msg)?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(20));
    let units = crate::backend::probe_units();
    tracing::info!(name = %cfg.name, id = %id, units = ?units.iter().map(|u| format!("{}:{}", u.backend, u.unit)).collect::<Vec<_>>(), "agent starting");
    let mut backoff = backoff::Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    while stop.level() == StopLevel::Run {
        let hello = pb::Hello {
            agent_id: id.clone(),
            name: cfg.name.clone(),
            tags: cfg.tags.clone(),
            profile: Some(probe::device::profile()),
            units: units.clone(),
            cached_digests: cache.digests(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
        };
        let link = Link { endpoint: &endpoint, token: token.clone(), cache: cache.clone(), cool_below_c: cfg.cool_below_c };
        match session(link, hello, &mut backoff, &mut stop).await {
            Ok(Ended::Stopped) => break,
            Ok(Ended::Closed) => tracing::warn!("session ended; reconnecting"),
            Err(e) if is_auth_error(&e) => {
                tracing::error!(error = %format!("{e:#}"), "the coordinator refused this agent's credential; retrying")
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "session failed; reconnecting"),
        }
        let wait = backoff.next_delay();
        tracing::info!(wait_ms = wait.as_millis() as u64, "reconnecting after backoff");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
    tracing::info!("agent stopped");
    Ok(())
}

fn is_auth_error(e: &anyhow::Error) -> bool {
    e.downcast_ref::<tonic::Status>().is_some_and(|s| matches!(s.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied))
}

/// What every session of this agent is made with.
struct Link<'a> {
    endpoint: &'a Endpoint,
    token: BearerToken,
    cache: Arc<Cache>,
    cool_below_c: Option<f64>,
}

/// One session: hello, then assignments until the stream ends or the agent is stopped.
async fn session(link: Link<'_>, hello: pb::Hello, backoff: &mut backoff::Backoff, stop: &mut Stop) -> anyhow::Result<Ended> {
    let Link { endpoint, token, cache, cool_below_c } = link;
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
        let stopping = stop.level() > StopLevel::Run;
        tokio::select! {
            msg = inbound.next() => match msg {
                Some(Ok(m)) => match m.body {
                    Some(Body::Welcome(w)) => {
                        let s = u64::from(w.heartbeat_interval_s.clamp(1, 60));
                        heartbeat = tokio::time::interval(Duration::from_secs(s));
                    }
                    // The coordinator re-queues it when the session closes.
                    Some(Body::Assign(a)) if stopping => tracing::info!(cell = %a.cell_id, "stopping: not starting the cell"),
                    Some(Body::Assign(a)) => runner.assign(a).await,
                    Some(Body::Cancel(c)) => runner.cancel(&c.cell_id, &c.reason),
                    Some(Body::Ping(_)) | None => {}
                },
                Some(Err(e)) => break Err(anyhow::Error::new(e).context("session stream")),
                None => break Ok(Ended::Closed),
            },
            level = stop.changed() => on_stop(&mut runner, level).await,
            () = runner.finished(), if stopping => break Ok(Ended::Stopped),
            _ = heartbeat.tick() => {
                let hb = pb::Heartbeat { running_cell_id: runner.running().unwrap_or_default(), unix_ms: probe_now_ms() };
                if tx.send(pb::AgentMessage { body: Some(agent_message::Body::Heartbeat(hb)) }).await.is_err() {
                    break Ok(Ended::Closed);
                }
            }
        }
    };
    match result {
        Ok(Ended::Stopped) => {
            // Nothing runs any more: end the stream so the coordinator takes every report, then close.
            drop((runner, tx));
            close(inbound).await;
        }
        // The coordinator re-queues whatever was in flight; stop it before the next session.
        _ => runner.abandon().await,
    }
    result
}

/// The first request to stop lets the running cell finish; the second cancels it.
async fn on_stop(runner: &mut cell::Runner, level: StopLevel) {
    match (level, runner.running()) {
        (StopLevel::Drain, Some(cell)) => tracing::info!(%cell, "stopping: finishing the running cell first"),
        (StopLevel::Cancel, Some(_)) => runner.cancel_for_stop().await,
        _ => {}
    }
}

/// Waits (bounded) for the coordinator to end its side once this side has ended.
async fn close(mut inbound: tonic::Streaming<pb::CoordinatorMessage>) {
    let drained = tokio::time::timeout(CLOSE_WAIT, async { while let Some(Ok(_)) = inbound.next().await {} });
    if drained.await.is_err() {
        tracing::warn!("the coordinator did not close the session in time");
    }
}

fn probe_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

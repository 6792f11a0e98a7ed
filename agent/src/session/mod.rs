//! `agent run`: one long-lived session with the coordinator. The agent dials, says hello,
//! runs the cells it is assigned one at a time, and reconnects with jittered backoff until it is
//! asked to stop ([`stop`]). What a cell reports is written to the [`outbox`] before it is sent
//! and forgotten only when the coordinator acknowledges it, so a broken session, a restarted
//! coordinator or a restarted agent loses no finished measurement.

mod backoff;
pub mod cell;
pub mod outbox;
mod pump;
pub mod stop;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use anefleet_proto::auth::BearerToken;
use anefleet_proto::pb::{self, agent_message, coordinator_message::Body};
use anefleet_proto::{CHUNK_BYTES, MAX_MESSAGE_BYTES};

use crate::cache::Cache;
use crate::probe;
use outbox::Outbox;
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
    /// Bound on the outbox's interval histograms (a cell's final result is always kept).
    pub outbox_max_bytes: u64,
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

/// The endpoint downloads use: the sessions' one with HTTP/2 receive windows that grow to the
/// link's bandwidth-delay product (hyper's BDP estimate, up to 16 MiB) and frames of up to
/// [`CHUNK_BYTES`]. The artifacts come as a stream of 1 MiB chunks. With hyper's fixed 2 MiB
/// stream window a link of 20 ms round trip carried 65 MB/s, with the adaptive one 330 MB/s (a
/// fixed 8 MiB: 225 MB/s); on a fast local link the window stays small, so fewer bytes are in
/// flight when a download is cut. HTTP/2's 16 KiB frames cut each chunk in 64: 1 MiB frames took
/// 15-20% off the coordinator's CPU per download on loopback, and 10% off the time.
pub(crate) fn for_downloads(endpoint: Endpoint) -> Endpoint {
    endpoint.http2_adaptive_window(true).max_frame_size(CHUNK_BYTES as u32)
}

/// How long a stopping agent waits for the coordinator to acknowledge its last reports and close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// How a session ended.
enum Ended {
    /// The coordinator closed it: reconnect.
    Closed,
    /// The agent was asked to stop and its running cell is reported.
    Stopped,
}

/// The sessions' endpoints: every coordinator of a comma-separated list, in order.
pub(crate) fn session_endpoints(coordinators: &str, tls: &anefleet_proto::tls::ClientTls) -> anyhow::Result<Vec<Endpoint>> {
    let list = anefleet_proto::tls::endpoints(coordinators, tls).map_err(anyhow::Error::msg)?;
    Ok(list
        .into_iter()
        .map(|e| {
            e.connect_timeout(Duration::from_secs(10))
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(20))
        })
        .collect())
}

/// The downloads' channel: to the one coordinator, or balanced over those of a list that answer.
pub(crate) fn downloads(endpoints: &[Endpoint]) -> tonic::transport::Channel {
    match endpoints {
        [one] => for_downloads(one.clone()).connect_lazy(),
        several => tonic::transport::Channel::balance_list(several.iter().cloned().map(for_downloads)),
    }
}

/// Connects, serves, reconnects; returns when `stop` asks for it, or on a configuration error.
/// The running cell outlives its session: it goes on measuring while the agent reconnects, its
/// reports wait in the outbox, and the next session says what it runs and holds.
pub async fn run_forever(cfg: AgentConfig, mut stop: Stop) -> anyhow::Result<()> {
    anefleet_proto::auth::create_private_dir(&cfg.cache_dir).with_context(|| format!("creating cache dir {}", cfg.cache_dir.display()))?;
    if anefleet_proto::auth::make_private(&cfg.cache_dir, &["agent-id"])
        .with_context(|| format!("making {} private", cfg.cache_dir.display()))?
    {
        tracing::warn!(cache_dir = %cfg.cache_dir.display(), "the cache dir was readable by other users: now 0700, agent-id 0600");
    }
    let cache = Arc::new(Cache::open(&cfg.cache_dir)?);
    let outbox_dir = cfg.cache_dir.join("outbox");
    let outbox = Arc::new(Outbox::open(&outbox_dir, cfg.outbox_max_bytes).with_context(|| format!("opening {}", outbox_dir.display()))?);
    if !outbox.is_empty() {
        tracing::info!(entries = outbox.len(), finished = outbox.finished().len(), "reports from before the restart wait in the outbox");
    }
    let id = agent_id(&cfg.cache_dir)?;
    let token = BearerToken::new(&cfg.token).map_err(anyhow::Error::msg)?;
    let endpoints = session_endpoints(&cfg.coordinator, &cfg.tls)?;
    // Downloads use a channel of their own that reconnects by itself: a cell fetching its model
    // does not depend on the session it was assigned on (with several coordinators, it goes to
    // one that answers).
    let artifacts = pb::artifacts_client::ArtifactsClient::with_interceptor(downloads(&endpoints), token.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let mut runner = cell::Runner::new(cache.clone(), artifacts, outbox.clone(), cfg.cool_below_c);
    let units = crate::backend::probe_units();
    tracing::info!(name = %cfg.name, id = %id, units = ?units.iter().map(|u| format!("{}:{}", u.backend, u.unit)).collect::<Vec<_>>(), "agent starting");
    let mut backoff = backoff::Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    // With several coordinators (replicas of one store), a session that fails or ends moves to
    // the next: the running cell is re-attached there.
    let mut next = 0;
    while stop.level() == StopLevel::Run {
        let endpoint = &endpoints[next % endpoints.len()];
        next += 1;
        let hello = pb::Hello {
            agent_id: id.clone(),
            name: cfg.name.clone(),
            tags: cfg.tags.clone(),
            profile: Some(probe::device::profile()),
            units: units.clone(),
            cached_digests: cache.digests(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            running: runner.running_attempt(),
            finished: outbox.finished(),
        };
        let link = Link { endpoint, token: token.clone(), outbox: outbox.clone() };
        match session(link, hello, &mut runner, &mut backoff, &mut stop).await {
            Ok(Ended::Stopped) => break,
            Ok(Ended::Closed) => tracing::warn!(running = ?runner.running(), "session ended; reconnecting"),
            Err(e) if is_auth_error(&e) => {
                tracing::error!(error = %format!("{e:#}"), "the coordinator refused this agent's credential; retrying")
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), running = ?runner.running(), "session failed; reconnecting"),
        }
        let wait = backoff.next_delay();
        tracing::info!(wait_ms = wait.as_millis() as u64, "reconnecting after backoff");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
    wind_down(&mut runner, &mut stop).await;
    if !outbox.is_empty() {
        tracing::warn!(
            entries = outbox.len(),
            "stopped with reports the coordinator has not acknowledged: they are sent at the next start"
        );
    }
    tracing::info!("agent stopped");
    Ok(())
}

/// Asked to stop while no session was open: the running cell finishes (its report goes to the
/// outbox), unless a second request cancels it.
async fn wind_down(runner: &mut cell::Runner, stop: &mut Stop) {
    if runner.running().is_none() {
        return;
    }
    if stop.level() == StopLevel::Drain {
        tracing::info!("stopping while away from the coordinator: finishing the running cell first");
        tokio::select! {
            () = runner.finished() => return,
            _ = stop.changed() => {}
        }
    }
    runner.cancel_for_stop().await;
}

fn is_auth_error(e: &anyhow::Error) -> bool {
    e.downcast_ref::<tonic::Status>().is_some_and(|s| matches!(s.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied))
}

/// What every session of this agent is made with.
struct Link<'a> {
    endpoint: &'a Endpoint,
    token: BearerToken,
    outbox: Arc<Outbox>,
}

/// One session: hello, the outbox's reports not yet acknowledged, then assignments and new
/// reports until the stream ends or the agent is stopped.
async fn session(
    link: Link<'_>,
    hello: pb::Hello,
    runner: &mut cell::Runner,
    backoff: &mut backoff::Backoff,
    stop: &mut Stop,
) -> anyhow::Result<Ended> {
    let Link { endpoint, token, outbox } = link;
    let channel = endpoint.connect().await.context("connecting")?;
    let mut sessions = pb::agent_service_client::AgentServiceClient::with_interceptor(channel, token)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let (tx, rx) = mpsc::channel::<pb::AgentMessage>(256);
    tx.send(pb::AgentMessage { body: Some(agent_message::Body::Hello(hello)), seq: 0 }).await?;
    let mut inbound = sessions.session(tokio_stream::wrappers::ReceiverStream::new(rx)).await.map_err(anyhow::Error::new)?.into_inner();
    backoff.reset();
    tracing::info!(replaying = outbox.len(), "session open");
    let mut pump = pump::Pump::new(outbox.clone());
    let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
    let mut closing: Option<tokio::time::Instant> = None;
    let result = loop {
        let stopping = stop.level() > StopLevel::Run;
        if let Some(deadline) = closing
            && (outbox.is_empty() || tokio::time::Instant::now() >= deadline)
        {
            break Ok(Ended::Stopped);
        }
        tokio::select! {
            msg = inbound.next() => match msg {
                Some(Ok(m)) => match m.body {
                    Some(Body::Welcome(w)) => {
                        let s = u64::from(w.heartbeat_interval_s.clamp(1, 60));
                        heartbeat = tokio::time::interval(Duration::from_secs(s));
                    }
                    Some(Body::Assign(a)) if stopping => {
                        tracing::info!(cell = %a.cell_id, "stopping: not starting the cell");
                        let _ = tx.send(cell::declined(a, "declined: the agent is stopping")).await;
                    }
                    Some(Body::Assign(a)) => runner.assign(a, &tx).await,
                    Some(Body::Cancel(c)) => runner.cancel(&c.cell_id, &c.reason),
                    Some(Body::Ack(a)) => pump.acknowledged(a).await,
                    Some(Body::Ping(_)) | None => {}
                },
                Some(Err(e)) => break Err(anyhow::Error::new(e).context("session stream")),
                None => break Ok(Ended::Closed),
            },
            sent = pump.send_new(&tx) => if sent.is_err() { break Ok(Ended::Closed) },
            level = stop.changed() => on_stop(runner, level).await,
            () = runner.finished(), if stopping && closing.is_none() => closing = Some(tokio::time::Instant::now() + CLOSE_WAIT),
            () = tokio::time::sleep_until(closing.unwrap_or_else(tokio::time::Instant::now)), if closing.is_some() => {}
            _ = heartbeat.tick() => {
                let hb = pb::Heartbeat { running_cell_id: runner.running().unwrap_or_default(), unix_ms: probe_now_ms() };
                if tx.send(pb::AgentMessage { body: Some(agent_message::Body::Heartbeat(hb)), seq: 0 }).await.is_err() {
                    break Ok(Ended::Closed);
                }
            }
        }
    };
    if let Ok(Ended::Stopped) = result {
        // Nothing runs any more and the reports are acknowledged (or wait in the outbox): end
        // the stream, then close.
        drop(tx);
        close(inbound).await;
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

//! `AgentService.Session`: one bidirectional stream per agent.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use anefleet_proto::pb::{self, agent_message::Body};

use crate::access::{AccessRef, grpc::caller, identity};
use crate::schedule::Scheduler;
use crate::store::Store;

/// Seconds between the heartbeats agents are asked to send: at most this, and a third of the
/// heartbeat timeout, so a healthy agent is never taken for a silent one.
pub const HEARTBEAT_INTERVAL_S: u32 = 5;

pub struct AgentService {
    pub scheduler: Arc<Scheduler>,
    pub access: AccessRef,
    pub store: Arc<Store>,
    /// Each report's time from received to acknowledged, by kind (`/metrics`).
    pub ingest: prometheus::HistogramVec,
}

type Outbound = Pin<Box<dyn Stream<Item = Result<pb::CoordinatorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl pb::agent_service_server::AgentService for AgentService {
    type SessionStream = Outbound;

    async fn session(&self, req: Request<Streaming<pb::AgentMessage>>) -> Result<Response<Outbound>, Status> {
        let principal = caller(&req)?.clone();
        let mut inbound = req.into_inner();
        let hello = match inbound.next().await {
            Some(Ok(pb::AgentMessage { body: Some(Body::Hello(h)), .. })) => h,
            Some(Err(e)) => return Err(e),
            _ => return Err(Status::invalid_argument("a session starts with Hello")),
        };
        validate_hello(&hello)?;
        let (access, store, p, h) = (self.access.clone(), self.store.clone(), principal.clone(), hello.clone());
        tokio::task::spawn_blocking(move || identity::admit(&access, &store, &p, &h))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let welcome = pb::CoordinatorMessage {
            body: Some(pb::coordinator_message::Body::Welcome(pb::Welcome {
                coordinator_version: env!("CARGO_PKG_VERSION").into(),
                heartbeat_interval_s: (self.scheduler.heartbeat_timeout.as_secs() / 3).clamp(1, u64::from(HEARTBEAT_INTERVAL_S)) as u32,
            })),
        };
        // The welcome goes first: connect() may already assign a cell.
        tx.send(Ok(welcome)).await.map_err(|_| Status::internal("session closed"))?;
        let agent_id = hello.agent_id.clone();
        let (session, kill) = self.scheduler.connect(hello, tx.clone())?;
        let (scheduler, access, ingest) = (self.scheduler.clone(), self.access.clone(), self.ingest.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    msg = inbound.next() => match msg {
                        // A revoked credential's session ends at its next message (a heartbeat
                        // comes every few seconds), whatever its role.
                        Some(Ok(_)) if access.principal(&principal.id).is_none() => {
                            tracing::warn!(agent = %agent_id, credential = %principal.name, "credential revoked: session closed");
                            let _ = scheduler.close_session(&agent_id);
                            break;
                        }
                        // A heartbeat only stamps the session, in memory: no thread hop (3,000
                        // agents send 600 a second).
                        Some(Ok(pb::AgentMessage { body: Some(Body::Heartbeat(_)), .. })) => {
                            if let Err(e) = scheduler.seen(&agent_id, session) {
                                tracing::error!(agent = %agent_id, error = %e, "heartbeat not handled");
                            }
                        }
                        Some(Ok(m)) => {
                            // Decoding histograms and writing the store block: off the async
                            // workers, one message at a time, in order.
                            let (s, id) = (scheduler.clone(), agent_id.clone());
                            let received = Received { at: std::time::Instant::now(), kind: kind(&m), ingest: ingest.clone() };
                            match tokio::task::spawn_blocking(move || handle(&s, &id, session, m)).await {
                                Ok(Ok(Some(ack))) => acknowledge(&scheduler, &agent_id, session, ack, received),
                                Ok(Ok(None)) => {}
                                Ok(Err(e)) => tracing::error!(agent = %agent_id, error = %e, "agent message not handled"),
                                Err(e) => tracing::error!(agent = %agent_id, error = %e, "agent message handler failed"),
                            }
                        }
                        Some(Err(e)) => {
                            tracing::debug!(agent = %agent_id, error = %e, "session stream error");
                            break;
                        }
                        None => break,
                    },
                    _ = kill.notified() => break,
                }
            }
            drop(tx);
            if let Err(e) = scheduler.disconnect(&agent_id, session) {
                tracing::error!(agent = %agent_id, error = %e, "disconnect not handled");
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

/// Bounds on what a hello may hold: it is stored and shown on every page that lists agents.
const MAX_TAGS: usize = 32;
const MAX_UNITS: usize = 64;
const MAX_CACHED_DIGESTS: usize = 10_000;
/// Finished attempts an agent may say it holds (it runs one cell at a time).
const MAX_HELD: usize = 64;
const MAX_SHORT: usize = 64;
const MAX_TEXT: usize = 256;

fn validate_hello(h: &pb::Hello) -> Result<(), Status> {
    text("hello.agent_id", &h.agent_id, 1, 128)?;
    text("hello.name", &h.name, 1, 128)?;
    text("hello.agent_version", &h.agent_version, 0, MAX_SHORT)?;
    list("hello.tags", h.tags.len(), MAX_TAGS)?;
    for t in &h.tags {
        text("hello.tags", t, 1, MAX_SHORT)?;
    }
    list("hello.units", h.units.len(), MAX_UNITS)?;
    for u in &h.units {
        text("hello.units.backend", &u.backend, 1, MAX_SHORT)?;
        text("hello.units.unit", &u.unit, 1, MAX_SHORT)?;
    }
    list("hello.finished", h.finished.len(), MAX_HELD)?;
    for c in h.running.iter().chain(&h.finished) {
        text("hello.running/finished.cell_id", &c.cell_id, 1, 128)?;
    }
    list("hello.cached_digests", h.cached_digests.len(), MAX_CACHED_DIGESTS)?;
    for d in &h.cached_digests {
        text("hello.cached_digests", d, 1, 80)?;
    }
    if let Some(p) = &h.profile {
        for (field, v) in [("hostname", &p.hostname), ("os", &p.os), ("os_version", &p.os_version), ("arch", &p.arch)] {
            text(&format!("hello.profile.{field}"), v, 0, MAX_TEXT)?;
        }
        text("hello.profile.cpu_model", &p.cpu_model, 0, MAX_TEXT)?;
        text("hello.profile.chip", &p.chip, 0, MAX_TEXT)?;
    }
    Ok(())
}

/// `v` has `min..=max` bytes and no control characters.
fn text(field: &str, v: &str, min: usize, max: usize) -> Result<(), Status> {
    if v.trim().len() < min || v.len() > max || v.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!("{field} must be {min} to {max} characters without control characters")));
    }
    Ok(())
}

fn list(field: &str, n: usize, max: usize) -> Result<(), Status> {
    if n > max {
        return Err(Status::invalid_argument(format!("{field} holds {n} entries; at most {max}")));
    }
    Ok(())
}

/// A report as it arrived: when, and of which kind, for the ingest histogram.
struct Received {
    at: std::time::Instant,
    kind: &'static str,
    ingest: prometheus::HistogramVec,
}

fn kind(m: &pb::AgentMessage) -> &'static str {
    match m.body {
        Some(Body::CellStarted(_)) => "started",
        Some(Body::Interval(_)) => "interval",
        Some(Body::CellFinished(_)) => "finished",
        Some(Body::Hello(_)) | Some(Body::Heartbeat(_)) | None => "other",
    }
}

/// Acknowledges a report once what it wrote is committed (without holding up the session's next
/// message: the commit takes its group).
fn acknowledge(scheduler: &Arc<Scheduler>, agent_id: &str, session: u64, (ack, write): (pb::Ack, u64), received: Received) {
    let (s, id) = (scheduler.clone(), agent_id.to_string());
    tokio::spawn(async move {
        let acked = match s.store().durable(write).await {
            Ok(()) => s.ack(&id, session, ack),
            Err(e) => Err(e),
        };
        match acked {
            Ok(()) => received.ingest.with_label_values(&[received.kind]).observe(received.at.elapsed().as_secs_f64()),
            Err(e) => tracing::error!(agent = %id, error = %e, "a report was not acknowledged; the agent sends it again"),
        }
    });
}

/// Handles one message; returns the acknowledgement it earns and the write count its commit
/// must reach before it is sent.
fn handle(s: &Scheduler, agent_id: &str, session: u64, m: pb::AgentMessage) -> crate::error::Result<Option<(pb::Ack, u64)>> {
    if !s.seen(agent_id, session)? {
        return Ok(None); // a replaced session's last words
    }
    let seq = m.seq;
    let kept = match m.body {
        Some(Body::Heartbeat(_)) | None => return Ok(None),
        Some(Body::Hello(_)) => return Ok(None), // only the first hello counts
        Some(Body::CellStarted(c)) => {
            s.cell_started(agent_id, &c)?;
            (c.cell_id, c.attempt)
        }
        Some(Body::Interval(iv)) => {
            s.interval(agent_id, session, &iv, seq)?;
            (iv.cell_id, iv.attempt)
        }
        Some(Body::CellFinished(f)) => {
            let id = (f.cell_id.clone(), f.attempt);
            s.cell_finished(agent_id, session, f)?;
            id
        }
    };
    // Stored (or refused for good), once committed: the agent may forget it.
    Ok((seq > 0).then(|| (pb::Ack { seq, cell_id: kept.0, attempt: kept.1 }, s.store().written())))
}

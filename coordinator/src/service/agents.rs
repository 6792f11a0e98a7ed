//! `AgentService.Session`: one bidirectional stream per agent.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use anefleet_proto::pb::{self, agent_message::Body};

use crate::schedule::Scheduler;

/// Seconds between the heartbeats agents are asked to send.
pub const HEARTBEAT_INTERVAL_S: u32 = 5;

pub struct AgentService {
    pub scheduler: Arc<Scheduler>,
}

type Outbound = Pin<Box<dyn Stream<Item = Result<pb::CoordinatorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl pb::agent_service_server::AgentService for AgentService {
    type SessionStream = Outbound;

    async fn session(&self, req: Request<Streaming<pb::AgentMessage>>) -> Result<Response<Outbound>, Status> {
        let mut inbound = req.into_inner();
        let hello = match inbound.next().await {
            Some(Ok(pb::AgentMessage { body: Some(Body::Hello(h)) })) => h,
            Some(Err(e)) => return Err(e),
            _ => return Err(Status::invalid_argument("a session starts with Hello")),
        };
        validate_hello(&hello)?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let welcome = pb::CoordinatorMessage {
            body: Some(pb::coordinator_message::Body::Welcome(pb::Welcome {
                coordinator_version: env!("CARGO_PKG_VERSION").into(),
                heartbeat_interval_s: HEARTBEAT_INTERVAL_S,
            })),
        };
        // The welcome goes first: connect() may already assign a cell.
        tx.send(Ok(welcome)).await.map_err(|_| Status::internal("session closed"))?;
        let agent_id = hello.agent_id.clone();
        let (session, kill) = self.scheduler.connect(hello, tx.clone())?;
        let scheduler = self.scheduler.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    msg = inbound.next() => match msg {
                        Some(Ok(m)) => {
                            if let Err(e) = handle(&scheduler, &agent_id, session, m) {
                                tracing::error!(agent = %agent_id, error = %e, "agent message not handled");
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

fn validate_hello(h: &pb::Hello) -> Result<(), Status> {
    if h.agent_id.trim().is_empty() || h.agent_id.len() > 128 {
        return Err(Status::invalid_argument("hello.agent_id must be 1 to 128 characters"));
    }
    if h.name.trim().is_empty() || h.name.len() > 128 {
        return Err(Status::invalid_argument("hello.name must be 1 to 128 characters"));
    }
    Ok(())
}

fn handle(s: &Scheduler, agent_id: &str, session: u64, m: pb::AgentMessage) -> crate::error::Result<()> {
    if !s.seen(agent_id, session)? {
        return Ok(()); // a replaced session's last words
    }
    match m.body {
        Some(Body::Heartbeat(_)) | None => Ok(()),
        Some(Body::Hello(_)) => Ok(()), // only the first hello counts
        Some(Body::CellStarted(c)) => s.cell_started(agent_id, &c),
        Some(Body::Interval(iv)) => s.interval(agent_id, session, &iv),
        Some(Body::CellFinished(f)) => s.cell_finished(agent_id, session, f),
    }
}

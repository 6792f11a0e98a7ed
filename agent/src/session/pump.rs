//! Sends the outbox's reports down a session in the order they were kept, each once per
//! session, and forgets each one the coordinator acknowledges. A new session starts from the
//! first report not yet acknowledged: what the last one sent but never saw acknowledged goes again.

use std::convert::Infallible;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use anefleet_proto::pb;

use super::outbox::Outbox;

/// Reports taken from the outbox at a time.
const BATCH: usize = 32;

pub struct Pump {
    outbox: Arc<Outbox>,
    /// The highest seq sent on this session.
    sent: u64,
    kept: watch::Receiver<u64>,
}

impl Pump {
    pub fn new(outbox: Arc<Outbox>) -> Pump {
        let kept = outbox.watch();
        Pump { outbox, sent: 0, kept }
    }

    /// Sends what is kept and not sent yet, then waits for more; returns only when the session
    /// is gone. Cancel-safe: a report whose send was cut short is sent again.
    pub async fn send_new(&mut self, tx: &mpsc::Sender<pb::AgentMessage>) -> Result<Infallible, mpsc::error::SendError<pb::AgentMessage>> {
        loop {
            self.kept.borrow_and_update();
            loop {
                let batch = self.outbox.batch_after(self.sent, BATCH);
                if batch.is_empty() {
                    break;
                }
                for m in batch {
                    let seq = m.seq;
                    tx.send(m).await?;
                    self.sent = seq;
                }
            }
            if self.kept.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The coordinator stored the report: its outbox entry goes (off the async workers: a file
    /// is deleted).
    pub async fn acknowledged(&self, ack: pb::Ack) {
        let outbox = self.outbox.clone();
        let seq = ack.seq;
        match tokio::task::spawn_blocking(move || outbox.ack(&ack)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => tracing::debug!(seq, "an acknowledgement for nothing kept (already forgotten)"),
            Ok(Err(e)) => tracing::warn!(seq, error = %e, "could not forget an acknowledged report; it will be sent again"),
            Err(e) => tracing::warn!(seq, error = %e, "acknowledgement not handled"),
        }
    }
}

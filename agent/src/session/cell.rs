//! Running assigned cells: fetch artifacts, run the executor on a thread of its own, keep its
//! events and its outcome in the outbox (which the session sends on). One cell at a time; a
//! cell does not depend on the session it was assigned on, and goes on when it breaks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use anefleet_models::dataset;
use anefleet_proto::pb::{self, agent_message::Body, cell_finished::Outcome};

use super::Authed;
use super::outbox::Outbox;
use crate::cache::{Cache, CacheError};
use crate::executor::{self, CellJob, Event, ExecError};

pub(crate) type ArtifactsClient = pb::artifacts_client::ArtifactsClient<Authed>;

/// How long a cell may take to stop when the agent is stopping.
const ABANDON_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// What a cancelled cell's error starts with.
const CANCELLED: &str = "cancelled";
/// Why a cell is cancelled when the agent is asked twice to stop.
const STOP_REASON: &str = "the agent was stopped";

struct Running {
    cell_id: String,
    attempt: u32,
    cancel: Arc<AtomicBool>,
    /// Why it was cancelled: the report says so.
    why: Arc<OnceLock<String>>,
    task: JoinHandle<()>,
}

pub struct Runner {
    cache: Arc<Cache>,
    artifacts: ArtifactsClient,
    outbox: Arc<Outbox>,
    running: Option<Running>,
    cool_below_c: Option<f64>,
    /// When the last cell ended: the next one waits out its spec's `cooldown_s` first.
    last_end: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl Runner {
    pub fn new(cache: Arc<Cache>, artifacts: ArtifactsClient, outbox: Arc<Outbox>, cool_below_c: Option<f64>) -> Runner {
        Runner { cache, artifacts, outbox, running: None, cool_below_c, last_end: Arc::default() }
    }

    /// The cell in flight, if any.
    pub fn running(&mut self) -> Option<String> {
        if self.running.as_ref().is_some_and(|r| r.task.is_finished()) {
            self.running = None;
        }
        self.running.as_ref().map(|r| r.cell_id.clone())
    }

    /// The attempt in flight, for the next session's hello.
    pub fn running_attempt(&mut self) -> Option<pb::CellRef> {
        self.running()?;
        self.running.as_ref().map(|r| pb::CellRef { cell_id: r.cell_id.clone(), attempt: r.attempt })
    }

    /// Starts the assigned cell; declines it on `tx` (the session it came on) when one is running:
    /// the attempt does not count and the cell goes back to the queue.
    pub async fn assign(&mut self, a: pb::Assign, tx: &mpsc::Sender<pb::AgentMessage>) {
        if let Some(busy) = self.running() {
            tracing::warn!(cell = %a.cell_id, %busy, "declining a cell: another one is running");
            let _ = tx.send(declined(a, &format!("declined: the agent is busy with cell {busy}"))).await;
            return;
        }
        tracing::info!(cell = %a.cell_id, attempt = a.attempt, "cell assigned");
        let cancel = Arc::new(AtomicBool::new(false));
        let why = Arc::new(OnceLock::new());
        let cooldown = self.cooldown(&a);
        let last_end = self.last_end.clone();
        let (cache, artifacts, outbox, cool) = (self.cache.clone(), self.artifacts.clone(), self.outbox.clone(), self.cool_below_c);
        let task = tokio::spawn({
            let (cancel, why) = (cancel.clone(), why.clone());
            let a = a.clone();
            async move {
                if !cooldown.is_zero() {
                    tracing::info!(cell = %a.cell_id, wait_ms = cooldown.as_millis() as u64, "cooling down after the previous cell");
                    tokio::time::sleep(cooldown).await;
                }
                run(cache, artifacts, &outbox, a, cancel, &why, cool).await;
                if let Ok(mut t) = last_end.lock() {
                    *t = Some(std::time::Instant::now());
                }
            }
        });
        self.running = Some(Running { cell_id: a.cell_id, attempt: a.attempt, cancel, why, task });
    }

    /// What is left of the cell's `cooldown_s` since the previous cell ended.
    fn cooldown(&self, a: &pb::Assign) -> std::time::Duration {
        let want = a.cell.as_ref().and_then(|c| c.measure).map_or(0.0, |m| m.cooldown_s).clamp(0.0, 86_400.0);
        let since = self.last_end.lock().ok().and_then(|t| t.map(|t| t.elapsed()));
        since.map_or(std::time::Duration::ZERO, |s| std::time::Duration::from_secs_f64(want).saturating_sub(s))
    }

    pub fn cancel(&mut self, cell_id: &str, reason: &str) {
        if let Some(r) = &self.running
            && r.cell_id == cell_id
        {
            tracing::warn!(cell = %cell_id, %reason, "cancelling cell");
            r.ask_to_stop(reason);
        }
    }

    /// Returns when no cell is in flight any more (at once when none is).
    pub async fn finished(&mut self) {
        if let Some(r) = &mut self.running {
            let _ = (&mut r.task).await;
        }
        self.running = None;
    }

    /// Cancels the cell in flight because the agent is stopping, and makes sure the coordinator
    /// hears that it was cancelled: from the cell itself, or from here when it does not stop in time.
    pub async fn cancel_for_stop(&mut self) {
        let Some(mut r) = self.running.take() else { return };
        tracing::warn!(cell = %r.cell_id, "cancelling the running cell: the agent is stopping");
        r.ask_to_stop(STOP_REASON);
        if tokio::time::timeout(ABANDON_WAIT, &mut r.task).await.is_err() {
            tracing::warn!(cell = %r.cell_id, "cell did not stop in time; reporting it cancelled");
            r.task.abort();
            keep(&self.outbox, finished(&r.cell_id, r.attempt, Err(format!("cancelled: {STOP_REASON}")))).await;
        }
    }
}

impl Running {
    fn ask_to_stop(&self, why: &str) {
        let _ = self.why.set(why.to_string());
        self.cancel.store(true, Ordering::Relaxed);
    }
}

fn finished(cell_id: &str, attempt: u32, outcome: Result<pb::CellResult, String>) -> Body {
    let cancelled = matches!(&outcome, Err(e) if e.starts_with(CANCELLED));
    let outcome = Some(match outcome {
        Ok(r) => Outcome::Result(r),
        Err(e) => Outcome::Error(e),
    });
    Body::CellFinished(pb::CellFinished { cell_id: cell_id.into(), attempt, outcome, cancelled, declined: false })
}

/// A report that the agent does not start `a` (busy, or stopping).
pub fn declined(a: pb::Assign, why: &str) -> pb::AgentMessage {
    let outcome = Some(Outcome::Error(why.to_string()));
    let f = pb::CellFinished { cell_id: a.cell_id, attempt: a.attempt, outcome, cancelled: false, declined: true };
    pb::AgentMessage { body: Some(Body::CellFinished(f)), seq: 0 }
}

/// Keeps a report in the outbox (written and synced off the async workers); the session sends it.
async fn keep(outbox: &Arc<Outbox>, body: Body) {
    let o = outbox.clone();
    match tokio::task::spawn_blocking(move || o.put(body)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "a report could not be kept in the outbox"),
        Err(e) => tracing::error!(error = %e, "keeping a report failed"),
    }
}

async fn run(
    cache: Arc<Cache>,
    mut artifacts: ArtifactsClient,
    outbox: &Arc<Outbox>,
    a: pb::Assign,
    cancel: Arc<AtomicBool>,
    why: &OnceLock<String>,
    cool_below_c: Option<f64>,
) {
    let outcome = match execute(&cache, &mut artifacts, outbox, &a, cancel, cool_below_c).await {
        Err(e) if e == CANCELLED => Err(why.get().map_or(e, |why| format!("{CANCELLED}: {why}"))),
        other => other,
    };
    if let Err(e) = &outcome {
        tracing::warn!(cell = %a.cell_id, error = %e, "cell failed");
    } else {
        tracing::info!(cell = %a.cell_id, "cell done");
    }
    keep(outbox, finished(&a.cell_id, a.attempt, outcome)).await;
}

async fn execute(
    cache: &Cache,
    artifacts: &mut ArtifactsClient,
    outbox: &Arc<Outbox>,
    a: &pb::Assign,
    cancel: Arc<AtomicBool>,
    cool_below_c: Option<f64>,
) -> Result<pb::CellResult, String> {
    let spec = a.cell.clone().ok_or("the assignment carries no cell")?;
    let artifact = spec.artifact.clone().ok_or("the cell names no model artifact")?;
    let model_path = fetch(cache, artifacts, &artifact, &cancel).await?;
    let data = match &spec.dataset {
        Some(d) if !d.digest.is_empty() => {
            let path = fetch(cache, artifacts, d, &cancel).await?;
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", spec.dataset_name))?;
            dataset::parse_jsonl(&text, &spec.dataset_name).map_err(|e| e.to_string())?
        }
        _ => dataset::builtin_typo(),
    };
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Event>();
    let job_cell = a.cell_id.clone();
    let attempt = a.attempt;
    let worker = tokio::task::spawn_blocking(move || {
        let job = CellJob { cell_id: job_cell, attempt, spec: &spec, model_path: &model_path, data: &data, cancel, cool_below_c };
        executor::run_cell(&job, &mut |e| {
            let _ = ev_tx.send(e);
        })
    });
    while let Some(ev) = ev_rx.recv().await {
        let body = match ev {
            Event::Loaded { load_ms } => Body::CellStarted(pb::CellStarted { cell_id: a.cell_id.clone(), attempt: a.attempt, load_ms }),
            Event::Interval(iv) => Body::Interval(iv),
        };
        keep(outbox, body).await;
    }
    match worker.await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(ExecError::Cancelled)) => Err(CANCELLED.into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the cell's thread failed: {e}")),
    }
}

/// Tries a download this many times when the coordinator cannot be reached (each try resumes
/// where the last one stopped), waiting a little longer each time: about 8 minutes in all.
const FETCH_TRIES: u32 = 10;

/// The artifact's local path; a download cut by a lost connection is resumed once the
/// coordinator can be reached again, while the cell is not cancelled. (`agent simulate
/// --fetch-dir` fetches through it too.)
pub(crate) async fn fetch(
    cache: &Cache,
    artifacts: &mut ArtifactsClient,
    a: &pb::ArtifactRef,
    cancel: &AtomicBool,
) -> Result<std::path::PathBuf, String> {
    let mut backoff = super::backoff::Backoff::new(std::time::Duration::from_secs(1), std::time::Duration::from_secs(60));
    let mut tries = 0;
    loop {
        tries += 1;
        match cache.ensure(artifacts, a).await {
            Err(CacheError::Transfer { status, .. }) if cut_off(&status) && tries < FETCH_TRIES && !cancel.load(Ordering::Relaxed) => {
                let wait = backoff.next_delay();
                tracing::warn!(digest = %a.digest, tries, wait_ms = wait.as_millis() as u64, error = %status, "download cut; resuming when the coordinator is back");
                tokio::time::sleep(wait).await;
            }
            other => return other.map_err(|e| e.to_string()),
        }
    }
}

/// The call failed on the way, not because the coordinator refused it.
fn cut_off(s: &tonic::Status) -> bool {
    matches!(s.code(), tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled | tonic::Code::DeadlineExceeded)
}

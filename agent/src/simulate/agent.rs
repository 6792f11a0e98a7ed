//! One simulated agent: its session, its cell, its reports not yet acknowledged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tonic::transport::Endpoint;

use anefleet_proto::auth::BearerToken;
use anefleet_proto::pb::{self, agent_message::Body, coordinator_message::Body as Down};
use anefleet_proto::{MAX_MESSAGE_BYTES, histogram};

use super::{SimConfig, Stats};
use crate::cache::Cache;
use crate::session::cell::{ArtifactsClient, fetch};

/// Most samples one interval histogram holds (a very short simulated latency).
const MAX_SAMPLES: u64 = 10_000;
/// How long a stopping agent waits for its last reports to be acknowledged.
const FLUSH_WAIT: Duration = Duration::from_secs(10);

struct Running {
    cell_id: String,
    attempt: u32,
    started: Instant,
    /// How long it runs (`--cell-s`, spread by `--cell-spread`).
    runs_for: Duration,
    total: hdrhistogram::Histogram<u64>,
    /// With `--fetch-dir`: the cell's download, until its artifacts are installed (the cell
    /// starts then).
    fetching: Option<JoinHandle<Result<Fetched, String>>>,
}

/// A cell's artifacts, fetched.
struct Fetched {
    assigned_unix_ms: u64,
    took: Duration,
    bytes: u64,
}

pub struct SimAgent {
    name: String,
    cfg: Arc<SimConfig>,
    stats: Arc<Stats>,
    /// The coordinators, this agent's first first; each session ended moves to the next.
    endpoints: Vec<Endpoint>,
    sessions: usize,
    token: BearerToken,
    seq: u64,
    /// Reports sent and not acknowledged: (when first sent, kind, message), by seq.
    unacked: BTreeMap<u64, (Instant, &'static str, pb::AgentMessage)>,
    cell: Option<Running>,
    /// Since when this agent is idle, and what its wait for an assignment counts as: "assign"
    /// after a cell of its own ended (cells are ready: the scheduler's latency), "first_assign"
    /// from a session's start (it spans whatever came before a run was submitted).
    idle_since: Option<(Instant, &'static str)>,
    heartbeat: Duration,
    /// With `--fetch-dir`: the downloads' client (a connection of this agent's own) and cache.
    artifacts: Option<ArtifactsClient>,
    cache: Option<Arc<Cache>>,
}

type Tx = mpsc::Sender<pb::AgentMessage>;

impl SimAgent {
    pub fn new(
        i: usize,
        cfg: Arc<SimConfig>,
        stats: Arc<Stats>,
        endpoints: Vec<Endpoint>,
        token: BearerToken,
        artifacts: Option<ArtifactsClient>,
    ) -> SimAgent {
        let name = format!("{}-{i:05}", cfg.prefix);
        let heartbeat = Duration::from_secs(5);
        let unacked = BTreeMap::new();
        let (cell, idle_since, cache) = (None, None, None);
        SimAgent { name, cfg, stats, endpoints, sessions: 0, token, seq: 0, unacked, cell, idle_since, heartbeat, artifacts, cache }
    }

    /// Sessions one after another until `stop`, then (at most [`FLUSH_WAIT`]) until every report
    /// is acknowledged; what is left unacknowledged is counted.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut give_up: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                let deadline = *give_up.get_or_insert_with(|| Instant::now() + FLUSH_WAIT);
                if self.unacked.is_empty() || Instant::now() >= deadline {
                    break;
                }
            }
            if let Err(e) = self.session(&mut stop).await {
                tracing::debug!(agent = %self.name, error = %format!("{e:#}"), "simulated session ended");
            }
            let wait = Duration::from_millis(100 + rand::random::<u64>() % 400);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
        self.stats.unacked_at_end.fetch_add(self.unacked.len() as u64, Ordering::Relaxed);
    }

    fn hello(&self) -> pb::Hello {
        let running = self.cell.as_ref().map(|c| pb::CellRef { cell_id: c.cell_id.clone(), attempt: c.attempt });
        let finished = self
            .unacked
            .values()
            .filter_map(|(_, _, m)| match &m.body {
                Some(Body::CellFinished(f)) => Some(pb::CellRef { cell_id: f.cell_id.clone(), attempt: f.attempt }),
                _ => None,
            })
            .collect();
        let profile = pb::DeviceProfile {
            hostname: self.name.clone(),
            os: "simulated".into(),
            arch: "sim".into(),
            cpu_model: "simulated agent".into(),
            cpu_cores: 8,
            memory_bytes: 16 << 30,
            chip: "Simulated".into(),
            ..Default::default()
        };
        pb::Hello {
            agent_id: self.name.clone(),
            name: self.name.clone(),
            tags: self.cfg.tags.clone(),
            profile: Some(profile),
            units: self.cfg.units.clone(),
            cached_digests: vec![],
            agent_version: env!("CARGO_PKG_VERSION").into(),
            running,
            finished,
        }
    }

    async fn session(&mut self, stop: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
        let endpoint = &self.endpoints[self.sessions % self.endpoints.len()];
        self.sessions += 1;
        let channel = endpoint.connect().await?;
        let mut client = pb::agent_service_client::AgentServiceClient::with_interceptor(channel, self.token.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (tx, rx) = mpsc::channel(256);
        tx.send(pb::AgentMessage { body: Some(Body::Hello(self.hello())), seq: 0 }).await?;
        let mut inbound = client.session(tokio_stream::wrappers::ReceiverStream::new(rx)).await?.into_inner();
        self.stats.sessions.fetch_add(1, Ordering::Relaxed);
        self.stats.connected.fetch_add(1, Ordering::Relaxed);
        let result = self.serve(&tx, &mut inbound, stop).await;
        self.stats.connected.fetch_sub(1, Ordering::Relaxed);
        result
    }

    async fn serve(
        &mut self,
        tx: &Tx,
        inbound: &mut tonic::Streaming<pb::CoordinatorMessage>,
        stop: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        for (_, _, m) in self.unacked.values() {
            tx.send(m.clone()).await?;
        }
        if self.cell.is_none() {
            self.idle_since = Some((Instant::now(), "first_assign"));
        }
        let mut tick = tokio::time::interval(self.cfg.interval);
        let mut heartbeat = tokio::time::interval(self.heartbeat);
        let drop_at = self.drop_deadline();
        // Stopping: no more drops; the session ends once every report is acknowledged.
        let mut stopping = *stop.borrow();
        loop {
            if stopping && self.unacked.is_empty() {
                return Ok(());
            }
            tokio::select! {
                _ = stop.changed(), if !stopping => stopping = *stop.borrow(),
                m = inbound.next() => match m {
                    Some(Ok(m)) => self.on_message(m, tx).await?,
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                },
                fetched = fetch_done(&mut self.cell) => self.fetched(fetched, tx).await?,
                _ = tick.tick() => self.on_tick(tx).await?,
                _ = heartbeat.tick() => {
                    let hb = pb::Heartbeat { running_cell_id: self.cell.as_ref().map(|c| c.cell_id.clone()).unwrap_or_default(), unix_ms: 0 };
                    tx.send(pb::AgentMessage { body: Some(Body::Heartbeat(hb)), seq: 0 }).await?;
                }
                () = tokio::time::sleep_until(drop_at.unwrap_or_else(tokio::time::Instant::now)), if drop_at.is_some() && !stopping => {
                    self.stats.drops.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                () = tokio::time::sleep(FLUSH_WAIT), if stopping => return Ok(()),
            }
        }
    }

    /// When this session drops itself (flaky mode): `drop_every`, jittered by ±50%.
    fn drop_deadline(&self) -> Option<tokio::time::Instant> {
        let every = self.cfg.drop_every;
        (!every.is_zero()).then(|| tokio::time::Instant::now() + every.mul_f64(0.5 + rand::random::<f64>()))
    }

    async fn on_message(&mut self, m: pb::CoordinatorMessage, tx: &Tx) -> anyhow::Result<()> {
        match m.body {
            Some(Down::Welcome(w)) => self.heartbeat = Duration::from_secs(u64::from(w.heartbeat_interval_s.clamp(1, 60))),
            Some(Down::Assign(a)) => self.assigned(a, tx).await?,
            Some(Down::Cancel(c)) if self.cell.as_ref().is_some_and(|r| r.cell_id == c.cell_id) => {
                let r = self.cell.take().expect("checked");
                if let Some(f) = &r.fetching {
                    f.abort();
                }
                self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                let outcome = Some(pb::cell_finished::Outcome::Error(format!("cancelled: {}", c.reason)));
                let f = pb::CellFinished { cell_id: r.cell_id, attempt: r.attempt, outcome, cancelled: true, declined: false };
                self.send_kept("finished", Body::CellFinished(f), tx).await?;
                self.idle_since = Some((Instant::now(), "assign"));
            }
            Some(Down::Ack(a)) => {
                if let Some((sent, kind, _)) = self.unacked.remove(&a.seq) {
                    self.stats.record(kind, sent.elapsed());
                }
            }
            Some(Down::Cancel(_)) | Some(Down::Ping(_)) | None => {}
        }
        Ok(())
    }

    async fn assigned(&mut self, a: pb::Assign, tx: &Tx) -> anyhow::Result<()> {
        if let Some(busy) = &self.cell {
            let why = format!("declined: the agent is busy with cell {}", busy.cell_id);
            tx.send(crate::session::cell::declined(a, &why)).await?;
            return Ok(());
        }
        if let Some((idle, kind)) = self.idle_since.take() {
            self.stats.record(kind, idle.elapsed());
        }
        let cfg = self.cfg.clone();
        let fetching = match (self.artifacts.clone(), cfg.fetch_dir.as_deref()) {
            (Some(artifacts), Some(dir)) => Some(self.fetch(artifacts, dir, &a)),
            _ => None,
        };
        let waits = fetching.is_some();
        let (cell_id, attempt) = (a.cell_id, a.attempt);
        let runs_for = cfg.cell.mul_f64(1.0 + cfg.cell_spread * (2.0 * rand::random::<f64>() - 1.0));
        let total = histogram::new_latency();
        self.cell = Some(Running { cell_id: cell_id.clone(), attempt, started: Instant::now(), runs_for, total, fetching });
        if waits {
            return Ok(());
        }
        self.send_kept("started", Body::CellStarted(pb::CellStarted { cell_id, attempt, load_ms: 1.0 }), tx).await
    }

    /// Fetches the cell's model (and data set) into this agent's cache, as the real agent does.
    fn fetch(&mut self, mut artifacts: ArtifactsClient, dir: &std::path::Path, a: &pb::Assign) -> JoinHandle<Result<Fetched, String>> {
        let cache = match &self.cache {
            Some(c) => Ok(c.clone()),
            None => Cache::open(&dir.join(&self.name)).map(Arc::new),
        };
        if let Ok(c) = &cache {
            self.cache = Some(c.clone());
        }
        let (spec, assigned, assigned_unix_ms) = (a.cell.clone(), Instant::now(), unix_ms());
        tokio::spawn(async move {
            let cache = cache.map_err(|e| e.to_string())?;
            let spec = spec.ok_or("the assignment carries no cell")?;
            let model = spec.artifact.ok_or("the cell names no model artifact")?;
            let (before, cancel) = (cache.received_bytes(), AtomicBool::new(false));
            fetch(&cache, &mut artifacts, &model, &cancel).await?;
            if let Some(d) = spec.dataset.filter(|d| !d.digest.is_empty()) {
                fetch(&cache, &mut artifacts, &d, &cancel).await?;
            }
            Ok(Fetched { assigned_unix_ms, took: assigned.elapsed(), bytes: cache.received_bytes() - before })
        })
    }

    /// The running cell's artifacts are installed (it starts now), or could not be fetched (it fails).
    async fn fetched(&mut self, fetched: Result<Fetched, String>, tx: &Tx) -> anyhow::Result<()> {
        let Some(r) = &mut self.cell else { return Ok(()) };
        r.fetching = None;
        match fetched {
            Ok(f) => {
                self.stats.fetched(f.assigned_unix_ms, f.took, f.bytes);
                r.started = Instant::now();
                let started = pb::CellStarted { cell_id: r.cell_id.clone(), attempt: r.attempt, load_ms: 1.0 };
                self.send_kept("started", Body::CellStarted(started), tx).await
            }
            Err(e) => {
                let r = self.cell.take().expect("checked");
                tracing::warn!(agent = %self.name, cell = %r.cell_id, error = %e, "cell failed: its artifacts could not be fetched");
                self.stats.fetch_failed.fetch_add(1, Ordering::Relaxed);
                let outcome = Some(pb::cell_finished::Outcome::Error(e));
                let f = pb::CellFinished { cell_id: r.cell_id, attempt: r.attempt, outcome, cancelled: false, declined: false };
                self.send_kept("finished", Body::CellFinished(f), tx).await?;
                self.idle_since = Some((Instant::now(), "assign"));
                Ok(())
            }
        }
    }

    /// Streams an interval of the running cell; ends the cell once it has run its time.
    async fn on_tick(&mut self, tx: &Tx) -> anyhow::Result<()> {
        let Some(r) = self.cell.as_mut().filter(|r| r.fetching.is_none()) else { return Ok(()) };
        let latency = self.cfg.latency.as_nanos().max(1) as u64;
        let n = (self.cfg.interval.as_nanos() as u64 / latency).clamp(1, MAX_SAMPLES);
        let mut h = histogram::new_latency();
        for _ in 0..n {
            let ns = latency as f64 * (1.0 + self.cfg.spread * (2.0 * rand::random::<f64>() - 1.0));
            histogram::record(&mut h, ns.max(1.0) as u64);
        }
        r.total.add(&h).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let now = unix_ms();
        let iv = pb::IntervalHistogram {
            cell_id: r.cell_id.clone(),
            attempt: r.attempt,
            repetition: 0,
            start_unix_ms: now.saturating_sub(self.cfg.interval.as_millis() as u64),
            end_unix_ms: now,
            latency: histogram::encode(&h)?,
            iterations_so_far: r.total.len(),
        };
        let done = r.started.elapsed() >= r.runs_for;
        self.send_kept("interval", Body::Interval(iv), tx).await?;
        if done {
            self.finish(tx).await?;
        }
        Ok(())
    }

    async fn finish(&mut self, tx: &Tx) -> anyhow::Result<()> {
        let Some(r) = self.cell.take() else { return Ok(()) };
        let latency = histogram::encode(&r.total)?;
        let empty = histogram::encode(&histogram::new_latency())?;
        let measured_s = r.started.elapsed().as_secs_f64();
        let output = pb::Output { input_id: 0, text: "simulated".into(), tokens: vec![1, 2, 3], ..Default::default() };
        let result = pb::CellResult {
            load_ms: 1.0,
            latency: latency.clone(),
            ttft: empty.clone(),
            decode_token: empty,
            iterations: r.total.len(),
            measured_s,
            outputs: vec![output],
            repetitions: vec![pb::Repetition { index: 0, iterations: r.total.len(), duration_s: measured_s, latency }],
            ..Default::default()
        };
        let f = pb::CellFinished {
            cell_id: r.cell_id,
            attempt: r.attempt,
            outcome: Some(pb::cell_finished::Outcome::Result(result)),
            cancelled: false,
            declined: false,
        };
        self.send_kept("finished", Body::CellFinished(f), tx).await?;
        self.stats.cells_finished.fetch_add(1, Ordering::Relaxed);
        self.idle_since = Some((Instant::now(), "assign"));
        Ok(())
    }

    /// Sends a report kept until acknowledged (replayed on the next session otherwise).
    async fn send_kept(&mut self, kind: &'static str, body: Body, tx: &Tx) -> anyhow::Result<()> {
        self.seq += 1;
        let m = pb::AgentMessage { body: Some(body), seq: self.seq };
        self.unacked.insert(self.seq, (Instant::now(), kind, m.clone()));
        self.stats.sent(kind);
        tx.send(m).await?;
        Ok(())
    }
}

/// Resolves when the running cell's download ends (never while none is in flight).
async fn fetch_done(cell: &mut Option<Running>) -> Result<Fetched, String> {
    match cell.as_mut().and_then(|r| r.fetching.as_mut()) {
        Some(task) => task.await.unwrap_or_else(|e| Err(format!("the download failed: {e}"))),
        None => std::future::pending().await,
    }
}

pub(super) fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

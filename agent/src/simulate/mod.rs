//! `agent simulate`: a fleet of simulated agents, the load generator for a coordinator. Each one
//! is a real gRPC session of its own (its own connection, identity, name, tags and units) that
//! takes cells, "runs" each by streaming interval histograms at the real agent's rate, drawn from
//! a configurable latency distribution, and finishes it with a real result (histograms that
//! decode, repetitions, outputs). No model runs. With `--fetch-dir`, each one first fetches the
//! cell's artifacts as the real agent does: through the agent's cache (`DIR/<name>/`), resumable,
//! verified and installed, over a connection of its own; a download that fails fails the cell.
//!
//! What it measures, client side, in HdrHistograms: per message kind, the time from sending a
//! report to the coordinator's acknowledgement (sent after its durable commit: the ingest
//! latency), the time an idle simulated agent waits for its next assignment, and with
//! `--fetch-dir` the time from an assignment to its artifacts installed. Optionally
//! flaky: every agent drops its connection now and then and re-attaches its running cell,
//! replaying what was not acknowledged, as the real agent's outbox does.

mod agent;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use anefleet_proto::pb;

pub use stats::{Report, Stats};

/// What the simulated fleet is and does.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub coordinator: String,
    pub token: String,
    pub agents: usize,
    /// Names and identities are `<prefix>-00001`…
    pub prefix: String,
    pub tags: Vec<String>,
    pub units: Vec<pb::ComputeUnit>,
    /// The simulated iteration latency's median and spread (a fraction of it, uniform either side).
    pub latency: Duration,
    pub spread: f64,
    /// How often a running cell sends an interval histogram, how long a cell runs, and the
    /// spread of that (a fraction, uniform either side: cells that end apart, as real ones do).
    pub interval: Duration,
    pub cell: Duration,
    pub cell_spread: f64,
    /// Each agent drops its connection about this often (0: never).
    pub drop_every: Duration,
    pub tls: anefleet_proto::tls::ClientTls,
    /// Fetch each cell's artifacts into `DIR/<agent name>/` before running it (None: no download).
    pub fetch_dir: Option<std::path::PathBuf>,
}

/// Runs the fleet until `stop` turns true; returns what it measured.
pub async fn run(cfg: SimConfig, stop: watch::Receiver<bool>) -> anyhow::Result<Report> {
    anyhow::ensure!(cfg.agents > 0, "--agents must be at least 1");
    anyhow::ensure!(!cfg.units.is_empty(), "--unit: name at least one backend:unit the simulated agents offer");
    let endpoints = crate::session::session_endpoints(&cfg.coordinator, &cfg.tls).context("the coordinator's address")?;
    let token = anefleet_proto::auth::BearerToken::new(&cfg.token).map_err(anyhow::Error::msg)?;
    let (cfg, stats) = (Arc::new(cfg), Arc::new(Stats::default()));
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (1..=cfg.agents)
        .map(|i| {
            let artifacts = cfg.fetch_dir.is_some().then(|| {
                pb::artifacts_client::ArtifactsClient::with_interceptor(crate::session::downloads(&endpoints), token.clone())
                    .max_decoding_message_size(anefleet_proto::MAX_MESSAGE_BYTES)
            });
            // With several coordinators, the agents start spread over them, in turn.
            let mut mine = endpoints.clone();
            mine.rotate_left(i % endpoints.len());
            let one = agent::SimAgent::new(i, cfg.clone(), stats.clone(), mine, token.clone(), artifacts);
            tokio::spawn(one.run(stop.clone()))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    Ok(stats.report(cfg.agents, started.elapsed()))
}

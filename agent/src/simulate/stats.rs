//! What the simulated fleet measured: counters, and latency histograms per message kind.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anefleet_proto::histogram;

#[derive(Default)]
pub struct Stats {
    /// Time from sending a report to its acknowledgement, per kind ("started", "interval",
    /// "finished"); from a cell of its own ended to the next assignment ("assign"), and from a
    /// session's start to its first ("first_assign"); with `--fetch-dir`, from an assignment to
    /// its artifacts verified and installed ("fetch").
    latencies: Mutex<BTreeMap<&'static str, hdrhistogram::Histogram<u64>>>,
    sent: Mutex<BTreeMap<&'static str, u64>>,
    pub connected: AtomicU64,
    pub sessions: AtomicU64,
    pub drops: AtomicU64,
    pub cells_finished: AtomicU64,
    pub cancelled: AtomicU64,
    pub unacked_at_end: AtomicU64,
    /// With `--fetch-dir`: bytes downloaded, cells whose artifacts could not be fetched, and
    /// the first assignment that started a fetch and the last fetch done (Unix ms).
    pub fetched_bytes: AtomicU64,
    pub fetch_failed: AtomicU64,
    pub first_fetch_unix_ms: AtomicU64,
    pub last_fetched_unix_ms: AtomicU64,
}

/// A latency histogram's figures, in milliseconds.
#[derive(Debug, serde::Serialize)]
pub struct Figures {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The run's figures, as `agent simulate` prints them (JSON).
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub agents: usize,
    pub seconds: f64,
    pub sessions: u64,
    pub drops: u64,
    pub cells_finished: u64,
    pub cancelled: u64,
    pub sent: BTreeMap<&'static str, u64>,
    /// Reports sent and never acknowledged when the simulation stopped.
    pub unacked: u64,
    pub latency: BTreeMap<&'static str, Figures>,
    /// With `--fetch-dir`: bytes downloaded from the coordinator, cells failed for a download,
    /// and from the first assignment received to the last artifact installed (Unix ms; 0: none).
    pub fetched_bytes: u64,
    pub fetch_failed: u64,
    pub first_fetch_unix_ms: u64,
    pub last_fetched_unix_ms: u64,
}

impl Stats {
    pub fn record(&self, kind: &'static str, d: Duration) {
        if let Ok(mut m) = self.latencies.lock() {
            histogram::record(m.entry(kind).or_insert_with(histogram::new_latency), d.as_nanos() as u64);
        }
    }

    /// A fetch that began at `started_unix_ms` and ends now.
    pub fn fetched(&self, started_unix_ms: u64, took: Duration, bytes: u64) {
        self.record("fetch", took);
        self.fetched_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.last_fetched_unix_ms.fetch_max(super::agent::unix_ms(), Ordering::Relaxed);
        self.first_fetch_unix_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| (t == 0 || started_unix_ms < t).then_some(started_unix_ms))
            .ok();
    }

    pub fn sent(&self, kind: &'static str) {
        if let Ok(mut m) = self.sent.lock() {
            *m.entry(kind).or_default() += 1;
        }
    }

    pub fn report(&self, agents: usize, took: Duration) -> Report {
        let ms = |ns: u64| ns as f64 / 1e6;
        let latency = self
            .latencies
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, h)| {
                        let f = Figures {
                            count: h.len(),
                            p50_ms: ms(h.value_at_quantile(0.5)),
                            p99_ms: ms(h.value_at_quantile(0.99)),
                            max_ms: ms(h.max()),
                        };
                        (*k, f)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Report {
            agents,
            seconds: took.as_secs_f64(),
            sessions: self.sessions.load(Ordering::Relaxed),
            drops: self.drops.load(Ordering::Relaxed),
            cells_finished: self.cells_finished.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            sent: self.sent.lock().map(|m| m.clone()).unwrap_or_default(),
            unacked: self.unacked_at_end.load(Ordering::Relaxed),
            latency,
            fetched_bytes: self.fetched_bytes.load(Ordering::Relaxed),
            fetch_failed: self.fetch_failed.load(Ordering::Relaxed),
            first_fetch_unix_ms: self.first_fetch_unix_ms.load(Ordering::Relaxed),
            last_fetched_unix_ms: self.last_fetched_unix_ms.load(Ordering::Relaxed),
        }
    }
}

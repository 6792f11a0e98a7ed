//! The measurement loop: warm-up, then per repetition iterations until both `min_iterations`
//! and `min_duration_s` hold, cool-downs between repetitions. Only the workload's `run` is
//! inside the timed region; latencies go into HdrHistograms (ns, 3 significant digits) and an
//! interval histogram is handed out at least every [`INTERVAL`].
//!
//! Around the repetitions, outside the timed region: the thermal sensors are sampled on a
//! thread of their own from the end of the warm-up to the end of the last repetition, and the
//! energy counters are read right before and after each repetition (cool-downs not counted).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use anefleet_proto::histogram::{self, CodecError};
use anefleet_proto::pb;

use super::{CellJob, Event, ExecError};
use crate::probe::energy::{Meter, Reading};
use crate::probe::thermal::{self, Sensors, ThermalSampler};
use crate::workload::{Phases, Workload};

/// Longest time between two interval histograms (an iteration longer than this delays one).
pub const INTERVAL: Duration = Duration::from_secs(1);

pub struct Measured {
    latency: Histogram<u64>,
    ttft: Histogram<u64>,
    decode: Histogram<u64>,
    repetitions: Vec<pb::Repetition>,
    iterations: u64,
    measured: Duration,
    generated_tokens: u64,
    decode_total_ns: u64,
    thermal: Vec<pb::ThermalSample>,
    /// Joules per energy counter over the measured repetitions; `None` once any reading failed.
    energy: Option<Vec<f64>>,
    energy_counters: Vec<String>,
    energy_source: String,
}

/// What is read around the measured repetitions.
pub struct Probes {
    pub sensors: Sensors,
    pub meter: Option<Meter>,
}

impl Probes {
    /// No sensors, no energy counter.
    pub fn none() -> Probes {
        Probes { sensors: Sensors::default(), meter: None }
    }
}

impl Measured {
    /// The cell's result; `per_token` says each iteration is one generated token (decode).
    pub fn into_result(self, per_token: bool) -> Result<pb::CellResult, CodecError> {
        let tokens_per_s = if self.decode_total_ns > 0 {
            self.decode.len() as f64 / (self.decode_total_ns as f64 / 1e9)
        } else if per_token && self.latency.mean() > 0.0 {
            1e9 / self.latency.mean()
        } else {
            0.0
        };
        Ok(pb::CellResult {
            latency: histogram::encode(&self.latency)?,
            ttft: if self.ttft.is_empty() { vec![] } else { histogram::encode(&self.ttft)? },
            decode_token: if self.decode.is_empty() { vec![] } else { histogram::encode(&self.decode)? },
            tokens_per_s,
            iterations: self.iterations,
            measured_s: self.measured.as_secs_f64(),
            repetitions: self.repetitions,
            generated_tokens: self.generated_tokens,
            energy_source: if self.energy.is_some() { self.energy_source } else { String::new() },
            energy_j: self.energy.as_ref().map(|e| e.iter().sum()),
            energy_channels: match &self.energy {
                Some(e) => {
                    self.energy_counters.iter().zip(e).map(|(name, &joules)| pb::EnergyChannel { name: name.clone(), joules }).collect()
                }
                None => Vec::new(),
            },
            thermal: self.thermal,
            ..Default::default()
        })
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn measure(w: &mut dyn Workload, job: &CellJob<'_>, probes: Probes, events: &mut dyn FnMut(Event)) -> Result<Measured, ExecError> {
    let m = job.spec.measure.unwrap_or_default();
    let mut phases = Phases::default();
    let mut i = 0usize;
    for _ in 0..m.warmup {
        check(job)?;
        iteration(|| -> Result<(), ExecError> {
            w.before(i)?;
            w.run(i, &mut phases)?;
            w.after(i);
            Ok(())
        })?;
        phases.clear();
        i += 1;
    }
    if let Some(stages) = w.stage_clock() {
        stages.reset();
    }
    let mut out = Measured {
        latency: histogram::new_latency(),
        ttft: histogram::new_latency(),
        decode: histogram::new_latency(),
        repetitions: Vec::new(),
        iterations: 0,
        measured: Duration::ZERO,
        generated_tokens: 0,
        decode_total_ns: 0,
        thermal: Vec::new(),
        energy: probes.meter.as_ref().map(|m| vec![0.0; m.counter_names().len()]),
        energy_counters: probes.meter.as_ref().map(Meter::counter_names).unwrap_or_default(),
        energy_source: probes.meter.as_ref().map(Meter::source).unwrap_or_default(),
    };
    let meter = probes.meter.as_ref();
    // Stopped by `finish` below, or by drop when the cell fails or is cancelled.
    let sampler = ThermalSampler::start(probes.sensors, thermal::SAMPLE_EVERY, thermal::MAX_SAMPLES_PER_SENSOR);
    let min_duration = Duration::from_secs_f64(m.min_duration_s.max(0.0));
    for rep in 0..m.repetitions.max(1) {
        if rep > 0 && m.cooldown_s > 0.0 {
            cool_down(job, Duration::from_secs_f64(m.cooldown_s))?;
        }
        let mut rep_hist = histogram::new_latency();
        let mut interval = histogram::new_latency();
        let energy_before = meter.and_then(Meter::read);
        let (mut count, start) = (0u64, Instant::now());
        let (mut interval_start, mut interval_ms) = (Instant::now(), unix_ms());
        while count < m.min_iterations.max(1) as u64 || start.elapsed() < min_duration {
            check(job)?;
            let ns = iteration(|| -> Result<u64, ExecError> {
                w.before(i)?;
                let clock = crate::backend::Clock::start(w.runtime_ns());
                w.run(i, &mut phases)?;
                let ns = clock.ns(w.runtime_ns());
                w.after(i);
                Ok(ns)
            })?;
            histogram::record(&mut rep_hist, ns);
            histogram::record(&mut interval, ns);
            record_phases(&mut out, &phases);
            phases.clear();
            count += 1;
            i += 1;
            if interval_start.elapsed() >= INTERVAL {
                events(Event::Interval(interval_message(job, rep, interval_ms, &interval, out.iterations + count)?));
                interval.reset();
                interval_start = Instant::now();
                interval_ms = unix_ms();
            }
        }
        let elapsed = start.elapsed();
        let energy_after = meter.and_then(Meter::read);
        out.energy = add_energy(out.energy.take(), meter, energy_before, energy_after);
        if !interval.is_empty() {
            events(Event::Interval(interval_message(job, rep, interval_ms, &interval, out.iterations + count)?));
        }
        out.latency.add(&rep_hist).map_err(|e| CodecError::Encode(format!("{e:?}")))?;
        out.repetitions.push(pb::Repetition {
            index: rep,
            iterations: count,
            duration_s: elapsed.as_secs_f64(),
            latency: histogram::encode(&rep_hist)?,
        });
        out.iterations += count;
        out.measured += elapsed;
    }
    out.thermal = sampler.map(ThermalSampler::finish).unwrap_or_default();
    Ok(out)
}

/// One iteration (`before`, `run`, `after`) in the platform's per-iteration scope: on macOS an
/// Objective-C autorelease pool, so what Core ML (or Metal) autoreleases is freed every
/// iteration, the pool's creation and drain outside the timer; nothing elsewhere.
fn iteration<T>(f: impl FnOnce() -> T) -> T {
    #[cfg(target_os = "macos")]
    return crate::backend::coreml::runtime::autoreleased(f);
    #[cfg(not(target_os = "macos"))]
    f()
}

/// The running energy totals (per counter) plus one repetition's; unknown once any part is unknown.
fn add_energy(total: Option<Vec<f64>>, meter: Option<&Meter>, before: Option<Reading>, after: Option<Reading>) -> Option<Vec<f64>> {
    let rep = meter?.joules_by_counter(&before?, &after?)?;
    Some(total?.iter().zip(rep).map(|(t, r)| t + r).collect())
}

fn record_phases(out: &mut Measured, p: &Phases) {
    if let Some(t) = p.ttft_ns {
        histogram::record(&mut out.ttft, t);
        out.generated_tokens += 1;
    }
    for &d in &p.decode_ns {
        histogram::record(&mut out.decode, d);
        out.decode_total_ns += d;
    }
    out.generated_tokens += p.decode_ns.len() as u64;
}

fn interval_message(
    job: &CellJob<'_>,
    rep: u32,
    start_ms: u64,
    h: &Histogram<u64>,
    so_far: u64,
) -> Result<pb::IntervalHistogram, CodecError> {
    Ok(pb::IntervalHistogram {
        cell_id: job.cell_id.clone(),
        attempt: job.attempt,
        repetition: rep,
        start_unix_ms: start_ms,
        end_unix_ms: unix_ms(),
        latency: histogram::encode(h)?,
        iterations_so_far: so_far,
    })
}

fn check(job: &CellJob<'_>) -> Result<(), ExecError> {
    if job.cancel.load(Ordering::Relaxed) { Err(ExecError::Cancelled) } else { Ok(()) }
}

/// Sleeps between repetitions, waking early on cancellation.
fn cool_down(job: &CellJob<'_>, d: Duration) -> Result<(), ExecError> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        check(job)?;
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(100)));
    }
    Ok(())
}

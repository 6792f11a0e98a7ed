//! Thermal sensors: what they read now, and a sampler that records them on a thread of its own
//! while a cell is measured.
//!
//! Linux: the thermal zones under `/sys/class/thermal` (`thermal_zone*/type`, `temp` in
//! millidegrees Celsius). macOS: `NSProcessInfo.thermalState` (nominal, fair, serious, critical),
//! sampled as sensor `thermalState` with no temperature — Macs give no Celsius without root.
//! Elsewhere there are no sensors: the list is empty and nothing is sampled.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anefleet_proto::pb;

/// Where Linux lists its thermal zones.
pub const LINUX_ROOT: &str = "/sys/class/thermal";
/// How often the sampler reads every sensor (the first interval; it doubles when the cap is hit).
pub const SAMPLE_EVERY: Duration = Duration::from_millis(1000);
/// At most this many samples per sensor in a cell; past it, every other one is dropped and the
/// interval doubles, so a long cell is still covered from start to end.
pub const MAX_SAMPLES_PER_SENSOR: usize = 600;

/// One thermal zone: its name in results and the file its temperature is read from.
#[derive(Debug, Clone)]
struct Zone {
    sensor: String,
    temp: PathBuf,
}

/// The machine's temperature sensors (possibly none).
#[derive(Debug, Clone, Default)]
pub struct Sensors {
    zones: Vec<Zone>,
    /// macOS: sample `NSProcessInfo.thermalState`.
    thermal_state: bool,
}

impl Sensors {
    /// This machine's sensors; none where the platform has no probe yet.
    pub fn open() -> Sensors {
        #[cfg(target_os = "linux")]
        {
            Sensors::from_root(Path::new(LINUX_ROOT))
        }
        #[cfg(target_os = "macos")]
        {
            Sensors { zones: Vec::new(), thermal_state: true }
        }
        #[cfg(not(any(target_os = "linux", target_os = "macos")))]
        {
            Sensors::default()
        }
    }

    /// The thermal zones under `root` (a `/sys/class/thermal` layout) whose temperature reads
    /// now, in zone order; disabled zones are left out. A type shared by several zones is
    /// named `type/thermal_zoneN`.
    pub fn from_root(root: &Path) -> Sensors {
        let mut found: Vec<(u32, String, PathBuf)> = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let n: u32 = name.strip_prefix("thermal_zone")?.parse().ok()?;
                let dir = e.path();
                let kind = read_trimmed(&dir.join("type"))?;
                if read_trimmed(&dir.join("mode")).is_some_and(|m| m == "disabled") {
                    return None;
                }
                let temp = dir.join("temp");
                read_celsius(&temp)?;
                Some((n, kind, temp))
            })
            .collect();
        found.sort_by_key(|(n, _, _)| *n);
        let zones = found
            .iter()
            .map(|(n, kind, temp)| {
                let shared = found.iter().filter(|(_, k, _)| k == kind).count() > 1;
                let sensor = if shared { format!("{kind}/thermal_zone{n}") } else { kind.clone() };
                Zone { sensor, temp: temp.clone() }
            })
            .collect();
        Sensors { zones, thermal_state: false }
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty() && !self.thermal_state
    }

    /// One sample of every sensor, stamped `unix_ms`; a sensor that fails to read has no celsius.
    pub fn read(&self, unix_ms: u64) -> Vec<pb::ThermalSample> {
        #[cfg_attr(not(target_os = "macos"), allow(unused_mut))]
        let mut samples: Vec<pb::ThermalSample> = self
            .zones
            .iter()
            .map(|z| pb::ThermalSample { unix_ms, sensor: z.sensor.clone(), celsius: read_celsius(&z.temp), state: String::new() })
            .collect();
        #[cfg(target_os = "macos")]
        if self.thermal_state {
            let state = crate::probe::macos::thermal_state().to_string();
            samples.push(pb::ThermalSample { unix_ms, sensor: "thermalState".into(), celsius: None, state });
        }
        samples
    }

    /// The hottest reading now; `None` where no sensor reads.
    pub fn hottest_c(&self) -> Option<f64> {
        self.zones.iter().filter_map(|z| read_celsius(&z.temp)).reduce(f64::max)
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A zone's `temp` (millidegrees Celsius) in degrees; implausible values (sensors that report
/// -273 °C or 255 °C when absent) count as unreadable.
fn read_celsius(path: &Path) -> Option<f64> {
    let milli: i64 = read_trimmed(path)?.parse().ok()?;
    let c = milli as f64 / 1000.0;
    (-60.0..=200.0).contains(&c).then_some(c)
}

pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Samples every sensor on a background thread until [`ThermalSampler::finish`] (or drop).
pub struct ThermalSampler {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<Vec<Vec<pb::ThermalSample>>>>,
}

impl ThermalSampler {
    /// Starts sampling now and every `every` after; `None` when there is nothing to sample or
    /// the thread cannot start (logged).
    pub fn start(sensors: Sensors, every: Duration, max_per_sensor: usize) -> Option<ThermalSampler> {
        if sensors.is_empty() {
            return None;
        }
        let (tx, rx) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new().name("thermal-sampler".into()).spawn(move || {
            let (mut rounds, mut every) = (Vec::new(), every.max(Duration::from_millis(1)));
            loop {
                push_bounded(&mut rounds, sensors.read(unix_ms()), max_per_sensor.max(2), &mut every);
                // Stop or a dropped sender ends it; a timeout is the next sample.
                if !matches!(rx.recv_timeout(every), Err(mpsc::RecvTimeoutError::Timeout)) {
                    push_bounded(&mut rounds, sensors.read(unix_ms()), max_per_sensor.max(2), &mut every);
                    return rounds;
                }
            }
        });
        match spawned {
            Ok(t) => Some(ThermalSampler { stop: Some(tx), thread: Some(t) }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the thermal sampler; no thermal samples for this cell");
                None
            }
        }
    }

    /// Stops sampling (one last sample is taken) and returns every sample in time order.
    pub fn finish(mut self) -> Vec<pb::ThermalSample> {
        self.stop.take();
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default().into_iter().flatten().collect()
    }
}

impl Drop for ThermalSampler {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Adds a round of samples; at `cap` rounds every other one is dropped first and the interval
/// doubles, so the rounds stay at most `cap` and evenly spread.
fn push_bounded(rounds: &mut Vec<Vec<pb::ThermalSample>>, round: Vec<pb::ThermalSample>, cap: usize, every: &mut Duration) {
    if rounds.len() >= cap {
        let mut i = 0;
        rounds.retain(|_| {
            i += 1;
            i % 2 == 1
        });
        *every = every.saturating_mul(2);
    }
    rounds.push(round);
}

/// How waiting for a cool machine ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CoolWait {
    /// No sensor reads here: nothing to wait for.
    NoSensor,
    /// The hottest sensor read at or below the threshold after this long.
    Cool {
        waited: Duration,
        celsius: f64,
    },
    /// Still above after the longest wait; the cell goes on.
    TimedOut {
        waited: Duration,
        celsius: f64,
    },
    Cancelled,
}

/// Waits until the hottest sensor reads at most `below_c`, checking every `poll`, for at most
/// `max_wait`; `cancel` ends it early.
pub fn wait_until_cool(sensors: &Sensors, below_c: f64, max_wait: Duration, poll: Duration, cancel: &AtomicBool) -> CoolWait {
    let start = Instant::now();
    loop {
        let Some(celsius) = sensors.hottest_c() else { return CoolWait::NoSensor };
        let waited = start.elapsed();
        if celsius <= below_c {
            return CoolWait::Cool { waited, celsius };
        }
        if waited >= max_wait {
            return CoolWait::TimedOut { waited, celsius };
        }
        let end = Instant::now() + poll.min(max_wait - waited);
        while Instant::now() < end {
            if cancel.load(Ordering::Relaxed) {
                return CoolWait::Cancelled;
            }
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(100)));
        }
    }
}

#[cfg(test)]
#[path = "thermal_tests.rs"]
mod tests;

//! Energy counters, read before and after the measured repetitions (never per iteration).
//!
//! Linux: RAPL through powercap, `/sys/class/powercap/intel-rapl:N` (`name`, `energy_uj`,
//! `max_energy_range_uj` for the wrap-around); the package domains are summed. Recent kernels
//! expose AMD's RAPL under the same names. Since Linux 5.10 `energy_uj` is readable by root
//! only: then there is no meter and results carry no energy (absent, never 0). macOS: IOReport's
//! "Energy Model" channels, CPU, GPU and ANE, each summed over the dies of an Ultra
//! ([`ioreport_unit`]; `crate::probe::macos::ioreport`), readable without root, from one
//! subscription per process. Elsewhere there is no meter.

use std::path::{Path, PathBuf};

/// Where Linux lists its power-capping zones.
pub const LINUX_POWERCAP: &str = "/sys/class/powercap";

#[derive(Debug, Clone)]
struct Domain {
    name: String,
    energy_uj: PathBuf,
    max_range_uj: Option<u64>,
}

/// A set of energy counters whose sum is the energy the machine used.
pub struct Meter {
    domains: Vec<Domain>,
    /// macOS: the process's IOReport subscription the counters come from (`domains` then names
    /// its units), shared by every meter.
    #[cfg(target_os = "macos")]
    ioreport: Option<&'static std::sync::Mutex<crate::probe::macos::ioreport::Channels>>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter").field("source", &self.source()).finish()
    }
}

/// The counters at one moment (µJ, one per domain).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading(Vec<u64>);

impl Meter {
    /// This machine's meter; `None` where no counter is readable (why is logged once).
    pub fn open() -> Option<Meter> {
        #[cfg(target_os = "linux")]
        let opened = Meter::from_powercap(Path::new(LINUX_POWERCAP));
        #[cfg(target_os = "macos")]
        let opened = Meter::from_ioreport();
        #[cfg(not(any(target_os = "linux", target_os = "macos")))]
        let opened: Result<Meter, String> = Err("no energy counters on this platform".into());
        match opened {
            Ok(m) => Some(m),
            Err(why) => {
                static ONCE: std::sync::Once = std::sync::Once::new();
                ONCE.call_once(|| tracing::info!(reason = %why, "no energy counter; cells report no energy"));
                None
            }
        }
    }

    /// The RAPL package domains under `root` (a `/sys/class/powercap` layout): the top-level
    /// `intel-rapl:N` zones named `package-*`, in zone order. Every one must read now.
    pub fn from_powercap(root: &Path) -> Result<Meter, String> {
        let entries = std::fs::read_dir(root).map_err(|e| format!("{}: {e}", root.display()))?;
        let mut found: Vec<(u32, Domain)> = entries
            .flatten()
            .filter_map(|e| {
                let n: u32 = e.file_name().to_str()?.strip_prefix("intel-rapl:")?.parse().ok()?;
                let dir = e.path();
                let name = read_trimmed(&dir.join("name"))?;
                name.starts_with("package").then(|| {
                    let max_range_uj = read_trimmed(&dir.join("max_energy_range_uj")).and_then(|v| v.parse().ok());
                    (n, Domain { name, energy_uj: dir.join("energy_uj"), max_range_uj })
                })
            })
            .collect();
        if found.is_empty() {
            return Err(format!("no RAPL package domain under {}", root.display()));
        }
        found.sort_by_key(|(n, _)| *n);
        let meter = Meter {
            domains: found.into_iter().map(|(_, d)| d).collect(),
            #[cfg(target_os = "macos")]
            ioreport: None,
        };
        for d in &meter.domains {
            read_uj(&d.energy_uj).map_err(|e| format!("{}: {e}", d.energy_uj.display()))?;
        }
        Ok(meter)
    }

    /// IOReport's CPU, GPU and ANE energy counters, from the process's one subscription (opening
    /// a meter per cell takes no new one).
    #[cfg(target_os = "macos")]
    pub fn from_ioreport() -> Result<Meter, String> {
        use crate::probe::macos::ioreport::{Channels, UNITS};
        let channels = Channels::shared()?;
        Channels::lock(channels).read().ok_or("IOReport gave no energy sample")?;
        let domains = UNITS.iter().map(|u| Domain { name: u.to_string(), energy_uj: PathBuf::new(), max_range_uj: None }).collect();
        Ok(Meter { domains, ioreport: Some(channels) })
    }

    /// What the energy is, for results: `rapl:package-0+package-1`, `ioreport:cpu+gpu+ane`.
    pub fn source(&self) -> String {
        let kind = if self.is_ioreport() { "ioreport" } else { "rapl" };
        format!("{kind}:{}", self.domains.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join("+"))
    }

    fn is_ioreport(&self) -> bool {
        #[cfg(target_os = "macos")]
        return self.ioreport.is_some();
        #[cfg(not(target_os = "macos"))]
        false
    }

    /// Every counter now; `None` if any fails to read.
    pub fn read(&self) -> Option<Reading> {
        #[cfg(target_os = "macos")]
        if let Some(channels) = self.ioreport {
            return crate::probe::macos::ioreport::Channels::lock(channels).read().map(Reading);
        }
        self.domains.iter().map(|d| read_uj(&d.energy_uj).ok()).collect::<Option<Vec<u64>>>().map(Reading)
    }

    /// Joules between two readings, counting one wrap-around per counter; `None` where a counter
    /// wrapped without a known range or the readings do not match this meter.
    pub fn joules(&self, before: &Reading, after: &Reading) -> Option<f64> {
        Some(self.joules_by_counter(before, after)?.iter().sum())
    }

    /// [`Meter::joules`] per counter, in the order of [`Meter::counter_names`].
    pub fn joules_by_counter(&self, before: &Reading, after: &Reading) -> Option<Vec<f64>> {
        if before.0.len() != self.domains.len() || after.0.len() != self.domains.len() {
            return None;
        }
        let one = |(d, (&b, &a)): (&Domain, (&u64, &u64))| {
            let uj = if a >= b { a - b } else { d.max_range_uj?.checked_sub(b)?.checked_add(a)? };
            Some(uj as f64 / 1e6)
        };
        self.domains.iter().zip(before.0.iter().zip(&after.0)).map(one).collect()
    }

    /// The counters' names: `package-0`…, or `cpu`, `gpu`, `ane`.
    pub fn counter_names(&self) -> Vec<String> {
        self.domains.iter().map(|d| d.name.clone()).collect()
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Which kind of unit an IOReport "Energy Model" channel measures (index into `cpu`, `gpu`,
/// `ane`); every die of an Ultra counts, each rail once. Names as macOS gives them (macmon's
/// `src_lib/metrics.rs` and its issues #17, #68; all-smi's M1 Ultra inventory, lablup/all-smi#415):
///
/// - CPU: "CPU Energy" on one die; an Ultra has no package channel but "DIE_0_CPU Energy" and
///   "DIE_1_CPU Energy". The per-cluster and per-core channels ("EACC_CPU", "PACC0_CPU",
///   "DIE_0_PACC1_CPU3", "…_SRAM", "…_CPM", "PCPU1DTL3e") repeat parts of it: left out.
/// - GPU: "GPU Energy" (nJ), one channel even on an Ultra; a die-prefixed one counts too. The
///   "GPU0_0", "GPU CS0_0", "GPU SRAM0_0" breakdown (mJ) is left out.
/// - ANE: "ANE" (base chips), "ANE0" (Max), "ANE0_0" and "ANE0_1" (Ultra, one per die): every
///   channel that starts with "ANE", after a die prefix if there is one.
///
/// DRAM, AMCC, DCS, ISP, AVE, MSR, PCIe and the rest are not the units a cell runs on.
pub fn ioreport_unit(channel: &str) -> Option<usize> {
    let name = strip_die(channel);
    if name == "CPU Energy" {
        Some(0)
    } else if name == "GPU Energy" {
        Some(1)
    } else if name.starts_with("ANE") {
        Some(2)
    } else {
        None
    }
}

/// Microjoules per kind of unit (`cpu`, `gpu`, `ane`) from IOReport channels' (name, unit label,
/// value): every die's channel added to its kind ([`ioreport_unit`]), the rest left out.
pub fn ioreport_sum<'a>(channels: impl IntoIterator<Item = (&'a str, &'a str, i64)>) -> [f64; 3] {
    let mut uj = [0f64; 3];
    for (name, unit, value) in channels {
        if let (Some(i), Some(scale)) = (ioreport_unit(name), microjoules_per(unit)) {
            uj[i] += value as f64 * scale;
        }
    }
    uj
}

/// A channel's name without its die prefix (`DIE_<n>_`, Ultra chips).
fn strip_die(channel: &str) -> &str {
    channel
        .strip_prefix("DIE_")
        .and_then(|rest| {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            (digits > 0).then(|| rest[digits..].strip_prefix('_')).flatten()
        })
        .unwrap_or(channel)
}

/// Microjoules in one of an IOReport channel's units.
pub fn microjoules_per(unit: &str) -> Option<f64> {
    match unit.trim() {
        "mJ" => Some(1e3),
        "uJ" | "µJ" => Some(1.0),
        "nJ" => Some(1e-3),
        _ => None,
    }
}

fn read_uj(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    text.trim().parse().map_err(|_| format!("not a counter: {:?}", text.trim()))
}

#[cfg(test)]
#[path = "energy_tests.rs"]
mod tests;

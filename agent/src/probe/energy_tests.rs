//! Energy probe tests on fake `/sys/class/powercap` trees, and one on this host.

use std::path::Path;

use super::*;

const RANGE: u64 = 262_143_328_850;

fn domain(root: &Path, dir: &str, name: &str, energy: u64, range: Option<u64>) {
    let d = root.join(dir);
    std::fs::create_dir_all(&d).expect("creating a fake zone");
    std::fs::write(d.join("name"), format!("{name}\n")).expect("writing name");
    std::fs::write(d.join("energy_uj"), format!("{energy}\n")).expect("writing energy_uj");
    if let Some(r) = range {
        std::fs::write(d.join("max_energy_range_uj"), format!("{r}\n")).expect("writing range");
    }
}

fn set_energy(root: &Path, dir: &str, energy: u64) {
    std::fs::write(root.join(dir).join("energy_uj"), format!("{energy}\n")).expect("writing energy_uj");
}

/// A two-socket Intel machine: packages with subdomains, psys, and the MMIO duplicate.
fn two_sockets(root: &Path) {
    std::fs::create_dir_all(root.join("intel-rapl")).expect("control type dir");
    std::fs::write(root.join("intel-rapl/enabled"), "1\n").expect("enabled");
    domain(root, "intel-rapl:1", "package-1", 5_000_000, Some(RANGE));
    domain(root, "intel-rapl:0", "package-0", 1_000_000, Some(RANGE));
    domain(root, "intel-rapl:0:0", "core", 400_000, Some(RANGE));
    domain(root, "intel-rapl:0:1", "dram", 300_000, Some(RANGE));
    domain(root, "intel-rapl:2", "psys", 9_000_000, Some(RANGE));
    domain(root, "intel-rapl-mmio:0", "package-0", 1_000_000, Some(RANGE));
}

#[test]
fn package_domains_are_summed_in_joules() {
    let d = tempfile::tempdir().expect("tempdir");
    two_sockets(d.path());
    let m = Meter::from_powercap(d.path()).expect("two package domains");
    assert_eq!(m.source(), "rapl:package-0+package-1");
    let before = m.read().expect("readable");
    assert_eq!(before, Reading(vec![1_000_000, 5_000_000]));
    set_energy(d.path(), "intel-rapl:0", 3_500_000);
    set_energy(d.path(), "intel-rapl:1", 6_000_000);
    set_energy(d.path(), "intel-rapl:2", 99_000_000); // psys is not a package: not counted
    set_energy(d.path(), "intel-rapl:0:0", 99_000_000);
    let after = m.read().expect("readable");
    assert_eq!(m.joules(&before, &after), Some(3.5));
    assert_eq!(m.joules(&before, &before), Some(0.0));
}

#[test]
fn a_wrapped_counter_counts_through_its_range() {
    let d = tempfile::tempdir().expect("tempdir");
    domain(d.path(), "intel-rapl:0", "package-0", RANGE - 2_000_000, Some(RANGE));
    let m = Meter::from_powercap(d.path()).expect("a package");
    let before = m.read().expect("readable");
    set_energy(d.path(), "intel-rapl:0", 1_000_000);
    let after = m.read().expect("readable");
    assert_eq!(m.joules(&before, &after), Some(3.0));
}

#[test]
fn a_wrap_without_a_known_range_is_unknown() {
    let d = tempfile::tempdir().expect("tempdir");
    domain(d.path(), "intel-rapl:0", "package-0", 5_000_000, None);
    let m = Meter::from_powercap(d.path()).expect("a package");
    let before = m.read().expect("readable");
    set_energy(d.path(), "intel-rapl:0", 6_000_000);
    assert_eq!(m.joules(&before, &m.read().expect("readable")), Some(1.0));
    set_energy(d.path(), "intel-rapl:0", 1_000);
    assert_eq!(m.joules(&before, &m.read().expect("readable")), None);
    assert_eq!(m.joules(&before, &Reading(vec![])), None);
}

#[test]
fn missing_or_unreadable_counters_mean_no_meter() {
    let d = tempfile::tempdir().expect("tempdir");
    assert!(Meter::from_powercap(&d.path().join("powercap")).is_err(), "no powercap at all");
    std::fs::create_dir_all(d.path().join("intel-rapl")).expect("control type dir");
    domain(d.path(), "intel-rapl:0:0", "core", 1, Some(RANGE));
    domain(d.path(), "intel-rapl:1", "psys", 1, Some(RANGE));
    assert!(Meter::from_powercap(d.path()).is_err(), "no package domain");
    // Unreadable (root-only on Linux 5.10+; a folder here, since tests may run as root).
    domain(d.path(), "intel-rapl:0", "package-0", 1, Some(RANGE));
    std::fs::remove_file(d.path().join("intel-rapl:0/energy_uj")).expect("rm");
    std::fs::create_dir(d.path().join("intel-rapl:0/energy_uj")).expect("mkdir");
    let err = Meter::from_powercap(d.path()).expect_err("unreadable counter");
    assert!(err.contains("energy_uj"), "{err}");
    // Garbage in the counter.
    std::fs::remove_dir(d.path().join("intel-rapl:0/energy_uj")).expect("rmdir");
    std::fs::write(d.path().join("intel-rapl:0/energy_uj"), "lots\n").expect("write");
    assert!(Meter::from_powercap(d.path()).is_err(), "garbage counter");
}

#[test]
fn a_counter_that_stops_reading_gives_no_reading() {
    let d = tempfile::tempdir().expect("tempdir");
    domain(d.path(), "intel-rapl:0", "package-0", 1, Some(RANGE));
    domain(d.path(), "intel-rapl:1", "package-1", 1, Some(RANGE));
    let m = Meter::from_powercap(d.path()).expect("two packages");
    std::fs::remove_file(d.path().join("intel-rapl:1/energy_uj")).expect("rm");
    assert_eq!(m.read(), None);
}

#[test]
fn this_host_opens_or_declines_without_failing() {
    if let Some(m) = Meter::open() {
        assert!(m.source().starts_with("rapl:package"));
        if let (Some(a), Some(b)) = (m.read(), m.read()) {
            assert!(m.joules(&a, &b).is_some_and(|j| j >= 0.0));
        }
    }
}

/// Energy Model channel names as macOS reports them: M1/M2 base and Max, and the M1 and M2 Ultra
/// inventories of macmon#17, macmon#68 and all-smi#415.
const CHANNELS: &[(&str, Option<usize>)] = &[
    // One die.
    ("CPU Energy", Some(0)),
    ("GPU Energy", Some(1)),
    ("ANE", Some(2)),
    ("ANE0", Some(2)),
    ("EACC_CPU", None),
    ("PACC0_CPU", None),
    ("PACC1_CPU", None),
    ("ECPU0", None),
    ("PCPU3", None),
    ("GPU0", None),
    ("GPU SRAM0", None),
    ("DRAM", None),
    ("DRAM0", None),
    // Ultra: the CPU per die, the ANE per die (suffix), one GPU rail.
    ("DIE_0_CPU Energy", Some(0)),
    ("DIE_1_CPU Energy", Some(0)),
    ("ANE0_0", Some(2)),
    ("ANE0_1", Some(2)),
    ("DIE_1_GPU Energy", Some(1)),
    ("DIE_0_ANE0", Some(2)),
    ("DIE_0_EACC_CPU0", None),
    ("DIE_0_PACC0_CPU3", None),
    ("DIE_0_PACC1_CPM", None),
    ("DIE_0_EACC_CPU0_SRAM", None),
    ("DIE_1_PACC1_CPU2_SRAM", None),
    ("PCPU1DTL3e", None),
    ("GPU0_0", None),
    ("GPU CS0_0", None),
    ("GPU SRAM0_0", None),
    ("GPU CS SRAM0_0", None),
    ("ISP0_0", None),
    ("AVE0_1", None),
    ("MSR0_0", None),
    ("DCS0_1", None),
    ("DRAM0_0", None),
    ("AMCC0_1", None),
    ("apciec2 Energy", None),
    ("PCIe Port 0 Energy", None),
    // Not a die prefix.
    ("DIE_CPU Energy", None),
    ("DIE_x_CPU Energy", None),
];

#[test]
fn ioreport_channels_are_counted_once_per_kind_of_unit_on_every_die() {
    for &(name, want) in CHANNELS {
        assert_eq!(ioreport_unit(name), want, "{name:?}");
    }
    // One reading of an M2 Ultra (units as it labels them): both dies count, once each.
    let ultra = [
        ("DIE_0_CPU Energy", "mJ", 4_606),
        ("DIE_1_CPU Energy", "mJ", 573),
        ("DIE_0_EACC_CPU0", "mJ", 90),
        ("DIE_1_PACC0_CPU1", "mJ", 70),
        ("GPU Energy", "nJ", 32_912_460),
        ("GPU0_0", "mJ", 17),
        ("GPU SRAM0_0", "mJ", 3),
        ("ANE0_0", "mJ", 46),
        ("ANE0_1", "mJ", 11),
        ("DRAM0_0", "mJ", 646),
        ("apciec2 Energy", "uJ", 1_000),
    ];
    let [cpu, gpu, ane] = ioreport_sum(ultra);
    assert_eq!(cpu, 5_179_000.0, "DIE_0 + DIE_1, in µJ");
    assert!((gpu - 32_912.46).abs() < 1e-6, "{gpu}");
    assert_eq!(ane, 57_000.0);
    assert_eq!(ioreport_sum([("CPU Energy", "mJ", 10), ("ANE", "mJ", 2), ("GPU Energy", "W", 5)]), [10_000.0, 0.0, 2_000.0]);
    assert_eq!(microjoules_per("mJ"), Some(1e3));
    assert_eq!(microjoules_per("nJ"), Some(1e-3));
    assert_eq!(microjoules_per("uJ"), Some(1.0));
    assert_eq!(microjoules_per("W"), None);
}

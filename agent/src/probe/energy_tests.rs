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

#[test]
fn ioreport_channels_are_counted_once_per_kind_of_unit() {
    assert_eq!(ioreport_unit("CPU Energy"), Some(0));
    assert_eq!(ioreport_unit("GPU Energy"), Some(1));
    assert_eq!(ioreport_unit("ANE0"), Some(2));
    // Per-cluster and per-core channels repeat what "CPU Energy" already sums.
    assert_eq!(ioreport_unit("ECPU0"), None);
    assert_eq!(ioreport_unit("PCPU3"), None);
    assert_eq!(ioreport_unit("DRAM"), None);
    assert_eq!(microjoules_per("mJ"), Some(1e3));
    assert_eq!(microjoules_per("nJ"), Some(1e-3));
    assert_eq!(microjoules_per("W"), None);
}

//! Thermal probe tests on fake `/sys/class/thermal` trees, and one on this host.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::*;

fn zone(root: &Path, n: u32, kind: &str, temp: &str) {
    let dir = root.join(format!("thermal_zone{n}"));
    std::fs::create_dir_all(&dir).expect("creating a fake zone");
    std::fs::write(dir.join("type"), format!("{kind}\n")).expect("writing type");
    std::fs::write(dir.join("temp"), format!("{temp}\n")).expect("writing temp");
}

/// Replaces a zone's reading atomically, as sysfs does: a reader never sees a half-written file.
fn set_temp(root: &Path, n: u32, temp: &str) {
    let dir = root.join(format!("thermal_zone{n}"));
    std::fs::write(dir.join("temp.new"), temp).expect("writing temp");
    std::fs::rename(dir.join("temp.new"), dir.join("temp")).expect("replacing temp");
}

#[test]
fn zones_are_read_in_order_with_degrees_from_millidegrees() {
    let d = tempfile::tempdir().expect("tempdir");
    zone(d.path(), 10, "iwlwifi_1", "41000");
    zone(d.path(), 2, "x86_pkg_temp", "55500");
    zone(d.path(), 0, "acpitz", "27800");
    zone(d.path(), 1, "acpitz", "29800");
    std::fs::create_dir_all(d.path().join("cooling_device0")).expect("mkdir");
    let s = Sensors::from_root(d.path());
    let got: Vec<(String, Option<f64>)> = s.read(7).into_iter().map(|t| (t.sensor, t.celsius)).collect();
    assert_eq!(
        got,
        vec![
            ("acpitz/thermal_zone0".into(), Some(27.8)),
            ("acpitz/thermal_zone1".into(), Some(29.8)),
            ("x86_pkg_temp".into(), Some(55.5)),
            ("iwlwifi_1".into(), Some(41.0)),
        ]
    );
    assert!(s.read(7).iter().all(|t| t.unix_ms == 7 && t.state.is_empty()));
    assert_eq!(s.hottest_c(), Some(55.5));
}

#[test]
fn unreadable_disabled_and_implausible_zones_are_left_out() {
    let d = tempfile::tempdir().expect("tempdir");
    zone(d.path(), 0, "good", "30000");
    zone(d.path(), 1, "absent", "-273200");
    zone(d.path(), 2, "garbage", "n/a");
    zone(d.path(), 3, "off", "40000");
    std::fs::write(d.path().join("thermal_zone3/mode"), "disabled\n").expect("mode");
    std::fs::create_dir_all(d.path().join("thermal_zone4")).expect("a zone without files");
    let s = Sensors::from_root(d.path());
    assert_eq!(s.read(0).iter().map(|t| t.sensor.as_str()).collect::<Vec<_>>(), ["good"]);
    // A zone that stops reading later has a sample without degrees.
    set_temp(d.path(), 0, "");
    assert_eq!(s.read(0)[0].celsius, None);
    assert_eq!(s.hottest_c(), None);
}

#[test]
fn no_tree_means_no_sensors() {
    let d = tempfile::tempdir().expect("tempdir");
    let s = Sensors::from_root(&d.path().join("missing"));
    assert!(s.is_empty());
    assert!(ThermalSampler::start(s.clone(), Duration::from_millis(1), 10).is_none());
    let cancel = AtomicBool::new(false);
    assert_eq!(wait_until_cool(&s, 50.0, Duration::from_secs(60), Duration::from_secs(1), &cancel), CoolWait::NoSensor);
}

#[test]
fn the_sampler_records_every_zone_until_finished() {
    let d = tempfile::tempdir().expect("tempdir");
    zone(d.path(), 0, "cpu", "50000");
    zone(d.path(), 1, "gpu", "45000");
    let sampler = ThermalSampler::start(Sensors::from_root(d.path()), Duration::from_millis(5), 1000).expect("two zones");
    std::thread::sleep(Duration::from_millis(60));
    let samples = sampler.finish();
    assert!(samples.len() >= 4 && samples.len().is_multiple_of(2), "{} samples", samples.len());
    assert!(samples.windows(2).all(|w| w[0].unix_ms <= w[1].unix_ms));
    assert_eq!(samples.iter().filter(|s| s.sensor == "cpu").count(), samples.len() / 2);
}

#[test]
fn the_sampler_stays_within_its_cap_and_keeps_the_end() {
    let d = tempfile::tempdir().expect("tempdir");
    zone(d.path(), 0, "cpu", "50000");
    let sampler = ThermalSampler::start(Sensors::from_root(d.path()), Duration::from_millis(1), 8).expect("a zone");
    std::thread::sleep(Duration::from_millis(80));
    set_temp(d.path(), 0, "61000");
    std::thread::sleep(Duration::from_millis(20));
    let samples = sampler.finish();
    assert!(samples.len() <= 8 && samples.len() >= 2, "{} samples", samples.len());
    assert_eq!(samples.first().and_then(|s| s.celsius), Some(50.0));
    assert_eq!(samples.last().and_then(|s| s.celsius), Some(61.0));
}

#[test]
fn dropping_a_sampler_stops_its_thread() {
    let d = tempfile::tempdir().expect("tempdir");
    zone(d.path(), 0, "cpu", "50000");
    let sampler = ThermalSampler::start(Sensors::from_root(d.path()), Duration::from_secs(3600), 10);
    let t = std::time::Instant::now();
    drop(sampler);
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn halving_keeps_rounds_evenly_spread() {
    // As the sampler does: a round, then the next after the (possibly doubled) interval.
    let (mut rounds, mut every, mut t) = (Vec::new(), Duration::from_millis(10), 0u64);
    for _ in 0..9 {
        push_bounded(&mut rounds, vec![pb::ThermalSample { unix_ms: t, ..Default::default() }], 4, &mut every);
        t += every.as_millis() as u64;
    }
    let kept: Vec<u64> = rounds.iter().map(|r| r[0].unix_ms).collect();
    assert_eq!(kept, [0, 80, 160]);
    assert_eq!(every, Duration::from_millis(80));
}

#[test]
fn waiting_for_a_cool_machine_ends_cool_timed_out_or_cancelled() {
    let d = tempfile::tempdir().expect("tempdir");
    zone(d.path(), 0, "cpu", "80000");
    zone(d.path(), 1, "skin", "35000");
    let s = Sensors::from_root(d.path());
    let cancel = AtomicBool::new(false);
    let poll = Duration::from_millis(5);
    match wait_until_cool(&s, 90.0, Duration::from_secs(5), poll, &cancel) {
        CoolWait::Cool { celsius, .. } => assert_eq!(celsius, 80.0),
        other => panic!("{other:?}"),
    }
    match wait_until_cool(&s, 60.0, Duration::from_millis(30), poll, &cancel) {
        CoolWait::TimedOut { celsius, waited } => assert!(celsius == 80.0 && waited >= Duration::from_millis(30)),
        other => panic!("{other:?}"),
    }
    let root = d.path().to_path_buf();
    let cooler = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        set_temp(&root, 0, "59000");
    });
    let got = wait_until_cool(&s, 60.0, Duration::from_secs(5), poll, &cancel);
    let _ = cooler.join();
    assert!(matches!(got, CoolWait::Cool { celsius, .. } if celsius == 59.0), "{got:?}");
    cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(wait_until_cool(&s, 10.0, Duration::from_secs(5), poll, &cancel), CoolWait::Cancelled);
}

#[test]
fn this_host_reads_without_failing() {
    let s = Sensors::open();
    let samples = s.read(unix_ms());
    assert!(samples.iter().all(|t| !t.sensor.is_empty()));
    let _ = s.hottest_c();
    if let Some(sampler) = ThermalSampler::start(s, Duration::from_millis(10), 5) {
        std::thread::sleep(Duration::from_millis(30));
        assert!(sampler.finish().len() <= 5 * samples.len().max(1));
    }
}

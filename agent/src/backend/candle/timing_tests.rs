//! Timings of the real test models (ignored by default; run with
//! `cargo test --release -p agent backend::candle::timing_tests -- --ignored --nocapture`).

use std::time::Instant;

use super::test_models;
use crate::backend::LoadedModel;

/// Median of `n` runs of `f`, in milliseconds.
fn median_ms(n: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[n / 2]
}

#[test]
#[ignore]
fn print_timings() {
    let t0 = Instant::now();
    let loaded = super::load("cpu", &test_models::path(test_models::SMOLLM2)).unwrap();
    println!("smollm2 load: {:.0} ms", t0.elapsed().as_secs_f64() * 1e3);
    let LoadedModel::Decoder(mut d) = loaded.model else { panic!() };
    let prompt: Vec<u32> = (0..128).map(|i| 1000 + i).collect();
    let prefill = median_ms(3, || {
        d.forward(&prompt, 0).unwrap();
    });
    let mut pos = 128;
    let decode = median_ms(10, || {
        d.forward(&[1000], pos).unwrap();
        pos += 1;
    });
    println!("smollm2 q4_1 prefill 128: {prefill:.0} ms, decode step (ctx ~128): {decode:.1} ms");

    let loaded = super::load("cpu", &test_models::path(test_models::MINILM)).unwrap();
    let LoadedModel::Encoder(mut e) = loaded.model else { panic!() };
    let ids: Vec<u32> = std::iter::once(101).chain((0..126).map(|i| 2000 + i)).chain([102]).collect();
    let encode = median_ms(10, || {
        e.encode(std::slice::from_ref(&ids)).unwrap();
    });
    println!("minilm encode 128: {encode:.1} ms");
}

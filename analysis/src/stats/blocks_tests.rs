//! Tests of building bootstrap blocks from stored cells: which split is used when, and what
//! happens with missing, extra or damaged histograms.

use anefleet_proto::histogram::{self, encode, new_latency};
use anefleet_proto::pb;
use hdrhistogram::Histogram;

use super::block_bootstrap::speedup_ci_blocks;
use super::blocks::{Block, Blocks, MAX_GROUP_BLOCKS, blocks_of, coarsen};
use super::bootstrap::Level;

const T0_MS: u64 = 1_760_000_000_000;

/// The latencies of interval `i` of repetition `r`: 20 of them around `base_ns`, distinct per
/// interval so that blocks can be told apart.
fn values(base_ns: u64, r: usize, i: usize) -> Vec<u64> {
    (0..20).map(|k| base_ns + (r as u64) * 400_000 + (i as u64) * 30_000 + k * 7_000).collect()
}

fn hist(values: &[u64]) -> Histogram<u64> {
    let mut h = new_latency();
    values.iter().for_each(|&v| histogram::record(&mut h, v));
    h
}

fn bytes(values: &[u64]) -> Vec<u8> {
    encode(&hist(values)).expect("encode")
}

/// A done cell of `reps` repetitions of `intervals` intervals, with everything stored.
fn record(base_ns: u64, reps: usize, intervals: usize) -> pb::CellRecord {
    let per_rep: Vec<Vec<u64>> = (0..reps).map(|r| (0..intervals).flat_map(|i| values(base_ns, r, i)).collect()).collect();
    let all: Vec<u64> = per_rep.concat();
    let repetitions = per_rep
        .iter()
        .enumerate()
        .map(|(r, v)| pb::Repetition { index: r as u32, iterations: v.len() as u64, duration_s: 10.0, latency: bytes(v) })
        .collect();
    let interval_histograms = (0..reps)
        .flat_map(|r| (0..intervals).map(move |i| (r, i)))
        .map(|(r, i)| pb::IntervalHistogram {
            repetition: r as u32,
            start_unix_ms: T0_MS + (r * 100 + i) as u64 * 1000,
            latency: bytes(&values(base_ns, r, i)),
            ..Default::default()
        })
        .collect();
    let result = pb::CellResult { latency: bytes(&all), repetitions, ..Default::default() };
    pb::CellRecord { state: "done".into(), result: Some(result), interval_histograms, ..Default::default() }
}

fn shape(r: &pb::CellRecord) -> (usize, usize) {
    blocks_of(r).expect("decodes").expect("has latencies").shape()
}

#[test]
fn repetitions_are_split_into_their_intervals() {
    let r = record(20_000_000, 3, 10);
    let blocks = blocks_of(&r).expect("decodes").expect("has latencies");
    assert_eq!((blocks.shape(), blocks.level()), ((3, 30), Level::Repetitions));
}

#[test]
fn intervals_are_kept_in_time_order_whatever_the_stored_order() {
    let mut r = record(20_000_000, 2, 5);
    r.interval_histograms.reverse();
    let blocks = blocks_of(&r).expect("decodes").expect("has latencies");
    let first = Block::of(&hist(&values(20_000_000, 0, 0))).expect("values");
    assert_eq!(blocks.groups[0][0], first);
}

#[test]
fn the_point_estimate_is_the_p50_of_the_stored_latency() {
    let (a, b) = (record(20_000_000, 3, 10), record(18_000_000, 3, 10));
    let ci = speedup_ci_blocks(&blocks_of(&a).unwrap().unwrap(), &blocks_of(&b).unwrap().unwrap(), 50, 1).expect("ci");
    let p50 = |r: &pb::CellRecord| histogram::decode(&r.result.as_ref().unwrap().latency).unwrap().value_at_quantile(0.5) as f64;
    assert_eq!(ci.ratio, p50(&a) / p50(&b));
}

#[test]
fn a_repetition_whose_intervals_do_not_add_up_is_one_block() {
    // Missing altogether, one lost, one that does not decode: each costs only its repetition.
    let mut missing = record(20_000_000, 3, 10);
    missing.interval_histograms.retain(|iv| iv.repetition != 1);
    assert_eq!(shape(&missing), (3, 21));
    let mut lost = record(20_000_000, 3, 10);
    lost.interval_histograms.remove(12);
    assert_eq!(shape(&lost), (3, 21));
    let mut damaged = record(20_000_000, 3, 10);
    damaged.interval_histograms[25].latency = vec![1, 2, 3];
    assert_eq!(shape(&damaged), (3, 21));
}

#[test]
fn without_intervals_each_repetition_is_one_block() {
    let mut r = record(20_000_000, 3, 10);
    r.interval_histograms.clear();
    assert_eq!(shape(&r), (3, 3));
}

#[test]
fn without_repetitions_intervals_are_grouped_by_their_tag() {
    let mut r = record(20_000_000, 3, 10);
    r.result.as_mut().unwrap().repetitions.clear();
    assert_eq!(shape(&r), (3, 30));
    r.interval_histograms.pop();
    assert_eq!(shape(&r), (1, 1), "intervals that do not add up to the latency are not used");
}

#[test]
fn repetitions_that_do_not_add_up_to_the_latency_are_not_used() {
    let mut r = record(20_000_000, 3, 10);
    r.result.as_mut().unwrap().repetitions.pop();
    r.interval_histograms.clear();
    let blocks = blocks_of(&r).expect("decodes").expect("has latencies");
    assert_eq!((blocks.shape(), blocks.level()), ((1, 1), Level::Iterations));
}

#[test]
fn no_result_or_no_latency_is_none() {
    let mut r = record(20_000_000, 3, 10);
    r.result.as_mut().unwrap().latency.clear();
    assert!(blocks_of(&r).expect("nothing to decode").is_none());
    r.result = None;
    assert!(blocks_of(&r).expect("nothing to decode").is_none());
}

#[test]
fn a_damaged_repetition_or_latency_is_an_error() {
    let mut r = record(20_000_000, 3, 10);
    r.result.as_mut().unwrap().repetitions[1].latency = vec![9; 40];
    assert!(blocks_of(&r).is_err());
    let mut r = record(20_000_000, 3, 10);
    r.result.as_mut().unwrap().latency = vec![9; 40];
    assert!(blocks_of(&r).is_err());
}

#[test]
fn pooled_cells_are_their_repetitions_side_by_side() {
    let mut pooled = blocks_of(&record(20_000_000, 3, 10)).unwrap().unwrap();
    pooled.extend(blocks_of(&record(20_100_000, 2, 4)).unwrap().unwrap());
    // The cell of two repetitions is one group of its 8 intervals (see the next test).
    assert_eq!(pooled.shape(), (4, 38));
}

#[test]
fn two_repetitions_are_resampled_by_their_intervals() {
    let two = blocks_of(&record(20_000_000, 2, 4)).unwrap().unwrap();
    assert_eq!((two.shape(), two.level()), ((1, 8), Level::Intervals));
    let three = blocks_of(&record(20_000_000, 3, 4)).unwrap().unwrap();
    assert_eq!((three.shape(), three.level()), ((3, 12), Level::Repetitions));
}

#[test]
fn coarsening_merges_adjacent_blocks_and_keeps_every_value() {
    let blocks: Vec<Block> = (0..10).map(|i| Block::of(&hist(&values(1_000_000, 0, i))).expect("values")).collect();
    let total: u64 = blocks.iter().map(Block::count).sum();
    let merged = coarsen(blocks.clone(), 3);
    assert_eq!(merged.len(), 3);
    assert_eq!(merged.iter().map(Block::count).sum::<u64>(), total);
    // The first merged block is the first blocks in time, not a mix.
    let first_chunk = blocks[..4].iter().fold(Block::default(), |all, b| all.merged(b));
    assert_eq!(merged[0], first_chunk);
    assert_eq!(coarsen(blocks.clone(), 20), blocks, "under the cap, nothing changes");
}

#[test]
fn a_long_repetition_keeps_at_most_the_cap_of_blocks() {
    let h = hist(&values(1_000_000, 0, 0));
    let blocks = Blocks::intervals(std::iter::repeat_n(&h, 1000));
    assert_eq!(blocks.shape(), (1, MAX_GROUP_BLOCKS));
}

//! The harness's own cost: the full measurement loop (`executor::measure::measure`) around a
//! workload that does nothing, against a bare `Instant` pair, and the allocations the loop makes.
//!
//!     cargo bench -p agent --bench harness
//!
//! Prints the per-iteration overhead in nanoseconds (target: at most 100 ns) and the allocations
//! per iteration (target: none; interval histograms are encoded once a second, outside the timed
//! call, and counted apart).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use agent::executor::measure::{self, Probes};
use agent::executor::{CellJob, Event};
use agent::workload::{Phases, Result, Workload};
use anefleet_proto::pb;

/// Counts every allocation of the process.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A model call that costs nothing.
struct NoOp;

impl Workload for NoOp {
    fn before(&mut self, _: usize) -> Result<()> {
        Ok(())
    }
    fn run(&mut self, i: usize, _: &mut Phases) -> Result<()> {
        black_box(i);
        Ok(())
    }
    fn after(&mut self, _: usize) {}
    fn outputs(&self) -> Vec<pb::Output> {
        vec![]
    }
}

const ITERATIONS: u32 = 5_000_000;
/// A shorter run: the allocations of the longer one beyond it are the loop's own.
const SHORT: u32 = 1_000_000;

/// Nanoseconds per iteration of a loop that only reads the clock twice.
fn bare() -> f64 {
    let start = Instant::now();
    for i in 0..ITERATIONS {
        let t = Instant::now();
        black_box(i);
        black_box(t.elapsed());
    }
    start.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
}

/// Nanoseconds per iteration of the real loop, the allocations it made, and the intervals sent.
fn harness(iterations: u32) -> (f64, u64, u64) {
    let spec = pb::CellSpec {
        measure: Some(pb::Measure { warmup: 0, min_iterations: iterations, min_duration_s: 0.0, repetitions: 1, cooldown_s: 0.0 }),
        ..Default::default()
    };
    let job = CellJob {
        cell_id: "harness".into(),
        attempt: 1,
        spec: &spec,
        model_path: std::path::Path::new("."),
        data: &[],
        cancel: Arc::new(AtomicBool::new(false)),
        cool_below_c: None,
    };
    let mut intervals = Vec::with_capacity(1024);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let start = Instant::now();
    let m = measure::measure(&mut NoOp, &job, Probes::none(), &mut |e| {
        if let Event::Interval(iv) = e {
            intervals.push(iv.iterations_so_far);
        }
    });
    let ns = start.elapsed().as_nanos() as f64 / f64::from(iterations);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert!(m.is_ok(), "the loop failed");
    (ns, allocations, intervals.len() as u64)
}

fn main() {
    // Warm the clock and the caches, then take the best of three of each.
    let _ = (bare(), harness(ITERATIONS));
    let bare_ns = (0..3).map(|_| bare()).fold(f64::MAX, f64::min);
    let runs: Vec<(f64, u64, u64)> = (0..3).map(|_| harness(ITERATIONS)).collect();
    let (loop_ns, allocations, intervals) = runs.iter().copied().min_by(|a, b| a.0.total_cmp(&b.0)).unwrap_or_default();
    let (_, short_allocations, short_intervals) = harness(SHORT);
    let extra = allocations as i64 - short_allocations as i64;
    println!("measurement loop around a no-op model, {ITERATIONS} iterations, best of 3:");
    println!("  bare Instant pair:   {bare_ns:7.1} ns/iteration");
    println!("  full loop:           {loop_ns:7.1} ns/iteration");
    println!("  harness overhead:    {:7.1} ns/iteration (target <= 100)", loop_ns - bare_ns);
    println!(
        "  allocations:         {allocations} over {ITERATIONS} iterations ({intervals} interval flushes), {short_allocations} over {SHORT} ({short_intervals} flushes): {extra} more for {} more iterations",
        ITERATIONS - SHORT
    );
    println!("reproduce: cargo bench -p agent --bench harness");
}

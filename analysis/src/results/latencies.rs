//! Each cell's decoded latencies, once per document, as the blocks where its noise lives
//! (repetitions, and the interval histograms inside them), and the speedup of one cell over
//! another with its block-bootstrap interval: what comparisons, recommendations and the context
//! advantage share.

use anefleet_proto::histogram::CodecError;
use anefleet_proto::pb;

use crate::stats::{self, Blocks, RatioCi};

/// Each cell's latency blocks, aligned with the cells.
pub struct Latencies {
    blocks: Vec<Option<Blocks>>,
    ids: Vec<String>,
}

impl Latencies {
    pub fn of(records: &[pb::CellRecord]) -> Result<Latencies, CodecError> {
        use rayon::prelude::*;
        let blocks = records.par_iter().map(stats::blocks_of).collect::<Result<_, _>>()?;
        Ok(Latencies { blocks, ids: records.iter().map(|r| r.id.clone()).collect() })
    }

    pub fn has(&self, i: usize) -> bool {
        self.blocks.get(i).is_some_and(Option::is_some)
    }

    /// `median(other) / median(cell)` with its interval: above 1, `cell` is faster. Seeded by
    /// the pair, so a document renders the same every time.
    pub fn speedup(&self, cell: usize, other: usize) -> Option<RatioCi> {
        let (mine, theirs) = (self.blocks.get(cell)?.as_ref()?, self.blocks.get(other)?.as_ref()?);
        stats::speedup_ci_blocks(theirs, mine, stats::RESAMPLES, seed(&self.ids[cell], &self.ids[other]))
    }
}

/// A stable seed per pair of cells.
fn seed(a: &str, b: &str) -> u64 {
    stats::rng::seed_from(&format!("{a}\0{b}"))
}

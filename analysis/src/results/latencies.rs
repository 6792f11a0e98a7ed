//! Each cell's decoded latencies, once per document, and the speedup of one cell over another
//! with its bootstrap interval: what comparisons, recommendations and the context advantage share.

use hdrhistogram::Histogram;

use anefleet_proto::histogram::{self, CodecError};
use anefleet_proto::pb;

use crate::stats::{self, RatioCi};

/// Decoded latency histograms, aligned with the cells.
pub struct Latencies {
    whole: Vec<Option<Histogram<u64>>>,
    ids: Vec<String>,
}

impl Latencies {
    pub fn of(records: &[pb::CellRecord]) -> Result<Latencies, CodecError> {
        let whole = records
            .iter()
            .map(|r| match &r.result {
                Some(res) if !res.latency.is_empty() => histogram::decode(&res.latency).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<_, _>>()?;
        Ok(Latencies { whole, ids: records.iter().map(|r| r.id.clone()).collect() })
    }

    pub fn has(&self, i: usize) -> bool {
        self.whole.get(i).is_some_and(Option::is_some)
    }

    /// `median(other) / median(cell)` with its interval: above 1, `cell` is faster. Seeded by
    /// the pair, so a document renders the same every time.
    pub fn speedup(&self, cell: usize, other: usize) -> Option<RatioCi> {
        let (mine, theirs) = (self.whole.get(cell)?.as_ref()?, self.whole.get(other)?.as_ref()?);
        stats::speedup_ci(theirs, mine, stats::RESAMPLES, seed(&self.ids[cell], &self.ids[other]))
    }
}

/// A stable seed per pair of cells.
fn seed(a: &str, b: &str) -> u64 {
    stats::rng::seed_from(&format!("{a}\0{b}"))
}

//! A cell's latencies split into the blocks where its noise lives, for the block bootstrap
//! ([`super::speedup_ci_blocks`]): *groups* (repetitions) of *blocks* (the ~1 s interval
//! histograms within a repetition, in time order), each kept as its recorded buckets.
//!
//! Blocks are stored sparse — (value, count) per recorded bucket, a few hundred per block — not
//! as decoded histograms: a decoded latency histogram spans 1 ns .. 1 h and takes ~270 KB, and a
//! document keeps every cell's blocks while it compares them pairwise.

use hdrhistogram::Histogram;

use anefleet_proto::histogram::{self, CodecError};
use anefleet_proto::pb;

use super::bootstrap::Level;

/// Most blocks kept per group. A repetition of a minute has ~60 one-second intervals; a longer
/// one is split into this many blocks of adjacent intervals — as many as its variance over time
/// needs, with blocks long enough to hold slow drift — so memory and bootstrap cost stay bounded
/// whatever a peer streams.
pub const MAX_GROUP_BLOCKS: usize = 64;

/// One block: the recorded buckets of a histogram, ascending by value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Block {
    /// (representative value — the bucket's highest equivalent value, as `value_at_quantile`
    /// reports it — and count) per recorded bucket, ascending by value.
    pub(super) buckets: Vec<(u64, u64)>,
}

impl Block {
    /// The recorded buckets of `h`; `None` when `h` is empty.
    pub(super) fn of(h: &Histogram<u64>) -> Option<Block> {
        let buckets: Vec<(u64, u64)> = h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect();
        (!buckets.is_empty()).then_some(Block { buckets })
    }

    /// [`Block::of`] the encoded histogram `bytes`, read without building the histogram.
    pub(super) fn of_encoded(bytes: &[u8]) -> Result<Option<Block>, CodecError> {
        let buckets = histogram::recorded(bytes)?;
        Ok((!buckets.is_empty()).then_some(Block { buckets }))
    }

    /// How many values the block holds.
    pub(super) fn count(&self) -> u64 {
        self.buckets.iter().fold(0u64, |sum, &(_, n)| sum.saturating_add(n))
    }

    /// The values of `self` and `other` together (merging adjacent blocks when there are too many).
    pub(super) fn merged(&self, other: &Block) -> Block {
        let (a, b) = (&self.buckets, &other.buckets);
        let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(a.len() + b.len()));
        while i < a.len() || j < b.len() {
            match (a.get(i), b.get(j)) {
                (Some(&(va, na)), Some(&(vb, nb))) if va == vb => {
                    out.push((va, na.saturating_add(nb)));
                    (i, j) = (i + 1, j + 1);
                }
                (Some(&x), Some(&(vb, _))) if x.0 < vb => {
                    out.push(x);
                    i += 1;
                }
                (Some(&x), None) => {
                    out.push(x);
                    i += 1;
                }
                (_, Some(&y)) => {
                    out.push(y);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        Block { buckets: out }
    }
}

/// One cell's latencies as groups of blocks: repetitions of intervals.
///
/// Build it with [`blocks_of`] from a stored cell, or by hand: [`Blocks::push_group`] once per
/// repetition with its interval histograms in time order (or with the repetition's own histogram
/// alone when it has no intervals). Several cells pooled as one (identical agents of one device
/// model) are their groups side by side: [`Blocks::extend`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Blocks {
    pub(super) groups: Vec<Vec<Block>>,
}

impl Blocks {
    /// One histogram, one block: the bootstrap can only resample its iterations.
    pub fn whole(h: &Histogram<u64>) -> Blocks {
        let mut b = Blocks::default();
        b.push_group([h]);
        b
    }

    /// One group per histogram: repetitions without their intervals.
    pub fn repetitions<'a>(reps: impl IntoIterator<Item = &'a Histogram<u64>>) -> Blocks {
        let mut b = Blocks::default();
        for h in reps {
            b.push_group([h]);
        }
        b
    }

    /// One group of these blocks: the intervals of a single repetition, in time order.
    pub fn intervals<'a>(intervals: impl IntoIterator<Item = &'a Histogram<u64>>) -> Blocks {
        let mut b = Blocks::default();
        b.push_group(intervals);
        b
    }

    /// Adds a group (a repetition) made of `blocks` (its intervals, in time order). Empty
    /// histograms are skipped, and a group without values is not added. A group of more than
    /// [`MAX_GROUP_BLOCKS`] blocks keeps that many, each the union of adjacent ones.
    pub fn push_group<'a>(&mut self, blocks: impl IntoIterator<Item = &'a Histogram<u64>>) {
        self.push_blocks(blocks.into_iter().filter_map(Block::of).collect());
    }

    /// Adds a group of blocks already in sparse form (see [`Blocks::push_group`]).
    fn push_blocks(&mut self, group: Vec<Block>) {
        let group: Vec<Block> = group.into_iter().filter(|b| b.count() > 0).collect();
        if !group.is_empty() {
            self.groups.push(coarsen(group, MAX_GROUP_BLOCKS));
        }
    }

    /// Pools `other` into `self`: its groups become more groups (e.g. the repetitions of two
    /// identical agents' cells), so the variance between the cells counts as run-to-run variance.
    pub fn extend(&mut self, other: Blocks) {
        self.groups.extend(other.groups);
    }

    /// No values at all.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// How many groups (repetitions) and blocks (intervals, all groups together) there are.
    pub fn shape(&self) -> (usize, usize) {
        (self.groups.len(), self.groups.iter().map(Vec::len).sum())
    }

    /// The level the bootstrap can resample at (see [`level_of`]).
    pub fn level(&self) -> Level {
        level_of(self.groups.len(), self.groups.first().map_or(0, Vec::len))
    }
}

/// The level a bootstrap over `groups` groups, the first of `first` blocks, resamples at:
/// [`Level::Repetitions`] with two groups or more, [`Level::Intervals`] with one group of two
/// blocks or more, else [`Level::Iterations`] (one block: its iterations are all there is).
pub(super) fn level_of(groups: usize, first: usize) -> Level {
    match (groups, first) {
        (2.., _) => Level::Repetitions,
        (1, 2..) => Level::Intervals,
        _ => Level::Iterations,
    }
}

/// All the values of `blocks` in one block.
pub(super) fn union(blocks: &[Block]) -> Block {
    blocks.iter().fold(Block::default(), |all, b| all.merged(b))
}

/// A stored cell's latencies as blocks: one group per repetition, split into the interval
/// histograms streamed during it. `Ok(None)` when the cell has no result or no latencies.
///
/// The blocks always hold exactly the values of `result.latency`, so the point estimate is the
/// `p50_ns` shown everywhere else. A finer split is used only when it holds exactly those values:
/// a repetition keeps its intervals only when together they are its histogram (intervals are
/// streamed; a lost, duplicated or undecodable one — `results::sanitize` drops those — would
/// bias it), otherwise it is one block; repetitions only when together they are
/// `result.latency`.
/// Results without repetitions (older agents) fall back to their intervals grouped by their
/// `repetition` tag, then to `result.latency` alone.
///
/// Errors: the whole latency or a repetition's histogram does not decode. An interval that does
/// not decode is not an error — its repetition's own histogram holds the same values.
pub fn blocks_of(record: &pb::CellRecord) -> Result<Option<Blocks>, CodecError> {
    let Some(result) = record.result.as_ref().filter(|r| !r.latency.is_empty()) else { return Ok(None) };
    let Some(whole) = Block::of_encoded(&result.latency)? else { return Ok(None) };
    let reps: Vec<(u32, Block)> = result
        .repetitions
        .iter()
        .map(|r| Ok((r.index, Block::of_encoded(&r.latency)?.unwrap_or_default())))
        .collect::<Result<_, CodecError>>()?;
    let rep_blocks: Vec<Block> = reps.iter().map(|(_, b)| b.clone()).collect();
    let blocks = if !reps.is_empty() && union(&rep_blocks) == whole {
        split_repetitions(reps, &record.interval_histograms)
    } else {
        split_whole(whole, &record.interval_histograms)
    };
    Ok(Some(if blocks.groups.len() < MIN_GROUPS { blocks.flattened() } else { blocks }))
}

/// Fewest repetitions whose spread the bootstrap trusts: with two, Student's t on one degree of
/// freedom per side makes any interval useless (a 2.5x slowdown read "same"), so a cell of two
/// repetitions is resampled by its intervals, all in one group.
pub const MIN_GROUPS: usize = 3;

impl Blocks {
    /// Every block in one group: the intervals are resampled, not the repetitions.
    fn flattened(self) -> Blocks {
        let all: Vec<Block> = self.groups.into_iter().flatten().collect();
        let mut out = Blocks::default();
        out.push_blocks(all);
        out
    }
}

/// Each repetition as a group of its intervals when they add up to it, else as one block.
fn split_repetitions(reps: Vec<(u32, Block)>, intervals: &[pb::IntervalHistogram]) -> Blocks {
    let mut blocks = Blocks::default();
    for (index, rep) in reps {
        match intervals_of(index, intervals).filter(|ivs| union(ivs) == rep) {
            Some(ivs) => blocks.push_blocks(ivs),
            None => blocks.push_blocks(vec![rep]),
        }
    }
    blocks
}

/// Without repetitions: the intervals grouped by repetition tag when they add up to the whole.
fn split_whole(whole: Block, intervals: &[pb::IntervalHistogram]) -> Blocks {
    let mut tags: Vec<u32> = intervals.iter().map(|iv| iv.repetition).collect();
    tags.sort_unstable();
    tags.dedup();
    let groups: Option<Vec<Vec<Block>>> = tags.iter().map(|&t| intervals_of(t, intervals)).collect();
    let mut blocks = Blocks::default();
    match groups.filter(|g| !g.is_empty() && union(&g.concat()) == whole) {
        Some(groups) => groups.into_iter().for_each(|g| blocks.push_blocks(g)),
        None => blocks.push_blocks(vec![whole]),
    }
    blocks
}

/// The intervals tagged with repetition `index`, in time order, each decoded and made sparse
/// at once (a cell may stream thousands); `None` when there are none or one does not decode.
fn intervals_of(index: u32, intervals: &[pb::IntervalHistogram]) -> Option<Vec<Block>> {
    let mut mine: Vec<&pb::IntervalHistogram> = intervals.iter().filter(|iv| iv.repetition == index).collect();
    mine.sort_by_key(|iv| iv.start_unix_ms);
    let sparse = mine.iter().map(|iv| Block::of_encoded(&iv.latency).ok().map(Option::unwrap_or_default));
    let blocks: Vec<Block> = sparse.collect::<Option<_>>()?;
    (!blocks.is_empty()).then_some(blocks)
}

/// At most `max` blocks (at least one): runs of adjacent blocks merged into one, as evenly as
/// possible. Adjacent, because blocks are in time order and the noise they carry is correlated
/// in time: a merged block is a longer stretch of time, still a valid block.
pub(super) fn coarsen(blocks: Vec<Block>, max: usize) -> Vec<Block> {
    let (n, max) = (blocks.len(), max.max(1));
    if n <= max {
        return blocks;
    }
    let mut out: Vec<Block> = Vec::with_capacity(max);
    for (i, b) in blocks.into_iter().enumerate() {
        // Block i goes to chunk floor(i * max / n): chunks of n/max blocks, in order.
        let chunk = i * max / n;
        match out.get_mut(chunk) {
            Some(last) => *last = last.merged(&b),
            None => out.push(b),
        }
    }
    out
}

//! Long-context prompts made of real typo'd sentences, never filler.
//!
//! [`typo_stream`] yields an endless, deterministic sequence of pairs: first the data set itself
//! (from a chosen start, wrapping), then fresh corruptions of its reference sentences, so a
//! prompt can be grown pair by pair until it reaches an exact token count.

use crate::dataset::Pair;
use crate::typo::TypoGenerator;

/// The instruction that precedes the text to correct in a typo-correction prompt.
pub const TYPO_INSTRUCTION: &str = "Correct the typos in the following text. Reply with the corrected text only.\n\n";

/// Mixes the user's seed so that seed 0 and small seeds still give well-spread generators.
const SEED_SALT: u64 = 0x6C6F_6E67_2D63_7478; // "long-ctx"

/// An endless stream of pairs: `pairs` from index `start` (wrapping) once as they are, then,
/// pass after pass, the same references in the same order with new typos from a
/// [`TypoGenerator`] seeded by `seed`. Empty when `pairs` is empty.
pub fn typo_stream(pairs: &[Pair], start: usize, seed: u64) -> impl Iterator<Item = Pair> + '_ {
    TypoStream {
        pairs,
        start: if pairs.is_empty() { 0 } else { start % pairs.len() },
        emitted: 0,
        generator: TypoGenerator::new(seed ^ SEED_SALT),
    }
}

/// Joins the pairs' inputs and references, each with single spaces: (input text, reference text).
pub fn join_inputs(pairs: &[Pair]) -> (String, String) {
    let input = pairs.iter().map(|p| p.input.as_str()).collect::<Vec<_>>().join(" ");
    let reference = pairs.iter().map(|p| p.reference.as_str()).collect::<Vec<_>>().join(" ");
    (input, reference)
}

/// The iterator behind [`typo_stream`].
struct TypoStream<'a> {
    pairs: &'a [Pair],
    start: usize,
    emitted: usize,
    generator: TypoGenerator,
}

impl Iterator for TypoStream<'_> {
    type Item = Pair;

    fn next(&mut self) -> Option<Pair> {
        let len = self.pairs.len();
        let pair = self.pairs.get((self.start + self.emitted) % len.max(1))?;
        let first_pass = self.emitted < len;
        self.emitted = self.emitted.wrapping_add(1);
        if first_pass {
            return Some(pair.clone());
        }
        let input = self.generator.corrupt(&pair.reference);
        Some(Pair { input, reference: pair.reference.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::builtin_typo;

    fn take(pairs: &[Pair], start: usize, seed: u64, n: usize) -> Vec<Pair> {
        typo_stream(pairs, start, seed).take(n).collect()
    }

    #[test]
    fn deterministic() {
        let pairs = builtin_typo();
        let n = pairs.len() * 3;
        assert_eq!(take(&pairs, 5, 1, n), take(&pairs, 5, 1, n));
        assert_ne!(take(&pairs, 5, 1, n), take(&pairs, 5, 2, n));
    }

    #[test]
    fn first_pass_is_the_data_set_from_start() {
        let pairs = builtin_typo();
        let got = take(&pairs, 3, 0, pairs.len());
        assert_eq!(got[0], pairs[3]);
        assert_eq!(got[pairs.len() - 3], pairs[0]);
        assert_eq!(take(&pairs, pairs.len() + 3, 0, 1)[0], pairs[3]);
    }

    #[test]
    fn second_pass_has_new_typos_for_the_same_references() {
        let pairs = builtin_typo();
        let n = pairs.len();
        let got = take(&pairs, 0, 0, 2 * n);
        let (first, second) = got.split_at(n);
        assert_ne!(first, second);
        let fresh = first.iter().zip(second).filter(|(a, b)| a.input != b.input).count();
        assert!(fresh > n * 9 / 10, "only {fresh} of {n} re-corrupted pairs differ");
        for (a, b) in first.iter().zip(second) {
            assert_eq!(a.reference, b.reference);
            assert_ne!(b.input, b.reference);
        }
    }

    #[test]
    fn empty_data_set_gives_empty_stream() {
        assert_eq!(typo_stream(&[], 4, 0).next(), None);
    }

    #[test]
    fn join_uses_single_spaces() {
        let pairs = vec![
            Pair { input: "teh cat".into(), reference: "the cat".into() },
            Pair { input: "sat dwon".into(), reference: "sat down".into() },
        ];
        let (input, reference) = join_inputs(&pairs);
        assert_eq!(input, "teh cat sat dwon");
        assert_eq!(reference, "the cat sat down");
        assert_eq!(join_inputs(&[]), (String::new(), String::new()));
    }
}

//! A deterministic typo generator: corrupts clean English text the way people mistype it.
//!
//! The pseudo-random numbers come from a self-contained SplitMix64, so a given seed yields the
//! same typos on every platform and with every version of every dependency.

/// Default probability that a letter gets a typo.
pub const DEFAULT_RATE: f64 = 0.04;

/// Default upper bound on typos per call to [`TypoGenerator::corrupt`].
pub const DEFAULT_MAX_TYPOS: usize = 4;

/// Texts with at least this many letters always get at least one typo.
const MIN_LETTERS_FOR_TYPO: usize = 3;

/// Seeded generator of realistic typos: QWERTY-neighbour substitutions, transpositions of
/// neighbouring letters, dropped letters and doubled letters.
///
/// Only ASCII letters are changed (case is kept per position); digits, punctuation, whitespace
/// and other characters are never touched, added or removed.
#[derive(Debug, Clone)]
pub struct TypoGenerator {
    rng: SplitMix64,
    rate: f64,
    max_typos: usize,
}

/// The kinds of typo the generator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Substitute,
    Transpose,
    Drop,
    Double,
}

impl TypoGenerator {
    /// A generator with the given seed, [`DEFAULT_RATE`] and [`DEFAULT_MAX_TYPOS`].
    pub fn new(seed: u64) -> Self {
        Self { rng: SplitMix64(seed), rate: DEFAULT_RATE, max_typos: DEFAULT_MAX_TYPOS }
    }

    /// Sets the probability per letter of a typo (clamped to 0..=1).
    pub fn with_rate(mut self, rate: f64) -> Self {
        self.rate = if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
        self
    }

    /// Sets the most typos one call to [`corrupt`](Self::corrupt) makes (at least 1).
    pub fn with_max_typos(mut self, max: usize) -> Self {
        self.max_typos = max.max(1);
        self
    }

    /// Returns `clean` with typos. A text with at least 3 letters always comes back changed.
    pub fn corrupt(&mut self, clean: &str) -> String {
        let chars: Vec<char> = clean.chars().collect();
        let out = self.corrupt_chars(&chars);
        let letters = chars.iter().filter(|c| c.is_ascii_alphabetic()).count();
        if out != chars || letters < MIN_LETTERS_FOR_TYPO {
            return out.into_iter().collect();
        }
        self.force_substitution(&chars).into_iter().collect()
    }

    /// One pass over the text, making a typo at each letter with probability `rate`.
    fn corrupt_chars(&mut self, chars: &[char]) -> Vec<char> {
        let mut out = Vec::with_capacity(chars.len() + 4);
        let mut typos = 0;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let roll = c.is_ascii_alphabetic() && typos < self.max_typos && self.rng.chance(self.rate);
            if !roll {
                out.push(c);
                i += 1;
                continue;
            }
            i += self.apply(chars, i, &mut out);
            typos += 1;
        }
        out
    }

    /// Applies one random kind of typo at letter `i`, pushing the result onto `out`.
    /// Returns how many input chars were consumed.
    /// A drop never deletes a whole word: it needs a letter before or after it.
    fn apply(&mut self, chars: &[char], i: usize, out: &mut Vec<char>) -> usize {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match self.pick_kind() {
            Kind::Transpose if can_transpose(c, next) => {
                let n = next.unwrap_or(c);
                out.push(with_case_of(n, c));
                out.push(with_case_of(c, n));
                2
            }
            Kind::Drop if next.is_some_and(|n| n.is_ascii_alphabetic()) => {
                out.push(next.unwrap_or(c));
                2
            }
            Kind::Drop if out.last().is_some_and(|p| p.is_ascii_alphabetic()) => 1,
            Kind::Double => {
                out.push(c);
                out.push(c);
                1
            }
            _ => {
                out.push(self.neighbour(c));
                1
            }
        }
    }

    /// Substitutes one randomly chosen letter: used when the random pass changed nothing.
    fn force_substitution(&mut self, chars: &[char]) -> Vec<char> {
        let letters: Vec<usize> = (0..chars.len()).filter(|&i| chars[i].is_ascii_alphabetic()).collect();
        let mut out = chars.to_vec();
        if letters.is_empty() {
            return out;
        }
        let at = letters[self.rng.below(letters.len())];
        out[at] = self.neighbour(chars[at]);
        out
    }

    fn pick_kind(&mut self) -> Kind {
        match self.rng.below(100) {
            0..=39 => Kind::Substitute,
            40..=64 => Kind::Transpose,
            65..=84 => Kind::Drop,
            _ => Kind::Double,
        }
    }

    /// A QWERTY neighbour of the letter `c`, in the same case.
    fn neighbour(&mut self, c: char) -> char {
        let keys = qwerty_neighbours(c.to_ascii_lowercase()).as_bytes();
        if keys.is_empty() {
            return c;
        }
        let n = char::from(keys[self.rng.below(keys.len())]);
        with_case_of(n, c)
    }
}

/// Two neighbouring, different letters can be swapped.
fn can_transpose(c: char, next: Option<char>) -> bool {
    next.is_some_and(|n| n.is_ascii_alphabetic() && !n.eq_ignore_ascii_case(&c))
}

/// `letter` in the case of `model`.
fn with_case_of(letter: char, model: char) -> char {
    if model.is_ascii_uppercase() { letter.to_ascii_uppercase() } else { letter.to_ascii_lowercase() }
}

/// The keys next to a lowercase letter on a QWERTY keyboard.
fn qwerty_neighbours(c: char) -> &'static str {
    match c {
        'q' => "wa",
        'w' => "qeas",
        'e' => "wrsd",
        'r' => "etdf",
        't' => "ryfg",
        'y' => "tugh",
        'u' => "yihj",
        'i' => "uojk",
        'o' => "ipkl",
        'p' => "ol",
        'a' => "qwsz",
        's' => "adwexz",
        'd' => "sferxc",
        'f' => "dgrtcv",
        'g' => "fhtyvb",
        'h' => "gjyubn",
        'j' => "hkuinm",
        'k' => "jliom",
        'l' => "kop",
        'z' => "asx",
        'x' => "zcsd",
        'c' => "xvdf",
        'v' => "cbfg",
        'b' => "vngh",
        'n' => "bmhj",
        'm' => "njk",
        _ => "",
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fully specified.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in 0..n (n > 0); the modulo bias is negligible for the small n used here.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "The build server restarts at 3:15 every night, so don't queue long jobs then.";

    fn non_letters(s: &str) -> String {
        s.chars().filter(|c| !c.is_ascii_alphabetic()).collect()
    }

    #[test]
    fn same_seed_same_output() {
        let a: Vec<String> = (0..20).map(|_| TypoGenerator::new(7).corrupt(TEXT)).collect();
        assert!(a.iter().all(|s| s == &a[0]));
        let mut g1 = TypoGenerator::new(42);
        let mut g2 = TypoGenerator::new(42);
        for _ in 0..50 {
            assert_eq!(g1.corrupt(TEXT), g2.corrupt(TEXT));
        }
    }

    #[test]
    fn different_seeds_differ() {
        let outs: std::collections::HashSet<String> = (0..20).map(|s| TypoGenerator::new(s).corrupt(TEXT)).collect();
        assert!(outs.len() > 10, "only {} distinct outputs", outs.len());
    }

    #[test]
    fn only_letters_change() {
        let mut g = TypoGenerator::new(3).with_rate(0.3).with_max_typos(100);
        for _ in 0..200 {
            let out = g.corrupt(TEXT);
            assert_eq!(non_letters(&out), non_letters(TEXT), "{out}");
        }
    }

    #[test]
    fn words_are_never_deleted() {
        let mut g = TypoGenerator::new(4).with_rate(1.0).with_max_typos(100);
        for _ in 0..200 {
            let out = g.corrupt("a b ab to I go.");
            let words: Vec<&str> = out.split(' ').collect();
            assert_eq!(words.len(), 6, "{out}");
            assert!(words.iter().all(|w| w.chars().any(|c| c.is_ascii_alphabetic())), "{out}");
        }
    }

    #[test]
    fn always_at_least_one_change() {
        let mut g = TypoGenerator::new(9).with_rate(0.0);
        for text in ["abc", "Hi there.", "ok 123 yes", TEXT] {
            assert_ne!(g.corrupt(text), text);
        }
        assert_eq!(g.corrupt("a 1 b"), "a 1 b");
        assert_eq!(g.corrupt(""), "");
    }

    #[test]
    fn case_is_preserved_per_position() {
        let mut g = TypoGenerator::new(11).with_rate(1.0).with_max_typos(1000);
        let out = g.corrupt("ABCDEFGHIJ KLMNOP");
        assert!(out.chars().all(|c| !c.is_ascii_lowercase()), "{out}");
    }

    #[test]
    fn rate_bounds_and_cap() {
        let g = TypoGenerator::new(5).with_rate(f64::NAN);
        assert_eq!(g.rate, 0.0);
        let mut g = TypoGenerator::new(5).with_rate(1.0).with_max_typos(2);
        let out = g.corrupt("abcdefghijklmnopqrstuvwxyz");
        let len_diff = out.len().abs_diff(26);
        assert!(len_diff <= 2, "{out}");
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 1234567 from the reference C implementation.
        let mut r = SplitMix64(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }
}

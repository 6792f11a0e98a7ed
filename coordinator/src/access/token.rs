//! Credential tokens: `anefleet_<id>_<secret>`, the id to find the credential, the secret (256
//! random bits) to prove it. Only the secret's SHA-256 is kept; comparisons take constant time.

use sha2::{Digest, Sha256};

const PREFIX: &str = "anefleet_";

/// A token split into its parts.
pub struct Token {
    pub id: String,
    pub secret: String,
}

impl Token {
    pub fn generate() -> Token {
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        rand::fill(&mut id);
        rand::fill(&mut secret);
        Token { id: hex::encode(id), secret: hex::encode(secret) }
    }

    /// `None` unless the text has the shape of a credential token.
    pub fn parse(text: &str) -> Option<Token> {
        let (id, secret) = text.strip_prefix(PREFIX)?.split_once('_')?;
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex(id, 16) && hex(secret, 64)).then(|| Token { id: id.to_ascii_lowercase(), secret: secret.to_string() })
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}_{}", self.id, self.secret)
    }
}

pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Equal hashes, compared in constant time.
pub fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The id of a recording: 1 to 64 characters of `[A-Za-z0-9_-]`, safe in a path, an
/// object key and a URL without escaping.
///
/// Generated ids are 26 characters of lowercase Crockford base32 (128 random bits), so
/// they cannot be guessed.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RecordingId(String);

impl RecordingId {
    /// A new random id.
    pub fn generate() -> Self {
        Self(random_base32())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn validate(s: &str) -> Result<(), Error> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "recording id",
                "1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'",
            ))
        }
    }
}

/// 128 random bits as 26 lowercase Crockford base32 characters.
pub(crate) fn random_base32() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    let mut n = u128::from_be_bytes(bytes);
    let mut out = [0u8; 26];
    for c in out.iter_mut().rev() {
        *c = ALPHABET[(n & 31) as usize];
        n >>= 5;
    }
    String::from_utf8(out.to_vec()).expect("alphabet is ASCII")
}

impl FromStr for RecordingId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::validate(s)?;
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for RecordingId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::validate(&s)?;
        Ok(Self(s))
    }
}

impl From<RecordingId> for String {
    fn from(id: RecordingId) -> String {
        id.0
    }
}

impl fmt::Display for RecordingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RecordingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordingId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = RecordingId::generate();
        let b = RecordingId::generate();
        assert_eq!(a.as_str().len(), 26);
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<RecordingId>().unwrap(), a);
    }

    #[test]
    fn path_tricks_are_refused() {
        for bad in ["", "../etc", "a/b", "a b", &"x".repeat(65)] {
            assert!(bad.parse::<RecordingId>().is_err(), "{bad:?} accepted");
        }
    }
}

use std::ops::Range;

/// One `Range: bytes=…` request of RFC 9110 §14.1.2 against a file of known size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// Serve the whole file with 200: no range asked, several ranges (which the RFC lets
    /// a server answer whole), or a header that is not a byte range we understand.
    Whole,
    /// Serve these bytes with 206.
    Part(Range<u64>),
    /// Answer 416 with `Content-Range: bytes */<size>`: the range starts past the end.
    Unsatisfiable,
}

impl ByteRange {
    /// Parses the value of a `Range` header for a file of `size` bytes. Never panics.
    pub fn parse(header: &[u8], size: u64) -> Self {
        let Some(spec) = std::str::from_utf8(header)
            .ok()
            .and_then(|h| h.trim().strip_prefix("bytes="))
        else {
            return Self::Whole;
        };
        if spec.contains(',') {
            return Self::Whole;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return Self::Whole;
        };
        let (first, last) = (first.trim(), last.trim());
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let range = if first.is_empty() {
            if !digits(last) {
                return Self::Whole;
            }
            let suffix = last.parse::<u64>().unwrap_or(u64::MAX);
            if suffix == 0 {
                return Self::Unsatisfiable;
            }
            size.saturating_sub(suffix)..size
        } else {
            if !digits(first) {
                return Self::Whole;
            }
            let Ok(start) = first.parse::<u64>() else {
                return Self::Unsatisfiable;
            };
            let end = if last.is_empty() {
                size
            } else {
                if !digits(last) {
                    return Self::Whole;
                }
                let last = last.parse::<u64>().unwrap_or(u64::MAX);
                if last < start {
                    return Self::Whole;
                }
                last.saturating_add(1).min(size)
            };
            start..end
        };
        if range.start >= size {
            Self::Unsatisfiable
        } else {
            Self::Part(range)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ByteRange::{self, *};

    #[test]
    fn ranges_follow_rfc_9110() {
        let p = |h: &str| ByteRange::parse(h.as_bytes(), 1000);
        assert_eq!(p("bytes=0-99"), Part(0..100));
        assert_eq!(p("bytes=900-"), Part(900..1000));
        assert_eq!(p("bytes=-100"), Part(900..1000));
        assert_eq!(p("bytes=-5000"), Part(0..1000));
        assert_eq!(p("bytes=990-2000"), Part(990..1000));
        assert_eq!(p("bytes=0-99999999999999999999999"), Part(0..1000));
        assert_eq!(p("bytes=1000-"), Unsatisfiable);
        assert_eq!(p("bytes=99999999999999999999999-"), Unsatisfiable);
        assert_eq!(p("bytes=-0"), Unsatisfiable);
        assert_eq!(p("bytes=0-1,5-6"), Whole);
        assert_eq!(p("items=0-1"), Whole);
        assert_eq!(p("bytes=5-1"), Whole);
        assert_eq!(p("bytes=+5-9"), Whole);
        assert_eq!(p("bytes=-"), Whole);
        assert_eq!(ByteRange::parse(b"bytes=0-", 0), Unsatisfiable);
        assert_eq!(ByteRange::parse(&[0xff, 0xfe], 10), Whole);
    }
}

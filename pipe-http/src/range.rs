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
        // RFC 9110's optional whitespace is spaces and tabs, nothing else.
        let ows = |s: &'_ str| s.trim_matches([' ', '\t']).to_owned();
        let Some(spec) = std::str::from_utf8(header)
            .ok()
            .and_then(|h| ows(h).strip_prefix("bytes=").map(str::to_owned))
        else {
            return Self::Whole;
        };
        if spec.contains(',') {
            return Self::Whole;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return Self::Whole;
        };
        let (first, last) = (ows(first), ows(last));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        // Numbers past u64 are still numbers: they only saturate.
        let number = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
        let range = if first.is_empty() {
            if !digits(&last) {
                return Self::Whole;
            }
            let suffix = number(&last);
            if suffix == 0 {
                return Self::Unsatisfiable;
            }
            size.saturating_sub(suffix)..size
        } else {
            if !digits(&first) || !(last.is_empty() || digits(&last)) {
                return Self::Whole;
            }
            // last-pos below first-pos makes the range invalid, hence ignored (compared
            // as decimal strings, so that numbers past u64 compare right too).
            if !last.is_empty() && decimal_less(&last, &first) {
                return Self::Whole;
            }
            let start = number(&first);
            let end = if last.is_empty() {
                size
            } else {
                number(&last).saturating_add(1).min(size)
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

/// Whether the decimal `a` is below the decimal `b` (both all digits).
fn decimal_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    (a.len(), a) < (b.len(), b)
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
        // Found by the fuzzer: an invalid last-pos makes the range ignored, whatever
        // the first-pos.
        assert_eq!(p("bytes=99999999999999999999999-5"), Whole);
        assert_eq!(p("bytes=99999999999999999999999-x"), Whole);
        assert_eq!(p("bytes=0099-100"), Part(99..101));
        assert_eq!(p(" bytes=1-2\t"), Part(1..3));
        assert_eq!(p("bytes=1000-\n"), Whole);
        assert_eq!(p("bytes=\u{a0}1000-"), Whole);
        assert_eq!(ByteRange::parse(b"bytes=0-", 0), Unsatisfiable);
        assert_eq!(ByteRange::parse(&[0xff, 0xfe], 10), Whole);
    }
}

//! `Range` header parsing (pipe-http's `ByteRange`) on arbitrary bytes and file sizes: it
//! never panics and is deterministic; a part lies inside the file and reads back the same
//! when written out again; a 416 only ever answers a well-formed single `bytes=` range;
//! and a well-formed single range gets exactly the answer RFC 9110 §14.1.2 gives it.
//!
//! Input: the first 8 bytes are the file size (little-endian u64), the rest the header
//! value. Run: `cargo fuzz run http_range` (from the repository root).
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use pipe_http::ByteRange::{self, Part, Unsatisfiable, Whole};

fuzz_target!(|data: &[u8]| {
    let Some((size, header)) = data.split_first_chunk::<8>() else { return };
    let size = u64::from_le_bytes(*size);

    let parsed = ByteRange::parse(header, size);
    assert_eq!(ByteRange::parse(header, size), parsed, "deterministic");

    match &parsed {
        Part(r) => {
            assert!(
                r.start < r.end && r.end <= size,
                "{r:?} outside a file of {size}"
            );
            // Written out again, in each form that names it: the same part.
            let again = |text: String| ByteRange::parse(text.as_bytes(), size);
            assert_eq!(again(format!("bytes={}-{}", r.start, r.end - 1)), parsed);
            if r.end == size {
                assert_eq!(again(format!("bytes={}-", r.start)), parsed);
                assert_eq!(again(format!("bytes=-{}", size - r.start)), parsed);
            }
        }
        Unsatisfiable => assert!(
            single_range(header).is_some(),
            "416 for a header that is not a single byte range"
        ),
        Whole => {}
    }

    // A well-formed single range: exactly what the RFC says, computed independently.
    if let Some(spec) = single_range(header) {
        assert_eq!(
            parsed,
            expected(&spec, size),
            "{spec:?} in a file of {size}"
        );
    }
});

/// One range-spec of RFC 9110 §14.1.1, its numbers as their digits (any length).
#[derive(Debug)]
enum Spec<'a> {
    /// `first-pos "-" [ last-pos ]`, with last-pos ≥ first-pos when present.
    Int(&'a str, Option<&'a str>),
    /// `"-" suffix-length`.
    Suffix(&'a str),
}

/// The header as `bytes=<one range-spec>`, or `None` if it is anything else. Tolerates
/// optional whitespace (space and tab, RFC 9110's OWS) around the value and around each
/// number; a comma anywhere makes a list, which is `Whole`'s business, not this one's.
fn single_range(header: &[u8]) -> Option<Spec<'_>> {
    let text = std::str::from_utf8(header).ok()?;
    let spec = ows(text).strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (ows(first), ows(last));
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match (first.is_empty(), last.is_empty()) {
        (true, _) => number(last).then_some(Spec::Suffix(last)),
        (false, true) => number(first).then_some(Spec::Int(first, None)),
        (false, false) => {
            (number(first) && number(last) && compare(first, last) != Ordering::Greater)
                .then_some(Spec::Int(first, Some(last)))
        }
    }
}

fn ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Digit strings compared as the (unbounded) numbers they write.
fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// RFC 9110 §14.1.2 for one range: a suffix of zero or a start at or past the end is
/// unsatisfiable; otherwise the part, clipped to the file.
fn expected(spec: &Spec<'_>, size: u64) -> ByteRange {
    // Past u64::MAX means past the end of any file.
    let value = |s: &str| s.parse::<u64>().ok();
    match *spec {
        Spec::Suffix(n) => match value(n) {
            Some(0) => Unsatisfiable,
            _ if size == 0 => Unsatisfiable,
            Some(n) => Part(size.saturating_sub(n)..size),
            None => Part(0..size),
        },
        Spec::Int(first, last) => match value(first) {
            Some(first) if first < size => {
                let end = match last.map(value) {
                    Some(Some(last)) if last < size => last + 1,
                    _ => size,
                };
                Part(first..end)
            }
            _ => Unsatisfiable,
        },
    }
}

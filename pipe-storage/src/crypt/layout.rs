//! Sizes and offsets of the stream layout: plaintext length ↔ ciphertext length, and the
//! ciphertext bytes a plaintext range needs. Pure arithmetic, no keys.
//!
//! An object of `n` plaintext bytes has `n / S + 1` segments: `n / S` full ones and a final
//! one of `n % S` bytes (0 to S − 1; an empty object is one empty final segment). Each
//! segment is its plaintext plus a 16-byte tag.

use std::ops::Range;

use pipe_core::{Error, Result};

use super::cipher::TAG_LEN;
use super::header::Header;
use super::segment::{MAX_COUNTER, SegmentCipher};

const TAG: u64 = TAG_LEN as u64;

/// The geometry of a stream-layout object: header length and segment size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLayout {
    header_len: u64,
    segment_size: u64,
}

/// The ciphertext bytes to fetch for a plaintext range, and how to cut the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRange {
    /// The index of the first segment fetched.
    pub first_segment: u64,
    /// Whether the last segment fetched is the object's final segment.
    pub includes_final: bool,
    /// The ciphertext byte range to fetch (e.g. an HTTP `Range`), segment-aligned.
    pub ciphertext: Range<u64>,
    /// The wanted bytes within the decrypted segments.
    pub within: Range<usize>,
}

impl StreamLayout {
    /// The layout of objects with this header.
    pub fn of(header: &Header) -> Self {
        Self::new(header.len() as u64, header.segment_size())
    }

    /// A layout from its two numbers.
    pub fn new(header_len: u64, segment_size: u32) -> Self {
        Self {
            header_len,
            segment_size: segment_size.max(1).into(),
        }
    }

    /// The number of segments of a plaintext of `plaintext_len` bytes.
    pub fn segment_count(&self, plaintext_len: u64) -> u64 {
        plaintext_len / self.segment_size + 1
    }

    /// The length of the encrypted object. [`Error::Invalid`] if it would need more
    /// segments than the 32-bit counter allows.
    pub fn ciphertext_len(&self, plaintext_len: u64) -> Result<u64> {
        let segments = self.segment_count(plaintext_len);
        if segments - 1 > MAX_COUNTER {
            return Err(Error::invalid(
                "plaintext length",
                format!("{plaintext_len} bytes need more than 2^32 segments"),
            ));
        }
        Ok(self.header_len + segments * TAG + plaintext_len)
    }

    /// The plaintext length of an encrypted object of `ciphertext_len` bytes.
    /// [`Error::Integrity`] if no plaintext encrypts to that length.
    pub fn plaintext_len(&self, ciphertext_len: u64) -> Result<u64> {
        let body = ciphertext_len
            .checked_sub(self.header_len)
            .ok_or_else(|| truncated("shorter than its header"))?;
        let full = body / (self.segment_size + TAG);
        let rest = body % (self.segment_size + TAG);
        if rest < TAG {
            return Err(truncated("does not end with a final segment"));
        }
        if full > MAX_COUNTER {
            return Err(truncated("more segments than the counter allows"));
        }
        Ok(full * self.segment_size + rest - TAG)
    }

    /// Where segment `index` starts in the object.
    pub fn segment_offset(&self, index: u64) -> u64 {
        self.header_len + index * (self.segment_size + TAG)
    }

    /// The segments to fetch to read `range` of a plaintext of `plaintext_len` bytes. An
    /// empty range still names one segment (reading it proves the object's length).
    /// [`Error::Invalid`] if the range is reversed or past the end.
    pub fn segments_for(&self, range: Range<u64>, plaintext_len: u64) -> Result<SegmentRange> {
        if range.start > range.end || range.end > plaintext_len {
            return Err(Error::invalid(
                "range",
                format!(
                    "{}..{} of a {plaintext_len}-byte object",
                    range.start, range.end
                ),
            ));
        }
        let last_segment = self.segment_count(plaintext_len) - 1;
        let first = (range.start / self.segment_size).min(last_segment);
        // The segment holding the last wanted byte (or the first segment for an empty range).
        let end_segment = if range.end > range.start {
            (range.end - 1) / self.segment_size
        } else {
            first
        };
        let ciphertext_end = if end_segment == last_segment {
            self.ciphertext_len(plaintext_len)?
        } else {
            self.segment_offset(end_segment + 1)
        };
        let skip = range.start - first * self.segment_size;
        Ok(SegmentRange {
            first_segment: first,
            includes_final: end_segment == last_segment,
            ciphertext: self.segment_offset(first)..ciphertext_end,
            within: skip as usize..(skip + range.end - range.start) as usize,
        })
    }
}

impl SegmentRange {
    /// Decrypts the fetched `ciphertext` (exactly [`Self::ciphertext`]) and returns the
    /// wanted plaintext bytes. [`Error::Integrity`] if any segment fails to open.
    pub fn decrypt(&self, cipher: &SegmentCipher, ciphertext: &[u8]) -> Result<Vec<u8>> {
        let expected = self.ciphertext.end - self.ciphertext.start;
        if ciphertext.len() as u64 != expected {
            return Err(truncated("fetched range has the wrong length"));
        }
        let mut plain =
            decrypt_segments(cipher, self.first_segment, self.includes_final, ciphertext)?;
        plain.truncate(self.within.end);
        plain.drain(..self.within.start);
        Ok(plain)
    }
}

/// Decrypts consecutive segments that start at segment `first_segment`: every segment but
/// the last in `ciphertext` is a full one; the last is the object's final segment if
/// `ends_with_final`, otherwise full too. Returns their plaintext, nothing if any fails.
pub fn decrypt_segments(
    cipher: &SegmentCipher,
    first_segment: u64,
    ends_with_final: bool,
    ciphertext: &[u8],
) -> Result<Vec<u8>> {
    let sealed = cipher.segment_size() + TAG_LEN;
    let mut buf = ciphertext.to_vec();
    let mut plain_len = 0;
    let mut offset = 0;
    let mut counter = first_segment;
    loop {
        let rest = buf.len() - offset;
        let is_final = ends_with_final && rest < sealed;
        if is_final && rest < TAG_LEN {
            return Err(truncated("final segment missing or cut short"));
        }
        if !is_final && rest == 0 && counter > first_segment {
            break;
        }
        if !is_final && rest < sealed {
            return Err(truncated("segment cut short"));
        }
        let take = if is_final { rest } else { sealed };
        cipher.open(counter, is_final, &mut buf[offset..offset + take])?;
        let n = take - TAG_LEN;
        buf.copy_within(offset..offset + n, plain_len);
        plain_len += n;
        offset += take;
        counter += 1;
        if is_final {
            break;
        }
    }
    buf.truncate(plain_len);
    Ok(buf)
}

fn truncated(detail: &str) -> Error {
    Error::Integrity {
        detail: format!("encrypted object: {detail}"),
    }
}

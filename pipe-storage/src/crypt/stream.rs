//! Streaming encryption and decryption of stream-layout objects: push chunks of any size,
//! get the bytes out as soon as whole segments are ready.

use std::fmt;
use std::sync::Arc;

use pipe_core::{Error, KeyProvider, Result};

use super::cipher::{CipherBackend, TAG_LEN};
use super::header::{DataKey, FIXED_LEN, Header, Layout};
use super::segment::{MAX_COUNTER, SegmentCipher};

/// Encrypts one object front to back. The concatenation of everything
/// [`push`](Self::push) and [`finish`](Self::finish) return is the encrypted object,
/// header first.
pub struct StreamEncryptor {
    cipher: SegmentCipher,
    /// The header bytes, until the first output carries them.
    header: Option<Vec<u8>>,
    /// Plaintext of the segment being filled: always shorter than a segment.
    pending: Vec<u8>,
    counter: u64,
}

impl StreamEncryptor {
    /// An encryptor for the object `header` describes, under its `data_key`.
    /// [`Error::Invalid`] if the header is not of the stream layout.
    pub fn new(backend: &dyn CipherBackend, header: &Header, data_key: &DataKey) -> Result<Self> {
        if header.layout() != Layout::Stream {
            return Err(Error::invalid("header", "not of the stream layout"));
        }
        let cipher = SegmentCipher::new(backend, header, data_key);
        Ok(Self {
            pending: Vec::with_capacity(cipher.segment_size()),
            cipher,
            header: Some(header.to_bytes()),
            counter: 0,
        })
    }

    /// Encrypts `plaintext` and returns the ciphertext of every segment it completes
    /// (possibly nothing). [`Error::Invalid`] once the object would need more segments
    /// than the 32-bit counter allows.
    pub fn push(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.push_into(plaintext, &mut out)?;
        Ok(out)
    }

    /// Like [`push`](Self::push), appending to `out` (so one buffer can be reused).
    pub fn push_into(&mut self, mut plaintext: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let size = self.cipher.segment_size();
        if let Some(header) = self.header.take() {
            out.extend_from_slice(&header);
        }
        let whole = (self.pending.len() + plaintext.len()) / size;
        out.reserve(whole * (size + TAG_LEN));
        if !self.pending.is_empty() {
            let take = plaintext.len().min(size - self.pending.len());
            self.pending.extend_from_slice(&plaintext[..take]);
            plaintext = &plaintext[take..];
            if self.pending.len() < size {
                return Ok(());
            }
            let segment = std::mem::take(&mut self.pending);
            self.seal_full(out, &segment)?;
            self.pending = segment;
            self.pending.clear();
        }
        let mut chunks = plaintext.chunks_exact(size);
        for segment in &mut chunks {
            self.seal_full(out, segment)?;
        }
        self.pending.extend_from_slice(chunks.remainder());
        Ok(())
    }

    /// Seals the final segment (what is pending, possibly nothing) and returns the last
    /// bytes of the object.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        let mut out = self.header.take().unwrap_or_default();
        let start = out.len();
        out.extend_from_slice(&self.pending);
        let tag = self.cipher.seal(self.counter, true, &mut out[start..])?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn seal_full(&mut self, out: &mut Vec<u8>, plaintext: &[u8]) -> Result<()> {
        // The final segment needs a counter of its own after this one.
        if self.counter >= MAX_COUNTER {
            return Err(Error::invalid(
                "plaintext length",
                "the object needs more than 2^32 segments",
            ));
        }
        let start = out.len();
        out.resize(start + plaintext.len() + TAG_LEN, 0);
        self.cipher
            .seal_to(self.counter, false, plaintext, &mut out[start..])?;
        self.counter += 1;
        Ok(())
    }
}

impl fmt::Debug for StreamEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamEncryptor")
            .field("segments_sealed", &self.counter)
            .finish_non_exhaustive()
    }
}

/// Decrypts one stream-layout object front to back.
///
/// [`push`](Self::push) returns the plaintext of each segment as soon as it is
/// authenticated; only [`finish`](Self::finish) proves the object was not cut short, so a
/// caller must not treat the data as complete before `finish` returns `Ok`.
pub struct StreamDecryptor {
    provider: Arc<dyn KeyProvider>,
    backend: Arc<dyn CipherBackend>,
    state: State,
    /// Bytes received and not yet consumed: the header, or a segment in the making.
    buf: Vec<u8>,
}

enum State {
    Header,
    Segments {
        header: Box<Header>,
        cipher: SegmentCipher,
        counter: u64,
    },
    Failed,
}

impl StreamDecryptor {
    /// A decryptor that unwraps the object's data key with `provider`.
    pub fn new(provider: Arc<dyn KeyProvider>, backend: Arc<dyn CipherBackend>) -> Self {
        Self {
            provider,
            backend,
            state: State::Header,
            buf: Vec::new(),
        }
    }

    /// The object's header, once it has arrived.
    pub fn header(&self) -> Option<&Header> {
        match &self.state {
            State::Segments { header, .. } => Some(header),
            _ => None,
        }
    }

    /// Takes the next `ciphertext` bytes and returns the plaintext of every segment they
    /// complete. [`Error::Integrity`] (and every later call too) if a segment or the header
    /// fails; [`Error::NotFound`] if the provider lacks the object's key.
    pub fn push(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.push_into(ciphertext, &mut out)?;
        Ok(out)
    }

    /// Like [`push`](Self::push), appending to `out` (so one buffer can be reused). On
    /// error `out` is left as it was.
    pub fn push_into(&mut self, ciphertext: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let result = self.consume(ciphertext, out);
        if result.is_err() {
            out.truncate(start);
            self.fail();
        }
        result
    }

    /// Checks that the object ended with its final segment and returns that segment's
    /// plaintext. [`Error::Integrity`] if the object was cut short or had bytes after its
    /// final segment.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        let State::Segments {
            cipher, counter, ..
        } = &self.state
        else {
            return Err(Error::Integrity {
                detail: match self.state {
                    State::Failed => "encrypted object: decryption failed earlier",
                    _ => "encrypted object: cut short in its header",
                }
                .into(),
            });
        };
        // Every full segment was opened as it arrived, so what is left is the final one.
        if self.buf.len() < TAG_LEN {
            return Err(Error::Integrity {
                detail: "encrypted object: cut short (no final segment)".into(),
            });
        }
        cipher.open(*counter, true, &mut self.buf)?;
        self.buf.truncate(self.buf.len() - TAG_LEN);
        Ok(std::mem::take(&mut self.buf))
    }

    fn consume(&mut self, mut ciphertext: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if let State::Header = self.state
            && !self.read_header(&mut ciphertext)?
        {
            return Ok(());
        }
        let State::Segments {
            cipher, counter, ..
        } = &mut self.state
        else {
            return Err(Error::Integrity {
                detail: "encrypted object: decryption failed earlier".into(),
            });
        };
        // A full-length segment is never the final one: the final one is shorter.
        let sealed = cipher.segment_size() + TAG_LEN;
        if !self.buf.is_empty() {
            let take = ciphertext.len().min(sealed - self.buf.len());
            self.buf.extend_from_slice(&ciphertext[..take]);
            ciphertext = &ciphertext[take..];
            if self.buf.len() < sealed {
                return Ok(());
            }
            open_into(cipher, counter, &self.buf, out)?;
            self.buf.clear();
        }
        let mut segments = ciphertext.chunks_exact(sealed);
        for segment in &mut segments {
            open_into(cipher, counter, segment, out)?;
        }
        self.buf.extend_from_slice(segments.remainder());
        Ok(())
    }

    /// Takes header bytes from `ciphertext`; once the header is whole, opens the data key
    /// and returns `true` with `ciphertext` advanced past the header.
    fn read_header(&mut self, ciphertext: &mut &[u8]) -> Result<bool> {
        let needed = if self.buf.len() + ciphertext.len() < FIXED_LEN {
            None
        } else {
            let mut fixed = self.buf.clone();
            fixed.extend_from_slice(&ciphertext[..FIXED_LEN.saturating_sub(self.buf.len())]);
            Some(Header::peek_len(&fixed)?)
        };
        let Some(len) = needed.filter(|&len| self.buf.len() + ciphertext.len() >= len) else {
            self.buf.extend_from_slice(ciphertext);
            *ciphertext = &[];
            return Ok(false);
        };
        let (head, rest) = ciphertext.split_at(len - self.buf.len().min(len));
        self.buf.extend_from_slice(head);
        *ciphertext = rest;
        let header = Header::parse(&self.buf)?;
        if header.layout() != Layout::Stream {
            return Err(Error::Integrity {
                detail: "encrypted object: not of the stream layout".into(),
            });
        }
        let key = header.open(self.provider.as_ref())?;
        let cipher = SegmentCipher::new(self.backend.as_ref(), &header, &key);
        self.buf.clear();
        self.state = State::Segments {
            header: Box::new(header),
            cipher,
            counter: 0,
        };
        Ok(true)
    }

    fn fail(&mut self) {
        self.state = State::Failed;
        self.buf = Vec::new();
    }
}

/// Opens one full (non-final) segment onto the end of `out`.
fn open_into(
    cipher: &SegmentCipher,
    counter: &mut u64,
    segment: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    let start = out.len();
    out.resize(start + segment.len() - TAG_LEN, 0);
    cipher.open_to(*counter, false, segment, &mut out[start..])?;
    *counter += 1;
    Ok(())
}

impl fmt::Debug for StreamDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamDecryptor")
            .field("header", &self.header())
            .finish_non_exhaustive()
    }
}

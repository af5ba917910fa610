//! [`EncryptedSink`]: a layer that encrypts every object on its way into any
//! [`StorageSink`] and decrypts it on the way out, with random access for ranges.

use std::io;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use pipe_core::{
    Error, GetOptions, GetResult, ObjectKey, ObjectMeta, PutBody, PutOptions, PutReceipt, Result,
    SinkKind, SinkLocation, StorageSink, UrlOptions,
};

use crate::crypt::{
    Crypt, DEFAULT_HEADER_LEN, FIXED_LEN, Header, Layout, StreamEncryptor, StreamLayout,
};

/// Segments decrypted per read from the sink under: 16 × 64 KiB keeps a ranged read's
/// memory at about 1 MiB however large the range.
const WINDOW_SEGMENTS: u64 = 16;

/// Encrypts every object put through it (the stream layout of `ENCRYPTION.md`: a header
/// with the object's wrapped data key, then AES-256-GCM segments) and decrypts on `get`,
/// fetching only the segments a range needs.
///
/// With [recording keys](Crypt::with_recording_keys), an object put with
/// [`PutOptions::for_recording`] has its data key wrapped under that recording's key, so
/// erasing the recording shreds it, and every copy of it, without touching it.
///
/// To the caller it is the sink under it with plaintext in and out: sizes, ranges and
/// the receipt's SHA-256 are those of the plaintext, so it passes the `StorageSink`
/// conformance suite like any sink. The sink under it only ever sees ciphertext.
///
/// ```
/// use std::sync::Arc;
/// use pipe_core::{GetOptions, ObjectKey, PutBody, PutOptions, SinkKind, StorageSink};
/// use pipe_storage::crypt::{Crypt, LocalKeyProvider};
/// use pipe_storage::{EncryptedSink, ObjectStoreSink};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> pipe_core::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// let keys = LocalKeyProvider::open_or_create(dir.path().join("keys"))?;
/// let disk = ObjectStoreSink::local(dir.path().join("objects"), SinkKind::Local)?;
/// let sink = EncryptedSink::new(Arc::new(disk), Crypt::new(Arc::new(keys)));
///
/// let key = ObjectKey::new("r/r.txt")?;
/// sink.put(&key, PutBody::from_bytes("secret words"), PutOptions::default()).await?;
/// let range = sink.get(&key, GetOptions::default().with_range(7..12)).await?;
/// assert_eq!(range.bytes().await?, "words");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct EncryptedSink {
    inner: Arc<dyn StorageSink>,
    crypt: Crypt,
}

impl EncryptedSink {
    /// Encrypts what goes into `inner` with `crypt`'s keys and cipher.
    pub fn new(inner: Arc<dyn StorageSink>, crypt: Crypt) -> Self {
        Self { inner, crypt }
    }

    /// The sink under this layer (which holds ciphertext).
    pub fn inner(&self) -> &Arc<dyn StorageSink> {
        &self.inner
    }

    /// Re-wraps the data key of the object at `key` under the provider's current key,
    /// leaving every segment as it is: after a key rotation, this lets the old key go.
    pub async fn rewrap(&self, key: &ObjectKey) -> Result<()> {
        self.replace_header(key, |crypt, header| header.rewrap(crypt.provider()))
            .await
    }

    /// Destroys the wrapped data key of the object at `key`: from then on no key opens it,
    /// wherever its bytes were copied. Idempotent.
    pub async fn shred(&self, key: &ObjectKey) -> Result<()> {
        self.replace_header(key, |_, header| Ok(header.shredded()))
            .await
    }

    /// Writes the object again with a new header of the same length in front of the same
    /// segments (sinks cannot rewrite a part of an object in place). It reads the object
    /// while it puts it: safe because a put replaces an object whole or not at all (the
    /// `StorageSink` contract), so the old bytes stay readable until the new are complete.
    async fn replace_header(
        &self,
        key: &ObjectKey,
        change: impl FnOnce(&Crypt, &Header) -> Result<Header> + Send + 'static,
    ) -> Result<()> {
        let (header, meta) = self.header(key).await?;
        let old = header.clone();
        let bytes = with_keys(&self.crypt, move |crypt| change(crypt, &old))
            .await?
            .to_bytes();
        if bytes.len() != header.len() {
            return Err(Error::invalid(
                "header",
                "the new header does not have the old one's length",
            ));
        }
        let segments = self
            .inner
            .get(
                key,
                GetOptions::default().with_range(header.len() as u64..meta.size),
            )
            .await?
            .stream;
        let body = stream::once(async move { Ok(Bytes::from(bytes)) }).chain(segments);
        let mut options = PutOptions::default();
        options.content_type = meta.content_type;
        self.inner
            .put(key, PutBody::new(meta.size, body.boxed()), options)
            .await?;
        Ok(())
    }

    /// The object's header and the metadata of its ciphertext.
    async fn header(&self, key: &ObjectKey) -> Result<(Header, ObjectMeta)> {
        let meta = self.inner.head(key).await?;
        if meta.size < FIXED_LEN as u64 {
            return Err(Error::Integrity {
                detail: format!("{key} is shorter than an encryption header"),
            });
        }
        let read = |end: u64| {
            self.inner
                .get(key, GetOptions::default().with_range(0..end.min(meta.size)))
        };
        let mut prefix = read(u64::from(DEFAULT_HEADER_LEN)).await?.bytes().await?;
        let len = Header::peek_len(&prefix)?;
        if prefix.len() < len {
            prefix = read(len as u64).await?.bytes().await?;
        }
        Ok((Header::parse(&prefix)?, meta))
    }
}

#[async_trait]
impl StorageSink for EncryptedSink {
    fn kind(&self) -> SinkKind {
        self.inner.kind()
    }

    fn location(&self) -> SinkLocation {
        self.inner.location()
    }

    fn capabilities(&self) -> pipe_core::SinkCapabilities {
        self.inner.capabilities()
    }

    async fn put(&self, key: &ObjectKey, body: PutBody, options: PutOptions) -> Result<PutReceipt> {
        // An object of a recording has its data key wrapped under the recording's key.
        let crypt = match &options.recording {
            Some(recording) => self.crypt.for_recording(recording).await?,
            None => self.crypt.clone(),
        };
        let (header, data_key) =
            with_keys(&crypt, |crypt| crypt.new_header(Layout::Stream)).await?;
        let size = StreamLayout::of(&header).ciphertext_len(body.size)?;
        let encryptor = StreamEncryptor::new(self.crypt.backend().as_ref(), &header, &data_key)?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let ciphertext = encrypt(body.stream, encryptor, Arc::clone(&seen));
        self.inner
            .put(key, PutBody::new(size, ciphertext), options)
            .await?;
        let seen = std::mem::take(&mut *seen.lock().expect("digest lock"));
        if seen.len != body.size {
            return Err(Error::Integrity {
                detail: format!("{key}: declared {} bytes, got {}", body.size, seen.len),
            });
        }
        Ok(PutReceipt::new(
            seen.len,
            hex::encode(seen.sha256.finalize()),
        ))
    }

    async fn get(&self, key: &ObjectKey, options: GetOptions) -> Result<GetResult> {
        let (header, meta) = self.header(key).await?;
        let layout = StreamLayout::of(&header);
        let plaintext_len = layout.plaintext_len(meta.size)?;
        let range = options.range.unwrap_or(0..plaintext_len);
        if range.start > range.end || (range.start >= plaintext_len && plaintext_len > 0) {
            return Err(Error::invalid(
                "range",
                format!("{}..{} of {plaintext_len} bytes", range.start, range.end),
            ));
        }
        let range = range.start..range.end.min(plaintext_len);
        let opened = header.clone();
        let cipher =
            Arc::new(with_keys(&self.crypt, move |crypt| crypt.segment_cipher(&opened)).await?);
        let window = u64::from(header.segment_size()) * WINDOW_SEGMENTS;
        let (inner, key_owned) = (Arc::clone(&self.inner), key.clone());
        let plaintext = stream::try_unfold(range.start, move |at| {
            let (inner, key, cipher) = (Arc::clone(&inner), key_owned.clone(), Arc::clone(&cipher));
            async move {
                if at >= range.end {
                    return Ok(None);
                }
                let end = range.end.min((at / window + 1) * window);
                let segments = layout.segments_for(at..end, plaintext_len)?;
                let ciphertext = inner
                    .get(
                        &key,
                        GetOptions::default().with_range(segments.ciphertext.clone()),
                    )
                    .await?
                    .bytes()
                    .await?;
                let plain = segments.decrypt(&cipher, &ciphertext)?;
                Ok::<_, Error>(Some((Bytes::from(plain), end)))
            }
        })
        .map_err(io::Error::other);
        let meta = ObjectMeta::new(key.clone(), plaintext_len, meta.content_type);
        Ok(GetResult::new(meta, range, plaintext.boxed()))
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        let (header, meta) = self.header(key).await?;
        let size = StreamLayout::of(&header).plaintext_len(meta.size)?;
        Ok(ObjectMeta::new(key.clone(), size, meta.content_type))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.inner.delete(key).await
    }

    async fn url(&self, key: &ObjectKey, options: UrlOptions) -> Result<Option<String>> {
        // A link straight to the sink under would serve ciphertext.
        let _ = (key, options);
        Ok(None)
    }
}

/// The plaintext that went through a put: its length and SHA-256.
#[derive(Default)]
struct Seen {
    len: u64,
    sha256: Sha256,
}

/// The ciphertext of `plaintext`, header first, final segment last.
fn encrypt(
    plaintext: BoxStream<'static, io::Result<Bytes>>,
    encryptor: StreamEncryptor,
    seen: Arc<Mutex<Seen>>,
) -> BoxStream<'static, io::Result<Bytes>> {
    stream::try_unfold(
        (plaintext, Some(encryptor)),
        move |(mut plaintext, encryptor)| {
            let seen = Arc::clone(&seen);
            async move {
                let Some(mut encryptor) = encryptor else {
                    return Ok(None);
                };
                loop {
                    match plaintext.try_next().await? {
                        Some(chunk) => {
                            {
                                let mut seen = seen.lock().expect("digest lock");
                                seen.len += chunk.len() as u64;
                                seen.sha256.update(&chunk);
                            }
                            let out = encryptor.push(&chunk).map_err(io::Error::other)?;
                            if !out.is_empty() {
                                return Ok(Some((Bytes::from(out), (plaintext, Some(encryptor)))));
                            }
                        }
                        None => {
                            let out = encryptor.finish().map_err(io::Error::other)?;
                            return Ok(Some((Bytes::from(out), (plaintext, None))));
                        }
                    }
                }
            }
        },
    )
    .boxed()
}

/// Runs `op`, which calls the key provider, on tokio's blocking pool: a provider may wait
/// on a remote KMS, and that wait must not stall the async executor's threads.
async fn with_keys<T: Send + 'static>(
    crypt: &Crypt,
    op: impl FnOnce(&Crypt) -> Result<T> + Send + 'static,
) -> Result<T> {
    let crypt = crypt.clone();
    tokio::task::spawn_blocking(move || op(&crypt))
        .await
        .map_err(|e| Error::temporary("key provider", e.to_string()))?
}

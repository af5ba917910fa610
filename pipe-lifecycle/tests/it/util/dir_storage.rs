//! Spool and sink stand-ins on a plain directory, for as long as pipe-storage's
//! `LocalSpool` and `ObjectStoreSink` are being written. They keep the parts of the
//! contracts the pipeline relies on (durable appends, whole-or-nothing puts, verified
//! size and SHA-256) and nothing more.

use std::io::SeekFrom;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::{self};
use pipe_core::{
    Error, GetOptions, GetResult, ObjectKey, ObjectMeta, PutBody, PutOptions, PutReceipt,
    RecordingId, Result, SinkKind, Spool, SpoolEntry, StorageSink,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Stand-in spool: one file per recording in a directory, fsync'd on append.
#[derive(Debug)]
pub struct DirSpool {
    dir: PathBuf,
}

impl DirSpool {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn path(&self, id: &RecordingId) -> PathBuf {
        self.dir.join(format!("{id}.bin"))
    }

    fn seal_marker(&self, id: &RecordingId) -> PathBuf {
        self.dir.join(format!("{id}.sealed"))
    }
}

#[async_trait]
impl Spool for DirSpool {
    async fn create(&self, id: &RecordingId) -> Result<SpoolEntry> {
        tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(id))
            .await?;
        self.stat(id).await
    }

    async fn append(&self, id: &RecordingId, offset: u64, data: Bytes) -> Result<u64> {
        let entry = self.stat(id).await?;
        if offset > entry.len {
            return Err(Error::precondition(format!(
                "gap: offset {offset} past {}",
                entry.len
            )));
        }
        let skip = (entry.len - offset) as usize;
        if skip >= data.len() {
            return Ok(entry.len);
        }
        if entry.sealed {
            return Err(Error::precondition("sealed"));
        }
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(self.path(id))
            .await?;
        file.write_all(&data[skip..]).await?;
        file.sync_data().await?;
        Ok(entry.len + (data.len() - skip) as u64)
    }

    async fn stat(&self, id: &RecordingId) -> Result<SpoolEntry> {
        let meta = tokio::fs::metadata(self.path(id))
            .await
            .map_err(|_| Error::not_found(format!("spool entry {id}")))?;
        let sealed = tokio::fs::try_exists(self.seal_marker(id)).await?;
        Ok(SpoolEntry::new(id.clone(), meta.len(), sealed))
    }

    async fn read_at(&self, id: &RecordingId, offset: u64, len: usize) -> Result<Bytes> {
        let mut file = tokio::fs::File::open(self.path(id))
            .await
            .map_err(|_| Error::not_found(format!("spool entry {id}")))?;
        file.seek(SeekFrom::Start(offset)).await?;
        let mut buf = Vec::with_capacity(len);
        (&mut file).take(len as u64).read_to_end(&mut buf).await?;
        Ok(buf.into())
    }

    async fn seal(&self, id: &RecordingId) -> Result<SpoolEntry> {
        self.stat(id).await?;
        tokio::fs::write(self.seal_marker(id), b"").await?;
        self.stat(id).await
    }

    async fn list(&self) -> Result<Vec<SpoolEntry>> {
        let mut out = Vec::new();
        let mut dir = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = dir.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".bin") {
                out.push(self.stat(&id.parse()?).await?);
            }
        }
        Ok(out)
    }

    async fn delete(&self, id: &RecordingId) -> Result<()> {
        for path in [self.path(id), self.seal_marker(id)] {
            match tokio::fs::remove_file(path).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Stand-in sink: objects are files under a directory; a put lands in a temporary file
/// that is renamed into place once its size is verified.
#[derive(Debug)]
pub struct DirSink {
    dir: PathBuf,
    kind: SinkKind,
}

impl DirSink {
    pub fn new(dir: impl Into<PathBuf>, kind: SinkKind) -> Self {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir, kind }
    }

    pub fn path(&self, key: &ObjectKey) -> PathBuf {
        self.dir.join(key.as_str())
    }
}

#[async_trait]
impl StorageSink for DirSink {
    fn kind(&self) -> SinkKind {
        self.kind
    }

    async fn put(
        &self,
        key: &ObjectKey,
        body: PutBody,
        _options: PutOptions,
    ) -> Result<PutReceipt> {
        let path = self.path(key);
        tokio::fs::create_dir_all(path.parent().unwrap()).await?;
        let tmp = path.with_extension("part");
        let mut file = tokio::fs::File::create(&tmp).await?;
        let (mut size, mut hasher) = (0u64, Sha256::new());
        let mut stream = body.stream;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        if size != body.size {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(Error::Integrity {
                detail: format!("{size} bytes, announced {}", body.size),
            });
        }
        file.sync_all().await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(PutReceipt::new(size, hex::encode(hasher.finalize())))
    }

    async fn get(&self, key: &ObjectKey, options: GetOptions) -> Result<GetResult> {
        let bytes = Bytes::from(tokio::fs::read(self.path(key)).await?);
        let meta = ObjectMeta::new(key.clone(), bytes.len() as u64, None);
        let range = options.range.unwrap_or(0..bytes.len() as u64);
        let slice = bytes.slice(range.start as usize..(range.end as usize).min(bytes.len()));
        Ok(GetResult::new(
            meta,
            range,
            stream::once(async move { Ok(slice) }).boxed(),
        ))
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        let meta = tokio::fs::metadata(self.path(key)).await?;
        Ok(ObjectMeta::new(key.clone(), meta.len(), None))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        match tokio::fs::remove_file(self.path(key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn url(
        &self,
        key: &ObjectKey,
        _options: pipe_core::UrlOptions,
    ) -> Result<Option<String>> {
        Ok(Some(format!("file://{}", self.path(key).display())))
    }
}

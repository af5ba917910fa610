//! Streaming the bytes of artifacts: from the work directory and from the spool.

use std::io;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use pipe_core::{Error, RecordingId, Result, Spool};

/// Bytes read at a time: large enough for throughput, small enough to stay off the heap's
/// radar with several workers.
const CHUNK: usize = 256 * 1024;

/// The bytes of a file, in chunks.
pub(super) async fn file_stream(path: &Path) -> Result<BoxStream<'static, io::Result<Bytes>>> {
    let file = tokio::fs::File::open(path).await?;
    Ok(stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; CHUNK];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), file)))
    })
    .boxed())
}

/// The first `size` bytes of a spool entry, in chunks; an error if the entry is shorter.
pub(super) fn spool_stream(
    spool: Arc<dyn Spool>,
    id: RecordingId,
    size: u64,
) -> BoxStream<'static, io::Result<Bytes>> {
    stream::try_unfold(0u64, move |offset| {
        let (spool, id) = (Arc::clone(&spool), id.clone());
        async move {
            if offset >= size {
                return Ok(None);
            }
            let want = usize::try_from(size - offset)
                .unwrap_or(usize::MAX)
                .min(CHUNK);
            let bytes = spool
                .read_at(&id, offset, want)
                .await
                .map_err(io::Error::other)?;
            if bytes.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("spool entry {id} ends at {offset}, expected {size} bytes"),
                ));
            }
            let next = offset + bytes.len() as u64;
            Ok(Some((bytes, next)))
        }
    })
    .boxed()
}

/// Size and lowercase hex SHA-256 of a stream.
pub(super) async fn digest(
    mut stream: BoxStream<'static, io::Result<Bytes>>,
) -> Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.try_next().await? {
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Size and SHA-256 of a whole spool entry.
pub(super) async fn digest_spool(
    spool: &Arc<dyn Spool>,
    id: &RecordingId,
) -> Result<(u64, String)> {
    let len = spool.stat(id).await?.len;
    digest(spool_stream(Arc::clone(spool), id.clone(), len)).await
}

/// Removes a directory and everything in it; `Ok` if it is not there.
pub(super) async fn remove_dir(path: &Path) -> Result<()> {
    match tokio::fs::remove_dir_all(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn digests_a_file_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(CHUNK * 2 + 17)).map(|i| (i % 251) as u8).collect();
        tokio::fs::write(&path, &data).await.unwrap();
        let (size, sha) = digest(file_stream(&path).await.unwrap()).await.unwrap();
        assert_eq!(size, data.len() as u64);
        assert_eq!(sha, hex::encode(Sha256::digest(&data)));
    }

    #[tokio::test]
    async fn removing_a_missing_dir_is_ok() {
        let dir = tempfile::tempdir().unwrap();
        remove_dir(&dir.path().join("nope")).await.unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        remove_dir(&dir.path().join("a")).await.unwrap();
        assert!(!dir.path().join("a").exists());
    }
}

//! Put bodies from local files.

use std::path::Path;

use futures::StreamExt;
use pipe_core::{Error, ObjectKey, PutBody, PutOptions, PutReceipt, Result, StorageSink};
use tokio_util::io::ReaderStream;

/// Read size when streaming a file.
const CHUNK: usize = 256 * 1024;

/// A [`PutBody`] that streams the file at `path`, sized by the file's length when opened.
///
/// A file that changes length while it is streamed makes the put fail with
/// [`Error::Integrity`] rather than store something else.
///
/// ```no_run
/// # async fn example() -> pipe_core::Result<()> {
/// let body = pipe_storage::file_body("/tmp/clip.mp4").await?;
/// println!("{} bytes to send", body.size);
/// # Ok(())
/// # }
/// ```
pub async fn file_body(path: impl AsRef<Path>) -> Result<PutBody> {
    let path = path.as_ref();
    let file_error = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => Error::not_found(format_args!("file {}", path.display())),
        kind if Error::is_permanent_io(kind) => {
            Error::permanent("file", format!("{}: {e}", path.display()))
        }
        _ => Error::temporary("file", format!("{}: {e}", path.display())),
    };
    let file = tokio::fs::File::open(path).await.map_err(file_error)?;
    let size = file.metadata().await.map_err(file_error)?.len();
    Ok(PutBody::new(
        size,
        ReaderStream::with_capacity(file, CHUNK).boxed(),
    ))
}

/// Stores the file at `path` under `key` in `sink`, streaming it.
///
/// ```no_run
/// # async fn example(sink: &dyn pipe_core::StorageSink) -> pipe_core::Result<()> {
/// use pipe_core::{ObjectKey, PutOptions};
///
/// let key = ObjectKey::new("abc/abc.mp4")?;
/// let options = PutOptions::default().with_content_type("video/mp4");
/// let receipt = pipe_storage::put_file(sink, &key, "/tmp/abc.mp4".as_ref(), options).await?;
/// println!("stored {} bytes, sha256 {}", receipt.size, receipt.sha256);
/// # Ok(())
/// # }
/// ```
pub async fn put_file(
    sink: &dyn StorageSink,
    key: &ObjectKey,
    path: &Path,
    options: PutOptions,
) -> Result<PutReceipt> {
    sink.put(key, file_body(path).await?, options).await
}

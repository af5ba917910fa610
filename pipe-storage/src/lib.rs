//! # pipe-storage
//!
//! Pipe's bytes at rest: where a recording's bytes live while they arrive, and the places
//! its finished files are copied to.
//!
//! | type | implements | what it is |
//! |---|---|---|
//! | [`LocalSpool`] | [`Spool`](pipe_core::Spool) | one append-only file per recording in progress, every append `fdatasync`'d before it is acknowledged |
//! | [`ObjectStoreSink`] | [`StorageSink`](pipe_core::StorageSink) | any [`object_store::ObjectStore`]: the local file system today; S3, GCS and Azure are one `object_store` feature away |
//!
//! [`put_file`] and [`file_body`] stream a local file into any sink. Both types pass the
//! conformance suites of their traits in `pipe_core::conformance` (see `tests/it/`).
//!
//! ## Example
//!
//! A recording arrives in chunks; a re-sent chunk is harmless; once sealed, its bytes are
//! copied to a sink.
//!
//! ```
//! use bytes::Bytes;
//! use pipe_core::{ObjectKey, PutOptions, RecordingId, SinkKind, Spool, StorageSink};
//! use pipe_storage::{LocalSpool, ObjectStoreSink};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> pipe_core::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! let spool = LocalSpool::open(dir.path().join("spool")).await?;
//! let id = RecordingId::generate();
//! spool.create(&id).await?;
//! assert_eq!(spool.append(&id, 0, Bytes::from_static(b"webm ")).await?, 5);
//! // The connection dropped before the ack arrived; the client re-sends from 0.
//! assert_eq!(spool.append(&id, 0, Bytes::from_static(b"webm bytes")).await?, 10);
//! let entry = spool.seal(&id).await?;
//!
//! let sink = ObjectStoreSink::local(dir.path().join("objects"), SinkKind::Local)?;
//! let key = ObjectKey::for_artifact(&id, pipe_core::ArtifactKind::Original, None);
//! let bytes = spool.read_at(&id, 0, entry.len as usize).await?;
//! let receipt = sink.put(&key, pipe_core::PutBody::from_bytes(bytes), PutOptions::default()).await?;
//! assert_eq!(receipt.size, 10);
//! spool.delete(&id).await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Features
//!
//! - `sink-local` (default): [`ObjectStoreSink::local`], the sink on a local directory.
//!
//! ## Not yet
//!
//! - **Encryption at rest** (AES-256-GCM STREAM segments, see issue 3): the spool and the
//!   sinks store plaintext today; it is to come as a layer around both.
//! - **Other sinks**: S3 (and GCS, Azure) through `object_store`'s features, SFTP, FTPS
//!   and Dropbox. [`ObjectStoreSink::new`] already takes any `ObjectStore`.
//! - A retry layer: errors say whether they are retryable
//!   ([`pipe_core::Error::is_retryable`]), nothing here retries on its own.
//! - One process per spool directory: appends from two processes to the same directory
//!   are not coordinated.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod io;
mod sink;
mod spool;

pub use body::{file_body, put_file};
pub use sink::{ObjectStoreSink, ObjectStoreSinkConfig};
pub use spool::LocalSpool;

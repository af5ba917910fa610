//! # pipe-storage
//!
//! Pipe's bytes at rest: where a recording's bytes live while they arrive, and the places
//! its finished files are copied to.
//!
//! | type | implements | what it is |
//! |---|---|---|
//! | [`LocalSpool`] | [`Spool`](pipe_core::Spool) | one append-only file per recording in progress, every append `fdatasync`'d before it is acknowledged; encrypted with [`LocalSpool::open_encrypted`] |
//! | [`ObjectSpool`] | [`Spool`](pipe_core::Spool) | recordings in progress in an object store every node shares (one object per append), so a client resumes on any node; encrypted with [`ObjectSpool::encrypted`] |
//! | [`ObjectStoreSink`] | [`StorageSink`](pipe_core::StorageSink) | any [`object_store::ObjectStore`]: the local file system, S3 and the services that speak its API (`sink-s3`) |
//! | [`EncryptedSink`] | [`StorageSink`](pipe_core::StorageSink) | a layer over any sink: ciphertext in the sink, plaintext (and cheap ranges) to the caller |
//!
//! [`put_file`] and [`file_body`] stream a local file into any sink. All three types pass
//! the conformance suites of their traits in `pipe_core::conformance` (see `tests/it/`),
//! the encrypting ones included.
//!
//! [`crypt`] is encryption at rest: AES-256-GCM in fixed segments with STREAM nonces, a
//! random data key per object wrapped by a key-encryption key ([`LocalKeyProvider`], or
//! any [`pipe_core::KeyProvider`]), rotation, re-wrapping and shredding. With
//! [`Crypt::with_recording_keys`], each recording's objects are under a key of its own,
//! kept in the catalog ([`pipe_core::RecordingKeyStore`]), so erasing the recording
//! shreds every copy of them; [`escrow`] keeps those keys apart from backups, where an
//! erasure reaches them. The format is specified in `ENCRYPTION.md` beside this crate's
//! manifest.
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
//! - `sink-s3`: `ObjectStoreSink::s3` and `S3Config`, a bucket of S3 or of a service
//!   that speaks its API (custom endpoint, path style, folder, canned ACL, storage class,
//!   server-side encryption, `x-amz-checksum-sha256` checked by the service).
//! - `sink-sftp`: `SftpSink` and `SftpConfig`, a folder on an SFTP server (russh and
//!   russh-sftp; password or key, host key pinned by fingerprint, temporary name and
//!   rename).
//! - `sink-azure`: `ObjectStoreSink::azure` and `AzureConfig`, a container of Azure Blob
//!   Storage (or of an emulator, `endpoint`).
//! - `sink-ftps`: `FtpsSink` and `FtpsConfig`, a folder on an FTP server over explicit TLS
//!   (suppaftp with rustls; certificate checked against the system's roots or a CA of the
//!   operator's, passive mode, temporary name and rename, write-only drop folders).
//! - `sink-dropbox`: `DropboxSink`, `DropboxConfig` and `DropboxAuth`, a folder of a
//!   Dropbox account through its HTTP API v2 (reqwest; refresh-token flow, upload
//!   sessions for large files, `content_hash` verified; retries nothing itself but one
//!   call after a token refresh, and hands `429`s up as `RateLimited`).
//! - `sink-gcs`: `GcsSink`, `GcsConfig` and `GcsAuth`, a bucket (and folder) of Google
//!   Cloud Storage through its JSON API (reqwest; a service account's key, an access token
//!   or none; resumable uploads for large bodies, CRC32C and MD5 checked by GCS and
//!   compared after the commit). Not object_store's `gcp`, which uploads through the XML
//!   API that no GCS emulator installable for the tests speaks.
//! - `test-servers`: `testing::S3TestServer`, `testing::SftpTestServer`,
//!   `testing::FtpsTestServer`, `testing::AzureTestServer` and `testing::GcsTestServer`,
//!   real servers (`s3s-fs`, OpenSSH's `sshd`, vsftpd, Azurite, fake-gcs-server) on
//!   loopback for tests, and
//!   `testing::DropboxStandIn`, a stand-in for Dropbox's API (the service itself cannot be
//!   reached from a test).
//! - `cipher-aws-lc` (default): AES-256-GCM from aws-lc-rs, the fastest here (the same
//!   library rustls uses for TLS in the server, so the tree carries one).
//! - `cipher-rustcrypto`: AES-256-GCM from the pure-Rust `aes-gcm` crate, for targets
//!   where AWS-LC does not build. One of the two is required.
//!
//! [`backup`] seals a server's state (its catalog's snapshot, secrets and keys) into one
//! file encrypted under a passphrase (Argon2id, then the format of [`crypt`]), and opens
//! it again.
//!
//! ## Not yet
//!
//! - **Other sinks**: [`ObjectStoreSink::new`] already takes any `ObjectStore`.
//! - A retry layer of our own: errors say whether they are retryable
//!   ([`pipe_core::Error::is_retryable`]) and the caller retries (the pipeline's jobs). The
//!   S3 and Azure sinks retry each HTTP request up to 3 times within 30 s (object_store's
//!   retries, bounded so that a longer outage frees the copy job's worker); the local,
//!   SFTP, FTPS, Dropbox, GCS and encrypting sinks retry nothing themselves.
//! - One process per spool directory: appends from two processes to the same directory
//!   are not coordinated.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "cipher-aws-lc", feature = "cipher-rustcrypto")))]
compile_error!(
    "pipe-storage encrypts at rest and needs an AES-256-GCM backend: \
     enable the feature `cipher-aws-lc` (default) or `cipher-rustcrypto`"
);

pub mod backup;
mod body;
pub mod crypt;
#[cfg(any(
    feature = "sink-local",
    feature = "sink-s3",
    feature = "sink-sftp",
    feature = "sink-ftps",
    feature = "sink-azure",
    feature = "sink-dropbox",
    feature = "sink-gcs"
))]
mod directory;
pub mod escrow;
mod io;
mod sink;
mod spool;

#[cfg(feature = "test-servers")]
pub mod testing;
pub use body::{file_body, put_file};
#[cfg(feature = "sink-azure")]
pub use sink::AzureConfig;
#[cfg(feature = "sink-dropbox")]
pub use sink::{DropboxAuth, DropboxConfig, DropboxSink};
pub use sink::{EncryptedSink, ObjectStoreSink, ObjectStoreSinkConfig};
#[cfg(feature = "sink-ftps")]
pub use sink::{FtpsConfig, FtpsSink};
#[cfg(feature = "sink-gcs")]
pub use sink::{GcsAuth, GcsConfig, GcsSink};
#[cfg(feature = "sink-s3")]
pub use sink::{S3Config, S3Credentials, S3Encryption};
#[cfg(feature = "sink-sftp")]
pub use sink::{SftpAuth, SftpConfig, SftpSink};
pub use spool::{LocalSpool, ObjectSpool};
#[cfg(any(
    feature = "sink-local",
    feature = "sink-s3",
    feature = "sink-sftp",
    feature = "sink-ftps",
    feature = "sink-azure",
    feature = "sink-dropbox",
    feature = "sink-gcs"
))]
pub use {directory::EnvironmentSinks, sink::url as sink_url};

pub use crypt::{
    AppendReader, AppendWriter, Crypt, Keyring, LocalKeyProvider, StreamDecryptor, StreamEncryptor,
};

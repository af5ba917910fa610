//! # pipe-core
//!
//! The vocabulary and the contracts of Pipe, a self-hostable platform for recordings made
//! in the browser. Every other `pipe-*` crate speaks these types and implements these
//! traits; only the reference server wires concrete implementations together.
//!
//! | trait | what it is | implementations |
//! |---|---|---|
//! | [`Spool`] | append-only, fsync'd bytes of recordings still arriving | `pipe-storage` (local disk) |
//! | [`StorageSink`] | a place finished files are copied to | `pipe-storage` (object_store; later S3, SFTP, FTPS, Dropbox, …) |
//! | [`Catalog`] | recordings, their states and artifacts, and durable jobs | `pipe-lifecycle` (SQLite; later PostgreSQL) |
//! | [`EnvironmentStore`] | environments (an operator's sites or stages) and their versioned settings | `pipe-lifecycle` (SQLite) |
//! | [`ApiKeyStore`] | API keys with roles, stored by hash | `pipe-lifecycle` (SQLite) |
//! | [`Transcoder`] | probe, MP4, snapshot | `pipe-transcode` (in-process FFmpeg) |
//! | [`Signer`] | webhook signature headers | `pipe-webhook` (Standard Webhooks and Pipe's HMAC-SHA1) |
//! | [`Notifier`] | delivers one event to the operator's endpoints | `pipe-webhook` |
//!
//! Each trait documents what an implementation must guarantee in a `# Contract` section,
//! and (with the `conformance` feature) [`conformance`] has the async test functions every
//! implementation's tests call against the real backend.
//!
//! This crate deliberately has no runtime, no HTTP stack, no FFmpeg and no cloud SDK: its
//! dependency tree is a promise to everyone who implements a trait.
//!
//! ```
//! use pipe_core::{RecordingId, ObjectKey, ArtifactKind};
//!
//! let id = RecordingId::generate();
//! let key = ObjectKey::for_artifact(&id, ArtifactKind::Mp4, None);
//! assert!(key.as_str().ends_with(".mp4"));
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod access;
mod artifact;
mod audit;
mod catalog;
mod delivery;
mod directory;
mod endpoint;
mod environment;
mod error;
mod event;
mod hosts;
mod id;
mod job;
mod keys;
mod media;
mod notify;
mod recording;
mod sink;
mod source;
mod spool;
mod time;
mod transcode;

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;

pub use access::{ApiKey, ApiKeyId, ApiKeyStore, Role};
pub use artifact::{Artifact, ArtifactKind, Copy, KeyLayout, ObjectKey, SinkId, SinkKind};
pub use audit::{
    AuditEntry, AuditFilter, AuditLog, AuditRecord, ChainBreak, ChainCheck, GENESIS, verify_chain,
    verify_log,
};
pub use catalog::{
    Catalog, Change, ClaimOptions, JobFilter, JobStats, ListOptions, RecordingCursor,
};
pub use delivery::{Attempted, DeliveryAttempt, DeliveryFilter};
pub use directory::{NamedSink, SinkDirectory, SinkSet, StaticSinks};
pub use endpoint::{EndpointStore, PreviousSecret, StoredEndpoint, UrlGuard};
pub use environment::{
    Environment, EnvironmentId, EnvironmentSettings, EnvironmentStore, EnvironmentUpdate,
    NewEnvironment, PersonalDataSettings, SinkSettings,
};
pub use error::{Error, Result};
pub use event::{Envelope, Event, EventId, EventLinks, EventName, PipeEvent};
pub use hosts::{HostAllowList, HostListError};
pub use id::RecordingId;
pub use job::{Job, JobId, JobKind, JobLease, JobRecord, JobStatus, NewJob};
pub use keys::{KeyId, KeyProvider, RecordingKeyStore};
pub use media::MediaInfo;
pub use notify::{BodyEncoding, EventFilter, Notifier, OutgoingWebhook, Signer, WireFormat};
pub use recording::{
    DeletionReason, NewRecording, PersonalData, Recording, RecordingSource, RecordingState,
    Tombstone,
};
pub use sink::{
    GetOptions, GetResult, ObjectMeta, PutBody, PutOptions, PutReceipt, SinkCapabilities,
    SinkLocation, StorageSink, UrlOptions,
};
pub use source::{MediaSource, SpoolSource};
pub use spool::{Spool, SpoolEntry};
pub use time::Timestamp;
pub use transcode::{TranscodeOptions, TranscodeOutput, TranscodeRequest, Transcoder};

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, RecordingId};

/// The kinds of file a recording becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    /// The bytes as the recorder sent them (WebM, MP4, …).
    Original,
    /// The web-playable MP4 (H.264 + AAC, moov before mdat).
    Mp4,
    /// A JPEG still from the recording.
    Snapshot,
}

impl ArtifactKind {
    /// Every kind, in the order they are copied.
    pub const ALL: [Self; 3] = [Self::Mp4, Self::Snapshot, Self::Original];

    /// The kind's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Mp4 => "mp4",
            Self::Snapshot => "snapshot",
        }
    }

    /// Parses a name from [`ArtifactKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The `Content-Type` of this kind (the original's comes from the recorder).
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Original => "application/octet-stream",
            Self::Mp4 => "video/mp4",
            Self::Snapshot => "image/jpeg",
        }
    }
}

/// A key in a [`crate::StorageSink`]: `/`-separated segments of `[A-Za-z0-9._-]`, none
/// of them `.` or `..`, at most 1024 bytes. Safe as an S3 key, a relative path and a URL
/// path without escaping.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Validates `key`.
    pub fn new(key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        let ok = !key.is_empty()
            && key.len() <= 1024
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        if ok {
            Ok(Self(key))
        } else {
            Err(Error::invalid(
                "object key",
                format!("{key:?} is not `/`-separated segments of [A-Za-z0-9._-]"),
            ))
        }
    }

    /// The deterministic key of an artifact: `<id>/<id>.mp4`, `<id>/<id>.jpg`,
    /// `<id>/<id>_raw.<ext>`. `original_ext` is the original's extension (`webm` when
    /// not given). Deterministic keys make every copy idempotent: a retry overwrites.
    pub fn for_artifact(id: &RecordingId, kind: ArtifactKind, original_ext: Option<&str>) -> Self {
        let name = match kind {
            ArtifactKind::Mp4 => format!("{id}.mp4"),
            ArtifactKind::Snapshot => format!("{id}.jpg"),
            ArtifactKind::Original => format!("{id}_raw.{}", original_ext.unwrap_or("webm")),
        };
        Self(format!("{id}/{name}"))
    }

    /// Where a backup destination escrows the key of recording `id`
    /// (`recording-keys/<id>`; see [`crate::RecordingKeyStore`]): one object per
    /// recording, so an erasure deletes it alone.
    pub fn for_recording_key(id: &RecordingId) -> Self {
        Self(format!("recording-keys/{id}"))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl From<ObjectKey> for String {
    fn from(k: ObjectKey) -> String {
        k.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({})", self.0)
    }
}

/// What kind of place a sink is; decides the name of its `video_copied_…` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SinkKind {
    /// The server's own storage, served back through its signed URLs.
    PipeStorage,
    /// An S3-compatible bucket of the operator's.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
    /// A directory on a disk of the operator's.
    Local,
    /// An SFTP server.
    Sftp,
    /// An FTP server with TLS (FTPS).
    Ftp,
    /// Dropbox.
    Dropbox,
}

impl SinkKind {
    /// The kind's name (`pipe_storage`, `s3`, `gcs`, `azure`, `local`, `sftp`, `ftp`,
    /// `dropbox`), as it is serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PipeStorage => "pipe_storage",
            Self::S3 => "s3",
            Self::Gcs => "gcs",
            Self::Azure => "azure",
            Self::Local => "local",
            Self::Sftp => "sftp",
            Self::Ftp => "ftp",
            Self::Dropbox => "dropbox",
        }
    }

    /// The webhook event sent when a recording was copied to a sink of this kind. Pipe's
    /// own names where Pipe has the kind (`video_copied_s3`, `video_copied_ftp`,
    /// `video_copied_dbox`); the server's own storage is `video_copied_pipe_storage`.
    pub fn copied_event(self) -> &'static str {
        match self {
            Self::PipeStorage => "video_copied_pipe_storage",
            Self::S3 => "video_copied_s3",
            Self::Gcs => "video_copied_gcs",
            Self::Azure => "video_copied_azure",
            Self::Local => "video_copied_local",
            Self::Sftp => "video_copied_sftp",
            Self::Ftp => "video_copied_ftp",
            Self::Dropbox => "video_copied_dbox",
        }
    }
}

/// The operator's name for one configured sink (`own`, `archive-bucket`, …).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SinkId(pub String);

impl SinkId {
    /// A sink id from a name.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the files of a recording are named in a sink.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyLayout {
    /// A folder per recording: `<id>/<id>.mp4`, `<id>/<id>.jpg`, `<id>/<id>_raw.<ext>`
    /// (the server's own storage).
    #[default]
    ByRecording,
    /// As the hosted Pipe names them in its customers' storage, side by side in the sink's
    /// folder: `<name>.mp4`, `<name>.jpg`, `<name>_raw.<ext>`, where `<name>` is the
    /// stream name (`videoName` in webhooks), so a receiver that fetches
    /// `<videoName>.mp4` finds it.
    Flat,
}

impl KeyLayout {
    /// The key, in this layout, of the file whose own key is `own`
    /// ([`ObjectKey::for_artifact`]).
    pub fn key(self, own: &ObjectKey) -> Result<ObjectKey, Error> {
        match self {
            Self::ByRecording => Ok(own.clone()),
            Self::Flat => ObjectKey::new(own.file_name()),
        }
    }
}

/// A file a recording became, before it is copied anywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Artifact {
    /// Which recording.
    pub recording: RecordingId,
    /// Which kind of file.
    pub kind: ArtifactKind,
    /// The key it is stored under in every sink.
    pub key: ObjectKey,
    /// Its size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of its bytes.
    pub sha256: String,
    /// Its `Content-Type`.
    pub content_type: String,
}

impl Artifact {
    /// An artifact record.
    pub fn new(
        recording: RecordingId,
        kind: ArtifactKind,
        key: ObjectKey,
        size: u64,
        sha256: impl Into<String>,
        content_type: impl Into<String>,
    ) -> Self {
        Self {
            recording,
            kind,
            key,
            size,
            sha256: sha256.into(),
            content_type: content_type.into(),
        }
    }
}

/// A verified copy of an artifact in one sink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Copy {
    /// Which recording.
    pub recording: RecordingId,
    /// Which artifact.
    pub kind: ArtifactKind,
    /// Which sink.
    pub sink: SinkId,
    /// The key in that sink.
    pub key: ObjectKey,
    /// The size the sink reported after the put, equal to the artifact's.
    pub size: u64,
}

impl Copy {
    /// A copy record.
    pub fn new(
        recording: RecordingId,
        kind: ArtifactKind,
        sink: SinkId,
        key: ObjectKey,
        size: u64,
    ) -> Self {
        Self {
            recording,
            kind,
            sink,
            key,
            size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_kind_names_are_their_serialised_names() {
        for kind in [
            SinkKind::PipeStorage,
            SinkKind::S3,
            SinkKind::Gcs,
            SinkKind::Azure,
            SinkKind::Local,
            SinkKind::Sftp,
            SinkKind::Ftp,
            SinkKind::Dropbox,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    #[test]
    fn keys_refuse_traversal_and_odd_bytes() {
        for bad in ["", "/a", "a/", "a//b", "../a", "a/./b", "a b", "a\\b", "ä"] {
            assert!(ObjectKey::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ObjectKey::new("a/b.c/d_e-f").is_ok());
    }

    #[test]
    fn artifact_keys_are_deterministic() {
        let id: RecordingId = "abc".parse().unwrap();
        assert_eq!(
            ObjectKey::for_artifact(&id, ArtifactKind::Mp4, None).as_str(),
            "abc/abc.mp4"
        );
        assert_eq!(
            ObjectKey::for_artifact(&id, ArtifactKind::Snapshot, None).as_str(),
            "abc/abc.jpg"
        );
        assert_eq!(
            ObjectKey::for_artifact(&id, ArtifactKind::Original, Some("mp4")).as_str(),
            "abc/abc_raw.mp4"
        );
    }
}

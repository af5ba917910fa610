//! `copy`: every artifact of a recording into one sink, verified.

use std::sync::Arc;

use futures::stream::BoxStream;
use tracing::{debug, info};

use pipe_core::{
    Artifact, ArtifactKind, Change, Copy, Error, EventLinks, GetOptions, Job, JobKind, ObjectKey,
    PutBody, PutOptions, RecordingId, RecordingState, Result, SinkId, StorageSink,
};

use super::{Pipeline, files};
use crate::events::{self, CopiedUrls};

/// How often the final commit is re-read and retried when another job changed the
/// recording in between. Past this the job fails with a temporary error and runs again
/// later (the puts are idempotent).
const COMMIT_ATTEMPTS: usize = 8;

impl Pipeline {
    /// Puts every artifact into the sink, checks the receipt's size and SHA-256 and the
    /// stored size against the artifact, then records the copies and tells
    /// `video_copied_…`. The job that completes the last sink also moves the recording to
    /// `copied` and enqueues `cleanup`.
    pub(super) async fn copy(&self, job: &Job, id: &RecordingId, sink_id: &SinkId) -> Result<()> {
        let config = &self.config;
        let rec = config.catalog.recording(id).await?;
        let sinks = self.sinks.sinks(&rec.environment).await?;
        let named = Self::sink(&sinks, sink_id)?;
        let sink = &named.sink;
        if !matches!(
            rec.state,
            RecordingState::Converted | RecordingState::Copied
        ) {
            info!(
                state = rec.state.as_str(),
                "not `converted`; nothing to copy"
            );
            return self.complete_only(job, id).await;
        }
        let mut artifacts = config.catalog.artifacts(id).await?;
        artifacts.sort_by_key(|a| ArtifactKind::ALL.iter().position(|k| *k == a.kind));
        let mp4 = artifacts
            .iter()
            .find(|a| a.kind == ArtifactKind::Mp4)
            .ok_or_else(|| Error::precondition(format_args!("recording {id} has no MP4 to copy")))?
            .clone();

        let mut copies = Vec::with_capacity(artifacts.len());
        // The event names the files; their links are signed each time it is sent.
        let mut links = EventLinks::new(sink_id.clone());
        let layout = named.layout;
        for artifact in &artifacts {
            let key = layout.key(&artifact.key)?;
            let body = PutBody::new(artifact.size, self.artifact_bytes(artifact).await?);
            Self::put_verified(sink.as_ref(), &key, artifact, body).await?;
            match artifact.kind {
                ArtifactKind::Mp4 => links.mp4 = Some(key.clone()),
                ArtifactKind::Snapshot => links.snapshot = Some(key.clone()),
                ArtifactKind::Original => links.original = Some(key.clone()),
            }
            copies.push(Copy::new(
                id.clone(),
                artifact.kind,
                sink_id.clone(),
                key,
                artifact.size,
            ));
        }
        let event = events::video_copied(
            sink.kind(),
            &sink.location(),
            &rec,
            &mp4,
            &CopiedUrls::default(),
        )
        .with_links(links);

        // Whether this copy completes the recording depends on the other sinks' jobs,
        // which may commit at the same moment: commit against the version read, and on a
        // conflict read again (the files are in place; only the bookkeeping is redone).
        let mut conflicts = 0;
        loop {
            let rec = config.catalog.recording(id).await?;
            let existing = config.catalog.copies(id).await?;
            let every_sink_done = sinks.sinks.iter().all(|other| {
                &other.id == sink_id
                    || artifacts.iter().all(|a| {
                        existing
                            .iter()
                            .any(|c| c.sink == other.id && c.kind == a.kind)
                    })
            });
            let mut change = Change::new(id.clone())
                .expect_version(rec.version)
                .enqueue(JobKind::Notify {
                    event: event.clone(),
                })
                .complete(job.lease.clone());
            for copy in &copies {
                change = change.copy(copy.clone());
            }
            if every_sink_done && rec.state == RecordingState::Converted {
                change = change
                    .state(RecordingState::Copied)
                    .enqueue(JobKind::Cleanup {
                        recording: id.clone(),
                    });
                if self.forgets_personal_data(&rec).await? {
                    change = change.anonymize();
                }
            }
            match config.catalog.commit(change).await {
                Ok(_) => {
                    info!(sink = %sink_id, every_sink_done, "copied");
                    self.wake();
                    return Ok(());
                }
                Err(e) if e.is_precondition() => {
                    let now = config.catalog.recording(id).await?;
                    if now.version == rec.version {
                        // Not a concurrent change: the lease is gone.
                        return Err(e);
                    }
                    conflicts += 1;
                    if conflicts == COMMIT_ATTEMPTS {
                        return Err(Error::temporary(
                            "pipeline",
                            format!("recording {id} kept changing: {e}"),
                        ));
                    }
                    debug!(conflicts, "recording changed meanwhile; committing again");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Puts `body` (the bytes of `artifact`) into `sink` under `key` and checks what the
    /// sink says it stored against the artifact's size and SHA-256.
    pub(super) async fn put_verified(
        sink: &dyn StorageSink,
        key: &ObjectKey,
        artifact: &Artifact,
        body: PutBody,
    ) -> Result<()> {
        let options = PutOptions::default()
            .with_content_type(artifact.content_type.clone())
            .for_recording(artifact.recording.clone());
        let receipt = sink.put(key, body, options).await?;
        if receipt.size != artifact.size || receipt.sha256 != artifact.sha256 {
            return Err(Error::Integrity {
                detail: format!(
                    "{key}: the sink stored {} bytes with SHA-256 {}, expected {} bytes with {}",
                    receipt.size, receipt.sha256, artifact.size, artifact.sha256
                ),
            });
        }
        if !sink.capabilities().read {
            // A drop folder: what it confirmed while taking the bytes is all there is.
            return Ok(());
        }
        let meta = sink.head(key).await?;
        if meta.size != artifact.size {
            return Err(Error::Integrity {
                detail: format!(
                    "{key}: the sink holds {} bytes, expected {}",
                    meta.size, artifact.size
                ),
            });
        }
        Ok(())
    }

    /// The bytes of an artifact: the original from the spool, the rest from the staging
    /// sink or else the work directory.
    async fn artifact_bytes(
        &self,
        artifact: &Artifact,
    ) -> Result<BoxStream<'static, std::io::Result<bytes::Bytes>>> {
        match artifact.kind {
            ArtifactKind::Original => Ok(files::spool_stream(
                Arc::clone(&self.config.spool),
                artifact.recording.clone(),
                artifact.size,
            )),
            ArtifactKind::Mp4 | ArtifactKind::Snapshot => match &self.config.staging {
                Some(staging) => Ok(staging
                    .get(&artifact.key, GetOptions::default())
                    .await?
                    .stream),
                None => {
                    files::file_stream(
                        &self
                            .work_dir(&artifact.recording)
                            .join(artifact.key.file_name()),
                    )
                    .await
                }
            },
        }
    }

    /// Whether `recording`'s environment keeps personal data only until the recording is
    /// copied ("do not store personal metadata"); `false` without environments.
    async fn forgets_personal_data(&self, recording: &pipe_core::Recording) -> Result<bool> {
        if recording.personal.is_empty() {
            return Ok(false);
        }
        let Some(store) = &self.config.environments else {
            return Ok(false);
        };
        match store.environment(&recording.environment).await {
            Ok(env) => Ok(env.settings.personal_data.forget_after_copy),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

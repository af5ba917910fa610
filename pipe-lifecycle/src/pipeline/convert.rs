//! `convert`: the MP4, the snapshot, and the artifacts' records.

use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use pipe_core::{
    Artifact, ArtifactKind, Change, Job, JobKind, ObjectKey, PutBody, Recording, RecordingId,
    RecordingSource, RecordingState, Result, SpoolSource, TranscodeOptions, TranscodeRequest,
};

use super::{Pipeline, files};
use crate::events;

impl Pipeline {
    /// The pipeline's transcode settings, with a recorder's recording cut at its
    /// environment's maximum recording time (Pipe's `mrt`): what a recorder sent past it
    /// is not converted. An uploaded file is converted whole.
    async fn transcode_options(&self, rec: &Recording) -> Result<TranscodeOptions> {
        let options = self.config.transcode.clone();
        let (Some(store), RecordingSource::Recorder) = (&self.config.environments, rec.source)
        else {
            return Ok(options);
        };
        let limit = match store.environment(&rec.environment).await {
            Ok(environment) => environment.settings.max_recording_secs,
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        Ok(match limit {
            Some(secs) => options.with_cut_after(Duration::from_secs(u64::from(secs))),
            None => options,
        })
    }

    /// Transcodes the original into `<work>/<id>/<id>.mp4` and `.jpg` (moved into the
    /// staging sink at once, if there is one), records the
    /// artifacts (MP4, snapshot if the recording has video, the original), moves the
    /// recording to `converted`, tells `video_converted` and enqueues a `copy` per sink of
    /// the recording's environment (as the pipeline's [`pipe_core::SinkDirectory`] says).
    /// With no sink configured the recording is `copied` at once and its files stay where
    /// they are: they are the only copies.
    pub(super) async fn convert(&self, job: &Job, id: &RecordingId) -> Result<()> {
        let config = &self.config;
        let rec = config.catalog.recording(id).await?;
        if rec.state != RecordingState::Recorded {
            info!(
                state = rec.state.as_str(),
                "not `recorded` any more; nothing to convert"
            );
            return self.complete_only(job, id).await;
        }

        let dir = self.work_dir(id);
        tokio::fs::create_dir_all(&dir).await?;
        let mp4_key = ObjectKey::for_artifact(id, ArtifactKind::Mp4, None);
        let snapshot_key = ObjectKey::for_artifact(id, ArtifactKind::Snapshot, None);
        let (mp4_path, snapshot_path) = (
            dir.join(mp4_key.file_name()),
            dir.join(snapshot_key.file_name()),
        );
        let source = Arc::new(SpoolSource::new(Arc::clone(&config.spool), id.clone()));
        let request = TranscodeRequest::new(source, &mp4_path, &snapshot_path)
            .with_options(self.transcode_options(&rec).await?);
        let output = config.transcoder.transcode(request).await?;

        let (mp4_size, mp4_sha) = files::digest(files::file_stream(&mp4_path).await?).await?;
        let mut artifacts = vec![Artifact::new(
            id.clone(),
            ArtifactKind::Mp4,
            mp4_key,
            mp4_size,
            mp4_sha,
            ArtifactKind::Mp4.content_type(),
        )];
        if tokio::fs::try_exists(&snapshot_path).await? {
            let (size, sha) = files::digest(files::file_stream(&snapshot_path).await?).await?;
            let content_type = ArtifactKind::Snapshot.content_type();
            artifacts.push(Artifact::new(
                id.clone(),
                ArtifactKind::Snapshot,
                snapshot_key,
                size,
                sha,
                content_type,
            ));
        }
        let (size, sha) = files::digest_spool(&config.spool, id).await?;
        let extension = events::original_extension(rec.mime_type.as_deref());
        let key = ObjectKey::for_artifact(id, ArtifactKind::Original, Some(extension));
        // Never the type the recorder declared: a sink serving the original through a link
        // (a presigned S3 URL) would serve whatever it said, `text/html` included.
        let content_type = events::original_content_type(extension, output.source.has_video());
        artifacts.push(Artifact::new(
            id.clone(),
            ArtifactKind::Original,
            key,
            size,
            sha,
            content_type,
        ));

        if let Some(staging) = &config.staging {
            for artifact in &artifacts {
                let path = dir.join(artifact.key.file_name());
                match artifact.kind {
                    ArtifactKind::Mp4 | ArtifactKind::Snapshot => {
                        let body = PutBody::new(artifact.size, files::file_stream(&path).await?);
                        Self::put_verified(staging.as_ref(), &artifact.key, artifact, body).await?;
                    }
                    ArtifactKind::Original => {}
                }
            }
            files::remove_dir(&dir).await?;
        }

        let event = events::video_converted(&rec, &output.source, &output.mp4, mp4_size);
        let mut change = Change::new(id.clone())
            .expect_state(RecordingState::Recorded)
            .enqueue(JobKind::Notify { event })
            .complete(job.lease.clone());
        for artifact in artifacts {
            change = change.artifact(artifact);
        }
        let sinks = self.sinks.sinks(&rec.environment).await?;
        if sinks.is_empty() {
            // Nothing to copy to, so nothing to clean up after: the spool and the work
            // directory (or staging) keep the only copies.
            change = change.state(RecordingState::Copied);
        } else {
            change = change.state(RecordingState::Converted);
            for sink in &sinks.sinks {
                change = change.enqueue(JobKind::Copy {
                    recording: id.clone(),
                    sink: sink.id.clone(),
                });
            }
        }
        config.catalog.commit(change).await?;
        info!(mp4_size, "converted");
        self.wake();
        Ok(())
    }
}

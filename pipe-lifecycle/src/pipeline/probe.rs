//! `probe`: what is in the original.

use std::sync::Arc;

use tracing::info;

use pipe_core::{Change, Job, JobKind, RecordingId, RecordingState, Result, SpoolSource};

use super::Pipeline;
use crate::events;

impl Pipeline {
    /// Probes the original in the spool; records what it holds, tells `video_recorded` and
    /// enqueues `convert`. Media the transcoder cannot read fails the job permanently
    /// (and [`Pipeline::settle`] fails the recording).
    pub(super) async fn probe(&self, job: &Job, id: &RecordingId) -> Result<()> {
        let config = &self.config;
        let rec = config.catalog.recording(id).await?;
        if rec.state != RecordingState::Recorded {
            info!(
                state = rec.state.as_str(),
                "not `recorded` any more; nothing to probe"
            );
            return self.complete_only(job, id).await;
        }
        let source = SpoolSource::new(Arc::clone(&config.spool), id.clone());
        let media = config.transcoder.probe(Arc::new(source)).await?;

        let mut rec = rec;
        let mut change = Change::new(id.clone()).expect_state(RecordingState::Recorded);
        if rec.length.is_none() {
            let length = config.spool.stat(id).await?.len;
            rec.length = Some(length);
            change = change.length(length);
        }
        let event = events::video_recorded(&rec, &media);
        info!(container = %media.container, duration = ?media.duration, "probed");
        config
            .catalog
            .commit(
                change
                    .media(media)
                    .enqueue(JobKind::Notify { event })
                    .enqueue(JobKind::Convert {
                        recording: id.clone(),
                    })
                    .complete(job.lease.clone()),
            )
            .await?;
        self.wake();
        Ok(())
    }
}

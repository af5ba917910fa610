//! The sweep, with a clock of the test's own: retention deletes recordings past their
//! hours from every sink and the catalog, and nothing younger or failed; recordings their
//! clients abandoned are finished with what arrived, or deleted if nothing did.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pipe_core::{
    Catalog, EnvironmentId, EnvironmentSettings, EnvironmentStore, EnvironmentUpdate,
    NewEnvironment, NewRecording, RecordingState, SinkKind, Timestamp,
};
use pipe_lifecycle::{SWEEP_BATCH, SweepReport};

use crate::util::notifier::RecordingNotifier;
use crate::util::{Harness, Parts, garbage, webm};

const HOUR: Duration = Duration::from_secs(3600);

async fn harness() -> Harness {
    let notifier = Arc::new(RecordingNotifier::default());
    Harness::new(
        Parts::Real,
        &[("own", SinkKind::PipeStorage), ("archive", SinkKind::S3)],
        notifier,
        |c| c,
    )
    .await
}

/// The harness's pipeline, sweeping the environments of its catalog.
async fn with_retention(h: &Harness, settings: EnvironmentSettings) {
    let id = EnvironmentId::default();
    match h.catalog.environment(&id).await {
        Ok(_) => {
            h.catalog
                .update_environment(&id, EnvironmentUpdate::default().with_settings(settings))
                .await
                .unwrap();
        }
        Err(_) => {
            h.catalog
                .create_environment(NewEnvironment::new(id).with_settings(settings))
                .await
                .unwrap();
        }
    }
}

/// A pipeline over the harness's catalog and spool that sweeps its environments, copying
/// to the first `sinks` of the harness's sinks and telling `notifier`.
fn sweeping(
    h: &Harness,
    sinks: usize,
    notifier: Arc<RecordingNotifier>,
) -> pipe_lifecycle::Pipeline {
    let mut config = pipe_lifecycle::PipelineConfig::new(
        h.catalog.clone(),
        h.spool.clone(),
        Arc::new(pipe_transcode::FfmpegTranscoder::new()),
        notifier,
        h.dir.path().join("work"),
    )
    .with_environments(h.catalog.clone());
    for (id, sink) in &h.sinks[..sinks] {
        config = config.with_sink(id.clone(), sink.clone());
    }
    pipe_lifecycle::Pipeline::new(config)
}

fn sinks_hold(h: &Harness, id: &pipe_core::RecordingId) -> bool {
    ["own", "archive"].iter().any(|sink| {
        h.dir
            .path()
            .join("sinks")
            .join(sink)
            .join(id.as_str())
            .exists()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_what_is_past_its_hours_and_nothing_else() {
    let h = harness().await;
    let pipeline = sweeping(&h, 2, Arc::new(RecordingNotifier::default()));
    with_retention(
        &h,
        EnvironmentSettings::default().with_retention_hours(Some(30)),
    )
    .await;
    let copied = h.ingest(webm(), "video/webm").await;
    let failed = h.ingest(garbage(4096), "video/webm").await;
    pipeline.drain().await.unwrap();
    assert_eq!(
        h.catalog.recording(&copied).await.unwrap().state,
        RecordingState::Copied
    );
    assert_eq!(
        h.catalog.recording(&failed).await.unwrap().state,
        RecordingState::Failed
    );
    assert!(sinks_hold(&h, &copied));

    // 29 hours on: younger than its retention, kept.
    let now = Timestamp::now();
    assert_eq!(
        pipeline.sweep(now.plus(29 * HOUR)).await.unwrap(),
        SweepReport::default()
    );
    // 31 hours on: the copied one goes from every sink and the catalog; the failed one
    // stays for a person to look at.
    let report = pipeline.sweep(now.plus(31 * HOUR)).await.unwrap();
    assert_eq!(report.deleted, 1, "{report:?}");
    pipeline.drain().await.unwrap();
    assert!(
        h.catalog
            .recording(&copied)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(!sinks_hold(&h, &copied), "a copy outlived the retention");
    assert_eq!(
        h.catalog.recording(&failed).await.unwrap().state,
        RecordingState::Failed
    );

    // Unless the environment says failed ones go too.
    let mut settings = EnvironmentSettings::default().with_retention_hours(Some(30));
    settings.retention_deletes_failed = true;
    with_retention(&h, settings).await;
    assert_eq!(
        pipeline.sweep(now.plus(31 * HOUR)).await.unwrap().deleted,
        1
    );
    pipeline.drain().await.unwrap();
    assert!(
        h.catalog
            .recording(&failed)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(h.spool.stat(&failed).await.unwrap_err().is_not_found());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_recordings_are_finished_with_what_arrived_or_deleted() {
    let h = harness().await;
    let pipeline = sweeping(&h, 1, Arc::new(RecordingNotifier::default()));
    with_retention(&h, EnvironmentSettings::default()).await;
    // A client that sent a whole WebM and never said it finished, and one that sent
    // nothing at all.
    let receiving = |bytes: Option<Bytes>| {
        let (catalog, spool) = (h.catalog.clone(), h.spool.clone());
        async move {
            let rec = catalog
                .create_recording(NewRecording::new().with_mime_type("video/webm"))
                .await
                .unwrap();
            spool.create(&rec.id).await.unwrap();
            if let Some(bytes) = bytes {
                spool.append(&rec.id, 0, bytes).await.unwrap();
            }
            rec.id
        }
    };
    let with_bytes = receiving(Some(webm())).await;
    let empty = receiving(None).await;

    let now = Timestamp::now();
    assert_eq!(
        pipeline.sweep(now.plus(23 * HOUR)).await.unwrap(),
        SweepReport::default(),
        "a recording may be under way for 23 hours"
    );
    let report = pipeline.sweep(now.plus(25 * HOUR)).await.unwrap();
    assert_eq!((report.finished, report.deleted), (1, 1), "{report:?}");
    pipeline.drain().await.unwrap();
    let finished = h.catalog.recording(&with_bytes).await.unwrap();
    assert_eq!(finished.state, RecordingState::Copied, "{finished:?}");
    assert_eq!(finished.length, Some(webm().len() as u64));
    assert!(
        h.catalog
            .recording(&empty)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// An upload past its environment's abandonment time (tus's expiration) is deleted unless
/// every byte it declared arrived: part of a file is no recording. One whose bytes all
/// arrived (a crash came before its finish) is finished like a stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_uploads_are_deleted_unless_complete() {
    let h = harness().await;
    let pipeline = sweeping(&h, 1, Arc::new(RecordingNotifier::default()));
    with_retention(&h, EnvironmentSettings::default()).await;
    let file = webm();
    let upload = |declared: Option<u64>, bytes: Bytes| {
        let (catalog, spool) = (h.catalog.clone(), h.spool.clone());
        async move {
            let rec = catalog
                .create_recording(
                    NewRecording::new()
                        .with_mime_type("video/webm")
                        .with_upload(declared),
                )
                .await
                .unwrap();
            spool.create(&rec.id).await.unwrap();
            spool.append(&rec.id, 0, bytes).await.unwrap();
            rec.id
        }
    };
    let whole = upload(Some(file.len() as u64), file.clone()).await;
    let half = upload(Some(file.len() as u64), file.slice(..file.len() / 2)).await;
    let deferred = upload(None, file.clone()).await;

    let report = pipeline
        .sweep(Timestamp::now().plus(25 * HOUR))
        .await
        .unwrap();
    assert_eq!((report.finished, report.deleted), (1, 2), "{report:?}");
    pipeline.drain().await.unwrap();
    let finished = h.catalog.recording(&whole).await.unwrap();
    assert_eq!(finished.state, RecordingState::Copied, "{finished:?}");
    for gone in [half, deferred] {
        assert!(
            h.catalog.recording(&gone).await.unwrap_err().is_not_found(),
            "an incomplete upload was kept"
        );
        assert!(h.spool.stat(&gone).await.unwrap_err().is_not_found());
    }
}

/// A backlog larger than one sweep goes in bounded steps.
#[tokio::test]
async fn a_backlog_goes_in_bounded_sweeps() {
    let h = harness().await;
    let pipeline = sweeping(&h, 0, Arc::new(RecordingNotifier::default()));
    with_retention(
        &h,
        EnvironmentSettings::default().with_retention_hours(Some(30)),
    )
    .await;
    let total = SWEEP_BATCH + 200;
    for _ in 0..total {
        let rec = h
            .catalog
            .create_recording(NewRecording::new())
            .await
            .unwrap();
        h.catalog
            .commit(
                pipe_core::Change::new(rec.id.clone())
                    .expect_state(RecordingState::Receiving)
                    .state(RecordingState::Recorded)
                    .length(0),
            )
            .await
            .unwrap();
    }
    let later = Timestamp::now().plus(31 * HOUR);
    assert_eq!(pipeline.sweep(later).await.unwrap().deleted, SWEEP_BATCH);
    assert_eq!(pipeline.sweep(later).await.unwrap().deleted, 200);
    assert_eq!(pipeline.sweep(later).await.unwrap().deleted, 0);
}

/// "Do not store personal metadata": what the environment collected is told in the
/// webhooks, then erased from the catalog once every sink holds the recording.
#[tokio::test]
async fn personal_data_is_forgotten_once_copied_where_the_environment_says_so() {
    use pipe_core::{Change, PersonalData, PersonalDataSettings};

    let h = harness().await;
    let notifier = Arc::new(RecordingNotifier::default());
    let pipeline = sweeping(&h, 1, notifier.clone());
    let mut settings = EnvironmentSettings::default();
    settings.personal_data = PersonalDataSettings::all();
    settings.personal_data.forget_after_copy = true;
    with_retention(&h, settings).await;
    let id = h.ingest(webm(), "video/webm").await;
    h.catalog
        .commit(
            Change::new(id.clone()).personal(
                PersonalData::default()
                    .with_ip("192.0.2.9")
                    .with_camera_name("Conformance Cam"),
            ),
        )
        .await
        .unwrap();
    pipeline.drain().await.unwrap();

    let recording = h.catalog.recording(&id).await.unwrap();
    assert_eq!(recording.state, RecordingState::Copied);
    assert!(recording.personal.is_empty(), "{:?}", recording.personal);
    assert!(recording.anonymized.is_some());
    let told = notifier
        .delivered()
        .into_iter()
        .find(|e| e.recording == id && e.name.as_str() == "video_recorded")
        .expect("video_recorded told");
    assert_eq!(told.data["ip"], "192.0.2.9");
    assert_eq!(told.data["cam_name"], "Conformance Cam");
    // Nor do the events kept with their jobs.
    let jobs = h
        .catalog
        .jobs(pipe_core::JobFilter::default().recording(id.clone()))
        .await
        .unwrap();
    let kept = serde_json::to_string(&jobs.iter().map(|j| &j.kind).collect::<Vec<_>>()).unwrap();
    assert!(kept.contains("video_recorded"), "{kept}");
    assert!(
        !kept.contains("192.0.2.9") && !kept.contains("Conformance Cam"),
        "{kept}"
    );
}

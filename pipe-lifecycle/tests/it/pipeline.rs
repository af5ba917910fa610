//! The pipeline end to end: a real SQLite catalog, pipe-storage's spool and local sink,
//! pipe-transcode's FFmpeg, and notifier stand-ins that record what they were asked to
//! deliver. The main flows also run on this directory's stand-ins for spool, sink and
//! transcoder, so a regression in one of those crates shows as a difference.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipe_core::{
    ArtifactKind, Catalog, Change, DeletionReason, Event, GetOptions, JobFilter, JobKind,
    JobStatus, NewRecording, RecordingState, SinkId, SinkKind, UrlOptions,
};
use pipe_lifecycle::{KeyLayout, RetryPolicy};

use crate::util::notifier::{FailingNotifier, RecordingNotifier};
use crate::util::{Harness, Parts, audio_webm, eventually, garbage, webm};

/// A WebM goes from `recorded` to `copied`, every file verified in the sink, the events
/// told in order, and the local files cleaned up.
async fn a_webm_goes_from_recorded_to_copied_and_told(parts: Parts) {
    let notifier = Arc::new(RecordingNotifier::default());
    let h = Harness::new(
        parts,
        &[("own", SinkKind::PipeStorage)],
        notifier.clone(),
        |c| c,
    )
    .await;
    let original = webm();
    let id = h
        .ingest(original.clone(), "video/webm;codecs=vp8,opus")
        .await;

    let start = Instant::now();
    let ran = h.pipeline.drain().await.unwrap();
    eprintln!(
        "measured ({parts:?}): recorded → copied + told for a 2 s 320x240 WebM in {:?} ({ran} jobs)",
        start.elapsed()
    );

    let rec = h.catalog.recording(&id).await.unwrap();
    assert_eq!(
        rec.state,
        RecordingState::Copied,
        "failure: {:?}",
        rec.failure
    );
    let media = rec.media.as_ref().expect("probe recorded media info");
    assert_eq!((media.width, media.height), (320, 240));
    assert_eq!(media.video_codec.as_deref(), Some("vp8"));

    // Three artifacts, each copied with the right size.
    let artifacts = h.catalog.artifacts(&id).await.unwrap();
    let mut kinds: Vec<_> = artifacts.iter().map(|a| a.kind).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ArtifactKind::Original,
            ArtifactKind::Mp4,
            ArtifactKind::Snapshot
        ]
    );
    let copies = h.catalog.copies(&id).await.unwrap();
    assert_eq!(copies.len(), 3);
    let (_, sink) = &h.sinks[0];
    for artifact in &artifacts {
        let copy = copies
            .iter()
            .find(|c| c.kind == artifact.kind)
            .expect("a copy per artifact");
        assert_eq!(copy.size, artifact.size);
        let stored = sink.head(&artifact.key).await.unwrap();
        assert_eq!(
            stored.size, artifact.size,
            "{:?} in the sink",
            artifact.kind
        );
    }
    let raw = artifacts
        .iter()
        .find(|a| a.kind == ArtifactKind::Original)
        .unwrap();
    assert_eq!(raw.size, original.len() as u64);
    assert_eq!(raw.key.as_str(), format!("{id}/{id}_raw.webm"));
    let stored = sink
        .get(&raw.key, GetOptions::default())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(stored, original, "the original must arrive unchanged");

    // Told in order, with Pipe's fields.
    assert_eq!(
        notifier.names_for(&id),
        [
            "video_recorded",
            "video_converted",
            "video_copied_pipe_storage"
        ]
    );
    let events = notifier.delivered();
    let recorded = &events[0].data;
    assert_eq!(recorded["id"], id.as_str());
    assert_eq!(recorded["videoCodec"], "VP8");
    assert_eq!(recorded["size"], original.len());
    assert_eq!(recorded["payload"], "it");
    let converted = &events[1].data;
    assert_eq!(
        (converted["type"].as_str(), converted["videoCodec"].as_str()),
        (Some("MP4"), Some("H.264"))
    );
    assert_eq!(converted["width"], "320");
    let duration: f64 = converted["duration"].as_str().unwrap().parse().unwrap();
    assert!((1.9..2.2).contains(&duration), "duration {duration}");
    let copied = &events[2].data;
    for (field, kind) in [
        ("url", ArtifactKind::Mp4),
        ("snapshotUrl", ArtifactKind::Snapshot),
        ("rawRecordingUrl", ArtifactKind::Original),
    ] {
        let key = &artifacts.iter().find(|a| a.kind == kind).unwrap().key;
        let url = sink.url(key, UrlOptions::default()).await.unwrap();
        assert_eq!(copied[field], serde_json::json!(url), "{field}");
    }
    let mp4 = artifacts
        .iter()
        .find(|a| a.kind == ArtifactKind::Mp4)
        .unwrap();
    assert_eq!(copied["checksumSha256"], mp4.sha256.as_str());

    // Cleaned up, and every job done.
    assert!(!h.work_dir(&id).exists(), "the work dir must be gone");
    assert!(
        h.spool.stat(&id).await.unwrap_err().is_not_found(),
        "the spool entry must be gone"
    );
    let jobs = h
        .catalog
        .jobs(JobFilter::default().recording(id.clone()))
        .await
        .unwrap();
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    let names: Vec<_> = jobs.iter().map(|j| j.kind.name()).collect();
    assert_eq!(
        names,
        [
            "probe", "notify", "convert", "notify", "copy", "notify", "cleanup"
        ]
    );
}

#[tokio::test]
async fn real_parts_take_a_webm_to_copied_and_told() {
    a_webm_goes_from_recorded_to_copied_and_told(Parts::Real).await;
}

#[tokio::test]
async fn stand_ins_take_a_webm_to_copied_and_told() {
    a_webm_goes_from_recorded_to_copied_and_told(Parts::StandIns).await;
}

/// Random bytes fail their recording with a reason and `video_failed`; a good recording
/// next to it still completes.
async fn a_hostile_original_fails_and_another_recording_still_completes(parts: Parts) {
    let notifier = Arc::new(RecordingNotifier::default());
    let h = Harness::new(
        parts,
        &[("own", SinkKind::PipeStorage)],
        notifier.clone(),
        |c| c,
    )
    .await;
    let bad = h.ingest(garbage(64 * 1024), "video/webm").await;
    let good = h.ingest(webm(), "video/webm").await;

    h.pipeline.drain().await.unwrap();

    let rec = h.catalog.recording(&bad).await.unwrap();
    assert_eq!(rec.state, RecordingState::Failed);
    let reason = rec.failure.expect("a failed recording says why");
    assert!(reason.starts_with("media:"), "{reason}");
    assert_eq!(notifier.names_for(&bad), ["video_failed"]);
    let failed = notifier
        .delivered()
        .into_iter()
        .find(|e| e.recording == bad)
        .unwrap();
    assert_eq!(failed.data["reason"], reason.as_str());
    assert!(h.catalog.artifacts(&bad).await.unwrap().is_empty());

    assert_eq!(
        h.catalog.recording(&good).await.unwrap().state,
        RecordingState::Copied
    );
    assert_eq!(
        notifier.names_for(&good),
        [
            "video_recorded",
            "video_converted",
            "video_copied_pipe_storage"
        ]
    );
}

#[tokio::test]
async fn real_parts_fail_a_hostile_original_alone() {
    a_hostile_original_fails_and_another_recording_still_completes(Parts::Real).await;
}

#[tokio::test]
async fn stand_ins_fail_a_hostile_original_alone() {
    a_hostile_original_fails_and_another_recording_still_completes(Parts::StandIns).await;
}

#[tokio::test]
async fn workers_copy_to_two_sinks_at_once_and_finish_once() {
    let notifier = Arc::new(RecordingNotifier::default());
    let sinks = [("own", SinkKind::PipeStorage), ("archive", SinkKind::S3)];
    let h = Harness::new(Parts::Real, &sinks, notifier.clone(), |c| {
        c.with_workers(3)
            .with_poll_interval(Duration::from_millis(20))
    })
    .await;
    let ids = [
        h.ingest(webm(), "video/webm").await,
        h.ingest(webm(), "video/webm").await,
    ];

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(Arc::clone(&h.pipeline).run(async {
        let _ = stopped.await;
    }));
    h.pipeline.wake();
    let catalog = h.catalog.clone();
    eventually(
        Duration::from_secs(60),
        "every job of both recordings done",
        || {
            let (catalog, ids) = (catalog.clone(), ids.clone());
            async move {
                for id in &ids {
                    let jobs = catalog
                        .jobs(JobFilter::default().recording(id.clone()))
                        .await
                        .unwrap();
                    // probe, convert, two copies, cleanup, four notify.
                    if jobs.len() < 9 || jobs.iter().any(|j| j.status != JobStatus::Done) {
                        return false;
                    }
                }
                true
            }
        },
    )
    .await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("run stops on shutdown")
        .unwrap();

    for id in &ids {
        assert_eq!(
            h.catalog.copies(id).await.unwrap().len(),
            6,
            "three artifacts in each of two sinks"
        );
        let mut names = notifier.names_for(id);
        names[2..].sort();
        assert_eq!(
            names,
            [
                "video_recorded",
                "video_converted",
                "video_copied_pipe_storage",
                "video_copied_s3"
            ]
        );
        let jobs = h
            .catalog
            .jobs(JobFilter::default().recording(id.clone()))
            .await
            .unwrap();
        assert_eq!(
            jobs.iter().filter(|j| j.kind.name() == "cleanup").count(),
            1,
            "{jobs:#?}"
        );
        assert_eq!(
            h.catalog.recording(id).await.unwrap().state,
            RecordingState::Copied
        );
        assert!(!h.work_dir(id).exists(), "cleanup removed the work dir");
    }
}

#[tokio::test]
async fn without_sinks_a_recording_is_copied_at_once() {
    let notifier = Arc::new(RecordingNotifier::default());
    let h = Harness::new(Parts::Real, &[], notifier.clone(), |c| c).await;
    let id = h.ingest(webm(), "video/webm").await;
    h.pipeline.drain().await.unwrap();
    assert_eq!(
        h.catalog.recording(&id).await.unwrap().state,
        RecordingState::Copied
    );
    assert_eq!(
        notifier.names_for(&id),
        ["video_recorded", "video_converted"]
    );
    // The only copies are kept: nothing was copied anywhere to clean up after.
    assert!(h.spool.stat(&id).await.is_ok(), "the original was deleted");
    assert!(h.work_dir(&id).exists(), "the MP4 was deleted");
}

/// Enqueues one `notify` job for a fresh recording and returns its event.
async fn enqueue_notify(h: &Harness) -> Event {
    let rec = h
        .catalog
        .create_recording(NewRecording::new())
        .await
        .unwrap();
    let event = Event::new(
        "video_recorded",
        rec.id.clone(),
        serde_json::json!({ "id": rec.id.as_str() }),
    );
    h.catalog
        .commit(Change::new(rec.id).enqueue(JobKind::Notify {
            event: event.clone(),
        }))
        .await
        .unwrap();
    event
}

/// Runs due jobs until `done` holds for the recording's only job, as a worker would.
async fn drain_until(h: &Harness, event: &Event, status: JobStatus) -> pipe_core::JobRecord {
    let filter = JobFilter::default().recording(event.recording.clone());
    let start = Instant::now();
    loop {
        h.pipeline.drain().await.unwrap();
        let jobs = h.catalog.jobs(filter.clone()).await.unwrap();
        if jobs[0].status == status {
            return jobs.into_iter().next().unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the job never became {status:?}: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_webhook_is_retried_with_backoff_and_keeps_its_id() {
    let notifier = Arc::new(FailingNotifier::retryable(2));
    let policy = RetryPolicy::default().with_base(Duration::from_millis(40));
    let h = Harness::new(Parts::Real, &[], notifier.clone(), |c| {
        c.with_retry_policy(policy)
    })
    .await;
    let event = enqueue_notify(&h).await;

    let job = drain_until(&h, &event, JobStatus::Done).await;
    assert_eq!(job.attempts, 3);
    assert!(
        job.last_error.as_deref().unwrap().contains("503"),
        "{:?}",
        job.last_error
    );
    let attempts = notifier.attempts();
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts.iter().all(|(e, _)| e == &event),
        "every attempt presents the same event (and id)"
    );
    // Backoff: at least half of 40 ms, then of 80 ms (equal jitter).
    let gaps: Vec<_> = attempts.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(gaps[0] >= Duration::from_millis(20), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(40), "{gaps:?}");
}

#[tokio::test]
async fn a_webhook_is_dead_lettered_after_its_last_attempt() {
    let notifier = Arc::new(FailingNotifier::retryable(usize::MAX));
    let policy = RetryPolicy::default()
        .with_base(Duration::from_millis(5))
        .with_notify_max_attempts(4);
    let h = Harness::new(Parts::Real, &[], notifier.clone(), |c| {
        c.with_retry_policy(policy)
    })
    .await;
    let event = enqueue_notify(&h).await;

    let job = drain_until(&h, &event, JobStatus::Dead).await;
    assert_eq!(job.attempts, 4);
    assert_eq!(notifier.attempts().len(), 4);
    assert!(job.last_error.as_deref().unwrap().contains("503"));
}

#[tokio::test]
async fn a_permanent_webhook_error_is_dead_lettered_at_once() {
    let notifier = Arc::new(FailingNotifier::permanent());
    let h = Harness::new(Parts::Real, &[], notifier.clone(), |c| c).await;
    let event = enqueue_notify(&h).await;

    let job = drain_until(&h, &event, JobStatus::Dead).await;
    assert_eq!(job.attempts, 1);
    assert!(job.last_error.as_deref().unwrap().contains("410"));
}

#[tokio::test]
async fn a_job_abandoned_by_a_dead_worker_runs_again_after_its_lease() {
    let notifier = Arc::new(RecordingNotifier::default());
    let h = Harness::new(
        Parts::Real,
        &[("own", SinkKind::PipeStorage)],
        notifier.clone(),
        |c| c.with_lease(Duration::from_millis(1000)),
    )
    .await;
    let id = h.ingest(webm(), "video/webm").await;
    // A worker claims the probe and dies without a word.
    let claimed = h
        .catalog
        .claim_job(pipe_core::ClaimOptions::default().with_lease(Duration::from_millis(1000)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        claimed.kind,
        JobKind::Probe {
            recording: id.clone()
        }
    );

    assert_eq!(
        h.pipeline.drain().await.unwrap(),
        0,
        "a leased job is not due"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.pipeline.drain().await.unwrap();

    assert_eq!(
        h.catalog.recording(&id).await.unwrap().state,
        RecordingState::Copied
    );
    assert_eq!(
        notifier.names_for(&id),
        [
            "video_recorded",
            "video_converted",
            "video_copied_pipe_storage"
        ]
    );
    let probe = h
        .catalog
        .jobs(JobFilter::default().recording(id.clone()))
        .await
        .unwrap()
        .remove(0);
    assert_eq!((probe.status, probe.attempts), (JobStatus::Done, 2));
    // The dead worker's lease is refused if it ever comes back.
    let late = h
        .catalog
        .commit(Change::new(id.clone()).complete(claimed.lease))
        .await;
    assert!(late.unwrap_err().is_precondition());
}

#[tokio::test]
async fn an_audio_recording_has_no_snapshot() {
    let notifier = Arc::new(RecordingNotifier::default());
    let h = Harness::new(
        Parts::Real,
        &[("own", SinkKind::PipeStorage)],
        notifier.clone(),
        |c| c,
    )
    .await;
    let id = h.ingest(audio_webm(), "audio/webm;codecs=opus").await;
    h.pipeline.drain().await.unwrap();

    let rec = h.catalog.recording(&id).await.unwrap();
    assert_eq!(
        rec.state,
        RecordingState::Copied,
        "failure: {:?}",
        rec.failure
    );
    let mut kinds: Vec<_> = h
        .catalog
        .artifacts(&id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.kind)
        .collect();
    kinds.sort();
    assert_eq!(kinds, [ArtifactKind::Original, ArtifactKind::Mp4]);
    assert_eq!(h.catalog.copies(&id).await.unwrap().len(), 2);
    let events = notifier.delivered();
    assert_eq!(events[0].data["videoCodec"], "");
    assert_eq!(events[0].data["audioCodec"], "Opus");
    assert_eq!(events[2].data["snapshotUrl"], serde_json::Value::Null);
}

/// With a staging sink, converted files leave the work directory as soon as they are
/// staged, copies are made from the staging sink, and cleanup empties it.
#[tokio::test]
async fn converted_files_wait_in_the_staging_sink_not_the_work_dir() {
    let staging_dir = tempfile::tempdir().unwrap();
    let staging: Arc<dyn pipe_core::StorageSink> = Arc::new(
        pipe_storage::ObjectStoreSink::local(staging_dir.path(), SinkKind::Local).unwrap(),
    );
    let notifier = Arc::new(RecordingNotifier::default());
    let h = Harness::new(
        Parts::Real,
        &[("own", SinkKind::PipeStorage)],
        notifier.clone(),
        |c| c.with_staging(staging.clone()),
    )
    .await;
    let id = h.ingest(webm(), "video/webm").await;

    while h.catalog.recording(&id).await.unwrap().state == RecordingState::Recorded {
        assert!(
            h.pipeline.run_once().await.unwrap(),
            "ran out of jobs before converting"
        );
    }
    assert_eq!(
        h.catalog.recording(&id).await.unwrap().state,
        RecordingState::Converted
    );
    assert!(
        !h.work_dir(&id).exists(),
        "the transcoder's files outlived their staging"
    );
    let artifacts = h.catalog.artifacts(&id).await.unwrap();
    for artifact in artifacts
        .iter()
        .filter(|a| a.kind != ArtifactKind::Original)
    {
        let staged = staging.head(&artifact.key).await.unwrap();
        assert_eq!(staged.size, artifact.size, "{:?} staged", artifact.kind);
    }

    h.pipeline.drain().await.unwrap();
    assert_eq!(
        h.catalog.recording(&id).await.unwrap().state,
        RecordingState::Copied
    );
    let (_, sink) = &h.sinks[0];
    for artifact in &artifacts {
        assert_eq!(sink.head(&artifact.key).await.unwrap().size, artifact.size);
        if artifact.kind != ArtifactKind::Original {
            assert!(
                staging
                    .head(&artifact.key)
                    .await
                    .unwrap_err()
                    .is_not_found(),
                "cleanup left {:?} staged",
                artifact.kind
            );
        }
    }
}

/// A customer's sink names the files as the hosted Pipe does (`<name>.mp4`, `<name>.jpg`,
/// `<name>_raw.webm` side by side), our own storage keeps a folder per recording, and
/// deleting the recording removes the files under both layouts, leaves a tombstone and
/// tells `video_deleted`.
#[tokio::test]
async fn a_customer_sink_gets_pipes_file_names_and_erasure_finds_them() {
    let notifier = Arc::new(RecordingNotifier::default());
    let sinks = [("own", SinkKind::PipeStorage), ("customer", SinkKind::S3)];
    let h = Harness::new(Parts::Real, &sinks, notifier.clone(), |c| {
        c.with_key_layout(SinkId::new("customer"), KeyLayout::Flat)
    })
    .await;
    let id = h.ingest(webm(), "video/webm").await;
    h.pipeline.drain().await.unwrap();
    assert_eq!(
        h.catalog.recording(&id).await.unwrap().state,
        RecordingState::Copied
    );

    let root = h.dir.path().join("sinks");
    let flat = ["mp4", "jpg"]
        .map(|ext| format!("{id}.{ext}"))
        .into_iter()
        .chain([format!("{id}_raw.webm")])
        .collect::<Vec<_>>();
    for name in &flat {
        assert!(root.join("customer").join(name).is_file(), "{name} missing");
        assert!(root.join("own").join(id.as_str()).join(name).is_file());
    }
    assert!(!root.join("customer").join(id.as_str()).exists());
    let mut keys: Vec<String> = h
        .catalog
        .copies(&id)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.sink.as_str() == "customer")
        .map(|c| c.key.as_str().to_owned())
        .collect();
    keys.sort();
    let mut expected = flat.clone();
    expected.sort();
    assert_eq!(
        keys, expected,
        "the copies record the names they were put under"
    );

    h.catalog
        .commit(
            Change::new(id.clone())
                .delete(DeletionReason::Request)
                .enqueue(JobKind::Erase {
                    recording: id.clone(),
                }),
        )
        .await
        .unwrap();
    h.pipeline.drain().await.unwrap();
    for name in &flat {
        assert!(
            !root.join("customer").join(name).exists(),
            "{name} was left"
        );
        assert!(!root.join("own").join(id.as_str()).join(name).exists());
    }
    // The catalog keeps a tombstone, and the erasure was told once, without the payload.
    let tombstone = h.catalog.tombstone(&id).await.unwrap();
    assert_eq!(tombstone.reason, DeletionReason::Request);
    let deleted: Vec<Event> = notifier
        .delivered()
        .into_iter()
        .filter(|e| e.recording == id && e.name.as_str() == "video_deleted")
        .collect();
    assert_eq!(
        deleted.len(),
        1,
        "video_deleted told {} times",
        deleted.len()
    );
    assert_eq!(deleted[0].data["reason"], "request");
    assert!(deleted[0].data.get("payload").is_none());
    // And audited, in the purge's own transaction.
    let audited = pipe_core::AuditLog::audit_entries(
        h.catalog.as_ref(),
        pipe_core::AuditFilter::default().target(format!("recording:{id}")),
    )
    .await
    .unwrap();
    assert!(
        audited.iter().any(|r| r.entry.action == "recording.erased"
            && r.entry.detail.as_deref() == Some("deletion reason: request")),
        "{audited:?}"
    );
}

/// Copies that cannot succeed, each against a real server: a bucket refusing the secret, a
/// container that does not exist (Azurite; `s3s-fs` makes any bucket it is asked for), an
/// FTPS server refusing the password, an SFTP server refusing the key. Each is tried once (permanent errors are not retried), dead-lettered
/// with a reason that says what to fix, and told once as `video_copy_failed`; the
/// recording keeps its files (it is not `copied`) so that a redelivery can try again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_that_cannot_succeed_are_told_once_and_the_files_stay() {
    use pipe_storage::testing::{AzureTestServer, FtpsTestServer, S3TestServer, SftpTestServer};

    let s3 = S3TestServer::start();
    let azure = AzureTestServer::start();
    let ftps = FtpsTestServer::start();
    let sftp = SftpTestServer::start();
    let stranger = SftpTestServer::start();
    let s3_sink = |config: &pipe_storage::S3Config| -> Arc<dyn pipe_core::StorageSink> {
        Arc::new(pipe_storage::ObjectStoreSink::s3(config, SinkKind::S3).unwrap())
    };
    let mut wrong_password = ftps.config();
    wrong_password.password = "not-the-password".into();
    let mut unknown_key = sftp.config();
    unknown_key.auth = stranger.config().auth;
    let cases: [(&str, Arc<dyn pipe_core::StorageSink>, &str, &str); 4] = [
        (
            "s3-secret",
            s3_sink(
                &pipe_storage::S3Config::new(S3TestServer::BUCKET, "us-east-1")
                    .with_endpoint(s3.endpoint())
                    .with_credentials(S3TestServer::ACCESS_KEY, "not-the-secret"),
            ),
            "s3",
            "permission denied",
        ),
        (
            "azure-container",
            Arc::new(
                pipe_storage::ObjectStoreSink::azure(
                    &pipe_storage::AzureConfig::new(AzureTestServer::ACCOUNT, "no-such-container")
                        .with_access_key(AzureTestServer::KEY)
                        .with_endpoint(azure.endpoint()),
                    SinkKind::Azure,
                )
                .unwrap(),
            ),
            "azure",
            "the bucket or container",
        ),
        (
            "ftps-password",
            Arc::new(pipe_storage::FtpsSink::new(wrong_password, SinkKind::Ftp).unwrap()),
            "ftp",
            "refused pipe-ftp-test and its password",
        ),
        (
            "sftp-key",
            Arc::new(pipe_storage::SftpSink::new(unknown_key, SinkKind::Sftp).unwrap()),
            "sftp",
            "refused",
        ),
    ];
    let notifier = Arc::new(RecordingNotifier::default());
    let h = Harness::new(
        Parts::Real,
        &[("own", SinkKind::PipeStorage)],
        notifier.clone(),
        |mut c| {
            for (name, sink, _, _) in &cases {
                c = c.with_sink(SinkId::new(*name), Arc::clone(sink));
            }
            c
        },
    )
    .await;
    let id = h.ingest(webm(), "video/webm").await;
    h.pipeline.drain().await.unwrap();

    let jobs = h
        .catalog
        .jobs(JobFilter::default().recording(id.clone()))
        .await
        .unwrap();
    let told: Vec<Event> = notifier
        .delivered()
        .into_iter()
        .filter(|e| e.recording == id && e.name.as_str() == "video_copy_failed")
        .collect();
    assert_eq!(told.len(), cases.len(), "told once each: {told:#?}");
    for (name, _, kind, says) in &cases {
        let copies: Vec<_> = jobs
            .iter()
            .filter(|j| matches!(&j.kind, JobKind::Copy { sink, .. } if sink.as_str() == *name))
            .collect();
        assert_eq!(copies.len(), 1, "{name}: {copies:#?}");
        assert_eq!(copies[0].status, JobStatus::Dead, "{name}");
        assert_eq!(
            copies[0].attempts, 1,
            "{name}: a permanent refusal is not retried"
        );
        let reason = copies[0].last_error.clone().expect("the reason is kept");
        assert!(
            reason.contains(says),
            "{name}: the reason does not say why: {reason}"
        );
        let event = told
            .iter()
            .find(|e| e.data["sink"] == *name)
            .unwrap_or_else(|| panic!("{name} was not told: {told:#?}"));
        assert_eq!(event.data["sinkKind"], *kind, "{name}");
        assert_eq!(event.data["reason"], reason.as_str(), "{name}");
    }

    assert_eq!(
        h.catalog.recording(&id).await.unwrap().state,
        RecordingState::Converted,
        "not copied while a sink lacks the files"
    );
    assert!(h.spool.stat(&id).await.is_ok(), "the original was removed");
}

/// Whatever MIME type a recorder declares, the stored original gets a media type of a fixed
/// few, from what the probe found: a sink that serves links must never serve the
/// recorder's text (`text/html`) to a browser.
#[tokio::test]
async fn the_original_is_stored_as_media_whatever_the_recorder_declared() {
    let notifier = Arc::new(RecordingNotifier::default());
    let h = Harness::new(
        Parts::Real,
        &[("own", SinkKind::PipeStorage)],
        notifier,
        |c| c,
    )
    .await;
    let declared_html = h.ingest(webm(), "text/html").await;
    let audio = h.ingest(audio_webm(), "audio/webm;codecs=opus").await;
    h.pipeline.drain().await.unwrap();
    for (id, expected) in [(&declared_html, "video/webm"), (&audio, "audio/webm")] {
        let original = h
            .catalog
            .artifacts(id)
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.kind == ArtifactKind::Original)
            .expect("an original artifact");
        assert_eq!(original.content_type, expected);
    }
}

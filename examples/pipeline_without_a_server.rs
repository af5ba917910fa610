//! The way of a recording without pipe-server: a file goes into an encrypted spool, and
//! the pipeline probes it, converts it and copies it into an encrypted local sink, telling
//! each event to a notifier of our own that prints it.
//!
//! Run it with:
//!
//! ```sh
//! cargo run -p pipe-examples --example pipeline_without_a_server -- in.webm ./pipe-example
//! ```
//!
//! Everything lands under the directory given (catalog, keys, spool, sink); run it again
//! and a new recording joins the old ones.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pipe_core::{
    Catalog, Change, Event, JobKind, NewRecording, Notifier, RecordingState, SinkId, SinkKind,
    Spool,
};
use pipe_lifecycle::{Pipeline, PipelineConfig, SqliteCatalog};
use pipe_storage::crypt::{Crypt, LocalKeyProvider};
use pipe_storage::{EncryptedSink, LocalSpool, ObjectStoreSink};
use pipe_transcode::FfmpegTranscoder;

/// Tells events by printing them: any `Notifier` will do where webhooks would go.
#[derive(Debug)]
struct PrintEvents;

#[async_trait]
impl Notifier for PrintEvents {
    async fn deliver(&self, event: &Event) -> pipe_core::Result<()> {
        println!(
            "{} {}",
            event.name,
            String::from_utf8_lossy(&event.envelope().to_bytes())
        );
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, dir] = args.as_slice() else {
        eprintln!("usage: pipeline_without_a_server <recording> <directory>");
        std::process::exit(2);
    };
    let dir = std::path::Path::new(dir);

    let keys = LocalKeyProvider::open_or_create(dir.join("keys"))?;
    if let Some(key) = keys.generated() {
        println!(
            "generated encryption key {key}: back up {}",
            dir.join("keys").display()
        );
    }
    let crypt = Crypt::new(Arc::new(keys));
    let catalog = Arc::new(SqliteCatalog::open(dir.join("catalog.sqlite")).await?);
    let spool = Arc::new(LocalSpool::open_encrypted(dir.join("spool"), crypt.clone()).await?);
    let disk = Arc::new(ObjectStoreSink::local(dir.join("sink"), SinkKind::Local)?);
    let sink = Arc::new(EncryptedSink::new(disk, crypt));

    // What the ingest does for a recording streamed from a browser.
    let recording = catalog
        .create_recording(NewRecording::new().with_mime_type("video/webm"))
        .await?;
    let id = recording.id;
    spool.create(&id).await?;
    let len = spool
        .append(&id, 0, Bytes::from(std::fs::read(input)?))
        .await?;
    spool.seal(&id).await?;
    catalog
        .commit(
            Change::new(id.clone())
                .expect_state(RecordingState::Receiving)
                .state(RecordingState::Recorded)
                .length(len)
                .enqueue(JobKind::Probe {
                    recording: id.clone(),
                }),
        )
        .await?;

    let config = PipelineConfig::new(
        catalog.clone(),
        spool,
        Arc::new(FfmpegTranscoder::new()),
        Arc::new(PrintEvents),
        dir.join("work"),
    )
    .with_sink(SinkId::new("local"), sink);
    let jobs = Pipeline::new(config).drain().await?;

    let done = catalog.recording(&id).await?;
    println!("recording {id}: {} after {jobs} jobs", done.state.as_str());
    if let Some(reason) = done.failure {
        println!("failed: {reason}");
    }
    Ok(())
}

//! What the benches share: a pipeline over a real SQLite catalog and spool in `dir`.

use std::path::Path;
use std::sync::Arc;

use pipe_core::{Catalog, Notifier};
use pipe_lifecycle::{PipelineConfig, SqliteCatalog};

/// A catalog in `dir`, and the config of a pipeline over it and a spool in `dir` that
/// tells through `notifier` (FFmpeg transcodes, though these benches never convert).
pub async fn pipeline_in(
    dir: &Path,
    notifier: Arc<dyn Notifier>,
) -> (Arc<SqliteCatalog>, PipelineConfig) {
    let catalog = Arc::new(SqliteCatalog::open(dir.join("catalog.db")).await.unwrap());
    let spool = Arc::new(
        pipe_storage::LocalSpool::open(dir.join("spool"))
            .await
            .unwrap(),
    );
    let config = PipelineConfig::new(
        Arc::clone(&catalog) as Arc<dyn Catalog>,
        spool,
        Arc::new(pipe_transcode::FfmpegTranscoder::new()),
        notifier,
        dir.join("work"),
    );
    (catalog, config)
}

//! Scheduled backups: every `PIPE_BACKUP_EVERY_SECS` (default a day, the first one an
//! interval after the start), a backup ([`crate::admin::backup_with`]) is put to each of
//! `PIPE_BACKUP_DESTINATIONS` (sink URLs, as `PIPE_SINKS`: `file:///…`, `s3://…`,
//! `sftp://…`, …) as `pipe-backup-<UTC time>.pipebackup`. Each outcome is an audit entry
//! (`backup.made`, the destination's name, `ok` or the error) and a metric:
//! `pipe_backups_total{destination, outcome}` and
//! `pipe_backup_last_success_timestamp_seconds{destination}`. Before each backup, the
//! keys of the live recordings are escrowed at the destination
//! ([`pipe_storage::escrow`]): a backup holds none.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pipe_core::{AuditEntry, AuditLog, ObjectKey, PutBody, PutOptions, StorageSink, Timestamp};
use pipe_lifecycle::SqliteCatalog;
use tokio::sync::watch;

/// Where backups go, and how often.
#[derive(Clone)]
pub(crate) struct Schedule {
    /// Each destination's name (its URL's scheme and position: `file-1`, `s3-2`) and sink.
    pub(crate) destinations: Vec<(String, Arc<dyn StorageSink>)>,
    /// The passphrase backups are sealed under.
    pub(crate) passphrase: String,
    /// How often.
    pub(crate) every: Duration,
}

/// Makes a backup every `schedule.every` and puts it to every destination, until `stop`.
pub(crate) async fn keeper(
    catalog: Arc<SqliteCatalog>,
    data_dir: PathBuf,
    schedule: Schedule,
    mut stop: watch::Receiver<bool>,
) {
    let mut every =
        tokio::time::interval_at(tokio::time::Instant::now() + schedule.every, schedule.every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = every.tick() => {}
        }
        let made = crate::admin::backup_with(&catalog, &data_dir, &schedule.passphrase).await;
        let (sealed, files) = match made {
            Ok(made) => made,
            Err(e) => {
                tracing::error!(error = %e, "could not make a backup");
                for (name, _) in &schedule.destinations {
                    outcome(&catalog, name, Err(&e.to_string())).await;
                }
                continue;
            }
        };
        let stamp = Timestamp::now().to_rfc3339().replace(':', "-");
        let key = match ObjectKey::new(format!("pipe-backup-{stamp}.pipebackup")) {
            Ok(key) => key,
            Err(e) => {
                tracing::error!(error = %e, "a backup's name");
                continue;
            }
        };
        let sealed = bytes::Bytes::from(sealed);
        for (name, sink) in &schedule.destinations {
            // The recording keys first: a backup at a destination without them could not
            // read a recording back.
            match pipe_storage::escrow::escrow_keys(catalog.as_ref(), sink).await {
                Ok(escrowed) => tracing::debug!(
                    destination = %name,
                    keys = escrowed.keys,
                    put = escrowed.put,
                    withdrawn = escrowed.withdrawn,
                    "recording keys escrowed"
                ),
                Err(e) => {
                    tracing::error!(destination = %name, error = %e, "could not escrow the recording keys");
                    outcome(
                        &catalog,
                        name,
                        Err(&format!("escrowing the recording keys: {e}")),
                    )
                    .await;
                    continue;
                }
            }
            let put = sink
                .put(
                    &key,
                    PutBody::from_bytes(sealed.clone()),
                    PutOptions::default(),
                )
                .await;
            match put {
                Ok(_) => {
                    tracing::info!(destination = %name, %key, bytes = sealed.len(), files, "backup made");
                    outcome(
                        &catalog,
                        name,
                        Ok(&format!("{key}, {} bytes", sealed.len())),
                    )
                    .await;
                }
                Err(e) => {
                    tracing::error!(destination = %name, error = %e, "could not put a backup");
                    outcome(&catalog, name, Err(&e.to_string())).await;
                }
            }
        }
    }
}

/// Counts, times and audits one destination's outcome.
async fn outcome(audit: &SqliteCatalog, destination: &str, result: Result<&str, &str>) {
    let ok = result.is_ok();
    metrics::counter!(
        "pipe_backups_total",
        "destination" => destination.to_owned(),
        "outcome" => if ok { "ok" } else { "failed" }
    )
    .increment(1);
    if ok {
        metrics::gauge!(
            "pipe_backup_last_success_timestamp_seconds",
            "destination" => destination.to_owned()
        )
        .set(Timestamp::now().as_millis() as f64 / 1000.0);
    }
    let (outcome, detail) = match result {
        Ok(detail) => ("ok", detail),
        Err(why) => ("failed", why),
    };
    let entry = AuditEntry::new(
        "system",
        "backup.made",
        format!("destination:{destination}"),
        outcome,
    )
    .with_detail(detail);
    if let Err(e) = audit.append_audit(entry).await {
        tracing::error!(error = %e, "a backup's outcome could not be audited");
    }
}

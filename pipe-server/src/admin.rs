//! `pipe keys …`: API keys made and revoked from the command line, with the server
//! running or not (the catalog is an SQLite file in WAL mode, which takes a second
//! writer). This is how the first key comes to be.

use std::path::Path;
use std::sync::Arc;

use pipe_api::auth::{MintedKey, mint_key};
use pipe_core::{
    ApiKey, ApiKeyId, AuditEntry, AuditLog, Change, DeletionReason, EnvironmentId, JobKind,
    RecordingId, RecordingKeyStore, Role, StorageSink, Timestamp,
};
use pipe_lifecycle::SqliteCatalog;

use crate::Config;
use crate::stores::{CatalogBackend, Stores};

async fn open(data_dir: &Path) -> pipe_core::Result<SqliteCatalog> {
    owner_only(data_dir)?;
    SqliteCatalog::open(data_dir.join("catalog.sqlite")).await
}

fn owner_only(data_dir: &Path) -> pipe_core::Result<()> {
    crate::owner_only(data_dir).map_err(|e| pipe_core::Error::Backend {
        backend: "data directory",
        retryable: false,
        source: Box::new(e),
    })
}

/// The catalog `config` names (the data directory's SQLite file, or PostgreSQL).
async fn open_catalog(config: &Config) -> pipe_core::Result<CatalogBackend> {
    if config.catalog_url.is_none() {
        owner_only(&config.data_dir)?;
    }
    CatalogBackend::open(config, None).await
}

/// Makes a key with `role` (limited to `environments`, each of which must exist, unless
/// it is the default one, which the server makes on its first start) and stores its hash.
pub async fn create_key(
    config: &Config,
    role: Role,
    label: &str,
    environments: Vec<EnvironmentId>,
) -> pipe_core::Result<MintedKey> {
    let backend = open_catalog(config).await?;
    let catalog = backend.stores();
    for env in &environments {
        match catalog.environment(env).await {
            Ok(_) => {}
            // It is there; its sinks' secrets are sealed under the server's keys, which
            // making a key does not need.
            Err(pipe_core::Error::Integrity { .. }) => {}
            Err(e) if e.is_not_found() && env.as_str() == EnvironmentId::DEFAULT => {}
            Err(e) => return Err(e),
        }
    }
    let minted = mint_key(label, role, environments);
    catalog.create_api_key(minted.record.clone()).await?;
    catalog
        .append_audit(
            AuditEntry::new(
                "cli",
                "keys.create",
                format!("key:{}", minted.record.id),
                "ok",
            )
            .with_detail(format!("role {role}")),
        )
        .await?;
    backend.close().await;
    Ok(minted)
}

/// Every key, oldest first.
pub async fn list_keys(config: &Config) -> pipe_core::Result<Vec<ApiKey>> {
    let backend = open_catalog(config).await?;
    let catalog = backend.stores();
    let keys = catalog.list_api_keys().await;
    backend.close().await;
    keys
}

/// Revokes the key `id`.
pub async fn revoke_key(config: &Config, id: &ApiKeyId) -> pipe_core::Result<ApiKey> {
    let backend = open_catalog(config).await?;
    let catalog = backend.stores();
    let key = catalog.revoke_api_key(id, Timestamp::now()).await;
    if key.is_ok() {
        catalog
            .append_audit(AuditEntry::new(
                "cli",
                "keys.revoke",
                format!("key:{id}"),
                "ok",
            ))
            .await?;
    }
    backend.close().await;
    key
}

/// What `pipe audit verify` found.
#[derive(Debug)]
pub enum AuditVerdict {
    /// The chain holds: how many entries, and the head (number, hash).
    Holds {
        /// Entries checked.
        entries: u64,
        /// The last entry's number and hash.
        head: Option<(u64, String)>,
    },
    /// The chain is broken at an entry.
    Broken(pipe_core::ChainBreak),
    /// The chain holds, but does not reach a head written to the log output earlier, or
    /// holds another entry under its number: the log was cut off or rewritten after it.
    HeadMissing {
        /// The head given.
        seq: u64,
        /// What stands there instead: the log's last entry's number, or the hash found.
        found: String,
    },
}

/// Checks the whole audit chain of the catalog `config` names; with `head` (an entry's
/// number and hash written earlier to the log output), also that the log still holds that
/// entry unchanged, so a log cut off after it is caught.
pub async fn verify_audit(
    config: &Config,
    head: Option<(u64, String)>,
) -> pipe_core::Result<AuditVerdict> {
    use pipe_core::AuditFilter;

    let backend = open_catalog(config).await?;
    let catalog = backend.stores();
    let verdict = match pipe_core::verify_log(catalog.as_ref()).await? {
        Err(broken) => AuditVerdict::Broken(broken),
        Ok((entries, last)) => match head {
            None => AuditVerdict::Holds {
                entries,
                head: last,
            },
            Some((seq, hash)) => {
                let at = catalog
                    .audit_entries(AuditFilter::default().after(seq.saturating_sub(1)).limit(1))
                    .await?;
                match at.first() {
                    Some(entry) if entry.seq == seq && entry.hash == hash => AuditVerdict::Holds {
                        entries,
                        head: last,
                    },
                    Some(entry) if entry.seq == seq => AuditVerdict::HeadMissing {
                        seq,
                        found: format!("entry {seq} has hash {}", entry.hash),
                    },
                    _ => AuditVerdict::HeadMissing {
                        seq,
                        found: match &last {
                            Some((last, _)) => format!("the log ends at entry {last}"),
                            None => "the log is empty".to_owned(),
                        },
                    },
                }
            }
        },
    };
    backend.close().await;
    Ok(verdict)
}

/// The files of a data directory a backup holds besides the catalog: the server's
/// secrets and its key-encryption keys. Recordings are not in it: they live in the
/// sinks, the operator's storage. Nor are their keys: those are escrowed at the backup
/// destinations ([`pipe_storage::escrow`]), where an erasure reaches them.
const BACKED_UP: &[&str] = &["server.secret", "webhook.secret", "keys/encryption-keys"];

/// A backup destination: its name (`file-1`, `s3-2`) and its sink.
pub type Destination = (String, Arc<dyn StorageSink>);

/// Opens the backup destinations of the configuration (`PIPE_BACKUP_DESTINATIONS`).
pub fn open_destinations(
    destinations: &[(String, pipe_storage::sink_url::SinkUrl)],
) -> pipe_core::Result<Vec<Destination>> {
    destinations
        .iter()
        .map(|(name, url)| Ok((name.clone(), url.open(None)?)))
        .collect()
}

/// A backup of the data directory `data_dir` (see [`pipe_storage::backup`]): a consistent
/// snapshot of the catalog taken while the server runs, the secrets and the
/// key-encryption keys, encrypted under `passphrase`; the recording keys are escrowed at
/// every one of `destinations` first (refused without one when there are recording
/// keys). Audited.
pub async fn backup(
    data_dir: &Path,
    passphrase: &str,
    destinations: &[Destination],
) -> pipe_core::Result<Vec<u8>> {
    let catalog = open(data_dir).await?;
    let made = async {
        let made = backup_with(&catalog, data_dir, passphrase).await?;
        let has_keys = !catalog.live_recording_keys(None, 1).await?.is_empty();
        if has_keys && destinations.is_empty() {
            return Err(pipe_core::Error::invalid(
                "backup",
                "recordings have keys of their own, which a backup keeps apart, at the backup \
                 destinations: set PIPE_BACKUP_DESTINATIONS (the same as the server's)",
            ));
        }
        for (name, sink) in destinations {
            pipe_storage::escrow::escrow_keys(&catalog, sink)
                .await
                .map_err(|e| {
                    pipe_core::Error::temporary(
                        "backup",
                        format!("escrowing the recording keys at {name}: {e}"),
                    )
                })?;
        }
        Ok(made)
    }
    .await;
    let outcome = match &made {
        Ok((sealed, files)) => AuditEntry::new("cli", "backup.made", "", "ok")
            .with_detail(format!("{files} files, {} bytes", sealed.len())),
        Err(e) => AuditEntry::new("cli", "backup.made", "", "failed").with_detail(e.to_string()),
    };
    catalog.append_audit(outcome).await?;
    catalog.close().await;
    made.map(|(sealed, _)| sealed)
}

/// The sealed backup of `data_dir`, whose catalog is `catalog`, and how many files it
/// holds.
pub(crate) async fn backup_with(
    catalog: &SqliteCatalog,
    data_dir: &Path,
    passphrase: &str,
) -> pipe_core::Result<(Vec<u8>, usize)> {
    use pipe_storage::backup::{BackupFile, seal};

    let snapshot = data_dir.join(format!(
        ".backup-{}.sqlite",
        pipe_core::RecordingId::generate()
    ));
    let taken = catalog.snapshot(&snapshot).await;
    let read = taken.and_then(|()| std::fs::read(&snapshot).map_err(Into::into));
    let _ = std::fs::remove_file(&snapshot);
    let mut files = vec![BackupFile::new("catalog.sqlite", read?)];
    for name in BACKED_UP {
        match std::fs::read(data_dir.join(name)) {
            Ok(bytes) => files.push(BackupFile::new(*name, bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let sealed = seal(&files, passphrase)?;
    Ok((sealed, files.len()))
}

/// Rebuilds the data directory `data_dir` from `backup`, opened with `passphrase`, and
/// takes the recording keys back from escrow at `destinations` (see
/// [`recover_recording_keys`]). Refused if `data_dir` holds a catalog: a restore never
/// overwrites a server's state.
pub async fn restore(
    data_dir: &Path,
    backup: &[u8],
    passphrase: &str,
    destinations: &[Destination],
) -> pipe_core::Result<KeyRecovery> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    if data_dir.join("catalog.sqlite").exists() {
        return Err(pipe_core::Error::invalid(
            "restore",
            format!(
                "{} already holds a catalog: restore into an empty data directory",
                data_dir.display()
            ),
        ));
    }
    let files = pipe_storage::backup::open(backup, passphrase)?;
    for file in &files {
        if file.name != "catalog.sqlite" && !BACKED_UP.contains(&file.name.as_str()) {
            return Err(pipe_core::Error::invalid(
                "restore",
                format!("the backup holds an unexpected file {:?}", file.name),
            ));
        }
    }
    for file in &files {
        let path = data_dir.join(&file.name);
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        std::io::Write::write_all(&mut out, &file.bytes)?;
        out.sync_all()?;
    }
    let catalog = open(data_dir).await?;
    catalog
        .append_audit(
            AuditEntry::new("cli", "backup.restored", "", "ok").with_detail(format!(
                "{} files: {}",
                files.len(),
                files
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        )
        .await?;
    let recovery = recover_recording_keys(&catalog, destinations).await;
    catalog.close().await;
    recovery
}

/// What [`recover_recording_keys`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct KeyRecovery {
    /// Recordings whose key came back from escrow.
    pub recovered: u64,
    /// Recordings whose key is at no destination: erased after the backup was made. They
    /// are deleted again (their files are unreadable, and their erasure finishes: sinks,
    /// tombstone, `video_deleted`).
    pub erased: Vec<RecordingId>,
    /// Recordings still waiting for their key, for want of a destination to look at.
    pub waiting: usize,
}

/// Takes back from escrow at `destinations` the keys of the recordings of `catalog`
/// that have none (a catalog restored from a backup, which holds no key). A recording
/// whose key is at no destination was erased after the backup: it is deleted again.
/// If keys are missing and no destination ever escrowed any, nothing is deleted and the
/// call fails: those are likely not the destinations the backups were made to.
pub async fn recover_recording_keys(
    catalog: &dyn Stores,
    destinations: &[Destination],
) -> pipe_core::Result<KeyRecovery> {
    let waiting = catalog.recordings_without_keys().await?;
    if waiting.is_empty() {
        return Ok(KeyRecovery::default());
    }
    if destinations.is_empty() {
        return Ok(KeyRecovery {
            waiting: waiting.len(),
            ..KeyRecovery::default()
        });
    }
    let sinks = destinations
        .iter()
        .map(|(_, sink)| Arc::clone(sink))
        .collect::<Vec<_>>();
    let found = pipe_storage::escrow::recover_keys(catalog, &waiting, &sinks).await?;
    if !found.missing.is_empty() && !found.escrowed_here {
        return Err(pipe_core::Error::invalid(
            "recording keys",
            format!(
                "{} of the {} keys this catalog needs are missing, and no key was ever \
                 escrowed at {}: are these the destinations its backups were made to? \
                 Nothing was deleted",
                found.missing.len(),
                waiting.len(),
                destinations
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    for id in &found.missing {
        let change = Change::new(id.clone())
            .delete(DeletionReason::Request)
            .enqueue(JobKind::Erase {
                recording: id.clone(),
            });
        match catalog.commit(change).await {
            Ok(_) => {}
            // Being deleted already.
            Err(e) if e.is_precondition() => {}
            Err(e) => return Err(e),
        }
    }
    catalog
        .append_audit(
            AuditEntry::new("system", "recording_keys.recovered", "", "ok").with_detail(format!(
                "{} keys back from escrow; {} recordings erased after the backup, deleted again",
                found.keys,
                found.missing.len()
            )),
        )
        .await?;
    Ok(KeyRecovery {
        recovered: found.keys,
        erased: found.missing,
        waiting: 0,
    })
}

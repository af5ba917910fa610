//! The backup drill: record (to a customer's bucket only: "do not store"), back up while
//! the server runs, wipe the data directory, restore (the recording's key taken back from
//! escrow), and the recording downloads byte-identical through a fresh link. The backup's
//! file holds no plaintext secret and no recording key, and a restore never overwrites a
//! data directory that holds a catalog. (That a restored key opens the recording's
//! encrypted files is shown in `erasure.rs`.)

use std::path::Path;

use pipe_storage::testing::S3TestServer;
use reqwest::StatusCode;
use serde_json::Value;

use crate::api::{create_key, get, mp4_url, until_copied};
use crate::stream::{stream_recording, webm};
use crate::util::PipeServer;

pub(crate) const PASSPHRASE: &str = "a drill passphrase, long enough";

/// `pipe backup --to` or `pipe restore --from` (`verb`, `flag`) on `data`, with the
/// recording keys escrowed at `escrow` (a `PIPE_BACKUP_DESTINATIONS` list).
pub(crate) async fn pipe(
    verb: &str,
    flag: &str,
    file: &Path,
    data: &Path,
    escrow: &str,
) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args([verb, flag])
        .arg(file)
        .env("PIPE_DATA_DIR", data)
        .env("PIPE_BACKUP_PASSPHRASE", PASSPHRASE)
        .env("PIPE_BACKUP_DESTINATIONS", escrow)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The server's settings for scheduled backups to `escrow` (none due during a test).
pub(crate) fn escrow_env(escrow: &str) -> [(&'static str, &str); 2] {
    [
        ("PIPE_BACKUP_DESTINATIONS", escrow),
        ("PIPE_BACKUP_PASSPHRASE", PASSPHRASE),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_data_directory_is_restored_from_a_backup_and_serves_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3TestServer::start();
    let sinks = crate::util::s3_url(&s3, "drill");
    let escrow_dir = dir.path().join("escrow");
    std::fs::create_dir_all(&escrow_dir).unwrap();
    let escrow = format!("file://{}", escrow_dir.display());
    let [a, b] = escrow_env(&escrow);
    let env = [("PIPE_SINKS", sinks.as_str()), crate::util::s3_env(), a, b];
    let mut server = PipeServer::start(dir.path(), &env).await;
    let key = create_key(&server, &["--role", "admin"]).await;
    let base = server.url();
    // Only the bucket keeps recordings: the data directory holds none to restore.
    let environment = format!("{base}/v1/environments/production");
    let (_, current) = get(&environment, &key).await;
    let mut settings: Value = current["settings"].clone();
    settings["do_not_store"] = Value::Bool(true);
    let changed = reqwest::Client::new()
        .patch(&environment)
        .bearer_auth(&key)
        .json(&serde_json::json!({"settings": settings}))
        .send()
        .await
        .unwrap();
    assert!(
        changed.status().is_success(),
        "{}",
        changed.text().await.unwrap()
    );

    let id = stream_recording(&server, &webm(dir.path())).await;
    let recording = until_copied(&server, &key, &id).await;
    let before = reqwest::get(mp4_url(&recording))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&before[4..8], b"ftyp");

    // Backed up while the server runs.
    let backup = dir.path().join("drill.pipebackup");
    let (ok, said) = pipe("backup", "--to", &backup, &server.data_dir, &escrow).await;
    assert!(ok, "pipe backup failed: {said}");
    let sealed = std::fs::read(&backup).unwrap();
    // The recording's key is escrowed, not in the backup.
    let escrowed = std::fs::read(escrow_dir.join("recording-keys").join(&id))
        .expect("the recording's key is escrowed");
    let opened = pipe_storage::backup::open(&sealed, PASSPHRASE).unwrap();
    let catalog = opened
        .iter()
        .find(|f| f.name == "catalog.sqlite")
        .expect("the backup holds the catalog");
    assert!(
        !catalog
            .bytes
            .windows(escrowed.len())
            .any(|w| w == escrowed.as_slice()),
        "the backup's catalog holds the recording's key"
    );
    for secret in ["server.secret", "webhook.secret", "keys/encryption-keys"] {
        let Ok(text) = std::fs::read_to_string(server.data_dir.join(secret)) else {
            assert_ne!(secret, "keys/encryption-keys", "no key file to back up");
            continue;
        };
        let part = text.trim().rsplit(':').next().unwrap().to_owned();
        assert!(part.len() >= 16, "{secret}: {part:?}");
        assert!(
            !sealed.windows(part.len()).any(|w| w == part.as_bytes()),
            "{secret} is in the backup in plaintext"
        );
    }
    assert!(
        !sealed
            .windows(S3TestServer::SECRET_KEY.len())
            .any(|w| w == S3TestServer::SECRET_KEY.as_bytes()),
        "the sink's secret is in the backup in plaintext"
    );

    // A restore does not overwrite a live data directory.
    let (ok, said) = pipe("restore", "--from", &backup, &server.data_dir, &escrow).await;
    assert!(!ok && said.contains("already holds a catalog"), "{said}");

    // Wiped, restored, and serving the recording again.
    server.kill().await;
    std::fs::remove_dir_all(&server.data_dir).unwrap();
    let (ok, said) = pipe("restore", "--from", &backup, &server.data_dir, &escrow).await;
    assert!(ok, "pipe restore failed: {said}");
    assert!(said.contains("1 recording keys taken back"), "{said}");
    server.restart().await;
    let (status, recording) = get(&format!("{base}/v1/recordings/{id}"), &key).await;
    assert_eq!(status, StatusCode::OK, "{recording}");
    let after = reqwest::get(mp4_url(&recording))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(before == after, "the restored recording's MP4 differs");
    let (_, audit) = get(&format!("{base}/v1/audit?action=backup.restored"), &key).await;
    assert_eq!(
        audit["entries"].as_array().map(Vec::len),
        Some(1),
        "{audit}"
    );
}

/// Scheduled backups go to every destination (a directory and a bucket here), open with
/// the passphrase, and each outcome is audited and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_reach_two_destinations_and_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3TestServer::start();
    let local = dir.path().join("backups");
    std::fs::create_dir_all(&local).unwrap();
    let destinations = format!(
        "file://{},{}",
        local.display(),
        crate::util::s3_url(&s3, "backups")
    );
    let env = [
        ("PIPE_BACKUP_DESTINATIONS", destinations.as_str()),
        ("PIPE_BACKUP_PASSPHRASE", PASSPHRASE),
        ("PIPE_BACKUP_EVERY_SECS", "1"),
        crate::util::s3_env(),
    ];
    let server = PipeServer::start(dir.path(), &env).await;
    let key = create_key(&server, &["--role", "admin"]).await;
    let base = server.url();

    let backups_under = |root: &Path| -> Vec<std::path::PathBuf> {
        crate::util::files_under(root)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".pipebackup"))
            .collect()
    };
    let (in_dir, in_bucket) = crate::util::eventually(
        std::time::Duration::from_secs(60),
        "a backup in both destinations",
        async || {
            let (a, b) = (backups_under(&local), backups_under(s3.root()));
            (!a.is_empty() && !b.is_empty()).then_some((a, b))
        },
    )
    .await;
    for file in [&in_dir[0], &in_bucket[0]] {
        let opened = pipe_storage::backup::open(&std::fs::read(file).unwrap(), PASSPHRASE)
            .unwrap_or_else(|e| panic!("{} does not open: {e}", file.display()));
        assert!(
            opened.iter().any(|f| f.name == "catalog.sqlite"),
            "{}: {opened:?}",
            file.display()
        );
    }
    let (_, audit) = get(&format!("{base}/v1/audit?action=backup.made"), &key).await;
    for destination in ["destination:file-1", "destination:s3-2"] {
        assert!(
            audit["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["target"] == destination && e["outcome"] == "ok"),
            "{destination}: {audit}"
        );
    }
    let metrics = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"pipe_backups_total{destination="s3-2",outcome="ok"}"#),
        "{metrics}"
    );
}

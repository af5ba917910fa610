//! Erasure end to end: a browser recording copied to our own storage and a customer's S3
//! bucket is deleted through the API while the bucket is down, and the server is killed
//! (-9) in the middle of the erasure. After the restart the erasure completes: the API
//! answers 404 saying when and why, the audit log holds it, and no file under the data
//! directory and no object in the bucket holds any 64-byte run of its MP4, original or
//! snapshot. A backup made before the deletion, restored after it, cannot decrypt a copy
//! of the recording's encrypted MP4 kept aside (as a write-only sink or a bucket's own
//! backup would keep it); restored before the deletion, it can.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pipe_storage::testing::S3TestServer;
use reqwest::StatusCode;

use crate::api::{create_key, get, until_copied};
use crate::backup::{escrow_env, pipe};
use crate::util::{Driver, PipeServer, eventually, files_under};

/// Decrypts `object` with the keys and catalog of the data directory `data`.
async fn open_with(data: &Path, object: Vec<u8>) -> pipe_core::Result<Vec<u8>> {
    use pipe_storage::crypt::{Crypt, LocalKeyProvider};

    let catalog = Arc::new(
        pipe_lifecycle::SqliteCatalog::open(data.join("catalog.sqlite"))
            .await
            .unwrap(),
    );
    let keks = LocalKeyProvider::open_or_create(data.join("keys")).unwrap();
    let crypt = Crypt::new(Arc::new(keks)).with_recording_keys(catalog.clone());
    let opened = tokio::task::spawn_blocking(move || crypt.decrypt(&object))
        .await
        .unwrap();
    catalog.close().await;
    opened
}

/// The length of the runs looked for.
const RUN: usize = 64;

/// A run that says something of its file: at least 16 different bytes (a run of zeros, or
/// of any padding, is in every file and tells nothing).
fn telling(run: &[u8]) -> bool {
    let mut seen = [false; 256];
    run.iter().for_each(|&b| seen[b as usize] = true);
    seen.iter().filter(|&&s| s).count() >= 16
}

/// FNV-1a of a run: the key of the index of runs.
fn fingerprint(run: &[u8]) -> u64 {
    run.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Every telling run of `RUN` bytes of the given files' contents, by fingerprint.
struct Runs<'a> {
    index: HashMap<u64, Vec<(&'a str, usize)>>,
    contents: &'a [(String, Vec<u8>)],
}

impl<'a> Runs<'a> {
    fn of(contents: &'a [(String, Vec<u8>)]) -> Self {
        let mut index: HashMap<u64, Vec<(&str, usize)>> = HashMap::new();
        for (name, bytes) in contents {
            for (at, run) in bytes.windows(RUN).enumerate() {
                if telling(run) {
                    index.entry(fingerprint(run)).or_default().push((name, at));
                }
            }
        }
        Self { index, contents }
    }

    /// The first run of `data` that is one of the indexed runs: (which file, where in it).
    fn found_in(&self, data: &[u8]) -> Option<(String, usize)> {
        for run in data.windows(RUN) {
            let Some(places) = self.index.get(&fingerprint(run)) else {
                continue;
            };
            for (name, at) in places {
                let (_, bytes) = self.contents.iter().find(|(n, _)| n == name).unwrap();
                if &bytes[*at..*at + RUN] == run {
                    return Some((name.to_string(), *at));
                }
            }
        }
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_cut_off_by_kill_9_completes_and_leaves_no_run_of_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let mut s3 = S3TestServer::start();
    let sinks = crate::util::s3_url(&s3, "pipe");
    let restores = tempfile::tempdir().unwrap();
    let escrow = format!("file://{}", restores.path().join("escrow").display());
    std::fs::create_dir_all(restores.path().join("escrow")).unwrap();
    let [a, b] = escrow_env(&escrow);
    let env = [("PIPE_SINKS", sinks.as_str()), crate::util::s3_env(), a, b];
    let mut server = PipeServer::start(dir.path(), &env).await;
    let key = create_key(&server, &["--role", "admin"]).await;
    let base = server.url();

    let done = Driver::record(&format!("{base}/"), 3).done().await;
    let id = done["recordingId"].as_str().unwrap().to_owned();
    let recording = until_copied(&server, &key, &id).await;
    // What is to vanish: the MP4, the original and the snapshot, as the links serve them.
    let mut contents: Vec<(String, Vec<u8>)> = Vec::new();
    for artifact in recording["artifacts"].as_array().unwrap() {
        let url = artifact["url"].as_str().expect("a download link");
        let bytes = reqwest::get(url).await.unwrap().bytes().await.unwrap();
        contents.push((
            artifact["kind"].as_str().unwrap().to_owned(),
            bytes.to_vec(),
        ));
    }
    let kinds: Vec<&str> = contents.iter().map(|(k, _)| k.as_str()).collect();
    for kind in ["mp4", "original", "snapshot"] {
        assert!(kinds.contains(&kind), "no {kind} among {kinds:?}");
    }
    let runs = Runs::of(&contents);
    // The scan finds what is there: the bucket holds the files now.
    let in_bucket = files_under(s3.root())
        .iter()
        .filter_map(|f| runs.found_in(&std::fs::read(f).unwrap()))
        .count();
    assert!(
        in_bucket >= 3,
        "the scan found {in_bucket} of the 3 files in the bucket"
    );

    // A copy of the encrypted MP4 that no erasure can reach, and a backup made now.
    let mp4 = &contents.iter().find(|(kind, _)| kind == "mp4").unwrap().1;
    let kept = std::fs::read(
        server
            .data_dir
            .join("storage")
            .join(&id)
            .join(format!("{id}.mp4")),
    )
    .expect("our storage's encrypted MP4");
    let old = restores.path().join("old.pipebackup");
    let (ok, said) = pipe("backup", "--to", &old, &server.data_dir, &escrow).await;
    assert!(ok, "pipe backup failed: {said}");
    // Restored before the deletion, the backup opens the copy.
    let before = restores.path().join("before");
    let (ok, said) = pipe("restore", "--from", &old, &before, &escrow).await;
    assert!(ok, "pipe restore failed: {said}");
    assert_eq!(
        &open_with(&before, kept.clone()).await.unwrap(),
        mp4,
        "the backup restored before the deletion does not open the copy"
    );

    // Deleted while the bucket is down: the erasure cannot finish, and is cut off by -9.
    s3.stop();
    let deleted = reqwest::Client::new()
        .delete(format!("{base}/v1/recordings/{id}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, _) = get(&format!("{base}/v1/recordings/{id}"), &key).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the erasure finished with the bucket down"
    );
    server.kill().await;
    s3.restart();
    server.restart().await;

    let problem = eventually(
        Duration::from_secs(120),
        "the erasure to finish after the restart",
        async || {
            let (status, body) = get(&format!("{base}/v1/recordings/{id}"), &key).await;
            (status == StatusCode::NOT_FOUND).then_some(body)
        },
    )
    .await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("deletion reason: request"), "{problem}");
    let (_, audit) = get(
        &format!("{base}/v1/audit?action=recording.erased&target=recording:{id}"),
        &key,
    )
    .await;
    assert_eq!(
        audit["entries"].as_array().map(Vec::len),
        Some(1),
        "the erasure is not audited once: {audit}"
    );

    // Restored after the deletion, the same backup opens nothing of the recording: its
    // key is gone from the catalog and from escrow.
    let after = restores.path().join("after");
    let (ok, said) = pipe("restore", "--from", &old, &after, &escrow).await;
    assert!(ok, "pipe restore failed: {said}");
    assert!(
        said.contains("1 recordings erased after this backup"),
        "{said}"
    );
    let opened = open_with(&after, kept).await;
    assert!(
        matches!(opened, Err(ref e) if e.is_not_found()),
        "a backup restored after the erasure opened the recording's copy: {:?}",
        opened.map(|p| p.len())
    );

    for root in [server.data_dir.as_path(), s3.root()] {
        for file in files_under(root) {
            let data = std::fs::read(&file).unwrap_or_default();
            if let Some((kind, at)) = runs.found_in(&data) {
                panic!(
                    "{} holds the {RUN} bytes at {at} of the {kind}",
                    file.display()
                );
            }
        }
    }
}

//! The audit log end to end: API calls and key changes are entries of it, `GET /v1/audit`
//! reads them (admin keys only), and `pipe audit verify` passes on the untouched log and
//! fails on a changed, a removed and a reordered entry, naming it each time, and on a log
//! cut off after a head it was given.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;

use crate::api::create_key;
use crate::util::PipeServer;

/// `pipe audit verify` on the data directory `data`: its exit code and what it printed.
async fn verify(data: &Path, head: Option<&str>) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipe"));
    cmd.args(["audit", "verify"]).env("PIPE_DATA_DIR", data);
    if let Some(head) = head {
        cmd.args(["--head", head]);
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A copy of the data directory `data` in `to`, with `tamper` (SQL) run on its catalog
/// the way someone with the file would: the append-only triggers dropped first.
async fn tampered(data: &Path, to: &Path, tamper: &str) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
    let url = format!("sqlite://{}", to.join("catalog.sqlite").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "DROP TRIGGER audit_entries_never_change; DROP TRIGGER audit_expires_from_the_start;",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::raw_sql(tamper).execute(&pool).await.unwrap();
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_calls_are_audited_and_verify_names_each_tampered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = PipeServer::start(dir.path(), &[]).await;
    let admin = create_key(&server, &["--role", "admin"]).await;
    let viewer = create_key(&server, &["--role", "viewer"]).await;
    let viewer_id = viewer.split('_').nth(1).unwrap().to_owned();
    let base = server.url();
    let client = reqwest::Client::new();

    let listed = client
        .get(format!("{base}/v1/recordings"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let refused = client
        .delete(format!("{base}/v1/keys/{viewer_id}"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let hidden = client
        .get(format!("{base}/v1/audit"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(
        hidden.status(),
        StatusCode::FORBIDDEN,
        "a viewer read the audit log"
    );

    let page: Value = client
        .get(format!("{base}/v1/audit?limit=1000"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = page["entries"].as_array().unwrap();
    let find = |action: &str, target: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action && e["target"] == target)
            .unwrap_or_else(|| panic!("no entry {action} on {target:?}: {page}"))
    };
    let list = find("GET /v1/recordings", "");
    assert_eq!(list["actor"], format!("key:{viewer_id}"));
    assert_eq!(list["role"], "viewer");
    assert_eq!(list["outcome"], "200");
    assert_eq!(
        find("DELETE /v1/keys/{id}", &format!("key:{viewer_id}"))["outcome"],
        "403"
    );
    assert_eq!(
        find("keys.create", &format!("key:{viewer_id}"))["actor"],
        "cli"
    );
    assert!(
        !page.to_string().contains(&viewer),
        "a whole key reached the audit log"
    );
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");

    // Checked with the server stopped, on copies of its data directory.
    server.kill().await;
    let data = server.data_dir.clone();
    let (code, said) = verify(&data, None).await;
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("holds"), "{said}");
    let head = said
        .split("head ")
        .nth(1)
        .map(|h| h.trim().to_owned())
        .expect("verify names the head");
    let last: u64 = head.split(':').next().unwrap().parse().unwrap();
    assert!(last >= 5, "only {last} entries");
    let (code, said) = verify(&data, Some(&head)).await;
    assert_eq!(code, 0, "the head it printed was refused: {said}");

    let scratch = tempfile::tempdir().unwrap();
    let cases = [
        (
            "one byte of one entry changed",
            "UPDATE audit SET outcome = '201' WHERE seq = 3".to_owned(),
            "entry 3: its content does not match its hash",
        ),
        (
            "one entry deleted",
            "DELETE FROM audit WHERE seq = 3".to_owned(),
            "entry 4: entry 3 is missing",
        ),
        (
            "two entries reordered",
            "UPDATE audit SET seq = -1 WHERE seq = 2; \
             UPDATE audit SET seq = 2 WHERE seq = 4; \
             UPDATE audit SET seq = 4 WHERE seq = -1"
                .to_owned(),
            "entry 2: it does not follow entry 1",
        ),
    ];
    for (n, (what, sql, named)) in cases.iter().enumerate() {
        let copy = scratch.path().join(n.to_string());
        tampered(&data, &copy, sql).await;
        let (code, said) = verify(&copy, None).await;
        assert_eq!(code, 1, "{what}: verify passed: {said}");
        assert!(said.contains(named), "{what}: {said}");
    }
    // The last entry removed: the chain itself holds, the head written earlier does not.
    let cut = scratch.path().join("cut");
    tampered(
        &data,
        &cut,
        &format!("DELETE FROM audit WHERE seq = {last}"),
    )
    .await;
    let (code, _) = verify(&cut, None).await;
    assert_eq!(code, 0, "a shorter chain still holds on its own");
    let (code, said) = verify(&cut, Some(&head)).await;
    assert_eq!(code, 1, "a cut-off log passed against its head: {said}");
    assert!(
        said.contains(&format!("entry {last} is not there")),
        "{said}"
    );
}

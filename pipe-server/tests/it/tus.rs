//! tus 1.0 uploads against the real server: the tus project's own clients (tus-js-client
//! in Node, tuspy in Python) upload a real MP4 unchanged through a `kill -9` of either
//! side, and it becomes a recording with its webhooks; the protocol's edge cases get the
//! answers tus 1.0 gives them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncBufReadExt as _;

use crate::api::create_key;
use crate::browser::{download, server_with_hooks};
use crate::util::{PipeServer, WEBHOOK_SECRET, WebhookReceiver, eventually};

const COPIED: &str = "video_copied_pipe_storage";
const OFFSET_STREAM: &str = "application/offset+octet-stream";
/// What the server writes of a PATCH at a time (`pipe_ingest::tus::PIECE`).
const PIECE: u64 = 4 << 20;

/// A real MP4 of about 8 MB (H.264 and AAC, its index at the end, as a camera leaves it),
/// made by the ffmpeg command line.
fn fixture_mp4(dir: &Path) -> PathBuf {
    let path = dir.join("fixture.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=960x540:rate=30")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t",
            "6",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "2",
        ])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg could not make the fixture");
    path
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// tus-js-client in Node (`tests/browser/tus-upload.mjs`).
fn tus_js(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("node");
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/tus-upload.mjs"
        ))
        .args(args);
    command
}

/// tuspy (`tests/tus/tuspy-upload.py`), from where `cargo xtask test` installs it.
fn tuspy(args: &[&str]) -> tokio::process::Command {
    let path = std::env::var_os("PIPE_TUSPY")
        .expect("PIPE_TUSPY names tuspy's directory: run the tests through `cargo xtask test`");
    let mut command = tokio::process::Command::new("python3");
    command
        .env("PYTHONPATH", path)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tus/tuspy-upload.py"
        ))
        .args(args);
    command
}

/// Runs a client to its end: the JSON lines it printed, and whether it exited with 0.
async fn run(mut command: tokio::process::Command) -> (Vec<Value>, std::process::ExitStatus) {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the client starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            said.push(serde_json::from_str::<Value>(&line).unwrap_or(json!({"raw": line})));
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("the client ended within 2 minutes");
    let status = child.wait().await.unwrap();
    (said, status)
}

fn said<'a>(lines: &'a [Value], key: &str) -> impl Iterator<Item = &'a Value> {
    lines.iter().filter_map(move |line| line.get(key))
}

/// `HEAD` of an upload: status, `Upload-Offset`, `Upload-Length`.
async fn head(url: &str) -> (StatusCode, Option<u64>, Option<u64>) {
    let response = reqwest::Client::new()
        .head(url)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    let number = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap())
    };
    (
        response.status(),
        number("upload-offset"),
        number("upload-length"),
    )
}

/// An upload's address as the client said it (`Location` is a path), whole.
fn absolute(server: &PipeServer, url: &str) -> String {
    match url.starts_with('/') {
        true => format!("{}{url}", server.url()),
        false => url.to_owned(),
    }
}

/// The recording id in an upload's address.
fn recording_of(url: &str) -> String {
    let last = url.rsplit('/').next().unwrap();
    last.split_once('.').unwrap().0.to_owned()
}

/// The upload became a recording like any other: converted and copied, told in signed
/// webhooks carrying the payload, its original the uploaded file byte for byte.
async fn assert_recorded(hooks: &WebhookReceiver, id: &str, file: &[u8], payload: &str) {
    let converted = hooks
        .wait_for(id, "video_converted", Duration::from_secs(120))
        .await;
    converted.verify(WEBHOOK_SECRET).unwrap();
    assert_eq!(
        converted.json["data"]["payload"], payload,
        "{}",
        converted.json
    );
    let copied = hooks.wait_for(id, COPIED, Duration::from_secs(60)).await;
    let url = copied.json["data"]["rawRecordingUrl"].as_str().unwrap();
    let (_, _, original) = download(url).await;
    assert_eq!(original.len(), file.len());
    assert_eq!(
        sha256_hex(&original),
        sha256_hex(file),
        "the stored original is not the uploaded file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_client_uploads_a_file_unchanged_through_a_kill_of_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let (server, hooks) = server_with_hooks(dir.path()).await;
    let path = fixture_mp4(dir.path());
    let file = std::fs::read(&path).unwrap();
    let endpoint = format!("{}/v1/uploads/", server.url());
    let payload = r#"{"user":7}"#;
    let metadata =
        json!({"filename": "fixture.mp4", "filetype": "video/mp4", "payload": payload}).to_string();
    let path = path.to_str().unwrap();
    let chunk = (256 << 10).to_string();

    // The client kills itself with SIGKILL once a quarter of the file is acknowledged.
    let quarter = (file.len() / 4).to_string();
    let (first, status) = run(tus_js(&[&endpoint, path, &chunk, &metadata, "", &quarter])).await;
    assert!(!status.success(), "the client was not killed: {first:?}");
    let url = said(&first, "url").next().expect("the upload was made");
    let url = absolute(&server, url.as_str().unwrap());
    let acked = said(&first, "acked")
        .filter_map(Value::as_u64)
        .max()
        .unwrap();
    let (status, offset, length) = head(&url).await;
    assert_eq!(status, StatusCode::OK);
    let offset = offset.unwrap();
    assert!(
        offset >= acked && offset < file.len() as u64,
        "offset {offset} after {acked} acknowledged of {}",
        file.len()
    );
    assert_eq!(length, Some(file.len() as u64));

    // Started again with the upload's address, it goes on from the durable offset.
    let (second, status) = run(tus_js(&[&endpoint, path, &chunk, &metadata, &url])).await;
    assert!(status.success(), "{second:?}");
    assert!(said(&second, "done").next().is_some(), "{second:?}");
    let resumed_from = said(&second, "acked")
        .filter_map(Value::as_u64)
        .min()
        .unwrap();
    assert!(resumed_from > offset, "the client started over: {second:?}");
    let (_, offset, _) = head(&url).await;
    assert_eq!(offset, Some(file.len() as u64));

    assert_recorded(&hooks, &recording_of(&url), &file, payload).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuspy_uploads_a_file_unchanged_through_a_kill_9_of_the_server_mid_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, hooks) = server_with_hooks(dir.path()).await;
    let path = fixture_mp4(dir.path());
    let file = std::fs::read(&path).unwrap();
    let endpoint = format!("{}/v1/uploads/", server.url());
    let payload = "tuspy";
    let metadata = json!({"filetype": "video/mp4", "payload": payload}).to_string();
    let path = path.to_str().unwrap();
    let chunk = (512 << 10).to_string();

    // tuspy sends its first 1 MiB in checksummed chunks and goes away.
    let (first, status) = run(tuspy(&[&endpoint, path, &chunk, &metadata, "", "1048576"])).await;
    assert!(status.success(), "{first:?}");
    let url = absolute(
        &server,
        said(&first, "url").next().unwrap().as_str().unwrap(),
    );
    let (_, offset, _) = head(&url).await;
    let offset = offset.unwrap();
    assert_eq!(offset, 1 << 20);

    // A PATCH of the next 5 MiB whose sender stalls once it has sent them: the server is
    // killed -9 while the request is in flight.
    let sent = 5 << 20;
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let request = reqwest::Client::new()
        .patch(&url)
        .header("tus-resumable", "1.0.0")
        .header("content-type", OFFSET_STREAM)
        .header("upload-offset", offset)
        .body(reqwest::Body::wrap_stream(rx))
        .send();
    let request = tokio::spawn(request);
    for piece in file[offset as usize..offset as usize + sent].chunks(256 << 10) {
        tx.send(Ok(Bytes::copy_from_slice(piece))).await.unwrap();
    }
    eventually(
        Duration::from_secs(20),
        "the first piece to be durable",
        async || {
            let (_, now, _) = head(&url).await;
            (now >= Some(offset + PIECE)).then_some(())
        },
    )
    .await;
    server.kill().await;
    drop(tx);
    assert!(
        request.await.unwrap().is_err(),
        "the PATCH outlived the server"
    );
    server.restart().await;
    let (status, durable, _) = head(&url).await;
    assert_eq!(status, StatusCode::OK);
    let durable = durable.unwrap();
    assert!(
        (offset + PIECE..=offset + sent as u64).contains(&durable),
        "offset {durable} after a kill mid-PATCH: the written piece was lost, or bytes \
         never sent are counted"
    );

    // tuspy started again with the address asks for the offset and finishes.
    let (second, status) = run(tuspy(&[&endpoint, path, &chunk, &metadata, &url])).await;
    assert!(status.success(), "{second:?}");
    assert!(said(&second, "done").next().is_some(), "{second:?}");
    assert_recorded(&hooks, &recording_of(&url), &file, payload).await;
}

/// A tus request to `url` with `headers`.
fn tus(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let mut request = client.request(method, url).header("tus-resumable", "1.0.0");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_else(|| panic!("no {name} in {response:?}"))
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_edge_cases_get_the_answers_of_tus_1_0() {
    use reqwest::Method;

    let dir = tempfile::tempdir().unwrap();
    let server = PipeServer::start(dir.path(), &[]).await;
    let key = create_key(&server, &["--role", "admin"]).await;
    let client = reqwest::Client::new();
    let base = server.url();
    let endpoint = format!("{base}/v1/uploads/");
    let site = "https://site.example";
    let changed = client
        .patch(format!("{base}/v1/environments/production"))
        .bearer_auth(&key)
        .json(
            &json!({"settings": {"allowed_hosts": ["site.example"], "max_recording_bytes": 1000}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let from_site = [("origin", site)];

    // Discovery.
    let options = client
        .request(Method::OPTIONS, &endpoint)
        .send()
        .await
        .unwrap();
    assert_eq!(options.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&options, "tus-version"), "1.0.0");
    for extension in [
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "expiration",
        "termination",
        "checksum",
    ] {
        assert!(
            header(&options, "tus-extension")
                .split(',')
                .any(|e| e == extension),
            "{extension} is not offered"
        );
    }
    assert_eq!(header(&options, "tus-checksum-algorithm"), "sha1,sha256");
    // From an allowed page, the environment's own limit.
    let options = client
        .request(Method::OPTIONS, &endpoint)
        .header("origin", site)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&options, "tus-max-size"), "1000");

    // A CORS preflight, then what a page may read of an answer.
    let preflight = client
        .request(Method::OPTIONS, format!("{endpoint}x.y"))
        .header("origin", site)
        .header("access-control-request-method", "PATCH")
        .header(
            "access-control-request-headers",
            "upload-offset,tus-resumable,content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&preflight, "access-control-allow-origin"), site);
    assert!(header(&preflight, "access-control-allow-methods").contains("PATCH"));
    let allowed = header(&preflight, "access-control-allow-headers").to_ascii_lowercase();
    for name in [
        "upload-offset",
        "tus-resumable",
        "content-type",
        "upload-checksum",
    ] {
        assert!(allowed.contains(name), "{name} may not be sent: {allowed}");
    }

    // No version: 412. Neither length nor deferral: 400. Too large for the environment:
    // 413. An origin the environment does not allow: 403.
    let unversioned = client
        .post(&endpoint)
        .header("upload-length", "10")
        .header("origin", site)
        .send()
        .await
        .unwrap();
    assert_eq!(unversioned.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(header(&unversioned, "tus-version"), "1.0.0");
    let post = |headers: Vec<(&'static str, String)>| {
        let mut request = tus(&client, Method::POST, &endpoint, &from_site);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    assert_eq!(
        post(vec![]).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(vec![("upload-length", "1001".into())])
            .await
            .unwrap()
            .status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        post(vec![("upload-length", "-1".into())])
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(vec![
            ("upload-metadata", "filetype !!!".into()),
            ("upload-length", "5".into())
        ])
        .await
        .unwrap()
        .status(),
        StatusCode::BAD_REQUEST
    );
    // A body of another type is no creation-with-upload: nothing of it is written.
    let typed = post(vec![
        ("upload-length", "5".into()),
        ("content-type", "application/json".into()),
    ])
    .await
    .unwrap();
    assert_eq!(typed.status(), StatusCode::CREATED);
    assert_eq!(header(&typed, "upload-offset"), "0");
    let evil = tus(
        &client,
        Method::POST,
        &endpoint,
        &[("origin", "https://evil.example")],
    )
    .header("upload-length", "10")
    .send()
    .await
    .unwrap();
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);

    // Creation with a deferred length, answered with what a page needs to read.
    let created = post(vec![
        ("upload-defer-length", "1".into()),
        (
            "upload-metadata",
            format!("filetype {},filename {}", b64("video/webm"), b64("me.webm")),
        ),
    ])
    .await
    .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(header(&created, "access-control-allow-origin"), site);
    let exposed = header(&created, "access-control-expose-headers").to_ascii_lowercase();
    for name in [
        "location",
        "upload-offset",
        "upload-expires",
        "tus-resumable",
    ] {
        assert!(exposed.contains(name), "{name} is not exposed: {exposed}");
    }
    let url = format!("{base}{}", header(&created, "location"));
    let head = tus(&client, Method::HEAD, &url, &from_site)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "upload-offset"), "0");
    assert_eq!(header(&head, "upload-defer-length"), "1");
    assert_eq!(header(&head, "cache-control"), "no-store");
    assert!(header(&head, "upload-metadata").contains(&b64("video/webm")));
    assert!(
        !header(&head, "upload-metadata").contains("filename"),
        "the file's name was kept"
    );
    assert!(header(&head, "upload-expires").ends_with(" GMT"));

    let patch = |offset: &str, body: &'static [u8], extra: Vec<(&'static str, String)>| {
        let mut request = tus(&client, Method::PATCH, &url, &from_site)
            .header("upload-offset", offset)
            .header("content-type", OFFSET_STREAM);
        for (name, value) in extra {
            request = request.header(name, value);
        }
        request.body(body).send()
    };
    let offset_of = |r: &reqwest::Response| header(r, "upload-offset").to_owned();

    // The wrong offset: 409. No content type: 415. No offset: 400.
    assert_eq!(
        patch("3", b"abc", vec![]).await.unwrap().status(),
        StatusCode::CONFLICT
    );
    let untyped = tus(&client, Method::PATCH, &url, &from_site)
        .header("upload-offset", "0")
        .body(&b"abc"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(untyped.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let no_offset = tus(&client, Method::PATCH, &url, &from_site)
        .header("content-type", OFFSET_STREAM)
        .body(&b"abc"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(no_offset.status(), StatusCode::BAD_REQUEST);

    // A checksum that does not match: 460, and the chunk is discarded whole.
    use base64::Engine as _;
    let digest = |algorithm: &str, data: &[u8]| {
        let b64 = &base64::engine::general_purpose::STANDARD;
        match algorithm {
            "sha1" => format!("sha1 {}", b64.encode(sha1::Sha1::digest(data))),
            _ => format!("sha256 {}", b64.encode(Sha256::digest(data))),
        }
    };
    let bad = patch(
        "0",
        b"hello",
        vec![("upload-checksum", digest("sha1", b"jello"))],
    )
    .await
    .unwrap();
    assert_eq!(bad.status().as_u16(), 460);
    assert_eq!(offset_of(&bad), "0");
    let unknown = patch(
        "0",
        b"hello",
        vec![("upload-checksum", "md5 XUFAKrxLKna5cZ2REBfFkg==".into())],
    )
    .await
    .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let good = patch(
        "0",
        b"hello",
        vec![("upload-checksum", digest("sha1", b"hello"))],
    )
    .await
    .unwrap();
    assert_eq!(good.status(), StatusCode::NO_CONTENT);
    assert_eq!(offset_of(&good), "5");
    // The deferred length told with a PATCH; past it nothing is written.
    let told = patch(
        "5",
        b" world",
        vec![
            ("upload-length", "12".into()),
            ("upload-checksum", digest("sha256", b" world")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(told.status(), StatusCode::NO_CONTENT);
    assert_eq!(offset_of(&told), "11");
    let head = tus(&client, Method::HEAD, &url, &from_site)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&head, "upload-length"), "12");
    let past = patch("11", b"!!", vec![]).await.unwrap();
    assert_eq!(past.status(), StatusCode::BAD_REQUEST);
    assert_eq!(offset_of(&past), "11");
    let changed = patch("11", b"", vec![("upload-length", "13".into())])
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::BAD_REQUEST);

    // A wrong token, an unknown upload: 404; another page: 403.
    let (id, _) = url.rsplit('/').next().unwrap().split_once('.').unwrap();
    for wrong in [
        format!("{endpoint}{id}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        format!("{endpoint}{id}"),
        format!("{endpoint}nosuchupload.token"),
    ] {
        let head = tus(&client, Method::HEAD, &wrong, &from_site)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::NOT_FOUND, "{wrong}");
    }
    let other_page = tus(
        &client,
        Method::HEAD,
        &url,
        &[("origin", "https://evil.example")],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(other_page.status(), StatusCode::FORBIDDEN);

    // Termination: 204, then 404.
    let deleted = tus(&client, Method::DELETE, &url, &from_site)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let head = tus(&client, Method::HEAD, &url, &from_site)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);

    // Creation with upload: the first bytes in the POST, and a finished upload is the
    // operator's, so it cannot be terminated.
    let with_body = tus(&client, Method::POST, &endpoint, &from_site)
        .header("upload-length", "4")
        .header("content-type", OFFSET_STREAM)
        .body(&b"\x1a\x45\xdf\xa3"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(with_body.status(), StatusCode::CREATED);
    assert_eq!(header(&with_body, "upload-offset"), "4");
    let finished = format!("{base}{}", header(&with_body, "location"));
    let head = tus(&client, Method::HEAD, &finished, &from_site)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            header(&head, "upload-offset"),
            header(&head, "upload-length")
        ),
        ("4", "4")
    );
    let (_, shown) = crate::api::get(
        &format!("{base}/v1/recordings/{}", recording_of(&finished)),
        &key,
    )
    .await;
    assert_eq!(
        (&shown["source"], &shown["upload_length"]),
        (&json!("upload"), &json!(4)),
        "{shown}"
    );
    let refused = tus(&client, Method::DELETE, &finished, &from_site)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Expiration: an upload older than its environment's abandonment time is gone (410),
    // and the sweep deletes it.
    let stale = post(vec![("upload-length", "100".into())]).await.unwrap();
    let stale = format!("{base}{}", header(&stale, "location"));
    let (stale_id, _) = stale.rsplit('/').next().unwrap().split_once('.').unwrap();
    let db = format!(
        "sqlite://{}",
        server.data_dir.join("catalog.sqlite").display()
    );
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    sqlx::query("UPDATE recordings SET created = created - 25 * 3600 * 1000 WHERE id = ?")
        .bind(stale_id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let head = tus(&client, Method::HEAD, &stale, &from_site)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::GONE);
    let late = tus(&client, Method::PATCH, &stale, &from_site)
        .header("upload-offset", "0")
        .header("content-type", OFFSET_STREAM)
        .body(&b"late"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), StatusCode::GONE);
}

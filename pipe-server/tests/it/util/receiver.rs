//! A webhook receiver on loopback that keeps every request it gets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use pipe_webhook::Verifier;
use serde_json::Value;

/// One request as received.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub json: Value,
}

impl Delivery {
    pub fn event(&self) -> &str {
        self.json["event"].as_str().unwrap_or_default()
    }

    pub fn recording(&self) -> &str {
        self.json["data"]["id"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn webhook_id(&self) -> &str {
        self.header("webhook-id").unwrap_or_default()
    }

    /// Checks the Standard Webhooks signature with `secret`, at the time of the check.
    pub fn verify(&self, secret: &str) -> Result<(), pipe_webhook::VerifyError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        Verifier::new(secret)
            .unwrap()
            .verify(&self.headers, &self.body, now)
    }
}

/// What the Standard Webhooks reference library (`standardwebhooks` on npm, run by
/// `tests/browser/verify-webhooks.mjs`) says of each delivery: `ok` or `error: <why>`.
pub async fn verify_with_reference_library(secret: &str, deliveries: &[Delivery]) -> Vec<String> {
    use base64::Engine as _;
    use tokio::io::AsyncWriteExt as _;

    let requests: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            let headers: serde_json::Map<String, Value> = d
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            serde_json::json!({
                "headers": headers,
                "body": base64::engine::general_purpose::STANDARD.encode(&d.body),
            })
        })
        .collect();
    let input = serde_json::json!({"secret": secret, "requests": requests}).to_string();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/browser/verify-webhooks.mjs"
    );
    let mut child = tokio::process::Command::new("node")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node runs the reference verifier");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "the reference verifier failed: {out:?}"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[derive(Clone, Default)]
pub struct WebhookReceiver {
    pub url: String,
    received: Arc<Mutex<Vec<Delivery>>>,
    /// An event whose deliveries are answered only after a while, and how long.
    hold: Arc<Mutex<Option<(String, Duration)>>>,
}

impl WebhookReceiver {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1").await
    }

    /// Listening on `host` (another loopback address, `127.0.0.3`, for tests that look
    /// for `127.0.0.1` where it must not be).
    pub async fn start_on(host: &str) -> Self {
        let listener = tokio::net::TcpListener::bind((host, 0)).await.unwrap();
        let receiver = Self {
            url: format!("http://{}/hooks", listener.local_addr().unwrap()),
            ..Self::default()
        };
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    /// Answers deliveries of `event` only after `delay` (each is recorded on arrival).
    pub fn hold(&self, event: &str, delay: Duration) {
        *self.hold.lock().unwrap() = Some((event.to_owned(), delay));
    }

    /// Every delivery so far, in arrival order.
    pub fn all(&self) -> Vec<Delivery> {
        self.received.lock().unwrap().clone()
    }

    /// Deliveries about `recording`.
    pub fn for_recording(&self, recording: &str) -> Vec<Delivery> {
        self.all()
            .into_iter()
            .filter(|d| d.recording() == recording)
            .collect()
    }

    /// Waits for the first delivery of `event` about `recording`.
    pub async fn wait_for(&self, recording: &str, event: &str, limit: Duration) -> Delivery {
        super::eventually(limit, &format!("{event} for {recording}"), async || {
            self.for_recording(recording)
                .into_iter()
                .find(|d| d.event() == event)
        })
        .await
    }
}

async fn receive(
    State(receiver): State<WebhookReceiver>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let delivery = Delivery {
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        body: body.to_vec(),
    };
    let hold = receiver.hold.lock().unwrap().clone();
    let delay = hold
        .filter(|(event, _)| event == delivery.event())
        .map(|(_, delay)| delay);
    receiver.received.lock().unwrap().push(delivery);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    "ok"
}

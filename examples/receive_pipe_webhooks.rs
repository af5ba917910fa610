//! A webhook receiver for Pipe's `pipe` format: what the hosted Pipe sends, so the same
//! code receives from either. The body is form-encoded with one `payload` field holding
//! the JSON (or, with `PIPE_WEBHOOK_CONTENT_TYPE=json`, the JSON itself), signed with
//! `X-Pipe-Signature` = base64(HMAC-SHA1(key, endpoint URL + JSON)).
//!
//! Run it with Pipe's webhook key and the URL exactly as the sender has it configured
//! (the signature covers it), then point `pipe serve` at it:
//!
//! ```sh
//! PIPE_WEBHOOK_KEY=… PIPE_WEBHOOK_URL=http://127.0.0.1:3002/hooks/pipe \
//!   cargo run -p pipe-examples --example receive_pipe_webhooks
//! PIPE_WEBHOOK_URL=http://127.0.0.1:3002/hooks/pipe PIPE_WEBHOOK_FORMAT=pipe \
//!   PIPE_WEBHOOK_KEY=… PIPE_WEBHOOK_CONTENT_TYPE=form \
//!   PIPE_WEBHOOK_ALLOW_ADDRESSES=127.0.0.1 pipe serve
//! ```
//!
//! Pipe's signature has no timestamp: a captured request can be replayed. Handle each
//! event once (by `data.id` and `event`), and prefer the `standard` format where you can.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use pipe_webhook::{PipeSignature, X_PIPE_SIGNATURE};

/// The receiver's state: the key, and the endpoint URL as Pipe signs it.
#[derive(Debug)]
pub struct Receiver {
    signature: PipeSignature,
    url: String,
}

/// The receiver's routes: `POST /hooks/pipe`.
pub fn router(key: &str, url: &str) -> Result<Router, pipe_core::Error> {
    let receiver = Arc::new(Receiver {
        signature: PipeSignature::new(key)?,
        url: url.to_owned(),
    });
    Ok(Router::new()
        .route("/hooks/pipe", post(receive))
        .with_state(receiver))
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let content_type = text(header::CONTENT_TYPE.as_str());
    let signature = text(X_PIPE_SIGNATURE);
    // Verifies and gives back the signed JSON: the `payload` field of a form, or the body.
    let json =
        match receiver
            .signature
            .verify_request(&receiver.url, content_type, &body, signature)
        {
            Ok(json) => json,
            Err(why) => {
                eprintln!("refused: {why}");
                return StatusCode::UNAUTHORIZED;
            }
        };
    let Ok(envelope) = serde_json::from_slice::<serde_json::Value>(&json) else {
        return StatusCode::BAD_REQUEST;
    };
    // As Pipe's documented receivers read it: `id` is a number, `videoName` the stream.
    println!(
        "{} for recording {} ({})",
        envelope["event"], envelope["data"]["id"], envelope["data"]["videoName"]
    );
    StatusCode::OK
}

#[allow(dead_code)] // The tests mount `router` without running `main`.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = std::env::var("PIPE_WEBHOOK_KEY")
        .map_err(|_| "set PIPE_WEBHOOK_KEY to Pipe's webhook key")?;
    let url = std::env::var("PIPE_WEBHOOK_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:3002/hooks/pipe".to_owned());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3002").await?;
    println!("receiving at {url}");
    axum::serve(listener, router(&key, &url)?).await?;
    Ok(())
}

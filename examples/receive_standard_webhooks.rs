//! A webhook receiver for Pipe's `standard` format: Standard Webhooks headers
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`) over a JSON body.
//!
//! Run it with the endpoint's `whsec_…` secret, then point `pipe serve` at it:
//!
//! ```sh
//! PIPE_WEBHOOK_SECRET=whsec_… cargo run -p pipe-examples --example receive_standard_webhooks
//! PIPE_WEBHOOK_URL=http://127.0.0.1:3001/hooks/pipe PIPE_WEBHOOK_SECRET=whsec_… \
//!   PIPE_WEBHOOK_ALLOW_ADDRESSES=127.0.0.1 pipe serve
//! ```
//!
//! (`PIPE_WEBHOOK_ALLOW_ADDRESSES` because the receiver is on loopback, where Pipe's SSRF
//! guard does not send webhooks unless told to.)
//!
//! What a receiver must do, and this one does: verify the signature over the **raw body
//! bytes** before parsing them; refuse requests signed too long ago (replays); answer 2xx
//! quickly; and handle each `webhook-id` once, since a retried event arrives again under
//! the same id.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use pipe_webhook::Verifier;

/// The receiver's state: its verifier, and the events it has handled.
#[derive(Debug)]
pub struct Receiver {
    verifier: Verifier,
    seen: Mutex<HashSet<String>>,
}

/// The receiver's routes: `POST /hooks/pipe`.
pub fn router(secret: &str) -> Result<Router, pipe_core::Error> {
    let receiver = Arc::new(Receiver {
        verifier: Verifier::new(secret)?,
        seen: Mutex::default(),
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
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if let Err(why) = receiver.verifier.verify(&headers, &body, now) {
        eprintln!("refused: {why}");
        return StatusCode::UNAUTHORIZED;
    }
    // Only now is the body trusted enough to parse.
    let Ok(envelope) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let id = headers
        .iter()
        .find(|(name, _)| *name == "webhook-id")
        .map_or("", |(_, value)| value);
    if !receiver.seen.lock().unwrap().insert(id.to_owned()) {
        return StatusCode::NO_CONTENT; // Delivered before: already handled.
    }
    println!(
        "{} for recording {}",
        envelope["event"], envelope["data"]["id"]
    );
    StatusCode::NO_CONTENT
}

#[allow(dead_code)] // The tests mount `router` without running `main`.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("PIPE_WEBHOOK_SECRET")
        .map_err(|_| "set PIPE_WEBHOOK_SECRET to the endpoint's whsec_… secret")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("receiving at http://127.0.0.1:3001/hooks/pipe");
    axum::serve(listener, router(&secret)?).await?;
    Ok(())
}

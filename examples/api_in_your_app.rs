//! Mounts Pipe's operator API inside your own axum app, beside your own routes, over a
//! catalog you own.
//!
//! Run it with:
//!
//! ```sh
//! cargo run -p pipe-examples --example api_in_your_app -- ./example-catalog.sqlite
//! ```
//!
//! It opens (or creates) the SQLite catalog, makes an admin key and prints it once, and
//! serves on 127.0.0.1:3000 your own `/` next to Pipe's `/v1/…` (with the OpenAPI
//! document at `/v1/openapi.json`) and Pipe's REST API v1 routes (`/video/all`, …). Try:
//!
//! ```sh
//! curl -H "Authorization: Bearer <the key>" http://127.0.0.1:3000/v1/recordings
//! ```

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use pipe_api::{Api, mint_key};
use pipe_core::{ApiKeyStore, Role};
use pipe_lifecycle::SqliteCatalog;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "example-catalog.sqlite".into());
    // One SQLite catalog holds recordings, environments and keys: it is all three stores.
    let catalog = Arc::new(SqliteCatalog::open(&path).await?);

    let minted = mint_key("example", Role::Admin, Vec::new());
    catalog.create_api_key(minted.record).await?;
    println!("admin key (shown once): {}", minted.key);

    let api = Api::builder(catalog.clone(), catalog.clone(), catalog).build();
    let app = Router::new()
        .route("/", get(|| async { "your own app\n" }))
        .merge(api.router())
        .merge(api.pipe_compat_router())
        .fallback(pipe_api::not_found);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("serving on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

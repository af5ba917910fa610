//! The browser recorder, served by the crate: a dependency-free ES module and a demo
//! page that embeds it.

use axum::http::header;
use axum::response::IntoResponse;

/// The recorder's ES module (`recorder/pipe-recorder.js`).
pub const SCRIPT: &str = include_str!("../recorder/pipe-recorder.js");

/// A page that embeds the recorder with a Record and a Stop button
/// (`recorder/demo.html`).
pub const DEMO_HTML: &str = include_str!("../recorder/demo.html");

pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
}

pub(crate) async fn demo() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        DEMO_HTML,
    )
}

//! pipe-lifecycle's integration tests: one binary (see STYLE.md), real SQLite files, real
//! FFmpeg.

mod api_keys;
mod catalog;
mod delivery;
mod endpoints;
mod environments;
mod outage;
mod pipeline;
#[cfg(feature = "catalog-postgres")]
mod postgres;
#[cfg(feature = "catalog-postgres")]
mod postgres_stores;
mod recording_keys;
mod retention;
mod util;

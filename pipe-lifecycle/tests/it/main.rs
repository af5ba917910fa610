//! pipe-lifecycle's integration tests: one binary (see STYLE.md), real SQLite files, real
//! FFmpeg.

mod catalog;
mod pipeline;
mod util;

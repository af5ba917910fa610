//! End-to-end tests of the `pipe` server with real parts: the binary as a child process,
//! a real SQLite file, real FFmpeg, Debian's Chromium with its fake camera driving the
//! real recorder, and a real HTTP webhook receiver, all on loopback.

mod api;
mod audit;
mod backup;
mod browser;
mod erasure;
mod listener;
mod nodes;
mod personal;
mod stream;
mod tls;
mod tus;
mod util;

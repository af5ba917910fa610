//! Conformance suites: async test functions that every implementation of a trait calls
//! against its real backend, so that all backends keep the same contract.
//!
//! ```ignore
//! #[tokio::test]
//! async fn local_spool_conforms() {
//!     let dir = tempfile::tempdir().unwrap();
//!     let spool = LocalSpool::open(dir.path()).await.unwrap();
//!     pipe_core::conformance::spool::run_all(&spool).await;
//! }
//! ```
//!
//! Each function panics with a message naming the broken promise.

pub mod catalog;
pub mod sink;
pub mod spool;

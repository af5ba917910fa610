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

pub mod api_keys;
pub mod audit;
pub mod catalog;
pub mod contention;
pub mod endpoints;
pub mod environments;
pub mod recording_keys;
pub mod sink;
pub mod spool;

use std::fmt::Debug;

use crate::{Error, Result};

/// The checks of one trait's contract: every failure names the trait and the promise.
struct Contract(&'static str);

impl Contract {
    /// The value of `result`, or a panic naming the broken `promise` and the failed `call`.
    #[track_caller]
    fn ok<T>(&self, result: Result<T>, promise: &str, call: &str) -> T {
        match result {
            Ok(value) => value,
            Err(e) => panic!("{} contract broken ({promise}): {call} failed: {e}", self.0),
        }
    }

    /// Nothing if `result` is an error that `expected` accepts; a panic otherwise.
    #[track_caller]
    fn expect_err<T: Debug>(
        &self,
        result: Result<T>,
        promise: &str,
        call: &str,
        expected: fn(&Error) -> bool,
    ) {
        let name = self.0;
        match result {
            Ok(value) => panic!(
                "{name} contract broken ({promise}): {call} succeeded with {value:?}, expected an error"
            ),
            Err(e) if expected(&e) => {}
            Err(e) => {
                panic!(
                    "{name} contract broken ({promise}): {call} failed with the wrong error: {e:?}"
                )
            }
        }
    }
}

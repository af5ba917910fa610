//! # pipe-http
//!
//! The small HTTP vocabulary every Pipe edge speaks, so that the ingest, the download
//! links and the REST API answer alike:
//!
//! - [`Problem`]: errors as `application/problem+json` (RFC 9457), each with a stable
//!   `type` a client can match on, a `detail` that says what to fix and, for bad input,
//!   the failing field;
//! - [`TokenSigner`]: HMAC-SHA256 capability tokens with a domain per use (resume tokens
//!   of the streaming protocol, download links, playback links), compared in constant
//!   time;
//! - [`ByteRange`]: one `Range: bytes=…` of RFC 9110 against a file of known size.
//!
//! ```
//! use pipe_http::{Problem, TokenSigner};
//!
//! let signer = TokenSigner::new(b"a server secret".to_vec());
//! let token = signer.sign("files", &["a/b.mp4", "1700000000"]);
//! assert!(signer.verify("files", &["a/b.mp4", "1700000000"], &token));
//! assert!(!signer.verify("files", &["a/c.mp4", "1700000000"], &token));
//!
//! let problem = Problem::not_found("recording 42");
//! assert_eq!(problem.status.as_u16(), 404);
//! ```
//!
//! It depends on `pipe-core` and axum only; it has no state and starts nothing.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod problem;
mod range;
mod token;

pub use problem::{PROBLEM_JSON, Problem, ProblemType};
pub use range::ByteRange;
pub use token::TokenSigner;

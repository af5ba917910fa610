use std::fmt;

/// `Result` with Pipe's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, in terms a caller can act on.
///
/// Backends decide whether a failure is worth retrying ([`Error::is_retryable`]); the
/// retry machinery reads only that, never a provider's own codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing named does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `recording 3f…` or `object a/b.mp4`.
        what: String,
    },
    /// The thing to create exists already.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What exists.
        what: String,
    },
    /// A precondition of the operation does not hold (wrong state, lost lease, stale
    /// version, offset past the durable end, …). Nothing was changed.
    #[error("precondition failed: {detail}")]
    Precondition {
        /// Which precondition, in words.
        detail: String,
    },
    /// The input is malformed or out of bounds. Retrying it will not help.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// What was invalid.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// Stored bytes failed an integrity check (size, checksum, authentication tag).
    #[error("integrity check failed: {detail}")]
    Integrity {
        /// What did not match.
        detail: String,
    },
    /// The operation is not offered by this implementation.
    #[error("{backend} does not support {operation}")]
    NotSupported {
        /// The implementation.
        backend: &'static str,
        /// The operation.
        operation: &'static str,
    },
    /// The media could not be read or converted. Permanent for this input.
    #[error("media: {detail}")]
    Media {
        /// Why, in words a person can act on.
        detail: String,
    },
    /// A backend failed; `retryable` says whether the same call may succeed later.
    #[error("{backend}: {source}")]
    Backend {
        /// The implementation that failed, e.g. `sqlite`, `local-spool`, `webhook`.
        backend: &'static str,
        /// Whether the same call may succeed later (timeouts, 5xx, busy databases).
        retryable: bool,
        /// The underlying error.
        #[source]
        source: Source,
    },
}

impl Error {
    /// `NotFound` for `what`.
    pub fn not_found(what: impl fmt::Display) -> Self {
        Self::NotFound {
            what: what.to_string(),
        }
    }

    /// `Precondition` with `detail`.
    pub fn precondition(detail: impl fmt::Display) -> Self {
        Self::Precondition {
            detail: detail.to_string(),
        }
    }

    /// `Invalid` for `what` with `detail`.
    pub fn invalid(what: &'static str, detail: impl fmt::Display) -> Self {
        Self::Invalid {
            what,
            detail: detail.to_string(),
        }
    }

    /// A temporary backend failure: retrying may succeed.
    pub fn temporary(backend: &'static str, source: impl Into<Source>) -> Self {
        Self::Backend {
            backend,
            retryable: true,
            source: source.into(),
        }
    }

    /// A temporary backend failure whose cause said when to try again (an HTTP
    /// `Retry-After`); retry machinery waits at least `after` ([`Error::retry_after`]).
    pub fn temporary_after(
        backend: &'static str,
        source: impl Into<Source>,
        after: std::time::Duration,
    ) -> Self {
        Self::Backend {
            backend,
            retryable: true,
            source: Box::new(RetryAfter {
                after,
                source: source.into(),
            }),
        }
    }

    /// How long the failed call asked to be left alone, if it said
    /// ([`Error::temporary_after`]).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Backend {
                retryable: true,
                source,
                ..
            } => source.downcast_ref::<RetryAfter>().map(|r| r.after),
            _ => None,
        }
    }

    /// A permanent backend failure: retrying will not help.
    pub fn permanent(backend: &'static str, source: impl Into<Source>) -> Self {
        Self::Backend {
            backend,
            retryable: false,
            source: source.into(),
        }
    }

    /// Whether the same call may succeed later. Only temporary backend failures are.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Backend {
                retryable: true,
                ..
            }
        )
    }

    /// Whether this is [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// Whether this is [`Error::Precondition`].
    pub fn is_precondition(&self) -> bool {
        matches!(self, Self::Precondition { .. })
    }
}

impl From<std::io::Error> for Error {
    /// I/O errors are temporary unless their kind says the input is at fault.
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        match e.kind() {
            NotFound => Self::NotFound {
                what: e.to_string(),
            },
            InvalidInput | InvalidData | UnexpectedEof => Self::Invalid {
                what: "data",
                detail: e.to_string(),
            },
            _ => Self::temporary("io", e),
        }
    }
}

/// The source of an [`Error::temporary_after`]: the failure, and when to try again. It
/// reads as the failure itself.
#[derive(Debug)]
struct RetryAfter {
    after: std::time::Duration,
    source: Source,
}

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for RetryAfter {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}

#[cfg(test)]
mod retry_after_tests {
    use std::time::Duration;

    use super::Error;

    #[test]
    fn a_retry_after_is_kept_and_the_error_reads_as_its_cause() {
        let e = Error::temporary_after(
            "webhook",
            "hooks.example answered 503",
            Duration::from_secs(120),
        );
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
        assert_eq!(e.to_string(), "webhook: hooks.example answered 503");
        assert_eq!(Error::temporary("webhook", "503").retry_after(), None);
    }
}

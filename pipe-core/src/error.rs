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
    /// A backend refused the credentials or the access (a wrong password or key, a
    /// bucket policy, a revoked token). An operator must fix it: retrying will not help.
    #[error("{backend}: permission denied: {detail}")]
    PermissionDenied {
        /// The implementation that was refused, e.g. `object-store`, `sftp`.
        backend: &'static str,
        /// What was refused, in the backend's words.
        detail: String,
    },
    /// A backend asked to be called less often (HTTP 429, S3's `SlowDown`). Retrying
    /// later succeeds; `retry_after` is how long it asked to be left alone, if it said.
    #[error("{backend}: rate limited: {detail}")]
    RateLimited {
        /// The implementation that is limiting.
        backend: &'static str,
        /// How long to wait, if the backend said.
        retry_after: Option<std::time::Duration>,
        /// What it said.
        detail: String,
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
    /// ([`Error::temporary_after`], [`Error::RateLimited`]).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Backend {
                retryable: true,
                source,
                ..
            } => source.downcast_ref::<RetryAfter>().map(|r| r.after),
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// `PermissionDenied` by `backend`, saying what was refused.
    pub fn permission_denied(backend: &'static str, detail: impl fmt::Display) -> Self {
        Self::PermissionDenied {
            backend,
            detail: detail.to_string(),
        }
    }

    /// `RateLimited` by `backend`, to be retried after `retry_after` if it said.
    pub fn rate_limited(
        backend: &'static str,
        detail: impl fmt::Display,
        retry_after: Option<std::time::Duration>,
    ) -> Self {
        Self::RateLimited {
            backend,
            retry_after,
            detail: detail.to_string(),
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

    /// Whether the same call may succeed later: temporary backend failures and rate
    /// limits are; nothing else is. This is the one place retryability is decided from
    /// an error's kind (backends decide which kind a failure is).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Backend {
                retryable: true,
                ..
            } | Self::RateLimited { .. }
        )
    }

    /// Whether this is [`Error::PermissionDenied`]: credentials or access an operator must
    /// fix.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::PermissionDenied { .. })
    }

    /// Whether an I/O error of `kind` will recur on retry: a fault in the configuration,
    /// the permissions or the input that an operator must fix. A full disk, an interrupted
    /// call or a device error may clear, so those are not permanent. The one table of
    /// I/O kinds: [`From<std::io::Error>`](#impl-From%3CError%3E-for-Error) and every
    /// backend that maps I/O errors use it.
    pub fn is_permanent_io(kind: std::io::ErrorKind) -> bool {
        use std::io::ErrorKind::*;
        matches!(
            kind,
            PermissionDenied
                | ReadOnlyFilesystem
                | NotADirectory
                | IsADirectory
                | InvalidInput
                | InvalidFilename
                | FileTooLarge
                | Unsupported
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
    /// By the error's kind: `NotFound`; `Invalid` for bad input (including data that does
    /// not decode, or ends early: what was being read in process is at fault);
    /// `PermissionDenied`; a permanent failure for the other kinds
    /// [`Error::is_permanent_io`] names; else a temporary one.
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
            PermissionDenied => Self::permission_denied("io", e),
            kind if Self::is_permanent_io(kind) => Self::permanent("io", e),
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
mod retryability_tests {
    use std::io;
    use std::time::Duration;

    use super::Error;

    #[test]
    fn one_table_decides_what_is_retried() {
        assert!(!Error::permission_denied("object-store", "403 AccessDenied").is_retryable());
        let limited = Error::rate_limited("dropbox", "429", Some(Duration::from_secs(30)));
        assert!(limited.is_retryable());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(30)));
        assert!(Error::rate_limited("s3", "SlowDown", None).is_retryable());
        for kind in [
            io::ErrorKind::PermissionDenied,
            io::ErrorKind::ReadOnlyFilesystem,
            io::ErrorKind::InvalidInput,
            io::ErrorKind::Unsupported,
        ] {
            assert!(Error::is_permanent_io(kind), "{kind:?}");
            assert!(
                !Error::from(io::Error::from(kind)).is_retryable(),
                "{kind:?}"
            );
        }
        for kind in [
            io::ErrorKind::StorageFull,
            io::ErrorKind::Interrupted,
            io::ErrorKind::TimedOut,
            io::ErrorKind::ConnectionReset,
        ] {
            assert!(!Error::is_permanent_io(kind), "{kind:?}");
            assert!(
                Error::from(io::Error::from(kind)).is_retryable(),
                "{kind:?}"
            );
        }
        assert!(
            Error::from(io::Error::from(io::ErrorKind::PermissionDenied)).is_permission_denied()
        );
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

//! `object_store` errors as [`pipe_core::Error`]s a caller can act on.

use std::error::Error as StdError;
use std::io;

use pipe_core::{Error, ObjectKey};

/// The name of this backend in [`Error::Backend`].
pub(super) const BACKEND: &str = "object-store";

/// Maps an error of `operation` on `key`.
pub(super) fn map_error(e: object_store::Error, key: &ObjectKey, operation: &'static str) -> Error {
    use object_store::Error as E;
    match e {
        // Nothing is "not found" about an object being written: the place it goes is
        // missing (a bucket or container deleted or misspelt), which an operator must fix.
        E::NotFound { .. } if operation == "put" => {
            Error::not_found(format_args!("the bucket or container for {key}"))
        }
        E::NotFound { .. } => Error::not_found(format_args!("object {key}")),
        E::AlreadyExists { .. } => Error::AlreadyExists {
            what: format!("object {key}"),
        },
        E::Precondition { .. } | E::NotModified { .. } => Error::precondition(e),
        E::NotSupported { .. } | E::NotImplemented { .. } => Error::NotSupported {
            backend: BACKEND,
            operation,
        },
        E::InvalidPath { source } => Error::invalid("object key", source),
        // Credentials and access: an operator has to act.
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
            Error::permission_denied(BACKEND, e)
        }
        E::UnknownConfigurationKey { .. } => Error::permanent(BACKEND, e),
        // `Generic` and whatever a later version adds: the stores retry HTTP errors
        // themselves, so what reaches us is decided by the I/O error underneath, if any.
        e if io_kind(&e).is_some_and(Error::is_permanent_io) => Error::permanent(BACKEND, e),
        e => Error::temporary(BACKEND, e),
    }
}

/// The kind of the first I/O error in `e`'s chain of sources.
fn io_kind(e: &(dyn StdError + 'static)) -> Option<io::ErrorKind> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ObjectKey {
        ObjectKey::new("a/b.bin").unwrap()
    }

    fn generic(source: io::Error) -> object_store::Error {
        object_store::Error::Generic {
            store: "test",
            source: Box::new(source),
        }
    }

    #[test]
    fn actionable_variants_keep_their_meaning() {
        let not_found = object_store::Error::NotFound {
            path: "a/b.bin".into(),
            source: "gone".into(),
        };
        assert!(map_error(not_found, &key(), "get").is_not_found());
        let exists = object_store::Error::AlreadyExists {
            path: "a/b.bin".into(),
            source: "there".into(),
        };
        assert!(matches!(
            map_error(exists, &key(), "put"),
            Error::AlreadyExists { .. }
        ));
        let stale = object_store::Error::Precondition {
            path: "a/b.bin".into(),
            source: "etag".into(),
        };
        assert!(map_error(stale, &key(), "put").is_precondition());
        let unsupported = map_error(
            object_store::Error::NotImplemented {
                operation: "put".into(),
                implementer: "test".into(),
            },
            &key(),
            "put",
        );
        assert!(matches!(
            unsupported,
            Error::NotSupported {
                operation: "put",
                ..
            }
        ));
    }

    #[test]
    fn retryability_follows_the_io_error_underneath() {
        let full = map_error(
            generic(io::Error::from(io::ErrorKind::StorageFull)),
            &key(),
            "put",
        );
        assert!(full.is_retryable(), "a full disk may clear: {full:?}");
        let denied = map_error(
            generic(io::Error::from(io::ErrorKind::PermissionDenied)),
            &key(),
            "put",
        );
        assert!(
            matches!(
                denied,
                Error::Backend {
                    retryable: false,
                    ..
                }
            ),
            "{denied:?}"
        );
        let creds = object_store::Error::Unauthenticated {
            path: "a".into(),
            source: "bad key".into(),
        };
        let creds = map_error(creds, &key(), "put");
        assert!(!creds.is_retryable());
        assert!(creds.is_permission_denied(), "{creds:?}");
    }
}

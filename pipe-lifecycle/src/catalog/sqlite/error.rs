//! sqlx's errors in Pipe's terms.

use pipe_core::Error;
use sqlx::error::ErrorKind;

/// SQLite's primary result codes that mean "another connection holds the lock".
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;

/// Maps an sqlx error to the [`Error`] variant a caller can act on: a busy or locked
/// database and an exhausted pool are temporary; a unique violation is `AlreadyExists`;
/// other constraint violations are `Precondition`; the rest is permanent.
pub(super) fn from_sqlx(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::Database(db) => {
            let primary = db
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .map(|c| c & 0xff);
            match db.kind() {
                ErrorKind::UniqueViolation => Error::AlreadyExists {
                    what: db.message().to_owned(),
                },
                ErrorKind::ForeignKeyViolation
                | ErrorKind::NotNullViolation
                | ErrorKind::CheckViolation => Error::precondition(db.message()),
                _ if matches!(primary, Some(SQLITE_BUSY | SQLITE_LOCKED)) => {
                    Error::temporary("sqlite", db)
                }
                _ => Error::permanent("sqlite", db),
            }
        }
        sqlx::Error::RowNotFound => Error::not_found("row"),
        e @ (sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed) => {
            Error::temporary("sqlite", e)
        }
        e => Error::permanent("sqlite", e),
    }
}

impl crate::catalog::CatalogRow for sqlx::sqlite::SqliteRow {
    fn value<T: crate::catalog::Value>(&self, column: &str) -> pipe_core::Result<T> {
        T::from_sqlite(self, column).map_err(from_sqlx)
    }
}

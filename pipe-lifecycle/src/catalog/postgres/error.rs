//! sqlx's PostgreSQL errors in Pipe's terms.

use pipe_core::Error;
use sqlx::error::ErrorKind;

/// SQLSTATEs that mean "try again": a serialization failure, a deadlock, a lock not
/// available, and the server going away or refusing connections for now.
const RETRYABLE: &[&str] = &["40001", "40P01", "55P03", "57P01", "57P03", "53300"];

/// Maps an sqlx error to the [`Error`] variant a caller can act on: a transaction that
/// lost a race, a lost connection and an exhausted pool are temporary; a unique violation
/// is `AlreadyExists`; other constraint violations are `Precondition`; the rest is
/// permanent.
pub(super) fn from_sqlx(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => Error::AlreadyExists {
                what: db.message().to_owned(),
            },
            ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation => Error::precondition(db.message()),
            _ if db.code().is_some_and(|c| RETRYABLE.contains(&c.as_ref())) => {
                Error::temporary("postgres", db)
            }
            _ => Error::permanent("postgres", db),
        },
        sqlx::Error::RowNotFound => Error::not_found("row"),
        e @ (sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)) => Error::temporary("postgres", e),
        e => Error::permanent("postgres", e),
    }
}

impl crate::catalog::CatalogRow for sqlx::postgres::PgRow {
    fn value<T: crate::catalog::Value>(&self, column: &str) -> pipe_core::Result<T> {
        T::from_postgres(self, column).map_err(from_sqlx)
    }
}

//! Catalog backends: one module and one feature each, reading rows into Pipe's types
//! alike ([`rows`]).

#[cfg(any(feature = "catalog-sqlite", feature = "catalog-postgres"))]
mod deliveries;
#[cfg(any(feature = "catalog-sqlite", feature = "catalog-postgres"))]
mod list;
#[cfg(feature = "catalog-postgres")]
mod postgres;
#[cfg(any(feature = "catalog-sqlite", feature = "catalog-postgres"))]
mod rows;
#[cfg(any(feature = "catalog-sqlite", feature = "catalog-postgres"))]
mod sealed;
#[cfg(feature = "catalog-sqlite")]
mod sqlite;

#[cfg(feature = "catalog-postgres")]
pub use postgres::PostgresCatalog;
#[cfg(feature = "catalog-sqlite")]
pub use sqlite::SqliteCatalog;

/// `SELECT` list of a recording row, as [`rows::recording`](rows::recording) reads it.
#[cfg(any(feature = "catalog-sqlite", feature = "catalog-postgres"))]
pub(crate) const RECORDING_COLUMNS: &str = "id, environment, state, version, created, updated, mime_type, \
     payload, length, media, failure, deleting, deletion_reason, number, ip, user_agent, referer, \
     camera_name, microphone_name, anonymized, source, upload_length";

/// `SELECT` list of an erased recording's row, as [`rows::tombstone`](rows::tombstone) reads it.
#[cfg(any(feature = "catalog-sqlite", feature = "catalog-postgres"))]
pub(crate) const TOMBSTONE_COLUMNS: &str = "id, number, environment, created, deleting, erased, \
     deletion_reason";

/// `SELECT` list of a job row, as [`rows::job_record`](rows::job_record) reads it.
#[cfg(any(feature = "catalog-sqlite", feature = "catalog-postgres"))]
pub(crate) const JOB_COLUMNS: &str = "id, payload, status, attempts, last_error, run_at";

/// A value of a column, as every enabled backend decodes it.
#[cfg(any(feature = "catalog-sqlite", feature = "catalog-postgres"))]
pub(crate) trait Value: Sized + Send {
    #[cfg(feature = "catalog-sqlite")]
    fn from_sqlite(row: &sqlx::sqlite::SqliteRow, column: &str) -> sqlx::Result<Self>;
    #[cfg(feature = "catalog-postgres")]
    fn from_postgres(row: &sqlx::postgres::PgRow, column: &str) -> sqlx::Result<Self>;
}

#[cfg(any(feature = "catalog-sqlite", feature = "catalog-postgres"))]
macro_rules! values {
    ($($t:ty),*) => {$(
        impl Value for $t {
            #[cfg(feature = "catalog-sqlite")]
            fn from_sqlite(row: &sqlx::sqlite::SqliteRow, column: &str) -> sqlx::Result<Self> {
                sqlx::Row::try_get(row, column)
            }
            #[cfg(feature = "catalog-postgres")]
            fn from_postgres(row: &sqlx::postgres::PgRow, column: &str) -> sqlx::Result<Self> {
                sqlx::Row::try_get(row, column)
            }
        }
    )*};
}

#[cfg(any(feature = "catalog-sqlite", feature = "catalog-postgres"))]
values!(
    i64,
    String,
    Option<i64>,
    Option<String>,
    Vec<u8>,
    Option<Vec<u8>>
);

/// A row of either backend.
#[cfg(any(feature = "catalog-sqlite", feature = "catalog-postgres"))]
pub(crate) trait CatalogRow {
    /// The value of `column`; a type mismatch is an error, not a panic.
    fn value<T: Value>(&self, column: &str) -> pipe_core::Result<T>;
}

/// A stored value this binary cannot read: the database was written by something else.
#[cfg(any(feature = "catalog-sqlite", feature = "catalog-postgres"))]
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> pipe_core::Error {
    pipe_core::Error::permanent("catalog", format!("stored {what} is unreadable: {detail}"))
}

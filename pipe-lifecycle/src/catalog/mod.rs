//! Catalog backends: one module and one feature each.

#[cfg(feature = "catalog-sqlite")]
mod sqlite;

#[cfg(feature = "catalog-sqlite")]
pub use sqlite::SqliteCatalog;

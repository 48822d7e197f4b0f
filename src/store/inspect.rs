//! What a database holds at rest, read past the store: for Waymark's tests (sealed credentials,
//! erased personal data, hashed addresses, carrier calls counted) and for an operator checking
//! the same by hand. Nothing else reads tables directly.

use super::{Backend, StoreError};

/// Every value of the text column `table.column` of the database at `url`, as stored.
pub async fn text_column(
    url: &str,
    table: &str,
    column: &str,
) -> Result<Vec<Option<String>>, StoreError> {
    plain(table, column)?;
    let query = format!("SELECT {column} FROM {table}");
    match Backend::of(url)? {
        Backend::Sqlite => super::sqlite::text_column(url, &query).await,
        Backend::Postgres => super::postgres::text_column(url, &query).await,
    }
}

/// The sum of the integer column `table.column` of the database at `url` (0 for no rows).
pub async fn integer_sum(url: &str, table: &str, column: &str) -> Result<i64, StoreError> {
    plain(table, column)?;
    let query = format!("SELECT CAST(COALESCE(SUM({column}), 0) AS BIGINT) FROM {table}");
    match Backend::of(url)? {
        Backend::Sqlite => super::sqlite::integer(url, &query).await,
        Backend::Postgres => super::postgres::integer(url, &query).await,
    }
}

/// Only plain names go into the statements.
fn plain(table: &str, column: &str) -> Result<(), StoreError> {
    let plain =
        |name: &str| !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    if plain(table) && plain(column) {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            table: "(inspect)",
            detail: format!("`{table}.{column}` is not a plain table and column name"),
        })
    }
}

//! The SQLite side of the store conformance suite: a migrated database in a fresh directory.

use anyhow::Context;
use async_trait::async_trait;
use sqlx::{Row, TypeInfo, ValueRef};
use std::sync::Arc;
use tempfile::TempDir;

use super::SqliteStore;
use crate::store::Store;
use crate::store::conformance::{Arg, Backend, Cell, Harness};

/// A database file of a test's own; the directory goes with the last handle.
struct SqliteBackend {
    _dir: TempDir,
    url: String,
    store: SqliteStore,
}

/// A migrated store in a fresh directory, with its URL; the directory lives as long as the
/// returned guard.
pub(crate) async fn fresh() -> anyhow::Result<(TempDir, String, SqliteStore)> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("waymark.db").display());
    let store = SqliteStore::connect(&url, crate::vault::Vault::generate())
        .await
        .context("connect")?;
    store.migrate().await.context("migrate")?;
    Ok((dir, url, store))
}

/// A migrated SQLite store in a fresh directory.
pub(in crate::store) async fn harness() -> anyhow::Result<Harness> {
    let (dir, url, store) = fresh().await?;
    let backend = Arc::new(SqliteBackend {
        _dir: dir,
        url,
        store: store.clone(),
    });
    Ok(Harness::new(Arc::new(store), backend))
}

fn bind<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for arg in args {
        query = match arg {
            Arg::Int(n) => query.bind(*n),
            Arg::Text(t) => query.bind(t.as_str()),
        };
    }
    query
}

#[async_trait]
impl Backend for SqliteBackend {
    async fn rows(&self, sql: &str, args: &[Arg]) -> anyhow::Result<Vec<Vec<Cell>>> {
        let rows = bind(sqlx::query(sql), args)
            .fetch_all(self.store.writer())
            .await?;
        rows.iter()
            .map(|row| {
                (0..row.columns().len())
                    .map(|i| {
                        let raw = row.try_get_raw(i)?;
                        if raw.is_null() {
                            return Ok(Cell::Null);
                        }
                        let kind = raw.type_info().name().to_owned();
                        Ok(match kind.as_str() {
                            "INTEGER" | "BOOLEAN" => Cell::Int(row.try_get(i)?),
                            _ => Cell::Text(row.try_get(i)?),
                        })
                    })
                    .collect()
            })
            .collect()
    }

    async fn exec(&self, sql: &str, args: &[Arg]) -> anyhow::Result<u64> {
        Ok(bind(sqlx::query(sql), args)
            .execute(self.store.writer())
            .await?
            .rows_affected())
    }

    async fn another(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(Arc::new(
            SqliteStore::connect(&self.url, crate::vault::Vault::generate()).await?,
        ))
    }
}

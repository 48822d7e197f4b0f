//! The PostgreSQL side of the store conformance suite: a fresh database on the test process's
//! throwaway cluster.

use async_trait::async_trait;
use sqlx::{Row, TypeInfo, ValueRef};
use std::sync::Arc;

use super::PostgresStore;
use super::throwaway::ThrowawayCluster;
use crate::store::Store;
use crate::store::conformance::{Arg, Backend, Cell, Harness};

struct PostgresBackend {
    url: String,
    store: PostgresStore,
}

/// A migrated PostgreSQL store on a fresh database.
pub(in crate::store) async fn harness() -> anyhow::Result<Harness> {
    let url = ThrowawayCluster::shared()?.fresh_database().await?;
    let store = PostgresStore::connect(&url, crate::vault::Vault::generate()).await?;
    store.migrate().await?;
    let backend = Arc::new(PostgresBackend {
        url,
        store: store.clone(),
    });
    Ok(Harness::new(Arc::new(store), backend))
}

/// SQLite's `?N` placeholders as PostgreSQL's `$N`.
fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn bind<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for arg in args {
        query = match arg {
            Arg::Int(n) => query.bind(*n),
            Arg::Text(t) => query.bind(t.as_str()),
        };
    }
    query
}

#[async_trait]
impl Backend for PostgresBackend {
    async fn rows(&self, sql: &str, args: &[Arg]) -> anyhow::Result<Vec<Vec<Cell>>> {
        let sql = placeholders(sql);
        let rows = bind(sqlx::query(&sql), args)
            .fetch_all(self.store.pool())
            .await?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        let raw = row.try_get_raw(i)?;
                        if raw.is_null() {
                            return Ok(Cell::Null);
                        }
                        let kind = raw.type_info().name().to_owned();
                        Ok(match kind.as_str() {
                            "INT8" => Cell::Int(row.try_get(i)?),
                            "INT4" => Cell::Int(i64::from(row.try_get::<i32, _>(i)?)),
                            "BOOL" => Cell::Int(i64::from(row.try_get::<bool, _>(i)?)),
                            _ => Cell::Text(row.try_get(i)?),
                        })
                    })
                    .collect()
            })
            .collect()
    }

    async fn exec(&self, sql: &str, args: &[Arg]) -> anyhow::Result<u64> {
        let sql = placeholders(sql);
        Ok(bind(sqlx::query(&sql), args)
            .execute(self.store.pool())
            .await?
            .rows_affected())
    }

    async fn another(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(Arc::new(
            PostgresStore::connect(&self.url, crate::vault::Vault::generate()).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_become_dollars() {
        assert_eq!(
            super::placeholders("WHERE a = ?1 AND b = ?12 AND c = '?'"),
            "WHERE a = $1 AND b = $12 AND c = '?'"
        );
    }
}

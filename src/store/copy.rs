//! Moving a Waymark from SQLite to PostgreSQL: `waymark copy-data --from sqlite://… --to
//! postgres://…` copies every table, row for row, into a freshly migrated PostgreSQL database
//! and checks the counts.
//!
//! Both schemas come from migrations of the same numbers, so the tables and columns are the
//! same; the copy reads the column types from PostgreSQL and converts SQLite's values to them
//! (flags 0/1 to booleans). Tables go in the order their foreign keys need, found from
//! PostgreSQL's catalogue, so a table a later migration adds is copied without changing this
//! file. Secrets are copied sealed: the replicas need the master key the SQLite Waymark used.

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{Postgres, QueryBuilder, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use super::{Backend, StoreError, connect};
use crate::vault::Vault;

/// Rows copied per statement: far under PostgreSQL's 65,535 parameters for any table.
const CHUNK: i64 = 1_000;

/// How many rows each table has on both sides after the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Table, rows in the source, rows in the destination.
    pub tables: Vec<(String, u64, u64)>,
}

impl CopyReport {
    /// Every table has as many rows on both sides.
    pub fn matches(&self) -> bool {
        self.tables.iter().all(|(_, from, to)| from == to)
    }
}

/// Why a copy did not start or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("--from must be an sqlite:// URL and --to a postgres:// URL")]
    WrongDirection,
    #[error(
        "the destination already holds data (table `{0}` is not empty); copy into a new, empty \
         database"
    )]
    NotEmpty(String),
    #[error("column `{table}.{column}`: PostgreSQL type `{kind}` has no conversion")]
    UnknownType {
        table: String,
        column: String,
        kind: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("copying: {0}")]
    Database(#[from] sqlx::Error),
}

/// One column of a destination table.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    kind: Kind,
}

/// The PostgreSQL types Waymark's schema uses, and so what a SQLite value becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    BigInt,
    Int,
    Double,
    Bool,
    Bytes,
}

impl Kind {
    fn of(data_type: &str) -> Option<Kind> {
        Some(match data_type {
            "text" | "character varying" => Kind::Text,
            "bigint" => Kind::BigInt,
            "integer" | "smallint" => Kind::Int,
            "double precision" | "real" | "numeric" => Kind::Double,
            "boolean" => Kind::Bool,
            "bytea" => Kind::Bytes,
            _ => return None,
        })
    }
}

/// Copy the SQLite database at `from` into the empty PostgreSQL database at `to`; both are
/// migrated first, so they have the same schema. `vault` opens both (secrets stay sealed).
pub async fn copy_sqlite_to_postgres(
    from: &str,
    to: &str,
    vault: Vault,
) -> Result<CopyReport, CopyError> {
    if Backend::of(from)? != Backend::Sqlite || Backend::of(to)? != Backend::Postgres {
        return Err(CopyError::WrongDirection);
    }
    connect(from, vault.clone()).await?.migrate().await?;
    connect(to, vault).await?.migrate().await?;
    let source = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::from_str(from)?.read_only(true))
        .await?;
    let destination = PgPoolOptions::new().max_connections(2).connect(to).await?;
    let tables = tables_in_order(&destination).await?;
    for (table, _) in &tables {
        let count = count_pg(&destination, table).await?;
        // The migrations insert the default merchant; anything else means data.
        let allowed = if table == "merchants" { 1 } else { 0 };
        if count > allowed {
            return Err(CopyError::NotEmpty(table.clone()));
        }
    }
    let mut report = CopyReport { tables: Vec::new() };
    for (table, columns) in &tables {
        copy_table(&source, &destination, table, columns).await?;
        report.tables.push((
            table.clone(),
            count_sqlite(&source, table).await?,
            count_pg(&destination, table).await?,
        ));
    }
    source.close().await;
    destination.close().await;
    Ok(report)
}

/// Waymark's tables in PostgreSQL (not sqlx's bookkeeping), each after those it refers to,
/// with the columns the copy writes (identity columns are PostgreSQL's own).
async fn tables_in_order(pg: &PgPool) -> Result<Vec<(String, Vec<Column>)>, CopyError> {
    let rows = sqlx::query(
        "SELECT table_name::text, column_name::text, data_type::text, is_identity::text \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations' \
         ORDER BY table_name, ordinal_position",
    )
    .fetch_all(pg)
    .await?;
    let mut columns: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for row in rows {
        let table: String = row.get(0);
        let name: String = row.get(1);
        let data_type: String = row.get(2);
        let identity: String = row.get(3);
        let entry = columns.entry(table.clone()).or_default();
        if identity == "YES" {
            continue;
        }
        let kind = Kind::of(&data_type).ok_or_else(|| CopyError::UnknownType {
            table,
            column: name.clone(),
            kind: data_type,
        })?;
        entry.push(Column { name, kind });
    }
    let references: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT c.conrelid::regclass::text, c.confrelid::regclass::text \
         FROM pg_constraint c WHERE c.contype = 'f' \
         AND c.connamespace = current_schema()::regnamespace",
    )
    .fetch_all(pg)
    .await?;
    // Kahn's order: a table once every table it refers to is placed.
    let mut waiting: BTreeMap<String, BTreeSet<String>> = columns
        .keys()
        .map(|t| (t.clone(), BTreeSet::new()))
        .collect();
    for (table, referred) in references {
        if table != referred
            && let Some(needs) = waiting.get_mut(&table)
        {
            needs.insert(referred);
        }
    }
    let mut ordered = Vec::new();
    while !waiting.is_empty() {
        let ready: Vec<String> = waiting
            .iter()
            .filter(|(_, needs)| needs.iter().all(|n| !waiting.contains_key(n)))
            .map(|(t, _)| t.clone())
            .collect();
        // A cycle of foreign keys would stop here; Waymark's schema has none, but the copy
        // should not spin: take the rest as they are.
        let ready = if ready.is_empty() {
            waiting.keys().cloned().collect()
        } else {
            ready
        };
        for table in ready {
            waiting.remove(&table);
            let cols = columns.remove(&table).unwrap_or_default();
            ordered.push((table, cols));
        }
    }
    Ok(ordered)
}

/// Copy `table` in chunks, in SQLite's row order (which PostgreSQL's identity columns then
/// keep: the order scans arrived in).
async fn copy_table(
    sqlite: &SqlitePool,
    pg: &PgPool,
    table: &str,
    columns: &[Column],
) -> Result<(), CopyError> {
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let select = format!(
        "SELECT rowid AS copy_rowid, {} FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        names.join(", ")
    );
    // The default merchant the migrations made takes the source's values.
    let conflict = if table == "merchants" {
        let updates: Vec<String> = names
            .iter()
            .filter(|n| **n != "id")
            .map(|n| format!("{n} = EXCLUDED.{n}"))
            .collect();
        format!(" ON CONFLICT (id) DO UPDATE SET {}", updates.join(", "))
    } else {
        String::new()
    };
    let mut after: i64 = 0;
    loop {
        let rows = sqlx::query(&select)
            .bind(after)
            .bind(CHUNK)
            .fetch_all(sqlite)
            .await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.try_get("copy_rowid")?;
        let mut insert: QueryBuilder<Postgres> =
            QueryBuilder::new(format!("INSERT INTO {table} ({}) ", names.join(", ")));
        let mut failed = None;
        insert.push_values(&rows, |mut values, row| {
            for column in columns {
                if let Err(e) = bind(&mut values, row, column) {
                    failed.get_or_insert(e);
                }
            }
        });
        if let Some(error) = failed {
            return Err(error.into());
        }
        insert.push(&conflict);
        insert.build().execute(pg).await?;
        if (rows.len() as i64) < CHUNK {
            break;
        }
    }
    Ok(())
}

/// Bind `row`'s value of `column` as the PostgreSQL column's type.
fn bind(
    values: &mut sqlx::query_builder::Separated<'_, '_, Postgres, &'static str>,
    row: &SqliteRow,
    column: &Column,
) -> Result<(), sqlx::Error> {
    let name = column.name.as_str();
    match column.kind {
        Kind::Text => values.push_bind(row.try_get::<Option<String>, _>(name)?),
        Kind::BigInt => values.push_bind(row.try_get::<Option<i64>, _>(name)?),
        Kind::Int => {
            let value: Option<i64> = row.try_get(name)?;
            let value = value
                .map(i32::try_from)
                .transpose()
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            values.push_bind(value)
        }
        Kind::Double => values.push_bind(row.try_get::<Option<f64>, _>(name)?),
        Kind::Bool => values.push_bind(row.try_get::<Option<i64>, _>(name)?.map(|v| v != 0)),
        Kind::Bytes => values.push_bind(row.try_get::<Option<Vec<u8>>, _>(name)?),
    };
    Ok(())
}

async fn count_pg(pg: &PgPool, table: &str) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(pg)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn count_sqlite(sqlite: &SqlitePool, table: &str) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(sqlite)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

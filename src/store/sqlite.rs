//! The embedded default: SQLite in WAL mode.

use super::StoreError;

/// Shipments, timelines and the outbox in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
}

impl SqliteStore {
    pub async fn connect(_url: &str) -> Result<Self, StoreError> {
        todo!()
    }
}

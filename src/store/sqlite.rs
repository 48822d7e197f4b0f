//! The embedded default: SQLite in WAL mode.
//!
//! SQLite has one writer at a time. A transaction that writes starts with `BEGIN IMMEDIATE`, so
//! it takes the write lock up front (waiting up to the busy timeout behind another writer)
//! instead of starting as a reader and failing with `SQLITE_BUSY` when it later needs to write.
//! A single statement needs no explicit transaction: SQLite takes the write lock when it starts.
//!
//! Columns are portable: text UUIDs, integer milliseconds since the epoch, ISO dates and JSON as
//! text. Every row read back is checked on the way in; a value Waymark cannot understand is a
//! `StoreError::Corrupt` naming the table, the row and the column.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

use super::rows::{
    Cols, ShipmentRow, corrupt, decode_estimate_change, decode_event, decode_notification, millis,
    public_token,
};
use super::{
    AcceptedChange, Backlog, ClaimOrder, Completion, ExpiredShipment, MerchantLogo, MerchantNotice,
    OutboxItem, PollClaim, PollErrorRecord, PollFailure, PollWrite, ShipmentChanges,
    ShipmentFilter, Store, StoreError, StoredResponse,
};

mod accounts;
mod carrier_tokens;
mod changes;
mod checkpoint;
mod delivery_changes;
mod housekeeping;
mod idempotency;
mod import;
mod listing;
mod merchant_emails;
mod merchants;
mod poll_writes;
#[cfg(test)]
pub(crate) mod testing;
use crate::carriers::CarrierAccount;
use crate::domain::{
    ApiKey, ApiKeyHash, CarrierCode, ChangeEvent, ChangeRequest, ChangeState, Channel,
    EstimateChange, KeyedEvent, Merchant, MerchantEmail, MerchantEmailOutcome, MerchantId,
    MerchantSettings, MerchantSlug, NewNotification, NewShipment, Notification, Shipment,
    TrackingNumber, Trigger,
};
use crate::vault::Vault;

/// Connections for reads: enough for the API, every poller and every dispatcher worker to read at
/// the same time (they are cheap; a worker waiting for a connection is not).
const READERS: u32 = 16;
/// How long a statement waits for the write lock (another process's, or the writer connection)
/// before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Starts a transaction that holds the write lock from its first statement on.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
/// The writer's page cache (SQLite's `cache_size`, negative for KiB): 64 MiB. Every write
/// touches the indexes of the tables it writes at places that are random for some (a public
/// token, a tracking number), and with a million shipments SQLite's default 2 MiB cache held
/// so little of them that most writes read their pages back from the file.
const WRITER_CACHE: &str = "-65536";
/// The size in bytes the write-ahead log file is cut back to when SQLite starts it over: 64 MiB.
const WAL_SIZE_LIMIT: &str = "67108864";
/// Where a freshly registered shipment stands in the queue when the quota is short.
const DEFAULT_POLL_PRIORITY: i64 = 3;

/// Which shipments a claim, a count or a deferral of one account looks at: due now, and not
/// held by a live lease. `?1` is the account, `?2` is now. The explicit `IS NOT NULL` lets
/// SQLite use the partial index `shipments_due`.
macro_rules! due_filter {
    () => {
        "carrier_account_id = ?1 AND next_poll_at IS NOT NULL AND next_poll_at <= ?2 \
         AND (lease_owner IS NULL OR lease_expires_at < ?2)"
    };
}

/// The ids of the due shipments a claim takes, oldest `next_poll_at` first (`?3` is the limit).
macro_rules! due_first_select {
    () => {
        concat!(
            "SELECT id FROM shipments WHERE ",
            due_filter!(),
            " ORDER BY next_poll_at LIMIT ?3"
        )
    };
}

/// The due shipments of one priority, oldest `next_poll_at` first: a range of the
/// `shipments_due_by_priority` index.
macro_rules! due_of_priority {
    ($priority:literal) => {
        concat!(
            "SELECT * FROM (SELECT id, poll_priority, next_poll_at FROM shipments \
             WHERE poll_priority = ",
            $priority,
            " AND ",
            due_filter!(),
            " ORDER BY next_poll_at LIMIT ?3)"
        )
    };
}

/// The ids of the due shipments a claim takes, closest to delivery first (`?3` is the limit).
/// Priorities are few (0 to 3), so each is read as its own index range, in order and no
/// further than the limit, rather than the whole due set sorted: with a million due shipments
/// that sort alone took hundreds of milliseconds. SQLite returns a UNION ALL's parts one after
/// the other, so the ranges come most urgent first and the outer LIMIT needs no sort.
macro_rules! nearest_delivery_first_select {
    () => {
        concat!(
            "SELECT id FROM (",
            due_of_priority!("0"),
            " UNION ALL ",
            due_of_priority!("1"),
            " UNION ALL ",
            due_of_priority!("2"),
            " UNION ALL ",
            due_of_priority!("3"),
            ") LIMIT ?3"
        )
    };
}

/// Lease the shipments an inner SELECT picked (`?4` owner, `?5` lease expiry).
macro_rules! claim_update {
    ($select:expr) => {
        concat!(
            "UPDATE shipments SET lease_owner = ?4, lease_expires_at = ?5 WHERE id IN (",
            $select,
            ") RETURNING *"
        )
    };
}

/// A random number of milliseconds below the spread parameter `$spread` (milliseconds), within
/// its first quarter for the most urgent shipments (`poll_priority` 0) and all of it for the least
/// (3).
macro_rules! spread_by_priority {
    ($spread:literal) => {
        concat!(
            "abs(random() % (",
            $spread,
            " * (MIN(MAX(poll_priority, 0), 3) + 1) / 4 + 1))"
        )
    };
}

/// Finish a claimed message (`?1` id, `?2` owner, `?3` now), only while its lease is held.
macro_rules! finish_notification {
    ($set:literal) => {
        concat!(
            "UPDATE notifications SET ",
            $set,
            ", lease_owner = NULL, lease_expires_at = NULL, updated_at = ?3 \
             WHERE id = ?1 AND lease_owner = ?2 AND state = 'sending'"
        )
    };
}

/// The inner SELECT of a shipment claim, exposed so a test can check its query plan.
#[cfg(test)]
fn due_select(order: ClaimOrder) -> &'static str {
    match order {
        ClaimOrder::DueFirst => due_first_select!(),
        ClaimOrder::NearestDeliveryFirst => nearest_delivery_first_select!(),
    }
}

/// The earliest time a shipment becomes claimable: the first unleased active shipment's next
/// poll, or the first lease to run out. Each half walks an index in order and stops at its
/// first match (leased rows, the only ones skipped, are few).
const NEXT_POLL_SQL: &str = "SELECT \
    (SELECT next_poll_at FROM shipments WHERE next_poll_at IS NOT NULL AND lease_owner IS NULL \
     ORDER BY next_poll_at LIMIT 1), \
    (SELECT lease_expires_at FROM shipments WHERE lease_owner IS NOT NULL \
     ORDER BY lease_expires_at LIMIT 1)";

/// Lease due messages (`?1` owner, `?2` lease expiry, `?3` now, `?4` limit). A candidate is
/// pending and due, or a crashed dispatcher's claim whose lease ran out, and it is the earliest
/// unsent message of its shipment: each shipment has at most one message out at a time and they
/// go out in order. Every candidate became available before now (a `sending` row was due when it
/// was claimed), which lets the range on `available_at` use `notifications_due`.
const CLAIM_NOTIFICATIONS_SQL: &str = "UPDATE notifications \
    SET state = 'sending', lease_owner = ?1, lease_expires_at = ?2, updated_at = ?3 \
    WHERE id IN ( \
      SELECT n.id FROM notifications n \
      WHERE n.state IN ('pending', 'sending') AND n.available_at <= ?3 \
        AND (n.state = 'pending' OR n.lease_expires_at < ?3) \
        AND NOT EXISTS ( \
          SELECT 1 FROM notifications e \
          WHERE e.shipment_id = n.shipment_id AND e.seq < n.seq \
            AND e.state IN ('pending', 'sending')) \
      ORDER BY n.available_at LIMIT ?4) \
    RETURNING *";

/// When the dispatcher has work next: the first pending message at the head of its shipment's
/// queue, by `available_at`, or the first lease of a message on the wire to run out. Each half
/// walks an index in order and stops at its first match.
const NEXT_NOTIFICATION_SQL: &str = "SELECT MIN(at) FROM ( \
    SELECT * FROM ( \
      SELECT n.available_at AS at FROM notifications n \
      WHERE n.state IN ('pending', 'sending') AND n.state = 'pending' \
        AND NOT EXISTS ( \
          SELECT 1 FROM notifications e \
          WHERE e.shipment_id = n.shipment_id AND e.seq < n.seq \
            AND e.state IN ('pending', 'sending')) \
      ORDER BY n.available_at LIMIT 1) \
    UNION ALL \
    SELECT * FROM ( \
      SELECT lease_expires_at AS at FROM notifications WHERE state = 'sending' \
      ORDER BY lease_expires_at LIMIT 1))";

/// Shipments, timelines and the outbox in one SQLite file.
///
/// SQLite lets one connection write at a time; writers on several connections would queue in
/// its busy handler (sleeping a millisecond or two at a time). So every write goes through one
/// connection, `writer`, waited for in order, and reads use the others side by side (WAL lets
/// them read while the writer writes).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Connections for reads.
    pool: SqlitePool,
    /// The one connection every write goes through.
    writer: SqlitePool,
    /// Seals and opens carrier credentials.
    vault: std::sync::Arc<Vault>,
    /// Poll results waiting to be written, a group per transaction.
    poll_writes: poll_writes::PollWriter,
    /// Copies the write-ahead log back into the file while the store is open.
    _checkpoints: std::sync::Arc<checkpoint::Checkpointer>,
}

/// The path of the database file an `sqlite:` URL names, if it names a file.
pub(super) fn file_of(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|path| !path.is_empty() && !path.starts_with(':'))
}

/// Delete the database file `url` names, with its log and shared-memory files.
pub(super) fn remove_files(url: &str) -> Result<(), StoreError> {
    let Some(path) = file_of(url) else {
        return Ok(());
    };
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{path}{suffix}");
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::Database(sqlx::Error::Io(e))),
        }
    }
    Ok(())
}

/// A read-only connection of its own to the database at `url`, for [`super::inspect`].
async fn inspector(url: &str) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?.read_only(true);
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?)
}

/// Every value of the one column `query` selects.
pub(super) async fn text_column(url: &str, query: &str) -> Result<Vec<Option<String>>, StoreError> {
    let pool = inspector(url).await?;
    let values = sqlx::query_scalar(query).fetch_all(&pool).await?;
    pool.close().await;
    Ok(values)
}

/// The one integer `query` selects.
pub(super) async fn integer(url: &str, query: &str) -> Result<i64, StoreError> {
    let pool = inspector(url).await?;
    let value = sqlx::query_scalar(query).fetch_one(&pool).await?;
    pool.close().await;
    Ok(value)
}

impl SqliteStore {
    /// Open (creating it when missing) the database a URL like `sqlite://waymark.db` names, in
    /// WAL mode with foreign keys enforced, sealing secrets with `vault`. The schema is brought up to date by
    /// [`Store::migrate`], not here.
    pub async fn connect(url: &str, vault: Vault) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Erased personal data must not linger in freed pages of the file.
            .pragma("secure_delete", "on")
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // The writer first: it creates the file and switches it to WAL before readers open it.
        // A connection to a local file does not go stale: checking it before every use (sqlx's
        // default, a round trip to its thread) would only add one to every statement.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            // Waiting for the writer is waiting in line, not a failure.
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", WRITER_CACHE)
                    // The checkpointing task does it, off the writer's path.
                    .pragma("wal_autocheckpoint", "0")
                    // A log that grew during a burst of writes is cut back when it restarts.
                    .pragma("journal_size_limit", WAL_SIZE_LIMIT),
            )
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(READERS)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let poll_writes = poll_writes::PollWriter::start(writer.clone());
        let checkpoints = std::sync::Arc::new(checkpoint::Checkpointer::start(pool.clone()));
        Ok(SqliteStore {
            pool,
            writer,
            vault: std::sync::Arc::new(vault),
            poll_writes,
            _checkpoints: checkpoints,
        })
    }

    /// The writing connection, for tests that look (and write) underneath the trait.
    #[cfg(test)]
    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    async fn shipments_where(
        &self,
        sql: &'static str,
        value: &str,
    ) -> Result<Vec<Shipment>, StoreError> {
        let rows = sqlx::query(sql).bind(value).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| ShipmentRow::decode(row)?.into_shipment())
            .collect()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        // Foreign keys are off while the schema changes, as SQLite asks for a table rebuild
        // (they cannot change inside the migration's transaction), and every reference is
        // checked before they are on again.
        let mut conn = self.writer.acquire().await?;
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await?;
        let migrated = sqlx::migrate!("migrations/sqlite")
            .run_direct(&mut *conn)
            .await;
        let dangling = sqlx::query("PRAGMA foreign_key_check")
            .fetch_all(&mut *conn)
            .await;
        sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut *conn)
            .await?;
        migrated?;
        let dangling = dangling?;
        if let Some(row) = dangling.first() {
            let table: String = row.try_get(0)?;
            return Err(StoreError::Corrupt {
                table: "schema",
                detail: format!(
                    "{} rows point at rows that do not exist, the first in `{table}`",
                    dangling.len()
                ),
            });
        }
        Ok(())
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let value = sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = ?1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(value)
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        // The no-op update makes RETURNING hand back the stored value when the key exists, so
        // two processes racing to set it agree on one value.
        let stored = sqlx::query_scalar::<_, String>(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = settings.value RETURNING value",
        )
        .bind(key)
        .bind(value)
        .fetch_one(&self.writer)
        .await?;
        Ok(stored)
    }

    async fn create_merchant(&self, merchant: &Merchant) -> Result<(), StoreError> {
        self.insert_merchant(merchant).await
    }

    async fn merchant(&self, id: MerchantId) -> Result<Option<Merchant>, StoreError> {
        self.merchant_where("id", &id.to_string()).await
    }

    async fn merchant_by_slug(&self, slug: &MerchantSlug) -> Result<Option<Merchant>, StoreError> {
        self.merchant_where("slug", slug.as_str()).await
    }

    async fn merchants(&self) -> Result<Vec<Merchant>, StoreError> {
        self.all_merchants().await
    }

    async fn merchant_settings(
        &self,
        merchant: MerchantId,
    ) -> Result<Option<MerchantSettings>, StoreError> {
        self.settings_of(merchant).await
    }

    async fn suppress_recipient(
        &self,
        merchant: MerchantId,
        channel: Channel,
        recipient: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO suppressions (merchant_id, channel, recipient_hash, created_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )
        .bind(merchant.to_string())
        .bind(channel.as_str())
        .bind(super::recipient_hash(recipient))
        .bind(millis(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn is_suppressed(
        &self,
        merchant: MerchantId,
        channel: Channel,
        recipient: &str,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM suppressions \
             WHERE merchant_id = ?1 AND channel = ?2 AND recipient_hash = ?3",
        )
        .bind(merchant.to_string())
        .bind(channel.as_str())
        .bind(super::recipient_hash(recipient))
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    async fn merchant_templates(
        &self,
        merchant: MerchantId,
    ) -> Result<Vec<(String, String, Timestamp)>, StoreError> {
        self.templates_of(merchant).await
    }

    async fn save_merchant_template(
        &self,
        merchant: MerchantId,
        name: &str,
        source: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write_template(merchant, name, source, now).await
    }

    async fn delete_merchant_template(
        &self,
        merchant: MerchantId,
        name: &str,
    ) -> Result<bool, StoreError> {
        self.remove_template(merchant, name).await
    }

    async fn save_merchant_settings(
        &self,
        merchant: MerchantId,
        settings: &MerchantSettings,
    ) -> Result<bool, StoreError> {
        self.write_settings(merchant, settings).await
    }

    async fn save_merchant_logo(
        &self,
        merchant: MerchantId,
        logo: Option<&MerchantLogo>,
    ) -> Result<bool, StoreError> {
        self.write_logo(merchant, logo).await
    }

    async fn merchant_logo(
        &self,
        merchant: MerchantId,
    ) -> Result<Option<MerchantLogo>, StoreError> {
        self.logo_of(merchant).await
    }

    async fn merchant_logo_updated_at(
        &self,
        merchant: MerchantId,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.logo_version(merchant).await
    }

    async fn create_api_key(&self, key: &ApiKey, hash: &ApiKeyHash) -> Result<(), StoreError> {
        self.insert_api_key(key, hash).await
    }

    async fn api_keys(&self, merchant: MerchantId) -> Result<Vec<ApiKey>, StoreError> {
        self.merchant_api_keys(merchant).await
    }

    async fn revoke_api_key(
        &self,
        merchant: MerchantId,
        id_or_prefix: &str,
        now: Timestamp,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.revoke_key(merchant, id_or_prefix, now).await
    }

    async fn authenticate_api_key(
        &self,
        hash: &ApiKeyHash,
        now: Timestamp,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.authenticate_key(hash, now).await
    }

    async fn create_carrier_account(&self, account: &CarrierAccount) -> Result<(), StoreError> {
        self.insert_account(account).await
    }

    async fn reseal_secrets(&self) -> Result<u64, StoreError> {
        self.reseal_credentials().await
    }

    async fn idempotent_response(
        &self,
        merchant: MerchantId,
        key: &str,
    ) -> Result<Option<StoredResponse>, StoreError> {
        self.kept_response(merchant, key).await
    }

    async fn save_idempotent_response(
        &self,
        merchant: MerchantId,
        key: &str,
        request_hash: &str,
        status: u16,
        body: &str,
        now: Timestamp,
    ) -> Result<StoredResponse, StoreError> {
        self.keep_response(merchant, key, request_hash, status, body, now)
            .await
    }

    async fn prune_idempotent_responses(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.forget_responses(before).await
    }

    async fn save_carrier_account(
        &self,
        account: &CarrierAccount,
    ) -> Result<CarrierAccount, StoreError> {
        self.upsert_account(account).await
    }

    async fn carrier_account(&self, id: Uuid) -> Result<Option<CarrierAccount>, StoreError> {
        self.account_by_id(id).await
    }

    async fn update_carrier_account(&self, account: &CarrierAccount) -> Result<bool, StoreError> {
        self.rewrite_account(account).await
    }

    async fn delete_carrier_account(
        &self,
        merchant: MerchantId,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        self.remove_account(merchant, id).await
    }

    async fn carrier_account_by_name(
        &self,
        merchant: MerchantId,
        carrier: &CarrierCode,
        name: &str,
    ) -> Result<Option<CarrierAccount>, StoreError> {
        self.account_by_name(merchant, carrier, name).await
    }

    async fn carrier_accounts(&self) -> Result<Vec<CarrierAccount>, StoreError> {
        self.accounts(None).await
    }

    async fn merchant_carrier_accounts(
        &self,
        merchant: MerchantId,
    ) -> Result<Vec<CarrierAccount>, StoreError> {
        self.accounts(Some(merchant)).await
    }

    async fn insert_shipment(
        &self,
        new: &NewShipment,
        now: Timestamp,
    ) -> Result<Shipment, StoreError> {
        // One registration is a batch of one: the same row, promise and refusal as an import's.
        let id = match self
            .insert_batch(std::slice::from_ref(new), now)
            .await?
            .pop()
        {
            Some(stored) => stored?,
            None => unreachable!("a batch has one result per shipment"),
        };
        self.shipment(id).await?.ok_or_else(|| StoreError::Corrupt {
            table: "shipments",
            detail: format!("shipment {id} is gone right after it was registered"),
        })
    }

    async fn insert_shipments(
        &self,
        batch: &[NewShipment],
        now: Timestamp,
    ) -> Result<Vec<Result<Uuid, StoreError>>, StoreError> {
        self.insert_batch(batch, now).await
    }

    async fn shipment(&self, id: Uuid) -> Result<Option<Shipment>, StoreError> {
        let row = sqlx::query("SELECT * FROM shipments WHERE id = ?1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some(ShipmentRow::decode(&row)?.into_shipment()?)),
            None => Ok(None),
        }
    }

    async fn merchant_shipment(
        &self,
        merchant: MerchantId,
        id: Uuid,
    ) -> Result<Option<Shipment>, StoreError> {
        let row = sqlx::query("SELECT * FROM shipments WHERE id = ?1 AND merchant_id = ?2")
            .bind(id.to_string())
            .bind(merchant.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| ShipmentRow::decode(&row)?.into_shipment())
            .transpose()
    }

    async fn merchant_shipments(
        &self,
        merchant: MerchantId,
        filter: &ShipmentFilter,
        limit: u32,
    ) -> Result<Vec<Shipment>, StoreError> {
        self.list_shipments(merchant, filter, limit).await
    }

    async fn update_shipment(
        &self,
        merchant: MerchantId,
        id: Uuid,
        changes: &ShipmentChanges,
        now: Timestamp,
    ) -> Result<Option<Shipment>, StoreError> {
        self.change_shipment(merchant, id, changes, now).await
    }

    async fn shipments_by_number(
        &self,
        number: &TrackingNumber,
    ) -> Result<Vec<Shipment>, StoreError> {
        self.shipments_where(
            "SELECT * FROM shipments WHERE tracking_number = ?1 ORDER BY created_at, id",
            number.as_str(),
        )
        .await
    }

    async fn shipment_by_token(&self, token: &str) -> Result<Option<Shipment>, StoreError> {
        let mut found = self
            .shipments_where(
                "SELECT * FROM shipments WHERE public_token = ?1 AND erased_at IS NULL",
                token,
            )
            .await?;
        Ok(found.pop())
    }

    async fn set_muted(&self, id: Uuid, muted: bool) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE shipments SET muted = ?2 WHERE id = ?1")
            .bind(id.to_string())
            .bind(muted)
            .execute(&self.writer)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn timeline(&self, shipment_id: Uuid) -> Result<Vec<KeyedEvent>, StoreError> {
        // rowid breaks ties between scans of the same millisecond in the order they arrived.
        let rows =
            sqlx::query("SELECT * FROM events WHERE shipment_id = ?1 ORDER BY occurred_at, rowid")
                .bind(shipment_id.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(decode_event).collect()
    }

    async fn estimate_changes(
        &self,
        shipment_id: Uuid,
    ) -> Result<Vec<(Timestamp, EstimateChange)>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM estimate_changes WHERE shipment_id = ?1 ORDER BY recorded_at, id",
        )
        .bind(shipment_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_estimate_change).collect()
    }

    async fn fired_keys(&self, shipment_id: Uuid) -> Result<HashSet<String>, StoreError> {
        let keys = sqlx::query_scalar::<_, String>(
            "SELECT dedupe_key FROM notifications WHERE shipment_id = ?1",
        )
        .bind(shipment_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(keys.into_iter().collect())
    }

    async fn last_sent_at(
        &self,
        shipment_id: Uuid,
        trigger: Trigger,
    ) -> Result<Option<Timestamp>, StoreError> {
        let at = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(sent_at) FROM notifications \
             WHERE shipment_id = ?1 AND trigger = ?2 AND state = 'sent'",
        )
        .bind(shipment_id.to_string())
        .bind(trigger.as_str())
        .fetch_one(&self.pool)
        .await?;
        Cols::new("notifications", "(latest sent)").opt_time("sent_at", at)
    }

    async fn next_poll_at(&self) -> Result<Option<Timestamp>, StoreError> {
        let row = sqlx::query(NEXT_POLL_SQL).fetch_one(&self.pool).await?;
        let cols = Cols::new("shipments", "(earliest)");
        let unleased = cols.opt_time("next_poll_at", cols.get(&row, 0)?)?;
        let lease_end = cols.opt_time("lease_expires_at", cols.get(&row, 1)?)?;
        Ok(unleased.into_iter().chain(lease_end).min())
    }

    async fn claim_due_shipments(
        &self,
        claim: &PollClaim<'_>,
    ) -> Result<Vec<Shipment>, StoreError> {
        if claim.limit == 0 {
            return Ok(Vec::new());
        }
        let sql = match claim.order {
            ClaimOrder::DueFirst => claim_update!(due_first_select!()),
            ClaimOrder::NearestDeliveryFirst => claim_update!(nearest_delivery_first_select!()),
        };
        let rows = sqlx::query(sql)
            .bind(claim.carrier_account_id.to_string())
            .bind(millis(claim.now))
            .bind(i64::from(claim.limit))
            .bind(claim.owner)
            .bind(millis(claim.lease_until))
            .fetch_all(&self.writer)
            .await?;
        let mut rows = rows
            .iter()
            .map(ShipmentRow::decode)
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING comes back in no particular order; hand out the same order the claim chose.
        match claim.order {
            ClaimOrder::DueFirst => {
                rows.sort_by(|a, b| (a.next_poll_at, &a.id).cmp(&(b.next_poll_at, &b.id)))
            }
            ClaimOrder::NearestDeliveryFirst => rows.sort_by(|a, b| {
                (a.poll_priority, a.next_poll_at, &a.id).cmp(&(
                    b.poll_priority,
                    b.next_poll_at,
                    &b.id,
                ))
            }),
        }
        rows.into_iter().map(ShipmentRow::into_shipment).collect()
    }

    async fn reserve_carrier_calls(
        &self,
        carrier_account_id: Uuid,
        day: &str,
        calls: u32,
        quota: Option<u32>,
    ) -> Result<bool, StoreError> {
        // One statement, so two workers cannot both take the last calls of the day. The SELECT's
        // WHERE keeps a first reservation larger than the quota from being inserted.
        let result = sqlx::query(
            "INSERT INTO quota_usage (carrier_account_id, day, calls) \
             SELECT ?1, ?2, ?3 WHERE ?4 IS NULL OR ?3 <= ?4 \
             ON CONFLICT (carrier_account_id, day) DO UPDATE SET calls = calls + excluded.calls \
             WHERE ?4 IS NULL OR calls + excluded.calls <= ?4",
        )
        .bind(carrier_account_id.to_string())
        .bind(day)
        .bind(i64::from(calls))
        .bind(quota.map(i64::from))
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn reserve_carrier_slot(
        &self,
        carrier_account_id: Uuid,
        now: Timestamp,
        interval: SignedDuration,
        burst: u32,
    ) -> Result<Timestamp, StoreError> {
        // One statement: two callers never take the same slot. The burst window lets the first
        // `burst` calls after a quiet spell go at once.
        let interval = interval.as_millis().max(1) as i64;
        let window = interval * i64::from(burst.max(1) - 1);
        let next: i64 = sqlx::query_scalar(
            "INSERT INTO carrier_rate_slots (carrier_account_id, next_slot_at) \
             VALUES (?1, ?2 - ?4 + ?3) \
             ON CONFLICT (carrier_account_id) DO UPDATE \
             SET next_slot_at = MAX(next_slot_at, ?2 - ?4) + ?3 \
             RETURNING next_slot_at",
        )
        .bind(carrier_account_id.to_string())
        .bind(millis(now))
        .bind(interval)
        .bind(window)
        .fetch_one(&self.writer)
        .await?;
        let slot = Cols::new("carrier_rate_slots", &carrier_account_id.to_string())
            .time("next_slot_at", next - interval)?;
        Ok(slot.max(now))
    }

    async fn carrier_token(
        &self,
        carrier_account_id: Uuid,
    ) -> Result<Option<crate::carriers::tokens::SharedToken>, StoreError> {
        self.shared_token(carrier_account_id).await
    }

    async fn begin_carrier_token_fetch(
        &self,
        carrier_account_id: Uuid,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        self.begin_token_fetch(carrier_account_id, owner, now, until)
            .await
    }

    async fn save_carrier_token(
        &self,
        carrier_account_id: Uuid,
        token: &crate::carriers::tokens::SharedToken,
    ) -> Result<(), StoreError> {
        self.keep_token(carrier_account_id, token).await
    }

    async fn abandon_carrier_token_fetch(
        &self,
        carrier_account_id: Uuid,
        owner: &str,
    ) -> Result<(), StoreError> {
        self.abandon_token_fetch(carrier_account_id, owner).await
    }

    async fn forget_carrier_token(
        &self,
        carrier_account_id: Uuid,
        token_id: Uuid,
    ) -> Result<(), StoreError> {
        self.drop_token(carrier_account_id, token_id).await
    }

    async fn defer_due_shipments(
        &self,
        carrier_account_id: Uuid,
        now: Timestamp,
        until: Timestamp,
        spread: SignedDuration,
    ) -> Result<u64, StoreError> {
        // Same rows as a claim would take: an expired lease is as good as none, and is dropped
        // so the deferred shipment is not rescued before `until`.
        let result = sqlx::query(concat!(
            "UPDATE shipments SET next_poll_at = ?3 + ",
            spread_by_priority!("?4"),
            ", lease_owner = NULL, lease_expires_at = NULL, updated_at = ?2 WHERE ",
            due_filter!()
        ))
        .bind(carrier_account_id.to_string())
        .bind(millis(now))
        .bind(millis(until))
        .bind(spread.as_millis().max(0) as i64)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected())
    }

    async fn extend_shipment_leases(
        &self,
        ids: &[Uuid],
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Vec<Uuid>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let held = sqlx::query_scalar::<_, String>(
            "UPDATE shipments SET lease_expires_at = ?3 \
             WHERE lease_owner = ?2 AND lease_expires_at >= ?4 \
               AND id IN (SELECT value FROM json_each(?1)) RETURNING id",
        )
        .bind(json_list(ids))
        .bind(owner)
        .bind(millis(lease_until))
        .bind(millis(now))
        .fetch_all(&self.writer)
        .await?;
        held.iter()
            .map(|id| {
                Uuid::parse_str(id).map_err(|e| corrupt("shipments", format!("id `{id}`: {e}")))
            })
            .collect()
    }

    async fn release_shipments(
        &self,
        ids: &[Uuid],
        owner: &str,
        next_poll_at: Timestamp,
        spread: SignedDuration,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(concat!(
            "UPDATE shipments SET lease_owner = NULL, lease_expires_at = NULL, next_poll_at = ?3 + ",
            spread_by_priority!("?4"),
            " WHERE lease_owner = ?2 AND id IN (SELECT value FROM json_each(?1))"
        ))
        .bind(json_list(ids))
        .bind(owner)
        .bind(millis(next_poll_at))
        .bind(spread.as_millis().max(0) as i64)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn record_poll(&self, write: &PollWrite) -> Result<bool, StoreError> {
        self.poll_writes
            .write(poll_writes::PollResult::Polled(write.clone()))
            .await
    }

    async fn record_poll_failure(&self, failure: &PollFailure) -> Result<bool, StoreError> {
        self.poll_writes
            .write(poll_writes::PollResult::Failed(failure.clone()))
            .await
    }

    async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(CLAIM_NOTIFICATIONS_SQL)
            .bind(owner)
            .bind(millis(lease_until))
            .bind(millis(now))
            .bind(i64::from(limit))
            .fetch_all(&self.writer)
            .await?;
        let mut notifications = rows
            .iter()
            .map(decode_notification)
            .collect::<Result<Vec<_>, _>>()?;
        if notifications.is_empty() {
            return Ok(Vec::new());
        }
        notifications.sort_by_key(|n| (n.available_at, n.seq, n.id));

        let shipment_rows =
            sqlx::query("SELECT * FROM shipments WHERE id IN (SELECT value FROM json_each(?1))")
                .bind(json_list(notifications.iter().map(|n| n.shipment_id)))
                .fetch_all(&self.writer)
                .await?;
        let mut shipments = HashMap::with_capacity(shipment_rows.len());
        for row in &shipment_rows {
            let shipment = ShipmentRow::decode(row)?.into_shipment()?;
            shipments.insert(shipment.id, shipment);
        }
        notifications
            .into_iter()
            .map(|notification| {
                let shipment = shipments
                    .get(&notification.shipment_id)
                    .cloned()
                    .ok_or_else(|| {
                        corrupt(
                            "notifications",
                            format!(
                                "row {}: shipment {} does not exist",
                                notification.id, notification.shipment_id
                            ),
                        )
                    })?;
                Ok(OutboxItem {
                    notification,
                    shipment,
                })
            })
            .collect()
    }

    async fn next_notification_at(&self) -> Result<Option<Timestamp>, StoreError> {
        // Only the head of each shipment's queue counts: a message waiting behind an earlier one
        // cannot be claimed at its own `available_at`, and counting it would wake the dispatcher
        // over and over for nothing (for hours, when the earlier one is deferred to the morning).
        let at = sqlx::query_scalar::<_, Option<i64>>(NEXT_NOTIFICATION_SQL)
            .fetch_one(&self.pool)
            .await?;
        Cols::new("notifications", "(earliest)").opt_time("available_at", at)
    }

    async fn extend_notification_lease(
        &self,
        id: Uuid,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE notifications SET lease_expires_at = ?1 \
             WHERE id = ?2 AND lease_owner = ?3 AND state = 'sending' AND lease_expires_at >= ?4",
        )
        .bind(millis(lease_until))
        .bind(id.to_string())
        .bind(owner)
        .bind(millis(now))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn start_notification_attempt(
        &self,
        id: Uuid,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<u32>, StoreError> {
        let attempts = sqlx::query_scalar::<_, i64>(
            "UPDATE notifications SET attempts = attempts + 1, lease_expires_at = ?3 \
             WHERE id = ?1 AND lease_owner = ?2 AND state = 'sending' AND lease_expires_at >= ?4 \
             RETURNING attempts",
        )
        .bind(id.to_string())
        .bind(owner)
        .bind(millis(lease_until))
        .bind(millis(now))
        .fetch_optional(&self.writer)
        .await?;
        Ok(attempts.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    async fn thread_message_ids(&self, shipment_id: Uuid) -> Result<Vec<String>, StoreError> {
        let ids = sqlx::query_scalar::<_, String>(
            "SELECT message_id FROM notifications \
             WHERE shipment_id = ?1 AND state = 'sent' AND message_id IS NOT NULL ORDER BY seq",
        )
        .bind(shipment_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }

    async fn complete_notification(
        &self,
        id: Uuid,
        owner: &str,
        now: Timestamp,
        completion: &Completion,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        let now = millis(now);
        // ?1 to ?3 are the same for every outcome; each outcome binds its own values from ?4.
        let finish = |sql| sqlx::query(sql).bind(id.clone()).bind(owner).bind(now);
        let query = match completion {
            Completion::Sent {
                message_id,
                provider_response,
            } => finish(finish_notification!(
                "state = 'sent', sent_at = ?3, message_id = ?4, provider_response = ?5"
            ))
            .bind(message_id)
            .bind(provider_response),
            Completion::Retry {
                error,
                available_at,
            } => finish(finish_notification!(
                "state = 'pending', last_error = ?4, available_at = ?5"
            ))
            .bind(error)
            .bind(millis(*available_at)),
            Completion::Failed { error } => {
                finish(finish_notification!("state = 'failed', last_error = ?4")).bind(error)
            }
            Completion::Deferred { available_at } => {
                finish(finish_notification!("state = 'pending', available_at = ?4"))
                    .bind(millis(*available_at))
            }
            Completion::Suppressed { why } => finish(finish_notification!(
                "state = 'suppressed', last_error = ?4"
            ))
            .bind(why),
        };
        let result = query.execute(&self.writer).await?;
        Ok(result.rows_affected() == 1)
    }

    async fn notifications(&self, shipment_id: Uuid) -> Result<Vec<Notification>, StoreError> {
        let rows = sqlx::query("SELECT * FROM notifications WHERE shipment_id = ?1 ORDER BY seq")
            .bind(shipment_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_notification).collect()
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        // `next_poll_at IS NOT NULL` is the same as `active = 1` (a CHECK says so) and counts
        // over the small partial index instead of the table.
        let row = sqlx::query(
            "SELECT \
             (SELECT COUNT(*) FROM shipments WHERE next_poll_at IS NOT NULL), \
             (SELECT COUNT(*) FROM notifications WHERE state IN ('pending', 'sending')), \
             (SELECT COUNT(*) FROM shipments WHERE next_poll_at IS NOT NULL \
              AND lease_owner IS NOT NULL), \
             (SELECT COUNT(*) FROM notifications WHERE state = 'sending')",
        )
        .fetch_one(&self.pool)
        .await?;
        let cols = Cols::new("shipments", "(counts)");
        let count = |i| -> Result<u64, StoreError> {
            let n: i64 = cols.get(&row, i)?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        Ok(Backlog {
            active_shipments: count(0)?,
            unsent_notifications: count(1)?,
            leased_shipments: count(2)?,
            sending_notifications: count(3)?,
        })
    }

    async fn claim_job(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        first_run_at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.claim_job_row(name, owner, now, lease_until, first_run_at)
            .await
    }

    async fn extend_job_lease(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError> {
        self.extend_job_row(name, owner, now, lease_until).await
    }

    async fn finish_job(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        outcome: &str,
        next_run_at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.finish_job_row(name, owner, now, outcome, next_run_at)
            .await
    }

    async fn expire_shipments(
        &self,
        now: Timestamp,
        never_found_before: Timestamp,
        silent_before: Timestamp,
    ) -> Result<Vec<ExpiredShipment>, StoreError> {
        self.expire(now, never_found_before, silent_before).await
    }

    async fn merchant_notices(&self, since: Timestamp) -> Result<Vec<MerchantNotice>, StoreError> {
        self.notices_since(since).await
    }

    async fn poll_errors(&self, shipment: Uuid) -> Result<Vec<PollErrorRecord>, StoreError> {
        let rows: Vec<(String, String, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT id, kind, detail, excerpt, occurred_at FROM poll_errors \
             WHERE shipment_id = ?1 ORDER BY occurred_at, id",
        )
        .bind(shipment.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, kind, detail, excerpt, at)| {
                Ok(PollErrorRecord {
                    kind,
                    detail,
                    excerpt,
                    occurred_at: Cols::new("poll_errors", &id).time("occurred_at", at)?,
                })
            })
            .collect()
    }

    async fn prune_poll_errors(
        &self,
        before: Timestamp,
        keep_per_shipment: u32,
    ) -> Result<u64, StoreError> {
        self.prune_errors(before, keep_per_shipment).await
    }

    async fn erase_finished_shipments(
        &self,
        finished_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.erase_finished(finished_before, now, limit).await
    }

    async fn erase_shipment(&self, id: Uuid, now: Timestamp) -> Result<bool, StoreError> {
        self.erase_one(id, now).await
    }

    async fn create_delivery_change(
        &self,
        request: &ChangeRequest,
        note: &str,
    ) -> Result<(), StoreError> {
        self.insert_delivery_change(request, note).await
    }

    async fn update_delivery_change(
        &self,
        before: &ChangeRequest,
        after: &ChangeRequest,
        note: &str,
        notify: Option<&NewNotification>,
        email: Option<&MerchantEmail>,
    ) -> Result<bool, StoreError> {
        self.write_delivery_change(before, after, note, notify, email)
            .await
    }

    async fn claim_merchant_emails(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<MerchantEmail>, StoreError> {
        self.claim_emails(now, hold_until, limit).await
    }

    async fn settle_merchant_email(
        &self,
        email: &MerchantEmail,
        outcome: &MerchantEmailOutcome,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.settle_email(email, outcome, now).await
    }

    async fn merchant_emails(
        &self,
        merchant: MerchantId,
    ) -> Result<Vec<MerchantEmail>, StoreError> {
        self.emails_of(merchant).await
    }

    async fn delivery_change(&self, id: Uuid) -> Result<Option<ChangeRequest>, StoreError> {
        self.delivery_change_by_id(id).await
    }

    async fn shipment_delivery_changes(
        &self,
        shipment: Uuid,
    ) -> Result<Vec<ChangeRequest>, StoreError> {
        self.shipment_changes(shipment).await
    }

    async fn merchant_delivery_changes(
        &self,
        merchant: MerchantId,
        state: Option<ChangeState>,
        limit: u32,
    ) -> Result<Vec<ChangeRequest>, StoreError> {
        self.merchant_changes(merchant, state, limit).await
    }

    async fn delivery_change_events(&self, id: Uuid) -> Result<Vec<ChangeEvent>, StoreError> {
        self.change_events(id).await
    }

    async fn delivery_changes_since(
        &self,
        shipment: Uuid,
        since: Timestamp,
    ) -> Result<u64, StoreError> {
        self.changes_requested_since(shipment, since).await
    }

    async fn executed_delivery_changes(&self) -> Result<Vec<AcceptedChange>, StoreError> {
        self.executed_changes().await
    }
}

/// A JSON array of strings, bound as one parameter and read with `json_each`, so a list of any
/// length is one statement with a fixed text.
fn json_list<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    serde_json::Value::Array(
        items
            .into_iter()
            .map(|item| serde_json::Value::String(item.to_string()))
            .collect(),
    )
    .to_string()
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;

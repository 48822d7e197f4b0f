//! PostgreSQL, for several Waymark replicas sharing one database.
//!
//! The schema is SQLite's, column for column (see `migrations/postgres/0001_init.sql`), so rows
//! are read back by the same checked decoders ([`super::rows`]). What SQLite gets from having one
//! writer at a time, PostgreSQL gets from row locks:
//!
//! - every claim (due shipments, messages, jobs, merchant emails) is one `UPDATE … WHERE id IN
//!   (SELECT … FOR UPDATE SKIP LOCKED)`: replicas claiming at the same moment skip each other's
//!   rows instead of waiting for them, and never take the same one;
//! - a result is written only by the lease holder, by the same conditions on the lease as in
//!   SQLite, which PostgreSQL checks again on the row's newest version once it holds its lock;
//! - a read followed by a write that depends on it (a shipment's promise before a change, the
//!   next `seq` of a shipment's outbox or of a change's audit trail) first locks the row it is
//!   about with `SELECT … FOR UPDATE`, so two replicas take turns instead of both succeeding.
//!
//! Nothing needs a statement timeout or a checkpoint: readers never block writers, and an erased
//! row's old versions are gone once VACUUM has passed (autovacuum does).

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use sqlx::PgPool;
use sqlx::postgres::{PgPoolOptions, PgRow};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
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
use crate::carriers::CarrierAccount;
use crate::domain::{
    ApiKey, ApiKeyHash, CarrierCode, ChangeEvent, ChangeRequest, ChangeState, Channel,
    EstimateChange, KeyedEvent, Merchant, MerchantEmail, MerchantEmailOutcome, MerchantId,
    MerchantSettings, MerchantSlug, NewNotification, NewShipment, Notification, Shipment,
    TrackingNumber, Trigger,
};
use crate::vault::Vault;

mod accounts;
mod carrier_limits;
mod changes;
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
#[doc(hidden)]
pub mod throwaway;

#[doc(hidden)]
pub use throwaway::ThrowawayCluster;

/// Connections per replica: the API, every poller and every dispatcher worker at the same time.
/// Many replicas share the server's `max_connections` (100 by default), so this stays modest.
const POOL_SIZE: u32 = 16;
/// Where a freshly registered shipment stands in the queue when the quota is short.
const DEFAULT_POLL_PRIORITY: i64 = 3;

/// Which shipments a claim, a count or a deferral of one account looks at: due now, and not
/// held by a live lease. `$1` is the account, `$2` is now.
macro_rules! due_filter {
    () => {
        "carrier_account_id = $1 AND next_poll_at IS NOT NULL AND next_poll_at <= $2 \
         AND (lease_owner IS NULL OR lease_expires_at < $2)"
    };
}

/// Lease up to `$3` due shipments in the order `$order` (`$4` owner, `$5` lease expiry). Rows
/// another replica is claiming right now are skipped, not waited for; PostgreSQL checks the
/// filter again on each row it locks, so a row claimed meanwhile is not taken twice.
macro_rules! claim_sql {
    ($order:literal) => {
        concat!(
            "UPDATE shipments SET lease_owner = $4, lease_expires_at = $5 WHERE id IN (",
            "SELECT id FROM shipments WHERE ",
            due_filter!(),
            " ORDER BY ",
            $order,
            " LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *"
        )
    };
}

/// A random number of milliseconds below the spread parameter `$spread` (milliseconds), within
/// its first quarter for the most urgent shipments (`poll_priority` 0) and all of it for the
/// least (3), as in SQLite.
macro_rules! spread_by_priority {
    ($spread:literal) => {
        concat!(
            "floor(random() * (",
            $spread,
            "::BIGINT * (LEAST(GREATEST(poll_priority, 0), 3) + 1) / 4 + 1))::BIGINT"
        )
    };
}

/// Finish a claimed message (`$1` id, `$2` owner, `$3` now), only while its lease is held.
macro_rules! finish_notification {
    ($set:literal) => {
        concat!(
            "UPDATE notifications SET ",
            $set,
            ", lease_owner = NULL, lease_expires_at = NULL, updated_at = $3 \
             WHERE id = $1 AND lease_owner = $2 AND state = 'sending'"
        )
    };
}

/// The earliest time a shipment becomes claimable: the first unleased active shipment's next
/// poll, or the first lease to run out.
const NEXT_POLL_SQL: &str = "SELECT \
    (SELECT next_poll_at FROM shipments WHERE next_poll_at IS NOT NULL AND lease_owner IS NULL \
     ORDER BY next_poll_at LIMIT 1), \
    (SELECT lease_expires_at FROM shipments WHERE lease_owner IS NOT NULL \
     ORDER BY lease_expires_at LIMIT 1)";

/// Lease due messages (`$1` owner, `$2` lease expiry, `$3` now, `$4` limit): pending and due, or
/// a crashed dispatcher's claim whose lease ran out, and the earliest unsent message of its
/// shipment. A message another replica is claiming is skipped; the one behind it is not a
/// candidate either, since the first is still pending or sending in this statement's snapshot.
const CLAIM_NOTIFICATIONS_SQL: &str = "UPDATE notifications \
    SET state = 'sending', lease_owner = $1, lease_expires_at = $2, updated_at = $3 \
    WHERE id IN ( \
      SELECT n.id FROM notifications n \
      WHERE n.state IN ('pending', 'sending') AND n.available_at <= $3 \
        AND (n.state = 'pending' OR n.lease_expires_at < $3) \
        AND NOT EXISTS ( \
          SELECT 1 FROM notifications e \
          WHERE e.shipment_id = n.shipment_id AND e.seq < n.seq \
            AND e.state IN ('pending', 'sending')) \
      ORDER BY n.available_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
    RETURNING *";

/// When the dispatcher has work next: the first pending message at the head of its shipment's
/// queue, by `available_at`, or the first lease of a message on the wire to run out.
const NEXT_NOTIFICATION_SQL: &str = "SELECT MIN(at) FROM ( \
    (SELECT n.available_at AS at FROM notifications n \
      WHERE n.state IN ('pending', 'sending') AND n.state = 'pending' \
        AND NOT EXISTS ( \
          SELECT 1 FROM notifications e \
          WHERE e.shipment_id = n.shipment_id AND e.seq < n.seq \
            AND e.state IN ('pending', 'sending')) \
      ORDER BY n.available_at LIMIT 1) \
    UNION ALL \
    (SELECT lease_expires_at AS at FROM notifications WHERE state = 'sending' \
      ORDER BY lease_expires_at LIMIT 1)) AS heads";

/// A connection of its own to the database at `url`, for [`super::inspect`] and the demo.
async fn side_pool(url: &str) -> Result<PgPool, StoreError> {
    Ok(PgPoolOptions::new().max_connections(1).connect(url).await?)
}

/// Every value of the one column `query` selects.
pub(super) async fn text_column(url: &str, query: &str) -> Result<Vec<Option<String>>, StoreError> {
    let pool = side_pool(url).await?;
    let values = sqlx::query_scalar(query).fetch_all(&pool).await?;
    pool.close().await;
    Ok(values)
}

/// The one integer `query` selects.
pub(super) async fn integer(url: &str, query: &str) -> Result<i64, StoreError> {
    let pool = side_pool(url).await?;
    let value = sqlx::query_scalar(query).fetch_one(&pool).await?;
    pool.close().await;
    Ok(value)
}

/// Whether Waymark's tables are in the database at `url`.
pub(super) async fn has_tables(url: &str) -> Result<bool, StoreError> {
    let pool = side_pool(url).await?;
    let found: bool = sqlx::query_scalar("SELECT to_regclass('settings') IS NOT NULL")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(found)
}

/// Drop everything in the database's current schema (the demo's fresh start, after it made
/// sure the data is its own).
pub(super) async fn drop_everything(url: &str) -> Result<(), StoreError> {
    let pool = side_pool(url).await?;
    sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

/// Shipments, timelines and the outbox in a PostgreSQL database that several replicas share.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Seals and opens carrier credentials.
    vault: Arc<Vault>,
}

impl PostgresStore {
    /// Connect to the database a URL like `postgres://user@host/waymark` names, sealing secrets
    /// with `vault`. The database must exist; the schema is brought up to date by
    /// [`Store::migrate`], not here.
    pub async fn connect(url: &str, vault: Vault) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect(url)
            .await?;
        Ok(PostgresStore {
            pool,
            vault: Arc::new(vault),
        })
    }

    /// The connection pool, for tests that look (and write) underneath the trait.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn shipments_where(
        &self,
        sql: &'static str,
        value: &str,
    ) -> Result<Vec<Shipment>, StoreError> {
        let rows = sqlx::query(sql).bind(value).fetch_all(&self.pool).await?;
        decode_shipments(&rows)
    }
}

/// Shipment rows, checked.
fn decode_shipments(rows: &[PgRow]) -> Result<Vec<Shipment>, StoreError> {
    rows.iter()
        .map(|row| ShipmentRow::decode(row)?.into_shipment())
        .collect()
}

/// Ids as the text PostgreSQL keeps them, bound as one `TEXT[]` and read with `= ANY(…)`, so a
/// list of any length is one statement with a fixed text.
fn id_list(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(Uuid::to_string).collect()
}

fn parse_ids(table: &'static str, ids: &[String]) -> Result<Vec<Uuid>, StoreError> {
    ids.iter()
        .map(|id| Uuid::parse_str(id).map_err(|e| corrupt(table, format!("id `{id}`: {e}"))))
        .collect()
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        // sqlx's migrator holds a PostgreSQL advisory lock while it runs: replicas starting at
        // once migrate one after the other, and the later ones find nothing left to do.
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let value = sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(value)
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        // The no-op update makes RETURNING hand back the stored value when the key exists, so
        // two replicas racing to set it agree on one value.
        let stored = sqlx::query_scalar::<_, String>(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = settings.value RETURNING value",
        )
        .bind(key)
        .bind(value)
        .fetch_one(&self.pool)
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
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(merchant.to_string())
        .bind(channel.as_str())
        .bind(super::recipient_hash(recipient))
        .bind(millis(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn is_suppressed(
        &self,
        merchant: MerchantId,
        channel: Channel,
        recipient: &str,
    ) -> Result<bool, StoreError> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM suppressions \
             WHERE merchant_id = $1 AND channel = $2 AND recipient_hash = $3",
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

    async fn create_carrier_account(&self, account: &CarrierAccount) -> Result<(), StoreError> {
        self.insert_account(account).await
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
        let row = sqlx::query("SELECT * FROM shipments WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| ShipmentRow::decode(&row)?.into_shipment())
            .transpose()
    }

    async fn merchant_shipment(
        &self,
        merchant: MerchantId,
        id: Uuid,
    ) -> Result<Option<Shipment>, StoreError> {
        let row = sqlx::query("SELECT * FROM shipments WHERE id = $1 AND merchant_id = $2")
            .bind(id.to_string())
            .bind(merchant.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| ShipmentRow::decode(&row)?.into_shipment())
            .transpose()
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

    async fn merchant_shipments(
        &self,
        merchant: MerchantId,
        filter: &ShipmentFilter,
        limit: u32,
    ) -> Result<Vec<Shipment>, StoreError> {
        self.list_shipments(merchant, filter, limit).await
    }

    async fn shipments_by_number(
        &self,
        number: &TrackingNumber,
    ) -> Result<Vec<Shipment>, StoreError> {
        self.shipments_where(
            "SELECT * FROM shipments WHERE tracking_number = $1 ORDER BY created_at, id",
            number.as_str(),
        )
        .await
    }

    async fn shipment_by_token(&self, token: &str) -> Result<Option<Shipment>, StoreError> {
        let mut found = self
            .shipments_where(
                "SELECT * FROM shipments WHERE public_token = $1 AND erased_at IS NULL",
                token,
            )
            .await?;
        Ok(found.pop())
    }

    async fn set_muted(&self, id: Uuid, muted: bool) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE shipments SET muted = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(muted)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn timeline(&self, shipment_id: Uuid) -> Result<Vec<KeyedEvent>, StoreError> {
        // `rowid` (an identity column here) breaks ties between scans of the same millisecond
        // in the order they arrived.
        let rows =
            sqlx::query("SELECT * FROM events WHERE shipment_id = $1 ORDER BY occurred_at, rowid")
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
            "SELECT * FROM estimate_changes WHERE shipment_id = $1 ORDER BY recorded_at, id",
        )
        .bind(shipment_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_estimate_change).collect()
    }

    async fn fired_keys(&self, shipment_id: Uuid) -> Result<HashSet<String>, StoreError> {
        let keys = sqlx::query_scalar::<_, String>(
            "SELECT dedupe_key FROM notifications WHERE shipment_id = $1",
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
             WHERE shipment_id = $1 AND trigger = $2 AND state = 'sent'",
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
        // PostgreSQL reads `shipments_due` (or `shipments_due_by_priority`) in order and stops
        // at the limit, locking as it goes; no UNION is needed (nor allowed with FOR UPDATE).
        let sql = match claim.order {
            ClaimOrder::DueFirst => claim_sql!("next_poll_at"),
            ClaimOrder::NearestDeliveryFirst => claim_sql!("poll_priority, next_poll_at"),
        };
        let rows = sqlx::query(sql)
            .bind(claim.carrier_account_id.to_string())
            .bind(millis(claim.now))
            .bind(i64::from(claim.limit))
            .bind(claim.owner)
            .bind(millis(claim.lease_until))
            .fetch_all(&self.pool)
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
        // One statement, so two replicas cannot both take the last calls of the day: the
        // conflicting insert waits for the other's row and checks the quota on its new count.
        let result = sqlx::query(
            "INSERT INTO quota_usage (carrier_account_id, day, calls) \
             SELECT $1, $2, $3 WHERE $4::BIGINT IS NULL OR $3 <= $4 \
             ON CONFLICT (carrier_account_id, day) \
             DO UPDATE SET calls = quota_usage.calls + excluded.calls \
             WHERE $4::BIGINT IS NULL OR quota_usage.calls + excluded.calls <= $4",
        )
        .bind(carrier_account_id.to_string())
        .bind(day)
        .bind(i64::from(calls))
        .bind(quota.map(i64::from))
        .execute(&self.pool)
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
        self.next_call_slot(carrier_account_id, now, interval, burst)
            .await
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
            "UPDATE shipments SET next_poll_at = $3 + ",
            spread_by_priority!("$4"),
            ", lease_owner = NULL, lease_expires_at = NULL, updated_at = $2 WHERE ",
            due_filter!()
        ))
        .bind(carrier_account_id.to_string())
        .bind(millis(now))
        .bind(millis(until))
        .bind(spread.as_millis().max(0) as i64)
        .execute(&self.pool)
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
            "UPDATE shipments SET lease_expires_at = $3 \
             WHERE lease_owner = $2 AND lease_expires_at >= $4 AND id = ANY($1) RETURNING id",
        )
        .bind(id_list(ids))
        .bind(owner)
        .bind(millis(lease_until))
        .bind(millis(now))
        .fetch_all(&self.pool)
        .await?;
        parse_ids("shipments", &held)
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
            "UPDATE shipments SET lease_owner = NULL, lease_expires_at = NULL, next_poll_at = $3 + ",
            spread_by_priority!("$4"),
            " WHERE lease_owner = $2 AND id = ANY($1)"
        ))
        .bind(id_list(ids))
        .bind(owner)
        .bind(millis(next_poll_at))
        .bind(spread.as_millis().max(0) as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn record_poll(&self, write: &PollWrite) -> Result<bool, StoreError> {
        self.write_poll(write).await
    }

    async fn record_poll_failure(&self, failure: &PollFailure) -> Result<bool, StoreError> {
        self.write_failure(failure).await
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
            .fetch_all(&self.pool)
            .await?;
        let mut notifications = rows
            .iter()
            .map(decode_notification)
            .collect::<Result<Vec<_>, _>>()?;
        if notifications.is_empty() {
            return Ok(Vec::new());
        }
        notifications.sort_by_key(|n| (n.available_at, n.seq, n.id));

        let shipment_ids: Vec<Uuid> = notifications.iter().map(|n| n.shipment_id).collect();
        let shipment_rows = sqlx::query("SELECT * FROM shipments WHERE id = ANY($1)")
            .bind(id_list(&shipment_ids))
            .fetch_all(&self.pool)
            .await?;
        let shipments: HashMap<Uuid, Shipment> = decode_shipments(&shipment_rows)?
            .into_iter()
            .map(|shipment| (shipment.id, shipment))
            .collect();
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
            "UPDATE notifications SET lease_expires_at = $1 \
             WHERE id = $2 AND lease_owner = $3 AND state = 'sending' AND lease_expires_at >= $4",
        )
        .bind(millis(lease_until))
        .bind(id.to_string())
        .bind(owner)
        .bind(millis(now))
        .execute(&self.pool)
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
            "UPDATE notifications SET attempts = attempts + 1, lease_expires_at = $3 \
             WHERE id = $1 AND lease_owner = $2 AND state = 'sending' AND lease_expires_at >= $4 \
             RETURNING attempts",
        )
        .bind(id.to_string())
        .bind(owner)
        .bind(millis(lease_until))
        .bind(millis(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(attempts.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    async fn thread_message_ids(&self, shipment_id: Uuid) -> Result<Vec<String>, StoreError> {
        let ids = sqlx::query_scalar::<_, String>(
            "SELECT message_id FROM notifications \
             WHERE shipment_id = $1 AND state = 'sent' AND message_id IS NOT NULL ORDER BY seq",
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
        // $1 to $3 are the same for every outcome; each outcome binds its own values from $4.
        let finish = |sql| sqlx::query(sql).bind(id.clone()).bind(owner).bind(now);
        let query = match completion {
            Completion::Sent {
                message_id,
                provider_response,
            } => finish(finish_notification!(
                "state = 'sent', sent_at = $3, message_id = $4, provider_response = $5"
            ))
            .bind(message_id)
            .bind(provider_response),
            Completion::Retry {
                error,
                available_at,
            } => finish(finish_notification!(
                "state = 'pending', last_error = $4, available_at = $5"
            ))
            .bind(error)
            .bind(millis(*available_at)),
            Completion::Failed { error } => {
                finish(finish_notification!("state = 'failed', last_error = $4")).bind(error)
            }
            Completion::Deferred { available_at } => {
                finish(finish_notification!("state = 'pending', available_at = $4"))
                    .bind(millis(*available_at))
            }
            Completion::Suppressed { why } => finish(finish_notification!(
                "state = 'suppressed', last_error = $4"
            ))
            .bind(why),
        };
        let result = query.execute(&self.pool).await?;
        Ok(result.rows_affected() == 1)
    }

    async fn notifications(&self, shipment_id: Uuid) -> Result<Vec<Notification>, StoreError> {
        let rows = sqlx::query("SELECT * FROM notifications WHERE shipment_id = $1 ORDER BY seq")
            .bind(shipment_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_notification).collect()
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        // `next_poll_at IS NOT NULL` is the same as `active` (a CHECK says so) and counts over
        // the small partial index instead of the table.
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

    async fn poll_errors(&self, shipment: Uuid) -> Result<Vec<PollErrorRecord>, StoreError> {
        let rows: Vec<(String, String, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT id, kind, detail, excerpt, occurred_at FROM poll_errors \
             WHERE shipment_id = $1 ORDER BY occurred_at, id",
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
}

#[cfg(test)]
#[path = "postgres_tests.rs"]
mod tests;

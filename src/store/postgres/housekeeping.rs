//! The periodic jobs' side of the PostgreSQL store: job leases, expiring shipments Waymark gives up
//! on, and pruning what is kept only for a while.

use jiff::Timestamp;
use uuid::Uuid;

use super::{PostgresStore, corrupt, millis};
use crate::store::{ExpiredShipment, MerchantNotice, StoreError};

impl PostgresStore {
    pub(super) async fn claim_job_row(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        first_run_at: Timestamp,
    ) -> Result<bool, StoreError> {
        sqlx::query("INSERT INTO jobs (name, next_run_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(millis(first_run_at))
            .execute(&self.pool)
            .await?;
        // One statement: a replica asking at the same moment skips the row this one is
        // taking rather than waiting for it, and finds it held once it looks again.
        let taken = sqlx::query(
            "UPDATE jobs SET lease_owner = $2, lease_expires_at = $4, last_started_at = $3 \
             WHERE name IN (SELECT name FROM jobs WHERE name = $1 AND next_run_at <= $3 \
               AND (lease_owner IS NULL OR lease_expires_at < $3) FOR UPDATE SKIP LOCKED)",
        )
        .bind(name)
        .bind(owner)
        .bind(millis(now))
        .bind(millis(lease_until))
        .execute(&self.pool)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    pub(super) async fn extend_job_row(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let kept = sqlx::query(
            "UPDATE jobs SET lease_expires_at = $4 \
             WHERE name = $1 AND lease_owner = $2 AND lease_expires_at >= $3",
        )
        .bind(name)
        .bind(owner)
        .bind(millis(now))
        .bind(millis(lease_until))
        .execute(&self.pool)
        .await?;
        Ok(kept.rows_affected() == 1)
    }

    pub(super) async fn finish_job_row(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        outcome: &str,
        next_run_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL, last_finished_at = $3, \
             last_outcome = $4, next_run_at = $5 WHERE name = $1 AND lease_owner = $2",
        )
        .bind(name)
        .bind(owner)
        .bind(millis(now))
        .bind(outcome)
        .bind(millis(next_run_at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn expire(
        &self,
        now: Timestamp,
        never_found_before: Timestamp,
        silent_before: Timestamp,
    ) -> Result<Vec<ExpiredShipment>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A parcel with no scan yet is "never found" once it is older than the first limit; any
        // parcel is given up once its last sign of life is older than the second.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "UPDATE shipments SET status = 'expired', reason = NULL, active = FALSE, \
             next_poll_at = NULL, poll_priority = 3, updated_at = $1 \
             WHERE next_poll_at IS NOT NULL \
               AND (lease_owner IS NULL OR lease_expires_at < $1) \
               AND ((last_event_at IS NULL AND created_at < $2) \
                    OR COALESCE(last_event_at, created_at) < $3) \
             RETURNING id, CASE WHEN last_event_at IS NULL THEN 'never_found' ELSE 'no_news' END",
        )
        .bind(millis(now))
        .bind(millis(never_found_before))
        .bind(millis(silent_before))
        .fetch_all(&mut *tx)
        .await?;
        let mut expired = Vec::with_capacity(rows.len());
        for (id, why) in rows {
            let why = if why == "never_found" {
                "never_found"
            } else {
                "no_news"
            };
            let detail = match why {
                "never_found" => {
                    "the carrier never found the tracking number; Waymark stopped asking"
                }
                _ => "the carrier has reported nothing for too long; Waymark stopped asking",
            };
            sqlx::query(
                "INSERT INTO merchant_notices (id, shipment_id, kind, detail, created_at) \
                 VALUES ($1, $2, 'shipment_expired', $3, $4)",
            )
            .bind(Uuid::now_v7().to_string())
            .bind(&id)
            .bind(detail)
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
            let shipment_id = Uuid::parse_str(&id)
                .map_err(|e| corrupt("shipments", format!("id `{id}`: {e}")))?;
            expired.push(ExpiredShipment { shipment_id, why });
        }
        tx.commit().await?;
        Ok(expired)
    }

    pub(super) async fn notices_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<MerchantNotice>, StoreError> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, shipment_id, kind, detail, created_at FROM merchant_notices \
             WHERE created_at >= $1 ORDER BY created_at, id",
        )
        .bind(millis(since))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, shipment_id, kind, detail, created_at)| {
                let uuid = |text: &str| {
                    Uuid::parse_str(text)
                        .map_err(|e| corrupt("merchant_notices", format!("`{text}`: {e}")))
                };
                Ok(MerchantNotice {
                    id: uuid(&id)?,
                    shipment_id: uuid(&shipment_id)?,
                    kind,
                    detail,
                    created_at: Timestamp::from_millisecond(created_at)
                        .map_err(|e| corrupt("merchant_notices", e))?,
                })
            })
            .collect()
    }

    /// The finished, not yet erased shipments to erase now.
    pub(super) async fn erase_finished(
        &self,
        finished_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM shipments \
             WHERE next_poll_at IS NULL AND erased_at IS NULL AND updated_at < $1 \
             ORDER BY updated_at LIMIT $2",
        )
        .bind(millis(finished_before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        self.erase(&ids, now).await
    }

    pub(super) async fn erase_one(&self, id: Uuid, now: Timestamp) -> Result<bool, StoreError> {
        Ok(self.erase(&[id.to_string()], now).await? == 1)
    }

    /// Erase the personal data of the shipments `ids`, in one transaction. There is no log to
    /// flush as in SQLite: the rows' old versions are dead once this commits, and VACUUM
    /// (autovacuum) reclaims them.
    async fn erase(&self, ids: &[String], now: Timestamp) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let now = millis(now);
        let mut tx = self.pool.begin().await?;
        let erased = sqlx::query(
            "UPDATE shipments SET customer_email = '', customer_name = NULL, customer_phone = NULL, \
             destination_postal_code = NULL, order_reference = NULL, \
             public_token = 'erased:' || id, last_error = NULL, last_error_at = NULL, \
             active = FALSE, next_poll_at = NULL, lease_owner = NULL, lease_expires_at = NULL, \
             erased_at = $2, updated_at = $2 \
             WHERE erased_at IS NULL AND id = ANY($1)",
        )
        .bind(ids)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE notifications SET recipient = '', provider_response = NULL, \
             last_error = NULL, \
             facts = (CASE WHEN jsonb_typeof(facts::jsonb -> 'event') = 'object' \
                          THEN jsonb_set(facts::jsonb - 'signed_by' - 'delivery_change', \
                                         '{event,text}', '\"\"') \
                          ELSE facts::jsonb - 'signed_by' - 'delivery_change' END)::text, \
             state = CASE WHEN state IN ('pending', 'sending') THEN 'suppressed' ELSE state END, \
             lease_owner = NULL, lease_expires_at = NULL, updated_at = $2 \
             WHERE shipment_id = ANY($1)",
        )
        .bind(ids)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE events SET raw_text = '' WHERE shipment_id = ANY($1)")
            .bind(ids)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM poll_errors WHERE shipment_id = ANY($1)")
            .bind(ids)
            .execute(&mut *tx)
            .await?;
        super::delivery_changes::erase_changes(&mut tx, ids).await?;
        super::merchant_emails::erase_merchant_emails(&mut tx, ids).await?;
        tx.commit().await?;
        Ok(erased)
    }

    pub(super) async fn prune_errors(
        &self,
        before: Timestamp,
        keep_per_shipment: u32,
    ) -> Result<u64, StoreError> {
        let pruned = sqlx::query(
            "DELETE FROM poll_errors WHERE occurred_at < $1 OR id IN ( \
               SELECT id FROM ( \
                 SELECT id, ROW_NUMBER() OVER ( \
                   PARTITION BY shipment_id ORDER BY occurred_at DESC, id DESC) AS newest \
                 FROM poll_errors) AS ranked \
               WHERE newest > $2)",
        )
        .bind(millis(before))
        .bind(i64::from(keep_per_shipment))
        .execute(&self.pool)
        .await?;
        Ok(pruned.rows_affected())
    }
}

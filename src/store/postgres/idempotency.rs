//! Answers kept for the API's `Idempotency-Key`s, per merchant.

use jiff::Timestamp;

use super::{PostgresStore, corrupt, millis};
use crate::domain::MerchantId;
use crate::store::{StoreError, StoredResponse};

impl PostgresStore {
    pub(super) async fn kept_response(
        &self,
        merchant: MerchantId,
        key: &str,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let row: Option<(String, i64, String)> = sqlx::query_as(
            "SELECT request_hash, response_status, response_body FROM idempotency_keys \
             WHERE merchant_id = $1 AND key = $2",
        )
        .bind(merchant.to_string())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(stored).transpose()
    }

    pub(super) async fn keep_response(
        &self,
        merchant: MerchantId,
        key: &str,
        request_hash: &str,
        status: u16,
        body: &str,
        now: Timestamp,
    ) -> Result<StoredResponse, StoreError> {
        // The no-op update makes RETURNING hand back the answer already kept, so two requests
        // racing with one key (on two replicas too) agree on one answer.
        let row: (String, i64, String) = sqlx::query_as(
            "INSERT INTO idempotency_keys \
             (merchant_id, key, request_hash, response_status, response_body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (merchant_id, key) DO UPDATE SET key = idempotency_keys.key \
             RETURNING request_hash, response_status, response_body",
        )
        .bind(merchant.to_string())
        .bind(key)
        .bind(request_hash)
        .bind(i64::from(status))
        .bind(body)
        .bind(millis(now))
        .fetch_one(&self.pool)
        .await?;
        stored(row)
    }

    pub(super) async fn forget_responses(&self, before: Timestamp) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(millis(before))
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}

fn stored(
    (request_hash, status, body): (String, i64, String),
) -> Result<StoredResponse, StoreError> {
    Ok(StoredResponse {
        request_hash,
        status: u16::try_from(status).map_err(|e| corrupt("idempotency_keys", e))?,
        body,
    })
}

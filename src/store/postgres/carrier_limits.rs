//! What keeps a carrier account within its limits for every replica at once, in PostgreSQL:
//! the next free call slot of its rate, and its shared OAuth2 token (sealed).

use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

use super::PostgresStore;
use crate::carriers::tokens::SharedToken;
use crate::store::StoreError;
use crate::store::rows::{Cols, millis};

/// What the token of `account` is sealed for; the same as SQLite's, so a copied token opens.
fn token_context(account: Uuid) -> String {
    format!("carrier_tokens.token:{account}")
}

impl PostgresStore {
    pub(super) async fn next_call_slot(
        &self,
        account: Uuid,
        now: Timestamp,
        interval: SignedDuration,
        burst: u32,
    ) -> Result<Timestamp, StoreError> {
        // One statement; the row lock of the upsert puts concurrent callers in line.
        let interval = interval.as_millis().max(1) as i64;
        let window = interval * i64::from(burst.max(1) - 1);
        let next: i64 = sqlx::query_scalar(
            "INSERT INTO carrier_rate_slots (carrier_account_id, next_slot_at) \
             VALUES ($1, $2 - $4 + $3) \
             ON CONFLICT (carrier_account_id) DO UPDATE \
             SET next_slot_at = GREATEST(carrier_rate_slots.next_slot_at, $2 - $4) + $3 \
             RETURNING next_slot_at",
        )
        .bind(account.to_string())
        .bind(millis(now))
        .bind(interval)
        .bind(window)
        .fetch_one(&self.pool)
        .await?;
        let slot = Cols::new("carrier_rate_slots", &account.to_string())
            .time("next_slot_at", next - interval)?;
        Ok(slot.max(now))
    }

    pub(super) async fn shared_token(
        &self,
        account: Uuid,
    ) -> Result<Option<SharedToken>, StoreError> {
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT token_id, token, expires_at FROM carrier_tokens \
             WHERE carrier_account_id = $1 AND token IS NOT NULL",
        )
        .bind(account.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, sealed, expires_at)) = row else {
            return Ok(None);
        };
        let c = Cols::new("carrier_tokens", &id);
        // A token sealed under a key that is gone is as good as none: a new one is fetched.
        let Ok(token) = self.vault.open_string(&token_context(account), &sealed) else {
            return Ok(None);
        };
        Ok(Some(SharedToken {
            id: c.uuid("token_id", &id)?,
            token,
            expires_at: c.time("expires_at", expires_at)?,
        }))
    }

    pub(super) async fn begin_token_fetch(
        &self,
        account: Uuid,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "INSERT INTO carrier_tokens (carrier_account_id, fetch_owner, fetch_until) \
             VALUES ($1, $2, $4) \
             ON CONFLICT (carrier_account_id) DO UPDATE SET fetch_owner = $2, fetch_until = $4 \
             WHERE carrier_tokens.fetch_owner IS NULL OR carrier_tokens.fetch_owner = $2 \
             OR carrier_tokens.fetch_until <= $3",
        )
        .bind(account.to_string())
        .bind(owner)
        .bind(millis(now))
        .bind(millis(until))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    pub(super) async fn keep_token(
        &self,
        account: Uuid,
        token: &SharedToken,
    ) -> Result<(), StoreError> {
        let sealed = self
            .vault
            .seal(&token_context(account), token.token.expose().as_bytes());
        sqlx::query(
            "INSERT INTO carrier_tokens (carrier_account_id, token_id, token, expires_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (carrier_account_id) DO UPDATE SET token_id = $2, token = $3, \
             expires_at = $4, fetch_owner = NULL, fetch_until = NULL",
        )
        .bind(account.to_string())
        .bind(token.id.to_string())
        .bind(sealed)
        .bind(millis(token.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn abandon_token_fetch(
        &self,
        account: Uuid,
        owner: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE carrier_tokens SET fetch_owner = NULL, fetch_until = NULL \
             WHERE carrier_account_id = $1 AND fetch_owner = $2",
        )
        .bind(account.to_string())
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn drop_token(&self, account: Uuid, id: Uuid) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE carrier_tokens SET token_id = NULL, token = NULL, expires_at = NULL \
             WHERE carrier_account_id = $1 AND token_id = $2",
        )
        .bind(account.to_string())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

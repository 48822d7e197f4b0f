//! Merchants and their API keys in SQLite.

use jiff::Timestamp;

use super::{Cols, SqliteStore, corrupt, millis};
use crate::domain::{ApiKey, ApiKeyHash, Merchant, MerchantId, MerchantSettings};
use crate::store::rows::{decode_api_key, decode_merchant};
use crate::store::{MerchantLogo, StoreError};

/// How stale `last_used_at` may get: a busy key is written at most once a minute, not once a
/// request.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

impl SqliteStore {
    pub(super) async fn insert_merchant(&self, merchant: &Merchant) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO merchants (id, slug, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(merchant.id.to_string())
        .bind(merchant.slug.as_str())
        .bind(&merchant.name)
        .bind(millis(merchant.created_at))
        .execute(&self.writer)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Duplicate {
                    field: "slug",
                    detail: format!("a merchant `{}` exists", merchant.slug),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn merchant_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<Merchant>, StoreError> {
        let sql = match column {
            "id" => "SELECT * FROM merchants WHERE id = ?1",
            _ => "SELECT * FROM merchants WHERE slug = ?1",
        };
        let row = sqlx::query(sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_merchant).transpose()
    }

    pub(super) async fn all_merchants(&self) -> Result<Vec<Merchant>, StoreError> {
        let rows = sqlx::query("SELECT * FROM merchants ORDER BY slug")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_merchant).collect()
    }

    pub(super) async fn settings_of(
        &self,
        merchant: MerchantId,
    ) -> Result<Option<MerchantSettings>, StoreError> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT settings FROM merchants WHERE id = ?1")
                .bind(merchant.to_string())
                .fetch_optional(&self.pool)
                .await?;
        text.map(|text| {
            serde_json::from_str(&text)
                .map_err(|e| corrupt("merchants", format!("row {merchant}: settings: {e}")))
        })
        .transpose()
    }

    pub(super) async fn write_settings(
        &self,
        merchant: MerchantId,
        settings: &MerchantSettings,
    ) -> Result<bool, StoreError> {
        let text = serde_json::to_string(settings).map_err(|e| corrupt("merchants", e))?;
        let result = sqlx::query("UPDATE merchants SET settings = ?2 WHERE id = ?1")
            .bind(merchant.to_string())
            .bind(text)
            .execute(&self.writer)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    pub(super) async fn write_logo(
        &self,
        merchant: MerchantId,
        logo: Option<&MerchantLogo>,
    ) -> Result<bool, StoreError> {
        let result = match logo {
            Some(logo) => {
                sqlx::query(
                    "INSERT INTO merchant_logos (merchant_id, content_type, bytes, updated_at) \
                     SELECT id, ?2, ?3, ?4 FROM merchants WHERE id = ?1 \
                     ON CONFLICT (merchant_id) DO UPDATE SET content_type = excluded.content_type, \
                     bytes = excluded.bytes, updated_at = excluded.updated_at",
                )
                .bind(merchant.to_string())
                .bind(&logo.content_type)
                .bind(&logo.bytes)
                .bind(millis(logo.updated_at))
                .execute(&self.writer)
                .await?
            }
            None => {
                sqlx::query("DELETE FROM merchant_logos WHERE merchant_id = ?1")
                    .bind(merchant.to_string())
                    .execute(&self.writer)
                    .await?
            }
        };
        Ok(result.rows_affected() == 1)
    }

    pub(super) async fn logo_of(
        &self,
        merchant: MerchantId,
    ) -> Result<Option<MerchantLogo>, StoreError> {
        let row: Option<(String, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT content_type, bytes, updated_at FROM merchant_logos WHERE merchant_id = ?1",
        )
        .bind(merchant.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let id = merchant.to_string();
        let c = Cols::new("merchant_logos", &id);
        row.map(|(content_type, bytes, updated_at)| {
            Ok(MerchantLogo {
                content_type,
                bytes,
                updated_at: c.time("updated_at", updated_at)?,
            })
        })
        .transpose()
    }

    pub(super) async fn logo_version(
        &self,
        merchant: MerchantId,
    ) -> Result<Option<Timestamp>, StoreError> {
        let at: Option<i64> =
            sqlx::query_scalar("SELECT updated_at FROM merchant_logos WHERE merchant_id = ?1")
                .bind(merchant.to_string())
                .fetch_optional(&self.pool)
                .await?;
        let id = merchant.to_string();
        let c = Cols::new("merchant_logos", &id);
        at.map(|at| c.time("updated_at", at)).transpose()
    }

    pub(super) async fn templates_of(
        &self,
        merchant: MerchantId,
    ) -> Result<Vec<(String, String, Timestamp)>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT name, source, updated_at FROM merchant_templates \
             WHERE merchant_id = ?1 ORDER BY name",
        )
        .bind(merchant.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(name, source, at)| {
                let at = Cols::new("merchant_templates", &name).time("updated_at", at)?;
                Ok((name, source, at))
            })
            .collect()
    }

    pub(super) async fn write_template(
        &self,
        merchant: MerchantId,
        name: &str,
        source: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO merchant_templates (merchant_id, name, source, updated_at) \
             VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (merchant_id, name) DO UPDATE SET \
               source = excluded.source, updated_at = excluded.updated_at",
        )
        .bind(merchant.to_string())
        .bind(name)
        .bind(source)
        .bind(millis(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(super) async fn remove_template(
        &self,
        merchant: MerchantId,
        name: &str,
    ) -> Result<bool, StoreError> {
        let result =
            sqlx::query("DELETE FROM merchant_templates WHERE merchant_id = ?1 AND name = ?2")
                .bind(merchant.to_string())
                .bind(name)
                .execute(&self.writer)
                .await?;
        Ok(result.rows_affected() == 1)
    }

    pub(super) async fn insert_api_key(
        &self,
        key: &ApiKey,
        hash: &ApiKeyHash,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, merchant_id, name, prefix, key_hash, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(key.id.to_string())
        .bind(key.merchant_id.to_string())
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(hash.as_str())
        .bind(millis(key.created_at))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(super) async fn merchant_api_keys(
        &self,
        merchant: MerchantId,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM api_keys WHERE merchant_id = ?1 ORDER BY created_at, id")
                .bind(merchant.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(decode_api_key).collect()
    }

    pub(super) async fn revoke_key(
        &self,
        merchant: MerchantId,
        id_or_prefix: &str,
        now: Timestamp,
    ) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) \
             WHERE merchant_id = ?1 AND (id = ?2 OR prefix = ?2) RETURNING *",
        )
        .bind(merchant.to_string())
        .bind(id_or_prefix)
        .bind(millis(now))
        .fetch_all(&self.writer)
        .await?;
        match row.as_slice() {
            [] => Ok(None),
            [one] => decode_api_key(one).map(Some),
            // Prefixes are random; two keys of one merchant sharing one is a 1 in 62^8 event,
            // and then both are revoked, which is the safe side.
            [first, ..] => decode_api_key(first).map(Some),
        }
    }

    pub(super) async fn authenticate_key(
        &self,
        hash: &ApiKeyHash,
        now: Timestamp,
    ) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL")
            .bind(hash.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let key = decode_api_key(&row)?;
        let stale = key
            .last_used_at
            .is_none_or(|at| millis(now) - at.as_millisecond() >= LAST_USED_GRANULARITY_MS);
        if stale {
            // Only while it is still not revoked: a revocation that raced this request wins.
            let updated = sqlx::query(
                "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            )
            .bind(key.id.to_string())
            .bind(millis(now))
            .execute(&self.writer)
            .await?;
            if updated.rows_affected() == 0 {
                return Ok(None);
            }
        }
        Ok(Some(key))
    }
}

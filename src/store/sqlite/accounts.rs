//! Carrier accounts in SQLite: each merchant's own, names unique per merchant and carrier, the
//! credentials sealed under the master key (the row holds ciphertext only, bound to the row's
//! id: copied into another row it does not open).

use jiff::Timestamp;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::{Cols, SqliteStore, corrupt, millis};
use crate::carriers::CarrierAccount;
use crate::domain::{CarrierCode, MerchantId};
use crate::secret::Credentials;
use crate::store::StoreError;
use crate::store::rows;

/// The columns an account is written with, in the order they are bound.
const ACCOUNT_INSERT: &str = "INSERT INTO carrier_accounts \
     (id, merchant_id, carrier, name, credentials, base_url, daily_quota, requests_per_second, \
      created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

impl SqliteStore {
    fn bind_account<'q>(
        &self,
        sql: &'q str,
        account: &CarrierAccount,
    ) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
        sqlx::query(sql)
            .bind(account.id.to_string())
            .bind(account.merchant_id.to_string())
            .bind(account.carrier.as_str().to_owned())
            .bind(account.name.clone())
            .bind(self.seal_credentials(account.id, &account.credentials))
            .bind(account.base_url.clone())
            .bind(account.daily_quota.map(i64::from))
            .bind(account.requests_per_second)
            // The trait gives no clock here; an account's creation time is informational only.
            .bind(millis(Timestamp::now()))
    }

    pub(super) async fn insert_account(&self, account: &CarrierAccount) -> Result<(), StoreError> {
        let result = self
            .bind_account(ACCOUNT_INSERT, account)
            .execute(&self.writer)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                if e.message().contains("carrier_accounts.name") {
                    Err(StoreError::Duplicate {
                        field: "name",
                        detail: format!(
                            "`{}` is already the name of a {} account",
                            account.name, account.carrier
                        ),
                    })
                } else {
                    Err(StoreError::Duplicate {
                        field: "id",
                        detail: format!("an account with id {} exists", account.id),
                    })
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn rewrite_account(
        &self,
        account: &CarrierAccount,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE carrier_accounts SET name = ?3, credentials = ?4, base_url = ?5, \
               daily_quota = ?6, requests_per_second = ?7 \
             WHERE id = ?1 AND merchant_id = ?2",
        )
        .bind(account.id.to_string())
        .bind(account.merchant_id.to_string())
        .bind(&account.name)
        .bind(self.seal_credentials(account.id, &account.credentials))
        .bind(account.base_url.as_deref())
        .bind(account.daily_quota.map(i64::from))
        .bind(account.requests_per_second)
        .execute(&self.writer)
        .await;
        match result {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Duplicate {
                    field: "name",
                    detail: format!(
                        "`{}` is already the name of a {} account",
                        account.name, account.carrier
                    ),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn remove_account(
        &self,
        merchant: MerchantId,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with(super::BEGIN_WRITE).await?;
        let used: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM shipments WHERE carrier_account_id = ?1 LIMIT 1)",
        )
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        let owned: Option<String> = sqlx::query_scalar(
            "SELECT id FROM carrier_accounts WHERE id = ?1 AND merchant_id = ?2",
        )
        .bind(id.to_string())
        .bind(merchant.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if owned.is_none() {
            return Ok(false);
        }
        if used > 0 {
            return Err(StoreError::InUse {
                detail: "shipments are registered on this account, and it stays as long as they do"
                    .into(),
            });
        }
        sqlx::query("DELETE FROM quota_usage WHERE carrier_account_id = ?1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM carrier_accounts WHERE id = ?1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn upsert_account(
        &self,
        account: &CarrierAccount,
    ) -> Result<CarrierAccount, StoreError> {
        // The id of an existing account is kept: its shipments point at it. Its credentials are
        // sealed for the new row's id, so they are sealed again for the kept one.
        let sql = format!(
            "{ACCOUNT_INSERT} ON CONFLICT (merchant_id, carrier, name) DO UPDATE SET \
               base_url = excluded.base_url, daily_quota = excluded.daily_quota, \
               requests_per_second = excluded.requests_per_second \
             RETURNING id"
        );
        let row = self
            .bind_account(&sql, account)
            .fetch_one(&self.writer)
            .await?;
        let id: String = row.try_get("id")?;
        let id = Uuid::parse_str(&id).map_err(|e| corrupt("carrier_accounts", e))?;
        sqlx::query("UPDATE carrier_accounts SET credentials = ?2 WHERE id = ?1")
            .bind(id.to_string())
            .bind(self.seal_credentials(id, &account.credentials))
            .execute(&self.writer)
            .await?;
        self.account_by_id(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                table: "carrier_accounts",
                detail: format!(
                    "account `{}` vanished right after it was saved",
                    account.name
                ),
            })
    }

    pub(super) async fn account_by_id(
        &self,
        id: Uuid,
    ) -> Result<Option<CarrierAccount>, StoreError> {
        let row = sqlx::query("SELECT * FROM carrier_accounts WHERE id = ?1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| self.decode_account(&row)).transpose()
    }

    pub(super) async fn account_by_name(
        &self,
        merchant: MerchantId,
        carrier: &CarrierCode,
        name: &str,
    ) -> Result<Option<CarrierAccount>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM carrier_accounts WHERE merchant_id = ?1 AND carrier = ?2 AND name = ?3",
        )
        .bind(merchant.to_string())
        .bind(carrier.as_str())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| self.decode_account(&row)).transpose()
    }

    /// One merchant's accounts, or every merchant's.
    pub(super) async fn accounts(
        &self,
        merchant: Option<MerchantId>,
    ) -> Result<Vec<CarrierAccount>, StoreError> {
        let rows = match merchant {
            Some(merchant) => {
                sqlx::query(
                    "SELECT * FROM carrier_accounts WHERE merchant_id = ?1 ORDER BY carrier, name",
                )
                .bind(merchant.to_string())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query("SELECT * FROM carrier_accounts ORDER BY merchant_id, carrier, name")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(|row| self.decode_account(row)).collect()
    }

    /// What the `credentials` column holds for an account's credentials: their JSON, sealed
    /// for this account under the current master key.
    fn seal_credentials(&self, account: Uuid, credentials: &Credentials) -> String {
        rows::seal_credentials(&self.vault, account, credentials)
    }

    /// The credentials an account's `credentials` column holds (see
    /// [`rows::open_credentials`]); [`SqliteStore::reseal_credentials`] seals plain ones at start.
    fn open_credentials(
        &self,
        c: &Cols<'_>,
        account: Uuid,
        text: &str,
    ) -> Result<Credentials, StoreError> {
        rows::open_credentials(&self.vault, c, account, text)
    }

    /// Seal again every account's credentials that are not sealed under the current master key
    /// (stored in the clear before sealing existed, or under an older key); returns how many.
    /// Each is rewritten only if it did not change meanwhile.
    pub(super) async fn reseal_credentials(&self) -> Result<u64, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, credentials FROM carrier_accounts")
                .fetch_all(&self.pool)
                .await?;
        let mut resealed = 0;
        for (id, text) in rows {
            if !self.vault.needs_reseal(&text) {
                continue;
            }
            let c = Cols::new("carrier_accounts", &id);
            let account = c.uuid("id", &id)?;
            let credentials = self.open_credentials(&c, account, &text)?;
            let updated = sqlx::query(
                "UPDATE carrier_accounts SET credentials = ?2 WHERE id = ?1 AND credentials = ?3",
            )
            .bind(&id)
            .bind(self.seal_credentials(account, &credentials))
            .bind(&text)
            .execute(&self.writer)
            .await?;
            resealed += updated.rows_affected();
        }
        Ok(resealed)
    }

    fn decode_account(&self, row: &SqliteRow) -> Result<CarrierAccount, StoreError> {
        rows::decode_account(&self.vault, row)
    }
}

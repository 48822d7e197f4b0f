//! Carrier accounts in PostgreSQL: each merchant's own, names unique per merchant and carrier,
//! the credentials sealed under the master key and bound to the row's id (see
//! [`crate::store::rows::seal_credentials`]).

use jiff::Timestamp;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Postgres, Row};
use uuid::Uuid;

use super::{PostgresStore, corrupt, millis};
use crate::carriers::CarrierAccount;
use crate::domain::{CarrierCode, MerchantId};
use crate::store::StoreError;
use crate::store::rows::{self, Cols};

/// The constraint that keeps an account's name unique per merchant and carrier, by the name
/// PostgreSQL gave it (migration 0007).
const NAME_CONSTRAINT: &str = "carrier_accounts_merchant_id_carrier_name_key";

/// The columns an account is written with, in the order they are bound.
const ACCOUNT_INSERT: &str = "INSERT INTO carrier_accounts \
     (id, merchant_id, carrier, name, credentials, base_url, daily_quota, requests_per_second, \
      created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Whether `error` is a unique violation (SQLSTATE 23505) of the account-name constraint.
fn name_taken(error: &sqlx::Error) -> Option<bool> {
    match error {
        sqlx::Error::Database(e) if e.is_unique_violation() => {
            Some(e.constraint() == Some(NAME_CONSTRAINT))
        }
        _ => None,
    }
}

fn duplicate_name(account: &CarrierAccount) -> StoreError {
    StoreError::Duplicate {
        field: "name",
        detail: format!(
            "`{}` is already the name of a {} account",
            account.name, account.carrier
        ),
    }
}

impl PostgresStore {
    fn bind_account<'q>(
        &self,
        sql: &'q str,
        account: &CarrierAccount,
    ) -> sqlx::query::Query<'q, Postgres, PgArguments> {
        sqlx::query(sql)
            .bind(account.id.to_string())
            .bind(account.merchant_id.to_string())
            .bind(account.carrier.as_str().to_owned())
            .bind(account.name.clone())
            .bind(rows::seal_credentials(
                &self.vault,
                account.id,
                &account.credentials,
            ))
            .bind(account.base_url.clone())
            .bind(account.daily_quota.map(i64::from))
            .bind(account.requests_per_second)
            // The trait gives no clock here; an account's creation time is informational only.
            .bind(millis(Timestamp::now()))
    }

    pub(super) async fn insert_account(&self, account: &CarrierAccount) -> Result<(), StoreError> {
        let result = self
            .bind_account(ACCOUNT_INSERT, account)
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match name_taken(&e) {
                Some(true) => Err(duplicate_name(account)),
                Some(false) => Err(StoreError::Duplicate {
                    field: "id",
                    detail: format!("an account with id {} exists", account.id),
                }),
                None => Err(e.into()),
            },
        }
    }

    pub(super) async fn rewrite_account(
        &self,
        account: &CarrierAccount,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE carrier_accounts SET name = $3, credentials = $4, base_url = $5, \
               daily_quota = $6, requests_per_second = $7 \
             WHERE id = $1 AND merchant_id = $2",
        )
        .bind(account.id.to_string())
        .bind(account.merchant_id.to_string())
        .bind(&account.name)
        .bind(rows::seal_credentials(
            &self.vault,
            account.id,
            &account.credentials,
        ))
        .bind(account.base_url.as_deref())
        .bind(account.daily_quota.map(i64::from))
        .bind(account.requests_per_second)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(e) if name_taken(&e).is_some() => Err(duplicate_name(account)),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn remove_account(
        &self,
        merchant: MerchantId,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The account's row lock first: a shipment being registered on it meanwhile holds a key
        // share lock on it (its foreign key) and so either committed before this, and is
        // counted below, or waits and then finds the account gone.
        let owned: Option<String> = sqlx::query_scalar(
            "SELECT id FROM carrier_accounts WHERE id = $1 AND merchant_id = $2 FOR UPDATE",
        )
        .bind(id.to_string())
        .bind(merchant.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if owned.is_none() {
            return Ok(false);
        }
        let used: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM shipments WHERE carrier_account_id = $1)",
        )
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        if used {
            return Err(StoreError::InUse {
                detail: "shipments are registered on this account, and it stays as long as they do"
                    .into(),
            });
        }
        sqlx::query("DELETE FROM quota_usage WHERE carrier_account_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM carrier_accounts WHERE id = $1")
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
            .fetch_one(&self.pool)
            .await?;
        let id: String = row.try_get("id")?;
        let id = Uuid::parse_str(&id).map_err(|e| corrupt("carrier_accounts", e))?;
        sqlx::query("UPDATE carrier_accounts SET credentials = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(rows::seal_credentials(
                &self.vault,
                id,
                &account.credentials,
            ))
            .execute(&self.pool)
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
        let row = sqlx::query("SELECT * FROM carrier_accounts WHERE id = $1")
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
            "SELECT * FROM carrier_accounts WHERE merchant_id = $1 AND carrier = $2 AND name = $3",
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
                    "SELECT * FROM carrier_accounts WHERE merchant_id = $1 ORDER BY carrier, name",
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

    /// Seal again every account's credentials that are not sealed under the current master key
    /// (stored in the clear before sealing existed, or under an older key); returns how many.
    /// Each is rewritten only if it did not change meanwhile, so two replicas resealing at
    /// once count each account once.
    pub(super) async fn reseal_credentials(&self) -> Result<u64, StoreError> {
        let stored: Vec<(String, String)> =
            sqlx::query_as("SELECT id, credentials FROM carrier_accounts")
                .fetch_all(&self.pool)
                .await?;
        let mut resealed = 0;
        for (id, text) in stored {
            if !self.vault.needs_reseal(&text) {
                continue;
            }
            let c = Cols::new("carrier_accounts", &id);
            let account = c.uuid("id", &id)?;
            let credentials = rows::open_credentials(&self.vault, &c, account, &text)?;
            let updated = sqlx::query(
                "UPDATE carrier_accounts SET credentials = $2 WHERE id = $1 AND credentials = $3",
            )
            .bind(&id)
            .bind(rows::seal_credentials(&self.vault, account, &credentials))
            .bind(&text)
            .execute(&self.pool)
            .await?;
            resealed += updated.rows_affected();
        }
        Ok(resealed)
    }

    fn decode_account(&self, row: &PgRow) -> Result<CarrierAccount, StoreError> {
        rows::decode_account(&self.vault, row)
    }
}

//! Emails to merchants in SQLite: written with what caused them, claimed by a sender for a
//! while, settled when the mail server answered.

use jiff::Timestamp;
use sqlx::SqliteConnection;

use super::{BEGIN_WRITE, SqliteStore, millis};
use crate::domain::{MerchantEmail, MerchantEmailOutcome, MerchantEmailState, MerchantId};
use crate::store::StoreError;
use crate::store::rows::EmailRow;

/// Write `email` in the transaction of what caused it.
pub(super) async fn insert_merchant_email(
    conn: &mut SqliteConnection,
    email: &MerchantEmail,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO merchant_emails (id, merchant_id, shipment_id, change_id, state, sender, \
         recipient, subject, body, attempts, due_at, last_error, created_at, sent_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .bind(email.id.to_string())
    .bind(email.merchant_id.to_string())
    .bind(email.shipment_id.map(|id| id.to_string()))
    .bind(email.change_id.map(|id| id.to_string()))
    .bind(email.state.as_str())
    .bind(&email.sender)
    .bind(&email.recipient)
    .bind(&email.subject)
    .bind(&email.body)
    .bind(i64::from(email.attempts))
    .bind(email.due_at.map(millis))
    .bind(email.last_error.as_deref())
    .bind(millis(email.created_at))
    .bind(email.sent_at.map(millis))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl SqliteStore {
    pub(super) async fn claim_emails(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<MerchantEmail>, StoreError> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let rows: Vec<EmailRow> = sqlx::query_as(
            "UPDATE merchant_emails SET due_at = ?2 WHERE id IN \
             (SELECT id FROM merchant_emails WHERE state = 'pending' AND due_at <= ?1 \
              ORDER BY due_at LIMIT ?3) \
             RETURNING *",
        )
        .bind(millis(now))
        .bind(millis(hold_until))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut emails = rows
            .into_iter()
            .map(EmailRow::into_email)
            .collect::<Result<Vec<_>, _>>()?;
        emails.sort_by_key(|n| n.created_at);
        Ok(emails)
    }

    pub(super) async fn settle_email(
        &self,
        email: &MerchantEmail,
        outcome: &MerchantEmailOutcome,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (state, due_at, sent_at, error) = match outcome {
            MerchantEmailOutcome::Sent { at } => (MerchantEmailState::Sent, None, Some(*at), None),
            MerchantEmailOutcome::Retry { at, error } => (
                MerchantEmailState::Pending,
                Some(*at),
                None,
                Some(error.as_str()),
            ),
            MerchantEmailOutcome::GaveUp { error } => {
                (MerchantEmailState::Failed, None, None, Some(error.as_str()))
            }
        };
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let updated = sqlx::query(
            "UPDATE merchant_emails SET state = ?2, due_at = ?3, sent_at = ?4, \
             last_error = COALESCE(?5, last_error), attempts = attempts + 1 \
             WHERE id = ?1 AND state = 'pending'",
        )
        .bind(email.id.to_string())
        .bind(state.as_str())
        .bind(due_at.map(millis))
        .bind(sent_at.map(millis))
        .bind(error)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated > 0
            && let Some(change) = email.change_id
        {
            let note = match outcome {
                MerchantEmailOutcome::Sent { .. } => {
                    format!("the merchant was emailed at {}", email.recipient)
                }
                MerchantEmailOutcome::Retry { error, .. } => {
                    format!("emailing the merchant failed ({error}); trying again")
                }
                MerchantEmailOutcome::GaveUp { error } => {
                    format!("emailing the merchant failed for good ({error}); listed in the API")
                }
            };
            super::delivery_changes::append_current_event(&mut tx, change, &note, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn emails_of(
        &self,
        merchant: MerchantId,
    ) -> Result<Vec<MerchantEmail>, StoreError> {
        let rows: Vec<EmailRow> = sqlx::query_as(
            "SELECT * FROM merchant_emails WHERE merchant_id = ?1 ORDER BY created_at, id",
        )
        .bind(merchant.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(EmailRow::into_email).collect()
    }
}

/// Forget the emails about the shipments `ids` (a JSON list) when their customer's data is
/// erased: their text names neighbours and pickup points.
pub(super) async fn erase_merchant_emails(
    conn: &mut SqliteConnection,
    ids: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM merchant_emails WHERE shipment_id IN (SELECT value FROM json_each(?1))",
    )
    .bind(ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

//! Customers' delivery-change requests and their audit trails in PostgreSQL.

use jiff::Timestamp;
use sqlx::PgConnection;
use uuid::Uuid;

use super::poll_writes::insert_notification;
use super::{Cols, PostgresStore, millis};
use crate::domain::{
    ChangeEvent, ChangeRequest, ChangeState, MerchantEmail, MerchantId, NewNotification,
    TrackingNumber,
};
use crate::store::rows::ChangeRow;
use crate::store::{AcceptedChange, StoreError};

fn details_json(request: &ChangeRequest) -> Result<String, StoreError> {
    serde_json::to_string(&request.details)
        .map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))
}

/// Add the next step of `change`'s audit trail.
async fn append_event(
    conn: &mut PgConnection,
    change: Uuid,
    state: ChangeState,
    note: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO delivery_change_events (change_id, seq, at, state, note) VALUES ($1, \
         (SELECT COALESCE(MAX(seq), 0) + 1 FROM delivery_change_events WHERE change_id = $1), \
         $2, $3, $4)",
    )
    .bind(change.to_string())
    .bind(millis(at))
    .bind(state.as_str())
    .bind(note)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Add a step to `change`'s audit trail that leaves it in the state it is in (what became of
/// the email handing it to the merchant).
pub(super) async fn append_current_event(
    conn: &mut PgConnection,
    change: Uuid,
    note: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    // Locked until the commit: the next `seq` below cannot be taken by a change of state
    // written at the same moment by another replica.
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM delivery_changes WHERE id = $1 FOR UPDATE")
            .bind(change.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    let Some(state) = state else {
        return Ok(());
    };
    let state = Cols::new("delivery_changes", &change.to_string()).name("state", &state)?;
    append_event(conn, change, state, note, at).await
}

impl PostgresStore {
    pub(super) async fn insert_delivery_change(
        &self,
        request: &ChangeRequest,
        note: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO delivery_changes (id, shipment_id, merchant_id, kind, details, state, \
             code_hash, code_sent_to, code_expires_at, wrong_codes, client_hash, approval_reason, \
             outcome_note, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(request.id.to_string())
        .bind(request.shipment_id.to_string())
        .bind(request.merchant_id.to_string())
        .bind(request.details.kind().as_str())
        .bind(details_json(request)?)
        .bind(request.state.as_str())
        .bind(request.code_hash.as_deref())
        .bind(request.code_sent_to.as_deref())
        .bind(millis(request.code_expires_at))
        .bind(i64::from(request.wrong_codes))
        .bind(request.client_hash.as_deref())
        .bind(request.approval_reason.as_deref())
        .bind(request.outcome_note.as_deref())
        .bind(millis(request.created_at))
        .bind(millis(request.updated_at))
        .execute(&mut *tx)
        .await?;
        append_event(&mut tx, request.id, request.state, note, request.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn write_delivery_change(
        &self,
        before: &ChangeRequest,
        after: &ChangeRequest,
        note: &str,
        notify: Option<&NewNotification>,
        email: Option<&MerchantEmail>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Only from the state and count it was read in: two approvals, or a code checked twice
        // at once (on two replicas too), change it once. The update holds the row's lock until
        // the commit, so the audit trail's next `seq` is this transaction's to take.
        let updated = sqlx::query(
            "UPDATE delivery_changes SET state = $3, wrong_codes = $4, code_hash = $5, \
             approval_reason = $6, outcome_note = $7, updated_at = $8, details = $9 \
             WHERE id = $1 AND state = $2 AND wrong_codes = $10",
        )
        .bind(after.id.to_string())
        .bind(before.state.as_str())
        .bind(after.state.as_str())
        .bind(i64::from(after.wrong_codes))
        .bind(after.code_hash.as_deref())
        .bind(after.approval_reason.as_deref())
        .bind(after.outcome_note.as_deref())
        .bind(millis(after.updated_at))
        .bind(details_json(after)?)
        .bind(i64::from(before.wrong_codes))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        append_event(&mut tx, after.id, after.state, note, after.updated_at).await?;
        if let Some(new) = notify {
            insert_notification(
                &mut tx,
                &after.shipment_id.to_string(),
                new,
                millis(after.updated_at),
            )
            .await?;
        }
        if let Some(email) = email {
            super::merchant_emails::insert_merchant_email(&mut tx, email).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn delivery_change_by_id(
        &self,
        id: Uuid,
    ) -> Result<Option<ChangeRequest>, StoreError> {
        sqlx::query_as::<_, ChangeRow>("SELECT * FROM delivery_changes WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(ChangeRow::into_request)
            .transpose()
    }

    pub(super) async fn shipment_changes(
        &self,
        shipment: Uuid,
    ) -> Result<Vec<ChangeRequest>, StoreError> {
        sqlx::query_as::<_, ChangeRow>(
            "SELECT * FROM delivery_changes WHERE shipment_id = $1 \
             ORDER BY created_at DESC, id DESC",
        )
        .bind(shipment.to_string())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(ChangeRow::into_request)
        .collect()
    }

    pub(super) async fn merchant_changes(
        &self,
        merchant: MerchantId,
        state: Option<ChangeState>,
        limit: u32,
    ) -> Result<Vec<ChangeRequest>, StoreError> {
        sqlx::query_as::<_, ChangeRow>(
            "SELECT * FROM delivery_changes WHERE merchant_id = $1 AND ($2 IS NULL OR state = $2) \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(merchant.to_string())
        .bind(state.map(ChangeState::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(ChangeRow::into_request)
        .collect()
    }

    pub(super) async fn change_events(&self, id: Uuid) -> Result<Vec<ChangeEvent>, StoreError> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT at, state, note FROM delivery_change_events WHERE change_id = $1 ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let id = id.to_string();
        let c = Cols::new("delivery_change_events", &id);
        rows.into_iter()
            .map(|(at, state, note)| {
                Ok(ChangeEvent {
                    at: c.time("at", at)?,
                    state: c.name("state", &state)?,
                    note,
                })
            })
            .collect()
    }

    pub(super) async fn changes_requested_since(
        &self,
        shipment: Uuid,
        since: Timestamp,
    ) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM delivery_changes WHERE shipment_id = $1 AND created_at >= $2",
        )
        .bind(shipment.to_string())
        .bind(millis(since))
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    pub(super) async fn executed_changes(&self) -> Result<Vec<AcceptedChange>, StoreError> {
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT s.carrier, s.tracking_number, s.created_at, d.id FROM delivery_changes d \
             JOIN shipments s ON s.id = d.shipment_id \
             WHERE d.state = 'executed' AND s.active ORDER BY d.updated_at",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut accepted = Vec::with_capacity(rows.len());
        for (carrier, number, registered, id) in rows {
            let c = Cols::new("delivery_changes", &id);
            let Some(request) = self.delivery_change_by_id(c.uuid("id", &id)?).await? else {
                continue;
            };
            accepted.push(AcceptedChange {
                carrier: c.parse("carrier", &carrier, crate::domain::CarrierCode::parse)?,
                tracking_number: c.parse("tracking_number", &number, TrackingNumber::parse)?,
                registered_at: c.time("created_at", registered)?,
                request,
            });
        }
        Ok(accepted)
    }
}

/// Forget the delivery changes of the shipments `ids` when their customer's data
/// is erased: they name neighbours and where codes went, and their audit trails go with them.
pub(super) async fn erase_changes(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM delivery_change_events WHERE change_id IN \
         (SELECT id FROM delivery_changes WHERE shipment_id = ANY($1))",
    )
    .bind(ids)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM delivery_changes WHERE shipment_id = ANY($1)")
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

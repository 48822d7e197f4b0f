//! A merchant's changes to a registered shipment: the customer's contact details, the promise,
//! muting.

use jiff::Timestamp;
use uuid::Uuid;

use super::{PostgresStore, ShipmentRow, millis};
use crate::domain::{EmailAddress, MerchantId, PhoneNumber, Shipment};
use crate::store::{ShipmentChanges, StoreError};

impl PostgresStore {
    pub(super) async fn change_shipment(
        &self,
        merchant: MerchantId,
        id: Uuid,
        changes: &ShipmentChanges,
        now: Timestamp,
    ) -> Result<Option<Shipment>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The row stays locked until the commit: two changes at once each see the promise the
        // other left, and the estimate history records both steps.
        let before: Option<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT promise_earliest, promise_latest FROM shipments \
             WHERE id = $1 AND merchant_id = $2 AND erased_at IS NULL FOR UPDATE",
        )
        .bind(id.to_string())
        .bind(merchant.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((earliest, latest)) = before else {
            return Ok(None);
        };
        let promise = changes
            .promise
            .map(|w| (w.earliest.to_string(), w.latest.to_string()));
        let row = sqlx::query(
            "UPDATE shipments SET customer_email = $3, customer_name = $4, locale = $5, \
               time_zone = $6, promise_earliest = $7, promise_latest = $8, muted = $9, \
               updated_at = $10, customer_phone = $11 \
             WHERE id = $1 AND merchant_id = $2 RETURNING *",
        )
        .bind(id.to_string())
        .bind(merchant.to_string())
        .bind(
            changes
                .customer
                .email
                .as_ref()
                .map_or("", EmailAddress::as_str),
        )
        .bind(changes.customer.name.as_deref())
        .bind(changes.customer.locale.as_str())
        .bind(changes.customer.time_zone.as_str())
        .bind(promise.as_ref().map(|p| p.0.as_str()))
        .bind(promise.as_ref().map(|p| p.1.as_str()))
        .bind(changes.muted)
        .bind(millis(now))
        .bind(changes.customer.phone.as_ref().map(PhoneNumber::as_str))
        .fetch_one(&mut *tx)
        .await?;
        let previous = earliest.zip(latest);
        if previous != promise {
            let words = match changes.promise {
                Some(window) => format!("the merchant changed the promise to {window}"),
                None => "the merchant withdrew the promise".to_owned(),
            };
            sqlx::query(
                "INSERT INTO estimate_changes (id, shipment_id, source, previous_earliest, \
                   previous_latest, current_earliest, current_latest, reason, recorded_at) \
                 VALUES ($1, $2, 'promise', $3, $4, $5, $6, $7, $8)",
            )
            .bind(Uuid::now_v7().to_string())
            .bind(id.to_string())
            .bind(previous.as_ref().map(|p| p.0.as_str()))
            .bind(previous.as_ref().map(|p| p.1.as_str()))
            .bind(promise.as_ref().map(|p| p.0.as_str()))
            .bind(promise.as_ref().map(|p| p.1.as_str()))
            .bind(words)
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
        }
        let shipment = ShipmentRow::decode(&row)?.into_shipment()?;
        tx.commit().await?;
        Ok(Some(shipment))
    }
}

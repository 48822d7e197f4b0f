//! A merchant's shipments as its API lists them: filtered, newest first, a page at a time,
//! walking the `shipments_merchant` index (merchant, id) backwards from the cursor as in SQLite.

use sqlx::{Postgres, QueryBuilder};

use super::{PostgresStore, decode_shipments, millis};
use crate::domain::{MerchantId, Shipment, Trigger};
use crate::store::{ShipmentFilter, StoreError};

impl PostgresStore {
    pub(super) async fn list_shipments(
        &self,
        merchant: MerchantId,
        filter: &ShipmentFilter,
        limit: u32,
    ) -> Result<Vec<Shipment>, StoreError> {
        let mut sql = QueryBuilder::<Postgres>::new("SELECT * FROM shipments WHERE merchant_id = ");
        sql.push_bind(merchant.to_string());
        if let Some(after) = filter.after {
            sql.push(" AND id < ").push_bind(after.to_string());
        }
        if let Some(status) = filter.status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(reason) = filter.reason {
            sql.push(" AND reason = ").push_bind(reason.as_str());
        }
        if let Some(carrier) = &filter.carrier {
            sql.push(" AND carrier = ")
                .push_bind(carrier.as_str().to_owned());
        }
        if let Some(from) = filter.created_from {
            sql.push(" AND created_at >= ").push_bind(millis(from));
        }
        if let Some(until) = filter.created_until {
            sql.push(" AND created_at < ").push_bind(millis(until));
        }
        if let Some(reference) = &filter.order_reference {
            sql.push(" AND order_reference = ")
                .push_bind(reference.clone());
        }
        if let Some(delayed) = filter.delayed {
            sql.push(if delayed { " AND (" } else { " AND NOT (" });
            sql.push(
                "(estimate_latest IS NOT NULL AND promise_latest IS NOT NULL \
                   AND estimate_latest > promise_latest) \
                 OR EXISTS (SELECT 1 FROM notifications n \
                   WHERE n.shipment_id = shipments.id AND n.trigger = ",
            )
            .push_bind(Trigger::Delayed.as_str())
            .push("))");
        }
        if let Some(stalled) = filter.stalled {
            sql.push(if stalled { " AND " } else { " AND NOT " });
            sql.push(
                "EXISTS (SELECT 1 FROM notifications n \
                   WHERE n.shipment_id = shipments.id AND n.trigger = ",
            )
            .push_bind(Trigger::Stalled.as_str())
            .push(" AND n.created_at > COALESCE(shipments.last_event_at, 0))");
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let rows = sql.build().fetch_all(&self.pool).await?;
        decode_shipments(&rows)
    }
}

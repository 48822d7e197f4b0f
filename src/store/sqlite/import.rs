//! Registering many shipments at once, for a CSV import: one write transaction for a whole batch
//! instead of one per shipment, several shipments per statement, and a tracking number that is
//! already taken refused for its own row only.

use jiff::Timestamp;
use std::collections::HashSet;
use uuid::Uuid;

use super::{BEGIN_WRITE, DEFAULT_POLL_PRIORITY, SqliteStore, millis, public_token};
use crate::domain::{DeliveryWindow, EmailAddress, NewShipment, PhoneNumber, PostalCode, Status};
use crate::store::StoreError;
use crate::store::rows::taken_number;

/// Shipments per INSERT statement. Every statement is a round trip to sqlx's worker thread and
/// a step of SQLite's virtual machine, so packing rows saves most of the per-row cost; at 24
/// parameters a row, 100 rows stay far below SQLite's limit of 32 766 parameters.
const ROWS_PER_STATEMENT: usize = 100;

/// The columns a registration sets, in the order each row's values are written; a new shipment
/// is unmuted and active (the literal `0, 1` ending each row), and its merchant is its carrier
/// account's (looked up by the last parameter of the row, the account again).
const SHIPMENT_COLUMNS: &str = "id, carrier_account_id, carrier, tracking_number, \
    customer_email, customer_name, locale, time_zone, destination_country, order_reference, \
    promise_earliest, promise_latest, public_token, destination_postal_code, customer_phone, \
    order_value_minor, order_currency, signature_required, \
    created_at, updated_at, next_poll_at, status, poll_priority, muted, active, merchant_id";
/// Parameters of one shipment row, before its literal `0, 1` and the merchant's lookup.
const SHIPMENT_PARAMS: usize = 23;
/// How each shipment row ends: unmuted, active, and its account's merchant.
const SHIPMENT_ROW_END: &str = ", 0, 1, (SELECT merchant_id FROM carrier_accounts WHERE id = ?)";
/// Parameters of one promise row (id, shipment, earliest, latest, reason, now), before its
/// literal source.
const PROMISE_PARAMS: usize = 6;

/// `VALUES` rows of `params` anonymous parameters each, every row ending in `tail`.
///
/// The parameters are anonymous (`?`) on purpose, even for values every row shares: sqlx asks
/// SQLite for every bound parameter's name, which SQLite finds by walking the list of numbered
/// and named ones. With a hundred rows of `?NNN` that walk made binding quadratic and the
/// largest part of an import; anonymous parameters are not in that list.
fn values(rows: usize, params: usize, tail: &str) -> String {
    let row = format!("({}{tail})", vec!["?"; params].join(", "));
    vec![row; rows].join(", ")
}

/// The statement that registers `rows` shipments and returns the ids of those it stored: a row
/// whose number the account already has (before, or earlier in the same statement) is skipped.
fn insert_shipments_sql(rows: usize) -> String {
    format!(
        "INSERT INTO shipments ({SHIPMENT_COLUMNS}) VALUES {} \
         ON CONFLICT (carrier_account_id, tracking_number) DO NOTHING RETURNING id",
        values(rows, SHIPMENT_PARAMS, SHIPMENT_ROW_END)
    )
}

/// The statement that keeps `rows` merchants' promises as each shipment's first estimate.
fn insert_promises_sql(rows: usize) -> String {
    format!(
        "INSERT INTO estimate_changes \
         (id, shipment_id, current_earliest, current_latest, reason, recorded_at, source) \
         VALUES {}",
        values(rows, PROMISE_PARAMS, ", 'promise'")
    )
}

impl SqliteStore {
    pub(super) async fn insert_batch(
        &self,
        batch: &[NewShipment],
        now: Timestamp,
    ) -> Result<Vec<Result<Uuid, StoreError>>, StoreError> {
        let ids: Vec<Uuid> = batch.iter().map(|_| Uuid::now_v7()).collect();
        let mut stored = HashSet::with_capacity(batch.len());
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        for (chunk, chunk_ids) in batch
            .chunks(ROWS_PER_STATEMENT)
            .zip(ids.chunks(ROWS_PER_STATEMENT))
        {
            let sql = insert_shipments_sql(chunk.len());
            let mut query = sqlx::query_scalar::<_, String>(&sql);
            for (new, id) in chunk.iter().zip(chunk_ids) {
                query = query
                    .bind(id.to_string())
                    .bind(new.carrier_account_id.to_string())
                    .bind(new.carrier.as_str())
                    .bind(new.tracking_number.as_str())
                    .bind(new.customer.email.as_ref().map_or("", EmailAddress::as_str))
                    .bind(new.customer.name.as_deref())
                    .bind(new.customer.locale.as_str())
                    .bind(new.customer.time_zone.as_str())
                    .bind(new.destination_country.as_str())
                    .bind(new.order_reference.as_deref())
                    .bind(new.promise.map(|w| w.earliest.to_string()))
                    .bind(new.promise.map(|w| w.latest.to_string()))
                    .bind(public_token(*id))
                    .bind(new.destination_postal_code.as_ref().map(PostalCode::as_str))
                    .bind(new.customer.phone.as_ref().map(PhoneNumber::as_str))
                    .bind(new.order_value.as_ref().map(|m| m.amount_minor))
                    .bind(new.order_value.as_ref().map(|m| m.currency.as_str()))
                    .bind(new.signature_required)
                    .bind(millis(now))
                    .bind(millis(now))
                    .bind(millis(now))
                    .bind(Status::Pending.as_str())
                    .bind(DEFAULT_POLL_PRIORITY)
                    .bind(new.carrier_account_id.to_string());
            }
            for id in query.fetch_all(&mut *tx).await? {
                stored.insert(id);
            }
        }
        let ids: Vec<Option<Uuid>> = ids
            .into_iter()
            .map(|id| stored.contains(&id.to_string()).then_some(id))
            .collect();

        // The merchant's promise is the first estimate the customer had, as for a single
        // registration.
        let promised: Vec<(Uuid, DeliveryWindow)> = ids
            .iter()
            .zip(batch)
            .filter_map(|(id, new)| Some(((*id)?, new.promise?)))
            .collect();
        for chunk in promised.chunks(ROWS_PER_STATEMENT) {
            let sql = insert_promises_sql(chunk.len());
            let mut query = sqlx::query(&sql);
            for (id, promise) in chunk {
                query = query
                    .bind(Uuid::now_v7().to_string())
                    .bind(id.to_string())
                    .bind(promise.earliest.to_string())
                    .bind(promise.latest.to_string())
                    .bind(format!(
                        "the merchant promised delivery {promise} at registration"
                    ))
                    .bind(millis(now));
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(ids
            .into_iter()
            .zip(batch)
            .map(|(id, new)| id.ok_or_else(|| taken_number(&new.tracking_number)))
            .collect())
    }
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;

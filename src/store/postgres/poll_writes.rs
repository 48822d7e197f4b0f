//! Poll results in PostgreSQL: each in a transaction of its own, written only while the poll's
//! lease is still held. SQLite groups results into shared transactions to spare its single
//! writer commits; here every replica writes side by side, so a result need not wait for
//! others.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{PostgresStore, millis};
use crate::domain::{NewNotification, Reason};
use crate::store::{PollFailure, PollWrite, StoreError};

impl PostgresStore {
    /// Write one poll's result; `false`, with nothing written, when the lease is no longer held.
    pub(super) async fn write_poll(&self, write: &PollWrite) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let written = write_poll(&mut tx, write).await?;
        if written {
            tx.commit().await?;
        }
        Ok(written)
    }

    /// Record one failed poll; `false`, with nothing written, when the lease is no longer held.
    pub(super) async fn write_failure(&self, failure: &PollFailure) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let written = write_failure(&mut tx, failure).await?;
        if written {
            tx.commit().await?;
        }
        Ok(written)
    }
}

async fn write_poll(conn: &mut PgConnection, write: &PollWrite) -> Result<bool, StoreError> {
    let now = millis(write.now);
    let shipment_id = write.shipment_id.to_string();
    let journey = &write.journey;

    // The update locks the shipment's row until the commit: a claim by another replica (whose
    // lease would make this one stale) waits for it, or this one waits and then finds the
    // lease gone.
    let updated = sqlx::query(
        "UPDATE shipments SET status = $3, reason = $4, estimate_earliest = $5, \
         estimate_latest = $6, last_event_at = $7, active = $8, next_poll_at = $9, \
         poll_priority = $10, poll_failures = 0, last_error = NULL, last_error_at = NULL, \
         last_polled_at = $11, lease_owner = NULL, lease_expires_at = NULL, updated_at = $11, \
         fetch_day = $12, fetches_on_day = $13 \
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(&shipment_id)
    .bind(&write.owner)
    .bind(journey.status.as_str())
    .bind(journey.reason.map(Reason::as_str))
    .bind(journey.carrier_estimate.map(|w| w.earliest.to_string()))
    .bind(journey.carrier_estimate.map(|w| w.latest.to_string()))
    .bind(journey.last_event_at.map(millis))
    // The schema ties `active` to having a next poll; the poll time decides.
    .bind(write.next_poll_at.is_some())
    .bind(write.next_poll_at.map(millis))
    .bind(i64::from(write.poll_priority))
    .bind(now)
    .bind(&write.fetched.day)
    .bind(i64::from(write.fetched.count))
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(false);
    }

    for keyed in &write.new_events {
        let event = &keyed.event;
        sqlx::query(
            "INSERT INTO events \
             (shipment_id, event_key, occurred_at, utc_offset_seconds, status, reason, \
              raw_code, raw_text, location, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (shipment_id, event_key) DO NOTHING",
        )
        .bind(&shipment_id)
        .bind(keyed.key.as_str())
        .bind(millis(event.time.at))
        .bind(event.time.offset_seconds)
        .bind(event.status.as_str())
        .bind(event.reason.map(Reason::as_str))
        .bind(&event.raw_code)
        .bind(&event.raw_text)
        .bind(event.location.as_deref())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }

    if let Some(change) = &write.estimate_change {
        sqlx::query(
            "INSERT INTO estimate_changes \
             (id, shipment_id, source, previous_earliest, previous_latest, current_earliest, \
              current_latest, reason, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(&shipment_id)
        .bind(change.source.as_str())
        .bind(change.previous.map(|w| w.earliest.to_string()))
        .bind(change.previous.map(|w| w.latest.to_string()))
        .bind(change.current.map(|w| w.earliest.to_string()))
        .bind(change.current.map(|w| w.latest.to_string()))
        .bind(&change.reason)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }

    if !write.supersede.is_empty() {
        // Only pending rows: a `sending` row is in a dispatcher's hands and may be on the wire.
        sqlx::query(
            "UPDATE notifications SET state = 'superseded', updated_at = $2 \
             WHERE shipment_id = $1 AND state = 'pending' AND trigger = ANY($3)",
        )
        .bind(&shipment_id)
        .bind(now)
        .bind(
            write
                .supersede
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *conn)
        .await?;
    }

    for new in &write.notifications {
        insert_notification(&mut *conn, &shipment_id, new, now).await?;
    }

    Ok(true)
}

/// Put `new` in the outbox of the shipment `shipment_id` (as text), after its earlier messages;
/// a dedupe key already used for this shipment skips it. The shipment's row is locked first
/// (a poll's write holds it already), so two writers of one shipment's outbox take turns and
/// `MAX(seq) + 1`, read by the next statement, cannot race.
pub(super) async fn insert_notification(
    conn: &mut PgConnection,
    shipment_id: &str,
    new: &NewNotification,
    now: i64,
) -> Result<(), StoreError> {
    let facts = serde_json::to_string(&new.facts)
        .map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?;
    sqlx::query("SELECT 1 FROM shipments WHERE id = $1 FOR UPDATE")
        .bind(shipment_id)
        .execute(&mut *conn)
        .await?;
    // A dedupe key already used skips the row without consuming a seq.
    sqlx::query(
        "INSERT INTO notifications \
         (id, shipment_id, seq, trigger, dedupe_key, channel, recipient, locale, reason, \
          facts, state, attempts, available_at, created_at, updated_at) \
         VALUES ($1, $2, \
          (SELECT COALESCE(MAX(seq), 0) + 1 FROM notifications WHERE shipment_id = $2), \
          $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $10, $10) \
         ON CONFLICT (shipment_id, dedupe_key) DO NOTHING",
    )
    .bind(new.id.to_string())
    .bind(shipment_id)
    .bind(new.trigger.as_str())
    .bind(&new.dedupe_key)
    .bind(new.channel.as_str())
    .bind(&new.recipient)
    .bind(new.locale.as_str())
    .bind(&new.reason)
    .bind(facts)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_failure(conn: &mut PgConnection, failure: &PollFailure) -> Result<bool, StoreError> {
    let now = millis(failure.now);
    let shipment_id = failure.shipment_id.to_string();
    let updated = sqlx::query(
        "UPDATE shipments SET poll_failures = poll_failures + $3, last_error = $4, \
         last_error_at = $5, last_polled_at = $5, next_poll_at = $6, lease_owner = NULL, \
         lease_expires_at = NULL, updated_at = $5, fetch_day = $7, fetches_on_day = $8 \
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(&shipment_id)
    .bind(&failure.owner)
    .bind(i64::from(failure.count_failure))
    .bind(&failure.detail)
    .bind(now)
    .bind(millis(failure.next_poll_at))
    .bind(&failure.fetched.day)
    .bind(i64::from(failure.fetched.count))
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO poll_errors (id, shipment_id, kind, detail, excerpt, occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(&shipment_id)
    .bind(failure.kind)
    .bind(&failure.detail)
    .bind(failure.excerpt.as_deref())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

//! Poll results written in groups. Every poll ends in a write: the shipment's journey and next
//! poll, its new scans, a changed estimate, queued messages. Written one transaction each, the
//! commits dominate: each writes every page it touched (the shipment's row and its indexes, the
//! events, the outbox) to the write-ahead log again, and each statement is a round trip to
//! SQLite's worker thread. So the results of polls that finish while another group is being
//! written wait for it and then go in together, in one transaction.
//!
//! A result is written as the single-transaction version did: only while the poll's lease is
//! still held (else nothing of it is written and its caller hears `false`). When a group's
//! transaction fails, each of its results is written again in a transaction of its own, so one
//! bad result costs its own caller an error and nobody else.

use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{BEGIN_WRITE, json_list, millis};
use crate::domain::{NewNotification, Reason};
use crate::store::{PollFailure, PollWrite, StoreError};

/// Results written in one transaction at most: enough to spread a commit over many polls, few
/// enough that the writer connection is free again within milliseconds for other writes.
const MAX_GROUP: usize = 256;

/// Results waiting for the writer at most; a poller finding it full waits for room.
const QUEUE: usize = 1024;

/// What one poll of one shipment found.
#[derive(Debug)]
pub(super) enum PollResult {
    /// The carrier answered about the shipment.
    Polled(PollWrite),
    /// The call or the answer failed for the shipment.
    Failed(PollFailure),
}

/// A result and who waits to hear whether it was written.
struct Queued {
    result: PollResult,
    written: oneshot::Sender<Result<bool, StoreError>>,
}

/// The queue to the task that writes poll results; cloning it shares the task.
#[derive(Debug, Clone)]
pub(super) struct PollWriter {
    queue: mpsc::Sender<Queued>,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("result", &self.result)
            .finish()
    }
}

impl PollWriter {
    /// Start the writing task on `writer` (the store's write connection). It ends when the last
    /// clone of the store is dropped.
    pub(super) fn start(writer: SqlitePool) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(write_groups(writer, waiting));
        PollWriter { queue }
    }

    /// Write `result` with whatever else is waiting; `Ok(false)` when the poll's lease was lost
    /// and nothing was written.
    pub(super) async fn write(&self, result: PollResult) -> Result<bool, StoreError> {
        let (written, answer) = oneshot::channel();
        self.queue
            .send(Queued { result, written })
            .await
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

/// The error a caller gets when the writing task is gone (the runtime shutting down).
fn writer_gone() -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

/// Take what is waiting, up to [`MAX_GROUP`], write it, tell each caller; until the queue closes.
async fn write_groups(writer: SqlitePool, mut waiting: mpsc::Receiver<Queued>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while waiting.recv_many(&mut group, MAX_GROUP).await > 0 {
        match write_group(&writer, &group).await {
            Ok(written) => {
                for (queued, written) in group.drain(..).zip(written) {
                    // A caller that stopped waiting no longer needs to know.
                    let _ = queued.written.send(Ok(written));
                }
            }
            // One of them (or the commit) failed: each on its own, so the error is its own.
            Err(_) => {
                for queued in group.drain(..) {
                    let alone = write_group(&writer, std::slice::from_ref(&queued)).await;
                    let _ = queued
                        .written
                        .send(alone.map(|written| written.first().copied().unwrap_or(false)));
                }
            }
        }
    }
}

/// Write `group` in one transaction: for each result, whether it was written.
async fn write_group(writer: &SqlitePool, group: &[Queued]) -> Result<Vec<bool>, StoreError> {
    let mut tx = writer.begin_with(BEGIN_WRITE).await?;
    let mut written = Vec::with_capacity(group.len());
    for queued in group {
        written.push(match &queued.result {
            PollResult::Polled(write) => write_poll(&mut tx, write).await?,
            PollResult::Failed(failure) => write_failure(&mut tx, failure).await?,
        });
    }
    tx.commit().await?;
    Ok(written)
}

/// Write one poll's result; `false`, with nothing written, when the lease is no longer held.
async fn write_poll(conn: &mut SqliteConnection, write: &PollWrite) -> Result<bool, StoreError> {
    let now = millis(write.now);
    let shipment_id = write.shipment_id.to_string();
    let journey = &write.journey;

    let updated = sqlx::query(
        "UPDATE shipments SET status = ?3, reason = ?4, estimate_earliest = ?5, \
         estimate_latest = ?6, last_event_at = ?7, active = ?8, next_poll_at = ?9, \
         poll_priority = ?10, poll_failures = 0, last_error = NULL, last_error_at = NULL, \
         last_polled_at = ?11, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?11, \
         fetch_day = ?12, fetches_on_day = ?13 \
         WHERE id = ?1 AND lease_owner = ?2",
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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
            "UPDATE notifications SET state = 'superseded', updated_at = ?2 \
             WHERE shipment_id = ?1 AND state = 'pending' \
             AND trigger IN (SELECT value FROM json_each(?3))",
        )
        .bind(&shipment_id)
        .bind(now)
        .bind(json_list(write.supersede.iter().map(|t| t.as_str())))
        .execute(&mut *conn)
        .await?;
    }

    for new in &write.notifications {
        insert_notification(&mut *conn, &shipment_id, new, now).await?;
    }

    Ok(true)
}

/// Put `new` in the outbox of the shipment `shipment_id` (as text), after its earlier messages;
/// a dedupe key already used for this shipment skips it. The caller holds the write lock, so
/// `MAX(seq) + 1` cannot race.
pub(super) async fn insert_notification(
    conn: &mut SqliteConnection,
    shipment_id: &str,
    new: &NewNotification,
    now: i64,
) -> Result<(), StoreError> {
    let facts = serde_json::to_string(&new.facts)
        .map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?;
    // A dedupe key already used skips the row without consuming a seq.
    sqlx::query(
        "INSERT INTO notifications \
         (id, shipment_id, seq, trigger, dedupe_key, channel, recipient, locale, reason, \
          facts, state, attempts, available_at, created_at, updated_at) \
         VALUES (?1, ?2, \
          (SELECT COALESCE(MAX(seq), 0) + 1 FROM notifications WHERE shipment_id = ?2), \
          ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', 0, ?10, ?10, ?10) \
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

/// Record one failed poll; `false`, with nothing written, when the lease is no longer held.
async fn write_failure(
    conn: &mut SqliteConnection,
    failure: &PollFailure,
) -> Result<bool, StoreError> {
    let now = millis(failure.now);
    let shipment_id = failure.shipment_id.to_string();
    let updated = sqlx::query(
        "UPDATE shipments SET poll_failures = poll_failures + ?3, last_error = ?4, \
         last_error_at = ?5, last_polled_at = ?5, next_poll_at = ?6, lease_owner = NULL, \
         lease_expires_at = NULL, updated_at = ?5, fetch_day = ?7, fetches_on_day = ?8 \
         WHERE id = ?1 AND lease_owner = ?2",
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
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
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

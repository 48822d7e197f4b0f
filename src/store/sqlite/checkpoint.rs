//! Checkpoints of the write-ahead log, off the writer's path. SQLite copies the log back into
//! the database file (and syncs both) when a commit finds the log past 1,000 pages; that commit
//! then takes tens of milliseconds instead of one. A claim of 200 shipments writes a few
//! hundred pages, so every few claims one of them paid for it, and the slowest claims were all
//! checkpoints. Waymark's writer therefore never checkpoints; a task does, every
//! [`CHECKPOINT_EVERY`], on a reading connection, in `PASSIVE` mode: it copies what no reader
//! still needs and never makes the writer or a reader wait. Only when a long stream of writes
//! (an import) has left no moment for SQLite to start the log over does a checkpoint wait for
//! the writer once, so the log stays bounded.

use sqlx::SqlitePool;
use std::time::Duration;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, warn};

/// How often the log is copied back: often enough that the log stays short for readers (each
/// read looks a page up in the log's index first) and the file small.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Pages in the log (64 MiB of 4 KiB pages) past which a checkpoint waits for the writer to
/// start the log over, instead of only copying what it can.
const RESTART_AFTER_FRAMES: i64 = 16_384;

/// Keeps the checkpointing task running; the task ends when the last clone of the store that
/// holds this is dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    _stop_on_drop: DropGuard,
}

impl Checkpointer {
    /// Start checkpointing the database `readers` read.
    pub(super) fn start(readers: SqlitePool) -> Self {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(CHECKPOINT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stopped.cancelled() => return,
                    _ = every.tick() => {}
                }
                // Read its answer row (busy, frames in the log, frames copied): the pragma only
                // does its work when its row is stepped to.
                let copied: Result<(i64, i64, i64), _> =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(&readers)
                        .await;
                match copied {
                    // Under a steady stream of writes the log never runs dry for SQLite to
                    // start it over: past the limit, wait for the writer once and cut it back.
                    Ok((_, in_log, _)) if in_log > RESTART_AFTER_FRAMES => {
                        if let Err(error) =
                            sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
                                .fetch_one(&readers)
                                .await
                        {
                            warn!(%error, "cannot start the write-ahead log over");
                        }
                    }
                    Ok((_, in_log, copied)) if copied < in_log => {
                        debug!(
                            in_log,
                            copied, "a reader still needs part of the write-ahead log"
                        )
                    }
                    Ok(_) => {}
                    Err(error) => {
                        warn!(%error, "cannot copy the write-ahead log back into the database")
                    }
                }
            }
        });
        Checkpointer {
            _stop_on_drop: stop.drop_guard(),
        }
    }
}

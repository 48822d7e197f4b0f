//! What only SQLite has: the query plans of the claims and the write-ahead log's checkpoints.
//! Everything the `Store` trait promises is in the conformance suite (`../conformance.rs`).

use sqlx::Row;
use tempfile::TempDir;
use uuid::Uuid;

use super::{SqliteStore, due_select};
use crate::store::conformance::{account, at, new_shipment, shipment, t0};
use crate::store::{ClaimOrder, Store};

type TestResult = anyhow::Result<()>;

/// A migrated store in a fresh directory; the directory lives as long as the returned guard.
async fn open() -> anyhow::Result<(TempDir, SqliteStore)> {
    let (dir, _, store) = super::testing::fresh().await?;
    Ok((dir, store))
}

/// The plan's lines for a statement.
async fn query_plan(store: &SqliteStore, sql: &str) -> anyhow::Result<Vec<String>> {
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut query = sqlx::query(&explain);
    if sql.contains('?') {
        // The due query's parameters: account, now, limit.
        query = query
            .bind(Uuid::now_v7().to_string())
            .bind(t0().as_millisecond())
            .bind(10_i64);
    }
    let rows = query.fetch_all(store.writer()).await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<String, _>("detail")?))
        .collect()
}

/// Whether a query plan's line reads a whole table or sorts rows, instead of walking an index
/// in order. Scanning a subquery's co-routine reads only what its own index range gave.
fn reads_a_table_or_sorts(line: &str) -> bool {
    line.contains("TEMP B-TREE")
        || (line.starts_with("SCAN ") && !line.contains("USING") && !line.contains("(subquery-"))
}

#[tokio::test]
async fn the_due_query_uses_the_partial_index() -> TestResult {
    let (_dir, store) = open().await?;
    // Realistic statistics: many accounts, most shipments active, some finished.
    let accounts = [
        account(&store, "a").await?,
        account(&store, "b").await?,
        account(&store, "c").await?,
    ];
    for n in 0..300 {
        let s = store
            .insert_shipment(
                &new_shipment(accounts[n % 3], &format!("NUMBER{n:04}"))?,
                at(n as i64),
            )
            .await?;
        if n % 4 == 0 {
            sqlx::query("UPDATE shipments SET active = 0, next_poll_at = NULL WHERE id = ?1")
                .bind(s.id.to_string())
                .execute(store.writer())
                .await?;
        }
    }

    for analyzed in [false, true] {
        if analyzed {
            sqlx::query("ANALYZE").execute(store.writer()).await?;
        }
        for (order, index) in [
            (
                ClaimOrder::DueFirst,
                "USING INDEX shipments_due (carrier_account_id=? AND next_poll_at",
            ),
            (
                ClaimOrder::NearestDeliveryFirst,
                "USING INDEX shipments_due_by_priority \
                 (carrier_account_id=? AND poll_priority=? AND next_poll_at",
            ),
        ] {
            let plan = query_plan(&store, due_select(order)).await?;
            let ranges = plan.iter().filter(|line| line.contains(index)).count();
            let expected = if order == ClaimOrder::DueFirst { 1 } else { 4 };
            assert_eq!(
                ranges, expected,
                "{order:?} (analyzed: {analyzed}): {plan:?}"
            );
            // Neither reads the whole table nor sorts what it read: the index gives the order.
            assert!(
                !plan.iter().any(|line| reads_a_table_or_sorts(line)),
                "{order:?} (analyzed: {analyzed}): {plan:?}"
            );
        }
        let plan = query_plan(&store, super::NEXT_POLL_SQL).await?;
        for index in ["shipments_next_poll", "shipments_leased"] {
            assert!(
                plan.iter()
                    .any(|line| line.contains(&format!("USING INDEX {index}"))),
                "{plan:?}"
            );
        }
        let plan = query_plan(&store, super::NEXT_NOTIFICATION_SQL).await?;
        for index in [
            "USING INDEX notifications_due",
            "USING INDEX notifications_shipment (shipment_id=? AND seq<?)",
            "USING COVERING INDEX notifications_sending",
        ] {
            assert!(
                plan.iter().any(|line| line.contains(index)),
                "{index}: {plan:?}"
            );
        }
        assert!(
            !plan.iter().any(|line| reads_a_table_or_sorts(line)),
            "{plan:?}"
        );
        let plan = query_plan(&store, super::CLAIM_NOTIFICATIONS_SQL).await?;
        assert!(
            plan.iter()
                .any(|line| line.contains("USING INDEX notifications_due (available_at<?)")),
            "{plan:?}"
        );
        assert!(
            plan.iter()
                .any(|line| line.contains("USING INDEX notifications_shipment (shipment_id=?")),
            "{plan:?}"
        );
    }
    Ok(())
}

/// The writer never checkpoints (so no commit pays for copying the log back); the store's own
/// task does, shortly after: a new shipment reaches the database file itself within moments.
#[tokio::test]
async fn the_write_ahead_log_is_copied_back_without_the_writer() -> TestResult {
    let (dir, store) = open().await?;
    let autocheckpoint: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
        .fetch_one(store.writer())
        .await?;
    assert_eq!(
        autocheckpoint, 0,
        "the writer leaves checkpoints to the task"
    );
    let main = account(&store, "main").await?;
    shipment(&store, main, "CHECKPOINT0001").await?;
    let file = dir.path().join("waymark.db");
    let in_file = || -> anyhow::Result<bool> {
        let bytes = std::fs::read(&file)?;
        Ok(bytes.windows(14).any(|w| w == b"CHECKPOINT0001"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !in_file()? {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the shipment never left the write-ahead log"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(())
}

//! Batched registration against a real database file: what a merchant reads back is what one
//! registration at a time would have stored, and only the taken numbers are refused.

use anyhow::Context;
use jiff::Timestamp;
use jiff::civil::date;
use tempfile::TempDir;
use uuid::Uuid;

use super::ROWS_PER_STATEMENT;
use crate::carriers::CarrierAccount;
use crate::domain::{
    CarrierCode, CountryCode, Customer, DeliveryWindow, EmailAddress, EstimateSource, Locale,
    NewShipment, PostalCode, Shipment, TimeZoneName, TrackingNumber,
};
use crate::store::sqlite::millis;
use crate::store::{SqliteStore, Store, StoreError};

async fn open() -> anyhow::Result<(TempDir, SqliteStore, Uuid)> {
    let (dir, _, store) = crate::store::sqlite::testing::fresh().await?;
    let account = CarrierAccount {
        id: Uuid::now_v7(),
        merchant_id: crate::domain::MerchantId::DEFAULT,
        carrier: CarrierCode::parse("sandbox")?,
        name: "default".into(),
        credentials: serde_json::json!({}).into(),
        base_url: None,
        daily_quota: None,
        requests_per_second: None,
    };
    store.create_carrier_account(&account).await?;
    Ok((dir, store, account.id))
}

fn now() -> Timestamp {
    Timestamp::from_second(1_772_438_400).unwrap_or(Timestamp::UNIX_EPOCH) // 2026-03-02T08:00Z
}

fn shipment(account: Uuid, number: &str, promise: bool) -> anyhow::Result<NewShipment> {
    let poland = CountryCode::parse("PL")?;
    Ok(NewShipment {
        carrier_account_id: account,
        carrier: CarrierCode::parse("sandbox")?,
        tracking_number: TrackingNumber::parse(number)?,
        customer: Customer {
            email: Some(EmailAddress::parse(&format!("{number}@example.pl"))?),
            name: Some("Anna Nowak".into()),
            phone: None,
            locale: Locale::parse("pl")?,
            time_zone: TimeZoneName::parse("Europe/Warsaw")?,
        },
        destination_postal_code: Some(PostalCode::parse(&poland, "00-950")?),
        destination_country: poland,
        order_reference: Some(format!("ORDER-{number}")),
        promise: promise
            .then(|| DeliveryWindow::between(date(2026, 3, 4), date(2026, 3, 6)))
            .transpose()?,
        order_value: None,
        signature_required: false,
    })
}

/// The columns that make a shipment due for polling: active, next poll, priority, lease.
async fn polling(
    store: &SqliteStore,
    id: Uuid,
) -> anyhow::Result<(i64, Option<i64>, i64, Option<String>)> {
    Ok(sqlx::query_as(
        "SELECT active, next_poll_at, poll_priority, lease_owner FROM shipments WHERE id = ?1",
    )
    .bind(id.to_string())
    .fetch_one(store.writer())
    .await?)
}

/// The refused field and detail of each shipment of a batch, `None` for the stored ones.
fn refusals(results: &[Result<Uuid, StoreError>]) -> Vec<Option<String>> {
    results
        .iter()
        .map(|r| r.as_ref().err().map(ToString::to_string))
        .collect()
}

#[tokio::test]
async fn a_batch_is_stored_as_single_registrations_would_be() -> anyhow::Result<()> {
    let (_dir, store, account) = open().await?;
    let single = store
        .insert_shipment(&shipment(account, "SBX-SINGLE-1", true)?, now())
        .await?;
    let batch = [
        shipment(account, "SBX-BATCH-1", true)?,
        shipment(account, "SBX-BATCH-2", false)?,
    ];
    let results = store.insert_shipments(&batch, now()).await?;
    assert_eq!(refusals(&results), [None, None]);

    for (result, new) in results.iter().zip(&batch) {
        let id = *result.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        let stored = store.shipment(id).await?.context("stored shipment")?;
        // Everything but what this shipment was given is as for the single one: pending, due,
        // created now, unmuted.
        let expected = Shipment {
            id,
            tracking_number: new.tracking_number.clone(),
            customer: new.customer.clone(),
            order_reference: new.order_reference.clone(),
            promise: new.promise,
            public_token: stored.public_token.clone(),
            ..single.clone()
        };
        assert_eq!(stored, expected);
        assert_eq!(stored.public_token, format!("v2:{id}"));
        assert_eq!(
            polling(&store, id).await?,
            polling(&store, single.id).await?
        );
        assert_eq!(polling(&store, id).await?.1, Some(millis(now())));
        // The promise is the first estimate, with the same words as for a single one.
        let estimates = store.estimate_changes(id).await?;
        let singles = store.estimate_changes(single.id).await?;
        if new.promise.is_some() {
            assert_eq!(estimates.len(), 1, "{estimates:?}");
            assert_eq!(estimates[0].1.source, EstimateSource::Promise);
            assert_eq!(estimates[0].1.reason, singles[0].1.reason);
            assert_eq!(estimates[0].1.current, singles[0].1.current);
        } else {
            assert!(estimates.is_empty(), "{estimates:?}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn only_the_taken_numbers_of_a_batch_are_refused() -> anyhow::Result<()> {
    let (_dir, store, account) = open().await?;
    store
        .insert_shipment(&shipment(account, "SBX-TAKEN-1", false)?, now())
        .await?;
    // More rows than one statement holds, with the second copy of a number in a later
    // statement than its first.
    let count = ROWS_PER_STATEMENT * 2 + 7;
    let mut batch: Vec<NewShipment> = (0..count)
        .map(|n| shipment(account, &format!("SBX-NEW-{n}"), n % 2 == 0))
        .collect::<anyhow::Result<_>>()?;
    batch[3] = shipment(account, "SBX-TAKEN-1", true)?;
    batch[ROWS_PER_STATEMENT + 5] = shipment(account, "SBX-NEW-1", false)?;
    batch[ROWS_PER_STATEMENT + 6] = shipment(account, "SBX-NEW-1", false)?;

    let results = store.insert_shipments(&batch, now()).await?;
    assert_eq!(results.len(), count);
    let refused: Vec<(usize, String)> = refusals(&results)
        .into_iter()
        .enumerate()
        .filter_map(|(i, why)| Some((i, why?)))
        .collect();
    assert_eq!(
        refused,
        [
            (
                3,
                "tracking_number: `SBX-TAKEN-1` is already registered on this carrier account"
                    .to_owned()
            ),
            (
                ROWS_PER_STATEMENT + 5,
                "tracking_number: `SBX-NEW-1` is already registered on this carrier account"
                    .to_owned()
            ),
            (
                ROWS_PER_STATEMENT + 6,
                "tracking_number: `SBX-NEW-1` is already registered on this carrier account"
                    .to_owned()
            ),
        ]
    );
    // The taken number still belongs to the shipment that had it, without a second promise.
    let taken = store
        .shipments_by_number(&TrackingNumber::parse("SBX-TAKEN-1")?)
        .await?;
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].promise, None);
    assert!(store.estimate_changes(taken[0].id).await?.is_empty());
    let first = store
        .shipments_by_number(&TrackingNumber::parse("SBX-NEW-1")?)
        .await?;
    assert_eq!(first.len(), 1);
    assert_eq!(results[1].as_ref().ok(), Some(&first[0].id));
    assert_eq!(
        store.backlog().await?.active_shipments,
        count as u64 + 1 - 3
    );
    Ok(())
}

#[tokio::test]
async fn a_batch_that_cannot_be_stored_stores_nothing() -> anyhow::Result<()> {
    let (_dir, store, account) = open().await?;
    let batch = [
        shipment(account, "SBX-GOOD-1", true)?,
        // An account that does not exist breaks a foreign key: not a refusal of one row.
        shipment(Uuid::now_v7(), "SBX-ORPHAN-1", false)?,
    ];
    let result = store.insert_shipments(&batch, now()).await;
    assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
    assert!(
        store
            .shipments_by_number(&TrackingNumber::parse("SBX-GOOD-1")?)
            .await?
            .is_empty()
    );
    Ok(())
}

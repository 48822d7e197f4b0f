//! `PostgresStore` against a real PostgreSQL server (a throwaway cluster, one per test process,
//! a fresh database per test): what SQLite's tests check of one store, and what only matters
//! with several replicas on one database: claims that never hand the same row to two of them,
//! leases taken over when they run out, and results refused from a lease holder that lost it.

use anyhow::Context;
use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use sqlx::Row;
use std::collections::HashSet;
use uuid::Uuid;

use super::{PostgresStore, ThrowawayCluster};
use crate::carriers::CarrierAccount;
use crate::domain::{
    ApiKey, ApiKeyHash, CarrierCode, ChangeDetails, ChangeRequest, ChangeState, Channel,
    CountryCode, Customer, DeliveryWindow, EmailAddress, EventTime, Facts, FetchCount,
    JourneyState, KeyedEvent, Locale, Merchant, MerchantEmail, MerchantEmailOutcome,
    MerchantEmailState, MerchantId, MerchantSlug, NewNotification, NewShipment, NotificationState,
    PostalCode, Shipment, Status, TimeZoneName, TrackingEvent, TrackingNumber, Trigger,
};
use crate::store::{
    ClaimOrder, Completion, MerchantLogo, PollClaim, PollFailure, PollWrite, ShipmentChanges,
    ShipmentFilter, Store, StoreError,
};
use crate::vault::Vault;

type TestResult = anyhow::Result<()>;

/// The cluster every test of this process shares; the watchdog removes it when the process
/// exits.
fn cluster() -> anyhow::Result<&'static ThrowawayCluster> {
    ThrowawayCluster::shared()
}

/// A migrated store on a fresh database, and its URL and vault for a second replica.
async fn open() -> anyhow::Result<(PostgresStore, String, Vault)> {
    let url = cluster()?.fresh_database().await?;
    let vault = Vault::generate();
    let store = PostgresStore::connect(&url, vault.clone())
        .await
        .context("connect")?;
    store.migrate().await.context("migrate")?;
    Ok((store, url, vault))
}

/// Two replicas on one fresh database.
async fn two_replicas() -> anyhow::Result<(PostgresStore, PostgresStore)> {
    let (first, url, vault) = open().await?;
    let second = PostgresStore::connect(&url, vault).await?;
    second.migrate().await?;
    Ok((first, second))
}

fn t0() -> Timestamp {
    Timestamp::from_second(1_772_438_400).unwrap_or(Timestamp::UNIX_EPOCH) // 2026-03-02T08:00Z
}

fn at(minutes: i64) -> Timestamp {
    t0() + SignedDuration::from_mins(minutes)
}

fn carrier_account(name: &str) -> anyhow::Result<CarrierAccount> {
    Ok(CarrierAccount {
        id: Uuid::now_v7(),
        merchant_id: MerchantId::DEFAULT,
        carrier: CarrierCode::parse("sandbox")?,
        name: name.to_owned(),
        credentials: serde_json::json!({ "api_key": "secret" }).into(),
        base_url: Some("http://localhost:9999".into()),
        daily_quota: Some(250),
        requests_per_second: Some(2.5),
    })
}

async fn account(store: &PostgresStore, name: &str) -> anyhow::Result<Uuid> {
    let account = carrier_account(name)?;
    store.create_carrier_account(&account).await?;
    Ok(account.id)
}

fn new_shipment(account: Uuid, number: &str) -> anyhow::Result<NewShipment> {
    Ok(NewShipment {
        carrier_account_id: account,
        carrier: CarrierCode::parse("sandbox")?,
        tracking_number: TrackingNumber::parse(number)?,
        customer: Customer {
            email: Some(EmailAddress::parse("anna@example.com")?),
            name: Some("Anna Nowak".into()),
            phone: None,
            locale: Locale::parse("pl")?,
            time_zone: TimeZoneName::parse("Europe/Warsaw")?,
        },
        destination_country: CountryCode::parse("PL")?,
        destination_postal_code: Some(PostalCode::parse(&CountryCode::parse("PL")?, "00950")?),
        order_reference: Some("ORDER-17".into()),
        promise: Some(DeliveryWindow::between(date(2026, 3, 4), date(2026, 3, 6))?),
        order_value: Some(crate::domain::Money::parse("order_value", "129.90", "PLN")?),
        signature_required: false,
    })
}

async fn shipment(store: &PostgresStore, account: Uuid, number: &str) -> anyhow::Result<Shipment> {
    Ok(store
        .insert_shipment(&new_shipment(account, number)?, t0())
        .await?)
}

fn claim_of(account: Uuid, owner: &str, now: Timestamp, limit: u32) -> PollClaim<'_> {
    PollClaim {
        carrier_account_id: account,
        owner,
        now,
        lease_until: now + SignedDuration::from_mins(5),
        limit,
        order: ClaimOrder::DueFirst,
    }
}

async fn claim(
    store: &PostgresStore,
    account: Uuid,
    owner: &str,
    now: Timestamp,
) -> anyhow::Result<Vec<Shipment>> {
    Ok(store
        .claim_due_shipments(&claim_of(account, owner, now, 10))
        .await?)
}

fn ids(shipments: &[Shipment]) -> Vec<Uuid> {
    shipments.iter().map(|s| s.id).collect()
}

fn scan(minute: i64, code: &str, status: Status) -> KeyedEvent {
    let event = TrackingEvent {
        time: EventTime {
            at: at(minute),
            offset_seconds: Some(3600),
        },
        status,
        reason: None,
        raw_code: code.into(),
        raw_text: format!("scan {code}"),
        location: Some("Leipzig, DE".into()),
    };
    KeyedEvent {
        key: event.key("sandbox"),
        event,
    }
}

fn facts() -> anyhow::Result<Facts> {
    Ok(serde_json::from_value(serde_json::json!({
        "status": "exception",
        "reason": "customs_held",
        "quiet_business_hours": 50,
        "estimate": { "earliest": "2026-03-04", "latest": "2026-03-05" },
    }))?)
}

fn message(trigger: Trigger, key: &str) -> anyhow::Result<NewNotification> {
    Ok(NewNotification {
        id: Uuid::now_v7(),
        trigger,
        dedupe_key: key.into(),
        channel: Channel::Email,
        recipient: "anna@example.com".into(),
        locale: Locale::parse("pl")?,
        reason: format!("{trigger} because the carrier said so"),
        facts: facts()?,
    })
}

/// A successful poll by `owner` that changes nothing but the status and the next poll.
fn poll(shipment: &Shipment, owner: &str, now: Timestamp) -> PollWrite {
    PollWrite {
        shipment_id: shipment.id,
        owner: owner.into(),
        now,
        new_events: Vec::new(),
        journey: JourneyState {
            status: Status::InTransit,
            reason: None,
            carrier_estimate: None,
            last_event_at: None,
            active: true,
        },
        estimate_change: None,
        notifications: Vec::new(),
        supersede: Vec::new(),
        next_poll_at: Some(now + SignedDuration::from_hours(1)),
        poll_priority: 2,
        fetched: FetchCount {
            day: now.to_string()[..10].to_owned(),
            count: 1,
        },
    }
}

/// Lease the shipment and write one poll with these messages; asserts the write was accepted.
async fn poll_with(
    store: &PostgresStore,
    shipment: &Shipment,
    now: Timestamp,
    notifications: Vec<NewNotification>,
    supersede: Vec<Trigger>,
) -> TestResult {
    let owner = format!("poller-{now}");
    sqlx::query("UPDATE shipments SET lease_owner = $2, lease_expires_at = $3 WHERE id = $1")
        .bind(shipment.id.to_string())
        .bind(&owner)
        .bind((now + SignedDuration::from_mins(5)).as_millisecond())
        .execute(store.pool())
        .await?;
    let mut write = poll(shipment, &owner, now);
    write.notifications = notifications;
    write.supersede = supersede;
    write.next_poll_at = Some(now + SignedDuration::from_mins(1));
    anyhow::ensure!(store.record_poll(&write).await?, "lease lost");
    Ok(())
}

async fn states(
    store: &PostgresStore,
    shipment: Uuid,
) -> anyhow::Result<Vec<(i64, Trigger, NotificationState)>> {
    Ok(store
        .notifications(shipment)
        .await?
        .into_iter()
        .map(|n| (n.seq, n.trigger, n.state))
        .collect())
}

#[tokio::test]
async fn replicas_migrating_at_once_agree_on_one_schema() -> TestResult {
    let url = cluster()?.fresh_database().await?;
    let vault = Vault::generate();
    let a = PostgresStore::connect(&url, vault.clone()).await?;
    let b = PostgresStore::connect(&url, vault.clone()).await?;
    let c = PostgresStore::connect(&url, vault).await?;
    let (ra, rb, rc) = tokio::join!(a.migrate(), b.migrate(), c.migrate());
    ra?;
    rb?;
    rc?;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(a.pool())
        .await?;
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))?
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert_eq!(applied, files as i64, "each migration once");
    // The default merchant of 0007 is there once.
    assert_eq!(a.merchants().await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn connect_picks_postgres_for_its_urls() -> TestResult {
    let url = cluster()?.fresh_database().await?;
    let other = url.replacen("postgres://", "postgresql://", 1);
    for url in [url, other] {
        let store = crate::store::connect(&url, Vault::generate()).await?;
        store.migrate().await?;
        assert_eq!(store.setting_or_insert("anchor", "1").await?, "1");
    }
    Ok(())
}

#[tokio::test]
async fn a_shipment_reads_back_field_by_field() -> TestResult {
    let (store, _, _) = open().await?;
    let account = account(&store, "main").await?;
    let new = new_shipment(account, "JJD000390007")?;
    let inserted = store.insert_shipment(&new, t0()).await?;

    let read = store.shipment(inserted.id).await?.context("shipment")?;
    assert_eq!(read, inserted);
    assert_eq!(read.id.get_version_num(), 7);
    assert_eq!(read.carrier_account_id, account);
    assert_eq!(read.merchant_id, MerchantId::DEFAULT);
    assert_eq!(read.customer, new.customer);
    assert_eq!(
        read.destination_postal_code
            .as_ref()
            .map(PostalCode::as_str),
        Some("00-950")
    );
    assert_eq!(read.order_reference.as_deref(), Some("ORDER-17"));
    assert_eq!(read.order_value, new.order_value);
    assert_eq!(read.promise, new.promise);
    assert_eq!(read.created_at, t0());
    assert_eq!(read.public_token, format!("v2:{}", read.id));
    assert!(!read.muted);
    assert_eq!(read.journey, JourneyState::new_shipment());

    let row = sqlx::query(
        "SELECT next_poll_at, poll_priority, status, active, muted, lease_owner FROM shipments \
         WHERE id = $1",
    )
    .bind(read.id.to_string())
    .fetch_one(store.pool())
    .await?;
    assert_eq!(
        row.try_get::<i64, _>("next_poll_at")?,
        t0().as_millisecond()
    );
    assert_eq!(row.try_get::<i64, _>("poll_priority")?, 3);
    assert_eq!(row.try_get::<String, _>("status")?, "pending");
    assert!(row.try_get::<bool, _>("active")?);
    assert!(!row.try_get::<bool, _>("muted")?);
    assert_eq!(row.try_get::<Option<String>, _>("lease_owner")?, None);

    let by_token = store.shipment_by_token(&read.public_token).await?;
    assert_eq!(by_token.map(|s| s.id), Some(read.id));
    assert!(store.shipment_by_token("nope").await?.is_none());
    let by_number = store.shipments_by_number(&new.tracking_number).await?;
    assert_eq!(ids(&by_number), vec![read.id]);
    assert!(
        store
            .merchant_shipment(MerchantId::DEFAULT, read.id)
            .await?
            .is_some()
    );
    assert!(
        store
            .merchant_shipment(MerchantId::new(), read.id)
            .await?
            .is_none()
    );
    assert!(store.set_muted(read.id, true).await?);
    assert!(store.shipment(read.id).await?.context("shipment")?.muted);
    assert!(!store.set_muted(Uuid::now_v7(), true).await?);

    // The promise is the first estimate.
    let estimates = store.estimate_changes(read.id).await?;
    assert_eq!(estimates.len(), 1);
    assert_eq!(estimates[0].1.current, new.promise);
    Ok(())
}

#[tokio::test]
async fn a_batch_refuses_only_its_taken_numbers() -> TestResult {
    let (store, _, _) = open().await?;
    let account = account(&store, "main").await?;
    shipment(&store, account, "TAKEN0001").await?;
    let mut batch = Vec::new();
    for number in ["FRESH0001", "TAKEN0001", "FRESH0002", "FRESH0001"] {
        batch.push(new_shipment(account, number)?);
    }
    // More than one statement's worth of rows too.
    for n in 0..150 {
        batch.push(new_shipment(account, &format!("BULK{n:05}"))?);
    }
    let results = store.insert_shipments(&batch, at(1)).await?;
    assert_eq!(results.len(), batch.len());
    assert!(results[0].is_ok());
    assert!(matches!(
        results[1],
        Err(StoreError::Duplicate {
            field: "tracking_number",
            ..
        })
    ));
    assert!(results[2].is_ok());
    assert!(
        matches!(results[3], Err(StoreError::Duplicate { .. })),
        "a number taken earlier in the same batch is refused"
    );
    assert!(results[4..].iter().all(Result::is_ok));
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM shipments")
        .fetch_one(store.pool())
        .await?;
    assert_eq!(count, 1 + 2 + 150);
    let promises: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM estimate_changes")
        .fetch_one(store.pool())
        .await?;
    assert_eq!(promises, count);

    // An account that does not exist fails the whole call, and stores none of it.
    let missing = vec![
        new_shipment(account, "NEVER0001")?,
        new_shipment(Uuid::now_v7(), "NEVER0002")?,
    ];
    assert!(store.insert_shipments(&missing, at(2)).await.is_err());
    assert!(
        store
            .shipments_by_number(&TrackingNumber::parse("NEVER0001")?)
            .await?
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn account_names_are_unique_per_merchant_and_carrier() -> TestResult {
    let (store, _, _) = open().await?;
    let main = carrier_account("main")?;
    store.create_carrier_account(&main).await?;
    let read = store
        .carrier_account(main.id)
        .await?
        .context("the account")?;
    assert_eq!(read, main);

    let again = carrier_account("main")?;
    match store.create_carrier_account(&again).await {
        Err(StoreError::Duplicate { field: "name", .. }) => {}
        other => anyhow::bail!("expected a Duplicate name, got {other:?}"),
    }
    match store.create_carrier_account(&main).await {
        Err(StoreError::Duplicate { field: "id", .. }) => {}
        other => anyhow::bail!("expected a Duplicate id, got {other:?}"),
    }

    let mut spare = carrier_account("spare")?;
    store.create_carrier_account(&spare).await?;
    spare.name = "main".into();
    match store.update_carrier_account(&spare).await {
        Err(StoreError::Duplicate { field: "name", .. }) => {}
        other => anyhow::bail!("expected a Duplicate name, got {other:?}"),
    }
    spare.name = "renamed".into();
    assert!(store.update_carrier_account(&spare).await?);

    // Saving by name keeps the stored account's id, with the new limits and credentials.
    let mut saved = carrier_account("main")?;
    saved.daily_quota = Some(7);
    saved.credentials = serde_json::json!({ "api_key": "rotated" }).into();
    let stored = store.save_carrier_account(&saved).await?;
    assert_eq!(stored.id, main.id);
    assert_eq!(stored.daily_quota, Some(7));
    assert_eq!(stored.credentials, saved.credentials);
    assert_eq!(
        store
            .merchant_carrier_accounts(MerchantId::DEFAULT)
            .await?
            .len(),
        2
    );
    assert_eq!(
        store
            .carrier_account_by_name(MerchantId::DEFAULT, &main.carrier, "renamed")
            .await?
            .map(|a| a.id),
        Some(spare.id)
    );

    // In use while shipments are registered on it; someone else's is not there at all.
    shipment(&store, main.id, "NUMBER0001").await?;
    assert!(matches!(
        store
            .delete_carrier_account(MerchantId::DEFAULT, main.id)
            .await,
        Err(StoreError::InUse { .. })
    ));
    assert!(
        !store
            .delete_carrier_account(MerchantId::new(), spare.id)
            .await?
    );
    assert!(
        store
            .reserve_carrier_calls(spare.id, "2026-03-02", 1, None)
            .await?
    );
    assert!(
        store
            .delete_carrier_account(MerchantId::DEFAULT, spare.id)
            .await?
    );
    assert!(store.carrier_account(spare.id).await?.is_none());
    assert_eq!(store.reseal_secrets().await?, 0);
    Ok(())
}

#[tokio::test]
async fn replicas_claiming_at_once_take_disjoint_shipments() -> TestResult {
    let (a, b) = two_replicas().await?;
    let main = account(&a, "main").await?;
    let batch: Vec<NewShipment> = (0..60)
        .map(|n| new_shipment(main, &format!("RACE{n:05}")))
        .collect::<anyhow::Result<_>>()?;
    for stored in a.insert_shipments(&batch, t0()).await? {
        stored?;
    }

    // Eight claimers, four per replica, all at the same moment, seven shipments each at most.
    let owners: Vec<String> = (0..8).map(|n| format!("worker-{n}")).collect();
    let claims = owners.iter().enumerate().map(|(n, owner)| {
        let store = if n % 2 == 0 { &a } else { &b };
        async move {
            store
                .claim_due_shipments(&claim_of(main, owner, at(1), 7))
                .await
        }
    });
    let results = futures::future::join_all(claims).await;
    let mut seen = HashSet::new();
    let mut total = 0;
    for (owner, result) in owners.iter().zip(results) {
        let claimed = result?;
        assert!(claimed.len() <= 7);
        total += claimed.len();
        for s in &claimed {
            assert!(seen.insert(s.id), "{} was claimed twice", s.id);
            let holder: Option<String> =
                sqlx::query_scalar("SELECT lease_owner FROM shipments WHERE id = $1")
                    .bind(s.id.to_string())
                    .fetch_one(a.pool())
                    .await?;
            assert_eq!(holder.as_deref(), Some(owner.as_str()));
        }
    }
    assert_eq!(
        total, 56,
        "every claimer got its share; nobody was blocked out"
    );

    // What is left goes to whoever asks next, and then there is nothing.
    let rest = claim(&b, main, "late", at(2)).await?;
    assert_eq!(rest.len(), 4);
    assert!(rest.iter().all(|s| !seen.contains(&s.id)));
    assert!(claim(&a, main, "later", at(3)).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_its_old_holder_is_refused() -> TestResult {
    let (a, b) = two_replicas().await?;
    let main = account(&a, "main").await?;
    let s = shipment(&a, main, "NUMBER0001").await?;

    let first = claim(&a, main, "old", at(1)).await?;
    assert_eq!(ids(&first), vec![s.id]);
    // While the lease runs, nobody else gets it.
    assert!(claim(&b, main, "new", at(3)).await?.is_empty());
    assert_eq!(a.next_poll_at().await?, Some(at(6)));
    // Renewed by its holder only, and only before it runs out.
    assert!(
        b.extend_shipment_leases(&[s.id], "new", at(3), at(10))
            .await?
            .is_empty()
    );
    assert_eq!(
        a.extend_shipment_leases(&[s.id], "old", at(3), at(7))
            .await?,
        vec![s.id]
    );
    // Once it ran out, the other replica takes it over.
    let taken = claim(&b, main, "new", at(8)).await?;
    assert_eq!(ids(&taken), vec![s.id]);
    assert!(
        a.extend_shipment_leases(&[s.id], "old", at(8), at(12))
            .await?
            .is_empty()
    );

    // The old holder's results are refused, the new one's written.
    let mut stale = poll(&s, "old", at(9));
    stale.new_events = vec![scan(2, "PU", Status::InTransit)];
    stale.notifications = vec![message(Trigger::Shipped, "shipped")?];
    assert!(!a.record_poll(&stale).await?);
    let failure = PollFailure {
        shipment_id: s.id,
        owner: "old".into(),
        now: at(9),
        kind: "transient",
        detail: "timeout".into(),
        excerpt: None,
        count_failure: true,
        next_poll_at: at(20),
        fetched: FetchCount {
            day: "2026-03-02".into(),
            count: 2,
        },
    };
    assert!(!a.record_poll_failure(&failure).await?);
    assert!(a.timeline(s.id).await?.is_empty());
    assert!(a.notifications(s.id).await?.is_empty());
    let unchanged = a.shipment(s.id).await?.context("shipment")?;
    assert_eq!(unchanged.poll_failures, 0);

    let mut fresh = poll(&s, "new", at(9));
    fresh.new_events = vec![scan(2, "PU", Status::InTransit)];
    fresh.notifications = vec![message(Trigger::Shipped, "shipped")?];
    assert!(b.record_poll(&fresh).await?);
    assert!(
        !b.record_poll(&fresh).await?,
        "the lease ended with the write"
    );
    assert_eq!(a.timeline(s.id).await?.len(), 1);
    assert_eq!(
        states(&a, s.id).await?,
        vec![(1, Trigger::Shipped, NotificationState::Pending)]
    );
    let polled = a.shipment(s.id).await?.context("shipment")?;
    assert_eq!(polled.journey.status, Status::InTransit);
    Ok(())
}

#[tokio::test]
async fn a_racing_write_and_takeover_leave_one_winner() -> TestResult {
    let (a, b) = two_replicas().await?;
    let main = account(&a, "main").await?;
    for round in 0..20 {
        let s = shipment(&a, main, &format!("FLIP{round:05}")).await?;
        sqlx::query(
            "UPDATE shipments SET lease_owner = 'old', lease_expires_at = $2 WHERE id = $1",
        )
        .bind(s.id.to_string())
        .bind(at(1).as_millisecond())
        .execute(a.pool())
        .await?;
        // The lease ran out at minute 1: a late write and a takeover race at minute 2.
        let write = poll(&s, "old", at(2));
        let takeover = claim_of(main, "new", at(2), 10);
        let (written, taken) =
            tokio::join!(a.record_poll(&write), b.claim_due_shipments(&takeover));
        let (written, taken) = (written?, taken?);
        let holder: Option<String> =
            sqlx::query_scalar("SELECT lease_owner FROM shipments WHERE id = $1")
                .bind(s.id.to_string())
                .fetch_one(a.pool())
                .await?;
        if written {
            // Written first: the shipment is due in an hour, not claimable at minute 2.
            assert!(!ids(&taken).contains(&s.id));
            assert_eq!(holder, None);
        } else {
            assert!(ids(&taken).contains(&s.id));
            assert_eq!(holder.as_deref(), Some("new"));
        }
        // Leave nothing due for the next round.
        let leased = ids(&taken);
        b.release_shipments(&leased, "new", at(600), SignedDuration::ZERO)
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn the_nearest_delivery_comes_first_when_asked() -> TestResult {
    let (store, _, _) = open().await?;
    let main = account(&store, "main").await?;
    let far = shipment(&store, main, "NUMBER0001").await?;
    let near = shipment(&store, main, "NUMBER0002").await?;
    let middle = shipment(&store, main, "NUMBER0003").await?;
    for (s, priority) in [(&far, 3), (&near, 0), (&middle, 1)] {
        sqlx::query("UPDATE shipments SET poll_priority = $2 WHERE id = $1")
            .bind(s.id.to_string())
            .bind(priority as i64)
            .execute(store.pool())
            .await?;
    }
    let mut claim = claim_of(main, "w", at(1), 2);
    claim.order = ClaimOrder::NearestDeliveryFirst;
    let got = store.claim_due_shipments(&claim).await?;
    assert_eq!(ids(&got), vec![near.id, middle.id]);
    let rest = claim_of(main, "w", at(1), 10);
    assert_eq!(ids(&store.claim_due_shipments(&rest).await?), vec![far.id]);
    Ok(())
}

#[tokio::test]
async fn quota_reservations_from_replicas_stop_at_the_quota() -> TestResult {
    let (a, b) = two_replicas().await?;
    let main = account(&a, "main").await?;
    assert!(
        !a.reserve_carrier_calls(main, "2026-03-01", 11, Some(10))
            .await?
    );
    let reservations = (0..30).map(|n| {
        let store = if n % 2 == 0 { &a } else { &b };
        store.reserve_carrier_calls(main, "2026-03-02", 1, Some(10))
    });
    let granted = futures::future::join_all(reservations)
        .await
        .into_iter()
        .collect::<Result<Vec<bool>, _>>()?;
    assert_eq!(granted.iter().filter(|g| **g).count(), 10);
    assert!(a.reserve_carrier_calls(main, "2026-03-02", 5, None).await?);
    let calls: i64 = sqlx::query_scalar("SELECT calls FROM quota_usage WHERE day = '2026-03-02'")
        .fetch_one(a.pool())
        .await?;
    assert_eq!(calls, 15);
    Ok(())
}

#[tokio::test]
async fn release_and_defer_push_shipments_later_within_the_spread() -> TestResult {
    let (store, _, _) = open().await?;
    let main = account(&store, "main").await?;
    let mut all = Vec::new();
    for n in 0..20 {
        all.push(shipment(&store, main, &format!("SPREAD{n:04}")).await?);
    }
    let claimed = ids(&claim(&store, main, "w", at(1)).await?);
    assert_eq!(claimed.len(), 10);
    store
        .release_shipments(&claimed, "w", at(60), SignedDuration::from_mins(40))
        .await?;
    let deferred = store
        .defer_due_shipments(main, at(2), at(120), SignedDuration::from_mins(40))
        .await?;
    assert_eq!(deferred, 10);
    for s in &all {
        let read = sqlx::query("SELECT next_poll_at, lease_owner FROM shipments WHERE id = $1")
            .bind(s.id.to_string())
            .fetch_one(store.pool())
            .await?;
        let next: i64 = read.try_get("next_poll_at")?;
        assert_eq!(read.try_get::<Option<String>, _>("lease_owner")?, None);
        let base = if claimed.contains(&s.id) {
            at(60)
        } else {
            at(120)
        };
        // Priority 3: anywhere within the whole spread.
        let offset = next - base.as_millisecond();
        assert!((0..=40 * 60_000).contains(&offset), "{offset}");
    }
    assert_eq!(store.next_poll_at().await?.map(|t| t >= at(60)), Some(true));
    Ok(())
}

#[tokio::test]
async fn a_failed_poll_counts_and_is_pruned_later() -> TestResult {
    let (store, _, _) = open().await?;
    let main = account(&store, "main").await?;
    let s = shipment(&store, main, "NUMBER0001").await?;
    for minute in [1, 2, 3] {
        claim(&store, main, "w", at(minute * 10)).await?;
        let failure = PollFailure {
            shipment_id: s.id,
            owner: "w".into(),
            now: at(minute * 10),
            kind: "malformed",
            detail: format!("failure {minute}"),
            excerpt: Some("<html>".into()),
            count_failure: true,
            next_poll_at: at(minute * 10 + 1),
            fetched: FetchCount {
                day: "2026-03-02".into(),
                count: minute as u32,
            },
        };
        assert!(store.record_poll_failure(&failure).await?);
    }
    let read = store.shipment(s.id).await?.context("shipment")?;
    assert_eq!(read.poll_failures, 3);
    assert_eq!(read.last_error.as_deref(), Some("failure 3"));
    assert_eq!(
        read.fetched,
        Some(FetchCount {
            day: "2026-03-02".into(),
            count: 3
        })
    );
    // Keep the latest two, and nothing older than minute 15.
    assert_eq!(store.prune_poll_errors(at(0), 2).await?, 1);
    assert_eq!(store.prune_poll_errors(at(25), 2).await?, 1);
    Ok(())
}

#[tokio::test]
async fn scans_estimates_and_supersession_are_written_once() -> TestResult {
    let (store, _, _) = open().await?;
    let main = account(&store, "main").await?;
    let s = shipment(&store, main, "NUMBER0001").await?;
    poll_with(
        &store,
        &s,
        at(1),
        vec![
            message(Trigger::Shipped, "shipped")?,
            message(Trigger::Delayed, "delayed-1")?,
        ],
        vec![],
    )
    .await?;
    // Two scans of the same millisecond keep the order they arrived in; a scan seen again is
    // not stored again.
    claim(&store, main, "w", at(5)).await?;
    let mut write = poll(&s, "w", at(5));
    write.new_events = vec![
        scan(3, "B", Status::InTransit),
        scan(3, "A", Status::InTransit),
        scan(2, "PU", Status::InTransit),
    ];
    write.estimate_change = Some(crate::domain::EstimateChange {
        source: crate::domain::EstimateSource::Carrier,
        previous: None,
        current: Some(DeliveryWindow::between(date(2026, 3, 5), date(2026, 3, 5))?),
        reason: "the carrier said so".into(),
    });
    write.supersede = vec![Trigger::Delayed];
    write.notifications = vec![
        message(Trigger::Shipped, "shipped")?,
        message(Trigger::Delayed, "delayed-2")?,
    ];
    assert!(store.record_poll(&write).await?);
    claim(&store, main, "w", at(70)).await?;
    let mut again = poll(&s, "w", at(70));
    again.new_events = vec![scan(3, "A", Status::InTransit)];
    assert!(store.record_poll(&again).await?);

    let codes: Vec<String> = store
        .timeline(s.id)
        .await?
        .into_iter()
        .map(|k| k.event.raw_code)
        .collect();
    assert_eq!(codes, vec!["PU", "B", "A"]);
    assert_eq!(store.estimate_changes(s.id).await?.len(), 2);
    assert_eq!(
        states(&store, s.id).await?,
        vec![
            (1, Trigger::Shipped, NotificationState::Pending),
            (2, Trigger::Delayed, NotificationState::Superseded),
            (3, Trigger::Delayed, NotificationState::Pending),
        ]
    );
    let keys = store.fired_keys(s.id).await?;
    assert_eq!(keys.len(), 3);
    Ok(())
}

#[tokio::test]
async fn messages_go_out_in_order_one_per_shipment_across_replicas() -> TestResult {
    let (a, b) = two_replicas().await?;
    let main = account(&a, "main").await?;
    let mut shipments = Vec::new();
    for n in 0..12 {
        let s = shipment(&a, main, &format!("MSG{n:05}")).await?;
        poll_with(
            &a,
            &s,
            at(1),
            vec![
                message(Trigger::Shipped, "shipped")?,
                message(Trigger::CustomsHold, "customs")?,
                message(Trigger::Delivered, "delivered")?,
            ],
            vec![],
        )
        .await?;
        shipments.push(s);
    }
    // Dispatchers on both replicas claim at once, round after round, and send what they got.
    let sent = Completion::Sent {
        message_id: "<m@waymark>".into(),
        provider_response: "250".into(),
    };
    let mut order: std::collections::HashMap<Uuid, Vec<i64>> = Default::default();
    for round in 0..4 {
        let now = at(10 + round);
        let claims = (0..6).map(|n| {
            let store = if n % 2 == 0 { &a } else { &b };
            store.claim_notifications(if n % 2 == 0 { "da" } else { "db" }, now, at(60), 3)
        });
        let mut claimed_ids = HashSet::new();
        let mut claimed_shipments = HashSet::new();
        let mut items = Vec::new();
        for result in futures::future::join_all(claims).await {
            items.extend(result?);
        }
        for item in &items {
            assert!(claimed_ids.insert(item.notification.id), "claimed twice");
            assert!(
                claimed_shipments.insert(item.shipment.id),
                "two messages of one shipment out at once"
            );
            order
                .entry(item.shipment.id)
                .or_default()
                .push(item.notification.seq);
        }
        if round < 3 {
            assert_eq!(
                items.len(),
                12,
                "round {round}: every shipment's next message"
            );
        } else {
            assert!(items.is_empty());
        }
        for item in items {
            let owner = item.notification.id;
            let holder: String =
                sqlx::query_scalar("SELECT lease_owner FROM notifications WHERE id = $1")
                    .bind(owner.to_string())
                    .fetch_one(a.pool())
                    .await?;
            let store = if holder == "da" { &a } else { &b };
            assert_eq!(
                store
                    .start_notification_attempt(owner, &holder, now, at(60))
                    .await?,
                Some(1)
            );
            assert!(
                store
                    .complete_notification(owner, &holder, now, &sent)
                    .await?
            );
        }
    }
    for s in &shipments {
        assert_eq!(order.get(&s.id), Some(&vec![1, 2, 3]));
        assert_eq!(
            store_states(&a, s.id).await?,
            vec![NotificationState::Sent; 3]
        );
    }
    assert_eq!(a.next_notification_at().await?, None);
    assert_eq!(a.backlog().await?.unsent_notifications, 0);
    Ok(())
}

async fn store_states(
    store: &PostgresStore,
    shipment: Uuid,
) -> anyhow::Result<Vec<NotificationState>> {
    Ok(states(store, shipment)
        .await?
        .into_iter()
        .map(|(_, _, state)| state)
        .collect())
}

#[tokio::test]
async fn a_crashed_dispatchers_message_is_rescued_and_final_states_stick() -> TestResult {
    let (a, b) = two_replicas().await?;
    let main = account(&a, "main").await?;
    let s = shipment(&a, main, "NUMBER0001").await?;
    poll_with(
        &a,
        &s,
        at(1),
        vec![
            message(Trigger::Shipped, "shipped")?,
            message(Trigger::Delivered, "delivered")?,
        ],
        vec![],
    )
    .await?;
    // A dedupe key used before never makes a second row, whoever writes it.
    poll_with(
        &b,
        &s,
        at(2),
        vec![message(Trigger::Shipped, "shipped")?],
        vec![],
    )
    .await?;
    assert_eq!(a.notifications(s.id).await?.len(), 2);

    let first = a.claim_notifications("crashed", at(3), at(5), 10).await?;
    assert_eq!(first.len(), 1);
    let id = first[0].notification.id;
    assert_eq!(
        a.start_notification_attempt(id, "crashed", at(3), at(5))
            .await?,
        Some(1)
    );
    assert_eq!(a.next_notification_at().await?, Some(at(5)));
    // Before the lease runs out, nobody rescues it; after, the other replica does.
    assert!(
        b.claim_notifications("rescuer", at(4), at(9), 10)
            .await?
            .is_empty()
    );
    let rescued = b.claim_notifications("rescuer", at(6), at(9), 10).await?;
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].notification.id, id);
    assert_eq!(rescued[0].notification.attempts, 1);
    assert!(
        !a.extend_notification_lease(id, "crashed", at(6), at(10))
            .await?
    );
    assert!(
        b.extend_notification_lease(id, "rescuer", at(6), at(10))
            .await?
    );
    assert_eq!(
        a.start_notification_attempt(id, "crashed", at(6), at(10))
            .await?,
        None
    );
    let sent = Completion::Sent {
        message_id: "<1@waymark>".into(),
        provider_response: "250".into(),
    };
    assert!(!a.complete_notification(id, "crashed", at(7), &sent).await?);
    assert_eq!(
        b.start_notification_attempt(id, "rescuer", at(7), at(10))
            .await?,
        Some(2)
    );
    // Deferred: back to pending, no attempt counted, due again later.
    assert!(
        b.complete_notification(
            id,
            "rescuer",
            at(7),
            &Completion::Deferred {
                available_at: at(30)
            }
        )
        .await?
    );
    assert_eq!(a.next_notification_at().await?, Some(at(30)));
    assert!(
        a.claim_notifications("d", at(20), at(40), 10)
            .await?
            .is_empty()
    );
    let again = a.claim_notifications("d", at(30), at(40), 10).await?;
    assert_eq!(again.len(), 1);
    assert!(a.complete_notification(id, "d", at(31), &sent).await?);
    assert!(!a.complete_notification(id, "d", at(31), &sent).await?);
    assert_eq!(a.last_sent_at(s.id, Trigger::Shipped).await?, Some(at(31)));
    assert_eq!(a.thread_message_ids(s.id).await?, vec!["<1@waymark>"]);

    let second = a.claim_notifications("d", at(32), at(40), 10).await?;
    assert_eq!(second.len(), 1);
    let failed = Completion::Failed {
        error: "550 no such user".into(),
    };
    assert!(
        a.complete_notification(second[0].notification.id, "d", at(33), &failed)
            .await?
    );
    assert_eq!(
        store_states(&a, s.id).await?,
        vec![NotificationState::Sent, NotificationState::Failed]
    );
    assert!(
        a.claim_notifications("d", at(90), at(99), 10)
            .await?
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn one_replica_at_a_time_runs_a_job() -> TestResult {
    let (a, b) = two_replicas().await?;
    let claims = (0..10).map(|n| {
        let store = if n % 2 == 0 { &a } else { &b };
        let owner = format!("replica-{n}");
        async move {
            store
                .claim_job("erase", &owner, at(1), at(10), at(0))
                .await
                .map(|won| won.then_some(owner))
        }
    });
    let winners: Vec<String> = futures::future::join_all(claims)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(winners.len(), 1);
    let winner = &winners[0];
    assert!(!b.claim_job("erase", "other", at(5), at(15), at(0)).await?);
    assert!(a.extend_job_lease("erase", winner, at(5), at(12)).await?);
    assert!(!a.extend_job_lease("erase", "other", at(5), at(12)).await?);
    // Not due yet the first time it is asked for.
    assert!(!a.claim_job("prune", "x", at(1), at(10), at(2)).await?);
    // The holder died: its lease runs out and another replica takes over.
    assert!(b.claim_job("erase", "other", at(13), at(20), at(0)).await?);
    assert!(!a.extend_job_lease("erase", winner, at(14), at(22)).await?);
    assert!(!a.finish_job("erase", winner, at(14), "ok", at(60)).await?);
    assert!(b.finish_job("erase", "other", at(14), "ok", at(60)).await?);
    assert!(!a.claim_job("erase", "x", at(30), at(40), at(0)).await?);
    assert!(a.claim_job("erase", "x", at(60), at(70), at(0)).await?);
    Ok(())
}

fn change_request(shipment: &Shipment, now: Timestamp) -> ChangeRequest {
    ChangeRequest {
        id: Uuid::now_v7(),
        shipment_id: shipment.id,
        merchant_id: shipment.merchant_id,
        details: ChangeDetails::Neighbour {
            name: "Jan".into(),
            house_number: "12".into(),
        },
        state: ChangeState::CodeSent,
        code_hash: Some("hash".into()),
        code_sent_to: Some("a…@example.com".into()),
        code_expires_at: now + SignedDuration::from_mins(15),
        wrong_codes: 0,
        client_hash: None,
        approval_reason: None,
        outcome_note: None,
        created_at: now,
        updated_at: now,
    }
}

fn merchant_email(shipment: &Shipment, change: Uuid, now: Timestamp) -> MerchantEmail {
    let mut email = MerchantEmail::new(
        shipment.merchant_id,
        "Waymark <waymark@example.com>".into(),
        "ops@shop.example".into(),
        "A delivery change to make".into(),
        "Leave it with Jan, no. 12".into(),
        now,
    );
    email.shipment_id = Some(shipment.id);
    email.change_id = Some(change);
    email
}

#[tokio::test]
async fn a_delivery_change_moves_once_and_its_emails_are_claimed_once() -> TestResult {
    let (a, b) = two_replicas().await?;
    let main = account(&a, "main").await?;
    let s = shipment(&a, main, "NUMBER0001").await?;
    let request = change_request(&s, at(1));
    a.create_delivery_change(&request, "a code was sent")
        .await?;
    assert_eq!(a.delivery_change(request.id).await?, Some(request.clone()));

    // Two replicas verify the same code at once: one moves it on.
    let mut handed = request.clone();
    handed.state = ChangeState::HandedToMerchant;
    handed.updated_at = at(2);
    let email = merchant_email(&s, request.id, at(2));
    let notify = message(Trigger::Shipped, "change-handed")?;
    let (ra, rb) = tokio::join!(
        a.update_delivery_change(&request, &handed, "verified", Some(&notify), Some(&email)),
        b.update_delivery_change(&request, &handed, "verified", Some(&notify), Some(&email)),
    );
    let moved = [ra?, rb?];
    assert_eq!(moved.iter().filter(|m| **m).count(), 1);
    assert_eq!(a.notifications(s.id).await?.len(), 1);
    assert_eq!(
        a.delivery_change(request.id).await?.map(|r| r.state),
        Some(ChangeState::HandedToMerchant)
    );
    assert_eq!(a.shipment_delivery_changes(s.id).await?.len(), 1);
    assert_eq!(
        a.merchant_delivery_changes(MerchantId::DEFAULT, Some(ChangeState::HandedToMerchant), 10)
            .await?
            .len(),
        1
    );
    assert!(
        a.merchant_delivery_changes(MerchantId::DEFAULT, Some(ChangeState::Executed), 10)
            .await?
            .is_empty()
    );
    assert_eq!(a.delivery_changes_since(s.id, at(0)).await?, 1);
    assert!(a.executed_delivery_changes().await?.is_empty());

    // Senders on both replicas claim at once: the email goes to one of them.
    let (ca, cb) = tokio::join!(
        a.claim_merchant_emails(at(3), at(8), 10),
        b.claim_merchant_emails(at(3), at(8), 10)
    );
    let (ca, cb) = (ca?, cb?);
    assert_eq!(ca.len() + cb.len(), 1);
    let claimed = ca.into_iter().chain(cb).next().context("the email")?;
    assert_eq!(claimed.id, email.id);
    assert_eq!(claimed.due_at, Some(at(8)));
    assert!(a.claim_merchant_emails(at(4), at(9), 10).await?.is_empty());

    a.settle_merchant_email(
        &claimed,
        &MerchantEmailOutcome::Retry {
            at: at(20),
            error: "421 try later".into(),
        },
        at(4),
    )
    .await?;
    assert!(
        b.claim_merchant_emails(at(10), at(25), 10)
            .await?
            .is_empty()
    );
    let retried = b.claim_merchant_emails(at(20), at(25), 10).await?;
    assert_eq!(retried.len(), 1);
    b.settle_merchant_email(
        &retried[0],
        &MerchantEmailOutcome::Sent { at: at(21) },
        at(21),
    )
    .await?;
    // Settled once: a late second settle changes nothing.
    a.settle_merchant_email(
        &retried[0],
        &MerchantEmailOutcome::Sent { at: at(22) },
        at(22),
    )
    .await?;
    let emails = a.merchant_emails(MerchantId::DEFAULT).await?;
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].state, MerchantEmailState::Sent);
    assert_eq!(emails[0].attempts, 2);
    assert_eq!(emails[0].sent_at, Some(at(21)));

    let trail: Vec<(ChangeState, String)> = a
        .delivery_change_events(request.id)
        .await?
        .into_iter()
        .map(|e| (e.state, e.note))
        .collect();
    assert_eq!(
        trail,
        vec![
            (ChangeState::CodeSent, "a code was sent".to_owned()),
            (ChangeState::HandedToMerchant, "verified".to_owned()),
            (
                ChangeState::HandedToMerchant,
                "emailing the merchant failed (421 try later); trying again".to_owned()
            ),
            (
                ChangeState::HandedToMerchant,
                "the merchant was emailed at ops@shop.example".to_owned()
            ),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn merchants_keys_templates_logos_and_settings_read_back() -> TestResult {
    let (store, _, _) = open().await?;
    let shop = Merchant {
        id: MerchantId::new(),
        slug: MerchantSlug::parse("shop")?,
        name: "Shop".into(),
        created_at: at(0),
    };
    store.create_merchant(&shop).await?;
    let mut twin = shop.clone();
    twin.id = MerchantId::new();
    assert!(matches!(
        store.create_merchant(&twin).await,
        Err(StoreError::Duplicate { field: "slug", .. })
    ));
    assert_eq!(store.merchant(shop.id).await?, Some(shop.clone()));
    assert_eq!(
        store.merchant_by_slug(&shop.slug).await?,
        Some(shop.clone())
    );
    assert_eq!(store.merchants().await?.len(), 2);

    let mut settings = store
        .merchant_settings(shop.id)
        .await?
        .context("settings")?;
    settings.branding.sender_name = Some("Shop & Co".into());
    assert!(store.save_merchant_settings(shop.id, &settings).await?);
    assert_eq!(store.merchant_settings(shop.id).await?, Some(settings));
    assert!(
        !store
            .save_merchant_settings(MerchantId::new(), &Default::default())
            .await?
    );

    let key = ApiKey {
        id: Uuid::now_v7(),
        merchant_id: shop.id,
        name: "erp".into(),
        prefix: "wm_abcdefgh".into(),
        created_at: at(0),
        last_used_at: None,
        revoked_at: None,
    };
    let hash = ApiKeyHash::of("wm_abcdefgh_secret");
    store.create_api_key(&key, &hash).await?;
    let used = store
        .authenticate_api_key(&hash, at(1))
        .await?
        .context("key")?;
    assert_eq!(used.id, key.id);
    assert_eq!(store.api_keys(shop.id).await?[0].last_used_at, Some(at(1)));
    let revoked = store
        .revoke_api_key(shop.id, "wm_abcdefgh", at(2))
        .await?
        .context("revoked")?;
    assert_eq!(revoked.revoked_at, Some(at(2)));
    assert!(store.authenticate_api_key(&hash, at(3)).await?.is_none());

    store
        .save_merchant_template(shop.id, "email/en/shipped.html", "hi", at(1))
        .await?;
    store
        .save_merchant_template(shop.id, "email/en/shipped.html", "hello", at(2))
        .await?;
    assert_eq!(
        store.merchant_templates(shop.id).await?,
        vec![(
            "email/en/shipped.html".to_owned(),
            "hello".to_owned(),
            at(2)
        )]
    );
    assert!(
        store
            .delete_merchant_template(shop.id, "email/en/shipped.html")
            .await?
    );
    assert!(
        !store
            .delete_merchant_template(shop.id, "email/en/shipped.html")
            .await?
    );

    let logo = MerchantLogo {
        content_type: "image/png".into(),
        bytes: vec![0x89, b'P', b'N', b'G', 0, 255],
        updated_at: at(3),
    };
    assert!(store.save_merchant_logo(shop.id, Some(&logo)).await?);
    assert!(store.save_merchant_logo(shop.id, Some(&logo)).await?);
    assert!(
        !store
            .save_merchant_logo(MerchantId::new(), Some(&logo))
            .await?
    );
    assert_eq!(store.merchant_logo(shop.id).await?, Some(logo));
    assert_eq!(store.merchant_logo_updated_at(shop.id).await?, Some(at(3)));
    assert!(store.save_merchant_logo(shop.id, None).await?);
    assert!(!store.save_merchant_logo(shop.id, None).await?);

    store
        .suppress_recipient(shop.id, Channel::Email, "Anna@Example.com", at(1))
        .await?;
    store
        .suppress_recipient(shop.id, Channel::Email, "anna@example.com", at(2))
        .await?;
    assert!(
        store
            .is_suppressed(shop.id, Channel::Email, "ANNA@example.com")
            .await?
    );
    assert!(
        !store
            .is_suppressed(MerchantId::DEFAULT, Channel::Email, "anna@example.com")
            .await?
    );

    assert_eq!(store.setting("anchor").await?, None);
    assert_eq!(store.setting_or_insert("anchor", "1").await?, "1");
    assert_eq!(store.setting_or_insert("anchor", "2").await?, "1");

    let first = store
        .save_idempotent_response(shop.id, "k", "h1", 201, "{}", at(1))
        .await?;
    let second = store
        .save_idempotent_response(shop.id, "k", "h2", 500, "no", at(2))
        .await?;
    assert_eq!(first, second);
    assert_eq!(store.idempotent_response(shop.id, "k").await?, Some(first));
    assert_eq!(store.prune_idempotent_responses(at(2)).await?, 1);
    Ok(())
}

#[tokio::test]
async fn a_merchants_list_filters_and_pages() -> TestResult {
    let (store, _, _) = open().await?;
    let main = account(&store, "main").await?;
    let mut all = Vec::new();
    for n in 0..5 {
        all.push(shipment(&store, main, &format!("LIST{n:05}")).await?);
    }
    let first = store
        .merchant_shipments(MerchantId::DEFAULT, &ShipmentFilter::default(), 2)
        .await?;
    assert_eq!(ids(&first), vec![all[4].id, all[3].id]);
    let next = store
        .merchant_shipments(
            MerchantId::DEFAULT,
            &ShipmentFilter {
                after: Some(all[3].id),
                ..Default::default()
            },
            10,
        )
        .await?;
    assert_eq!(ids(&next), vec![all[2].id, all[1].id, all[0].id]);
    let none = store
        .merchant_shipments(
            MerchantId::DEFAULT,
            &ShipmentFilter {
                status: Some(Status::Delivered),
                delayed: Some(true),
                stalled: Some(false),
                order_reference: Some("ORDER-17".into()),
                created_from: Some(at(0)),
                created_until: Some(at(1)),
                ..Default::default()
            },
            10,
        )
        .await?;
    assert!(none.is_empty());
    let not_stalled = store
        .merchant_shipments(
            MerchantId::DEFAULT,
            &ShipmentFilter {
                stalled: Some(false),
                delayed: Some(false),
                carrier: Some(CarrierCode::parse("sandbox")?),
                ..Default::default()
            },
            10,
        )
        .await?;
    assert_eq!(not_stalled.len(), 5);

    // A merchant's change to one: a changed promise joins the estimate history.
    let changes = ShipmentChanges {
        customer: all[0].customer.clone(),
        promise: None,
        muted: true,
    };
    let changed = store
        .update_shipment(MerchantId::DEFAULT, all[0].id, &changes, at(2))
        .await?
        .context("changed")?;
    assert!(changed.muted);
    assert_eq!(changed.promise, None);
    assert_eq!(store.estimate_changes(all[0].id).await?.len(), 2);
    assert!(
        store
            .update_shipment(MerchantId::new(), all[0].id, &changes, at(2))
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn expiry_and_erasure_leave_nothing_personal() -> TestResult {
    let (store, _, _) = open().await?;
    let main = account(&store, "main").await?;
    let silent = shipment(&store, main, "NUMBER0001").await?;
    let leased = shipment(&store, main, "NUMBER0002").await?;
    poll_with(
        &store,
        &silent,
        at(1),
        vec![message(Trigger::Shipped, "shipped")?],
        vec![],
    )
    .await?;
    claim(&store, main, "w", at(100)).await?;
    let kept = store
        .extend_shipment_leases(&[leased.id], "w", at(100), at(200))
        .await?;
    assert_eq!(kept, vec![leased.id]);
    // `silent` is free again (its claim was released), `leased` is held.
    store
        .release_shipments(&[silent.id], "w", at(100), SignedDuration::ZERO)
        .await?;
    let expired = store.expire_shipments(at(150), at(50), at(50)).await?;
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].shipment_id, silent.id);
    assert_eq!(expired[0].why, "never_found");
    let notices = store.merchant_notices(at(0)).await?;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].kind, "shipment_expired");
    let read = store.shipment(silent.id).await?.context("shipment")?;
    assert_eq!(read.journey.status, Status::Expired);
    assert!(!read.journey.active);

    // The message's facts lose the carrier's words and who signed.
    sqlx::query("UPDATE notifications SET facts = $2 WHERE shipment_id = $1")
        .bind(silent.id.to_string())
        .bind(
            serde_json::json!({
                "status": "delivered",
                "signed_by": "Jan",
                "event": {
                    "at": "2026-03-02T08:00:00Z",
                    "offset_seconds": 3600,
                    "location": "Leipzig",
                    "text": "left with Jan"
                },
            })
            .to_string(),
        )
        .execute(store.pool())
        .await?;
    assert_eq!(store.erase_finished_shipments(at(0), at(300), 10).await?, 0);
    let erased = store
        .erase_finished_shipments(at(10_000), at(300), 10)
        .await?;
    assert_eq!(erased, 1);
    assert!(!store.erase_shipment(Uuid::now_v7(), at(300)).await?);
    let gone = store.shipment(silent.id).await?.context("shipment")?;
    assert_eq!(gone.customer.email, None);
    assert_eq!(gone.customer.name, None);
    assert_eq!(gone.order_reference, None);
    assert_eq!(gone.erased_at, Some(at(300)));
    assert!(
        store
            .shipment_by_token(&silent.public_token)
            .await?
            .is_none()
    );
    let facts: String =
        sqlx::query_scalar("SELECT facts FROM notifications WHERE shipment_id = $1")
            .bind(silent.id.to_string())
            .fetch_one(store.pool())
            .await?;
    let facts: serde_json::Value = serde_json::from_str(&facts)?;
    assert_eq!(
        facts,
        serde_json::json!({
            "status": "delivered",
            "event": {
                "at": "2026-03-02T08:00:00Z",
                "offset_seconds": 3600,
                "location": "Leipzig",
                "text": ""
            },
        })
    );
    assert_eq!(
        store_states(&store, silent.id).await?,
        vec![NotificationState::Suppressed]
    );
    assert!(store.erase_shipment(leased.id, at(301)).await?);
    assert!(
        !store.erase_shipment(leased.id, at(302)).await?,
        "erased once"
    );
    assert_eq!(store.backlog().await?.active_shipments, 0);
    Ok(())
}

#[tokio::test]
async fn a_poll_and_a_delivery_change_writing_one_outbox_at_once_both_get_a_seq() -> TestResult {
    let (a, b) = two_replicas().await?;
    let main = account(&a, "main").await?;
    for round in 0..10 {
        let s = shipment(&a, main, &format!("OUTBOX{round:04}")).await?;
        claim(&a, main, "poller", at(1)).await?;
        let mut write = poll(&s, "poller", at(1));
        write.notifications = vec![
            message(Trigger::Shipped, "shipped")?,
            message(Trigger::OutForDelivery, "out-for-delivery")?,
        ];
        let request = change_request(&s, at(1));
        b.create_delivery_change(&request, "a code was sent")
            .await?;
        let mut executed = request.clone();
        executed.state = ChangeState::Executed;
        let notify = message(Trigger::Shipped, "change-executed")?;
        let (written, moved) = tokio::join!(
            a.record_poll(&write),
            b.update_delivery_change(&request, &executed, "carried out", Some(&notify), None)
        );
        assert!(written?);
        assert!(moved?);
        let seqs: Vec<i64> = states(&a, s.id)
            .await?
            .into_iter()
            .map(|(seq, ..)| seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }
    Ok(())
}

//! One suite for every store: each test below runs against SQLite and against PostgreSQL
//! (a throwaway cluster), through the `Store` trait — what a scheduler, a dispatcher and a
//! merchant would read back after each write, the leases, the claims and the ordering rules.
//! A test reaches past the trait only to set up or look at a row, in SQL both databases read.

use anyhow::Context;
use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use std::collections::HashSet;
use std::ops::Deref;
use std::sync::Arc;
use uuid::Uuid;

use crate::carriers::CarrierAccount;
use crate::domain::{
    CarrierCode, Channel, CountryCode, Customer, DeliveryWindow, EmailAddress, EstimateChange,
    EstimateSource, EventTime, Facts, FetchCount, JourneyState, KeyedEvent, Locale, MerchantId,
    NewNotification, NewShipment, NotificationState, PostalCode, Reason, Shipment, Status,
    TimeZoneName, TrackingEvent, TrackingNumber, Trigger,
};
use crate::store::{ClaimOrder, Completion, PollClaim, PollFailure, PollWrite, Store, StoreError};

type TestResult = anyhow::Result<()>;

/// A value bound into a test's SQL.
#[derive(Debug, Clone)]
pub(super) enum Arg {
    Int(i64),
    Text(String),
}

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Arg::Int(value)
    }
}
impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Arg::Text(value.to_owned())
    }
}
impl From<Uuid> for Arg {
    fn from(value: Uuid) -> Self {
        Arg::Text(value.to_string())
    }
}

/// A value a test's SQL read back; flags read as 0 and 1 on both databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Cell {
    Null,
    Int(i64),
    Text(String),
}

impl Cell {
    fn int(&self) -> i64 {
        match self {
            Cell::Int(n) => *n,
            _ => 0,
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            Cell::Text(t) => Some(t.clone()),
            _ => None,
        }
    }
}

/// What a database under test offers a test besides the store: its SQL, and a second store
/// on the same data (another process).
#[async_trait::async_trait]
pub(super) trait Backend: Send + Sync {
    async fn rows(&self, sql: &str, args: &[Arg]) -> anyhow::Result<Vec<Vec<Cell>>>;
    async fn exec(&self, sql: &str, args: &[Arg]) -> anyhow::Result<u64>;
    async fn another(&self) -> anyhow::Result<Arc<dyn Store>>;
}

/// A migrated store on a fresh database, with its backend.
pub(super) struct Harness {
    pub store: Arc<dyn Store>,
    backend: Arc<dyn Backend>,
}

impl Deref for Harness {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}

impl Harness {
    pub(super) fn new(store: Arc<dyn Store>, backend: Arc<dyn Backend>) -> Self {
        Harness { store, backend }
    }

    /// The rows `sql` reads (`?1`… placeholders, plain SQL both databases understand).
    async fn rows(&self, sql: &str, args: &[Arg]) -> anyhow::Result<Vec<Vec<Cell>>> {
        self.backend.rows(sql, args).await
    }

    /// The one row `sql` reads.
    async fn row(&self, sql: &str, args: &[Arg]) -> anyhow::Result<Vec<Cell>> {
        self.rows(sql, args)
            .await?
            .into_iter()
            .next()
            .context("no row")
    }

    /// The first column of each row `sql` reads.
    async fn column(&self, sql: &str, args: &[Arg]) -> anyhow::Result<Vec<Cell>> {
        Ok(self
            .rows(sql, args)
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect())
    }

    async fn exec(&self, sql: &str, args: &[Arg]) -> anyhow::Result<u64> {
        self.backend.exec(sql, args).await
    }

    /// A second store on the same database, as another process would open it.
    async fn another(&self) -> anyhow::Result<Arc<dyn Store>> {
        self.backend.another().await
    }
}

/// Each test once per database.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() -> super::TestResult {
                    super::$test(crate::store::sqlite::testing::harness().await?).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() -> super::TestResult {
                    super::$test(crate::store::postgres::testing::harness().await?).await
                }
            )*
        }
    };
}

conformance!(
    a_shipment_reads_back_field_by_field,
    a_tracking_number_registered_twice_on_an_account_is_refused,
    the_same_number_on_another_account_is_allowed,
    an_account_name_is_unique_per_carrier_and_reads_back,
    a_setting_keeps_its_first_value,
    a_lease_is_renewed_only_by_its_holder_and_only_before_it_runs_out,
    a_claim_respects_leases_and_rescues_expired_ones,
    the_nearest_delivery_comes_first_when_asked,
    a_poll_after_losing_the_lease_writes_nothing,
    polls_written_together_keep_each_ones_outcome,
    a_scan_is_stored_once_across_two_polls,
    an_estimate_change_is_stored_with_its_reason,
    supersede_marks_only_pending_rows,
    a_dedupe_key_never_produces_a_second_row,
    a_shipments_second_message_waits_for_the_first,
    deferral_keeps_attempts_unchanged,
    a_crashed_dispatchers_message_is_rescued_and_final_states_stick,
    quota_reservation_stops_at_the_quota,
    call_slots_let_a_burst_through_then_space_calls_for_every_process,
    one_process_at_a_time_fetches_an_accounts_token_and_all_share_it,
    a_failed_poll_is_recorded_and_counts_towards_back_off,
    next_poll_at_is_when_something_becomes_claimable,
    release_and_defer_push_shipments_later,
    shipments_held_back_together_come_due_spread_out_the_urgent_ones_first,
    concurrent_polls_do_not_fail_with_busy,
);

pub(super) fn t0() -> Timestamp {
    Timestamp::from_second(1_772_438_400).unwrap_or(Timestamp::UNIX_EPOCH) // 2026-03-02T08:00Z
}

pub(super) fn at(minutes: i64) -> Timestamp {
    t0() + SignedDuration::from_mins(minutes)
}

pub(super) async fn account(store: &dyn Store, name: &str) -> anyhow::Result<Uuid> {
    let account = CarrierAccount {
        id: Uuid::now_v7(),
        merchant_id: crate::domain::MerchantId::DEFAULT,
        carrier: CarrierCode::parse("sandbox")?,
        name: name.to_owned(),
        credentials: serde_json::json!({ "api_key": "secret" }).into(),
        base_url: Some("http://localhost:9999".into()),
        daily_quota: Some(250),
        requests_per_second: Some(2.5),
    };
    store.create_carrier_account(&account).await?;
    Ok(account.id)
}

pub(super) fn new_shipment(account: Uuid, number: &str) -> anyhow::Result<NewShipment> {
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

pub(super) async fn shipment(
    store: &dyn Store,
    account: Uuid,
    number: &str,
) -> anyhow::Result<Shipment> {
    Ok(store
        .insert_shipment(&new_shipment(account, number)?, t0())
        .await?)
}

async fn claim(
    store: &dyn Store,
    account: Uuid,
    owner: &str,
    now: Timestamp,
) -> anyhow::Result<Vec<Shipment>> {
    Ok(store
        .claim_due_shipments(&PollClaim {
            carrier_account_id: account,
            owner,
            now,
            lease_until: now + SignedDuration::from_mins(5),
            limit: 10,
            order: ClaimOrder::DueFirst,
        })
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

/// Facts as a detector leaves them; built from JSON so new optional fields need no change here.
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
    store: &Harness,
    shipment: &Shipment,
    now: Timestamp,
    notifications: Vec<NewNotification>,
    supersede: Vec<Trigger>,
) -> TestResult {
    // Lease just this shipment, whatever else of the account is due.
    let owner = format!("poller-{now}");
    store
        .exec(
            "UPDATE shipments SET lease_owner = ?2, lease_expires_at = ?3 WHERE id = ?1",
            &[
                shipment.id.into(),
                owner.as_str().into(),
                (now + SignedDuration::from_mins(5)).as_millisecond().into(),
            ],
        )
        .await?;
    let mut write = poll(shipment, &owner, now);
    write.notifications = notifications;
    write.supersede = supersede;
    write.next_poll_at = Some(now + SignedDuration::from_mins(1));
    anyhow::ensure!(store.record_poll(&write).await?, "lease lost");
    Ok(())
}

async fn states(
    store: &dyn Store,
    shipment: Uuid,
) -> anyhow::Result<Vec<(i64, Trigger, NotificationState)>> {
    Ok(store
        .notifications(shipment)
        .await?
        .into_iter()
        .map(|n| (n.seq, n.trigger, n.state))
        .collect())
}

async fn count(store: &Harness, sql: &str, id: Uuid) -> anyhow::Result<i64> {
    Ok(store.row(sql, &[id.into()]).await?[0].int())
}

async fn a_shipment_reads_back_field_by_field(store: Harness) -> TestResult {
    let account = account(&*store, "main").await?;
    let new = new_shipment(account, "JJD000390007")?;
    let inserted = store.insert_shipment(&new, t0()).await?;

    let read = store.shipment(inserted.id).await?.context("shipment")?;
    assert_eq!(read, inserted);
    assert_eq!(read.id.get_version_num(), 7);
    assert_eq!(read.carrier_account_id, account);
    assert_eq!(read.carrier.as_str(), "sandbox");
    assert_eq!(read.tracking_number.as_str(), "JJD000390007");
    assert_eq!(read.customer, new.customer);
    assert_eq!(read.customer.locale.as_str(), "pl");
    assert_eq!(read.customer.time_zone.as_str(), "Europe/Warsaw");
    assert_eq!(read.destination_country.as_str(), "PL");
    assert_eq!(
        read.destination_postal_code
            .as_ref()
            .map(PostalCode::as_str),
        Some("00-950")
    );
    assert_eq!(read.order_reference.as_deref(), Some("ORDER-17"));
    assert_eq!(read.promise, new.promise);
    assert_eq!(read.created_at, t0());
    assert_eq!(read.public_token, format!("v2:{}", read.id));
    assert!(!read.muted);
    assert_eq!(read.journey, JourneyState::new_shipment());
    assert_eq!(read.poll_failures, 0);
    assert_eq!(read.last_error, None);

    let row = store
        .row(
            "SELECT next_poll_at, poll_priority, status, active, lease_owner FROM shipments \
             WHERE id = ?1",
            &[read.id.into()],
        )
        .await?;
    assert_eq!(
        row,
        [
            Cell::Int(t0().as_millisecond()),
            Cell::Int(3),
            Cell::Text("pending".into()),
            Cell::Int(1),
            Cell::Null
        ]
    );

    let by_token = store.shipment_by_token(&read.public_token).await?;
    assert_eq!(by_token.map(|s| s.id), Some(read.id));
    assert!(store.shipment_by_token("nope").await?.is_none());
    let by_number = store.shipments_by_number(&new.tracking_number).await?;
    assert_eq!(ids(&by_number), vec![read.id]);
    assert!(store.shipment(Uuid::now_v7()).await?.is_none());

    assert!(store.set_muted(read.id, true).await?);
    assert!(store.shipment(read.id).await?.context("shipment")?.muted);
    assert!(!store.set_muted(Uuid::now_v7(), true).await?);
    Ok(())
}

async fn a_tracking_number_registered_twice_on_an_account_is_refused(store: Harness) -> TestResult {
    let account = account(&*store, "main").await?;
    shipment(&*store, account, "JJD000390007").await?;

    let err = store
        .insert_shipment(&new_shipment(account, "jjd 000 390 007")?, at(1))
        .await
        .err()
        .context("second insert accepted")?;
    match err {
        StoreError::Duplicate { field, detail } => {
            assert_eq!(field, "tracking_number");
            assert_eq!(
                detail,
                "`JJD000390007` is already registered on this carrier account"
            );
        }
        other => anyhow::bail!("expected Duplicate, got {other:?}"),
    }
    Ok(())
}

async fn the_same_number_on_another_account_is_allowed(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    let returns = account(&*store, "returns").await?;
    let a = shipment(&*store, main, "JJD000390007").await?;
    let b = shipment(&*store, returns, "JJD000390007").await?;
    assert_ne!(a.public_token, b.public_token);

    let found = store.shipments_by_number(&a.tracking_number).await?;
    let accounts: HashSet<Uuid> = found.iter().map(|s| s.carrier_account_id).collect();
    assert_eq!(accounts, HashSet::from([main, returns]));
    Ok(())
}

async fn an_account_name_is_unique_per_carrier_and_reads_back(store: Harness) -> TestResult {
    let id = account(&*store, "main").await?;
    let err = account(&*store, "main")
        .await
        .err()
        .context("accepted twice")?;
    match err.downcast_ref::<StoreError>() {
        Some(StoreError::Duplicate { field, detail }) => {
            assert_eq!(*field, "name");
            assert!(detail.contains("`main`"), "{detail}");
        }
        other => anyhow::bail!("expected Duplicate, got {other:?}"),
    }

    let sandbox = CarrierCode::parse("sandbox")?;
    let read = store
        .carrier_account_by_name(MerchantId::DEFAULT, &sandbox, "main")
        .await?
        .context("by name")?;
    assert_eq!(read.id, id);
    assert_eq!(read.credentials.expose("api_key"), Some("secret"));
    assert_eq!(read.base_url.as_deref(), Some("http://localhost:9999"));
    assert_eq!(read.daily_quota, Some(250));
    assert_eq!(read.requests_per_second, Some(2.5));
    assert_eq!(store.carrier_account(id).await?, Some(read.clone()));
    assert_eq!(store.carrier_accounts().await?, vec![read]);
    assert!(
        store
            .carrier_account_by_name(MerchantId::DEFAULT, &sandbox, "other")
            .await?
            .is_none()
    );
    Ok(())
}

async fn a_setting_keeps_its_first_value(store: Harness) -> TestResult {
    assert_eq!(store.setting("clock_anchor").await?, None);
    assert_eq!(store.setting_or_insert("clock_anchor", "1").await?, "1");
    assert_eq!(store.setting_or_insert("clock_anchor", "2").await?, "1");
    assert_eq!(store.setting("clock_anchor").await?.as_deref(), Some("1"));
    Ok(())
}

async fn a_lease_is_renewed_only_by_its_holder_and_only_before_it_runs_out(
    store: Harness,
) -> TestResult {
    let main = account(&*store, "main").await?;
    let first = shipment(&*store, main, "NUMBER0001").await?;
    let second = shipment(&*store, main, "NUMBER0002").await?;
    // Claimed at minute 2, leased until minute 7.
    let a = claim(&*store, main, "a", at(2)).await?;
    assert_eq!(ids(&a), vec![first.id, second.id]);

    let both = [first.id, second.id];
    // In no particular order.
    let mut renewed = store
        .extend_shipment_leases(&both, "a", at(6), at(20))
        .await?;
    renewed.sort();
    assert_eq!(renewed, both.to_vec());
    assert!(
        store
            .extend_shipment_leases(&both, "b", at(6), at(30))
            .await?
            .is_empty(),
        "not b's to renew"
    );
    // Still held at minute 15 thanks to the renewal: nobody else can claim them.
    assert!(claim(&*store, main, "b", at(15)).await?.is_empty());
    // Once the lease has run out, renewing it is too late even if nobody took it yet.
    assert!(
        store
            .extend_shipment_leases(&both, "a", at(21), at(40))
            .await?
            .is_empty()
    );
    let b = claim(&*store, main, "b", at(21)).await?;
    assert_eq!(ids(&b), both.to_vec());
    Ok(())
}

async fn a_claim_respects_leases_and_rescues_expired_ones(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    let other = account(&*store, "other").await?;
    let first = shipment(&*store, main, "NUMBER0001").await?;
    let second = store
        .insert_shipment(&new_shipment(main, "NUMBER0002")?, at(1))
        .await?;
    let later = store
        .insert_shipment(&new_shipment(main, "NUMBER0003")?, at(30))
        .await?;
    shipment(&*store, other, "NUMBER0004").await?;

    let a = claim(&*store, main, "a", at(2)).await?;
    assert_eq!(
        ids(&a),
        vec![first.id, second.id],
        "due first, other account and future left"
    );

    assert!(
        claim(&*store, main, "b", at(3)).await?.is_empty(),
        "leased rows are not claimed"
    );

    // A's lease ran out at minute 7: B takes both over.
    let b = claim(&*store, main, "b", at(8)).await?;
    assert_eq!(ids(&b), vec![first.id, second.id]);
    let owners = store
        .column(
            "SELECT lease_owner FROM shipments WHERE lease_owner IS NOT NULL ORDER BY id",
            &[],
        )
        .await?;
    assert_eq!(owners, [Cell::Text("b".into()), Cell::Text("b".into())]);

    // B finishes both; the limit holds, and the shipment due later comes once it is due.
    for s in &b {
        assert!(store.record_poll(&poll(s, "b", at(9))).await?);
    }
    let c = store
        .claim_due_shipments(&PollClaim {
            carrier_account_id: main,
            owner: "c",
            now: at(31),
            lease_until: at(36),
            limit: 1,
            order: ClaimOrder::DueFirst,
        })
        .await?;
    assert_eq!(ids(&c), vec![later.id]);
    Ok(())
}

async fn the_nearest_delivery_comes_first_when_asked(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    let old = shipment(&*store, main, "NUMBER0001").await?;
    let urgent = shipment(&*store, main, "NUMBER0002").await?;
    store
        .exec(
            "UPDATE shipments SET poll_priority = 0, next_poll_at = ?2 WHERE id = ?1",
            &[urgent.id.into(), at(5).as_millisecond().into()],
        )
        .await?;

    let claimed = store
        .claim_due_shipments(&PollClaim {
            carrier_account_id: main,
            owner: "a",
            now: at(10),
            lease_until: at(15),
            limit: 10,
            order: ClaimOrder::NearestDeliveryFirst,
        })
        .await?;
    assert_eq!(ids(&claimed), vec![urgent.id, old.id]);
    Ok(())
}

async fn a_poll_after_losing_the_lease_writes_nothing(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    let s = shipment(&*store, main, "NUMBER0001").await?;
    claim(&*store, main, "slow", at(1)).await?;
    // The slow worker's lease ends at minute 6; another worker re-claims at minute 7.
    assert_eq!(ids(&claim(&*store, main, "fast", at(7)).await?), vec![s.id]);

    let mut late = poll(&s, "slow", at(8));
    late.new_events = vec![scan(0, "PU", Status::InTransit)];
    late.estimate_change = Some(EstimateChange {
        source: EstimateSource::Carrier,
        previous: None,
        current: Some(DeliveryWindow::on(date(2026, 3, 5))),
        reason: "carrier gave a first estimate".into(),
    });
    late.notifications = vec![message(Trigger::Shipped, "shipped")?];
    assert!(!store.record_poll(&late).await?);
    let failure = PollFailure {
        shipment_id: s.id,
        owner: "slow".into(),
        now: at(8),
        kind: "transient",
        detail: "timeout".into(),
        excerpt: None,
        count_failure: true,
        next_poll_at: at(20),
        fetched: FetchCount {
            day: "1970-01-01".into(),
            count: 1,
        },
    };
    assert!(!store.record_poll_failure(&failure).await?);

    let unchanged = store.shipment(s.id).await?.context("shipment")?;
    assert_eq!(unchanged.journey, JourneyState::new_shipment());
    assert_eq!(unchanged.poll_failures, 0);
    assert!(store.timeline(s.id).await?.is_empty());
    // Only the promise recorded at registration: the lost poll's estimate change is not there.
    let changes = store.estimate_changes(s.id).await?;
    assert!(
        changes
            .iter()
            .all(|(_, c)| c.source == EstimateSource::Promise),
        "{changes:?}"
    );
    assert!(store.notifications(s.id).await?.is_empty());
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM poll_errors WHERE shipment_id = ?1",
            s.id
        )
        .await?,
        0
    );
    let owner = store
        .row(
            "SELECT lease_owner FROM shipments WHERE id = ?1",
            &[s.id.into()],
        )
        .await?;
    assert_eq!(
        owner,
        [Cell::Text("fast".into())],
        "the new holder keeps its lease"
    );

    assert!(store.record_poll(&poll(&s, "fast", at(8))).await?);
    let polled = store.shipment(s.id).await?.context("shipment")?;
    assert_eq!(polled.journey.status, Status::InTransit);
    Ok(())
}

/// Polls that finish together are written in one group, each on its own terms: a lost lease
/// writes nothing of that poll, a result that cannot be stored fails alone, the rest go in.
async fn polls_written_together_keep_each_ones_outcome(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    let mut shipments = Vec::new();
    for n in 0..40 {
        shipments.push(shipment(&*store, main, &format!("GROUP{n:04}")).await?);
    }
    let claimed = store
        .claim_due_shipments(&PollClaim {
            carrier_account_id: main,
            owner: "w",
            now: at(1),
            lease_until: at(6),
            limit: 100,
            order: ClaimOrder::DueFirst,
        })
        .await?;
    assert_eq!(claimed.len(), 40);

    let mut writes = Vec::new();
    for s in &shipments {
        let mut write = poll(s, "w", at(2));
        write.new_events = vec![scan(0, "PU", Status::InTransit)];
        write.notifications = vec![message(Trigger::Shipped, "shipped")?];
        writes.push(write);
    }
    // Shipment 3's poll no longer holds the lease; shipment 7's message reuses shipment 6's id,
    // which the outbox cannot take twice.
    writes[3].owner = "someone else".into();
    writes[7].notifications[0].id = writes[6].notifications[0].id;

    let results = futures::future::join_all(writes.iter().map(|w| store.record_poll(w))).await;
    // Of 6 and 7 whichever comes second is refused (on SQLite, which writes them in order: 7).
    let refused = if results[6].is_err() { 6 } else { 7 };
    for (n, result) in results.iter().enumerate() {
        match n {
            3 => assert!(matches!(result, Ok(false)), "{n}: {result:?}"),
            _ if n == refused => assert!(result.is_err(), "{n}: {result:?}"),
            _ => assert!(matches!(result, Ok(true)), "{n}: {result:?}"),
        }
    }
    for (n, s) in shipments.iter().enumerate() {
        let stored = store.shipment(s.id).await?.context("shipment")?;
        let written = n != 3 && n != refused;
        assert_eq!(
            stored.journey.status == Status::InTransit,
            written,
            "{n}: {:?}",
            stored.journey
        );
        assert_eq!(
            store.timeline(s.id).await?.len(),
            usize::from(written),
            "{n}"
        );
        assert_eq!(
            store.notifications(s.id).await?.len(),
            usize::from(written),
            "{n}"
        );
    }
    Ok(())
}

async fn a_scan_is_stored_once_across_two_polls(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    let s = shipment(&*store, main, "NUMBER0001").await?;
    let mut picked_up = scan(10, "PU", Status::InTransit);
    picked_up.event.reason = Some(Reason::ArrivedDestinationCountry);
    let hub = scan(20, "AR", Status::InTransit);
    let earlier = scan(5, "IR", Status::InfoReceived);

    claim(&*store, main, "a", at(30)).await?;
    let mut first = poll(&s, "a", at(30));
    first.new_events = vec![hub.clone(), picked_up.clone()];
    first.journey.last_event_at = Some(hub.event.time.at);
    first.next_poll_at = Some(at(40));
    assert!(store.record_poll(&first).await?);

    // The second poll repeats the hub scan (a push and a poll crossing) and adds an older one.
    claim(&*store, main, "a", at(40)).await?;
    let mut second = poll(&s, "a", at(40));
    second.new_events = vec![hub.clone(), earlier.clone()];
    assert!(store.record_poll(&second).await?);

    let timeline = store.timeline(s.id).await?;
    assert_eq!(timeline, vec![earlier, picked_up, hub.clone()]);
    assert_eq!(timeline[1].event.time.offset_seconds, Some(3600));
    assert_eq!(
        timeline[1].event.reason,
        Some(Reason::ArrivedDestinationCountry)
    );
    assert_eq!(timeline[2].event.location.as_deref(), Some("Leipzig, DE"));
    let polled = store.shipment(s.id).await?.context("shipment")?;
    assert_eq!(
        polled.journey.last_event_at, None,
        "the second poll's journey is what is kept"
    );
    Ok(())
}

async fn an_estimate_change_is_stored_with_its_reason(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    let s = shipment(&*store, main, "NUMBER0001").await?;
    let before = DeliveryWindow::on(date(2026, 3, 4));
    let after = DeliveryWindow::between(date(2026, 3, 6), date(2026, 3, 7))?;
    let change = EstimateChange {
        source: EstimateSource::Carrier,
        previous: Some(before),
        current: Some(after),
        reason: "carrier moved the estimate later, from 2026-03-04 to 2026-03-06..2026-03-07"
            .into(),
    };

    claim(&*store, main, "a", at(1)).await?;
    let mut write = poll(&s, "a", at(1));
    write.journey.carrier_estimate = Some(after);
    write.estimate_change = Some(change.clone());
    assert!(store.record_poll(&write).await?);

    let changes = store.estimate_changes(s.id).await?;
    assert_eq!(changes.len(), 2, "{changes:?}");
    // The merchant's promise is the first estimate, recorded at registration.
    assert_eq!(changes[0].1.source, EstimateSource::Promise);
    assert_eq!(changes[0].1.previous, None);
    assert_eq!(changes[0].1.current, s.promise);
    assert!(changes[0].1.reason.contains("promised"), "{changes:?}");
    assert_eq!(changes[1], (at(1), change));
    let polled = store.shipment(s.id).await?.context("shipment")?;
    assert_eq!(polled.journey.carrier_estimate, Some(after));
    Ok(())
}

async fn supersede_marks_only_pending_rows(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    let s = shipment(&*store, main, "NUMBER0001").await?;
    poll_with(
        &store,
        &s,
        at(1),
        vec![
            message(Trigger::OutForDelivery, "ofd")?,
            message(Trigger::Delayed, "delayed")?,
        ],
        vec![],
    )
    .await?;
    // A dispatcher has the first message in hand.
    let claimed = store.claim_notifications("d", at(2), at(7), 10).await?;
    assert_eq!(claimed.len(), 1);

    poll_with(
        &store,
        &s,
        at(3),
        vec![message(Trigger::Delivered, "delivered")?],
        vec![Trigger::OutForDelivery, Trigger::Delayed],
    )
    .await?;
    assert_eq!(
        states(&*store, s.id).await?,
        vec![
            (1, Trigger::OutForDelivery, NotificationState::Sending),
            (2, Trigger::Delayed, NotificationState::Superseded),
            (3, Trigger::Delivered, NotificationState::Pending),
        ]
    );
    Ok(())
}

async fn a_dedupe_key_never_produces_a_second_row(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    let s = shipment(&*store, main, "NUMBER0001").await?;
    poll_with(
        &store,
        &s,
        at(1),
        vec![message(Trigger::Shipped, "shipped")?],
        vec![],
    )
    .await?;
    poll_with(
        &store,
        &s,
        at(2),
        vec![
            message(Trigger::Shipped, "shipped")?,
            message(Trigger::Delivered, "delivered")?,
            message(Trigger::Delivered, "delivered")?,
        ],
        vec![],
    )
    .await?;

    assert_eq!(
        states(&*store, s.id).await?,
        vec![
            (1, Trigger::Shipped, NotificationState::Pending),
            (2, Trigger::Delivered, NotificationState::Pending),
        ]
    );
    assert_eq!(
        store.fired_keys(s.id).await?,
        HashSet::from(["shipped".to_owned(), "delivered".to_owned()])
    );
    Ok(())
}

async fn a_shipments_second_message_waits_for_the_first(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    let s = shipment(&*store, main, "NUMBER0001").await?;
    let other = shipment(&*store, main, "NUMBER0002").await?;
    poll_with(
        &store,
        &s,
        at(1),
        vec![
            message(Trigger::Shipped, "shipped")?,
            message(Trigger::CustomsHold, "customs")?,
        ],
        vec![],
    )
    .await?;
    poll_with(
        &store,
        &other,
        at(2),
        vec![message(Trigger::Shipped, "shipped")?],
        vec![],
    )
    .await?;

    // One message per shipment: the first of `s` and the only one of `other`.
    let claimed = store.claim_notifications("d", at(3), at(8), 10).await?;
    let got: Vec<(Uuid, i64)> = claimed
        .iter()
        .map(|item| (item.shipment.id, item.notification.seq))
        .collect();
    assert_eq!(got, vec![(s.id, 1), (other.id, 1)]);
    assert_eq!(
        claimed[0].shipment,
        store.shipment(s.id).await?.context("shipment")?
    );
    assert_eq!(claimed[0].notification.state, NotificationState::Sending);
    assert_eq!(
        claimed[0].notification.attempts, 0,
        "claiming is not an attempt"
    );

    // While the first is sending, the second stays put, and nobody is woken up for it.
    assert!(
        store
            .claim_notifications("d", at(4), at(9), 10)
            .await?
            .is_empty()
    );
    assert_eq!(store.next_notification_at().await?, Some(at(8)));

    let first = claimed[0].notification.id;
    let sent = Completion::Sent {
        message_id: "<1@waymark>".into(),
        provider_response: "250 queued".into(),
    };
    assert_eq!(
        store
            .start_notification_attempt(first, "intruder", at(4), at(9))
            .await?,
        None,
        "only the lease holder attempts a send"
    );
    assert_eq!(
        store
            .start_notification_attempt(first, "d", at(4), at(9))
            .await?,
        Some(1)
    );
    assert!(
        !store
            .complete_notification(first, "intruder", at(5), &sent)
            .await?
    );
    assert!(
        store
            .complete_notification(first, "d", at(5), &sent)
            .await?
    );
    assert!(
        !store
            .complete_notification(first, "d", at(5), &sent)
            .await?,
        "only once"
    );

    let next = store.claim_notifications("d", at(6), at(11), 10).await?;
    let got: Vec<(Uuid, i64)> = next
        .iter()
        .map(|item| (item.shipment.id, item.notification.seq))
        .collect();
    assert_eq!(got, vec![(s.id, 2)]);

    let messages = store.notifications(s.id).await?;
    assert_eq!(messages[0].state, NotificationState::Sent);
    assert_eq!(messages[0].attempts, 1);
    assert_eq!(messages[0].sent_at, Some(at(5)));
    assert_eq!(messages[0].provider_response.as_deref(), Some("250 queued"));
    assert_eq!(store.thread_message_ids(s.id).await?, vec!["<1@waymark>"]);
    Ok(())
}

async fn deferral_keeps_attempts_unchanged(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    let s = shipment(&*store, main, "NUMBER0001").await?;
    poll_with(
        &store,
        &s,
        at(1),
        vec![
            message(Trigger::Shipped, "shipped")?,
            message(Trigger::Delayed, "delayed")?,
        ],
        vec![],
    )
    .await?;

    let id = store.claim_notifications("d", at(2), at(7), 10).await?[0]
        .notification
        .id;
    let morning = at(600);
    assert!(
        store
            .complete_notification(
                id,
                "d",
                at(2),
                &Completion::Deferred {
                    available_at: morning
                }
            )
            .await?
    );
    let deferred = &store.notifications(s.id).await?[0];
    assert_eq!(deferred.state, NotificationState::Pending);
    assert_eq!(deferred.attempts, 0);
    assert_eq!(deferred.available_at, morning);

    // Quiet hours hold the whole thread: the second message does not overtake the first.
    assert!(
        store
            .claim_notifications("d", at(3), at(8), 10)
            .await?
            .is_empty()
    );
    assert_eq!(store.next_notification_at().await?, Some(morning));

    let again = store.claim_notifications("d", morning, at(605), 10).await?;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].notification.id, id);
    assert_eq!(
        store
            .start_notification_attempt(id, "d", morning, at(605))
            .await?,
        Some(1)
    );
    let retry = Completion::Retry {
        error: "421 try later".into(),
        available_at: at(610),
    };
    assert!(
        store
            .complete_notification(id, "d", morning, &retry)
            .await?
    );
    let retried = &store.notifications(s.id).await?[0];
    assert_eq!(
        (retried.state, retried.attempts),
        (NotificationState::Pending, 1)
    );
    assert_eq!(retried.last_error.as_deref(), Some("421 try later"));
    Ok(())
}

async fn a_crashed_dispatchers_message_is_rescued_and_final_states_stick(
    store: Harness,
) -> TestResult {
    let main = account(&*store, "main").await?;
    let s = shipment(&*store, main, "NUMBER0001").await?;
    let t = shipment(&*store, main, "NUMBER0002").await?;
    poll_with(
        &store,
        &s,
        at(1),
        vec![message(Trigger::Shipped, "shipped")?],
        vec![],
    )
    .await?;
    poll_with(
        &store,
        &t,
        at(1),
        vec![message(Trigger::Shipped, "shipped")?],
        vec![],
    )
    .await?;

    assert_eq!(
        store
            .claim_notifications("crashed", at(2), at(7), 10)
            .await?
            .len(),
        2
    );
    assert!(
        store
            .claim_notifications("d", at(6), at(11), 10)
            .await?
            .is_empty()
    );
    let rescued = store.claim_notifications("d", at(8), at(13), 10).await?;
    assert_eq!(rescued.len(), 2);
    assert!(rescued.iter().all(|item| item.notification.attempts == 0));

    let (first, second) = (rescued[0].notification.id, rescued[1].notification.id);
    let failed = Completion::Failed {
        error: "550 no such user".into(),
    };
    // The crashed dispatcher's lease is gone: it can neither start an attempt nor finish.
    assert_eq!(
        store
            .start_notification_attempt(first, "crashed", at(8), at(13))
            .await?,
        None
    );
    assert_eq!(
        store
            .start_notification_attempt(first, "d", at(8), at(13))
            .await?,
        Some(1)
    );
    assert!(
        !store
            .complete_notification(first, "crashed", at(9), &failed)
            .await?
    );
    assert!(
        store
            .complete_notification(first, "d", at(9), &failed)
            .await?
    );
    let muted = Completion::Suppressed {
        why: "muted by the customer".into(),
    };
    assert!(
        store
            .complete_notification(second, "d", at(9), &muted)
            .await?
    );

    let mut finals = store.notifications(s.id).await?;
    finals.extend(store.notifications(t.id).await?);
    let mut got: Vec<(NotificationState, u32, Option<String>)> = finals
        .into_iter()
        .map(|n| (n.state, n.attempts, n.last_error))
        .collect();
    got.sort_by_key(|(state, ..)| state.as_str());
    assert_eq!(
        got,
        vec![
            (
                NotificationState::Failed,
                1,
                Some("550 no such user".into())
            ),
            (
                NotificationState::Suppressed,
                0,
                Some("muted by the customer".into())
            ),
        ]
    );
    assert!(
        store
            .claim_notifications("d", at(100), at(105), 10)
            .await?
            .is_empty()
    );
    assert_eq!(store.next_notification_at().await?, None);
    assert_eq!(store.backlog().await?.unsent_notifications, 0);
    Ok(())
}

async fn quota_reservation_stops_at_the_quota(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    let day = "2026-03-02";
    assert!(store.reserve_carrier_calls(main, day, 4, Some(10)).await?);
    assert!(store.reserve_carrier_calls(main, day, 4, Some(10)).await?);
    assert!(!store.reserve_carrier_calls(main, day, 4, Some(10)).await?);
    assert!(store.reserve_carrier_calls(main, day, 2, Some(10)).await?);
    assert!(!store.reserve_carrier_calls(main, day, 1, Some(10)).await?);

    // A first reservation beyond the quota is refused too, and counts nothing.
    assert!(
        !store
            .reserve_carrier_calls(main, "2026-03-03", 11, Some(10))
            .await?
    );
    assert!(
        store
            .reserve_carrier_calls(main, "2026-03-03", 10, Some(10))
            .await?
    );
    // Without a quota everything is counted.
    assert!(
        store
            .reserve_carrier_calls(main, "2026-03-04", 1_000, None)
            .await?
    );
    assert!(
        store
            .reserve_carrier_calls(main, "2026-03-04", 1_000, None)
            .await?
    );

    let used = store
        .rows(
            "SELECT day, calls FROM quota_usage WHERE carrier_account_id = ?1 ORDER BY day",
            &[main.into()],
        )
        .await?;
    assert_eq!(
        used,
        [
            [Cell::Text(day.into()), Cell::Int(10)],
            [Cell::Text("2026-03-03".into()), Cell::Int(10)],
            [Cell::Text("2026-03-04".into()), Cell::Int(2_000)]
        ]
    );
    Ok(())
}

async fn call_slots_let_a_burst_through_then_space_calls_for_every_process(
    store: Harness,
) -> TestResult {
    let main = account(&*store, "main").await?;
    let other = account(&*store, "other").await?;
    // A second process on the same database shares the account's slots.
    let second = store.another().await?;
    let interval = SignedDuration::from_millis(200);
    let now = t0();
    let mut slots = Vec::new();
    for i in 0..5 {
        let store: &dyn Store = if i % 2 == 0 { &*store } else { &*second };
        slots.push(store.reserve_carrier_slot(main, now, interval, 3).await?);
    }
    let ms = |t: Timestamp| t.duration_since(now).as_millis();
    assert_eq!(
        slots.into_iter().map(ms).collect::<Vec<_>>(),
        [0, 0, 0, 200, 400],
        "three at once, then one every 200 ms"
    );
    // Another account has its own.
    assert_eq!(
        store.reserve_carrier_slot(other, now, interval, 3).await?,
        now
    );
    // After a quiet spell the burst is back, and slots never lie in the past.
    let later = now + SignedDuration::from_secs(10);
    assert_eq!(
        store.reserve_carrier_slot(main, later, interval, 3).await?,
        later
    );
    Ok(())
}

async fn one_process_at_a_time_fetches_an_accounts_token_and_all_share_it(
    store: Harness,
) -> TestResult {
    use crate::carriers::tokens::SharedToken;
    let main = account(&*store, "main").await?;
    let now = t0();
    assert!(store.carrier_token(main).await?.is_none());
    assert!(
        store
            .begin_carrier_token_fetch(main, "a", now, at(1))
            .await?
    );
    assert!(
        !store
            .begin_carrier_token_fetch(main, "b", now, at(1))
            .await?
    );
    // Past its hold, the fetcher is taken for dead.
    assert!(
        store
            .begin_carrier_token_fetch(main, "b", at(1), at(2))
            .await?
    );
    store.abandon_carrier_token_fetch(main, "a").await?;
    assert!(
        !store
            .begin_carrier_token_fetch(main, "c", at(1), at(2))
            .await?,
        "b's, not a's"
    );
    let token = SharedToken {
        id: Uuid::now_v7(),
        token: "eyJ-shared-4711".into(),
        expires_at: at(60),
    };
    store.save_carrier_token(main, &token).await?;
    assert!(
        store
            .begin_carrier_token_fetch(main, "c", at(1), at(2))
            .await?,
        "saving ends b's"
    );
    let kept = store.carrier_token(main).await?.context("kept")?;
    assert_eq!(
        (kept.id, kept.token.expose(), kept.expires_at),
        (token.id, "eyJ-shared-4711", at(60))
    );
    let stored = format!(
        "{:?}",
        store.row("SELECT token FROM carrier_tokens", &[]).await?
    );
    assert!(
        !stored.contains("eyJ-shared-4711"),
        "sealed at rest: {stored}"
    );
    // Forgetting another token leaves this one; forgetting this one drops it.
    store.forget_carrier_token(main, Uuid::now_v7()).await?;
    assert!(store.carrier_token(main).await?.is_some());
    store.forget_carrier_token(main, token.id).await?;
    assert!(store.carrier_token(main).await?.is_none());
    Ok(())
}

async fn a_failed_poll_is_recorded_and_counts_towards_back_off(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    let s = shipment(&*store, main, "NUMBER0001").await?;
    claim(&*store, main, "a", at(1)).await?;
    let failure = PollFailure {
        shipment_id: s.id,
        owner: "a".into(),
        now: at(1),
        kind: "malformed",
        detail: "expected JSON".into(),
        excerpt: Some("<html>".into()),
        count_failure: true,
        next_poll_at: at(20),
        fetched: FetchCount {
            day: "1970-01-01".into(),
            count: 1,
        },
    };
    assert!(store.record_poll_failure(&failure).await?);
    let failed = store.shipment(s.id).await?.context("shipment")?;
    assert_eq!(failed.poll_failures, 1);
    assert_eq!(failed.last_error.as_deref(), Some("expected JSON"));
    assert!(
        claim(&*store, main, "a", at(19)).await?.is_empty(),
        "not due before the retry"
    );

    // An unknown fresh label is recorded but does not count.
    claim(&*store, main, "a", at(20)).await?;
    let not_found = PollFailure {
        kind: "not_found",
        count_failure: false,
        now: at(20),
        next_poll_at: at(80),
        ..failure
    };
    assert!(store.record_poll_failure(&not_found).await?);
    assert_eq!(
        store
            .shipment(s.id)
            .await?
            .context("shipment")?
            .poll_failures,
        1
    );
    let errors: Vec<(String, Option<String>)> = store
        .poll_errors(s.id)
        .await?
        .into_iter()
        .map(|e| (e.kind, e.excerpt))
        .collect();
    assert_eq!(
        errors,
        vec![
            ("malformed".to_owned(), Some("<html>".to_owned())),
            ("not_found".to_owned(), Some("<html>".to_owned())),
        ]
    );

    // A good poll clears the slate.
    claim(&*store, main, "a", at(80)).await?;
    assert!(store.record_poll(&poll(&s, "a", at(80))).await?);
    let healed = store.shipment(s.id).await?.context("shipment")?;
    assert_eq!((healed.poll_failures, healed.last_error), (0, None));
    Ok(())
}

async fn next_poll_at_is_when_something_becomes_claimable(store: Harness) -> TestResult {
    assert_eq!(store.next_poll_at().await?, None);
    let main = account(&*store, "main").await?;
    let s = shipment(&*store, main, "NUMBER0001").await?;
    assert_eq!(store.next_poll_at().await?, Some(t0()));

    claim(&*store, main, "a", at(1)).await?;
    assert_eq!(
        store.next_poll_at().await?,
        Some(at(6)),
        "the lease runs out"
    );

    // The journey ends: no more polls, not active any more.
    let mut last = poll(&s, "a", at(2));
    last.journey.status = Status::Delivered;
    last.journey.active = false;
    last.next_poll_at = None;
    assert!(store.record_poll(&last).await?);
    assert_eq!(store.next_poll_at().await?, None);
    let done = store.shipment(s.id).await?.context("shipment")?;
    assert!(!done.journey.active);
    assert_eq!(store.backlog().await?.active_shipments, 0);
    Ok(())
}

async fn release_and_defer_push_shipments_later(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    let a = shipment(&*store, main, "NUMBER0001").await?;
    let b = shipment(&*store, main, "NUMBER0002").await?;
    let c = shipment(&*store, main, "NUMBER0003").await?;
    assert_eq!(store.backlog().await?.active_shipments, 3);

    claim(&*store, main, "w", at(1)).await?;
    store
        .release_shipments(&[a.id, b.id], "someone-else", at(2), SignedDuration::ZERO)
        .await?;
    assert!(
        claim(&*store, main, "x", at(2)).await?.is_empty(),
        "not the caller's to release"
    );
    store
        .release_shipments(&[a.id, b.id], "w", at(30), SignedDuration::ZERO)
        .await?;
    assert!(
        claim(&*store, main, "x", at(5)).await?.is_empty(),
        "a and b wait for minute 30, c is still leased"
    );
    assert_eq!(
        store.next_poll_at().await?,
        Some(at(6)),
        "c's lease runs out first"
    );

    // c's lease has expired by minute 40; the quota is spent, so everything due moves on.
    assert_eq!(
        store
            .defer_due_shipments(main, at(40), at(1440), SignedDuration::ZERO)
            .await?,
        3
    );
    assert!(claim(&*store, main, "x", at(1439)).await?.is_empty());
    assert_eq!(store.next_poll_at().await?, Some(at(1440)));
    let next = claim(&*store, main, "x", at(1440)).await?;
    assert_eq!(ids(&next).len(), 3);
    assert!(ids(&next).contains(&c.id));
    Ok(())
}

async fn shipments_held_back_together_come_due_spread_out_the_urgent_ones_first(
    store: Harness,
) -> TestResult {
    let main = account(&*store, "main").await?;
    let mut urgent = Vec::new();
    for n in 0..40 {
        let s = shipment(&*store, main, &format!("NUMBER{n:04}")).await?;
        // Polled once; due again at minute 5, half of them on the van (priority 0).
        claim(&*store, main, "w", at(1)).await?;
        let mut write = poll(&s, "w", at(1));
        write.next_poll_at = Some(at(5));
        write.poll_priority = if n % 2 == 0 { 0 } else { 3 };
        assert!(store.record_poll(&write).await?);
        if n % 2 == 0 {
            urgent.push(s.id.to_string());
        }
    }
    let spread = SignedDuration::from_mins(40);
    assert_eq!(
        store
            .defer_due_shipments(main, at(10), at(1440), spread)
            .await?,
        40
    );
    let due: Vec<(String, i64)> = store
        .rows("SELECT id, next_poll_at FROM shipments", &[])
        .await?
        .into_iter()
        .map(|r| (r[0].text().unwrap_or_default(), r[1].int()))
        .collect();
    let distinct: HashSet<i64> = due.iter().map(|(_, at)| *at).collect();
    assert!(distinct.len() > 30, "spread out: {distinct:?}");
    for (id, next) in &due {
        let minutes = (next - at(1440).as_millisecond()) as f64 / 60_000.0;
        let within = if urgent.contains(id) { 10.0 } else { 40.0 };
        assert!(
            (0.0..=within).contains(&minutes),
            "{id}: {minutes} minutes after the reset"
        );
    }
    Ok(())
}

async fn concurrent_polls_do_not_fail_with_busy(store: Harness) -> TestResult {
    let main = account(&*store, "main").await?;
    for n in 0..24 {
        shipment(&*store, main, &format!("NUMBER{n:04}")).await?;
    }
    let mut claimed = Vec::new();
    for _ in 0..3 {
        claimed.extend(claim(&*store, main, "w", at(1)).await?);
    }
    assert_eq!(claimed.len(), 24);

    let mut tasks = tokio::task::JoinSet::new();
    for s in claimed {
        let store = store.store.clone();
        tasks.spawn(async move {
            let mut write = poll(&s, "w", at(2));
            write.new_events = vec![scan(1, "PU", Status::InTransit)];
            write.notifications = vec![message(Trigger::Shipped, "shipped")?];
            anyhow::Ok(store.record_poll(&write).await?)
        });
    }
    while let Some(result) = tasks.join_next().await {
        assert!(result??, "every poll keeps its lease");
    }
    assert_eq!(store.backlog().await?.unsent_notifications, 24);
    Ok(())
}

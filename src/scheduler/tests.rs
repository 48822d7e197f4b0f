//! The scheduler against a real SQLite file and the sandbox carrier.

use super::*;
use crate::carriers::sandbox::{Sandbox, Scenario};
use crate::domain::{MerchantId, NotificationState, Trigger};
use crate::intake::{ShipmentInput, register};
use crate::store::SqliteStore;

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    carriers: CarrierRegistry,
    clock: Clock,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("waymark.db").display());
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::connect(&url, crate::vault::Vault::generate())
            .await
            .unwrap(),
    );
    store.migrate().await.unwrap();
    let clock = Clock::system();
    let mut carriers = CarrierRegistry::new();
    carriers.register(Arc::new(Sandbox::bundled(clock.clone())));
    Setup {
        _dir: dir,
        store,
        carriers,
        clock,
    }
}

async fn account(setup: &Setup, name: &str, daily_quota: Option<u32>) -> CarrierAccount {
    let account = CarrierAccount {
        id: Uuid::now_v7(),
        merchant_id: crate::domain::MerchantId::DEFAULT,
        carrier: crate::domain::CarrierCode::parse("sandbox").unwrap(),
        name: name.into(),
        credentials: Default::default(),
        base_url: None,
        daily_quota,
        requests_per_second: None,
    };
    setup.store.create_carrier_account(&account).await.unwrap();
    account
}

async fn ship(setup: &Setup, account: &str, number: String, registered_at: Timestamp) -> Shipment {
    let input = ShipmentInput {
        carrier: "sandbox".into(),
        account: Some(account.into()),
        tracking_number: number,
        customer_email: "anna@example.com".into(),
        locale: Some("de".into()),
        destination_country: "DE".into(),
        ..ShipmentInput::default()
    };
    register(
        setup.store.as_ref(),
        &setup.carriers,
        MerchantId::DEFAULT,
        &input,
        registered_at,
    )
    .await
    .unwrap()
}

fn scheduler(setup: &Setup) -> Scheduler {
    Scheduler::new(
        setup.store.clone(),
        setup.carriers.clone(),
        setup.clock.clone(),
        Arc::new(HolidayCalendar::bundled()),
        SchedulerConfig::default(),
    )
}

#[tokio::test]
async fn a_poll_writes_the_journey_the_events_and_the_message_together() {
    let setup = setup().await;
    account(&setup, "default", None).await;
    let ten_days_ago = Timestamp::now() - SignedDuration::from_hours(240);
    let shipment = ship(
        &setup,
        "default",
        Scenario::OnTime.example_number(1).to_string(),
        ten_days_ago,
    )
    .await;

    let round = scheduler(&setup).run_once().await.unwrap();
    assert_eq!(round.polled, 1);
    assert_eq!(round.notifications, 1);

    let stored = setup.store.shipment(shipment.id).await.unwrap().unwrap();
    assert_eq!(stored.journey.status, crate::domain::Status::Delivered);
    assert!(
        !stored.journey.active,
        "a delivered parcel is not polled again"
    );
    let events = setup.store.timeline(shipment.id).await.unwrap();
    assert!(
        events.len() >= 8,
        "the whole journey is stored: {}",
        events.len()
    );
    let messages = setup.store.notifications(shipment.id).await.unwrap();
    // A first poll of a finished journey tells only the end of it.
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].trigger, Trigger::Delivered);
    assert_eq!(messages[0].state, NotificationState::Pending);

    // Nothing is due any more.
    assert!(!scheduler(&setup).run_once().await.unwrap().did_work());
}

#[tokio::test]
async fn a_broken_answer_is_recorded_and_the_rest_of_the_batch_goes_on() {
    let setup = setup().await;
    account(&setup, "default", None).await;
    let now = Timestamp::now();
    let broken = ship(
        &setup,
        "default",
        Scenario::Broken.example_number(1).to_string(),
        now,
    )
    .await;
    let fine = ship(
        &setup,
        "default",
        Scenario::OnTime.example_number(2).to_string(),
        now - SignedDuration::from_hours(240),
    )
    .await;

    let round = scheduler(&setup).run_once().await.unwrap();
    assert_eq!((round.polled, round.failed), (1, 1));

    let broken = setup.store.shipment(broken.id).await.unwrap().unwrap();
    assert_eq!(broken.poll_failures, 1);
    let error = broken
        .last_error
        .expect("the error is kept on the shipment");
    assert!(error.contains("unreadable"), "{error}");
    assert!(broken.journey.active, "it will be polled again");
    let fine = setup.store.shipment(fine.id).await.unwrap().unwrap();
    assert!(!fine.journey.active);
}

#[tokio::test]
async fn a_spent_daily_quota_defers_the_rest_until_the_reset() {
    let setup = setup().await;
    // One call a day; the sandbox answers 25 numbers a call.
    account(&setup, "limited", Some(1)).await;
    let registered = Timestamp::now() - SignedDuration::from_hours(30);
    let mut ids = Vec::new();
    for n in 0..30 {
        let s = ship(
            &setup,
            "limited",
            Scenario::OnTime.example_number(n).to_string(),
            registered,
        )
        .await;
        ids.push(s.id);
    }

    let round = scheduler(&setup).run_once().await.unwrap();
    assert_eq!(round.polled, 25, "one call's worth is polled");
    assert_eq!(round.deferred, 5, "the rest waits for the quota to reset");

    let reset = quota_day(
        &setup
            .carriers
            .get(&crate::domain::CarrierCode::parse("sandbox").unwrap())
            .unwrap()
            .profile()
            .limits,
        Timestamp::now(),
    )
    .resets_at;
    let mut waiting = 0;
    for id in ids {
        let s = setup.store.shipment(id).await.unwrap().unwrap();
        if s.journey.status == crate::domain::Status::Pending {
            waiting += 1;
        }
    }
    assert_eq!(waiting, 5);
    let next = setup.store.next_poll_at().await.unwrap().unwrap();
    assert!(
        next >= Timestamp::now(),
        "nothing is due before the reset or the next cadence poll"
    );
    // Held-back shipments come due spread over half an hour after the reset.
    assert!(next <= reset + QUOTA_RESET_SPREAD);
    // A second round the same day asks nothing of the carrier.
    let again = scheduler(&setup).run_once().await.unwrap();
    assert_eq!(again.polled, 0);
}

/// The sandbox, answering that the number it is asked about also stands for a second parcel
/// (as GLS does for a reference shared by an order's parcels).
struct SharedReference {
    inner: Sandbox,
    second: TrackingNumber,
}

#[async_trait::async_trait]
impl Carrier for SharedReference {
    fn profile(&self) -> &crate::carriers::CarrierProfile {
        self.inner.profile()
    }

    async fn track(
        &self,
        account: &CarrierAccount,
        batch: &[TrackRequest],
    ) -> Result<Vec<crate::carriers::ParcelResult>, CarrierError> {
        let mut results = self.inner.track(account, batch).await?;
        for result in &mut results {
            if let Ok(report) = &mut result.outcome {
                if result.tracking_number != self.second {
                    report.other_parcels.push(self.second.clone());
                }
            }
        }
        Ok(results)
    }
}

#[tokio::test]
async fn a_number_that_stands_for_two_parcels_is_followed_as_two_shipments() {
    let mut setup = setup().await;
    let second = Scenario::OnTime.example_number(9);
    setup.carriers.register(Arc::new(SharedReference {
        inner: Sandbox::bundled(setup.clock.clone()),
        second: second.clone(),
    }));
    account(&setup, "default", None).await;
    let first = ship(
        &setup,
        "default",
        Scenario::OnTime.example_number(8).to_string(),
        Timestamp::now() - SignedDuration::from_hours(240),
    )
    .await;

    let round = scheduler(&setup).run_once().await.unwrap();
    assert_eq!(round.polled, 1);

    let siblings = setup.store.shipments_by_number(&second).await.unwrap();
    let [sibling] = siblings.as_slice() else {
        panic!("the second parcel is registered once: {siblings:?}")
    };
    assert_ne!(sibling.id, first.id);
    assert_eq!(sibling.customer, first.customer);
    assert_eq!(sibling.carrier_account_id, first.carrier_account_id);
    assert_eq!(sibling.order_reference, first.order_reference);
    // Its own journey, from its own first poll: nothing merged into the first parcel's.
    assert!(setup.store.timeline(sibling.id).await.unwrap().is_empty());

    // Asked again, the first parcel does not register the second twice.
    let again = setup.store.shipment(first.id).await.unwrap().unwrap();
    scheduler(&setup)
        .follow_other_parcels(&again, std::slice::from_ref(&second), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(
        setup
            .store
            .shipments_by_number(&second)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// The sandbox, answering only after `delay` (real time), counting its calls.
struct SlowCarrier {
    inner: Sandbox,
    delay: Duration,
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Carrier for SlowCarrier {
    fn profile(&self) -> &crate::carriers::CarrierProfile {
        self.inner.profile()
    }

    async fn track(
        &self,
        account: &CarrierAccount,
        batch: &[TrackRequest],
    ) -> Result<Vec<crate::carriers::ParcelResult>, CarrierError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.inner.track(account, batch).await
    }
}

/// A carrier slower than the lease: the leases are renewed while it answers, so a second
/// worker finds nothing to claim and the carrier is asked once.
#[tokio::test]
async fn a_carrier_slower_than_the_lease_is_asked_once() {
    let mut setup = setup().await;
    let slow = Arc::new(SlowCarrier {
        inner: Sandbox::bundled(setup.clock.clone()),
        delay: Duration::from_millis(2500),
        calls: Default::default(),
    });
    setup.carriers.register(slow.clone());
    account(&setup, "default", None).await;
    let shipment = ship(
        &setup,
        "default",
        Scenario::OnTime.example_number(1).to_string(),
        Timestamp::now() - SignedDuration::from_hours(240),
    )
    .await;
    let config = SchedulerConfig {
        lease_seconds: 1,
        carrier_timeout_seconds: 30,
        ..SchedulerConfig::default()
    };
    let first = Scheduler::new(
        setup.store.clone(),
        setup.carriers.clone(),
        setup.clock.clone(),
        Arc::new(HolidayCalendar::bundled()),
        config.clone(),
    );
    let polling = tokio::spawn(async move { first.run_once().await });

    // Well past the first lease's expiry, while the carrier still thinks.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let second = Scheduler::new(
        setup.store.clone(),
        setup.carriers.clone(),
        setup.clock.clone(),
        Arc::new(HolidayCalendar::bundled()),
        config,
    );
    let round = second.run_once().await.unwrap();
    assert!(!round.did_work(), "nothing to claim: {round:?}");

    let round = polling.await.unwrap().unwrap();
    assert_eq!((round.polled, round.lease_lost), (1, 0));
    assert_eq!(slow.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let stored = setup.store.shipment(shipment.id).await.unwrap().unwrap();
    assert_eq!(stored.journey.status, crate::domain::Status::Delivered);
}

/// A sandbox whose data file caps fetches of one shipment at three a day and retries fast,
/// failing every call when `failing`; it counts the fetches of each number per UTC day.
struct Capped {
    inner: Sandbox,
    failing: bool,
    fetches: std::sync::Mutex<HashMap<(String, String), u32>>,
    clock: Clock,
}

impl Capped {
    fn new(clock: &Clock, failing: bool) -> Self {
        let mut profile = crate::carriers::CarrierProfile::from_toml(
            "carriers/sandbox.toml",
            crate::carriers::sandbox::BUNDLED_PROFILE,
        )
        .unwrap();
        profile.limits.max_fetches_per_shipment_per_day = Some(3);
        profile.cadence.not_found = 10;
        profile.cadence.max_backoff = 10;
        profile.cadence.out_for_delivery = 10;
        Capped {
            inner: Sandbox::new(profile, clock.clone()),
            failing,
            fetches: Default::default(),
            clock: clock.clone(),
        }
    }

    fn most_in_a_day(&self) -> u32 {
        let fetches = self.fetches.lock().unwrap();
        fetches.values().copied().max().unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl Carrier for Capped {
    fn profile(&self) -> &crate::carriers::CarrierProfile {
        self.inner.profile()
    }

    async fn track(
        &self,
        account: &CarrierAccount,
        batch: &[TrackRequest],
    ) -> Result<Vec<crate::carriers::ParcelResult>, CarrierError> {
        let day = self.clock.now().to_string()[..10].to_owned();
        {
            let mut fetches = self.fetches.lock().unwrap();
            for request in batch {
                *fetches
                    .entry((request.tracking_number.to_string(), day.clone()))
                    .or_default() += 1;
            }
        }
        if self.failing {
            return Err(CarrierError::Transient("503 Service Unavailable".into()));
        }
        self.inner.track(account, batch).await
    }
}

/// Turn the scheduler on the manual clock from one due time to the next for `hours`.
async fn play(setup: &Setup, hours: i64) {
    let scheduler = scheduler(setup);
    let end = setup.clock.now() + SignedDuration::from_hours(hours);
    while setup.clock.now() < end {
        scheduler.run_once().await.unwrap();
        let next = setup.store.next_poll_at().await.unwrap().unwrap_or(end);
        setup.clock.advance_to(next.min(end).max(setup.clock.now()));
    }
}

async fn manual_setup(failing: bool) -> (Setup, Arc<Capped>) {
    let mut setup = setup().await;
    // Noon UTC, so the first day has room for many polls either side.
    setup.clock = Clock::manual("2026-03-04T12:00:00Z".parse().unwrap());
    let capped = Arc::new(Capped::new(&setup.clock, failing));
    setup.carriers = CarrierRegistry::new();
    setup.carriers.register(capped.clone());
    (setup, capped)
}

/// The per-shipment daily cap holds on every path: a parcel the carrier does not know yet, an
/// answer that cannot be read, and a parcel on the van polled every ten minutes.
#[tokio::test]
async fn the_daily_cap_per_shipment_holds_for_unknown_unreadable_and_busy_parcels() {
    let (setup, capped) = manual_setup(false).await;
    account(&setup, "default", None).await;
    let now = setup.clock.now();
    for (scenario, registered) in [
        (Scenario::NotFound, now),
        (Scenario::Broken, now),
        // Registered three days ago, so it is on the van this afternoon.
        (Scenario::OnTime, now - SignedDuration::from_hours(60)),
    ] {
        ship(
            &setup,
            "default",
            scenario.example_number(1).to_string(),
            registered,
        )
        .await;
    }
    play(&setup, 36).await;
    assert_eq!(
        capped.most_in_a_day(),
        3,
        "{:?}",
        capped.fetches.lock().unwrap()
    );
}

/// A carrier whose every call fails is retried with back-off, still within the daily cap.
#[tokio::test]
async fn the_daily_cap_per_shipment_holds_while_calls_fail() {
    let (setup, capped) = manual_setup(true).await;
    account(&setup, "default", None).await;
    ship(
        &setup,
        "default",
        Scenario::OnTime.example_number(1).to_string(),
        setup.clock.now(),
    )
    .await;
    play(&setup, 36).await;
    assert_eq!(
        capped.most_in_a_day(),
        3,
        "{:?}",
        capped.fetches.lock().unwrap()
    );
}

/// The account's daily quota counts the calls for unknown numbers too.
#[tokio::test]
async fn the_daily_quota_counts_calls_for_unknown_numbers() {
    let (setup, capped) = manual_setup(false).await;
    // Two calls a day; the sandbox answers a whole batch in one call.
    account(&setup, "limited", Some(2)).await;
    ship(
        &setup,
        "limited",
        Scenario::NotFound.example_number(1).to_string(),
        setup.clock.now(),
    )
    .await;
    play(&setup, 11).await;
    let calls: u32 = capped.fetches.lock().unwrap().values().sum();
    assert_eq!(calls, 2, "{:?}", capped.fetches.lock().unwrap());
}

/// A carrier that has picked the parcel up and announces whatever estimate the test sets.
struct Announcing {
    profile: crate::carriers::CarrierProfile,
    picked_up: Timestamp,
    estimate: std::sync::Mutex<Option<crate::domain::DeliveryWindow>>,
}

#[async_trait::async_trait]
impl Carrier for Announcing {
    fn profile(&self) -> &crate::carriers::CarrierProfile {
        &self.profile
    }

    async fn track(
        &self,
        _account: &CarrierAccount,
        batch: &[TrackRequest],
    ) -> Result<Vec<crate::carriers::ParcelResult>, CarrierError> {
        let estimate = *self.estimate.lock().unwrap();
        Ok(batch
            .iter()
            .map(|request| crate::carriers::ParcelResult {
                tracking_number: request.tracking_number.clone(),
                outcome: Ok(TrackReport {
                    events: vec![crate::domain::TrackingEvent {
                        time: crate::domain::EventTime::utc(self.picked_up),
                        status: crate::domain::Status::InTransit,
                        reason: None,
                        raw_code: "PU".into(),
                        raw_text: "Picked up by courier".into(),
                        location: Some("Warsaw, PL".into()),
                    }],
                    estimate,
                    ..TrackReport::default()
                }),
            })
            .collect())
    }
}

/// Mark every message the outbox would send now as sent, as a dispatcher would.
async fn send_all(setup: &Setup) {
    let now = setup.clock.now();
    let until = now + SignedDuration::from_mins(5);
    for item in setup
        .store
        .claim_notifications("test-dispatcher", now, until, 100)
        .await
        .unwrap()
    {
        let id = item.notification.id;
        let store = &setup.store;
        assert!(
            store
                .start_notification_attempt(id, "test-dispatcher", now, until)
                .await
                .unwrap()
                .is_some()
        );
        let sent = crate::store::Completion::Sent {
            message_id: format!("<{id}@example.com>"),
            provider_response: "250 queued".into(),
        };
        assert!(
            store
                .complete_notification(id, "test-dispatcher", now, &sent)
                .await
                .unwrap()
        );
    }
}

/// A sandbox account whose carrier announces the estimate the test sets, polled hourly so every
/// slip is seen as it happens; the estimate starts on 10 March.
async fn slipping(start: Timestamp) -> (Setup, Arc<Announcing>) {
    let mut setup = setup().await;
    setup.clock = Clock::manual(start);
    let mut profile = crate::carriers::CarrierProfile::from_toml(
        "carriers/sandbox.toml",
        crate::carriers::sandbox::BUNDLED_PROFILE,
    )
    .unwrap();
    profile.cadence.in_transit = 60;
    profile.cadence.jitter_percent = 0;
    let carrier = Arc::new(Announcing {
        profile,
        picked_up: start - SignedDuration::from_hours(1),
        estimate: std::sync::Mutex::new(Some(crate::domain::DeliveryWindow::on(
            jiff::civil::date(2026, 3, 10),
        ))),
    });
    setup.carriers = CarrierRegistry::new();
    setup.carriers.register(carrier.clone());
    account(&setup, "default", None).await;
    (setup, carrier)
}

/// A merchant that wants every slip told sets its own cap to none: each slip is an email.
#[tokio::test]
async fn a_merchant_without_a_delay_cap_tells_every_slip() {
    let start: Timestamp = "2026-03-03T09:00:00Z".parse().unwrap();
    let (setup, carrier) = slipping(start).await;
    let mut settings = crate::domain::MerchantSettings::default();
    settings.notifications.delayed_message_every_hours = Some(0);
    assert!(
        setup
            .store
            .save_merchant_settings(MerchantId::DEFAULT, &settings)
            .await
            .unwrap()
    );
    let shipment = ship(&setup, "default", "SBX-ANY-000002".into(), start).await;
    let scheduler = scheduler(&setup);
    setup.clock.advance_to(start);
    scheduler.run_once().await.unwrap();
    for (hours, to) in [(1, 11), (3, 12), (6, 13)] {
        *carrier.estimate.lock().unwrap() = Some(crate::domain::DeliveryWindow::on(
            jiff::civil::date(2026, 3, to),
        ));
        setup
            .clock
            .advance_to(start + SignedDuration::from_hours(hours));
        scheduler.run_once().await.unwrap();
        send_all(&setup).await;
    }
    let delayed = setup
        .store
        .notifications(shipment.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.trigger == Trigger::Delayed)
        .count();
    assert_eq!(delayed, 3);
}

/// At most one "delayed" email a day: slips within the day after one was sent are told in the
/// next one, with the latest estimate, not one email each.
#[tokio::test]
async fn slips_within_a_day_of_a_delay_email_are_told_in_the_next_one() {
    let start: Timestamp = "2026-03-03T09:00:00Z".parse().unwrap();
    let (setup, carrier) = slipping(start).await;
    let day = |n: i8| crate::domain::DeliveryWindow::on(jiff::civil::date(2026, 3, n));
    let shipment = ship(&setup, "default", "SBX-ANY-000001".into(), start).await;
    let scheduler = scheduler(&setup);
    let delayed = async || {
        setup
            .store
            .notifications(shipment.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.trigger == Trigger::Delayed)
            .collect::<Vec<_>>()
    };
    let poll_at = async |at: Timestamp| {
        setup.clock.advance_to(at);
        scheduler.run_once().await.unwrap();
        send_all(&setup).await;
    };

    poll_at(start).await;
    // The estimate slips: the customer hears of it at once.
    *carrier.estimate.lock().unwrap() = Some(day(11));
    poll_at(start + SignedDuration::from_hours(1)).await;
    assert_eq!(delayed().await.len(), 1);
    // Two more slips the same day: no email each.
    for (hours, to) in [(3, 12), (6, 13)] {
        *carrier.estimate.lock().unwrap() = Some(day(to));
        poll_at(start + SignedDuration::from_hours(hours)).await;
        assert_eq!(delayed().await.len(), 1, "after the slip to the {to}th");
    }
    // The polls go on; a day after the first email, the next one tells the latest date.
    let first_sent = delayed().await[0].sent_at.unwrap();
    let mut guard = 0;
    while delayed().await.len() < 2 {
        let next = setup.store.next_poll_at().await.unwrap().unwrap();
        assert!(
            next <= first_sent + SignedDuration::from_hours(24),
            "a poll comes when the day is over: {next}"
        );
        poll_at(next.max(setup.clock.now())).await;
        guard += 1;
        assert!(guard < 48, "no second delay email");
    }
    let messages = delayed().await;
    assert_eq!(messages.len(), 2);
    assert!(messages[1].created_at >= first_sent + SignedDuration::from_hours(24));
    assert_eq!(messages[1].facts.estimate, Some(day(13)));
    assert!(
        messages[1].reason.contains("2026-03-11"),
        "{}",
        messages[1].reason
    );
}

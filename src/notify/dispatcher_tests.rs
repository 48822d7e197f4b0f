//! The dispatcher's leases and attempt counting, against a real SQLite file and an email
//! sender that answers when the test says so.

use super::*;
use crate::carriers::sandbox::{Sandbox, Scenario};
use crate::carriers::{CarrierAccount, CarrierRegistry};
use crate::domain::{HolidayCalendar, MerchantId, NotificationState};
use crate::intake::{ShipmentInput, register};
use crate::scheduler::Scheduler;
use crate::store::SqliteStore;
use jiff::SignedDuration;
use std::sync::atomic::{AtomicUsize, Ordering};

/// An email sender that holds every message until the test opens its gate, counting the sends
/// that started, the ones that finished and the ones abandoned half-way (dropped).
#[derive(Default)]
struct GatedSender {
    gate: tokio::sync::Notify,
    open: std::sync::atomic::AtomicBool,
    started: AtomicUsize,
    finished: AtomicUsize,
    abandoned: Arc<AtomicUsize>,
}

/// Counts a send dropped before it finished.
struct Abandoned(Option<Arc<AtomicUsize>>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(count) = self.0.take() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[async_trait::async_trait]
impl EmailSender for GatedSender {
    async fn send(&self, _message: lettre::Message) -> Result<String, SendError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut guard = Abandoned(Some(self.abandoned.clone()));
        while !self.open.load(Ordering::SeqCst) {
            let opened = self.gate.notified();
            if self.open.load(Ordering::SeqCst) {
                break;
            }
            opened.await;
        }
        guard.0 = None;
        self.finished.fetch_add(1, Ordering::SeqCst);
        Ok("250 queued".into())
    }
}

impl GatedSender {
    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.gate.notify_waiters();
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    carriers: CarrierRegistry,
    clock: Clock,
}

/// A database with `shipments` delivered sandbox parcels, each with its "delivered" email
/// queued.
async fn setup(shipments: u32) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("waymark.db").display());
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::connect(&url, crate::vault::Vault::generate())
            .await
            .unwrap(),
    );
    store.migrate().await.unwrap();
    let clock = Clock::manual(Timestamp::now());
    let mut carriers = CarrierRegistry::new();
    carriers.register(Arc::new(Sandbox::bundled(clock.clone())));
    store
        .create_carrier_account(&CarrierAccount {
            id: Uuid::now_v7(),
            merchant_id: crate::domain::MerchantId::DEFAULT,
            carrier: crate::domain::CarrierCode::parse("sandbox").unwrap(),
            name: "default".into(),
            credentials: Default::default(),
            base_url: None,
            daily_quota: None,
            requests_per_second: None,
        })
        .await
        .unwrap();
    let registered = clock.now() - SignedDuration::from_hours(240);
    for n in 0..shipments {
        let input = ShipmentInput {
            carrier: "sandbox".into(),
            account: Some("default".into()),
            tracking_number: Scenario::OnTime.example_number(n).to_string(),
            customer_email: format!("customer{n}@example.com"),
            locale: Some("en".into()),
            destination_country: "DE".into(),
            ..ShipmentInput::default()
        };
        register(
            store.as_ref(),
            &carriers,
            MerchantId::DEFAULT,
            &input,
            registered,
        )
        .await
        .unwrap();
    }
    let scheduler = Scheduler::new(
        store.clone(),
        carriers.clone(),
        clock.clone(),
        Arc::new(HolidayCalendar::bundled()),
        crate::config::SchedulerConfig::default(),
    );
    let round = scheduler.run_once().await.unwrap();
    assert_eq!(round.notifications, shipments as usize, "{round:?}");
    Setup {
        _dir: dir,
        store,
        carriers,
        clock,
    }
}

fn dispatcher(setup: &Setup, email: Arc<GatedSender>, config: DispatcherConfig) -> Dispatcher {
    Dispatcher::new(
        setup.store.clone(),
        email,
        Templates::embedded(),
        setup.carriers.clone(),
        setup.clock.clone(),
        config,
        None,
        Sender {
            merchant_name: "Test Shop".into(),
            from: "Test Shop <shop@example.com>".parse().unwrap(),
            reply_to: None,
            public_url: "http://localhost:8080".into(),
            message_id_domain: "example.com".into(),
            links: crate::links::Links::new([7; 32]),
        },
    )
}

/// Wait (in real time) until `done` holds, or fail after `seconds`.
async fn until(seconds: u64, what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn the_message(setup: &Setup) -> crate::domain::Notification {
    let shipment = &setup
        .store
        .shipments_by_number(&Scenario::OnTime.example_number(0))
        .await
        .unwrap()[0];
    setup.store.notifications(shipment.id).await.unwrap()[0].clone()
}

/// A worker whose lease ran out while its provider dawdled (the process stalled) finds out at
/// its next renewal: the sibling that re-claimed the message sends it, the first abandons its
/// send and never finishes it. With one lease owner shared by all workers, the first worker's
/// renewal succeeded and both sent the email.
#[tokio::test]
async fn a_message_a_sibling_took_over_is_abandoned_not_sent_twice() {
    let setup = setup(1).await;
    let email = Arc::new(GatedSender::default());
    let config = DispatcherConfig {
        lease_seconds: 3,
        concurrency: 2,
        max_idle_seconds: 1,
        ..DispatcherConfig::default()
    };
    let dispatcher = dispatcher(&setup, email.clone(), config);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let (dispatcher, shutdown) = (dispatcher.clone(), shutdown.clone());
        async move { dispatcher.run(shutdown).await }
    });

    until(10, "the first send starts", || {
        email.started.load(Ordering::SeqCst) == 1
    })
    .await;
    // The lease runs out while the provider holds the message.
    setup
        .clock
        .advance_to(setup.clock.now() + SignedDuration::from_secs(10));
    until(10, "a sibling re-claims the message and sends it", || {
        email.started.load(Ordering::SeqCst) == 2
    })
    .await;
    until(10, "the first worker abandons its send", || {
        email.abandoned.load(Ordering::SeqCst) == 1
    })
    .await;
    email.open();
    until(10, "the message is recorded as sent", || {
        email.finished.load(Ordering::SeqCst) >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    running.await.unwrap();

    assert_eq!(email.finished.load(Ordering::SeqCst), 1, "sent once");
    let message = the_message(&setup).await;
    assert_eq!(message.state, NotificationState::Sent);
    assert_eq!(message.attempts, 2, "both attempts count");
}

/// An attempt counts when it starts: a message whose sending kills the process every time
/// reaches `max_attempts` and is failed, instead of being sent again forever.
#[tokio::test]
async fn a_message_that_never_finishes_sending_is_failed_after_max_attempts() {
    let setup = setup(1).await;
    let email = Arc::new(GatedSender::default());
    let config = DispatcherConfig {
        lease_seconds: 60,
        max_attempts: 3,
        ..DispatcherConfig::default()
    };
    for crash in 1..=3 {
        // A fresh process each time; it dies while the provider has the message.
        let dispatcher = dispatcher(&setup, email.clone(), config.clone());
        let died = tokio::time::timeout(Duration::from_millis(300), dispatcher.run_once()).await;
        assert!(died.is_err(), "crash {crash}: the send never returned");
        assert_eq!(the_message(&setup).await.attempts, crash);
        setup
            .clock
            .advance_to(setup.clock.now() + SignedDuration::from_secs(120));
    }
    let round = dispatcher(&setup, email.clone(), config)
        .run_once()
        .await
        .unwrap();
    assert_eq!((round.failed, round.sent), (1, 0));
    assert_eq!(
        email.started.load(Ordering::SeqCst),
        3,
        "not sent a fourth time"
    );
    let message = the_message(&setup).await;
    assert_eq!(message.state, NotificationState::Failed);
    let error = message.last_error.unwrap_or_default();
    assert!(error.contains("3 attempts"), "{error}");
}

/// DHL's answer carries a `rerouteUrl`. Only a link DHL's data file vouches for (https, on a
/// DHL host) goes into the email; any other, however much it looks like DHL's, is replaced by
/// DHL's own deep links.
#[tokio::test]
async fn a_carrier_link_goes_into_an_email_only_on_a_host_its_data_file_allows() {
    let setup = setup(1).await;
    let mut notification = the_message(&setup).await;
    let dhl = crate::carriers::dhl::Dhl::bundled(Default::default());
    let profile = crate::carriers::Carrier::profile(&dhl);
    let number = crate::domain::TrackingNumber::parse("7777777770").unwrap();
    let deep_links: Vec<DeliveryChangeLink> = profile
        .delivery_change_links(&number)
        .into_iter()
        .map(|(kind, url)| DeliveryChangeLink { kind, url })
        .collect();
    assert!(!deep_links.is_empty());
    let genuine =
        "https://www.dhl.de/de/privatkunden.html?piececode=7777777770&verfuegen_selected_tab=FIRST";
    for (link, offered) in [
        (genuine, true),
        (
            "https://nolp.dhl.de/nextt-online-public/set_identcodes.do?idc=7777777770",
            true,
        ),
        (
            "http://www.dhl.de/de/privatkunden.html?piececode=7777777770",
            false,
        ),
        (
            "https://dhl.de.evil.example/de/privatkunden.html?piececode=7777777770",
            false,
        ),
        ("https://evil-dhl.de/de/privatkunden.html", false),
        (
            "https://www.dhl.de@evil.example/de/privatkunden.html",
            false,
        ),
        ("https://www.dhl.de:8443/de/privatkunden.html", false),
        ("https://203.0.113.7/de/privatkunden.html", false),
        ("javascript:alert(1)", false),
    ] {
        notification.facts.change_delivery_url = Some(link.into());
        let changes = delivery_changes(&notification, Some(profile), &number);
        if offered {
            assert_eq!(
                changes,
                vec![DeliveryChangeLink {
                    kind: "carrier".into(),
                    url: link.into(),
                }],
                "{link}"
            );
        } else {
            assert_eq!(
                changes, deep_links,
                "{link} was not replaced by DHL's deep links"
            );
        }
    }
    // A carrier without a data file cannot vouch for any link.
    notification.facts.change_delivery_url = Some(genuine.into());
    assert!(delivery_changes(&notification, None, &number).is_empty());
}

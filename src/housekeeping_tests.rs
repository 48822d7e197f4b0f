//! The periodic jobs against a real SQLite file, on a manual clock.

use super::*;
use crate::carriers::sandbox::Sandbox;
use crate::carriers::{CarrierAccount, CarrierRegistry};
use crate::domain::{MerchantId, Status};
use crate::intake::{ShipmentInput, register};
use crate::store::SqliteStore;
use std::sync::Arc;

struct Setup {
    _dir: tempfile::TempDir,
    sqlite: SqliteStore,
    store: Arc<dyn Store>,
    carriers: CarrierRegistry,
    clock: Clock,
}

/// 2026-03-02 (a Monday) at 08:00 UTC.
fn t0() -> Timestamp {
    "2026-03-02T08:00:00Z".parse().unwrap()
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("waymark.db").display());
    let sqlite = SqliteStore::connect(&url, crate::vault::Vault::generate())
        .await
        .unwrap();
    sqlite.migrate().await.unwrap();
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let clock = Clock::manual(t0());
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
    Setup {
        _dir: dir,
        sqlite,
        store,
        carriers,
        clock,
    }
}

async fn ship(setup: &Setup, number: &str, registered_at: Timestamp) -> Uuid {
    let input = ShipmentInput {
        carrier: "sandbox".into(),
        tracking_number: number.into(),
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
    .id
}

fn housekeeping(setup: &Setup) -> Housekeeping {
    Housekeeping::new(
        setup.store.clone(),
        setup.clock.clone(),
        HousekeepingConfig::default(),
    )
    .unwrap()
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

/// A shipment the carrier never found, and one that stopped moving a month ago, expire at the
/// job's next run: polling stops and the merchant gets a notice; a parcel that moves is left.
#[tokio::test]
async fn shipments_never_found_or_gone_quiet_expire_and_the_merchant_is_told() {
    let setup = setup().await;
    let never_found = ship(&setup, "SBX-NOTFOUND-000001", t0() - days(15)).await;
    let quiet = ship(&setup, "SBX-STALLED-000001", t0() - days(40)).await;
    let moving = ship(&setup, "SBX-ONTIME-000001", t0() - days(2)).await;
    let fresh = ship(&setup, "SBX-NOTFOUND-000002", t0() - days(3)).await;
    // The quiet one's last scan was 31 days ago; the moving one's this morning.
    for (id, last_scan) in [(quiet, t0() - days(31)), (moving, t0())] {
        sqlx::query("UPDATE shipments SET last_event_at = ?2, status = 'in_transit' WHERE id = ?1")
            .bind(id.to_string())
            .bind(last_scan.as_millisecond())
            .execute(setup.sqlite.writer())
            .await
            .unwrap();
    }

    let jobs = housekeeping(&setup);
    // The first look only learns when the jobs are due (the expiry every ten minutes).
    assert!(jobs.run_due().await.unwrap().is_empty());
    setup.clock.advance_to(t0() + SignedDuration::from_mins(10));
    let ran = jobs.run_due().await.unwrap();
    assert!(
        ran.contains(&(Job::Expire, "2 shipments expired".into())),
        "{ran:?}"
    );

    for (id, expired) in [
        (never_found, true),
        (quiet, true),
        (moving, false),
        (fresh, false),
    ] {
        let shipment = setup.store.shipment(id).await.unwrap().unwrap();
        assert_eq!(
            (
                shipment.journey.status == Status::Expired,
                !shipment.journey.active
            ),
            (expired, expired),
            "{}",
            shipment.tracking_number
        );
    }
    let notices = setup.store.merchant_notices(t0()).await.unwrap();
    let mut told: Vec<(Uuid, &str)> = notices
        .iter()
        .map(|n| (n.shipment_id, n.kind.as_str()))
        .collect();
    told.sort();
    let mut expected = vec![
        (never_found, "shipment_expired"),
        (quiet, "shipment_expired"),
    ];
    expected.sort();
    assert_eq!(told, expected);
    assert!(notices.iter().any(|n| n.detail.contains("never found")));

    // Expired shipments are not polled again, and the next run finds nothing more.
    setup.clock.advance_to(t0() + SignedDuration::from_mins(20));
    let again = jobs.run_due().await.unwrap();
    assert!(
        again.contains(&(Job::Expire, "0 shipments expired".into())),
        "{again:?}"
    );
}

/// Two replicas look at the same moment: the job runs once.
#[tokio::test]
async fn a_job_runs_on_one_worker_at_a_time() {
    let setup = setup().await;
    ship(&setup, "SBX-NOTFOUND-000001", t0() - days(15)).await;
    let (a, b) = (housekeeping(&setup), housekeeping(&setup));
    a.run_due().await.unwrap();
    b.run_due().await.unwrap();
    setup.clock.advance_to(t0() + SignedDuration::from_mins(10));
    let (ran_a, ran_b) = tokio::join!(a.run_due(), b.run_due());
    let expiries = [ran_a.unwrap(), ran_b.unwrap()]
        .iter()
        .flatten()
        .filter(|(job, _)| *job == Job::Expire)
        .count();
    assert_eq!(expiries, 1);
}

/// A replica that died holding a job: another takes it over once its lease has run out, within
/// a minute.
#[tokio::test]
async fn a_job_a_dead_worker_held_is_taken_over_within_a_minute() {
    let setup = setup().await;
    ship(&setup, "SBX-NOTFOUND-000001", t0() - days(15)).await;
    let survivor = housekeeping(&setup);
    survivor.run_due().await.unwrap();
    let due = t0() + SignedDuration::from_mins(10);
    setup.clock.advance_to(due);
    // The dead replica claimed the job at its due time, then vanished.
    assert!(
        setup
            .store
            .claim_job(
                "expire",
                "dead",
                due,
                due + SignedDuration::from_secs(60),
                due
            )
            .await
            .unwrap()
    );
    assert!(survivor.run_due().await.unwrap().is_empty(), "still held");
    setup.clock.advance_to(due + SignedDuration::from_secs(61));
    let ran = survivor.run_due().await.unwrap();
    assert!(
        ran.contains(&(Job::Expire, "1 shipments expired".into())),
        "{ran:?}"
    );
    // The dead replica's late finish is refused: the job is the survivor's now.
    assert!(
        !setup
            .store
            .finish_job("expire", "dead", due, "done", due)
            .await
            .unwrap()
    );
}

/// Poll errors are kept for a while and a few per shipment, not one row per failed poll forever.
#[tokio::test]
async fn old_and_surplus_poll_errors_are_pruned() {
    let setup = setup().await;
    let broken = ship(&setup, "SBX-BROKEN-000001", t0() - days(40)).await;
    let other = ship(&setup, "SBX-BROKEN-000002", t0() - days(40)).await;
    let insert = async |shipment: Uuid, at: Timestamp| {
        sqlx::query(
            "INSERT INTO poll_errors (id, shipment_id, kind, detail, occurred_at) \
             VALUES (?1, ?2, 'malformed', 'garbage', ?3)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(shipment.to_string())
        .bind(at.as_millisecond())
        .execute(setup.sqlite.writer())
        .await
        .unwrap();
    };
    // Sixty for the broken one 35 days ago, and thirty in the last day and a bit; five recent
    // ones for the other.
    for n in 0..60 {
        insert(broken, t0() - days(35) + SignedDuration::from_mins(14 * n)).await;
    }
    for n in 0..5 {
        insert(other, t0() - SignedDuration::from_hours(n)).await;
    }
    for n in 0..30 {
        insert(broken, t0() - SignedDuration::from_hours(n)).await;
    }
    let jobs = housekeeping(&setup);
    jobs.run_due().await.unwrap();
    // The prune runs at 03:17 every night.
    setup
        .clock
        .advance_to("2026-03-03T03:17:00Z".parse().unwrap());
    let ran = jobs.run_due().await.unwrap();
    assert!(
        ran.contains(&(
            Job::Prune,
            "70 poll errors deleted, 0 shipments' personal data erased, 0 idempotency keys forgotten"
                .into()
        )),
        "{ran:?}"
    );
    let left: Vec<(String, i64)> =
        sqlx::query_as("SELECT shipment_id, COUNT(*) FROM poll_errors GROUP BY shipment_id")
            .fetch_all(setup.sqlite.writer())
            .await
            .unwrap();
    let left: std::collections::HashMap<String, i64> = left.into_iter().collect();
    assert_eq!(left[&broken.to_string()], 20);
    assert_eq!(left[&other.to_string()], 5);
}

#[tokio::test]
async fn a_schedule_that_is_not_cron_is_refused_naming_the_setting() {
    let config = HousekeepingConfig {
        prune_schedule: "every night".into(),
        ..HousekeepingConfig::default()
    };
    let setup = setup().await;
    let error = Housekeeping::new(setup.store.clone(), Clock::manual(t0()), config)
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("housekeeping.prune_schedule"),
        "{error}"
    );
}

#[test]
fn the_configuration_refuses_a_bad_schedule_at_start() {
    let error = crate::config::Config::from_toml_str(
        "[housekeeping]\nexpire_schedule = \"*/10 minutes\"\nexpire_silent_after_days = 0\n",
    )
    .expect_err("refused");
    let said = error.to_string();
    assert!(said.contains("housekeeping.expire_schedule"), "{said}");
    assert!(
        said.contains("housekeeping.expire_silent_after_days"),
        "{said}"
    );
}

/// Whether any of `needles` is in the database's files (the file and its write-ahead log).
fn on_disk(dir: &std::path::Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for name in ["waymark.db", "waymark.db-wal"] {
        let Ok(bytes) = std::fs::read(dir.join(name)) else {
            continue;
        };
        for needle in needles {
            if bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
            {
                found.push(format!("{needle} in {name}"));
            }
        }
    }
    found
}

/// Ninety days after its journey ended, a shipment's personal data is erased, in the database's
/// files too; its delivery statistics stay and its tracking link stops working.
#[tokio::test]
async fn a_finished_shipments_personal_data_is_erased_on_disk_and_its_statistics_stay() {
    let setup = setup().await;
    let input = ShipmentInput {
        carrier: "sandbox".into(),
        tracking_number: "SBX-ONTIME-000042".into(),
        customer_email: "henrietta.quarrington@example.org".into(),
        customer_name: Some("Henrietta Quarrington".into()),
        customer_phone: Some("0151 98765432".into()),
        locale: Some("en".into()),
        destination_country: "DE".into(),
        destination_postal_code: Some("10115".into()),
        order_reference: Some("ORDER-QUARRINGTON-7".into()),
        ..ShipmentInput::default()
    };
    let shipment = register(
        setup.store.as_ref(),
        &setup.carriers,
        MerchantId::DEFAULT,
        &input,
        t0() - days(10),
    )
    .await
    .unwrap();
    // Polled once: the whole journey, delivered and signed for; its email sent.
    let scheduler = crate::scheduler::Scheduler::new(
        setup.store.clone(),
        setup.carriers.clone(),
        setup.clock.clone(),
        Arc::new(crate::domain::HolidayCalendar::bundled()),
        crate::config::SchedulerConfig::default(),
    );
    assert_eq!(scheduler.run_once().await.unwrap().polled, 1);
    let until = t0() + SignedDuration::from_mins(5);
    for item in setup
        .store
        .claim_notifications("d", t0(), until, 10)
        .await
        .unwrap()
    {
        let id = item.notification.id;
        setup
            .store
            .start_notification_attempt(id, "d", t0(), until)
            .await
            .unwrap();
        let sent = crate::store::Completion::Sent {
            message_id: format!("<{id}@shop.test>"),
            provider_response: "250 2.0.0 queued for <henrietta.quarrington@example.org>".into(),
        };
        setup
            .store
            .complete_notification(id, "d", t0(), &sent)
            .await
            .unwrap();
    }
    let delivered = setup.store.shipment(shipment.id).await.unwrap().unwrap();
    assert_eq!(delivered.journey.status, Status::Delivered);
    let scans = setup.store.timeline(shipment.id).await.unwrap().len();
    let personal = [
        "henrietta.quarrington@example.org",
        "Henrietta Quarrington",
        "+4915198765432",
        "M. SCHNEIDER",
        "ORDER-QUARRINGTON-7",
    ];
    assert!(
        !on_disk(setup._dir.path(), &personal).is_empty(),
        "stored first"
    );

    let jobs = housekeeping(&setup);
    jobs.run_due().await.unwrap();
    // Eighty-nine days on, the nightly prune leaves it; ninety-one days on, it is erased.
    setup
        .clock
        .advance_to("2026-05-31T03:17:00Z".parse().unwrap());
    let ran = jobs.run_due().await.unwrap();
    assert!(
        ran.iter()
            .any(|(_, said)| said.contains(" 0 shipments' personal data erased")),
        "{ran:?}"
    );
    setup
        .clock
        .advance_to("2026-06-02T03:17:00Z".parse().unwrap());
    let ran = jobs.run_due().await.unwrap();
    assert!(
        ran.iter()
            .any(|(_, said)| said.contains(" 1 shipments' personal data erased")),
        "{ran:?}"
    );

    assert_eq!(on_disk(setup._dir.path(), &personal), Vec::<String>::new());
    let erased = setup.store.shipment(shipment.id).await.unwrap().unwrap();
    assert_eq!(erased.customer.email, None);
    assert_eq!(erased.customer.name, None);
    assert_eq!(erased.order_reference, None);
    assert!(erased.erased_at.is_some());
    // The statistics: carrier, journey, scans and their times.
    assert_eq!(erased.journey, delivered.journey);
    assert_eq!(
        setup.store.timeline(shipment.id).await.unwrap().len(),
        scans
    );
    // The customer's links lead nowhere now.
    assert_eq!(
        setup
            .store
            .shipment_by_token(&delivered.public_token)
            .await
            .unwrap(),
        None
    );
}

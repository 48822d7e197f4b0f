//! The periodic jobs against a real SQLite file, on a manual clock.

use super::*;
use crate::carriers::sandbox::Sandbox;
use crate::carriers::{CarrierAccount, CarrierRegistry};
use crate::domain::Status;
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
    let sqlite = SqliteStore::connect(&url).await.unwrap();
    sqlite.migrate().await.unwrap();
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let clock = Clock::manual(t0());
    let mut carriers = CarrierRegistry::new();
    carriers.register(Arc::new(Sandbox::bundled(clock.clone())));
    store
        .create_carrier_account(&CarrierAccount {
            id: Uuid::now_v7(),
            carrier: crate::domain::CarrierCode::parse("sandbox").unwrap(),
            name: "default".into(),
            credentials: serde_json::json!({}),
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
        locale: "de".into(),
        destination_country: "DE".into(),
        ..ShipmentInput::default()
    };
    register(setup.store.as_ref(), &setup.carriers, &input, registered_at)
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
            .execute(setup.sqlite.pool())
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
            (shipment.journey.status == Status::Expired, !shipment.journey.active),
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
    let mut expected = vec![(never_found, "shipment_expired"), (quiet, "shipment_expired")];
    expected.sort();
    assert_eq!(told, expected);
    assert!(notices.iter().any(|n| n.detail.contains("never found")));

    // Expired shipments are not polled again, and the next run finds nothing more.
    setup.clock.advance_to(t0() + SignedDuration::from_mins(20));
    let again = jobs.run_due().await.unwrap();
    assert!(again.contains(&(Job::Expire, "0 shipments expired".into())), "{again:?}");
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
            .claim_job("expire", "dead", due, due + SignedDuration::from_secs(60), due)
            .await
            .unwrap()
    );
    assert!(survivor.run_due().await.unwrap().is_empty(), "still held");
    setup
        .clock
        .advance_to(due + SignedDuration::from_secs(61));
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
        .execute(setup.sqlite.pool())
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
        ran.contains(&(Job::Prune, "70 poll errors deleted".into())),
        "{ran:?}"
    );
    let left: Vec<(String, i64)> =
        sqlx::query_as("SELECT shipment_id, COUNT(*) FROM poll_errors GROUP BY shipment_id")
            .fetch_all(setup.sqlite.pool())
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
    assert!(said.contains("housekeeping.expire_silent_after_days"), "{said}");
}

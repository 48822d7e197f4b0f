//! Several `waymark serve` replicas on one PostgreSQL database, as a platform runs them: they
//! share the polling and the sending, one is killed without warning and another restarted,
//! and still every shipment ends, every message arrives once, and the carrier account's
//! quota counter matches the calls the carrier saw.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use uuid::Uuid;
use waymark::carriers::CarrierAccount;
use waymark::domain::{CarrierCode, MerchantId, NotificationState};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{Daemon, SmtpServer, daemon_env, run_waymark, wait_for};

/// Shipments the replicas share.
const SHIPMENTS: usize = 2_000;
/// Replicas running at once.
const REPLICAS: usize = 3;

/// DHL's answer for `number`: delivered an hour ago, in the shape of DHL's own example
/// (tests/fixtures/carriers/dhl/example_response.json).
fn delivered(number: &str) -> serde_json::Value {
    let at = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let scan = serde_json::json!({
        "timestamp": at,
        "location": {"address": {"countryCode": "DE", "addressLocality": "Berlin"}},
        "statusCode": "delivered",
        "status": "The shipment has been delivered",
        "description": "The shipment has been delivered"
    });
    serde_json::json!({"shipments": [{
        "id": number,
        "service": "parcel-de",
        "status": scan,
        "events": [scan]
    }]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_work_and_a_killed_one_loses_nothing() -> anyhow::Result<()> {
    let cluster = waymark::store::postgres::ThrowawayCluster::shared()?;
    let database_url = cluster.fresh_database().await?;
    let dir = tempfile::tempdir()?;
    let smtp = SmtpServer::start(&dir.path().join("mail"))?;
    let key = waymark::vault::generate_key_text();
    let mut env = daemon_env(dir.path(), smtp.port, 600.0);
    for (name, value) in env.iter_mut() {
        if name == "WAYMARK_DATABASE_URL" {
            *value = database_url.clone();
        }
    }
    env.push(("WAYMARK_MASTER_KEY".into(), key.clone()));

    // DHL, answering for whichever number it is asked about.
    let dhl = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/track/shipments"))
        .respond_with(|request: &Request| {
            let number = request
                .url
                .query_pairs()
                .find(|(k, _)| k == "trackingNumber")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            ResponseTemplate::new(200).set_body_json(delivered(&number))
        })
        .mount(&dhl)
        .await;

    let migrated = run_waymark(dir.path(), &env, &["migrate"])?;
    anyhow::ensure!(migrated.status.success(), "{migrated:?}");
    let (vault, _) = waymark::vault::load(
        &waymark::vault::VaultConfig::default(),
        Some(&key),
        &dir.path().join("unused.key"),
    )?;
    let store = waymark::store::connect(&database_url, vault).await?;
    let account = Uuid::now_v7();
    store
        .create_carrier_account(&CarrierAccount {
            id: account,
            merchant_id: MerchantId::DEFAULT,
            carrier: CarrierCode::parse("dhl")?,
            name: "default".into(),
            credentials: serde_json::json!({"api_key": "merchant-key"}).into(),
            base_url: Some(dhl.uri()),
            // A quota, so every call is counted; a rate the test can wait for.
            daily_quota: Some(1_000_000),
            requests_per_second: Some(400.0),
        })
        .await?;
    let mut csv =
        String::from("carrier,tracking_number,customer_email,locale,destination_country\n");
    for n in 0..SHIPMENTS {
        csv.push_str(&format!("dhl,JVGL{n:012},customer{n}@example.de,de,DE\n"));
    }
    let file = dir.path().join("orders.csv");
    std::fs::write(&file, csv)?;
    let imported = run_waymark(
        dir.path(),
        &env,
        &["shipments", "import", &file.display().to_string()],
    )?;
    anyhow::ensure!(imported.status.success(), "{imported:?}");

    let mut replicas: Vec<Daemon> = (1..=REPLICAS)
        .map(|run| Daemon::start(dir.path(), &env, run))
        .collect::<anyhow::Result<_>>()?;
    // Mid-run: one replica is killed outright, another stopped and started again.
    wait_for(
        "a quarter of the emails",
        Duration::from_secs(120),
        async || {
            for replica in &mut replicas {
                replica.ensure_running()?;
            }
            Ok(smtp.count() >= SHIPMENTS / 4)
        },
    )
    .await?;
    replicas[0].kill()?;
    // What the killed replica may have had on the wire: the messages being sent right now (an
    // upper bound; the live replicas' sends are among them).
    let in_flight_at_kill = store.backlog().await?.sending_notifications as usize;
    let (stopped, _) = replicas[1].terminate(Duration::from_secs(20))?;
    assert!(stopped.success(), "{stopped}: {}", replicas[1].stderr());
    replicas[1] = Daemon::start(dir.path(), &env, REPLICAS + 1)?;
    wait_for(
        "every journey to end",
        Duration::from_secs(300),
        async || {
            for replica in replicas.iter_mut().skip(1) {
                replica.ensure_running()?;
            }
            let backlog = store.backlog().await?;
            Ok(backlog.active_shipments == 0 && backlog.unsent_notifications == 0)
        },
    )
    .await?;
    for replica in replicas.iter_mut().skip(1) {
        let (status, _) = replica.terminate(Duration::from_secs(20))?;
        assert!(status.success(), "{status}: {}", replica.stderr());
    }

    // Every message the database marks sent arrived; none arrived twice with different
    // Message-IDs; a Message-ID came twice only for the replica killed between the server's
    // acceptance and the commit.
    let emails = smtp.emails()?;
    let mut copies: HashMap<String, usize> = HashMap::new();
    let mut ids_per_message: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for email in &emails {
        let id = email.message_id().unwrap_or_default();
        *copies.entry(id.clone()).or_default() += 1;
        ids_per_message
            .entry((email.shipment_id(), email.trigger()))
            .or_default()
            .insert(id);
    }
    let repeated: usize = copies.values().map(|n| n - 1).sum();
    assert!(
        repeated <= in_flight_at_kill,
        "{repeated} emails arrived twice; {in_flight_at_kill} were being sent at the kill"
    );
    assert!(
        ids_per_message.values().all(|ids| ids.len() == 1),
        "a message went out under two Message-IDs"
    );
    let mut sent = 0;
    for n in 0..SHIPMENTS {
        let number = waymark::domain::TrackingNumber::parse(&format!("JVGL{n:012}"))?;
        let shipments = store.shipments_by_number(&number).await?;
        assert_eq!(shipments.len(), 1);
        let shipment = &shipments[0];
        assert!(!shipment.journey.active, "{number} still travelling");
        for message in store.notifications(shipment.id).await? {
            assert_eq!(message.state, NotificationState::Sent, "{message:?}");
            // The header's id is read without its angle brackets.
            let id = message
                .message_id
                .as_deref()
                .unwrap_or_default()
                .trim_matches(['<', '>'])
                .to_owned();
            let arrived = copies.get(&id).copied().unwrap_or(0);
            assert!(
                arrived > 0,
                "{id} marked sent, never arrived: {message:?}; the mail server's log: {:?}",
                smtp.log()
                    .into_iter()
                    .filter(|l| l.address == message.recipient)
                    .collect::<Vec<_>>()
            );
            // A repeat is a message taken over from the killed replica and sent again.
            assert!(
                arrived == 1 || message.attempts >= 2,
                "{id} arrived {arrived} times in {} attempt(s)",
                message.attempts
            );
            sent += 1;
        }
    }
    assert_eq!(
        copies.len(),
        sent,
        "every email that arrived is one the database sent"
    );

    // The quota counted every call DHL saw, across the replicas.
    let seen = dhl
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/track/shipments")
        .count() as i64;
    let counted =
        waymark::store::inspect::integer_sum(&database_url, "quota_usage", "calls").await?;
    assert_eq!(counted, seen, "quota counter against DHL's calls");
    println!(
        "{SHIPMENTS} shipments, {} emails ({repeated} repeated after the kill, \
         {in_flight_at_kill} in flight then), {seen} DHL calls",
        emails.len()
    );
    Ok(())
}

#[tokio::test]
async fn copy_data_moves_a_sqlite_waymark_to_postgres_and_checks_the_counts() -> anyhow::Result<()>
{
    use waymark::carriers::sandbox::Scenario;
    let app = crate::helpers::spawn_app().await?;
    let mut shipments = Vec::new();
    for (seq, scenario) in [Scenario::OnTime, Scenario::Customs, Scenario::Late]
        .into_iter()
        .enumerate()
    {
        shipments.push(
            app.register(&crate::helpers::sandbox_shipment(
                scenario,
                seq as u32 + 1,
                "anna@example.de",
                "Anna",
                "de",
                "DE",
            ))
            .await?,
        );
    }
    app.run_until_done().await?;
    let from = app.database_url().to_owned();
    let to = waymark::store::postgres::ThrowawayCluster::shared()?
        .fresh_database()
        .await?;
    let env = vec![
        (
            "WAYMARK_CONFIG".to_owned(),
            app.dir().join("absent.toml").display().to_string(),
        ),
        ("WAYMARK_DATABASE_URL".to_owned(), from.clone()),
    ];
    let copied = run_waymark(
        app.dir(),
        &env,
        &["copy-data", "--from", &from, "--to", &to],
    )?;
    anyhow::ensure!(copied.status.success(), "{copied:?}");
    assert!(
        copied.stdout.contains("every count matches"),
        "{}",
        copied.stdout
    );
    assert!(copied.stdout.contains("shipments"), "{}", copied.stdout);

    // The copy reads back the same through the store, secrets included (same master key).
    let copy = crate::helpers::open_store_with_key_of(&from, &to).await?;
    for shipment in &shipments {
        let original = app.shipment(shipment.id).await?;
        let moved = copy.shipment(shipment.id).await?.expect("copied");
        assert_eq!(moved, original);
        assert_eq!(
            copy.timeline(shipment.id).await?,
            app.store().timeline(shipment.id).await?
        );
        assert_eq!(
            copy.notifications(shipment.id).await?,
            app.notifications(shipment.id).await?
        );
    }
    let accounts = copy.carrier_accounts().await?;
    assert_eq!(accounts.len(), app.store().carrier_accounts().await?.len());
    // A second copy into the same database is refused: it holds data now.
    let again = run_waymark(
        app.dir(),
        &env,
        &["copy-data", "--from", &from, "--to", &to],
    )?;
    assert!(!again.status.success());
    assert!(
        again.stderr.contains("already holds data"),
        "{}",
        again.stderr
    );
    Ok(())
}

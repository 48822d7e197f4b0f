//! `waymark serve` as an operator runs it — the real binary, configured only by environment
//! variables — killed without warning mid-work, restarted, and stopped with SIGTERM.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use waymark::carriers::sandbox::Scenario;
use waymark::domain::{NotificationState, TrackingNumber};

use crate::helpers::{
    Daemon, SmtpServer, by_shipment, daemon_env, expected_triggers, open_store, run_waymark,
    states, triggers,
};

/// Simulated seconds per real second for the daemon: an on-time journey takes 30–40 s, the
/// quiet days between "shipped" and "out for delivery" (about 22 real seconds) outlast the
/// restarts below by far, and the out-for-delivery window (over two real seconds) is long
/// enough that a busy machine does not poll right past it.
const ACCELERATION: f64 = 10_000.0;

/// The customers; the first one's mail server stalls on its first email, long enough to kill
/// the daemon while that email is on the wire.
const CUSTOMERS: [(&str, &str, &str, &str); 4] = [
    ("slow-sam@example.com", "Sam Slow", "en", "GB"),
    ("emma.clarke@example.com", "Emma Clarke", "en", "GB"),
    ("jonas.becker@example.de", "Jonas Becker", "de", "DE"),
    ("zofia.nowak@example.pl", "Zofia Nowak", "pl", "PL"),
];

fn register_with_the_binary(
    dir: &std::path::Path,
    env: &[(String, String)],
    customers: &[(&str, &str, &str, &str)],
) -> anyhow::Result<Vec<TrackingNumber>> {
    let mut numbers = Vec::new();
    for (seq, &(email, name, locale, country)) in customers.iter().enumerate() {
        let number = Scenario::OnTime.example_number(seq as u32 + 1);
        let output = run_waymark(
            dir,
            env,
            &[
                "shipments",
                "add",
                "--carrier",
                "sandbox",
                "--tracking-number",
                number.as_str(),
                "--email",
                email,
                "--name",
                name,
                "--locale",
                locale,
                "--country",
                country,
            ],
        )?;
        anyhow::ensure!(output.status.success(), "shipments add failed: {output:?}");
        numbers.push(number);
    }
    Ok(numbers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_send_resumes_and_every_email_arrives_exactly_once()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let smtp = SmtpServer::start(&dir.path().join("mail"))?;
    let env = daemon_env(dir.path(), smtp.port, ACCELERATION);
    let numbers = register_with_the_binary(dir.path(), &env, &CUSTOMERS)?;
    let database_url = format!("sqlite://{}", dir.path().join("waymark.db").display());
    let store = open_store(&database_url).await?;
    let mut shipments = Vec::new();
    for number in &numbers {
        shipments.extend(store.shipments_by_number(number).await?);
    }
    assert_eq!(shipments.len(), CUSTOMERS.len());
    let slow = shipments[0].clone();
    let expected = expected_triggers(Scenario::OnTime);
    let total = expected.len() * shipments.len();

    // Run 1: killed while the slow customer's first email is on the wire — and only that one.
    // The others of the same round are given the few milliseconds they need to be recorded as
    // sent: an email the server accepted just before a kill, which the daemon had no time to
    // record, goes out a second time after the restart (at-least-once; the Message-ID stays
    // the same, so mail clients can fold the two).
    let mut daemon = Daemon::start(dir.path(), &env, 1)?;
    crate::helpers::wait_for(
        "an email on the wire",
        Duration::from_secs(60),
        async || {
            daemon.ensure_running()?;
            Ok(!smtp.log_of("STALL", "slow").is_empty())
        },
    )
    .await?;
    let waits_for_the_rest = async || {
        let mut others_in_flight = false;
        for shipment in &shipments[1..] {
            let messages = store.notifications(shipment.id).await?;
            others_in_flight |= messages
                .iter()
                .any(|m| m.state == NotificationState::Sending);
        }
        Ok(!others_in_flight)
    };
    crate::helpers::wait_for(
        "the other emails to be recorded",
        Duration::from_secs(10),
        waits_for_the_rest,
    )
    .await?;
    daemon.kill()?;
    crate::helpers::wait_for(
        "the server to see the client go",
        Duration::from_secs(5),
        async || Ok(!smtp.log_of("ABANDONED", "slow").is_empty()),
    )
    .await?;
    let in_flight = store.notifications(slow.id).await?;
    assert_eq!(
        states(&in_flight),
        [NotificationState::Sending],
        "the killed daemon held the email: {in_flight:?}"
    );
    assert!(smtp.count() < total);

    // Run 2: the dead daemon's lease runs out, the email goes out once. Killed again in a quiet
    // moment: every "shipped" email out, nothing else due yet.
    let mut daemon = Daemon::start(dir.path(), &env, 2)?;
    crate::helpers::wait_for("every shipped email", Duration::from_secs(60), async || {
        daemon.ensure_running()?;
        let mut all_out = store.backlog().await?.unsent_notifications == 0;
        for shipment in &shipments {
            let messages = store.notifications(shipment.id).await?;
            all_out &= !messages.is_empty();
        }
        Ok(all_out)
    })
    .await?;
    daemon.kill()?;
    let arrived = smtp.count();
    assert!(
        (shipments.len()..total).contains(&arrived),
        "{arrived} of {total} emails before the second crash"
    );

    // Run 3: to the end, then a graceful stop.
    let mut daemon = Daemon::start(dir.path(), &env, 3)?;
    crate::helpers::wait_for(
        "every journey to end",
        Duration::from_secs(90),
        async || {
            daemon.ensure_running()?;
            let backlog = store.backlog().await?;
            Ok(backlog.active_shipments == 0 && backlog.unsent_notifications == 0)
        },
    )
    .await?;
    let (status, _) = daemon.terminate(Duration::from_secs(10))?;
    assert!(status.success(), "{status}: {}", daemon.stderr());

    // Every email exactly once: by (shipment, trigger) and by Message-ID.
    let emails = smtp.emails()?;
    assert_eq!(
        emails.len(),
        total,
        "emails: {:?}",
        emails
            .iter()
            .map(|e| (e.shipment_id(), e.trigger()))
            .collect::<Vec<_>>()
    );
    let mut per_trigger: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut ids = HashSet::new();
    for email in &emails {
        *per_trigger
            .entry((email.shipment_id(), email.trigger()))
            .or_default() += 1;
        assert!(
            ids.insert(email.message_id().unwrap_or_default()),
            "Message-ID sent twice"
        );
    }
    assert!(per_trigger.values().all(|n| *n == 1), "{per_trigger:?}");
    let groups = by_shipment(&emails);
    for shipment in &shipments {
        let got: Vec<String> = groups[&shipment.id.to_string()]
            .iter()
            .map(|e| e.trigger())
            .collect();
        assert_eq!(got, expected, "{}", shipment.id);
        let messages = store.notifications(shipment.id).await?;
        assert_eq!(triggers(&messages), expected);
        assert!(
            states(&messages)
                .iter()
                .all(|s| *s == NotificationState::Sent),
            "{messages:?}"
        );
    }
    // The server accepted the slow customer's first email once: on the retry after the crash.
    assert_eq!(smtp.log_of("SAVED", "slow").len(), expected.len());
    assert_eq!(smtp.log_of("ABANDONED", "slow").len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon_within_seconds_leaving_nothing_half_done() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let smtp = SmtpServer::start(&dir.path().join("mail"))?;
    let env = daemon_env(dir.path(), smtp.port, ACCELERATION);
    register_with_the_binary(dir.path(), &env, &CUSTOMERS[1..])?;

    // Busy: polling and sending.
    let mut daemon = Daemon::start(dir.path(), &env, 1)?;
    crate::helpers::wait_for("the first email", Duration::from_secs(60), async || {
        daemon.ensure_running()?;
        Ok(smtp.count() >= 1)
    })
    .await?;

    let (status, took) = daemon.terminate(Duration::from_secs(30))?;
    assert!(status.success(), "{status}: {}", daemon.stderr());
    assert!(took < Duration::from_secs(5), "took {took:?} to stop");
    assert!(daemon.stderr().contains("stopping"), "{}", daemon.stderr());

    // Work in flight was finished or handed back, not left leased.
    let store = crate::helpers::open_store(&crate::helpers::database_url(&env)).await?;
    let backlog = store.backlog().await?;
    assert_eq!(
        (backlog.leased_shipments, backlog.sending_notifications),
        (0, 0),
        "left behind leased work"
    );
    Ok(())
}

//! When the mail server says no: for good (a bounce), for now (greylisting); when it is slow to
//! say yes while a second dispatcher is around; and when the customer asked for silence (mute).

use waymark::carriers::sandbox::Scenario;
use waymark::domain::NotificationState;

use crate::helpers::{
    by_shipment, expected_triggers, sandbox_shipment, spawn_app, spawn_app_with, states, triggers,
};

#[tokio::test]
async fn a_mailbox_that_does_not_exist_fails_once_per_message_and_is_never_retried()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let bounce = "bounce-jan@example.com";
    let doomed = app
        .register(&sandbox_shipment(
            Scenario::OnTime,
            1,
            bounce,
            "Jan Kowalski",
            "pl",
            "PL",
        ))
        .await?;
    let fine = app
        .register(&sandbox_shipment(
            Scenario::OnTime,
            2,
            "emma.clarke@example.com",
            "Emma Clarke",
            "en",
            "GB",
        ))
        .await?;

    // The first refusal is final at once: not pending for a retry.
    let store = app.waymark.store.clone();
    let id = doomed.id;
    app.drive_until(
        "the first email to the missing mailbox to fail",
        async |_| {
            let messages = store.notifications(id).await?;
            Ok(messages.first().is_some_and(|m| {
                m.state != NotificationState::Pending && m.state != NotificationState::Sending
            }))
        },
    )
    .await?;
    let first = &app.notifications(doomed.id).await?[0];
    assert_eq!(first.state, NotificationState::Failed, "{first:?}");
    assert_eq!(first.attempts, 1);

    app.run_until_done().await?;

    let messages = app.notifications(doomed.id).await?;
    assert_eq!(triggers(&messages), expected_triggers(Scenario::OnTime));
    for message in &messages {
        assert_eq!(message.state, NotificationState::Failed, "{message:?}");
        assert_eq!(message.attempts, 1, "retried: {message:?}");
        let error = message.last_error.as_deref().unwrap_or_default();
        assert!(
            error.contains("550"),
            "the error does not say 550: `{error}`"
        );
        assert!(
            message.message_id.is_none() && message.sent_at.is_none(),
            "{message:?}"
        );
    }
    // The server saw each message asked for exactly once.
    assert_eq!(app.smtp.log_of("RCPT-550", "bounce").len(), messages.len());

    // Nothing reached the missing mailbox; the other customer got the whole story.
    let emails = app.smtp.emails()?;
    assert!(emails.iter().all(|e| !e.to().contains(&bounce.to_string())));
    let groups = by_shipment(&emails);
    let other: Vec<String> = groups[&fine.id.to_string()]
        .iter()
        .map(|e| e.trigger())
        .collect();
    assert_eq!(other, expected_triggers(Scenario::OnTime));
    assert!(
        states(&app.notifications(fine.id).await?)
            .iter()
            .all(|s| *s == NotificationState::Sent)
    );
    Ok(())
}

#[tokio::test]
async fn a_server_that_says_try_again_later_gets_the_email_once_after_backing_off()
-> anyhow::Result<()> {
    // Back-off is measured in real seconds at the SMTP server, so this test runs on real
    // (accelerated) time rather than the manual clock.
    let app = spawn_app_with(|config| config.clock.acceleration = crate::helpers::FAST).await?;
    let flaky = "flaky-filip@example.pl";
    let shipment = app
        .register(&sandbox_shipment(
            Scenario::OnTime,
            1,
            flaky,
            "Filip Wójcik",
            "pl",
            "PL",
        ))
        .await?;

    // After the first refusal the email waits for a retry, and says why.
    let store = app.waymark.store.clone();
    let id = shipment.id;
    app.drive_until("the first refusal", async |_| {
        let messages = store.notifications(id).await?;
        Ok(messages.first().is_some_and(|m| m.attempts >= 1))
    })
    .await?;
    let first = app.notifications(shipment.id).await?.remove(0);
    assert_eq!(first.state, NotificationState::Pending, "{first:?}");
    assert_eq!(first.attempts, 1);
    let error = first.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("451"),
        "the error does not say 451: `{error}`"
    );
    assert!(
        first.available_at > first.created_at,
        "no back-off: {first:?}"
    );

    app.run_until_done().await?;

    let messages = app.notifications(shipment.id).await?;
    assert_eq!(triggers(&messages), expected_triggers(Scenario::OnTime));
    assert!(
        states(&messages)
            .iter()
            .all(|s| *s == NotificationState::Sent),
        "{messages:?}"
    );
    // Two refusals and the success are three attempts; the later emails went through at once.
    let attempts: Vec<u32> = messages.iter().map(|m| m.attempts).collect();
    assert_eq!(attempts, [3, 1, 1]);

    let emails = app.smtp.emails()?;
    let got: Vec<String> = emails.iter().map(|e| e.trigger()).collect();
    assert_eq!(
        got,
        expected_triggers(Scenario::OnTime),
        "each email exactly once"
    );

    // The retries backed off: about a second (0.5–1 s) after the first refusal, then about two
    // (1–2 s) after the second, as configured (`retry_base_seconds = 1`, doubling, jittered).
    let log = app.smtp.log();
    let tries: Vec<(String, f64)> = log
        .iter()
        .filter(|l| l.address == flaky && l.event.starts_with("RCPT"))
        .map(|l| (l.event.clone(), l.at))
        .collect();
    let events: Vec<&str> = tries.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        events[..3],
        ["RCPT-451", "RCPT-451", "RCPT-OK"],
        "{tries:?}"
    );
    let first_wait = tries[1].1 - tries[0].1;
    let second_wait = tries[2].1 - tries[1].1;
    assert!(first_wait >= 0.45, "first retry after {first_wait:.3}s");
    assert!(second_wait >= 0.95, "second retry after {second_wait:.3}s");
    Ok(())
}

#[tokio::test]
async fn a_muted_shipment_sends_nothing_more() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let quiet = app
        .register(&sandbox_shipment(
            Scenario::OnTime,
            1,
            "muted.maria@example.de",
            "Maria Wolf",
            "de",
            "DE",
        ))
        .await?;
    let later = app
        .register(&sandbox_shipment(
            Scenario::OnTime,
            2,
            "later.lukas@example.de",
            "Lukas Braun",
            "de",
            "DE",
        ))
        .await?;
    let chatty = app
        .register(&sandbox_shipment(
            Scenario::OnTime,
            3,
            "emma.clarke@example.com",
            "Emma Clarke",
            "en",
            "GB",
        ))
        .await?;

    // One customer mutes before anything happens, another after the first email.
    assert!(app.store().set_muted(quiet.id, true).await?);
    let store = app.waymark.store.clone();
    let id = later.id;
    app.drive_until("Lukas's first email", async |_| {
        let messages = store.notifications(id).await?;
        Ok(messages
            .first()
            .is_some_and(|m| m.state == NotificationState::Sent))
    })
    .await?;
    assert!(app.store().set_muted(later.id, true).await?);

    app.run_until_done().await?;

    let emails = app.smtp.emails()?;
    let groups = by_shipment(&emails);
    assert!(
        !groups.contains_key(&quiet.id.to_string()),
        "a muted shipment got email"
    );
    let lukas: Vec<String> = groups[&later.id.to_string()]
        .iter()
        .map(|e| e.trigger())
        .collect();
    assert_eq!(lukas, ["shipped"]);
    let emma: Vec<String> = groups[&chatty.id.to_string()]
        .iter()
        .map(|e| e.trigger())
        .collect();
    assert_eq!(emma, expected_triggers(Scenario::OnTime));

    use NotificationState::{Sent, Suppressed};
    let muted = app.notifications(quiet.id).await?;
    assert_eq!(triggers(&muted), expected_triggers(Scenario::OnTime));
    assert_eq!(states(&muted), [Suppressed, Suppressed, Suppressed]);
    assert!(
        muted
            .iter()
            .all(|m| m.attempts == 0 && m.message_id.is_none()),
        "{muted:?}"
    );
    assert_eq!(
        states(&app.notifications(later.id).await?),
        [Sent, Suppressed, Suppressed]
    );
    Ok(())
}

/// Two dispatchers share one database (two replicas, or the old and the new process of a
/// deploy). While one of them waits for a slow server's answer, its lease on the message runs
/// out and the other one sends the message again. Waymark either refuses such a configuration
/// (a dispatcher lease no longer than the SMTP timeout), or makes sure a message still on the
/// wire is not sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_still_on_the_wire_is_not_sent_again_by_another_dispatcher() -> anyhow::Result<()>
{
    let lease_seconds = 1;
    let app = match spawn_app_with(|config| {
        // Leases expire in real time here: the test races two dispatchers against the clock.
        config.clock.acceleration = crate::helpers::FAST;
        config.dispatcher.lease_seconds = lease_seconds;
    })
    .await
    {
        Ok(app) => app,
        Err(refused) => {
            let message = format!("{refused:#}");
            assert!(message.contains("dispatcher.lease_seconds"), "{message}");
            return Ok(());
        }
    };
    assert!(
        app.waymark.config.email.smtp.timeout_seconds > lease_seconds,
        "the SMTP timeout outlasts the lease"
    );
    let address = "sluggish-sue@example.com";
    let shipment = app
        .register(&sandbox_shipment(
            Scenario::OnTime,
            1,
            address,
            "Sue",
            "en",
            "GB",
        ))
        .await?;
    let store = app.waymark.store.clone();
    let id = shipment.id;
    app.poll_until("the shipped email to be queued", async |_| {
        Ok(!store.notifications(id).await?.is_empty())
    })
    .await?;

    // The first replica starts sending; the server takes three seconds to answer. Meanwhile
    // a second replica does its rounds.
    let first = app.dispatcher.clone();
    let sending = tokio::spawn(async move { first.run_once().await });
    crate::helpers::wait_for(
        "the first replica's email on the wire",
        std::time::Duration::from_secs(10),
        async || Ok(!app.smtp.log_of("STALL", "sluggish").is_empty()),
    )
    .await?;
    let second = app.waymark.dispatcher()?;
    let mut second_rounds = Vec::new();
    while !sending.is_finished() {
        second_rounds.push(second.run_once().await?);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let first_round = sending.await??;

    let emails = app.smtp.emails()?;
    let to_sue: Vec<String> = emails
        .iter()
        .filter(|e| e.to().contains(&address.to_string()))
        .map(|e| e.trigger())
        .collect();
    assert_eq!(
        to_sue,
        ["shipped"],
        "sent {} times: first replica {first_round:?}, second {:?}",
        to_sue.len(),
        second_rounds
            .iter()
            .filter(|r| r.did_work())
            .collect::<Vec<_>>()
    );
    Ok(())
}

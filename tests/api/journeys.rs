//! Every sandbox journey, end to end over SMTP: what each customer finds in their mailbox.

use std::collections::HashSet;
use waymark::links::LinkPurpose;

use waymark::carriers::sandbox::Scenario;
use waymark::domain::{NotificationState, Status};

use crate::helpers::{
    PUBLIC_URL, by_shipment, expected_triggers, language_scores, reads_as, sandbox_shipment,
    spawn_app, triggers,
};

/// Who gets which journey: every journey once, in English, German (one of them in Austria) and
/// Polish.
const CAST: [(Scenario, &str, &str, &str, &str); 7] = [
    (
        Scenario::OnTime,
        "en",
        "Emma Clarke",
        "emma.clarke@example.com",
        "GB",
    ),
    (
        Scenario::Late,
        "de",
        "Jonas Becker",
        "jonas.becker@example.de",
        "DE",
    ),
    (
        Scenario::Customs,
        "de-AT",
        "Lena Huber",
        "lena.huber@example.at",
        "AT",
    ),
    (
        Scenario::Pickup,
        "pl",
        "Zofia Nowak",
        "zofia.nowak@example.pl",
        "PL",
    ),
    (
        Scenario::Stalled,
        "en",
        "Oliver Hughes",
        "oliver.hughes@example.com",
        "GB",
    ),
    (
        Scenario::Lost,
        "pl",
        "Piotr Zieliński",
        "piotr.zielinski@example.pl",
        "PL",
    ),
    (
        Scenario::Returned,
        "de",
        "Mia Schulz",
        "mia.schulz@example.de",
        "DE",
    ),
];

#[tokio::test]
async fn every_journey_emails_its_customer_in_their_language_threaded_per_shipment()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let mut registered = Vec::new();
    for (seq, (scenario, locale, name, email, country)) in CAST.into_iter().enumerate() {
        let input = sandbox_shipment(scenario, seq as u32 + 1, email, name, locale, country);
        registered.push((scenario, locale, name, email, app.register(&input).await?));
    }

    app.run_until_done().await?;

    let emails = app.smtp.emails()?;
    let mut message_ids = HashSet::new();
    for email in &emails {
        let id = email.message_id().unwrap_or_default();
        assert!(!id.is_empty(), "email {} has no Message-ID", email.number);
        assert!(message_ids.insert(id.clone()), "Message-ID {id} used twice");
        assert!(
            id.ends_with("@track.shop.test"),
            "Message-ID {id} is not on the public URL's domain"
        );
    }
    let groups = by_shipment(&emails);
    assert_eq!(
        groups.len(),
        CAST.len(),
        "one mail thread per shipment, got {:?}",
        groups.keys()
    );

    for (scenario, locale, name, address, shipment) in &registered {
        let language = &locale[..2];
        let story = format!("{scenario:?} for {address} ({locale})");
        let received = groups
            .get(&shipment.id.to_string())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let got: Vec<String> = received.iter().map(|e| e.trigger()).collect();
        assert_eq!(got, expected_triggers(*scenario), "{story}: triggers");

        let token = app.waymark.links.token(LinkPurpose::Tracking, shipment.id);
        let preferences = app
            .waymark
            .links
            .token(LinkPurpose::Preferences, shipment.id);
        let tracking_link = format!("{PUBLIC_URL}/t/{token}");
        let first_id = received[0].message_id().unwrap_or_default();
        for (i, email) in received.iter().enumerate() {
            let what = format!("{story}, email {} ({})", i + 1, email.trigger());
            assert_eq!(email.to(), vec![address.to_string()], "{what}: To");
            assert_eq!(email.to_name().as_deref(), Some(*name), "{what}: To name");
            assert_eq!(
                email.envelope_to(),
                vec![address.to_string()],
                "{what}: RCPT TO"
            );
            let subject = email.subject();
            assert!(
                reads_as(&subject, language),
                "{what}: subject `{subject}` is not in {language}: {:?}",
                language_scores(&subject)
            );
            let text = email.text();
            assert!(
                reads_as(&text, language),
                "{what}: text part is not in {language}: {:?}\n{text}",
                language_scores(&text)
            );

            let (top, leaves) = email.top_and_leaf_types();
            assert_eq!(top, "multipart/alternative", "{what}");
            assert_eq!(leaves, ["text/plain", "text/html"], "{what}");
            let html = email.html();
            assert!(!html.trim().is_empty(), "{what}: empty HTML part");

            assert!(
                text.contains(&tracking_link),
                "{what}: no {tracking_link} in\n{text}"
            );
            assert!(
                html.contains(&tracking_link),
                "{what}: no {tracking_link} in\n{html}"
            );
            assert_eq!(
                email.header("List-Unsubscribe"),
                Some(format!("<{PUBLIC_URL}/u/{preferences}>")),
                "{what}"
            );
            assert_eq!(
                email.header("List-Unsubscribe-Post").as_deref(),
                Some("List-Unsubscribe=One-Click"),
                "{what}"
            );

            if i == 0 {
                assert!(
                    email.in_reply_to().is_empty(),
                    "{what}: first email replies"
                );
            } else {
                let previous = received[i - 1].message_id().unwrap_or_default();
                assert_eq!(email.in_reply_to(), vec![previous], "{what}: In-Reply-To");
                let references = email.references();
                assert!(
                    references.contains(&first_id),
                    "{what}: References {references:?} lack the first email {first_id}"
                );
                let earlier: Vec<String> = received[..i]
                    .iter()
                    .map(|e| e.message_id().unwrap_or_default())
                    .collect();
                assert_eq!(references, earlier, "{what}: References");
            }
        }

        // The outbox row of every email: sent once, with the server's answer kept.
        let messages = app.notifications(shipment.id).await?;
        assert_eq!(triggers(&messages), expected_triggers(*scenario), "{story}");
        for (message, email) in messages.iter().zip(received) {
            let what = format!("{story}: message #{} ({})", message.seq, message.trigger);
            assert_eq!(message.state, NotificationState::Sent, "{what}");
            assert_eq!(message.attempts, 1, "{what}");
            assert!(message.sent_at.is_some(), "{what}");
            assert_eq!(
                message.message_id,
                email.message_id().map(|id| format!("<{id}>")),
                "{what}"
            );
            let response = message.provider_response.as_deref().unwrap_or_default();
            assert!(
                response.starts_with("250")
                    && response.ends_with(&format!("queued as {}", email.number)),
                "{what}: provider response `{response}`"
            );
            assert_eq!(message.recipient, *address, "{what}");
        }

        // The journey is over, and the shipment says how it ended.
        let stored = app.shipment(shipment.id).await?;
        assert!(!stored.journey.active, "{story}: still active");
        let end = match scenario {
            Scenario::Lost | Scenario::Returned => Status::Exception,
            _ => Status::Delivered,
        };
        assert_eq!(stored.journey.status, end, "{story}");
    }

    // A parcel at a pickup point: the customer is told where to collect it.
    let (_, _, _, _, pickup) = &registered[3];
    let waiting = groups[&pickup.id.to_string()]
        .iter()
        .find(|e| e.trigger() == "available_for_pickup")
        .map(|e| e.text())
        .unwrap_or_default();
    assert!(
        waiting.contains("Kiosk am Albertplatz"),
        "the pickup email does not name the parcel shop:\n{waiting}"
    );
    Ok(())
}

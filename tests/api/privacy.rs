//! What Waymark writes for its operators — its log, and the errors it keeps on shipments,
//! messages and polls — names no customer: not their address, not their name, not their phone,
//! even where a mail server or a carrier echoes them back.

use std::io::Write;
use std::sync::{Arc, Mutex};

use waymark::carriers::sandbox::Scenario;
use waymark::intake::ShipmentInput;

use crate::helpers::{sandbox_shipment, spawn_app};

/// Everything the log subscriber writes, kept for the test to search.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Customers no text of Waymark's own could name by chance: every sandbox scenario once.
const CAST: [(Scenario, &str, &str, &str, &str); 9] = [
    (
        Scenario::OnTime,
        "en",
        "Henrietta Quarrington",
        "henrietta.quarrington@example.org",
        "GB",
    ),
    (
        Scenario::Late,
        "de",
        "Wolfram Eichenlaub",
        "wolfram.eichenlaub@example.de",
        "DE",
    ),
    (
        Scenario::Customs,
        "de-AT",
        "Theresia Pfaffenbichler",
        "theresia.pfaffenbichler@example.at",
        "AT",
    ),
    (
        Scenario::Pickup,
        "pl",
        "Bożydar Wróblewski",
        "bozydar.wroblewski@example.pl",
        "PL",
    ),
    (
        Scenario::Stalled,
        "en",
        "Cuthbert Ravenscroft",
        "cuthbert.ravenscroft@example.co.uk",
        "GB",
    ),
    (
        Scenario::Lost,
        "pl",
        "Jadwiga Szczepańska",
        "jadwiga.szczepanska@example.pl",
        "PL",
    ),
    (
        Scenario::Returned,
        "de",
        "Gottlieb Wunderlich",
        "gottlieb.wunderlich@example.de",
        "DE",
    ),
    (
        Scenario::NotFound,
        "en",
        "Peregrine Fairweather",
        "peregrine.fairweather@example.com",
        "GB",
    ),
    (
        Scenario::Broken,
        "pl",
        "Ludmiła Kwiatkowska",
        "ludmila.kwiatkowska@example.pl",
        "PL",
    ),
];

/// A customer whose mail server refuses the address for good, naming it in its answer.
const REFUSED: (&str, &str) = (
    "Ottilie Vandersloot",
    "rejected.ottilie.vandersloot@example.nl",
);

/// A customer whose carrier (a stand-in for DHL) refuses the request with an error that quotes
/// its records of the recipient: name, address and phone.
const QUOTED: (&str, &str, &str) = (
    "Marta Błaszczykowska",
    "marta.blaszczykowska@example.pl",
    "+48 601 234 567",
);

/// What must not appear for one customer: the address, its local part, the name and each
/// part of it.
fn needles(name: &str, email: &str) -> Vec<String> {
    let mut needles = vec![email.to_owned(), name.to_owned()];
    needles.extend(email.split('@').next().map(str::to_owned));
    needles.extend(name.split_whitespace().map(str::to_owned));
    needles
}

#[tokio::test]
async fn no_customer_is_named_in_the_log_or_in_any_stored_error() -> anyhow::Result<()> {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    // Everything down to TRACE, from Waymark and the libraries it uses. A test runs on one
    // thread (tokio's current-thread runtime), and this subscriber is that thread's for as long
    // as the guard lives, so tests running beside this one write elsewhere.
    let log = Captured::default();
    let writer = log.clone();
    let capture = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );
    // tracing decides once per call site whether anyone listens, and while only one subscriber
    // exists it asks the subscriber of whichever thread gets there first: a test beside this
    // one, with none, would silence that line for this test too. A second subscriber that
    // hears everything makes every call site ask each thread's own.
    let _everything = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(std::io::sink)
            .finish(),
    );
    let _guard = tracing::dispatcher::set_default(&capture);

    let dhl = MockServer::start().await;
    let (quoted_name, quoted_email, quoted_phone) = QUOTED;
    Mock::given(method("GET"))
        .and(path("/track/shipments"))
        .respond_with(ResponseTemplate::new(400).set_body_string(format!(
            r#"{{"status":400,"title":"Bad Request","detail":"Notification to {quoted_name} <{quoted_email}>, {quoted_phone}: not allowed for this key"}}"#
        )))
        .mount(&dhl)
        .await;

    let app = spawn_app().await?;
    crate::helpers::dhl_account(&app, &dhl.uri()).await?;

    let mut sandbox = Vec::new();
    let mut customers = Vec::new();
    for (seq, (scenario, locale, name, email, country)) in CAST.into_iter().enumerate() {
        let input = sandbox_shipment(scenario, seq as u32 + 1, email, name, locale, country);
        sandbox.push(app.register(&input).await?.id);
        customers.push((name, email));
    }
    let (refused_name, refused_email) = REFUSED;
    let refused = app
        .register(&sandbox_shipment(
            Scenario::OnTime,
            20,
            refused_email,
            refused_name,
            "en",
            "GB",
        ))
        .await?;
    sandbox.push(refused.id);
    customers.push(REFUSED);
    let quoted = app
        .register(&ShipmentInput {
            carrier: "dhl".into(),
            tracking_number: "00340434161094042557".into(),
            customer_email: quoted_email.into(),
            customer_name: Some(quoted_name.into()),
            customer_phone: None,
            locale: Some("pl".into()),
            destination_country: "PL".into(),
            ..ShipmentInput::default()
        })
        .await?;
    customers.push((quoted_name, quoted_email));

    // Every sandbox journey plays out and every message goes (or fails for good); the DHL
    // parcel keeps being refused meanwhile.
    let store = app.waymark.store.clone();
    let watched = sandbox.clone();
    app.drive_until("every sandbox journey to end", async |_| {
        for id in &watched {
            let shipment = store.shipment(*id).await?;
            if shipment.is_none_or(|s| s.journey.active) {
                return Ok(false);
            }
        }
        Ok(store.backlog().await?.unsent_notifications == 0)
    })
    .await?;

    let mut stored = Vec::new();
    for (what, table, column) in [
        ("shipments.last_error", "shipments", "last_error"),
        ("notifications.last_error", "notifications", "last_error"),
        (
            "notifications.provider_response",
            "notifications",
            "provider_response",
        ),
        ("poll_errors.detail", "poll_errors", "detail"),
        ("poll_errors.excerpt", "poll_errors", "excerpt"),
    ] {
        for text in crate::helpers::stored_texts(&app, table, column).await? {
            stored.push((what, text));
        }
    }

    // The failures happened and were kept, in words an operator can act on.
    let refusals = app.notifications(refused.id).await?;
    assert!(!refusals.is_empty());
    for message in &refusals {
        let error = message.last_error.as_deref().unwrap_or_default();
        assert!(
            error.contains("550") && error.contains("Recipient address rejected"),
            "the mail server's refusal is kept: `{error}`"
        );
    }
    let carrier_error = app
        .shipment(quoted.id)
        .await?
        .last_error
        .unwrap_or_default();
    assert!(
        carrier_error.contains("400") && carrier_error.contains("not allowed for this key"),
        "the carrier's refusal is kept: `{carrier_error}`"
    );
    let log = log.text();
    for line in ["email sent", "email failed for good", "carrier call failed"] {
        assert!(log.contains(line), "the log has no `{line}`:\n{log}");
    }

    let log_lower = log.to_lowercase();
    let mut leaks = Vec::new();
    for (name, email) in customers {
        for needle in needles(name, email) {
            let needle = needle.to_lowercase();
            if let Some(line) = log_lower.lines().find(|l| l.contains(&needle)) {
                leaks.push(format!("log: `{needle}` in {line}"));
            }
            for (what, text) in &stored {
                if text.to_lowercase().contains(&needle) {
                    leaks.push(format!("{what}: `{needle}` in {text}"));
                }
            }
        }
    }
    let phone_digits: String = quoted_phone.chars().filter(char::is_ascii_digit).collect();
    let digits_only =
        |text: &str| -> String { text.chars().filter(char::is_ascii_digit).collect() };
    for (what, text) in &stored {
        if digits_only(text).contains(&phone_digits) {
            leaks.push(format!("{what}: the phone number in {text}"));
        }
    }
    if log.contains(quoted_phone) {
        leaks.push("log: the phone number".into());
    }
    assert!(leaks.is_empty(), "customers named:\n{}", leaks.join("\n"));
    Ok(())
}

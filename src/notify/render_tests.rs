//! Tests for [`super`]: every email in every language, as the customer would read it.

use super::*;
use crate::domain::detect::{DelayCause, EventFacts};
use crate::domain::{Reason, Status};
use jiff::civil::date;

const TRACKING_PAGE: &str = "https://track.example.com/t/tok_8f2c1a";
const UNSUBSCRIBE: &str = "https://track.example.com/u/tok_8f2c1a";

fn at(rfc3339: &str) -> Timestamp {
    rfc3339.parse().expect("a test timestamp")
}

fn scan(at_utc: &str, location: Option<&str>, text: &str) -> Option<EventFacts> {
    Some(EventFacts {
        at: at(at_utc),
        offset_seconds: Some(3600),
        location: location.map(str::to_owned),
        text: text.to_owned(),
    })
}

fn facts(status: Status, reason: Option<Reason>, event: Option<EventFacts>) -> Facts {
    Facts {
        event,
        ..Facts::bare(status, reason)
    }
}

fn window(from: Date, to: Date) -> Option<DeliveryWindow> {
    Some(DeliveryWindow::between(from, to).expect("a test window"))
}

fn changes() -> Vec<DeliveryChangeLink> {
    ["another_day", "neighbour", "pickup_point", "safe_place"]
        .into_iter()
        .map(|kind| DeliveryChangeLink {
            kind: kind.to_owned(),
            url: format!("{TRACKING_PAGE}/change/{kind}"),
        })
        .collect()
}

fn kiosk() -> Option<PickupPointContext> {
    Some(PickupPointContext {
        name: "Kiosk am Markt".into(),
        address: Some("Marktplatz 3, 04109 Leipzig".into()),
        hold_until: Some(date(2026, 3, 13)),
    })
}

/// A realistic message for `trigger`, as the dispatcher would build it.
fn context(trigger: Trigger, language: Language) -> MessageContext {
    let zone = match language {
        Language::En => "Europe/London",
        Language::De => "Europe/Berlin",
        Language::Pl => "Europe/Warsaw",
    };
    let mut ctx = MessageContext {
        trigger,
        language,
        customer_name: Some("Anna".into()),
        merchant_name: "Tea & Cake".into(),
        brand: Default::default(),
        tracking_number: "00340434161094042557".into(),
        carrier_name: "DHL".into(),
        order_reference: Some("1234".into()),
        tracking_page_url: TRACKING_PAGE.into(),
        carrier_tracking_url: "https://www.dhl.de/de/privatkunden/dhl-sendungsverfolgung.html?piececode=00340434161094042557".into(),
        unsubscribe_url: UNSUBSCRIBE.into(),
        delivery_changes: Vec::new(),
        pickup_point: None,
        facts: facts(Status::InTransit, None, None),
        time_zone: TimeZoneName::parse(zone).expect("a test zone"),
        reason: String::new(),
    };
    let leipzig = Some("Leipzig, DE");
    match trigger {
        Trigger::Shipped => {
            ctx.facts = facts(
                Status::InTransit,
                None,
                scan(
                    "2026-03-02T16:40:00Z",
                    leipzig,
                    "The shipment has been processed in the parcel center",
                ),
            );
            ctx.facts.estimate = window(date(2026, 3, 5), date(2026, 3, 6));
        }
        Trigger::CustomsHold => {
            ctx.facts = facts(
                Status::Exception,
                Some(Reason::CustomsHeld),
                scan(
                    "2026-03-03T09:15:00Z",
                    Some("Frankfurt, DE"),
                    "Shipment held by customs",
                ),
            );
        }
        Trigger::DutiesDue => {
            ctx.facts = facts(
                Status::Exception,
                Some(Reason::DutiesDue),
                scan(
                    "2026-03-03T11:05:00Z",
                    Some("Frankfurt, DE"),
                    "Import duties of EUR 12.40 are due",
                ),
            );
        }
        Trigger::Delayed => {
            ctx.facts = facts(
                Status::InTransit,
                Some(Reason::WeatherDelay),
                scan(
                    "2026-03-04T06:20:00Z",
                    leipzig,
                    "Delay due to weather conditions",
                ),
            );
            ctx.facts.previous_estimate = window(date(2026, 3, 5), date(2026, 3, 5));
            ctx.facts.estimate = window(date(2026, 3, 9), date(2026, 3, 10));
            ctx.facts.delay_cause = Some(DelayCause::EstimateSlipped);
        }
        Trigger::Stalled => {
            ctx.facts = facts(
                Status::InTransit,
                None,
                scan(
                    "2026-03-02T16:40:00Z",
                    leipzig,
                    "The shipment has been loaded onto the delivery vehicle",
                ),
            );
            ctx.facts.quiet_business_hours = Some(52);
        }
        Trigger::OutForDelivery => {
            ctx.facts = facts(
                Status::OutForDelivery,
                None,
                scan(
                    "2026-03-05T06:12:00Z",
                    leipzig,
                    "The shipment has been loaded onto the delivery vehicle",
                ),
            );
            ctx.delivery_changes = changes();
        }
        Trigger::AttemptFailed => {
            ctx.facts = facts(
                Status::AttemptFailed,
                Some(Reason::RecipientUnavailable),
                scan(
                    "2026-03-05T13:02:00Z",
                    leipzig,
                    "The recipient was not present",
                ),
            );
            ctx.delivery_changes = changes();
        }
        Trigger::AvailableForPickup => {
            ctx.facts = facts(
                Status::AvailableForPickup,
                None,
                scan(
                    "2026-03-05T15:30:00Z",
                    leipzig,
                    "The shipment is ready for pick-up at the retail outlet",
                ),
            );
            ctx.pickup_point = kiosk();
        }
        Trigger::PickupReminder => {
            ctx.facts = facts(
                Status::AvailableForPickup,
                None,
                scan(
                    "2026-03-05T15:30:00Z",
                    leipzig,
                    "The shipment is ready for pick-up at the retail outlet",
                ),
            );
            ctx.facts.waiting_since = Some(at("2026-03-05T15:30:00Z"));
            ctx.pickup_point = kiosk();
        }
        Trigger::Delivered => {
            ctx.facts = facts(
                Status::Delivered,
                Some(Reason::DeliveredToNeighbour),
                scan(
                    "2026-03-05T13:02:00Z",
                    leipzig,
                    "Delivered to neighbour: Schmidt, Lindenstr. 12",
                ),
            );
        }
        Trigger::Exception => {
            ctx.facts = facts(
                Status::Exception,
                Some(Reason::Lost),
                scan(
                    "2026-03-06T10:00:00Z",
                    None,
                    "The shipment could not be located",
                ),
            );
        }
        Trigger::ReturningToSender => {
            ctx.facts = facts(
                Status::Exception,
                Some(Reason::ReturningToSender),
                scan(
                    "2026-03-14T08:00:00Z",
                    leipzig,
                    "The shipment is being returned to the sender",
                ),
            );
        }
        Trigger::DeliveryCode | Trigger::DeliveryChanged => {
            ctx.facts.delivery_change = Some(crate::domain::detect::DeliveryChangeFacts {
                details: crate::domain::ChangeDetails::AnotherDay {
                    date: date(2026, 3, 9),
                },
                state: if trigger == Trigger::DeliveryCode {
                    crate::domain::ChangeState::CodeSent
                } else {
                    crate::domain::ChangeState::Executed
                },
                code: (trigger == Trigger::DeliveryCode).then(|| "042917".into()),
                code_valid_minutes: Some(10),
                note: None,
            });
        }
    }
    ctx
}

fn render_with(templates: &Templates, ctx: &MessageContext) -> RenderedEmail {
    templates
        .render_email(ctx)
        .unwrap_or_else(|e| panic!("{} in {}: {e}", ctx.trigger, ctx.language.as_str()))
}

/// The text and HTML parts, for checks that hold for both.
fn bodies(email: &RenderedEmail) -> [(&'static str, &str); 2] {
    [("text", &email.text), ("html", &email.html)]
}

#[test]
fn every_email_renders_in_every_language_with_its_links() {
    let templates = Templates::embedded();
    for language in Language::ALL {
        for trigger in Trigger::ALL {
            let ctx = context(trigger, language);
            let email = render_with(&templates, &ctx);
            let case = format!("{trigger} in {}", language.as_str());
            assert!(!email.subject.is_empty(), "{case}: empty subject");
            assert!(!email.subject.contains('\n'), "{case}: {:?}", email.subject);
            assert_eq!(email.subject, email.subject.trim(), "{case}");
            assert!(email.subject.contains("1234"), "{case}: {}", email.subject);
            for (part, body) in bodies(&email) {
                assert!(
                    body.contains(TRACKING_PAGE),
                    "{case}: {part} lacks the tracking page"
                );
                assert!(
                    body.contains(UNSUBSCRIBE),
                    "{case}: {part} lacks the unsubscribe link"
                );
                assert!(body.contains("00340434161094042557"), "{case}: {part}");
            }
            let lang = format!(r#"<html lang="{}">"#, language.as_str());
            assert!(email.html.contains(&lang), "{case}: no {lang}");
            assert!(email.html.starts_with("<!DOCTYPE html>"), "{case}");
            assert!(
                email.html.contains(&format!(
                    "<title>{}</title>",
                    email.subject.replace('&', "&amp;").replace('\'', "&#39;")
                )),
                "{case}"
            );
            for banned in ["<script", "<img", "<link", "http://"] {
                assert!(!email.html.contains(banned), "{case}: html has {banned}");
            }
            assert!(
                email.text.ends_with('\n') && !email.text.ends_with("\n\n"),
                "{case}"
            );
            assert!(!email.text.contains("\n\n\n"), "{case}: stray blank lines");
            assert!(
                email.text.lines().all(|l| l == l.trim_end()),
                "{case}: trailing spaces"
            );
        }
    }
}

#[test]
fn german_and_polish_emails_are_written_in_their_language() {
    let templates = Templates::embedded();
    for trigger in Trigger::ALL {
        let de = render_with(&templates, &context(trigger, Language::De));
        let pl = render_with(&templates, &context(trigger, Language::Pl));
        for (part, body) in bodies(&de) {
            assert!(
                body.contains("Sie erhalten"),
                "{trigger} de {part}:\n{body}"
            );
            assert!(body.contains("Ihr"), "{trigger} de {part}");
            assert!(!body.contains("You're"), "{trigger} de {part} has English");
        }
        assert!(
            de.subject.contains("Ihre Bestellung"),
            "{trigger}: {}",
            de.subject
        );
        for (part, body) in bodies(&pl) {
            assert!(body.contains("Dostajesz"), "{trigger} pl {part}:\n{body}");
            assert!(body.contains("paczk"), "{trigger} pl {part}");
            assert!(
                body.contains("ę") || body.contains("ą"),
                "{trigger} pl {part}: no diacritics"
            );
            assert!(!body.contains("You're"), "{trigger} pl {part} has English");
        }
        assert!(pl.subject.contains("amówieni"), "{trigger}: {}", pl.subject);
    }
}

#[test]
fn subjects_name_the_order_or_else_the_merchant() {
    let templates = Templates::embedded();
    let mut ctx = context(Trigger::OutForDelivery, Language::En);
    assert_eq!(
        render_with(&templates, &ctx).subject,
        "Your order 1234 is out for delivery"
    );
    ctx.order_reference = None;
    assert_eq!(
        render_with(&templates, &ctx).subject,
        "Your Tea & Cake order is out for delivery"
    );
    let mut ctx = context(Trigger::Delivered, Language::De);
    assert_eq!(
        render_with(&templates, &ctx).subject,
        "Ihre Bestellung 1234 wurde bei einem Nachbarn abgegeben"
    );
    ctx.order_reference = None;
    ctx.facts.reason = None;
    assert_eq!(
        render_with(&templates, &ctx).subject,
        "Ihre Bestellung bei Tea & Cake wurde zugestellt"
    );
    let ctx = context(Trigger::AvailableForPickup, Language::Pl);
    assert_eq!(
        render_with(&templates, &ctx).subject,
        "Zamówienie 1234: paczka czeka w punkcie odbioru"
    );
}

#[test]
fn html_escapes_the_customer_name_and_text_keeps_it() {
    let templates = Templates::embedded();
    for language in [Language::En, Language::De] {
        let mut ctx = context(Trigger::Shipped, language);
        ctx.customer_name = Some("<b>Eve</b>".into());
        let email = render_with(&templates, &ctx);
        assert!(
            email.html.contains("&lt;b&gt;Eve&lt;/b&gt;"),
            "{}",
            email.html
        );
        assert!(!email.html.contains("<b>Eve</b>"));
        assert!(email.text.contains("<b>Eve</b>"), "{}", email.text);
    }
}

#[test]
fn text_part_keeps_an_ampersand_that_html_escapes() {
    let templates = Templates::embedded();
    for language in Language::ALL {
        let email = render_with(&templates, &context(Trigger::Delivered, language));
        assert!(email.text.contains("Tea & Cake"), "{}", email.text);
        assert!(!email.text.contains("&amp;"));
        assert!(email.subject.contains('&') || !email.subject.contains("Tea"));
        assert!(email.html.contains("Tea &amp; Cake"));
        assert!(!email.html.contains("Tea & Cake"));
    }
}

#[test]
fn scan_times_are_in_the_customers_zone_and_language() {
    let templates = Templates::embedded();
    // The scan happened at 16:40 UTC on Monday 2 March 2026.
    let cases = [
        (Language::En, "Monday, 2 March at 16:40", "5–6 March"),
        (Language::De, "Montag, 2. März um 17:40", "5.–6. März"),
        (Language::Pl, "poniedziałek, 2 marca, 17:40", "5–6 marca"),
    ];
    for (language, scanned, window) in cases {
        let email = render_with(&templates, &context(Trigger::Shipped, language));
        for (part, body) in bodies(&email) {
            assert!(body.contains(scanned), "{part}: no {scanned:?} in\n{body}");
            assert!(body.contains(window), "{part}: no {window:?} in\n{body}");
            assert!(body.contains("Leipzig, DE"), "{part}: the scan's place");
        }
    }
    // The same instant, seen from New York, is still the afternoon before.
    let mut ctx = context(Trigger::Shipped, Language::En);
    ctx.time_zone = TimeZoneName::parse("America/New_York").unwrap();
    assert!(
        render_with(&templates, &ctx)
            .text
            .contains("Monday, 2 March at 11:40")
    );
}

#[test]
fn delayed_explains_each_cause_with_both_dates() {
    let templates = Templates::embedded();
    let on = |d| Some(DeliveryWindow::on(d));

    let slipped = render_with(&templates, &context(Trigger::Delayed, Language::En));
    assert!(
        slipped.text.contains("Expected before: Thursday, 5 March"),
        "{}",
        slipped.text
    );
    assert!(slipped.text.contains("Expected now: 9–10 March"));
    assert!(slipped.text.contains("bad weather"));

    let mut ctx = context(Trigger::Delayed, Language::De);
    ctx.facts.delay_cause = Some(DelayCause::EstimatePastPromise);
    ctx.facts.promise = on(date(2026, 3, 6));
    ctx.facts.reason = None;
    let past_promise = render_with(&templates, &ctx);
    assert!(
        past_promise.text.contains("Zugesagt: Freitag, 6. März"),
        "{}",
        past_promise.text
    );
    assert!(past_promise.text.contains("Jetzt erwartet: 9.–10. März"));
    assert!(!past_promise.text.contains("Wetter"));

    let mut ctx = context(Trigger::Delayed, Language::Pl);
    ctx.facts.delay_cause = Some(DelayCause::PromiseMissed);
    ctx.facts.promise = on(date(2026, 3, 6));
    ctx.facts.estimate = None;
    let missed = render_with(&templates, &ctx);
    assert!(
        missed.text.contains("minął obiecany termin"),
        "{}",
        missed.text
    );
    assert!(missed.text.contains("Obiecany termin: piątek, 6 marca"));
    assert!(!missed.text.contains("Nowy termin"));
    for email in [&slipped, &past_promise, &missed] {
        assert!(
            email.text.contains("Tea & Cake"),
            "contact the merchant if urgent"
        );
    }
}

#[test]
fn stalled_says_how_many_working_hours_have_passed() {
    let templates = Templates::embedded();
    let cases = [
        (Language::En, 52, "52 hours"),
        (Language::De, 52, "seit 52 Stunden"),
        (Language::Pl, 52, "od 52 godzin"),
        (Language::En, 1, "1 hour,"),
        (Language::Pl, 1, "od 1 godziny"),
    ];
    for (language, hours, expected) in cases {
        let mut ctx = context(Trigger::Stalled, language);
        ctx.facts.quiet_business_hours = Some(hours);
        let email = render_with(&templates, &ctx);
        for (part, body) in bodies(&email) {
            assert!(
                body.contains(expected),
                "{part}: no {expected:?} in\n{body}"
            );
        }
    }
}

#[test]
fn attempt_failed_offers_every_delivery_change() {
    let templates = Templates::embedded();
    let labels = [
        (
            Language::En,
            [
                "Deliver on another day",
                "Leave it with a neighbour",
                "Send it to a pickup point",
                "Leave it in a safe place",
            ],
        ),
        (
            Language::De,
            [
                "An einem anderen Tag zustellen",
                "Bei einem Nachbarn abgeben",
                "An eine Abholstelle umleiten",
                "An einem Ablageort abstellen",
            ],
        ),
        (
            Language::Pl,
            [
                "Doręcz w innym dniu",
                "Zostaw u sąsiada",
                "Przekieruj do punktu odbioru",
                "Zostaw w bezpiecznym miejscu",
            ],
        ),
    ];
    for (language, labels) in labels {
        let ctx = context(Trigger::AttemptFailed, language);
        let email = render_with(&templates, &ctx);
        for link in &ctx.delivery_changes {
            assert!(email.text.contains(&link.url), "{}", email.text);
            assert!(
                email.html.contains(&format!(r#"href="{}""#, link.url)),
                "{}",
                email.html
            );
        }
        for label in labels {
            assert!(
                email.text.contains(label) && email.html.contains(label),
                "{label}"
            );
        }
        // Without links, the customer still learns what happens next.
        let mut ctx = ctx.clone();
        ctx.delivery_changes.clear();
        let email = render_with(&templates, &ctx);
        assert!(!email.text.contains("/change/"));
        assert!(email.text.contains("DHL"));
    }
}

#[test]
fn the_carriers_own_change_link_reads_as_change_the_delivery() {
    let templates = Templates::embedded();
    for (language, label) in [
        (Language::En, "Change the delivery"),
        (Language::De, "Zustellung ändern"),
        (Language::Pl, "Zmień sposób doręczenia"),
    ] {
        let mut ctx = context(Trigger::AttemptFailed, language);
        ctx.delivery_changes = vec![DeliveryChangeLink {
            kind: "carrier".into(),
            url: "https://www.dhl.de/reroute?id=00340434161094042557".into(),
        }];
        let email = render_with(&templates, &ctx);
        assert!(email.text.contains(label), "{}", email.text);
        assert!(
            email
                .text
                .contains("https://www.dhl.de/reroute?id=00340434161094042557")
        );
        assert!(email.html.contains(label), "{}", email.html);
    }
}

#[test]
fn pickup_emails_show_the_point_and_the_last_day() {
    let templates = Templates::embedded();
    let cases = [
        (Language::En, "Collect by: Friday, 13 March"),
        (Language::De, "Abholen bis: Freitag, 13. März"),
        (Language::Pl, "Ostatni dzień odbioru: piątek, 13 marca"),
    ];
    for trigger in [Trigger::AvailableForPickup, Trigger::PickupReminder] {
        for (language, last_day) in cases {
            let email = render_with(&templates, &context(trigger, language));
            for (part, body) in bodies(&email) {
                assert!(body.contains("Kiosk am Markt"), "{trigger} {part}");
                assert!(
                    body.contains("Marktplatz 3, 04109 Leipzig"),
                    "{trigger} {part}"
                );
            }
            assert!(email.text.contains(last_day), "{trigger}: {}", email.text);
        }
    }
    let reminder = render_with(&templates, &context(Trigger::PickupReminder, Language::En));
    assert!(
        reminder
            .text
            .contains("where it arrived on Thursday, 5 March")
    );
}

#[test]
fn delivered_says_where_the_parcel_was_left() {
    let templates = Templates::embedded();
    let neighbour = render_with(&templates, &context(Trigger::Delivered, Language::En));
    assert!(neighbour.text.contains("delivered to a neighbour"));
    assert!(
        neighbour
            .text
            .contains("Delivered to neighbour: Schmidt, Lindenstr. 12")
    );

    let mut ctx = context(Trigger::Delivered, Language::De);
    ctx.facts.signed_by = Some("K. Schmidt".into());
    let signed = render_with(&templates, &ctx);
    assert!(
        signed.text.contains("Angenommen von: K. Schmidt"),
        "{}",
        signed.text
    );

    let mut ctx = context(Trigger::Delivered, Language::Pl);
    ctx.facts.reason = Some(Reason::DeliveredToSafePlace);
    let safe_place = render_with(&templates, &ctx);
    assert!(
        safe_place.subject.contains("w bezpiecznym miejscu"),
        "{}",
        safe_place.subject
    );
    assert!(safe_place.text.contains("Zajrzyj w bezpieczne miejsce"));
}

#[test]
fn exceptions_say_who_acts_next() {
    let templates = Templates::embedded();
    let lost = render_with(&templates, &context(Trigger::Exception, Language::En));
    assert!(lost.subject.contains("as lost"), "{}", lost.subject);
    assert!(lost.text.contains("will be in touch"));

    let mut ctx = context(Trigger::Exception, Language::De);
    ctx.facts.reason = Some(Reason::AddressIssue);
    ctx.delivery_changes = changes();
    let address = render_with(&templates, &ctx);
    assert!(
        address.subject.starts_with("Adressproblem"),
        "{}",
        address.subject
    );
    assert!(address.text.contains("Adresse zu bestätigen"));
    assert!(address.text.contains("/change/pickup_point"));

    let back = render_with(
        &templates,
        &context(Trigger::ReturningToSender, Language::Pl),
    );
    assert!(
        back.text.contains("zwrot pieniędzy albo ponowną wysyłkę"),
        "{}",
        back.text
    );
}

#[test]
fn a_bare_context_renders_every_email() {
    // Nothing optional known: no scan, no estimate, no name, no order number, no carrier
    // page. Strict templates must still render instead of failing on a missing value.
    let templates = Templates::embedded();
    for language in Language::ALL {
        for trigger in Trigger::ALL {
            let mut ctx = context(trigger, language);
            ctx.customer_name = None;
            ctx.order_reference = None;
            ctx.carrier_tracking_url = String::new();
            ctx.delivery_changes.clear();
            ctx.pickup_point = None;
            // A delivery change's messages always carry the change.
            let change = ctx.facts.delivery_change.take();
            ctx.facts = facts(ctx.facts.status, None, None);
            ctx.facts.delivery_change = change;
            let email = render_with(&templates, &ctx);
            assert!(
                email.subject.contains("Tea & Cake"),
                "{trigger}: {}",
                email.subject
            );
            assert!(!email.html.contains(r#"href="""#), "{trigger}: empty link");
        }
    }
}

fn override_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, source) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, source).unwrap();
    }
    dir
}

#[test]
fn an_override_replaces_one_template_and_the_rest_stay_embedded() {
    let dir = override_dir(&[
        (
            "email/en/delivered.subject.txt",
            "Delivered: {{ tracking_number }}\n\n",
        ),
        ("email/en/notes.md", "not a template {{"),
    ]);
    let templates = Templates::load(Some(dir.path())).expect("overrides load");
    let email = render_with(&templates, &context(Trigger::Delivered, Language::En));
    assert_eq!(email.subject, "Delivered: 00340434161094042557");
    assert!(
        email.text.contains("delivered to a neighbour"),
        "embedded body kept"
    );
    let shipped = render_with(&templates, &context(Trigger::Shipped, Language::En));
    assert_eq!(shipped.subject, "Your order 1234 is on its way");
    let german = render_with(&templates, &context(Trigger::Delivered, Language::De));
    assert!(german.subject.starts_with("Ihre Bestellung 1234"));
}

#[test]
fn a_missing_variable_in_an_override_names_the_template() {
    let dir = override_dir(&[(
        "email/de/delivered.txt",
        "{% extends \"email/de/_layout.txt\" %}{% block what %}Farbe: {{ parcel_colour }}{% endblock %}",
    )]);
    let templates = Templates::load(Some(dir.path())).expect("it compiles");
    let err = templates
        .render_email(&context(Trigger::Delivered, Language::De))
        .expect_err("an undefined variable must not render");
    assert!(
        matches!(&err, RenderError::Template { template, .. } if template == "email/de/delivered.txt"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("email/de/delivered.txt"), "{message}");
    assert!(message.contains("undefined"), "{message}");
}

#[test]
fn an_override_that_does_not_compile_stops_the_load() {
    let dir = override_dir(&[("email/pl/shipped.html", "{% if %}")]);
    let err = Templates::load(Some(dir.path())).expect_err("a syntax error");
    assert!(err.to_string().contains("email/pl/shipped.html"), "{err}");
    let err = Templates::load(Some(Path::new("/nonexistent/waymark-templates")))
        .expect_err("a missing directory");
    assert!(matches!(err, RenderError::Override { .. }), "{err:?}");
}

#[test]
fn a_language_missing_a_template_falls_back_to_english() {
    let mut templates = Templates::embedded();
    Arc::get_mut(&mut templates.env)
        .expect("not shared yet")
        .remove_template("email/pl/delivered.html");
    let email = render_with(&templates, &context(Trigger::Delivered, Language::Pl));
    assert_eq!(email.subject, "Your order 1234 was left with a neighbour");
    assert!(email.html.contains(r#"<html lang="en">"#));
    // Dates follow the language the email is written in, times the customer's zone.
    assert!(
        email.text.contains("Delivered: Thursday, 5 March at 14:02"),
        "{}",
        email.text
    );
    // Other Polish emails are untouched.
    let shipped = render_with(&templates, &context(Trigger::Shipped, Language::Pl));
    assert!(shipped.subject.starts_with("Zamówienie 1234"));

    Arc::get_mut(&mut templates.env)
        .unwrap()
        .remove_template("email/en/delivered.html");
    let err = templates
        .render_email(&context(Trigger::Delivered, Language::Pl))
        .expect_err("nothing to fall back to");
    assert!(matches!(err, RenderError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains("email/pl/delivered.html"), "{err}");
}

#[test]
fn filters_format_dates_times_and_windows_in_each_language() {
    let env = environment();
    let render = |language: &str, zone: &str, source: &str, value: Value| {
        env.render_str(
            source,
            context! { language => language, time_zone => zone, x => value },
        )
    };
    let window = Value::from_serialize(window(date(2026, 3, 5), date(2026, 3, 7)));
    let cases = [
        (
            "en",
            "5–7 March",
            "Thursday, 5 March",
            "Thursday, 5 March at 14:02",
        ),
        (
            "de",
            "5.–7. März",
            "Donnerstag, 5. März",
            "Donnerstag, 5. März um 14:02",
        ),
        (
            "pl",
            "5–7 marca",
            "czwartek, 5 marca",
            "czwartek, 5 marca, 14:02",
        ),
    ];
    for (language, range, day, day_time) in cases {
        let zone = "Europe/Berlin";
        assert_eq!(
            render(language, zone, "{{ x | date }}", window.clone()).unwrap(),
            range
        );
        assert_eq!(
            render(language, zone, "{{ x | date }}", Value::from("2026-03-05")).unwrap(),
            day
        );
        let at = Value::from("2026-03-05T13:02:00Z");
        assert_eq!(
            render(language, zone, "{{ x | datetime }}", at.clone()).unwrap(),
            day_time
        );
        assert_eq!(
            render(language, zone, "{{ x | date }}", at.clone()).unwrap(),
            day
        );
        assert_eq!(
            render(language, zone, "{{ x | time }}", at).unwrap(),
            "14:02"
        );
    }
    let err = render("en", "Europe/Berlin", "{{ x | date }}", Value::from(()))
        .expect_err("none is not a date");
    assert!(err.to_string().contains("`date` needs"), "{err}");
    let plural = |n: i64| {
        render(
            "pl",
            "Europe/Warsaw",
            "{{ x }} {{ x | plural('godzina', 'godziny', 'godzin') }}",
            Value::from(n),
        )
        .unwrap()
    };
    assert_eq!(plural(1), "1 godzina");
    assert_eq!(plural(3), "3 godziny");
    assert_eq!(plural(12), "12 godzin");
    let err = render(
        "pl",
        "Europe/Warsaw",
        "{{ x | plural('a') }}",
        Value::from(5),
    )
    .expect_err("one form is not enough");
    assert!(err.to_string().contains("`plural` takes"), "{err}");
}

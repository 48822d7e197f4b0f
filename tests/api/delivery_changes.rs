//! Delivery changes over a real socket: the tracking page offers them once unlocked, a one-time
//! code goes to the customer's email at the real SMTP server, and every state a request can
//! reach is reached the way a customer or a merchant would reach it.

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;
use waymark::carriers::sandbox::Scenario;
use waymark::domain::{
    ChangeState, DeliveryChangePolicy, MerchantId, MerchantSettings, Money, Reason, Shipment,
    Status,
};
use waymark::links::LinkPurpose;

use crate::helpers::{Email, TestApp, code_in, key_for, sandbox_shipment, serve_http, spawn_app};

/// A customer's browser on the tracking page of one shipment.
struct Visitor {
    client: reqwest::Client,
    base: String,
    /// `/t/{token}`.
    page: String,
    cookie: String,
}

impl Visitor {
    /// Open the page and unlock it with the postal code.
    async fn unlock(base: &str, app: &TestApp, shipment: &Shipment) -> anyhow::Result<Visitor> {
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()?;
        let page = format!(
            "/t/{}",
            app.waymark.links.token(LinkPurpose::Tracking, shipment.id)
        );
        let locked = client
            .get(format!("{base}{page}"))
            .send()
            .await?
            .text()
            .await?;
        assert!(
            !locked.contains("name=\"neighbour_name\""),
            "no form before the gate"
        );
        let unlocked = client
            .post(format!("{base}{page}"))
            .form(&[("postal_code", "10115"), ("form", &form_of(&locked))])
            .send()
            .await?;
        assert_eq!(unlocked.status(), StatusCode::SEE_OTHER);
        let cookie = unlocked
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap_or_default()
            .to_owned();
        Ok(Visitor {
            client,
            base: base.to_owned(),
            page,
            cookie,
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, String)> {
        let answer = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await?;
        Ok((answer.status(), answer.text().await?))
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(fields)
            .send()
            .await?)
    }

    /// Ask for a neighbour delivery; the request's page.
    async fn ask_for_neighbour(&self) -> anyhow::Result<reqwest::Response> {
        let (_, html) = self.get(&self.page).await?;
        self.post(
            &format!("{}/changes", self.page),
            &[
                ("kind", "neighbour"),
                ("neighbour_name", "Jan Kowalski"),
                ("house_number", "14"),
                ("form", &form_of(&html)),
            ],
        )
        .await
    }

    /// Send `code` on the request page at `path`.
    async fn enter(&self, path: &str, code: &str) -> anyhow::Result<reqwest::Response> {
        let (_, html) = self.get(path).await?;
        self.post(path, &[("code", code), ("form", &form_of(&html))])
            .await
    }
}

/// The stamp of the page's first form.
fn form_of(html: &str) -> String {
    html.split(r#"name="form" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

fn location(answer: &reqwest::Response) -> String {
    answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A code that is not `right`.
pub(crate) fn wrong(right: &str) -> String {
    format!("{:06}", (right.parse::<u32>().unwrap_or(0) + 1) % 1_000_000)
}

/// An on-time sandbox parcel to Berlin 10115, polled until it is on its way.
pub(crate) async fn moving_parcel(app: &TestApp, seq: u32) -> anyhow::Result<Shipment> {
    let mut input = sandbox_shipment(
        Scenario::OnTime,
        seq,
        "lena.vogel@example.de",
        "Lena Vogel",
        "en",
        "DE",
    );
    input.destination_postal_code = Some("10115".into());
    input.order_value = Some("120.00".into());
    input.order_currency = Some("EUR".into());
    let shipment = app.register(&input).await?;
    let store = app.waymark.store.clone();
    app.drive_until("the parcel to be on its way", async |_| {
        let s = store.shipment(shipment.id).await?.expect("stored");
        Ok(s.journey.status == Status::InTransit)
    })
    .await?;
    app.shipment(shipment.id).await
}

async fn change_state(app: &TestApp, shipment: &Shipment) -> anyhow::Result<ChangeState> {
    let changes = app.store().shipment_delivery_changes(shipment.id).await?;
    Ok(changes.first().expect("a request").state)
}

#[tokio::test]
async fn a_verified_neighbour_change_is_carried_out_and_the_parcel_ends_with_the_neighbour()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let shipment = moving_parcel(&app, 1).await?;
    let (base, stop, server) = serve_http(&app).await?;
    let visitor = Visitor::unlock(&base, &app, &shipment).await?;

    // Offered: every change the sandbox takes, with the next delivery days.
    let (_, page) = visitor.get(&visitor.page).await?;
    for offered in [
        r#"value="another_day""#,
        r#"name="neighbour_name""#,
        r#"name="pickup_point""#,
        r#"name="safe_place""#,
    ] {
        assert!(page.contains(offered), "{offered} missing:\n{page}");
    }

    // Code sent, to the email on file.
    let asked = visitor.ask_for_neighbour().await?;
    assert_eq!(asked.status(), StatusCode::SEE_OTHER);
    let request_page = location(&asked);
    assert!(request_page.starts_with(&format!("{}/changes/", visitor.page)));
    assert_eq!(change_state(&app, &shipment).await?, ChangeState::CodeSent);
    let emails = app.smtp.emails()?;
    let code = code_in(&emails);
    let code_email = emails
        .iter()
        .find(|e| e.trigger() == "delivery_code")
        .unwrap();
    assert_eq!(code_email.to(), ["lena.vogel@example.de"]);
    assert!(
        code_email.text().contains("Jan Kowalski"),
        "{}",
        code_email.text()
    );
    let (_, waiting) = visitor.get(&request_page).await?;
    assert!(waiting.contains("l…@example.de"), "{waiting}");
    assert!(!waiting.contains(&code), "the page never shows the code");
    let stored = app.store().shipment_delivery_changes(shipment.id).await?;
    assert!(
        stored[0]
            .code_hash
            .as_deref()
            .is_some_and(|h| !h.contains(&code)),
        "the code is stored as its MAC"
    );

    // A wrong code says how many tries are left.
    let wrong_try = visitor.enter(&request_page, &wrong(&code)).await?;
    assert_eq!(wrong_try.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong_try.text().await?.contains("Tries left: 4"));

    // Verified and executed: the sandbox has the instruction.
    let right = visitor.enter(&request_page, &code).await?;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(change_state(&app, &shipment).await?, ChangeState::Executed);
    let (_, done) = visitor.get(&request_page).await?;
    assert!(
        done.contains("the carrier has your new instruction"),
        "{done}"
    );
    let (_, tracking) = visitor.get(&visitor.page).await?;
    assert!(tracking.contains("Your delivery changes"), "{tracking}");

    // The audit trail says what, when and how it was verified.
    let key = key_for(&app, MerchantId::DEFAULT).await?;
    let id = stored[0].id;
    let view: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/delivery-changes/{id}"))
        .bearer_auth(&key)
        .send()
        .await?
        .json()
        .await?;
    let notes: Vec<&str> = view["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["note"].as_str().unwrap())
        .collect();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(notes[0].contains("code sent by email"), "{notes:?}");
    assert!(notes[1].contains("wrong code (1 of 5)"), "{notes:?}");
    assert!(notes[2].contains("code verified by email") && notes[2].contains("Sandbox"));
    assert!(view.get("code_hash").is_none());

    // The sandbox's later scans follow it, and the customer is told.
    app.run_until_done().await?;
    let ended = app.shipment(shipment.id).await?;
    assert_eq!(ended.journey.status, Status::Delivered);
    assert_eq!(ended.journey.reason, Some(Reason::DeliveredToNeighbour));
    let triggers: Vec<String> = app.smtp.emails()?.iter().map(Email::trigger).collect();
    assert!(
        triggers.contains(&"delivery_changed".to_owned()),
        "{triggers:?}"
    );
    let confirmation = app
        .smtp
        .emails()?
        .into_iter()
        .find(|e| e.trigger() == "delivery_changed")
        .unwrap();
    assert!(
        confirmation.subject().contains("delivery change confirmed"),
        "{}",
        confirmation.subject()
    );
    let delivered = app
        .smtp
        .emails()?
        .into_iter()
        .find(|e| e.trigger() == "delivered")
        .expect("the delivery email");
    assert!(
        delivered.text().contains("Jan Kowalski"),
        "{}",
        delivered.text()
    );

    stop.cancel();
    server.await??;
    Ok(())
}

#[tokio::test]
async fn five_wrong_codes_lock_the_request_and_an_old_code_expires() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let shipment = moving_parcel(&app, 2).await?;
    let (base, stop, server) = serve_http(&app).await?;
    let visitor = Visitor::unlock(&base, &app, &shipment).await?;

    let request_page = location(&visitor.ask_for_neighbour().await?);
    let code = code_in(&app.smtp.emails()?);
    for _ in 0..4 {
        let answer = visitor.enter(&request_page, &wrong(&code)).await?;
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let fifth = visitor.enter(&request_page, &wrong(&code)).await?;
    assert_eq!(fifth.status(), StatusCode::SEE_OTHER);
    assert_eq!(change_state(&app, &shipment).await?, ChangeState::Locked);
    // Even the right code does nothing now.
    visitor.enter(&request_page, &code).await?;
    assert_eq!(change_state(&app, &shipment).await?, ChangeState::Locked);
    let (_, page) = visitor.get(&request_page).await?;
    assert!(page.contains("Locked after too many wrong codes"), "{page}");
    assert!(!page.contains(r#"name="code""#));

    // A new request, its code given eleven minutes late.
    let second = location(&visitor.ask_for_neighbour().await?);
    let code = code_in(&app.smtp.emails()?);
    app.waymark
        .clock
        .advance_to(app.now() + jiff::SignedDuration::from_mins(11));
    visitor.enter(&second, &code).await?;
    assert_eq!(change_state(&app, &shipment).await?, ChangeState::Expired);

    stop.cancel();
    server.await??;
    Ok(())
}

#[tokio::test]
async fn forms_need_the_unlocked_page_and_its_stamp_and_codes_are_rate_limited()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let shipment = moving_parcel(&app, 3).await?;
    let (base, stop, server) = serve_http(&app).await?;
    let visitor = Visitor::unlock(&base, &app, &shipment).await?;
    let (_, page) = visitor.get(&visitor.page).await?;
    let stamp = form_of(&page);
    let fields = [
        ("kind", "neighbour"),
        ("neighbour_name", "Jan"),
        ("house_number", "1"),
    ];

    // CSRF: another site's form has no stamp of this page.
    let forged = visitor
        .post(
            &format!("{}/changes", visitor.page),
            &[fields[0], fields[1], fields[2], ("form", "1.forged")],
        )
        .await?;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // Without the unlock cookie, a stamp alone does nothing.
    let no_cookie = reqwest::Client::new()
        .post(format!("{base}{}/changes", visitor.page))
        .form(&[fields[0], fields[1], fields[2], ("form", &stamp)])
        .send()
        .await?;
    assert_eq!(no_cookie.status(), StatusCode::FORBIDDEN);
    // A field left out is named.
    let unnamed = visitor
        .post(
            &format!("{}/changes", visitor.page),
            &[
                ("kind", "neighbour"),
                ("house_number", "1"),
                ("form", &stamp),
            ],
        )
        .await?;
    assert_eq!(unnamed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unnamed
            .text()
            .await?
            .contains("Please check: Neighbour&#39;s name"),
        "the page names the field in the customer's words"
    );
    assert!(
        app.store()
            .shipment_delivery_changes(shipment.id)
            .await?
            .is_empty()
    );

    // Three codes an hour per shipment; the fourth waits.
    for _ in 0..3 {
        assert_eq!(
            visitor.ask_for_neighbour().await?.status(),
            StatusCode::SEE_OTHER
        );
    }
    let fourth = visitor.ask_for_neighbour().await?;
    assert_eq!(fourth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(fourth.headers().contains_key("retry-after"));
    let codes = app
        .smtp
        .emails()?
        .iter()
        .filter(|e| e.trigger() == "delivery_code")
        .count();
    assert_eq!(codes, 3);

    stop.cancel();
    server.await??;
    Ok(())
}

/// The default merchant's policy: neighbour or pickup-point changes of orders above 50 EUR
/// wait for its approval.
async fn approval_above_fifty_euros(app: &TestApp) -> anyhow::Result<()> {
    let settings = MerchantSettings {
        delivery_changes: DeliveryChangePolicy {
            approval_above_order_value: Some(Money::parse("approval", "50", "EUR")?),
            ..DeliveryChangePolicy::default()
        },
        ..MerchantSettings::default()
    };
    app.store()
        .save_merchant_settings(MerchantId::DEFAULT, &settings)
        .await?;
    Ok(())
}

#[tokio::test]
async fn risky_changes_wait_for_the_merchant_who_approves_or_rejects_them() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    approval_above_fifty_euros(&app).await?;
    let first = moving_parcel(&app, 4).await?;
    let second = moving_parcel(&app, 5).await?;
    let (base, stop, server) = serve_http(&app).await?;
    let key = key_for(&app, MerchantId::DEFAULT).await?;
    let api = reqwest::Client::new();

    for shipment in [&first, &second] {
        let visitor = Visitor::unlock(&base, &app, shipment).await?;
        let page = location(&visitor.ask_for_neighbour().await?);
        let code = code_in(&app.smtp.emails()?);
        visitor.enter(&page, &code).await?;
        assert_eq!(
            change_state(&app, shipment).await?,
            ChangeState::AwaitingApproval
        );
        let (_, html) = visitor.get(&page).await?;
        assert!(html.contains("waiting for the shop"), "{html}");
    }

    // The merchant lists what waits for it, with why.
    let waiting: Value = api
        .get(format!(
            "{base}/api/v1/delivery-changes?state=awaiting_approval"
        ))
        .bearer_auth(&key)
        .send()
        .await?
        .json()
        .await?;
    let waiting = waiting.as_array().unwrap().clone();
    assert_eq!(waiting.len(), 2);
    assert!(
        waiting[0]["approval_reason"]
            .as_str()
            .unwrap()
            .contains("120.00 EUR"),
        "{waiting:?}"
    );
    let id_of = |shipment: &Shipment| {
        waiting
            .iter()
            .find(|c| c["shipment_id"] == shipment.id.to_string())
            .and_then(|c| c["id"].as_str())
            .unwrap()
            .to_owned()
    };

    // Approved: carried out.
    let approved = api
        .post(format!(
            "{base}/api/v1/delivery-changes/{}/approve",
            id_of(&first)
        ))
        .bearer_auth(&key)
        .send()
        .await?;
    assert_eq!(approved.status(), StatusCode::OK);
    let approved: Value = approved.json().await?;
    assert_eq!(approved["state"], "executed");
    let steps: Vec<&str> = approved["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["code_sent", "awaiting_approval", "approved", "executed"]
    );
    // Approving twice is a conflict.
    let again = api
        .post(format!(
            "{base}/api/v1/delivery-changes/{}/approve",
            id_of(&first)
        ))
        .bearer_auth(&key)
        .send()
        .await?;
    assert_eq!(again.status(), StatusCode::CONFLICT);

    // Rejected, with a reason the customer reads.
    let rejected = api
        .post(format!(
            "{base}/api/v1/delivery-changes/{}/reject",
            id_of(&second)
        ))
        .bearer_auth(&key)
        .json(&serde_json::json!({"reason": "we only deliver to the address for this order"}))
        .send()
        .await?;
    assert_eq!(rejected.status(), StatusCode::OK);
    assert_eq!(change_state(&app, &second).await?, ChangeState::Rejected);

    app.run_until_done().await?;
    assert_eq!(
        app.shipment(first.id).await?.journey.reason,
        Some(Reason::DeliveredToNeighbour)
    );
    assert_ne!(
        app.shipment(second.id).await?.journey.reason,
        Some(Reason::DeliveredToNeighbour)
    );
    let told: Vec<Email> = app
        .smtp
        .emails()?
        .into_iter()
        .filter(|e| e.trigger() == "delivery_changed")
        .collect();
    assert_eq!(told.len(), 2);
    let rejection = told
        .iter()
        .find(|e| e.shipment_id() == second.id.to_string())
        .unwrap();
    assert!(
        rejection.subject().contains("not accepted"),
        "{}",
        rejection.subject()
    );
    assert!(rejection.text().contains("we only deliver to the address"));

    stop.cancel();
    server.await??;
    Ok(())
}

#[tokio::test]
async fn a_change_approved_after_the_van_left_is_refused_as_too_late() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    approval_above_fifty_euros(&app).await?;
    let shipment = moving_parcel(&app, 6).await?;
    let (base, stop, server) = serve_http(&app).await?;
    let visitor = Visitor::unlock(&base, &app, &shipment).await?;
    let page = location(&visitor.ask_for_neighbour().await?);
    visitor.enter(&page, &code_in(&app.smtp.emails()?)).await?;
    assert_eq!(
        change_state(&app, &shipment).await?,
        ChangeState::AwaitingApproval
    );

    // The merchant takes too long: the parcel goes out for delivery.
    let store = app.waymark.store.clone();
    app.drive_until("the van", async |_| {
        let s = store.shipment(shipment.id).await?.expect("stored");
        Ok(s.journey.status == Status::OutForDelivery)
    })
    .await?;
    // Nothing more is offered on the page, and the merchant's approval comes too late.
    let visitor = Visitor::unlock(&base, &app, &shipment).await?;
    let (_, html) = visitor.get(&visitor.page).await?;
    assert!(html.contains("already out for delivery"), "{html}");
    assert!(!html.contains(r#"name="neighbour_name""#));
    let key = key_for(&app, MerchantId::DEFAULT).await?;
    let id = app.store().shipment_delivery_changes(shipment.id).await?[0].id;
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/delivery-changes/{id}/approve"))
        .bearer_auth(&key)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(answer["state"], "refused", "{answer}");
    assert!(
        answer["outcome_note"]
            .as_str()
            .unwrap()
            .contains("out for delivery")
    );

    stop.cancel();
    server.await??;
    Ok(())
}

#[tokio::test]
async fn a_carrier_without_a_change_api_gets_the_change_through_the_merchant() -> anyhow::Result<()>
{
    use waymark::domain::Branding;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    // DHL in transit, in the shape of DHL's own example answer
    // (tests/fixtures/carriers/dhl/example_response.json) with a parcel's number and a scan of
    // an hour ago.
    let number = "00340434161094042557";
    let scanned = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let scan = serde_json::json!({
        "timestamp": scanned,
        "location": {"address": {"countryCode": "DE", "addressLocality": "Leipzig"}},
        "statusCode": "transit",
        "status": "The shipment has been processed in the parcel center",
        "description": "The shipment has been processed in the parcel center"
    });
    let answer = serde_json::json!({"shipments": [{
        "id": number,
        "service": "parcel-de",
        "status": scan,
        "rerouteUrl": format!("https://www.dhl.de/de/privatkunden.html?piececode={number}&verfuegen_selected_tab=FIRST"),
        "events": [scan]
    }]});
    let dhl = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/track/shipments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .mount(&dhl)
        .await;

    let app = spawn_app().await?;
    app.store()
        .save_merchant_settings(
            MerchantId::DEFAULT,
            &MerchantSettings {
                branding: Branding {
                    // The test server refuses it for now twice, then takes it.
                    support_email: Some("flaky-support@shop.test".into()),
                    ..Branding::default()
                },
                ..MerchantSettings::default()
            },
        )
        .await?;
    crate::helpers::dhl_account(&app, &dhl.uri()).await?;
    let shipment = app
        .register(&waymark::intake::ShipmentInput {
            carrier: "dhl".into(),
            tracking_number: number.into(),
            customer_email: "lena.vogel@example.de".into(),
            customer_name: Some("Lena Vogel".into()),
            locale: Some("en".into()),
            destination_country: "DE".into(),
            destination_postal_code: Some("10115".into()),
            ..waymark::intake::ShipmentInput::default()
        })
        .await?;
    let store = app.waymark.store.clone();
    app.drive_until("DHL's scan", async |_| {
        let s = store.shipment(shipment.id).await?.expect("stored");
        Ok(s.journey.status == Status::InTransit)
    })
    .await?;
    let shipment = app.shipment(shipment.id).await?;

    let (base, stop, server) = serve_http(&app).await?;
    let visitor = Visitor::unlock(&base, &app, &shipment).await?;
    let (_, page) = visitor.get(&visitor.page).await?;
    assert!(page.contains(r#"name="neighbour_name""#), "{page}");
    assert!(
        !page.contains(r#"name="pickup_point""#),
        "DHL's adapter lists no pickup points"
    );
    let request = location(&visitor.ask_for_neighbour().await?);
    visitor
        .enter(&request, &code_in(&app.smtp.emails()?))
        .await?;
    assert_eq!(
        change_state(&app, &shipment).await?,
        ChangeState::HandedToMerchant
    );
    let (_, done) = visitor.get(&request).await?;
    assert!(
        done.contains("the shop is passing it to the carrier"),
        "{done}"
    );

    // The email to the merchant's support inbox is kept and tried until its server takes it.
    let mailer = app.waymark.merchant_mailer()?;
    let emailed = async || -> anyhow::Result<Option<waymark::domain::MerchantEmail>> {
        Ok(app
            .store()
            .merchant_emails(MerchantId::DEFAULT)
            .await?
            .into_iter()
            .find(|e| e.state == waymark::domain::MerchantEmailState::Sent))
    };
    for attempt in 1..=3 {
        assert_eq!(mailer.send_due().await?, 1, "try {attempt}");
        assert_eq!(mailer.send_due().await?, 0, "not due again before its time");
        let pending = app.store().merchant_emails(MerchantId::DEFAULT).await?;
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].attempts, attempt);
        if let Some(due) = pending[0].due_at {
            app.waymark.clock.advance_to(due);
        }
    }
    let sent = emailed().await?.expect("sent on the third try");
    assert_eq!(sent.recipient, "flaky-support@shop.test");
    assert_eq!(
        app.smtp.log_of("RCPT-451", "flaky-support").len(),
        2,
        "{:?}",
        app.smtp.log()
    );

    // The merchant's support inbox has what to do, with DHL's own change link.
    let emails = app.smtp.emails()?;
    let to_merchant = emails
        .iter()
        .find(|e| e.to() == ["flaky-support@shop.test"])
        .expect("the merchant was emailed");
    assert!(
        to_merchant.subject().contains(number),
        "{}",
        to_merchant.subject()
    );
    let body = to_merchant.text();
    assert!(
        body.contains("leave with the neighbour Jan Kowalski, no. 14"),
        "{body}"
    );
    assert!(body.contains("https://www.dhl.de/"), "{body}");
    let audit = app
        .store()
        .delivery_change_events(app.store().shipment_delivery_changes(shipment.id).await?[0].id)
        .await?;
    let notes: Vec<&str> = audit.iter().map(|e| e.note.as_str()).collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("handed to the merchant, emailing flaky-support@shop.test")),
        "{notes:?}"
    );
    assert_eq!(
        notes
            .iter()
            .filter(|n| n.starts_with("emailing the merchant failed"))
            .count(),
        2,
        "{notes:?}"
    );
    assert_eq!(
        notes.last(),
        Some(&"the merchant was emailed at flaky-support@shop.test"),
        "{notes:?}"
    );

    stop.cancel();
    server.await??;
    Ok(())
}

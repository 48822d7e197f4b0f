//! The customer's side over HTTP, on a real socket: the tracking page every email links to,
//! one-click unsubscribe (RFC 8058) and the health check.

use waymark::carriers::sandbox::Scenario;
use waymark::links::LinkPurpose;

use crate::helpers::{sandbox_shipment, serve_http, spawn_app};

#[tokio::test]
async fn the_tracking_page_and_one_click_unsubscribe_work_over_http() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let shipment = app
        .register(&sandbox_shipment(
            Scenario::OnTime,
            1,
            "lena.vogel@example.de",
            "Lena Vogel",
            "de",
            "DE",
        ))
        .await?;
    app.run_until_done().await?;

    let tracking = app.waymark.links.token(LinkPurpose::Tracking, shipment.id);
    let preferences = app
        .waymark
        .links
        .token(LinkPurpose::Preferences, shipment.id);
    let (base, stop, server) = serve_http(&app).await?;
    let client = reqwest::Client::new();

    let health: serde_json::Value = client
        .get(format!("{base}/health"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["active_shipments"], 0);

    // The page speaks the customer's language, shows the journey, and nothing personal.
    let page = client.get(format!("{base}/t/{tracking}")).send().await?;
    assert_eq!(page.status(), 200);
    let html = page.text().await?;
    assert!(html.contains(r#"<html lang="de">"#), "{html}");
    assert!(html.contains("Ihre Sendung"), "{html}");
    assert!(html.contains("Zugestellt"), "{html}");
    assert!(html.contains("Sendungsverlauf"), "{html}");
    assert!(html.contains(shipment.tracking_number.as_str()));
    assert!(html.contains("WM-1001"), "the order reference is shown");
    assert!(
        !html.contains("lena.vogel@example.de") && !html.contains("Lena Vogel"),
        "the page must not show who the parcel is for"
    );

    let unknown = client.get(format!("{base}/t/not-a-token")).send().await?;
    assert_eq!(unknown.status(), 404);

    // A person clicking the link gets a button; a mail client's one-click POST mutes at once.
    let confirm = client
        .get(format!("{base}/u/{preferences}"))
        .send()
        .await?
        .text()
        .await?;
    assert!(confirm.contains(r#"<form method="post">"#), "{confirm}");
    assert!(!app.shipment(shipment.id).await?.muted);
    let one_click = client
        .post(format!("{base}/u/{preferences}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await?;
    assert_eq!(one_click.status(), 200);
    assert!(app.shipment(shipment.id).await?.muted);
    let after = client
        .get(format!("{base}/t/{tracking}"))
        .send()
        .await?
        .text()
        .await?;
    assert!(after.contains("Sie erhalten keine E-Mails mehr"), "{after}");

    stop.cancel();
    server.await??;
    Ok(())
}

#[tokio::test]
async fn each_link_opens_its_own_page_with_strict_headers_until_it_expires() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let shipment = app
        .register(&sandbox_shipment(
            Scenario::OnTime,
            2,
            "jan.kowalski@example.pl",
            "Jan Kowalski",
            "pl",
            "PL",
        ))
        .await?;
    app.run_until_done().await?;
    let tracking = app.waymark.links.token(LinkPurpose::Tracking, shipment.id);
    let preferences = app
        .waymark
        .links
        .token(LinkPurpose::Preferences, shipment.id);
    let (base, stop, server) = serve_http(&app).await?;
    let client = reqwest::Client::new();
    let get = |path: String| client.get(format!("{base}{path}")).send();

    let page = get(format!("/t/{tracking}")).await?;
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let csp = header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("cache-control"), "no-store");
    let html = page.text().await?;
    assert!(!html.contains("<style") && !html.contains("style=") && !html.contains("<script"));
    assert!(
        !html.contains(&preferences),
        "the page must not hand out the preferences link"
    );
    let css = get("/assets/page.css".into()).await?;
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()?
            .starts_with("text/css")
    );

    // Each token opens its own page only: a forwarded tracking link cannot mute the customer.
    assert_eq!(get(format!("/u/{tracking}")).await?.status(), 404);
    assert_eq!(get(format!("/t/{preferences}")).await?.status(), 404);
    let muted = client
        .post(format!("{base}/u/{tracking}"))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await?;
    assert_eq!(muted.status(), 404);
    assert!(!app.shipment(shipment.id).await?.muted);
    assert_eq!(get(format!("/u/{preferences}")).await?.status(), 200);

    // Thirty days after the journey's last scan the links stop working, like unknown ones.
    let unknown = get("/t/not-a-token".into()).await?.text().await?;
    let last = app
        .shipment(shipment.id)
        .await?
        .journey
        .last_event_at
        .expect("a delivered parcel has scans");
    app.waymark
        .clock
        .advance_to(last + jiff::SignedDuration::from_hours(24 * 31));
    for path in [format!("/t/{tracking}"), format!("/u/{preferences}")] {
        let expired = get(path.clone()).await?;
        assert_eq!(expired.status(), 404, "{path}");
        assert_eq!(expired.text().await?, unknown, "{path}");
    }
    stop.cancel();
    server.await??;
    Ok(())
}

#[tokio::test]
async fn the_postal_code_unlocks_the_details_and_guessing_it_is_limited() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let mut input = sandbox_shipment(
        Scenario::OnTime,
        3,
        "lena.vogel@example.de",
        "Lena Vogel",
        "de",
        "DE",
    );
    input.destination_postal_code = Some("10115".into());
    let shipment = app.register(&input).await?;
    let tracking = app.waymark.links.token(LinkPurpose::Tracking, shipment.id);
    let preferences = app
        .waymark
        .links
        .token(LinkPurpose::Preferences, shipment.id);
    let (base, stop, server) = serve_http(&app).await?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page_url = format!("{base}/t/{tracking}");
    let form_of = |html: &str| -> String {
        let start = html.find(r#"name="form" value=""#).map(|i| i + 19);
        start
            .and_then(|i| html[i..].find('"').map(|j| html[i..i + j].to_owned()))
            .unwrap_or_default()
    };

    // Locked: the status, nothing personal, no preferences link.
    let locked = client.get(&page_url).send().await?.text().await?;
    assert!(locked.contains(r#"name="postal_code""#), "{locked}");
    for personal in ["Lena Vogel", "10115", preferences.as_str()] {
        assert!(!locked.contains(personal), "{personal} before the gate");
    }
    let form = form_of(&locked);
    assert!(!form.is_empty());
    let post = |code: &str, form: &str| {
        client
            .post(&page_url)
            .form(&[("postal_code", code), ("form", form)])
            .send()
    };

    // A form not from the page is refused.
    assert_eq!(post("10115", "forged.stamp").await?.status(), 403);
    // A wrong code says so; the right one sets a cookie for this page only.
    let wrong = post("10117", &form).await?;
    assert_eq!(wrong.status(), 422);
    assert!(wrong.text().await?.contains("passt nicht"));
    let right = post(" 10115 ", &form).await?;
    assert_eq!(right.status(), 303);
    let cookie = right
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(cookie.contains(&format!("Path=/t/{tracking}")), "{cookie}");
    let value = cookie.split(';').next().unwrap_or_default().to_owned();
    let unlocked = client
        .get(&page_url)
        .header("cookie", &value)
        .send()
        .await?
        .text()
        .await?;
    assert!(
        unlocked.contains("Lena Vogel") && unlocked.contains("10115"),
        "{unlocked}"
    );
    assert!(
        unlocked.contains(&format!("/u/{preferences}")),
        "{unlocked}"
    );

    // Another shipment's page does not take this one's cookie.
    let other = app
        .register(&sandbox_shipment(
            Scenario::OnTime,
            4,
            "jan@example.de",
            "Jan Other",
            "de",
            "DE",
        ))
        .await?;
    let other_url = format!(
        "{base}/t/{}",
        app.waymark.links.token(LinkPurpose::Tracking, other.id)
    );
    let theirs = client
        .get(&other_url)
        .header("cookie", &value)
        .send()
        .await?
        .text()
        .await?;
    assert!(!theirs.contains("Jan Other"));

    // Guessing is cut short: five tries a shipment, then it waits.
    let mut statuses = Vec::new();
    for guess in ["10000", "10001", "10002", "10003", "10004"] {
        statuses.push(post(guess, &form).await?.status().as_u16());
    }
    assert_eq!(
        statuses,
        [422, 422, 422, 429, 429],
        "two tries were used above"
    );
    let limited = post("10115", &form).await?;
    assert_eq!(limited.status(), 429, "even the right code waits");
    assert!(limited.headers().contains_key("retry-after"));
    stop.cancel();
    server.await??;
    Ok(())
}

#[tokio::test]
async fn opting_out_of_all_of_a_merchants_emails_stops_the_next_shipments_too() -> anyhow::Result<()>
{
    let app = spawn_app().await?;
    let customer = |seq| {
        sandbox_shipment(
            Scenario::OnTime,
            seq,
            "ola.nowak@example.pl",
            "Ola Nowak",
            "pl",
            "PL",
        )
    };
    let first = app.register(&customer(5)).await?;
    let preferences = app.waymark.links.token(LinkPurpose::Preferences, first.id);
    let (base, stop, server) = serve_http(&app).await?;
    let client = reqwest::Client::new();
    let url = format!("{base}/u/{preferences}");
    let page = client.get(&url).send().await?.text().await?;
    let stamp = page
        .split(r#"name="form" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();
    // Without the page's stamp, a post cannot opt the customer out of everything.
    let forged = client
        .post(&url)
        .form(&[("scope", "merchant"), ("form", "1.x")])
        .send()
        .await?;
    assert_eq!(forged.status(), 403);
    let done = client
        .post(&url)
        .form(&[("scope", "merchant"), ("form", stamp.as_str())])
        .send()
        .await?;
    assert_eq!(done.status(), 200);
    assert!(done.text().await?.contains("od tego sklepu"));

    // A later parcel of the same customer: nothing is sent, every message says why.
    let second = app.register(&customer(6)).await?;
    app.run_until_done().await?;
    let sent_to_second = app
        .smtp
        .emails()?
        .iter()
        .filter(|e| e.shipment_id() == second.id.to_string())
        .count();
    assert_eq!(sent_to_second, 0);
    let messages = app.store().notifications(second.id).await?;
    assert!(!messages.is_empty());
    assert!(
        messages
            .iter()
            .all(|n| n.state == waymark::domain::NotificationState::Suppressed),
        "{messages:?}"
    );
    // The list keeps no address, only its hash.
    let kept = crate::helpers::stored_texts(&app, "suppressions", "recipient_hash").await?;
    assert_eq!(
        kept,
        [waymark::store::recipient_hash("ola.nowak@example.pl")]
    );
    stop.cancel();
    server.await??;
    Ok(())
}

/// Emma's parcel playing `scenario`, to Germany with pages in English.
async fn emma(
    app: &crate::helpers::TestApp,
    scenario: Scenario,
) -> anyhow::Result<waymark::domain::Shipment> {
    app.register(&sandbox_shipment(
        scenario,
        1,
        "emma.clarke@example.com",
        "Emma Clarke",
        "en",
        "DE",
    ))
    .await
}

/// Drive `scenario`'s parcel until its journey is at `status` and `reason`; its page.
async fn page_when(
    scenario: Scenario,
    status: waymark::domain::Status,
    reason: Option<waymark::domain::Reason>,
) -> anyhow::Result<String> {
    let app = spawn_app().await?;
    let shipment = emma(&app, scenario).await?;
    let store = app.waymark.store.clone();
    app.drive_until("the journey's moment", async |_| {
        let s = store.shipment(shipment.id).await?.expect("stored");
        Ok(s.journey.status == status && s.journey.reason == reason)
    })
    .await?;
    let tracking = app.waymark.links.token(LinkPurpose::Tracking, shipment.id);
    let (base, stop, server) = serve_http(&app).await?;
    let html = reqwest::get(format!("{base}/t/{tracking}"))
        .await?
        .text()
        .await?;
    stop.cancel();
    server.await??;
    Ok(html)
}

#[tokio::test]
async fn the_page_says_what_duties_and_a_pickup_point_mean_and_what_to_do() -> anyhow::Result<()> {
    use waymark::domain::{Reason, Status};
    let duties = page_when(
        Scenario::Customs,
        Status::Exception,
        Some(Reason::DutiesDue),
    )
    .await?;
    assert!(duties.contains("What this means"), "{duties}");
    assert!(
        duties.contains("Import duties and taxes must be paid"),
        "{duties}"
    );
    assert!(
        duties.contains("EUR 23.80"),
        "the carrier's amount: {duties}"
    );
    assert!(
        duties.contains(">Pay on the carrier"),
        "where to pay: {duties}"
    );

    let late = page_when(
        Scenario::Late,
        Status::InTransit,
        Some(Reason::WeatherDelay),
    )
    .await?;
    assert!(
        late.contains("Severe weather is holding up the carrier"),
        "{late}"
    );
    assert!(
        late.contains("(moved from "),
        "where the estimate was: {late}"
    );

    let pickup = page_when(Scenario::Pickup, Status::AvailableForPickup, None).await?;
    assert!(
        pickup.contains("waiting for you at a pickup point"),
        "{pickup}"
    );
    assert!(pickup.contains("Collect by:"), "{pickup}");
    Ok(())
}

#[tokio::test]
async fn the_pages_wear_the_merchants_colour_from_a_style_sheet_of_its_own() -> anyhow::Result<()> {
    use waymark::domain::{Branding, MerchantId, MerchantSettings};
    let app = spawn_app().await?;
    let settings = MerchantSettings {
        branding: Branding {
            primary_colour: Some("#aa3300".into()),
            ..Branding::default()
        },
        ..MerchantSettings::default()
    };
    app.store()
        .save_merchant_settings(MerchantId::DEFAULT, &settings)
        .await?;
    let shipment = emma(&app, Scenario::OnTime).await?;
    let tracking = app.waymark.links.token(LinkPurpose::Tracking, shipment.id);
    let (base, stop, server) = serve_http(&app).await?;
    let html = reqwest::get(format!("{base}/t/{tracking}"))
        .await?
        .text()
        .await?;
    let sheet = format!("/assets/brand/{}.css", MerchantId::DEFAULT);
    assert!(html.contains(&format!(r#"href="{sheet}""#)), "{html}");
    assert!(
        !html.contains("style="),
        "no inline style: the CSP forbids it"
    );
    let css = reqwest::get(format!("{base}{sheet}")).await?;
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.text().await?.contains("--brand: #aa3300;"));
    let unknown = reqwest::get(format!("{base}/assets/brand/{}.css", uuid::Uuid::now_v7())).await?;
    assert_eq!(unknown.status(), 404);
    stop.cancel();
    server.await??;
    Ok(())
}

#[tokio::test]
async fn an_uploaded_logo_is_served_by_waymark_on_its_pages() -> anyhow::Result<()> {
    use waymark::domain::MerchantId;
    let app = spawn_app().await?;
    let key = crate::helpers::key_for(&app, MerchantId::DEFAULT).await?;
    let shipment = emma(&app, Scenario::OnTime).await?;
    let tracking = app.waymark.links.token(LinkPurpose::Tracking, shipment.id);
    let (base, stop, server) = serve_http(&app).await?;
    let client = reqwest::Client::new();
    let upload = |content_type: &'static str, body: Vec<u8>| {
        client
            .put(format!("{base}/api/v1/settings/logo"))
            .bearer_auth(&key)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let png: Vec<u8> = [&b"\x89PNG\r\n\x1a\n"[..], &[0u8; 64]].concat();

    // Only images, and only what they claim to be.
    assert_eq!(upload("text/plain", png.clone()).await?.status(), 415);
    assert_eq!(upload("image/png", b"<svg/>".to_vec()).await?.status(), 422);
    assert_eq!(
        upload("image/png", vec![0x89; 300 * 1024]).await?.status(),
        413
    );
    assert_eq!(upload("image/png", png.clone()).await?.status(), 204);

    let html = client
        .get(format!("{base}/t/{tracking}"))
        .send()
        .await?
        .text()
        .await?;
    let src = html
        .split(r#"<img src=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page shows the logo");
    assert!(
        src.starts_with(&format!("/assets/logo/{}", MerchantId::DEFAULT)),
        "{src}"
    );
    let served = client.get(format!("{base}{src}")).send().await?;
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");
    assert_eq!(served.bytes().await?.to_vec(), png);

    let removed = client
        .delete(format!("{base}/api/v1/settings/logo"))
        .bearer_auth(&key)
        .send()
        .await?;
    assert_eq!(removed.status(), 204);
    let gone = client.get(format!("{base}{src}")).send().await?;
    assert_eq!(gone.status(), 404);
    stop.cancel();
    server.await??;
    Ok(())
}

#[tokio::test]
async fn without_a_language_of_the_customers_pages_follow_the_browser_and_emails_the_merchant()
-> anyhow::Result<()> {
    use waymark::domain::{Branding, Language, MerchantId, MerchantSettings};
    let app = spawn_app().await?;
    let settings = MerchantSettings {
        branding: Branding {
            language: Some(Language::De),
            ..Branding::default()
        },
        ..MerchantSettings::default()
    };
    app.store()
        .save_merchant_settings(MerchantId::DEFAULT, &settings)
        .await?;
    // One customer whose language nobody gave, one whose language Waymark does not write.
    let mut unknown = sandbox_shipment(Scenario::OnTime, 1, "a@example.com", "A", "en", "DE");
    unknown.locale = None;
    let mut french = sandbox_shipment(Scenario::OnTime, 2, "b@example.com", "B", "en", "DE");
    french.locale = Some("fr-FR".into());
    let unknown = app.register(&unknown).await?;
    let french = app.register(&french).await?;
    assert_eq!(unknown.customer.locale.as_str(), "und");
    assert_eq!(french.customer.locale.as_str(), "fr-FR");
    app.run_until_done().await?;

    let emails = app.smtp.emails()?;
    assert!(!emails.is_empty());
    for email in &emails {
        assert!(
            crate::helpers::reads_as(&email.text(), "de"),
            "the merchant's language: {}",
            email.text()
        );
    }

    let (base, stop, server) = serve_http(&app).await?;
    let client = reqwest::Client::new();
    for shipment in [&unknown, &french] {
        let tracking = app.waymark.links.token(LinkPurpose::Tracking, shipment.id);
        let page = async |accept: Option<&str>| -> anyhow::Result<String> {
            let mut request = client.get(format!("{base}/t/{tracking}"));
            if let Some(accept) = accept {
                request = request.header("accept-language", accept);
            }
            Ok(request.send().await?.text().await?)
        };
        let polish = page(Some("fr-FR,fr;q=0.9,pl;q=0.8,en;q=0.5")).await?;
        assert!(polish.contains(r#"<html lang="pl">"#), "{polish}");
        let english = page(Some("en-GB")).await?;
        assert!(english.contains(r#"<html lang="en">"#), "{english}");
        let merchants = page(Some("fr")).await?;
        assert!(merchants.contains(r#"<html lang="de">"#), "{merchants}");
        let bare = page(None).await?;
        assert!(bare.contains(r#"<html lang="de">"#), "{bare}");
    }
    // A customer whose language Waymark writes gets it, whatever their browser says.
    let english = sandbox_shipment(Scenario::OnTime, 3, "c@example.com", "C", "en", "DE");
    let english = app.register(&english).await?;
    let tracking = app.waymark.links.token(LinkPurpose::Tracking, english.id);
    let html = client
        .get(format!("{base}/t/{tracking}"))
        .header("accept-language", "pl")
        .send()
        .await?
        .text()
        .await?;
    assert!(html.contains(r#"<html lang="en">"#), "{html}");
    stop.cancel();
    server.await??;
    Ok(())
}

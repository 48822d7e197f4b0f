use super::*;
use crate::carriers::test_support::{self, fast_transport, number, published, request, ts};
use reqwest::header::HeaderMap;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Canada Post's developer sample (via karrio's tests): PIN 7023210039414604, February 2011.
const DETAIL_FILE: &str = "example_tracking-detail.karrio-test.xml";
const PIN: &str = "7023210039414604";

/// The API key used in these tests, and its basic-auth header value.
const USERNAME: &str = "6e93d53968881714";
const PASSWORD: &str = "0bfa9fcb9853d1f51ee57a";
const BASIC: &str = "Basic NmU5M2Q1Mzk2ODg4MTcxNDowYmZhOWZjYjk4NTNkMWY1MWVlNTdh";

fn detail_fixture() -> String {
    published("canadapost", DETAIL_FILE)
}

/// The sample as the production service sends it: in the tracking namespace.
fn namespaced_fixture() -> String {
    detail_fixture().replacen(
        "<tracking-detail>",
        r#"<tracking-detail xmlns="http://www.canadapost.ca/ws/track">"#,
        1,
    )
}

fn canada_post() -> CanadaPost {
    CanadaPost::bundled(fast_transport())
}

fn account(base_url: Option<String>) -> CarrierAccount {
    test_support::account(
        "canadapost",
        serde_json::json!({"username": USERNAME, "password": PASSWORD}),
        base_url.as_deref(),
    )
}

fn ok(body: &str) -> Answer {
    Answer {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body: body.to_owned(),
    }
}

fn messages(code: &str, description: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<messages xmlns="http://www.canadapost.ca/ws/messages">
  <message><code>{code}</code><description>{description}</description></message>
</messages>"#
    )
}

fn detail_path(pin: &str) -> String {
    format!("/vis/track/pin/{pin}/detail")
}

fn report_of(outcome: &Result<TrackReport, ParcelError>) -> &TrackReport {
    outcome.as_ref().expect("a report")
}

/// A one-event answer for the journey rules.
fn occurrence(code: &str, date_time: &str, description: &str, extra: &str) -> String {
    let (date, time) = date_time.split_once(' ').expect("date and time");
    format!(
        "<occurrence><event-identifier>{code}</event-identifier><event-date>{date}</event-date>\
         <event-time>{time}</event-time><event-time-zone>EDT</event-time-zone>\
         <event-description>{description}</event-description><signatory-name/>\
         <event-site>LETHBRIDGE</event-site><event-province>AB</event-province>{extra}</occurrence>"
    )
}

fn detail_with(occurrences: &[String]) -> String {
    format!(
        "<tracking-detail xmlns=\"http://www.canadapost.ca/ws/track\"><pin>{PIN}</pin>\
         <expected-delivery-date/><changed-expected-date>2026-09-18</changed-expected-date>\
         <significant-events>{}</significant-events></tracking-detail>",
        occurrences.concat()
    )
}

// ---------------------------------------------------------------------------------------------
// The published payloads.

#[test]
fn the_data_file_parses_and_maps_every_code_of_the_published_sample() {
    let profile = CarrierProfile::from_toml("carriers/canadapost.toml", BUNDLED_PROFILE)
        .expect("carriers/canadapost.toml parses");
    assert_eq!(profile.code.as_str(), "canadapost");
    assert_eq!(profile.limits.batch_size, 1);
    // The sample pads some codes ("0174"); the file lists them unpadded.
    for code in ["20", "0174", "0100", "0173", "1496"] {
        assert!(
            profile.normalise(code.trim_start_matches('0')).is_some(),
            "{code} is mapped"
        );
    }
    assert_eq!(
        profile.tracking_url(&number(PIN)),
        "https://www.canadapost-postescanada.ca/track-reperage/en#/details/7023210039414604"
    );
}

#[test]
fn the_published_sample_is_normalised_event_by_event() {
    // File: example_tracking-detail.karrio-test.xml (no namespace, as published).
    let outcome = canada_post()
        .read_answer(&number(PIN), &ok(&detail_fixture()))
        .expect("a readable answer");
    let report = report_of(&outcome);
    assert_eq!(report.events.len(), 6, "{DETAIL_FILE}: every occurrence");
    let check = |index: usize,
                 code: &str,
                 status: Status,
                 reason: Option<Reason>,
                 utc: &str,
                 location: &str,
                 text: &str| {
        let event = &report.events[index];
        assert_eq!(event.raw_code, code, "event {index}");
        assert_eq!(event.status, status, "event {index} ({code})");
        assert_eq!(event.reason, reason, "event {index} ({code})");
        assert_eq!(event.time.at, ts(utc), "event {index} ({code})");
        // EST: five hours behind UTC.
        assert_eq!(event.time.offset_seconds, Some(-5 * 3600), "event {index}");
        assert_eq!(event.location.as_deref(), Some(location), "event {index}");
        assert_eq!(event.raw_text, text, "event {index}");
    };
    // In time order (Canada Post lists the newest first).
    check(
        0,
        "1496",
        Status::Delivered,
        None,
        "2011-02-01T12:59:52Z",
        "QUEBEC, QC, CA",
        "Item successfully delivered",
    );
    check(
        1,
        "20",
        Status::InTransit,
        None,
        "2011-02-01T12:59:52Z",
        "QUEBEC, QC, CA",
        "Signature image recorded for Online viewing",
    );
    check(
        2,
        "0173",
        Status::InTransit,
        Some(Reason::AddressIssue),
        "2011-02-02T11:19:57Z",
        "QUEBEC, QC, CA",
        "Customer addressing error found; attempting to correct. Possible delay",
    );
    check(
        3,
        "0100",
        Status::InTransit,
        None,
        "2011-02-02T19:45:48Z",
        "QUEBEC, QC, CA",
        "Item processed at postal facility",
    );
    check(
        4,
        "0174",
        Status::OutForDelivery,
        None,
        "2011-02-03T13:27:43Z",
        "SAINTE-FOY, QC, CA",
        "Item out for delivery",
    );
    check(
        5,
        "20",
        // A signature record keeps the meaning of the scan before it.
        Status::OutForDelivery,
        None,
        "2011-02-03T16:59:59Z",
        "SAINTE-FOY, QC, CA",
        "Signature image recorded for Online viewing",
    );
    // The latest signature, the expected date, no pickup point, nothing left to change.
    assert_eq!(report.signed_by.as_deref(), Some("HETU"));
    assert_eq!(
        report.estimate,
        Some(DeliveryWindow::on(jiff::civil::date(2011, 4, 5)))
    );
    assert_eq!(report.pickup_point, None);
    assert_eq!(report.change_delivery_url, None);
}

/// Event `20` records a signature image; it is not a delivery. An item out for delivery whose
/// latest scan is that record is still out for delivery.
#[test]
fn a_signature_record_never_delivers_an_undelivered_item() {
    let answer = r#"<tracking-detail>
        <pin>7023210039414604</pin>
        <significant-events>
            <occurrence>
                <event-identifier>20</event-identifier>
                <event-date>2024-11-25</event-date>
                <event-time>11:59:59</event-time>
                <event-time-zone>EST</event-time-zone>
                <event-description>Signature image recorded for Online viewing</event-description>
                <signatory-name>HETU</signatory-name>
                <event-site>SAINTE-FOY</event-site>
                <event-province>QC</event-province>
            </occurrence>
            <occurrence>
                <event-identifier>0174</event-identifier>
                <event-date>2024-11-25</event-date>
                <event-time>08:27:43</event-time>
                <event-time-zone>EST</event-time-zone>
                <event-description>Item out for delivery</event-description>
                <event-site>SAINTE-FOY</event-site>
                <event-province>QC</event-province>
            </occurrence>
        </significant-events>
    </tracking-detail>"#;
    let outcome = canada_post()
        .read_answer(&number(PIN), &ok(answer))
        .expect("a readable answer");
    let report = report_of(&outcome);
    assert!(
        report.events.iter().all(|e| e.status != Status::Delivered),
        "{:?}",
        report.events
    );
    let timeline = crate::domain::Timeline::default()
        .merge("canadapost", report.events.clone())
        .timeline;
    let current = timeline.current().expect("a current scan");
    assert_eq!(
        (current.event.raw_code.as_str(), current.event.status),
        ("20", Status::OutForDelivery)
    );
}

#[test]
fn a_namespaced_answer_reads_like_the_bare_sample() {
    let canada_post = canada_post();
    let bare = canada_post
        .read_answer(&number(PIN), &ok(&detail_fixture()))
        .expect("bare");
    let namespaced = canada_post
        .read_answer(&number(PIN), &ok(&namespaced_fixture()))
        .expect("namespaced");
    assert_eq!(bare, namespaced);
    let prefixed = detail_fixture()
        .replace(
            "<tracking-detail>",
            r#"<t:tracking-detail xmlns:t="http://www.canadapost.ca/ws/track">"#,
        )
        .replace("</tracking-detail>", "</t:tracking-detail>");
    assert_eq!(
        canada_post.read_answer(&number(PIN), &ok(&prefixed)),
        Ok(bare)
    );
}

#[test]
fn times_take_the_abbreviation_else_the_province_else_toronto() {
    let summer = event_time("2026-07-02", "10:15:00", Some("PDT"), Some("BC")).unwrap();
    assert_eq!(summer.at, ts("2026-07-02T17:15:00Z"));
    assert_eq!(summer.offset_seconds, Some(-7 * 3600));
    // No abbreviation: the province's zone, with its own daylight saving.
    let vancouver = event_time("2026-07-02", "10:15:00", None, Some("BC")).unwrap();
    assert_eq!(vancouver.offset_seconds, Some(-7 * 3600));
    let regina = event_time("2026-07-02", "10:15", Some(""), Some("SK")).unwrap();
    assert_eq!(regina.offset_seconds, Some(-6 * 3600));
    let st_johns = event_time("2026-01-10", "09:00:00", Some("NST"), Some("NL")).unwrap();
    assert_eq!(st_johns.at, ts("2026-01-10T12:30:00Z"));
    // In French.
    let montreal = event_time("2026-07-02", "10:15:00", Some("HAE"), Some("QC")).unwrap();
    assert_eq!(montreal.offset_seconds, Some(-4 * 3600));
    // Abroad, with no zone: Toronto.
    let abroad = event_time("2026-01-10", "09:00:00", Some("CET"), None).unwrap();
    assert_eq!(abroad.offset_seconds, Some(-5 * 3600));
    assert!(event_time("2026-13-10", "09:00:00", None, None).is_err());
    for province in [
        "NL", "NS", "PE", "NB", "QC", "ON", "MB", "SK", "AB", "BC", "YT", "NT", "NU",
    ] {
        assert!(zone_for_region("CA", province).is_some(), "{province}");
    }
}

#[test]
fn a_parcel_waiting_at_a_post_office_names_it_and_collecting_it_is_picked_up() {
    let waiting = detail_with(&[
        occurrence(
            "1701",
            "2026-09-15 19:23:39",
            "Item available for pickup at Post Office",
            "<event-retail-location-id>385964</event-retail-location-id>\
             <event-retail-name>SHOPPERS DRUG MART #317</event-retail-name>",
        ),
        occurrence(
            "1435",
            "2026-09-15 13:59:36",
            "Notice card left indicating where and when to pick up item",
            "",
        ),
        occurrence("0174", "2026-09-15 08:12:00", "Item out for delivery", ""),
    ]);
    let canada_post = canada_post();
    let outcome = canada_post
        .read_answer(&number(PIN), &ok(&waiting))
        .expect("readable");
    let report = report_of(&outcome);
    let statuses: Vec<Status> = report.events.iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        [
            Status::OutForDelivery,
            Status::AttemptFailed,
            Status::AvailableForPickup
        ]
    );
    assert_eq!(report.events[1].reason, Some(Reason::RecipientUnavailable));
    assert_eq!(
        report.pickup_point,
        Some(PickupPoint {
            name: "SHOPPERS DRUG MART #317".into(),
            address: Some("LETHBRIDGE, AB, CA".into()),
            hold_until: None,
        })
    );
    assert_eq!(
        report.estimate,
        Some(DeliveryWindow::on(jiff::civil::date(2026, 9, 18)))
    );
    assert_eq!(
        report.change_delivery_url.as_deref(),
        Some("https://www.canadapost-postescanada.ca/track-reperage/en#/details/7023210039414604")
    );

    let collected = detail_with(&[
        occurrence(
            "1496",
            "2026-09-17 11:36:57",
            "Item successfully delivered",
            "",
        ),
        occurrence(
            "1701",
            "2026-09-15 19:23:39",
            "Item available for pickup at Post Office",
            "",
        ),
    ]);
    let outcome = canada_post
        .read_answer(&number(PIN), &ok(&collected))
        .expect("readable");
    let delivered = &report_of(&outcome).events[1];
    assert_eq!(
        (delivered.status, delivered.reason),
        (Status::Delivered, Some(Reason::PickedUpByCustomer))
    );
}

#[test]
fn after_a_return_starts_a_delivery_is_the_one_back_to_the_sender() {
    let returned = detail_with(&[
        occurrence(
            "1496",
            "2026-09-25 10:00:00",
            "Item successfully delivered",
            "",
        ),
        occurrence("0174", "2026-09-25 07:30:00", "Item out for delivery", ""),
        occurrence(
            "1417",
            "2026-09-18 11:00:00",
            "Item refused by recipient. Item being returned to sender.",
            "",
        ),
    ]);
    let outcome = canada_post()
        .read_answer(&number(PIN), &ok(&returned))
        .expect("readable");
    let report = report_of(&outcome);
    let meanings: Vec<(Status, Option<Reason>)> =
        report.events.iter().map(|e| (e.status, e.reason)).collect();
    assert_eq!(
        meanings,
        [
            (Status::Exception, Some(Reason::ReturningToSender)),
            (Status::Exception, Some(Reason::ReturningToSender)),
            (Status::Exception, Some(Reason::ReturnedToSender)),
        ]
    );
    // The raw words stay Canada Post's.
    assert_eq!(report.events[2].raw_text, "Item successfully delivered");
    assert_eq!(report.change_delivery_url, None);
}

#[test]
fn unknown_codes_stay_moving_and_broken_occurrences_are_malformed() {
    let canada_post = canada_post();
    let unknown = detail_with(&[occurrence(
        "9999",
        "2026-09-15 08:00:00",
        "Something new",
        "",
    )]);
    let outcome = canada_post
        .read_answer(&number(PIN), &ok(&unknown))
        .expect("readable");
    let event = &report_of(&outcome).events[0];
    assert_eq!(
        (event.raw_code.as_str(), event.status),
        ("9999", Status::InTransit)
    );
    assert!(canada_post.unmapped.logged().contains("9999"));

    let no_date = detail_fixture().replacen("<event-date>2011-02-03</event-date>", "", 1);
    match canada_post.read_answer(&number(PIN), &ok(&no_date)) {
        Ok(Err(ParcelError::Malformed { detail, excerpt })) => {
            assert!(detail.contains("event-date"), "{detail}");
            assert!(
                excerpt.contains("<event-identifier>20</event-identifier>"),
                "{excerpt}"
            );
        }
        other => panic!("expected a malformed parcel, got {other:?}"),
    }
    let no_events = detail_with(&[]);
    assert_eq!(
        canada_post.read_answer(&number(PIN), &ok(&no_events)),
        Ok(Err(ParcelError::NotFound))
    );
}

// ---------------------------------------------------------------------------------------------
// Over HTTP.

#[tokio::test]
async fn each_pin_is_one_get_with_the_api_key_and_the_v2_media_type() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(detail_path(PIN)))
        .and(header("Accept", "application/vnd.cpc.track-v2+xml"))
        .and(header("Accept-Language", "en-CA"))
        .and(header("Authorization", BASIC))
        .respond_with(ResponseTemplate::new(200).set_body_string(namespaced_fixture()))
        .expect(1)
        .mount(&server)
        .await;
    let results = canada_post()
        .track(
            &account(Some(format!("{}/", server.uri()))),
            &[request(PIN)],
        )
        .await
        .expect("tracked");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].tracking_number, number(PIN));
    assert_eq!(report_of(&results[0].outcome).events.len(), 6);
    server.verify().await;
}

#[tokio::test]
async fn a_batch_is_one_call_per_pin_in_order_and_an_unknown_pin_stays_its_own() {
    let server = MockServer::start().await;
    for pin in [PIN, "7023210039414605"] {
        Mock::given(method("GET"))
            .and(path(detail_path(pin)))
            .respond_with(
                ResponseTemplate::new(200).set_body_string(detail_fixture().replace(PIN, pin)),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(detail_path("1234567890123456")))
        .respond_with(ResponseTemplate::new(404).set_body_string(messages("004", "No Pin History")))
        .expect(1)
        .mount(&server)
        .await;
    let batch = [
        request("7023210039414605"),
        request("1234567890123456"),
        request(PIN),
    ];
    let results = canada_post()
        .track(&account(Some(server.uri())), &batch)
        .await
        .expect("tracked");
    let order: Vec<&str> = results.iter().map(|r| r.tracking_number.as_str()).collect();
    assert_eq!(order, ["7023210039414605", "1234567890123456", PIN]);
    assert!(results[0].outcome.is_ok());
    assert_eq!(results[1].outcome, Err(ParcelError::NotFound));
    assert!(results[2].outcome.is_ok());
    // More PINs than batch_size (1): one call each, in request order.
    let paths: Vec<String> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            detail_path("7023210039414605"),
            detail_path("1234567890123456"),
            detail_path(PIN)
        ]
    );
}

#[tokio::test]
async fn a_refused_api_key_is_an_authentication_failure() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_string(messages("E002", "AAA Authentication Failure")),
        )
        .expect(1)
        .mount(&server)
        .await;
    match canada_post()
        .track(&account(Some(server.uri())), &[request(PIN)])
        .await
    {
        Err(CarrierError::Auth(said)) => {
            assert!(said.contains("AAA Authentication Failure"), "{said}")
        }
        other => panic!("expected an auth failure, got {other:?}"),
    }
    server.verify().await;

    let mut no_key = account(Some(server.uri()));
    no_key.credentials = serde_json::json!({"username": USERNAME}).into();
    match canada_post().track(&no_key, &[request(PIN)]).await {
        Err(CarrierError::Auth(said)) => assert!(said.contains("password"), "{said}"),
        other => panic!("expected an auth failure, got {other:?}"),
    }
}

#[tokio::test]
async fn too_many_requests_is_rate_limited_with_the_wait() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
        .mount(&server)
        .await;
    assert_eq!(
        canada_post()
            .track(&account(Some(server.uri())), &[request(PIN)])
            .await,
        Err(CarrierError::RateLimited {
            retry_after: Some(Duration::from_secs(120))
        })
    );
}

#[tokio::test]
async fn a_server_error_is_retried_within_the_call_and_then_transient() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(detail_path(PIN)))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(detail_path(PIN)))
        .respond_with(ResponseTemplate::new(200).set_body_string(detail_fixture()))
        .mount(&server)
        .await;
    let results = canada_post()
        .track(&account(Some(server.uri())), &[request(PIN)])
        .await
        .expect("tracked on the second attempt");
    assert!(results[0].outcome.is_ok());

    let down = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_string(messages("Server", "Service temporarily unavailable")),
        )
        .expect(3)
        .mount(&down)
        .await;
    match canada_post()
        .track(&account(Some(down.uri())), &[request(PIN)])
        .await
    {
        Err(CarrierError::Transient(said)) => {
            assert!(said.contains("Service temporarily unavailable"), "{said}")
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
    down.verify().await;
}

#[tokio::test]
async fn a_pin_canada_post_refuses_is_that_parcels_rejection() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(400).set_body_string(messages("002", "Invalid PIN format")),
        )
        .mount(&server)
        .await;
    let results = canada_post()
        .track(&account(Some(server.uri())), &[request("ABCD")])
        .await
        .expect("the call worked");
    assert_eq!(
        results[0].outcome,
        Err(ParcelError::Rejected("002: Invalid PIN format".into()))
    );
}

#[tokio::test]
async fn garbage_answers_are_malformed_with_what_canada_post_sent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(detail_path(PIN)))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<!DOCTYPE html><html><body><h1>Maintenance</h1><p>Back soon<br></p></body></html>",
        ))
        .mount(&server)
        .await;
    let fixture = detail_fixture();
    Mock::given(method("GET"))
        .and(path(detail_path("7023210039414605")))
        .respond_with(ResponseTemplate::new(200).set_body_string(&fixture[..fixture.len() / 2]))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(detail_path("7023210039414606")))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("<pin-summary><pin>1</pin></pin-summary>"),
        )
        .mount(&server)
        .await;
    let account = account(Some(server.uri()));
    match canada_post().track(&account, &[request(PIN)]).await {
        Err(CarrierError::Malformed { detail, excerpt }) => {
            assert!(detail.contains("not an XML answer"), "{detail}");
            assert!(excerpt.contains("Maintenance"), "{excerpt}");
        }
        other => panic!("expected a malformed answer, got {other:?}"),
    }
    match canada_post()
        .track(&account, &[request("7023210039414605")])
        .await
    {
        Err(CarrierError::Malformed { detail, excerpt }) => {
            assert!(detail.contains("not an XML answer"), "{detail}");
            assert!(excerpt.starts_with("<tracking-detail>"), "{excerpt}");
        }
        other => panic!("expected a malformed answer, got {other:?}"),
    }
    match canada_post()
        .track(&account, &[request("7023210039414606")])
        .await
    {
        Err(CarrierError::Malformed { detail, .. }) => {
            assert!(detail.contains("<pin-summary>"), "{detail}");
        }
        other => panic!("expected a malformed answer, got {other:?}"),
    }
}

#[tokio::test]
async fn an_empty_batch_calls_nobody() {
    let server = MockServer::start().await;
    assert_eq!(
        canada_post().track(&account(Some(server.uri())), &[]).await,
        Ok(vec![])
    );
    assert!(
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

use super::*;
use crate::carriers::test_support::{self, fast_transport, published, request, ts as at};
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The published events sample (Royal Mail's documentation sample, via karrio-community).
const EVENTS_SAMPLE: &str = "example_response_events.karrio-community.json";
/// The published error sample, with its rate-limit quirk.
const ERRORS_SAMPLE: &str = "example_errors.karrio-community.json";

fn carrier() -> RoyalMail {
    RoyalMail::bundled(fast_transport())
}

fn account(base_url: &str) -> CarrierAccount {
    test_support::account(
        "royalmail",
        serde_json::json!({"client_id": "rm-id", "client_secret": "rm-secret"}),
        Some(base_url),
    )
}

fn report(outcome: &Result<TrackReport, ParcelError>) -> &TrackReport {
    outcome.as_ref().unwrap_or_else(|e| panic!("{e:?}"))
}

/// Royal Mail's unknown-barcode answer, in the shape of its error sample.
const NOT_FOUND_BODY: &str = r#"{
  "httpCode": "404",
  "httpMessage": "Not Found",
  "moreInformation": "Barcode reference not recognised",
  "errors": [{
    "errorCode": "E1142",
    "errorDescription": "Barcode reference FQ000000000GB isn't recognised",
    "errorCause": "A mail item with that barcode cannot be located",
    "errorResolution": "Check barcode and resubmit"
  }]
}"#;

#[test]
fn the_data_file_parses_and_says_one_number_per_call() {
    let profile = CarrierProfile::from_toml("carriers/royalmail.toml", BUNDLED_PROFILE).unwrap();
    assert_eq!(profile.code.as_str(), "royalmail");
    assert_eq!(profile.limits.batch_size, 1);
    assert_eq!(profile.limits.quota_time_zone, "Europe/London");
    assert_eq!(
        profile.tracking_url(&TrackingNumber::parse("FQ087430672GB").unwrap()),
        "https://www.royalmail.com/track-your-item#/tracking-results/FQ087430672GB"
    );
    let delivered = profile.normalise("EVKSF").unwrap();
    assert_eq!(delivered.status, Status::Delivered);
    assert_eq!(delivered.reason, Some(Reason::DeliveredToSafePlace));
    // A card left with no answer is a real attempt; the item then waits to be collected.
    assert_eq!(
        profile.normalise("EVKNA").unwrap().status,
        Status::AttemptFailed
    );
    assert_eq!(
        profile.normalise("EVNDA").unwrap().status,
        Status::AvailableForPickup
    );
}

#[test]
fn the_published_events_sample_is_normalised_field_by_field() {
    // File: tests/fixtures/carriers/royalmail/example_response_events.karrio-community.json
    let outcome = carrier()
        .read_events(&published("royalmail", EVENTS_SAMPLE))
        .unwrap();
    let report = report(&outcome);
    assert_eq!(report.events.len(), 1);
    let event = &report.events[0];
    assert_eq!(event.status, Status::InTransit);
    assert_eq!(event.reason, None);
    assert_eq!(event.time.at, at("2016-10-20T09:04:00Z"));
    assert_eq!(event.time.offset_seconds, Some(3600));
    assert_eq!(event.location.as_deref(), Some("Stafford DO, GB"));
    assert_eq!(event.raw_code, "EVNMI");
    assert_eq!(event.raw_text, "Forwarded - Mis-sort");
    assert_eq!(
        report.estimate,
        Some(DeliveryWindow::on(jiff::civil::date(2017, 2, 20)))
    );
    assert_eq!(report.signed_by.as_deref(), Some("Simon"));
    assert_eq!(report.pickup_point, None);
    // The sample's relative redelivery link, made absolute on Royal Mail's website.
    assert_eq!(
        report.change_delivery_url.as_deref(),
        Some("https://www.royalmail.com/personal/receiving-mail/redelivery")
    );
}

/// A journey in the shape of the published sample, with the codes of a carded parcel: label,
/// accepted, out for delivery, no answer, waiting at the delivery office (a zone-less time in
/// British Summer Time), and a code the data file does not know.
const CARDED_JOURNEY: &str = r#"{
  "mailPieces": {
    "mailPieceId": "090367574000000FE1E1B",
    "summary": { "statusCategory": "AWAITING COLLECTION", "lastEventCode": "EVXX1" },
    "events": [
      { "eventCode": "EVXX1", "eventName": "Something new at the office",
        "eventDateTime": "2024-07-03T08:00:00+01:00", "locationName": "Stafford DO" },
      { "eventCode": "EVNDA", "eventName": "Available for redelivery or collection",
        "eventDateTime": "2024-07-02T15:30:00", "locationName": "Stafford DO" },
      { "eventCode": "EVKNA", "eventName": "Delivery attempted - no answer",
        "eventDateTime": "2024-07-02T11:20:00+01:00", "locationName": "Stafford DO" },
      { "eventCode": "EVGPD", "eventName": "Due to be delivered today",
        "eventDateTime": "2024-07-02T07:10:00+01:00", "locationName": "Stafford DO" },
      { "eventCode": "EVZZ9", "eventName": "Item held by Customs",
        "eventDateTime": "2024-06-28T10:00:00Z" },
      { "eventCode": "EVAIP", "eventName": "Sender despatching item",
        "eventDateTime": "2024-06-27T18:00:00Z" }
    ],
    "links": { "redelivery": { "href": "/personal/receiving-mail/redelivery" } }
  }
}"#;

#[test]
fn a_carded_journey_maps_attempt_pickup_customs_and_unknown_codes() {
    let carrier = carrier();
    let outcome = carrier.read_events(CARDED_JOURNEY).unwrap();
    let report = report(&outcome);
    let by_code = |code: &str| {
        report
            .events
            .iter()
            .find(|e| e.raw_code == code)
            .unwrap_or_else(|| panic!("{code} missing"))
    };

    let label = by_code("EVAIP");
    assert_eq!(label.status, Status::InfoReceived);
    assert_eq!(label.time.offset_seconds, Some(0));
    assert_eq!(label.location, None);

    let van = by_code("EVGPD");
    assert_eq!(van.status, Status::OutForDelivery);
    assert_eq!(van.time.at, at("2024-07-02T06:10:00Z"));

    let attempt = by_code("EVKNA");
    assert_eq!(attempt.status, Status::AttemptFailed);
    assert_eq!(attempt.reason, Some(Reason::RecipientUnavailable));
    assert_eq!(attempt.raw_text, "Delivery attempted - no answer");

    // A bare local time is UK time: British Summer Time in July.
    let waiting = by_code("EVNDA");
    assert_eq!(waiting.status, Status::AvailableForPickup);
    assert_eq!(waiting.time.at, at("2024-07-02T14:30:00Z"));
    assert_eq!(waiting.time.offset_seconds, Some(3600));
    assert_eq!(waiting.location.as_deref(), Some("Stafford DO, GB"));

    // An unknown code with customs words takes the customs phrase of the data file.
    let customs = by_code("EVZZ9");
    assert_eq!(customs.status, Status::Exception);
    assert_eq!(customs.reason, Some(Reason::CustomsHeld));

    // An unknown code on the latest scan takes the parcel's status category.
    let latest = by_code("EVXX1");
    assert_eq!(latest.status, Status::AvailableForPickup);
    assert_eq!(latest.raw_text, "Something new at the office");

    let point = report.pickup_point.as_ref().expect("a pickup point");
    assert_eq!(point.name, "Stafford DO");
    assert_eq!(
        report.change_delivery_url.as_deref(),
        Some("https://www.royalmail.com/personal/receiving-mail/redelivery")
    );
    assert_eq!(report.signed_by, None);
    assert_eq!(report.estimate, None);
}

#[test]
fn an_unknown_code_that_is_not_the_latest_scan_is_in_transit_and_a_delivered_parcel_offers_no_change()
 {
    let body = r#"{"mailPieces": {
      "summary": { "statusCategory": "DELIVERED" },
      "events": [
        { "eventCode": "EVKSF", "eventName": "Delivered to Safeplace", "eventDateTime": "2024-01-10T19:10:11Z" },
        { "eventCode": "EVQQQ", "eventName": "Sorted", "eventDateTime": "2024-01-09T00:59:22Z" }
      ],
      "links": { "redelivery": { "href": "/personal/receiving-mail/redelivery" } }
    }}"#;
    let outcome = carrier().read_events(body).unwrap();
    let report = report(&outcome);
    assert_eq!(report.events[0].status, Status::Delivered);
    assert_eq!(report.events[0].reason, Some(Reason::DeliveredToSafePlace));
    assert_eq!(report.events[1].status, Status::InTransit);
    assert_eq!(report.events[1].reason, None);
    assert_eq!(report.events[1].raw_code, "EVQQQ");
    assert_eq!(report.change_delivery_url, None);
}

#[test]
fn an_event_without_a_time_is_that_parcels_malformed_answer() {
    let body = r#"{"mailPieces": {"events": [{"eventCode": "EVKSP", "eventName": "Delivered"}]}}"#;
    match carrier().read_events(body).unwrap() {
        Err(ParcelError::Malformed { detail, excerpt }) => {
            assert!(detail.contains("eventDateTime"), "{detail}");
            assert!(excerpt.contains("EVKSP"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_request_carries_the_number_the_client_credentials_and_the_terms_header() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/mailpieces/v2/FQ087430672GB/events"))
        .and(header("X-IBM-Client-Id", "rm-id"))
        .and(header("X-IBM-Client-Secret", "rm-secret"))
        .and(header("X-Accept-RMG-Terms", "yes"))
        .and(header("accept", "application/json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(published("royalmail", EVENTS_SAMPLE)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let results = carrier()
        .track(&account(&server.uri()), &[request("FQ087430672GB")])
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].tracking_number.as_str(), "FQ087430672GB");
    assert_eq!(report(&results[0].outcome).events[0].raw_code, "EVNMI");
}

#[tokio::test]
async fn more_numbers_than_one_are_one_call_each_in_order_and_an_unknown_one_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/mailpieces/v2/FQ000000000GB/events"))
        .respond_with(ResponseTemplate::new(404).set_body_string(NOT_FOUND_BODY))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/mailpieces/v2/FQ087430672GB/events"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(published("royalmail", EVENTS_SAMPLE)),
        )
        .expect(2)
        .mount(&server)
        .await;
    let batch = [
        request("FQ087430672GB"),
        request("FQ000000000GB"),
        request("FQ087430672GB"),
    ];
    let results = carrier()
        .track(&account(&server.uri()), &batch)
        .await
        .unwrap();
    let numbers: Vec<&str> = results.iter().map(|r| r.tracking_number.as_str()).collect();
    assert_eq!(numbers, ["FQ087430672GB", "FQ000000000GB", "FQ087430672GB"]);
    assert!(results[0].outcome.is_ok());
    assert_eq!(results[1].outcome, Err(ParcelError::NotFound));
    assert!(results[2].outcome.is_ok());
}

#[tokio::test]
async fn the_published_rate_limit_quirk_a_400_is_rate_limited() {
    // File: tests/fixtures/carriers/royalmail/example_errors.karrio-community.json — httpCode 400 with
    // an E0004 header error, but moreInformation says the rate limit was exceeded.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("Retry-After", "45")
                .set_body_string(published("royalmail", ERRORS_SAMPLE)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = carrier()
        .track(&account(&server.uri()), &[request("FQ087430672GB")])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CarrierError::RateLimited {
            retry_after: Some(Duration::from_secs(45))
        }
    );
    // The same body read directly (as if it came with a 200) is still throttling.
    assert_eq!(
        carrier()
            .read_events(&published("royalmail", ERRORS_SAMPLE))
            .unwrap_err(),
        CarrierError::RateLimited { retry_after: None }
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_rate_limited() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "30"))
        .expect(1)
        .mount(&server)
        .await;
    let err = carrier()
        .track(&account(&server.uri()), &[request("FQ087430672GB")])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CarrierError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );
}

#[tokio::test]
async fn refused_credentials_are_an_auth_error_without_retrying() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_string(
            r#"{"httpCode":"401","httpMessage":"Unauthorized","moreInformation":"Client id not registered."}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    match carrier()
        .track(&account(&server.uri()), &[request("FQ087430672GB")])
        .await
    {
        Err(CarrierError::Auth(said)) => {
            assert!(said.contains("Client id not registered"), "{said}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn missing_credentials_are_an_auth_error_before_any_call() {
    let server = MockServer::start().await;
    let mut account = account(&server.uri());
    account.credentials = serde_json::json!({"client_id": "rm-id"}).into();
    match carrier().track(&account, &[request("FQ087430672GB")]).await {
        Err(CarrierError::Auth(said)) => assert!(said.contains("client_secret"), "{said}"),
        other => panic!("{other:?}"),
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_server_error_is_retried_within_the_call() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(503).set_body_string("<html>Service Unavailable</html>"),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(published("royalmail", EVENTS_SAMPLE)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let results = carrier()
        .track(&account(&server.uri()), &[request("FQ087430672GB")])
        .await
        .unwrap();
    assert!(results[0].outcome.is_ok());
}

#[tokio::test]
async fn a_lasting_outage_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_string(
            r#"{"httpCode":"500","httpMessage":"Internal Server Error","errors":[{"errorCode":"E0009","errorDescription":"Internal server error"}]}"#,
        ))
        .expect(3)
        .mount(&server)
        .await;
    let err = carrier()
        .track(&account(&server.uri()), &[request("FQ087430672GB")])
        .await
        .unwrap_err();
    assert!(matches!(err, CarrierError::Transient(_)), "{err:?}");
}

#[tokio::test]
async fn garbage_bodies_are_malformed_with_the_carriers_words() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/mailpieces/v2/FQ087430672GB/events"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("<html><body>Royal Mail maintenance page</body></html>"),
        )
        .mount(&server)
        .await;
    let truncated = &published("royalmail", EVENTS_SAMPLE)[..400];
    Mock::given(method("GET"))
        .and(path("/mailpieces/v2/FQ000000001GB/events"))
        .respond_with(ResponseTemplate::new(200).set_body_string(truncated))
        .mount(&server)
        .await;
    for (number, words) in [
        ("FQ087430672GB", "maintenance page"),
        ("FQ000000001GB", "090367574000000FE1E1B"),
    ] {
        match carrier()
            .track(&account(&server.uri()), &[request(number)])
            .await
        {
            Err(CarrierError::Malformed { detail, excerpt }) => {
                assert!(detail.contains("not the expected JSON"), "{detail}");
                assert!(excerpt.contains(words), "{excerpt}");
            }
            other => panic!("{number}: {other:?}"),
        }
    }
    assert_eq!(
        carrier()
            .read_events(r#"{"something": "else"}"#)
            .unwrap_err(),
        CarrierError::Malformed {
            detail: "the answer has no `mailPieces`".into(),
            excerpt: r#"{"something": "else"}"#.into(),
        }
    );
}

#[tokio::test]
async fn a_business_error_is_that_parcels_rejection_and_a_technical_one_the_calls() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/mailpieces/v2/AB123456789GB/events"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            r#"{"httpCode":"400","httpMessage":"Bad Request","errors":[{"errorCode":"E1283","errorDescription":"Tracking is not supported for this product"}]}"#,
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/mailpieces/v2/FQ087430672GB/events"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            r#"{"httpCode":"400","httpMessage":"Bad Request","errors":[{"errorCode":"E0004","errorDescription":"Failed header validation for X-Accept-RMG-Terms"}]}"#,
        ))
        .mount(&server)
        .await;
    let results = carrier()
        .track(&account(&server.uri()), &[request("AB123456789GB")])
        .await
        .unwrap();
    match &results[0].outcome {
        Err(ParcelError::Rejected(said)) => {
            assert!(said.contains("E1283"), "{said}");
            assert!(said.contains("not supported"), "{said}");
        }
        other => panic!("{other:?}"),
    }
    match carrier()
        .track(&account(&server.uri()), &[request("FQ087430672GB")])
        .await
    {
        Err(CarrierError::Permanent(said)) => {
            assert!(said.contains("X-Accept-RMG-Terms"), "{said}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_piece_with_a_summary_but_no_events_keeps_its_last_event() {
    let body = r#"{"mailPieces": {"summary": {
      "lastEventCode": "EVKSP", "lastEventName": "Delivered and signed",
      "lastEventDateTime": "2024-01-10T19:10:11Z", "lastEventLocationName": "Stafford DO",
      "statusCategory": "DELIVERED"
    }, "signature": {"recipientName": "  "}}}"#;
    let outcome = carrier().read_events(body).unwrap();
    let report = report(&outcome);
    assert_eq!(report.events.len(), 1);
    assert_eq!(report.events[0].status, Status::Delivered);
    assert_eq!(report.events[0].raw_code, "EVKSP");
    assert_eq!(report.events[0].time.at, at("2024-01-10T19:10:11Z"));
    assert_eq!(
        report.events[0].location.as_deref(),
        Some("Stafford DO, GB")
    );
    // A blank signature name is no proof of delivery.
    assert_eq!(report.signed_by, None);
}

#[test]
fn a_fee_to_pay_is_duties_due() {
    let body = r#"{"mailPieces": {"events": [
      { "eventCode": "EVNFQ", "eventName": "Fee to pay - item held at delivery office",
        "eventDateTime": "2024-02-01T09:00:00Z", "locationName": "Stafford DO" }
    ]}}"#;
    let outcome = carrier().read_events(body).unwrap();
    let event = &report(&outcome).events[0];
    assert_eq!(event.status, Status::Exception);
    assert_eq!(event.reason, Some(Reason::DutiesDue));
    assert_eq!(event.raw_code, "EVNFQ");
}

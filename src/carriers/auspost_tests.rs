use super::*;
use crate::carriers::test_support::{self, fast_transport, number, published, request, ts as at};
use crate::domain::Reason;
use std::time::Duration;
use wiremock::matchers::{basic_auth, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The published Track items sample (Australia Post's documentation sample, via karrio).
const RESPONSE_SAMPLE: &str = "example_response.karrio.json";

fn carrier() -> AusPost {
    AusPost::bundled(fast_transport())
}

fn account(base_url: &str) -> CarrierAccount {
    test_support::account(
        "auspost",
        serde_json::json!({
            "api_key": "ap-key",
            "password": "ap-password",
            "account_number": "0001234567"
        }),
        Some(base_url),
    )
}

fn report(outcome: &Result<TrackReport, ParcelError>) -> &TrackReport {
    outcome.as_ref().unwrap_or_else(|e| panic!("{e:?}"))
}

fn event<'a>(report: &'a TrackReport, text: &str, utc: &str) -> &'a TrackingEvent {
    report
        .events
        .iter()
        .find(|e| e.raw_text == text && e.time.at == at(utc))
        .unwrap_or_else(|| panic!("no `{text}` at {utc} in {:#?}", report.events))
}

const SAMPLE_NUMBERS: [&str; 3] = ["7XX1000", "7XX1000634011427", "ET123456789AU"];

#[test]
fn the_data_file_parses_with_ten_numbers_per_call() {
    let profile = CarrierProfile::from_toml("carriers/auspost.toml", BUNDLED_PROFILE).unwrap();
    assert_eq!(profile.code.as_str(), "auspost");
    assert_eq!(profile.limits.batch_size, MAX_IDS_PER_CALL);
    assert_eq!(profile.limits.quota_time_zone, "Australia/Melbourne");
    assert_eq!(
        profile.tracking_url(&number("7XX1000634011427")),
        "https://auspost.com.au/mypost/track/details/7XX1000634011427"
    );
    assert_eq!(
        profile
            .normalise("Delivered - Left in a safe place")
            .unwrap()
            .reason,
        Some(Reason::DeliveredToSafePlace)
    );
}

#[test]
fn the_published_sample_is_normalised_field_by_field() {
    // File: tests/fixtures/carriers/auspost/example_response.karrio.json
    let numbers: Vec<TrackingNumber> = SAMPLE_NUMBERS.iter().map(|n| number(n)).collect();
    let outcomes = carrier()
        .read_track(&numbers, &published("auspost", RESPONSE_SAMPLE))
        .unwrap();
    assert_eq!(outcomes.len(), 3);

    // 7XX1000: ESB-10001 "Invalid tracking ID" inside the 200.
    assert_eq!(outcomes[0], Err(ParcelError::NotFound));

    // 7XX1000634011427: delivered eParcel from New York; "Departed facility" is listed twice
    // with the same time and place, which is one scan.
    let delivered = report(&outcomes[1]);
    assert_eq!(delivered.events.len(), 6);
    let last = event(delivered, "Delivered", "2014-05-30T04:43:09Z");
    assert_eq!(last.status, Status::Delivered);
    assert_eq!(last.reason, None);
    assert_eq!(last.time.offset_seconds, Some(36_000));
    assert_eq!(last.location.as_deref(), Some("ALEXANDRIA NSW, AU"));
    assert_eq!(last.raw_code, "Delivered");

    let van = event(
        delivered,
        "With Australia Post for delivery today",
        "2014-05-29T20:08:51Z",
    );
    assert_eq!(van.status, Status::OutForDelivery);
    assert_eq!(van.time.offset_seconds, Some(36_000));
    assert_eq!(van.location.as_deref(), Some("ALEXANDRIA NSW, AU"));

    let arrived = event(
        delivered,
        "Arrived at facility in destination country",
        "2014-05-29T00:16:00Z",
    );
    assert_eq!(arrived.status, Status::InTransit);
    assert_eq!(arrived.reason, Some(Reason::ArrivedDestinationCountry));
    assert_eq!(arrived.location.as_deref(), Some("SYDNEY, AU"));

    // A New York scan written with Sydney's offset: the carrier's offset is kept as sent.
    let departed = event(delivered, "Departed facility", "2014-05-25T19:00:00Z");
    assert_eq!(departed.status, Status::InTransit);
    assert_eq!(departed.time.offset_seconds, Some(36_000));
    assert_eq!(
        departed.location.as_deref(),
        Some("JOHN F. KENNEDY APT/NEW YORK, US")
    );

    let approved = event(
        delivered,
        "Shipping information approved by Australia Post",
        "2014-05-23T04:27:15Z",
    );
    assert_eq!(approved.status, Status::InfoReceived);
    assert_eq!(approved.location, None);
    assert_eq!(delivered.estimate, None);
    assert_eq!(delivered.signed_by, None);
    assert_eq!(delivered.pickup_point, None);

    // ET123456789AU: a consignment whose article is nested in `items`, in daylight time.
    let express = report(&outcomes[2]);
    assert_eq!(express.events.len(), 8);
    let cleared = event(
        express,
        "Cleared and awaiting international departure",
        "2021-01-27T14:59:11Z",
    );
    assert_eq!(cleared.status, Status::InTransit);
    assert_eq!(
        cleared.reason, None,
        "export clearance is not import customs"
    );
    assert_eq!(cleared.time.offset_seconds, Some(39_600));
    assert_eq!(cleared.location.as_deref(), Some("BRISBANE QLD, AU"));
    let received = event(
        express,
        "Received by Australia Post",
        "2021-01-27T00:06:59Z",
    );
    assert_eq!(received.status, Status::InTransit);
    assert_eq!(received.location.as_deref(), Some("BEENLEIGH QLD, AU"));
    let info = event(
        express,
        "Shipping information received by Australia Post",
        "2021-01-26T13:22:43Z",
    );
    assert_eq!(info.status, Status::InfoReceived);
    let air = event(express, "Processed by air carrier", "2021-02-02T21:08:00Z");
    assert_eq!(air.status, Status::InTransit);
    assert_eq!(air.location, None);
}

/// Two journeys in the shape of the published sample: a parcel left in a safe place, with the
/// bare local times some Australia Post environments send, and a parcel from abroad that meets
/// customs, is carded and waits at a Post Office, whose latest scan the data file does not know.
const JOURNEYS: &str = r#"{
  "tracking_results": [
    {
      "tracking_id": "33ABC000001",
      "status": "Delivered",
      "trackable_items": [{
        "article_id": "33ABC000001",
        "status": "Delivered",
        "events": [
          { "location": "PARREARRA QLD", "description": "Delivered - Left in a safe place", "date": "2022-08-18 11:45:57" },
          { "location": "CALOUNDRA WEST QLD", "description": "Onboard for delivery", "date": "2022-08-18 09:11:47" },
          { "description": "In transit to next facility in CALOUNDRA WEST QLD", "date": "2022-08-17 14:56:01" },
          { "location": "PERTH WA", "description": "Item processed at facility", "date": "2022-08-16 09:00:00" },
          { "location": "Sydney,NSW", "description": "Shipment information received", "date": "2022-08-12 13:24:21" }
        ]
      }]
    },
    {
      "tracking_id": "LX123456789DE",
      "status": "Awaiting collection",
      "trackable_items": [{
        "article_id": "LX123456789DE",
        "status": "Awaiting collection",
        "events": [
          { "location": "ALEXANDRIA NSW", "description": "Something the file does not know", "date": "2024-03-08T09:00:00+11:00" },
          { "location": "ALEXANDRIA NSW", "description": "Attempted delivery - Carded for collection", "date": "2024-03-07T10:15:00+11:00" },
          { "location": "SYDNEY NSW", "description": "Held by Australian Border Force", "date": "2024-03-04T08:00:00+11:00" },
          { "location": "SYDNEY NSW", "description": "Cleared by Australian Border Force", "date": "2024-03-05T16:00:00+11:00" }
        ]
      }]
    }
  ]
}"#;

#[test]
fn journeys_map_safe_place_pickup_customs_and_unknown_descriptions() {
    let numbers = [number("33ABC000001"), number("LX123456789DE")];
    let outcomes = carrier().read_track(&numbers, JOURNEYS).unwrap();

    let safe = report(&outcomes[0]);
    // Queensland keeps standard time all year (+10).
    let left = event(
        safe,
        "Delivered - Left in a safe place",
        "2022-08-18T01:45:57Z",
    );
    assert_eq!(left.status, Status::Delivered);
    assert_eq!(left.reason, Some(Reason::DeliveredToSafePlace));
    assert_eq!(left.time.offset_seconds, Some(36_000));
    assert_eq!(left.location.as_deref(), Some("PARREARRA QLD, AU"));
    let onboard = event(safe, "Onboard for delivery", "2022-08-17T23:11:47Z");
    assert_eq!(onboard.status, Status::OutForDelivery);
    // A phrase of the data file matches the description with its place at the end.
    let moving = event(
        safe,
        "In transit to next facility in CALOUNDRA WEST QLD",
        "2022-08-17T04:56:01Z",
    );
    assert_eq!(moving.status, Status::InTransit);
    assert_eq!(
        moving.time.offset_seconds,
        Some(36_000),
        "Australia Post's home zone"
    );
    // A Perth scan is in Perth's zone (+8).
    let perth = event(safe, "Item processed at facility", "2022-08-16T01:00:00Z");
    assert_eq!(perth.time.offset_seconds, Some(28_800));
    assert_eq!(perth.location.as_deref(), Some("PERTH WA, AU"));
    let info = event(
        safe,
        "Shipment information received",
        "2022-08-12T03:24:21Z",
    );
    assert_eq!(info.status, Status::InfoReceived);
    assert_eq!(info.location.as_deref(), Some("Sydney NSW, AU"));
    assert_eq!(safe.pickup_point, None);

    let waiting = report(&outcomes[1]);
    let held = event(
        waiting,
        "Held by Australian Border Force",
        "2024-03-03T21:00:00Z",
    );
    assert_eq!(held.status, Status::Exception);
    assert_eq!(held.reason, Some(Reason::CustomsHeld));
    let cleared = event(
        waiting,
        "Cleared by Australian Border Force",
        "2024-03-05T05:00:00Z",
    );
    assert_eq!(cleared.status, Status::InTransit);
    assert_eq!(cleared.reason, Some(Reason::CustomsReleased));
    let carded = event(
        waiting,
        "Attempted delivery - Carded for collection",
        "2024-03-06T23:15:00Z",
    );
    assert_eq!(carded.status, Status::AttemptFailed);
    assert_eq!(carded.reason, Some(Reason::RecipientUnavailable));
    // The latest scan is unknown to the data file: the article's own status stands in.
    let latest = event(
        waiting,
        "Something the file does not know",
        "2024-03-07T22:00:00Z",
    );
    assert_eq!(latest.status, Status::AvailableForPickup);
    assert_eq!(latest.raw_code, "Something the file does not know");
    let point = waiting.pickup_point.as_ref().expect("a pickup point");
    assert_eq!(point.name, "ALEXANDRIA NSW");
}

#[test]
fn answers_that_miss_a_number_or_a_field_are_malformed_for_that_number() {
    let body = r#"{"tracking_results": [
        {"tracking_id": "AAA0001", "trackable_items": [{"events": [{"description": "Delivered"}]}]}
    ]}"#;
    let outcomes = carrier()
        .read_track(&[number("AAA0001"), number("BBB0002")], body)
        .unwrap();
    match &outcomes[0] {
        Err(ParcelError::Malformed { detail, .. }) => {
            assert!(detail.contains("`date`"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    match &outcomes[1] {
        Err(ParcelError::Malformed { detail, excerpt }) => {
            assert!(detail.contains("BBB0002"), "{detail}");
            assert!(excerpt.contains("AAA0001"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn one_call_carries_every_number_with_basic_auth_and_the_account_number() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/shipping/v1/track"))
        .and(query_param(
            "tracking_ids",
            "7XX1000,7XX1000634011427,ET123456789AU",
        ))
        .and(basic_auth("ap-key", "ap-password"))
        .and(header("account-number", "0001234567"))
        .and(header("accept", "application/json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(published("auspost", RESPONSE_SAMPLE)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let batch: Vec<TrackRequest> = SAMPLE_NUMBERS.iter().map(|n| request(n)).collect();
    let results = carrier()
        .track(&account(&server.uri()), &batch)
        .await
        .unwrap();
    let numbers: Vec<&str> = results.iter().map(|r| r.tracking_number.as_str()).collect();
    assert_eq!(numbers, SAMPLE_NUMBERS);
    // The unknown number is not found; the others in the same call are tracked.
    assert_eq!(results[0].outcome, Err(ParcelError::NotFound));
    assert_eq!(report(&results[1].outcome).events.len(), 6);
    assert_eq!(report(&results[2].outcome).events.len(), 8);
    // The commas are sent as commas, as Australia Post documents them.
    let sent = &server.received_requests().await.unwrap()[0];
    assert_eq!(
        sent.url.query(),
        Some("tracking_ids=7XX1000,7XX1000634011427,ET123456789AU")
    );
}

/// Answers every id in the query as delivered, in reverse order, so results are matched by id.
fn echo(request: &Request) -> ResponseTemplate {
    let ids: Vec<String> = request
        .url
        .query_pairs()
        .find(|(k, _)| k == "tracking_ids")
        .map(|(_, v)| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let results: Vec<serde_json::Value> = ids
        .iter()
        .rev()
        .map(|id| {
            serde_json::json!({
                "tracking_id": id,
                "status": "Delivered",
                "trackable_items": [{
                    "article_id": id,
                    "events": [{"location": "MELBOURNE VIC", "description": "Delivered", "date": "2024-05-01T10:00:00+10:00"}],
                    "status": "Delivered"
                }]
            })
        })
        .collect();
    ResponseTemplate::new(200).set_body_json(serde_json::json!({ "tracking_results": results }))
}

#[tokio::test]
async fn more_numbers_than_ten_are_split_into_calls_and_answered_in_order() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/shipping/v1/track"))
        .respond_with(echo)
        .expect(2)
        .mount(&server)
        .await;
    let batch: Vec<TrackRequest> = (1..=12).map(|i| request(&format!("AP{i:08}"))).collect();
    let results = carrier()
        .track(&account(&server.uri()), &batch)
        .await
        .unwrap();
    assert_eq!(results.len(), 12);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.tracking_number.as_str(), format!("AP{:08}", i + 1));
        assert_eq!(report(&result.outcome).events[0].status, Status::Delivered);
    }
    let calls = server.received_requests().await.unwrap();
    let sizes: Vec<usize> = calls
        .iter()
        .map(|c| c.url.query().unwrap_or_default().split(',').count())
        .collect();
    assert_eq!(sizes, [10, 2]);
}

#[tokio::test]
async fn refused_credentials_are_an_auth_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_string(
            r#"{"errors":[{"code":"API_001","name":"UNAUTHORISED","message":"The request failed authentication"}]}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    match carrier()
        .track(&account(&server.uri()), &[request("7XX1000634011427")])
        .await
    {
        Err(CarrierError::Auth(said)) => assert!(said.contains("failed authentication"), "{said}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn missing_credentials_are_an_auth_error_before_any_call() {
    let server = MockServer::start().await;
    let mut account = account(&server.uri());
    account.credentials =
        serde_json::json!({"api_key": "ap-key", "password": "ap-password"}).into();
    match carrier()
        .track(&account, &[request("7XX1000634011427")])
        .await
    {
        Err(CarrierError::Auth(said)) => assert!(said.contains("account_number"), "{said}"),
        other => panic!("{other:?}"),
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_429_with_retry_after_is_rate_limited() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "60"))
        .expect(1)
        .mount(&server)
        .await;
    let err = carrier()
        .track(&account(&server.uri()), &[request("7XX1000634011427")])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CarrierError::RateLimited {
            retry_after: Some(Duration::from_secs(60))
        }
    );
}

#[tokio::test]
async fn a_server_error_is_retried_within_the_call() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(published("auspost", RESPONSE_SAMPLE)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let results = carrier()
        .track(&account(&server.uri()), &[request("7XX1000634011427")])
        .await
        .unwrap();
    assert_eq!(report(&results[0].outcome).events.len(), 6);
}

#[tokio::test]
async fn garbage_bodies_are_malformed_with_the_carriers_words() {
    let sample = published("auspost", RESPONSE_SAMPLE);
    for (body, words) in [
        (
            "<html><body>Australia Post is down for maintenance</body></html>".to_owned(),
            "down for maintenance",
        ),
        (sample[..600].to_owned(), "7XX1000634011427"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&server)
            .await;
        match carrier()
            .track(&account(&server.uri()), &[request("7XX1000634011427")])
            .await
        {
            Err(CarrierError::Malformed { detail, excerpt }) => {
                assert!(detail.contains("not the expected JSON"), "{detail}");
                assert!(excerpt.contains(words), "{excerpt}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        carrier()
            .read_track(&[number("7XX1000634011427")], r#"{"results": []}"#)
            .unwrap_err(),
        CarrierError::Malformed {
            detail: "the answer has no `tracking_results`".into(),
            excerpt: r#"{"results": []}"#.into(),
        }
    );
}

#[test]
fn other_per_number_errors_are_rejections_and_request_errors_are_permanent() {
    let body = r#"{"tracking_results": [
        {"tracking_id": "AAA0001", "errors": [{"code": "ESB-20051", "name": "Not authorised to track this article"}]},
        {"tracking_id": "BBB0002", "errors": [{"code": "ESB-10002", "name": "Tracking ID not found"}]}
    ]}"#;
    let outcomes = carrier()
        .read_track(&[number("AAA0001"), number("BBB0002")], body)
        .unwrap();
    assert_eq!(
        outcomes[0],
        Err(ParcelError::Rejected(
            "ESB-20051: Not authorised to track this article".into()
        ))
    );
    assert_eq!(outcomes[1], Err(ParcelError::NotFound));

    let whole = r#"{"errors": [{"code": "51101", "name": "TOO_MANY_AUTHORISATION_NUMBERS", "message": "Too many tracking ids"}]}"#;
    match carrier().read_track(&[number("AAA0001")], whole) {
        Err(CarrierError::Permanent(said)) => {
            assert!(said.contains("Too many tracking ids"), "{said}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn customs_wording_lands_on_the_customs_reasons() {
    let body = r#"{"tracking_results": [{"tracking_id": "LX000000001DE", "trackable_items": [{"events": [
        {"location": "SYDNEY NSW", "description": "Customs duty payable", "date": "2024-03-04T08:00:00+11:00"},
        {"location": "SYDNEY NSW", "description": "Presented to customs", "date": "2024-03-03T08:00:00+11:00"},
        {"location": "SYDNEY NSW", "description": "Duty paid, released by customs", "date": "2024-03-05T08:00:00+11:00"}
    ]}]}]}"#;
    let outcomes = carrier()
        .read_track(&[number("LX000000001DE")], body)
        .unwrap();
    let reasons: Vec<Option<Reason>> = report(&outcomes[0])
        .events
        .iter()
        .map(|e| e.reason)
        .collect();
    assert_eq!(
        reasons,
        [
            Some(Reason::DutiesDue),
            Some(Reason::CustomsClearanceStarted),
            Some(Reason::CustomsReleased)
        ]
    );
}

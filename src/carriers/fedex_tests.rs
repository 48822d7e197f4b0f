use super::*;
use crate::carriers::test_support::{self, fast_transport, published, request, ts};
use crate::domain::Reason;
use jiff::civil::date;
use std::time::Duration;
use wiremock::matchers::{body_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use Reason as R;
use Status as S;

/// An error body FedEx's spec gives as the example for `status` of the tracking endpoint.
fn spec_error_example(status: &str) -> serde_json::Value {
    let spec: serde_json::Value =
        serde_json::from_str(&published("fedex", "track-openapi.json")).expect("the spec is JSON");
    spec["paths"]["/track/v1/trackingnumbers"]["post"]["responses"][status]["content"]
        ["application/json"]["example"]
        .clone()
}

fn fedex() -> Fedex {
    Fedex::bundled(fast_transport())
}

fn requests(numbers: &[&str]) -> Vec<TrackRequest> {
    numbers.iter().map(|n| request(n)).collect()
}

/// Read a `200` body for `numbers`, expecting a readable answer.
fn parse(body: &str, numbers: &[&str]) -> Vec<ParcelResult> {
    fedex()
        .parse_answer(&requests(numbers), body)
        .expect("a readable answer")
}

fn report_of(result: &ParcelResult) -> &TrackReport {
    result
        .outcome
        .as_ref()
        .unwrap_or_else(|e| panic!("{}: {e:?}", result.tracking_number))
}

/// Everything asserted about one event.
fn assert_event(
    event: &TrackingEvent,
    (status, reason): (Status, Option<Reason>),
    at: &str,
    offset_seconds: Option<i32>,
    location: Option<&str>,
    (raw_code, raw_text): (&str, &str),
) {
    assert_eq!((event.status, event.reason), (status, reason), "{event:?}");
    assert_eq!(event.time.at, ts(at), "{event:?}");
    assert_eq!(event.time.offset_seconds, offset_seconds, "{event:?}");
    assert_eq!(event.location.as_deref(), location, "{event:?}");
    assert_eq!(
        (event.raw_code.as_str(), event.raw_text.as_str()),
        (raw_code, raw_text),
        "{event:?}"
    );
}

/// A 200 body with one result per `(number, scans)`; each scan is `(eventType, exceptionCode,
/// derivedStatusCode, date, city, state, country)`.
fn answer(results: &[(&str, serde_json::Value)]) -> String {
    serde_json::json!({
        "transactionId": "t",
        "output": {
            "completeTrackResults": results
                .iter()
                .map(|(number, track)| serde_json::json!({
                    "trackingNumber": number,
                    "trackResults": [track],
                }))
                .collect::<Vec<_>>()
        }
    })
    .to_string()
}

fn scan(
    kind: &str,
    exception: &str,
    derived: &str,
    at: &str,
    place: (&str, &str, &str),
) -> serde_json::Value {
    serde_json::json!({
        "date": at,
        "eventType": kind,
        "exceptionCode": exception,
        "derivedStatusCode": derived,
        "eventDescription": format!("event {kind}"),
        "exceptionDescription": "",
        "scanLocation": {"city": place.0, "stateOrProvinceCode": place.1, "countryCode": place.2},
    })
}

#[test]
fn the_bundled_data_file_parses_and_maps_the_tricky_codes_carefully() {
    let profile = CarrierProfile::from_toml("carriers/fedex.toml", BUNDLED_PROFILE).expect("valid");
    assert_eq!(profile.code.as_str(), "fedex");
    assert_eq!(profile.limits.batch_size, MAX_NUMBERS_PER_CALL);
    // 1400 calls per 10 seconds.
    assert_eq!(profile.limits.requests_per_second, 140.0);
    let meaning = |code: &str| {
        profile
            .normalise(code)
            .map(|m| (m.status, m.reason))
            .unwrap_or_else(|| panic!("{code} is mapped"))
    };
    // "Local delivery restriction, delivery not attempted": a delay, not a failed attempt.
    assert_eq!(meaning("DE:84"), (S::InTransit, Some(R::CarrierDelay)));
    assert_eq!(
        meaning("DE:08"),
        (S::AttemptFailed, Some(R::RecipientUnavailable))
    );
    assert_eq!(meaning("DE:03"), (S::AttemptFailed, Some(R::AddressIssue)));
    assert_eq!(meaning("HP"), (S::AvailableForPickup, None));
    assert_eq!(meaning("HL"), (S::AvailableForPickup, None));
    assert_eq!(
        meaning("CP"),
        (S::InTransit, Some(R::CustomsClearanceStarted))
    );
    assert_eq!(meaning("CD"), (S::Exception, Some(R::CustomsHeld)));
    assert_eq!(meaning("CC"), (S::InTransit, Some(R::CustomsReleased)));
    assert_eq!(meaning("RS"), (S::Exception, Some(R::ReturningToSender)));
    assert_eq!(
        meaning("delivered_at:FEDEX_LOCATION"),
        (S::Delivered, Some(R::PickedUpByCustomer))
    );
}

/// `example_response.json`: FedEx's portal sample (placeholder data). Its first result carries
/// both data and an error (`TRACKING.TRACKINGNUMBER.EMPTY`); the second is a number FedEx does
/// not know, answered inside the 200.
#[test]
fn the_published_example_response_is_read_field_by_field() {
    let results = parse(
        &published("fedex", "example_response.json"),
        &["123456789012", "39936862321"],
    );
    assert_eq!(results.len(), 2);
    let report = report_of(&results[0]);
    assert_eq!(report.events.len(), 1);
    // "PU" with exception code A25: no "PU:A25" entry, so plain "PU".
    assert_event(
        &report.events[0],
        (S::InTransit, None),
        "2018-02-02T19:01:00Z",
        Some(-7 * 3600),
        Some("SEATTLE, US"),
        ("PU", "Picked Up: Package available for clearance"),
    );
    assert_eq!(
        report.estimate,
        Some(DeliveryWindow::between(date(2021, 10, 1), date(2021, 10, 15)).expect("a window"))
    );
    assert_eq!(report.signed_by.as_deref(), Some("Reciever"));
    assert_eq!(
        report.pickup_point,
        Some(PickupPoint {
            name: "Fedex".into(),
            address: Some("1043 North Easy Street, Suite 999, 98101 SEATTLE, US".into()),
            hold_until: None,
        })
    );
    assert_eq!(report.change_delivery_url, None);
    assert_eq!(results[1].outcome, Err(ParcelError::NotFound));
}

#[test]
fn exceptions_pickups_and_deliveries_get_their_reasons() {
    let body = answer(&[
        (
            "111111111111",
            serde_json::json!({"scanEvents": [
                scan("DE", "84", "DE", "2024-03-05T09:12:00-05:00", ("NEW YORK", "NY", "US")),
                scan("DE", "08", "DE", "2024-03-06T11:40:00-05:00", ("NEW YORK", "NY", "US")),
                scan("OD", "", "OD", "2024-03-06T08:02:00-05:00", ("NEW YORK", "NY", "US")),
            ]}),
        ),
        (
            "222222222222",
            serde_json::json!({
                "scanEvents": [scan("HP", "", "HL", "2024-03-06T14:00:00+01:00", ("PARIS", "", "FR"))],
                "holdAtLocation": {"locationId": "PARA",
                    "locationContactAndAddress": {"contact": {"companyName": "FedEx Ship Centre Opéra"},
                        "address": {"streetLines": ["12 Rue Auber"], "city": "PARIS", "postalCode": "75009", "countryCode": "FR"}}},
                "dateAndTimes": [{"type": "ESTIMATED_DELIVERY", "dateTime": "2024-03-06T00:00:00+01:00"}],
            }),
        ),
        (
            "333333333333",
            serde_json::json!({
                "scanEvents": [scan("DL", "", "DL", "2024-03-08T10:00:00-06:00", ("MEMPHIS", "TN", "US"))],
                "deliveryDetails": {"locationType": "FEDEX_LOCATION", "receivedByName": "J.SMITH", "signedByName": ""},
            }),
        ),
    ]);
    let results = parse(&body, &["111111111111", "222222222222", "333333333333"]);
    let failed = report_of(&results[0]);
    assert_event(
        &failed.events[0],
        (S::InTransit, Some(R::CarrierDelay)),
        "2024-03-05T14:12:00Z",
        Some(-5 * 3600),
        Some("NEW YORK, US"),
        ("DE", "event DE"),
    );
    assert_eq!(
        (failed.events[1].status, failed.events[1].reason),
        (S::AttemptFailed, Some(R::RecipientUnavailable))
    );
    assert_eq!(failed.events[2].status, S::OutForDelivery);

    let waiting = report_of(&results[1]);
    assert_event(
        &waiting.events[0],
        (S::AvailableForPickup, None),
        "2024-03-06T13:00:00Z",
        Some(3600),
        Some("PARIS, FR"),
        ("HP", "event HP"),
    );
    assert_eq!(
        waiting.pickup_point,
        Some(PickupPoint {
            name: "FedEx Ship Centre Opéra".into(),
            address: Some("12 Rue Auber, 75009 PARIS, FR".into()),
            hold_until: None,
        })
    );
    assert_eq!(waiting.estimate, Some(DeliveryWindow::on(date(2024, 3, 6))));

    let collected = report_of(&results[2]);
    assert_eq!(
        (collected.events[0].status, collected.events[0].reason),
        (S::Delivered, Some(R::PickedUpByCustomer))
    );
    // No signature: the person who received it.
    assert_eq!(collected.signed_by.as_deref(), Some("J.SMITH"));
}

/// `DE`/`A47` ("FedEx redirected your package to a nearby FedEx location") sends the parcel on
/// to wait at a FedEx location: it is moving, not in trouble.
#[test]
fn a_redirect_to_a_fedex_location_is_not_an_exception() {
    let redirected = serde_json::json!({
        "date": "2024-11-26T10:41:00-05:00",
        "eventType": "DE",
        "eventDescription": "Delivery exception",
        "exceptionCode": "A47",
        "exceptionDescription": "FedEx redirected your package to a nearby FedEx location",
        "derivedStatusCode": "DE",
        "scanLocation": {"city": "BROOKLYN", "stateOrProvinceCode": "NY", "countryCode": "US"},
    });
    let body = answer(&[(
        "444444444444",
        serde_json::json!({ "scanEvents": [redirected] }),
    )]);
    let results = parse(&body, &["444444444444"]);
    let event = &report_of(&results[0]).events[0];
    assert_eq!((event.status, event.reason), (S::InTransit, None));
    assert_eq!(event.raw_code, "DE");
}

/// Without an estimated window, FedEx's standard transit window is the estimate.
#[test]
fn the_standard_transit_window_is_the_estimate_when_there_is_no_estimated_one() {
    let moving = scan(
        "IT",
        "",
        "IT",
        "2024-11-25T08:00:00-06:00",
        ("MEMPHIS", "TN", "US"),
    );
    let body = answer(&[
        (
            "555555555555",
            serde_json::json!({
                "scanEvents": [moving.clone()],
                "standardTransitTimeWindow": {"window": {"ends": "2024-11-28T00:00:00-06:00"}},
            }),
        ),
        (
            "666666666666",
            serde_json::json!({
                "scanEvents": [moving.clone()],
                "estimatedDeliveryTimeWindow": {"window": {}},
                "standardTransitTimeWindow": {"window": {
                    "begins": "2024-11-27T00:00:00-06:00", "ends": "2024-11-29T00:00:00-06:00"}},
            }),
        ),
        (
            "777777777777",
            serde_json::json!({
                "scanEvents": [moving],
                "estimatedDeliveryTimeWindow": {"window": {"ends": "2024-11-26T00:00:00-06:00"}},
                "standardTransitTimeWindow": {"window": {"ends": "2024-11-28T00:00:00-06:00"}},
            }),
        ),
    ]);
    let results = parse(&body, &["555555555555", "666666666666", "777777777777"]);
    assert_eq!(
        report_of(&results[0]).estimate,
        Some(DeliveryWindow::on(date(2024, 11, 28)))
    );
    assert_eq!(
        report_of(&results[1]).estimate,
        Some(DeliveryWindow::between(date(2024, 11, 27), date(2024, 11, 29)).unwrap())
    );
    // The estimated window, when FedEx gives one, wins.
    assert_eq!(
        report_of(&results[2]).estimate,
        Some(DeliveryWindow::on(date(2024, 11, 26)))
    );
}

#[test]
fn unmapped_codes_fall_back_to_the_derived_status_and_zone_less_times_to_the_scans_state() {
    let body = answer(&[(
        "444444444444",
        serde_json::json!({"scanEvents": [
            scan("ZZ", "", "DL", "2024-03-05T10:00:00", ("DENVER", "CO", "US")),
            scan("ZY", "", "QQ", "2024-03-04T10:00:00", ("", "", "")),
        ]}),
    )]);
    let results = parse(&body, &["444444444444"]);
    let report = report_of(&results[0]);
    // A bare local time in Colorado is Mountain time.
    assert_event(
        &report.events[0],
        (S::Delivered, None),
        "2024-03-05T17:00:00Z",
        Some(-7 * 3600),
        Some("DENVER, US"),
        ("ZZ", "event ZZ"),
    );
    // Nothing known and no place: in transit, in FedEx's home zone (Memphis), the code kept.
    assert_event(
        &report.events[1],
        (S::InTransit, None),
        "2024-03-04T16:00:00Z",
        Some(-6 * 3600),
        None,
        ("ZY", "event ZY"),
    );
}

#[test]
fn an_unmapped_code_is_logged_once_not_at_every_poll() {
    let fedex = fedex();
    let body = answer(&[(
        "444444444444",
        serde_json::json!({"scanEvents": [
            scan("ZZ", "", "IT", "2024-03-05T10:00:00-05:00", ("DENVER", "CO", "US")),
            scan("ZZ", "", "IT", "2024-03-06T10:00:00-05:00", ("DENVER", "CO", "US")),
        ]}),
    )]);
    for _ in 0..2 {
        let results = fedex
            .parse_answer(&requests(&["444444444444"]), &body)
            .expect("readable");
        assert_eq!(report_of(&results[0]).events[1].status, S::InTransit);
    }
    let warned = fedex.unmapped.logged();
    assert_eq!(
        warned.iter().collect::<Vec<_>>(),
        ["eventType=ZZ exceptionCode=- derivedStatusCode=IT"]
    );
}

#[test]
fn a_reused_number_is_answered_with_its_latest_parcel() {
    let body = serde_json::json!({"output": {"completeTrackResults": [{
        "trackingNumber": "555555555555",
        "trackResults": [
            {"scanEvents": [scan("DL", "", "DL", "2019-05-02T10:00:00-05:00", ("AUSTIN", "TX", "US"))]},
            {"scanEvents": [scan("PU", "", "PU", "2024-05-02T10:00:00-05:00", ("AUSTIN", "TX", "US"))]},
        ]
    }]}})
    .to_string();
    let results = parse(&body, &["555555555555"]);
    assert_eq!(report_of(&results[0]).events[0].raw_code, "PU");
}

#[test]
fn per_number_problems_stay_with_their_number() {
    let body = serde_json::json!({"output": {"completeTrackResults": [
        {"trackingNumber": "111111111111", "trackResults": [{"error": {
            "code": "TRACKING.TRACKINGNUMBER.INVALID", "message": "Invalid tracking number."}}]},
        {"trackingNumber": "222222222222", "trackResults": [{"scanEvents": [{"eventType": "PU"}]}]},
        {"trackingNumber": "333333333333", "trackResults": [{"scanEvents": [
            scan("PU", "", "PU", "2024-05-02T10:00:00-05:00", ("AUSTIN", "TX", "US"))]}]},
        {"trackingNumber": "555555555555", "trackResults": [{"scanEvents": [
            {"date": 20240502, "eventType": "PU"}]}]},
    ], "alerts": "TRACKING.DATA.NOTFOUND -  Tracking data unavailable"}})
    .to_string();
    let results = parse(
        &body,
        &[
            "111111111111",
            "222222222222",
            "333333333333",
            "444444444444",
            "555555555555",
        ],
    );
    assert_eq!(
        results[0].outcome,
        Err(ParcelError::Rejected(
            "TRACKING.TRACKINGNUMBER.INVALID: Invalid tracking number.".into()
        ))
    );
    match &results[1].outcome {
        Err(ParcelError::Malformed { detail, excerpt }) => {
            assert_eq!(detail, "scan event 0: it has no date");
            // The excerpt is this number's record, not the start of the whole answer.
            assert!(excerpt.contains("222222222222"), "{excerpt}");
            assert!(!excerpt.contains("111111111111"), "{excerpt}");
        }
        other => panic!("expected a malformed parcel, got {other:?}"),
    }
    assert!(results[2].outcome.is_ok());
    match &results[3].outcome {
        Err(ParcelError::Malformed { detail, .. }) => {
            assert_eq!(detail, "the answer has no result for 444444444444")
        }
        other => panic!("expected a malformed parcel, got {other:?}"),
    }
    // A date sent as a number: that record is unreadable, the others are not.
    match &results[4].outcome {
        Err(ParcelError::Malformed { detail, excerpt }) => {
            assert!(detail.contains("not what the spec says"), "{detail}");
            assert!(excerpt.contains("20240502"), "{excerpt}");
        }
        other => panic!("expected a malformed parcel, got {other:?}"),
    }
}

#[test]
fn answers_that_are_not_what_the_spec_says_fail_the_call_with_the_carriers_words() {
    let fedex = fedex();
    let batch = requests(&["123456789012"]);
    for (garbage, expected) in [
        (
            "<html><head><title>Access Denied</title></head><body>Reference #18</body></html>",
            "not the expected JSON",
        ),
        (
            r#"{"transactionId":"x","output":{"completeTrackResults":[{"trackingNumber":"1234"#,
            "not the expected JSON",
        ),
        (r#"{"transactionId":"x"}"#, "the answer has no output"),
    ] {
        match fedex.parse_answer(&batch, garbage) {
            Err(CarrierError::Malformed { detail, excerpt }) => {
                assert!(detail.contains(expected), "{detail}");
                assert_eq!(excerpt, garbage);
            }
            other => panic!("expected a malformed answer, got {other:?}"),
        }
    }
}

// ---- Over HTTP, against a stand-in FedEx ----

fn account(server: &MockServer) -> CarrierAccount {
    test_support::account(
        "fedex",
        serde_json::json!({"client_id": "l7xx-api-key", "client_secret": "secret-key"}),
        Some(&server.uri()),
    )
}

fn token_answer(token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "access_token": token, "token_type": "bearer", "expires_in": 3599, "scope": "CXS"
    }))
}

async fn token_endpoint(server: &MockServer, token: &str, times: u64) {
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token_answer(token))
        .up_to_n_times(times)
        .expect(times)
        .mount(server)
        .await;
}

const TRACK: &str = "/track/v1/trackingnumbers";

#[tokio::test]
async fn the_request_is_what_fedex_expects_and_the_token_is_reused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_id=l7xx-api-key"))
        .and(body_string_contains("client_secret=secret-key"))
        .respond_with(token_answer("token-1"))
        .expect(1)
        .mount(&server)
        .await;
    // The body of the published example request, for our two numbers.
    let published: serde_json::Value =
        serde_json::from_str(&published("fedex", "example_request.json")).expect("JSON");
    assert_eq!(published["includeDetailedScans"], true);
    let expected = serde_json::json!({
        "includeDetailedScans": true,
        "trackingInfo": [
            {"trackingNumberInfo": {"trackingNumber": "123456789012"}},
            {"trackingNumberInfo": {"trackingNumber": "39936862321"}},
        ]
    });
    Mock::given(method("POST"))
        .and(path(TRACK))
        .and(header("authorization", "Bearer token-1"))
        .and(header("content-type", "application/json"))
        .and(header("x-locale", "en_US"))
        .and(body_json(&expected))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(test_support::published("fedex", "example_response.json")),
        )
        .expect(2)
        .mount(&server)
        .await;
    let fedex = fedex();
    let account = account(&server);
    for _ in 0..2 {
        let results = fedex
            .track(&account, &requests(&["123456789012", "39936862321"]))
            .await
            .expect("an answer");
        assert!(results[0].outcome.is_ok());
        // Unknown inside the 200: that number only.
        assert_eq!(results[1].outcome, Err(ParcelError::NotFound));
    }
    let sent = server.received_requests().await.expect("recorded");
    let ids: Vec<&str> = sent
        .iter()
        .filter(|r| r.url.path() == TRACK)
        .filter_map(|r| r.headers.get("x-customer-transaction-id")?.to_str().ok())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn an_expired_token_is_renewed_once_and_the_call_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token_answer("expired"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    token_endpoint(&server, "fresh", 1).await;
    Mock::given(method("POST"))
        .and(path(TRACK))
        .and(header("authorization", "Bearer expired"))
        .respond_with(ResponseTemplate::new(401).set_body_json(spec_error_example("401")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(TRACK))
        .and(header("authorization", "Bearer fresh"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(published("fedex", "example_response.json")),
        )
        .expect(2)
        .mount(&server)
        .await;
    let fedex = fedex();
    let account = account(&server);
    for _ in 0..2 {
        let results = fedex
            .track(&account, &requests(&["123456789012"]))
            .await
            .expect("an answer after re-authenticating");
        assert!(results[0].outcome.is_ok());
    }
}

#[tokio::test]
async fn a_second_refusal_is_an_auth_error_in_fedex_words() {
    let server = MockServer::start().await;
    token_endpoint(&server, "useless", 2).await;
    Mock::given(method("POST"))
        .and(path(TRACK))
        .respond_with(ResponseTemplate::new(401).set_body_json(spec_error_example("401")))
        .expect(2)
        .mount(&server)
        .await;
    match fedex()
        .track(&account(&server), &requests(&["123456789012"]))
        .await
    {
        Err(CarrierError::Auth(said)) => assert!(said.contains("NOT.AUTHORIZED.ERROR"), "{said}"),
        other => panic!("expected an auth error, got {other:?}"),
    }
}

#[tokio::test]
async fn forbidden_and_missing_credentials_are_auth_errors() {
    let server = MockServer::start().await;
    token_endpoint(&server, "token", 1).await;
    Mock::given(method("POST"))
        .and(path(TRACK))
        .respond_with(ResponseTemplate::new(403).set_body_json(spec_error_example("403")))
        .mount(&server)
        .await;
    match fedex()
        .track(&account(&server), &requests(&["123456789012"]))
        .await
    {
        Err(CarrierError::Auth(said)) => assert!(said.contains("FORBIDDEN.ERROR"), "{said}"),
        other => panic!("expected an auth error, got {other:?}"),
    }
    let mut no_key = account(&server);
    no_key.credentials = serde_json::json!({"client_secret": "secret-key"}).into();
    match fedex().track(&no_key, &requests(&["123456789012"])).await {
        Err(CarrierError::Auth(said)) => assert!(said.contains("client_id"), "{said}"),
        other => panic!("expected an auth error, got {other:?}"),
    }
}

#[tokio::test]
async fn too_many_requests_says_when_to_come_back() {
    let server = MockServer::start().await;
    token_endpoint(&server, "token", 1).await;
    Mock::given(method("POST"))
        .and(path(TRACK))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "10"))
        .mount(&server)
        .await;
    assert_eq!(
        fedex()
            .track(&account(&server), &requests(&["123456789012"]))
            .await,
        Err(CarrierError::RateLimited {
            retry_after: Some(Duration::from_secs(10))
        })
    );
}

#[tokio::test]
async fn a_passing_server_error_is_retried_within_the_call() {
    let server = MockServer::start().await;
    token_endpoint(&server, "token", 1).await;
    Mock::given(method("POST"))
        .and(path(TRACK))
        .respond_with(ResponseTemplate::new(503).set_body_json(spec_error_example("503")))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(TRACK))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(published("fedex", "example_response.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let results = fedex()
        .track(&account(&server), &requests(&["123456789012"]))
        .await
        .expect("an answer on the second attempt");
    assert!(results[0].outcome.is_ok());

    let down = MockServer::start().await;
    token_endpoint(&down, "token", 1).await;
    Mock::given(method("POST"))
        .and(path(TRACK))
        .respond_with(ResponseTemplate::new(500).set_body_json(spec_error_example("500")))
        .expect(3)
        .mount(&down)
        .await;
    match fedex()
        .track(&account(&down), &requests(&["123456789012"]))
        .await
    {
        Err(CarrierError::Transient(said)) => assert!(said.contains("INTERNAL.SERVER.ERROR")),
        other => panic!("expected a transient error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_bad_request_or_a_wrong_url_is_permanent() {
    let server = MockServer::start().await;
    token_endpoint(&server, "token", 1).await;
    Mock::given(method("POST"))
        .and(path(TRACK))
        .respond_with(ResponseTemplate::new(404).set_body_json(spec_error_example("404")))
        .mount(&server)
        .await;
    match fedex()
        .track(&account(&server), &requests(&["123456789012"]))
        .await
    {
        Err(CarrierError::Permanent(said)) => assert!(said.contains("NOT.FOUND.ERROR"), "{said}"),
        other => panic!("expected a permanent error, got {other:?}"),
    }

    let strict = MockServer::start().await;
    token_endpoint(&strict, "token", 1).await;
    Mock::given(method("POST"))
        .and(path(TRACK))
        .respond_with(ResponseTemplate::new(400).set_body_json(spec_error_example("400")))
        .mount(&strict)
        .await;
    match fedex()
        .track(&account(&strict), &requests(&["123456789012"]))
        .await
    {
        Err(CarrierError::Permanent(said)) => {
            assert!(said.contains("TRACKING.TRACKINGNUMBER.EMPTY"), "{said}")
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_html_page_or_truncated_json_is_malformed_with_an_excerpt() {
    for garbage in [
        "<html><body><h1>Service Unavailable</h1>Akamai reference 42</body></html>",
        r#"{"transactionId":"624deea6","output":{"completeTrackResults":[{"trackingNumber":"12345678"#,
    ] {
        let server = MockServer::start().await;
        token_endpoint(&server, "token", 1).await;
        Mock::given(method("POST"))
            .and(path(TRACK))
            .respond_with(ResponseTemplate::new(200).set_body_string(garbage))
            .mount(&server)
            .await;
        match fedex()
            .track(&account(&server), &requests(&["123456789012"]))
            .await
        {
            Err(CarrierError::Malformed { detail, excerpt }) => {
                assert!(detail.contains("not the expected JSON"), "{detail}");
                assert_eq!(excerpt, garbage);
            }
            other => panic!("expected a malformed answer, got {other:?}"),
        }
    }
}

/// A stand-in FedEx that answers every number it is asked about with one pickup scan, and
/// refuses more than 30 numbers the way FedEx would.
struct Echo;

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let asked: serde_json::Value = match serde_json::from_slice(&request.body) {
            Ok(body) => body,
            Err(_) => return ResponseTemplate::new(400),
        };
        let numbers: Vec<String> = asked["trackingInfo"]
            .as_array()
            .map(|infos| {
                infos
                    .iter()
                    .filter_map(|i| i["trackingNumberInfo"]["trackingNumber"].as_str())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if numbers.is_empty() || numbers.len() > MAX_NUMBERS_PER_CALL {
            return ResponseTemplate::new(400).set_body_json(spec_error_example("400"));
        }
        // Answer in reverse order: results are matched by number, not by position.
        let results: Vec<(&str, serde_json::Value)> = numbers
            .iter()
            .rev()
            .map(|n| {
                (
                    n.as_str(),
                    serde_json::json!({"scanEvents": [
                        scan("PU", "", "PU", "2024-05-02T10:00:00-05:00", ("AUSTIN", "TX", "US"))
                    ]}),
                )
            })
            .collect();
        ResponseTemplate::new(200).set_body_string(answer(&results))
    }
}

#[tokio::test]
async fn more_numbers_than_one_call_takes_are_split_and_answered_in_order() {
    let server = MockServer::start().await;
    token_endpoint(&server, "token", 1).await;
    Mock::given(method("POST"))
        .and(path(TRACK))
        .respond_with(Echo)
        .expect(3)
        .mount(&server)
        .await;
    let numbers: Vec<String> = (0..65).map(|i| format!("7946{i:08}")).collect();
    let asked: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let results = fedex()
        .track(&account(&server), &requests(&asked))
        .await
        .expect("a batch");
    let answered: Vec<&str> = results.iter().map(|r| r.tracking_number.as_str()).collect();
    assert_eq!(answered, asked);
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    let sizes: Vec<usize> = server
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.url.path() == TRACK)
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .filter_map(|b| b["trackingInfo"].as_array().map(Vec::len))
        .collect();
    assert_eq!(sizes, [30, 30, 5]);
    assert_eq!(fedex().track(&account(&server), &[]).await, Ok(vec![]));
}

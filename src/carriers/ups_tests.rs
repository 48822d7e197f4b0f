use super::*;
use crate::carriers::test_support::{self, fast_transport, number, published, request, ts};
use crate::domain::Reason;
use jiff::civil::date;
use std::time::Duration;
use wiremock::matchers::{body_string_contains, header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use Reason as R;
use Status as S;

const EXAMPLE_RESPONSE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/carriers/ups/example_response.json"
));

fn ups() -> Ups {
    Ups::bundled(fast_transport())
}

/// Read a `200` body, expecting a report.
fn report(body: &str, tracking: &str) -> TrackReport {
    ups()
        .parse_details(&number(tracking), body)
        .expect("a readable answer")
        .expect("a report")
}

/// Everything asserted about one event, in one line per event.
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

#[test]
fn the_bundled_data_file_parses_and_maps_the_tricky_codes_carefully() {
    let profile = CarrierProfile::from_toml("carriers/ups.toml", BUNDLED_PROFILE).expect("valid");
    assert_eq!(profile.code.as_str(), "ups");
    assert_eq!(profile.limits.batch_size, 1);
    assert!(profile.limits.daily_quota.is_none());
    let meaning = |code: &str| {
        profile
            .normalise(code)
            .map(|m| (m.status, m.reason))
            .unwrap_or_else(|| panic!("{code} is mapped"))
    };
    // Held for a later day: nobody tried to deliver it.
    assert_eq!(meaning("019"), (S::InTransit, None));
    assert_eq!(meaning("017"), (S::AvailableForPickup, None));
    assert_eq!(meaning("040"), (S::AvailableForPickup, None));
    assert_eq!(meaning("022"), (S::AttemptFailed, None));
    assert_eq!(
        meaning("012"),
        (S::InTransit, Some(R::CustomsClearanceStarted))
    );
    assert_eq!(meaning("058"), (S::Exception, Some(R::CustomsHeld)));
    assert_eq!(meaning("SR"), (S::InTransit, Some(R::CustomsReleased)));
    assert_eq!(meaning("035"), (S::Exception, Some(R::ReturningToSender)));
    assert_eq!(meaning("034"), (S::Exception, Some(R::ReturnedToSender)));
    assert_eq!(meaning("068"), (S::Exception, Some(R::Lost)));
    assert_eq!(meaning("052"), (S::InTransit, Some(R::WeatherDelay)));
    assert_eq!(meaning("type:D"), (S::Delivered, None));
    assert_eq!(
        meaning("delivered_at:FRONT DOOR"),
        (S::Delivered, Some(R::DeliveredToSafePlace))
    );
    assert_eq!(
        meaning("delivered_at:NEIGHBOR"),
        (S::Delivered, Some(R::DeliveredToNeighbour))
    );
    for change in &profile.delivery_changes {
        assert!(change.url.contains("{tracking_number}"), "{change:?}");
    }
}

/// `example_response.json`: the "Tracking Success" sample of UPS's Postman collection.
#[test]
fn the_published_example_response_is_read_field_by_field() {
    let report = report(
        &published("ups", "example_response.json"),
        "1Z1442YY7229014688",
    );
    assert_eq!(report.events.len(), 2);
    // 2022-01-26 16:30 in Paramus, New Jersey: Eastern Standard Time.
    assert_event(
        &report.events[0],
        (S::Delivered, None),
        "2022-01-26T21:30:00Z",
        Some(-5 * 3600),
        Some("PARAMUS, US"),
        ("F4", "DELIVERED"),
    );
    // A label-created scan names only the country.
    assert_event(
        &report.events[1],
        (S::InfoReceived, None),
        "2022-01-26T20:16:41Z",
        Some(-5 * 3600),
        Some("US"),
        (
            "MP",
            "Shipper created a label, UPS has not received the package yet.",
        ),
    );
    // Only a delivered date (`DEL`): that is no estimate. No signature, no access point.
    assert_eq!(report.estimate, None);
    assert_eq!(report.signed_by, None);
    assert_eq!(report.pickup_point, None);
    assert_eq!(report.change_delivery_url, None);
}

/// `UPS_Tracking.postman_collection.karrio-vendor.json`: UPS's own Postman collection, whose
/// "Tracking Success" example must read exactly like the extracted file.
#[test]
fn the_postman_collections_example_reads_like_the_extracted_one() {
    let collection: serde_json::Value = serde_json::from_str(&published(
        "ups",
        "UPS_Tracking.postman_collection.karrio-vendor.json",
    ))
    .expect("the collection is JSON");
    let request = &collection["item"][0]["request"];
    assert_eq!(request["method"], "GET");
    assert_eq!(
        request["url"]["path"],
        serde_json::json!(["api", "track", "v1", "details", ":inquiryNumber"])
    );
    let body = collection["item"][0]["response"][0]["body"]
        .as_str()
        .expect("an example body");
    assert_eq!(
        report(body, "1Z1442YY7229014688"),
        report(EXAMPLE_RESPONSE, "1Z1442YY7229014688")
    );
}

/// `Tracking.yaml`: an activity built from the spec's own field examples (gmtDate `20210210`,
/// gmtTime `74700`, gmtOffset `-05:00`, status code `SR`, "Your package was released by the
/// customs agency.", statusCode `003`, type `X`, Wayne NJ).
#[test]
fn the_specs_field_examples_are_read_with_the_gmt_fields() {
    let body = r#"{"trackResponse":{"shipment":[{"inquiryNumber":"1Z023E2X0214323462","package":[{
        "trackingNumber":"1Z023E2X0214323462",
        "activity":[{
            "location":{"address":{"addressLine1":"100 Main St","city":"Wayne","stateProvince":"NJ",
                "postalCode":"07470","country":"US","countryCode":"US"},"slic":"8566"},
            "status":{"type":"X","description":"Your package was released by the customs agency.",
                "code":"SR","statusCode":"003","simplifiedTextDescription":"Delivered"},
            "date":"20210210","time":"071356",
            "gmtDate":"20210210","gmtTime":"74700","gmtOffset":"-05:00","logicalScan":false
        }],
        "deliveryDate":[{"type":"SDD","date":"20210212"}],
        "packageCount":2}]}]}}"#;
    let report = report(body, "1Z023E2X0214323462");
    // The GMT fields win over the local ones; `74700` lacks its leading zero. The activity code
    // (SR) is more precise than the package status code (003) and is looked up first.
    assert_event(
        &report.events[0],
        (S::InTransit, Some(R::CustomsReleased)),
        "2021-02-10T07:47:00Z",
        Some(-5 * 3600),
        Some("Wayne, US"),
        ("SR", "Your package was released by the customs agency."),
    );
    assert_eq!(report.estimate, Some(DeliveryWindow::on(date(2021, 2, 12))));
}

/// Live Track v1 answers write `gmtTime` and `time` as `HH:MM:SS`, unlike the spec's `74700`.
#[test]
fn live_answers_with_colons_in_their_times_are_read() {
    let body = |gmt_offset: &str| {
        format!(
            r#"{{"trackResponse":{{"shipment":[{{"package":[{{
            "trackingNumber":"1Z023E2X0214323462",
            "activity":[{{
                "location":{{"address":{{"city":"Louisville","stateProvince":"KY","countryCode":"US"}}}},
                "status":{{"type":"I","description":"Arrived at Facility","code":"AR","statusCode":"005"}},
                "date":"20241125","time":"04:41:00",
                "gmtDate":"20241125","gmtTime":"09:41:00","gmtOffset":"{gmt_offset}"
            }}]}}]}}]}}}}"#
        )
    };
    for offset in ["-05:00", "-0500"] {
        let report = report(&body(offset), "1Z023E2X0214323462");
        assert_event(
            &report.events[0],
            (S::InTransit, None),
            "2024-11-25T09:41:00Z",
            Some(-5 * 3600),
            Some("Louisville, US"),
            ("AR", "Arrived at Facility"),
        );
    }

    // Without the GMT fields, the local `time` with colons is read in the scan's zone.
    let local_only = r#"{"trackResponse":{"shipment":[{"package":[{
        "trackingNumber":"1Z023E2X0214323462",
        "activity":[{
            "location":{"address":{"city":"Louisville","stateProvince":"KY","countryCode":"US"}},
            "status":{"type":"I","description":"Arrived at Facility","code":"AR","statusCode":"005"},
            "date":"20241125","time":"04:41:00"
        }]}]}]}}"#;
    let report = report(local_only, "1Z023E2X0214323462");
    assert_eq!(report.events[0].time.at, ts("2024-11-25T09:41:00Z"));
}

#[test]
fn times_in_both_spellings_and_nothing_else() {
    assert_eq!(clock_digits("74700").as_deref(), Some("074700"));
    assert_eq!(clock_digits("071356").as_deref(), Some("071356"));
    assert_eq!(clock_digits("09:41:00").as_deref(), Some("094100"));
    assert_eq!(clock_digits("9:41").as_deref(), Some("094100"));
    assert_eq!(clock_digits("09:41:00:00"), None);
    assert_eq!(clock_digits("09::00"), None);
    assert_eq!(clock_digits("9am"), None);
    assert_eq!(clock_digits("1234567"), None);
    assert_eq!(clock_digits(""), None);
}

/// `014` is the paperwork for customs, not a release; `092` (type `X`, no activity code) is a
/// hold at the clearing agency, not a bare exception.
#[test]
fn clearance_paperwork_is_not_a_release_and_the_clearing_agency_is_a_customs_hold() {
    let body = r#"{"trackResponse":{"shipment":[{"package":[{
        "trackingNumber":"1Z023E2X0214323462",
        "activity":[
            {"location":{"address":{"city":"Koeln","countryCode":"DE"}},
             "status":{"type":"X","description":"The package is at the clearing agency awaiting final release.","statusCode":"092"},
             "date":"20241126","time":"101500"},
            {"location":{"address":{"city":"Koeln","countryCode":"DE"}},
             "status":{"type":"I","description":"UPS has received the information needed to submit your package for clearance.","statusCode":"014"},
             "date":"20241126","time":"081500"}
        ]}]}]}}"#;
    let report = report(body, "1Z023E2X0214323462");
    let meanings: Vec<_> = report
        .events
        .iter()
        .map(|e| (e.status, e.reason, e.raw_code.as_str()))
        .collect();
    assert_eq!(
        meanings,
        [
            (S::Exception, Some(R::CustomsHeld), "092"),
            (S::InTransit, Some(R::CustomsClearanceStarted), "014"),
        ]
    );
}

/// UPS sends `accessPointInformation` for a parcel that was only offered an Access Point; one
/// delivered to the door was never held there and shows no pickup point.
#[test]
fn a_parcel_delivered_to_the_door_shows_no_access_point() {
    let body = r#"{"trackResponse":{"shipment":[{"package":[{
        "trackingNumber":"1ZACCESS0000000003",
        "accessPointInformation":{"pickupByDate":"20240313"},
        "activity":[
            {"location":{"address":{"city":"SEATTLE","stateProvince":"WA","countryCode":"US"}},
             "status":{"type":"D","description":"DELIVERED","code":"FS","statusCode":"011"},
             "date":"20240306","time":"101500"}
        ]}]}]}}"#;
    let report = report(body, "1ZACCESS0000000003");
    assert_eq!(report.events[0].status, S::Delivered);
    assert_eq!(report.pickup_point, None);
}

#[test]
fn estimate_signature_pickup_point_and_where_it_was_left() {
    let body = r#"{"trackResponse":{"shipment":[{"package":[{
        "trackingNumber":"1ZACCESS0000000001",
        "deliveryDate":[{"type":"SDD","date":"20240304"},{"type":"RDD","date":"20240306"}],
        "accessPointInformation":{"pickupByDate":"20240313"},
        "deliveryInformation":{"location":"Front Door","receivedBy":"  MILLER "},
        "activity":[
            {"location":{"address":{"addressLine1":"12 Elm St","city":"SEATTLE","stateProvince":"WA",
                "postalCode":"98101","countryCode":"US"}},
             "status":{"type":"I","description":"Delivered to UPS Access Point","code":"2W","statusCode":"040"},
             "date":"20240306","time":"101500"},
            {"location":{"address":{"city":"SEATTLE","stateProvince":"WA","countryCode":"US"}},
             "status":{"type":"I","description":"The receiver was not available. We'll try again.","code":"48","statusCode":"019"},
             "date":"20240305","time":"090000"}
        ]}]}]}}"#;
    let waiting = report(body, "1ZACCESS0000000001");
    // A bare local time in Washington state is Pacific time, not the country's Eastern.
    assert_event(
        &waiting.events[0],
        (S::AvailableForPickup, None),
        "2024-03-06T18:15:00Z",
        Some(-8 * 3600),
        Some("SEATTLE, US"),
        ("2W", "Delivered to UPS Access Point"),
    );
    // Held for a later day is a delay, not a failed attempt.
    assert_eq!(
        (waiting.events[1].status, waiting.events[1].reason),
        (S::InTransit, None)
    );
    assert_eq!(waiting.estimate, Some(DeliveryWindow::on(date(2024, 3, 6))));
    assert_eq!(waiting.signed_by.as_deref(), Some("MILLER"));
    assert_eq!(
        waiting.pickup_point,
        Some(PickupPoint {
            name: "UPS Access Point".into(),
            address: Some("12 Elm St, 98101 SEATTLE, US".into()),
            hold_until: Some(date(2024, 3, 13)),
        })
    );

    let delivered = r#"{"trackResponse":{"shipment":[{"package":[{
        "deliveryInformation":{"location":"Front Door","receivedBy":""},
        "activity":[{"location":{"address":{"city":"BERLIN","countryCode":"DE"}},
            "status":{"type":"D","description":"DELIVERED","code":"FS","statusCode":"011"},
            "date":"20240706","time":"143000"}]}]}]}}"#;
    let left = report(delivered, "1ZACCESS0000000002");
    assert_event(
        &left.events[0],
        (S::Delivered, Some(R::DeliveredToSafePlace)),
        "2024-07-06T12:30:00Z",
        Some(2 * 3600),
        Some("BERLIN, DE"),
        ("FS", "DELIVERED"),
    );
    assert_eq!(left.signed_by, None, "an empty receivedBy is nobody");
}

#[test]
fn an_unmapped_code_never_looks_worse_than_in_transit_and_keeps_the_carriers_words() {
    let body = r#"{"trackResponse":{"shipment":[{"package":[{"activity":[
        {"location":{"address":{"city":"LOUISVILLE","stateProvince":"KY","countryCode":"US"}},
         "status":{"type":"X","description":"A brand new kind of exception","code":"Q9","statusCode":"999"},
         "date":"20240115","time":"080000"},
        {"status":{"type":"ZZ","description":"Something UPS invented","code":"Q8"},
         "date":"20240114","time":"080000"},
        {"status":{"type":"O","description":"A new way of saying out for delivery","code":"Q6"},
         "date":"20240116","time":"080000"}]}]}]}}"#;
    let report = report(body, "1ZUNKNOWN000000001");
    // An unknown code of type X is not taken for trouble: in transit, with UPS's words.
    assert_event(
        &report.events[0],
        (S::InTransit, None),
        "2024-01-15T13:00:00Z",
        Some(-5 * 3600),
        Some("LOUISVILLE, US"),
        ("Q9", "A brand new kind of exception"),
    );
    // Not even the type is known: in transit, in UPS's home zone, the raw code kept.
    assert_event(
        &report.events[1],
        (S::InTransit, None),
        "2024-01-14T13:00:00Z",
        Some(-5 * 3600),
        None,
        ("Q8", "Something UPS invented"),
    );
    // A type that tells of progress is believed.
    assert_eq!(report.events[2].status, S::OutForDelivery);
}

#[test]
fn an_unmapped_code_is_logged_once_not_at_every_poll() {
    let ups = ups();
    let body = r#"{"trackResponse":{"shipment":[{"package":[{"activity":[
        {"status":{"type":"I","description":"New scan","code":"Q7","statusCode":"998"},
         "date":"20240115","time":"080000"}]}]}]}}"#;
    for _ in 0..3 {
        let report = ups
            .parse_details(&number("1ZUNKNOWN000000001"), body)
            .expect("readable")
            .expect("a report");
        assert_eq!(report.events[0].status, S::InTransit);
    }
    let warned = ups.unmapped.logged();
    assert_eq!(
        warned.iter().collect::<Vec<_>>(),
        ["code=Q7 statusCode=998 type=I"]
    );
}

#[test]
fn answers_that_are_not_what_the_spec_says_fail_the_parcel_or_the_call_never_panic() {
    let ups = ups();
    let n = number("1Z1442YY7229014688");
    // Garbage is the whole call's problem, with the carrier's words kept.
    for garbage in [
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
        r#"{"trackResponse":{"shipment":[{"package":[{"activity":[{"status":{"ty"#,
    ] {
        match ups.parse_details(&n, garbage) {
            Err(CarrierError::Malformed { detail, excerpt }) => {
                assert!(detail.contains("not the expected JSON"), "{detail}");
                assert_eq!(excerpt, garbage.trim());
            }
            other => panic!("expected a malformed answer, got {other:?}"),
        }
    }
    // JSON without what the spec promises fails this parcel only, naming what is missing.
    let cases = [
        (r#"{"something":"else"}"#, "no trackResponse"),
        (r#"{"trackResponse":{"shipment":[]}}"#, "no shipment"),
        (
            r#"{"trackResponse":{"shipment":[{"package":[{"activity":[{"status":{"code":"FS"},"time":"101500"}]}]}]}}"#,
            "activity 0: it has no date",
        ),
        (
            r#"{"trackResponse":{"shipment":[{"package":[{"activity":[{"status":{"code":"FS"},"date":"2024-03-01","time":"101500"}]}]}]}}"#,
            "2024-03-01",
        ),
        (
            r#"{"trackResponse":{"shipment":[{"package":[{"activity":[{"date":"20240301","time":"101500"}]}]}]}}"#,
            "it has no status",
        ),
    ];
    for (body, expected) in cases {
        match ups.parse_details(&n, body) {
            Ok(Err(ParcelError::Malformed { detail, excerpt })) => {
                assert!(detail.contains(expected), "{detail}");
                assert_eq!(excerpt, body);
            }
            other => panic!("{body}: expected a malformed parcel, got {other:?}"),
        }
    }
    // A shipment with UPS's "not found" warning and no package: not known yet.
    let unknown = r#"{"trackResponse":{"shipment":[{"inquiryNumber":"1Z1442YY7229014688",
        "warnings":[{"code":"TW0001","message":"Tracking Information Not Found"}]}]}}"#;
    assert_eq!(
        ups.parse_details(&n, unknown),
        Ok(Err(ParcelError::NotFound))
    );
}

#[test]
fn offsets_in_the_spellings_ups_uses() {
    assert_eq!(parse_offset("-05:00").map(|o| o.seconds()), Some(-18000));
    assert_eq!(parse_offset("+0530").map(|o| o.seconds()), Some(19800));
    assert_eq!(parse_offset("+1").map(|o| o.seconds()), Some(3600));
    assert_eq!(parse_offset("Z").map(|o| o.seconds()), Some(0));
    assert_eq!(parse_offset("-25:00"), None);
    assert_eq!(parse_offset("EST"), None);
    assert_eq!(parse_offset(""), None);
}

// ---- Over HTTP, against a stand-in UPS ----

fn account(server: &MockServer) -> CarrierAccount {
    test_support::account(
        "ups",
        serde_json::json!({"client_id": "waymark-app", "client_secret": "s3cret"}),
        Some(&format!("{}/", server.uri())),
    )
}

fn requests(numbers: &[&str]) -> Vec<TrackRequest> {
    numbers.iter().map(|n| request(n)).collect()
}

fn token_answer(token: &str) -> ResponseTemplate {
    // UPS sends expires_in as a string (OAuthClientCredentials.yaml).
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "token_type": "Bearer", "issued_at": "1700000000000", "client_id": "waymark-app",
        "access_token": token, "scope": "", "expires_in": "14399", "refresh_count": "0",
        "status": "approved"
    }))
}

async fn token_endpoint(server: &MockServer, token: &str, times: u64) {
    Mock::given(method("POST"))
        .and(path("/security/v1/oauth/token"))
        .respond_with(token_answer(token))
        .up_to_n_times(times)
        .expect(times)
        .mount(server)
        .await;
}

fn details(tracking: &str) -> String {
    format!("/api/track/v1/details/{tracking}")
}

fn not_found_body() -> serde_json::Value {
    serde_json::json!({"response": {"errors": [
        {"code": "TW0001", "message": "Tracking Information Not Found"}
    ]}})
}

#[tokio::test]
async fn the_request_is_what_ups_expects_and_the_token_is_reused() {
    let server = MockServer::start().await;
    token_endpoint(&server, "token-1", 1).await;
    Mock::given(method("GET"))
        .and(path(details("1Z1442YY7229014688")))
        .and(query_param("locale", "en_US"))
        .and(query_param("returnSignature", "false"))
        .and(header("authorization", "Bearer token-1"))
        .and(header("transactionSrc", "waymark"))
        .and(header_exists("transId"))
        .respond_with(ResponseTemplate::new(200).set_body_string(EXAMPLE_RESPONSE))
        .expect(2)
        .mount(&server)
        .await;
    let ups = ups();
    let account = account(&server);
    for _ in 0..2 {
        let results = ups
            .track(&account, &requests(&["1Z1442YY7229014688"]))
            .await
            .expect("an answer");
        let report = results[0].outcome.as_ref().expect("a report");
        assert_eq!(report.events[0].status, S::Delivered);
    }

    let received = server.received_requests().await.expect("recorded");
    let token_call = &received[0];
    // Client id and secret as HTTP basic auth: base64("waymark-app:s3cret").
    assert_eq!(
        token_call
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some("Basic d2F5bWFyay1hcHA6czNjcmV0")
    );
    let form = String::from_utf8_lossy(&token_call.body);
    assert!(form.contains("grant_type=client_credentials"), "{form}");
    let ids: Vec<String> = received[1..]
        .iter()
        .map(|r: &Request| {
            r.headers
                .get("transId")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(
        ids.iter().all(|id| !id.is_empty() && id.len() <= 32),
        "{ids:?}"
    );
    assert_ne!(ids[0], ids[1], "transId is unique per request");
}

#[tokio::test]
async fn a_refused_token_is_renewed_once_and_the_call_retried() {
    let server = MockServer::start().await;
    // The first token is revoked at UPS; the second works.
    Mock::given(method("POST"))
        .and(path("/security/v1/oauth/token"))
        .respond_with(token_answer("revoked"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    token_endpoint(&server, "fresh", 1).await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer revoked"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!(
            {"response":{"errors":[{"code":"250002","message":"Invalid Authentication Information."}]}}
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_string(EXAMPLE_RESPONSE))
        .expect(2)
        .mount(&server)
        .await;
    let ups = ups();
    let account = account(&server);
    let results = ups
        .track(&account, &requests(&["1Z1442YY7229014688"]))
        .await
        .expect("an answer after re-authenticating");
    assert!(results[0].outcome.is_ok());
    // The renewed token is cached: no third token request.
    ups.track(&account, &requests(&["1Z1442YY7229014688"]))
        .await
        .expect("an answer");
}

#[tokio::test]
async fn a_second_refusal_is_an_auth_error() {
    let server = MockServer::start().await;
    token_endpoint(&server, "useless", 2).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!(
            {"response":{"errors":[{"code":"250002","message":"Invalid Authentication Information."}]}}
        )))
        .expect(2)
        .mount(&server)
        .await;
    match ups()
        .track(&account(&server), &requests(&["1Z1442YY7229014688"]))
        .await
    {
        Err(CarrierError::Auth(said)) => {
            assert!(
                said.contains("Invalid Authentication Information"),
                "{said}"
            )
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
}

#[tokio::test]
async fn refused_or_missing_credentials_are_auth_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/security/v1/oauth/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!(
            {"response":{"errors":[{"code":"10400","message":"Invalid/Missing Authorization Header"}]}}
        )))
        .mount(&server)
        .await;
    let batch = requests(&["1Z1442YY7229014688"]);
    match ups().track(&account(&server), &batch).await {
        Err(CarrierError::Auth(said)) => assert!(said.contains("10400"), "{said}"),
        other => panic!("expected an auth error, got {other:?}"),
    }
    let mut no_secret = account(&server);
    no_secret.credentials = serde_json::json!({"client_id": "waymark-app"}).into();
    match ups().track(&no_secret, &batch).await {
        Err(CarrierError::Auth(said)) => assert!(said.contains("client_secret"), "{said}"),
        other => panic!("expected an auth error, got {other:?}"),
    }
}

#[tokio::test]
async fn too_many_requests_says_when_to_come_back() {
    let server = MockServer::start().await;
    token_endpoint(&server, "token", 1).await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "30")
                .set_body_json(serde_json::json!(
                    {"response":{"errors":[{"code":"10429","message":"Too Many Requests"}]}}
                )),
        )
        .mount(&server)
        .await;
    assert_eq!(
        ups()
            .track(&account(&server), &requests(&["1Z1442YY7229014688"]))
            .await,
        Err(CarrierError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        })
    );
}

#[tokio::test]
async fn a_passing_server_error_is_retried_within_the_call() {
    let server = MockServer::start().await;
    token_endpoint(&server, "token", 1).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).set_body_string("Resource is not available"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string(EXAMPLE_RESPONSE))
        .expect(1)
        .mount(&server)
        .await;
    let results = ups()
        .track(&account(&server), &requests(&["1Z1442YY7229014688"]))
        .await
        .expect("an answer on the second attempt");
    assert!(results[0].outcome.is_ok());

    // A server error that persists is transient for the scheduler.
    let down = MockServer::start().await;
    token_endpoint(&down, "token", 1).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_string("Internal server error"))
        .expect(3)
        .mount(&down)
        .await;
    match ups()
        .track(&account(&down), &requests(&["1Z1442YY7229014688"]))
        .await
    {
        Err(CarrierError::Transient(said)) => assert!(said.contains("Internal server error")),
        other => panic!("expected a transient error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_or_refused_number_fails_only_that_parcel() {
    let server = MockServer::start().await;
    token_endpoint(&server, "token", 1).await;
    Mock::given(method("GET"))
        .and(path(details("1ZNEWLABEL00000001")))
        .respond_with(ResponseTemplate::new(404).set_body_json(not_found_body()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(details("1ZBAD")))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!(
            {"response":{"errors":[{"code":"TV1002","message":"Invalid inquiry number"}]}}
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(details("1Z1442YY7229014688")))
        .respond_with(ResponseTemplate::new(200).set_body_string(EXAMPLE_RESPONSE))
        .mount(&server)
        .await;
    let batch = requests(&["1ZNEWLABEL00000001", "1ZBAD", "1Z1442YY7229014688"]);
    let results = ups()
        .track(&account(&server), &batch)
        .await
        .expect("a batch");
    let answered: Vec<&str> = results.iter().map(|r| r.tracking_number.as_str()).collect();
    assert_eq!(
        answered,
        ["1ZNEWLABEL00000001", "1ZBAD", "1Z1442YY7229014688"]
    );
    assert_eq!(results[0].outcome, Err(ParcelError::NotFound));
    assert_eq!(
        results[1].outcome,
        Err(ParcelError::Rejected(
            "TV1002: Invalid inquiry number".into()
        ))
    );
    assert!(results[2].outcome.is_ok());
}

#[tokio::test]
async fn a_404_without_ups_words_is_a_wrong_address_not_an_unknown_parcel() {
    let server = MockServer::start().await;
    token_endpoint(&server, "token", 1).await;
    // Nothing else mounted: wiremock answers 404 with an empty body, like a wrong base URL.
    match ups()
        .track(&account(&server), &requests(&["1Z1442YY7229014688"]))
        .await
    {
        Err(CarrierError::Permanent(said)) => assert!(said.contains("404"), "{said}"),
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_html_page_instead_of_json_is_malformed_with_an_excerpt() {
    let server = MockServer::start().await;
    token_endpoint(&server, "token", 1).await;
    let page = "<!DOCTYPE html><html><body>Service temporarily down for maintenance</body></html>";
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/html")
                .set_body_string(page),
        )
        .mount(&server)
        .await;
    match ups()
        .track(&account(&server), &requests(&["1Z1442YY7229014688"]))
        .await
    {
        Err(CarrierError::Malformed { detail, excerpt }) => {
            assert!(detail.contains("not the expected JSON"), "{detail}");
            assert!(excerpt.contains("down for maintenance"), "{excerpt}");
        }
        other => panic!("expected a malformed answer, got {other:?}"),
    }
}

#[tokio::test]
async fn more_numbers_than_one_call_takes_become_calls_in_order() {
    let server = MockServer::start().await;
    token_endpoint(&server, "token", 1).await;
    let numbers = [
        "1ZAAA0000000000001",
        "1ZAAA0000000000002",
        "1ZAAA0000000000003",
    ];
    for n in numbers {
        let body = EXAMPLE_RESPONSE.replace("1Z1442YY7229014688", n);
        Mock::given(method("GET"))
            .and(path(details(n)))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .expect(1)
            .mount(&server)
            .await;
    }
    let ups = ups();
    assert!(requests(&numbers).len() > ups.profile().limits.batch_size);
    let results = ups
        .track(&account(&server), &requests(&numbers))
        .await
        .expect("a batch");
    let answered: Vec<&str> = results.iter().map(|r| r.tracking_number.as_str()).collect();
    assert_eq!(answered, numbers);
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    let calls = server.received_requests().await.expect("recorded");
    let detail_paths: Vec<&str> = calls
        .iter()
        .filter(|r| r.method == wiremock::http::Method::GET)
        .map(|r| r.url.path())
        .collect();
    assert_eq!(
        detail_paths,
        numbers.iter().map(|n| details(n)).collect::<Vec<_>>()
    );
    assert_eq!(ups.track(&account(&server), &[]).await, Ok(vec![]));
}

#[tokio::test]
async fn the_token_form_is_what_ups_documents() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/security/v1/oauth/token"))
        .and(header("authorization", "Basic d2F5bWFyay1hcHA6czNjcmV0"))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(token_answer("token"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(not_found_body()))
        .mount(&server)
        .await;
    let results = ups()
        .track(&account(&server), &requests(&["1Z1442YY7229014688"]))
        .await
        .expect("a batch");
    assert_eq!(results[0].outcome, Err(ParcelError::NotFound));
}

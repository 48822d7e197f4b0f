use super::*;
use crate::carriers::test_support::{self, fast_transport, number, published, request, ts};
use crate::domain::{DeliveryWindow, Reason, Status};
use jiff::civil::date;
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn adapter() -> Dhl {
    Dhl::bundled(fast_transport())
}

fn account(base_url: &str) -> CarrierAccount {
    test_support::account("dhl", json!({ "api_key": "test-key" }), Some(base_url))
}

/// The parcel report of a `200` body, or the test fails saying why.
fn report_of(body: &str, tracking: &str) -> TrackReport {
    adapter()
        .read_answer(&number(tracking), body)
        .expect("a readable answer")
        .expect("a report for the parcel")
}

/// An answer for `id` with the given events, in DHL's shape (our own, built from the spec's
/// schema: DHL publishes a single one-event example only).
fn answer_with(id: &str, events: serde_json::Value) -> String {
    json!({
        "shipments": [{
            "id": id,
            "service": "express",
            "destination": { "address": { "countryCode": "DE", "addressLocality": "MUENCHEN" } },
            "events": events
        }]
    })
    .to_string()
}

#[test]
fn the_data_file_parses_with_dhls_limits() {
    let profile = CarrierProfile::from_toml("carriers/dhl.toml", BUNDLED_PROFILE).expect("valid");
    assert_eq!(profile.code.as_str(), "dhl");
    assert_eq!(profile.limits.batch_size, 1);
    assert_eq!(profile.limits.daily_quota, Some(250));
    assert_eq!(profile.limits.max_fetches_per_shipment_per_day, Some(10));
    assert!((profile.limits.requests_per_second - 0.2).abs() < f64::EPSILON);
    // Ten fetches a day are spent on the delivery day: a morning watched every 45 minutes from
    // 07:30 and a van polled every 50 (the scheduler stops at the tenth fetch), and once between
    // hubs in a day and a half.
    let c = &profile.cadence;
    assert_eq!(
        (c.near_estimate, c.out_for_delivery, c.in_transit),
        (45, 50, 2160)
    );
    assert_eq!(c.out_for_delivery_from, jiff::civil::time(7, 30, 0, 0));
    for coarse in ["pre-transit", "transit", "delivered", "failure", "unknown"] {
        assert!(profile.normalise(coarse).is_some(), "{coarse} is mapped");
    }
    let links = profile.delivery_change_links(&number("00340434292135100179"));
    assert_eq!(links.len(), 4);
    assert!(
        links
            .iter()
            .all(|(_, url)| url.contains("piececode=00340434292135100179"))
    );
    assert!(
        profile
            .tracking_url(&number("7777777770"))
            .ends_with("tracking-id=7777777770")
    );
}

#[test]
fn the_published_example_answer_is_normalised_field_by_field() {
    // example_response.json: DHL's spec example values (not a real parcel), with its one event.
    let report = report_of(&published("dhl", "example_response.json"), "7777777770");
    assert_eq!(report.events.len(), 1);
    let scan = &report.events[0];
    // "2018-03-02T07:53:47" has no offset: it is read in the scan's country (NL, UTC+1 in March).
    assert_eq!(scan.time.at, ts("2018-03-02T06:53:47Z"));
    assert_eq!(scan.time.offset_seconds, Some(3600));
    // The finer status "DELIVERED" decides, not the coarse "pre-transit" next to it.
    assert_eq!(scan.status, Status::Delivered);
    assert_eq!(scan.reason, None);
    assert_eq!(scan.raw_code, "DELIVERED");
    assert_eq!(scan.raw_text, "JESSICA");
    // "Oderweg 2, AMSTERDAM": the street is dropped, the country added.
    assert_eq!(scan.location.as_deref(), Some("AMSTERDAM, NL"));
    // The time frame 2018-08-03T00:00Z..2018-08-03T22:00Z is one day.
    assert_eq!(report.estimate, Some(DeliveryWindow::on(date(2018, 8, 3))));
    assert_eq!(report.signed_by.as_deref(), Some("John"));
    assert_eq!(
        report.change_delivery_url.as_deref(),
        Some(
            "https://www.dhl.de/de/privatkunden.html?piececode=7777777770&verfuegen_selected_tab=FIRST"
        )
    );
    assert_eq!(report.pickup_point, None);

    // karrio's copy of the same spec example reads the same.
    let karrio: serde_json::Value =
        serde_json::from_str(&published("dhl", "karrio_schema_tracking.json")).expect("JSON");
    assert_eq!(
        report_of(&karrio["trackingResponse"].to_string(), "7777777770"),
        report
    );
}

#[test]
fn without_events_the_current_status_is_the_scan() {
    // The published example without its events list: only `status` is left, with a `Z` time.
    let mut answer: serde_json::Value =
        serde_json::from_str(&published("dhl", "example_response.json")).expect("JSON");
    answer["shipments"][0]
        .as_object_mut()
        .expect("a shipment")
        .remove("events");
    let report = report_of(&answer.to_string(), "7777777770");
    assert_eq!(report.events.len(), 1);
    let scan = &report.events[0];
    assert_eq!(scan.time.at, ts("2018-03-02T07:53:47Z"));
    assert_eq!(scan.time.offset_seconds, Some(0));
    assert_eq!((scan.status, scan.reason), (Status::Delivered, None));
    assert_eq!(scan.location.as_deref(), Some("AMSTERDAM, NL"));
}

#[test]
fn an_express_journey_is_normalised_event_by_event() {
    let body = answer_with(
        "1234567890",
        json!([
            {
                "timestamp": "2024-03-06T11:02:00+01:00",
                "location": { "address": { "countryCode": "DE", "addressLocality": "MUENCHEN" } },
                "statusCode": "delivered", "status": "delivered", "description": "Delivered"
            },
            {
                "timestamp": "2024-03-06T07:40:00",
                "location": { "address": { "countryCode": "DE", "addressLocality": "MUENCHEN" } },
                "statusCode": "transit", "status": "transit", "description": "With delivery courier"
            },
            {
                "timestamp": "2024-03-05T16:10:00Z",
                "location": { "address": { "countryCode": "DE", "addressLocality": "LEIPZIG - GERMANY" } },
                "statusCode": "transit", "status": "transit",
                "description": "Processed at LEIPZIG - GERMANY",
                "remark": "The shipment is pending completion of customs inspection."
            },
            {
                "timestamp": "2024-03-05T09:00:00",
                "statusCode": "transit", "status": "transit",
                "description": "Arrived at DHL Sort Facility LEIPZIG - GERMANY"
            },
            {
                "timestamp": "2024-03-04T22:15:00-05:00",
                "location": { "address": { "countryCode": "US", "addressLocality": "CINCINNATI HUB, OH" } },
                "statusCode": "transit", "status": "transit", "description": "Customs status updated"
            },
            {
                "timestamp": "2024-03-04T08:00:00-05:00",
                "location": { "address": { "countryCode": "US", "addressLocality": "NEW YORK" } },
                "statusCode": "pre-transit", "description": "Shipment information received"
            }
        ]),
    );
    let report = report_of(&body, "1234567890");
    let scans = &report.events;
    assert_eq!(scans.len(), 6);

    // `status` repeats the coarse category, so the description decides.
    assert_eq!(
        (scans[0].status, scans[0].reason),
        (Status::Delivered, None)
    );
    assert_eq!(scans[0].time.at, ts("2024-03-06T10:02:00Z"));
    assert_eq!(scans[0].time.offset_seconds, Some(3600));
    assert_eq!(scans[0].raw_code, "delivered");
    assert_eq!(scans[0].raw_text, "Delivered");
    assert_eq!(scans[0].location.as_deref(), Some("MUENCHEN, DE"));

    // Bare local time in Germany.
    assert_eq!(scans[1].status, Status::OutForDelivery);
    assert_eq!(scans[1].time.at, ts("2024-03-06T06:40:00Z"));
    assert_eq!(scans[1].time.offset_seconds, Some(3600));

    // The description names a place (not in the mapping); the remark tells of a customs hold.
    assert_eq!(
        (scans[2].status, scans[2].reason),
        (Status::Exception, Some(Reason::CustomsHeld))
    );
    assert_eq!(scans[2].raw_text, "Processed at LEIPZIG - GERMANY");
    assert_eq!(scans[2].location.as_deref(), Some("LEIPZIG - GERMANY, DE"));

    // Unknown description, no location: the coarse category decides, the time is German.
    assert_eq!(
        (scans[3].status, scans[3].reason),
        (Status::InTransit, None)
    );
    assert_eq!(
        scans[3].raw_text,
        "Arrived at DHL Sort Facility LEIPZIG - GERMANY"
    );
    assert_eq!(scans[3].time.at, ts("2024-03-05T08:00:00Z"));
    assert_eq!(scans[3].time.offset_seconds, Some(3600));
    assert_eq!(scans[3].location, None);

    // An explicit offset is kept; a "City, State" locality is not cut.
    assert_eq!(
        (scans[4].status, scans[4].reason),
        (Status::InTransit, Some(Reason::CustomsClearanceStarted))
    );
    assert_eq!(scans[4].time.at, ts("2024-03-05T03:15:00Z"));
    assert_eq!(scans[4].time.offset_seconds, Some(-5 * 3600));
    assert_eq!(scans[4].location.as_deref(), Some("CINCINNATI HUB, OH, US"));

    // No `status`: the raw code is the coarse category.
    assert_eq!(scans[5].status, Status::InfoReceived);
    assert_eq!(scans[5].raw_code, "pre-transit");
    assert_eq!(scans[5].raw_text, "Shipment information received");
}

#[test]
fn an_unmapped_status_never_looks_worse_than_in_transit_and_keeps_dhls_words() {
    let body = answer_with(
        "1234567890",
        json!([
            {
                "timestamp": "2024-03-06T11:02:00+01:00",
                "statusCode": "failure",
                "status": "Die Sendung wurde beschädigt",
                "description": "Die Sendung wurde beschädigt und wird geprüft."
            },
            {
                "timestamp": "2024-03-05T11:02:00+01:00",
                "statusCode": "brand-new-category",
                "status": "SOMETHING_NEW"
            },
            { "timestamp": "2024-03-04T11:02:00+01:00" }
        ]),
    );
    let report = report_of(&body, "1234567890");
    let scans = &report.events;
    // DHL's "failure" category covers returns and losses as well as a late van: an unknown
    // status in it is not taken for trouble.
    assert_eq!(
        (scans[0].status, scans[0].reason),
        (Status::InTransit, None)
    );
    assert_eq!(scans[0].raw_code, "Die Sendung wurde beschädigt");
    assert_eq!(
        scans[0].raw_text,
        "Die Sendung wurde beschädigt und wird geprüft."
    );
    // Neither the status nor the category is known: the parcel is taken as moving.
    assert_eq!(
        (scans[1].status, scans[1].reason),
        (Status::InTransit, None)
    );
    assert_eq!(scans[1].raw_code, "SOMETHING_NEW");
    assert_eq!(
        (scans[2].status, scans[2].raw_code.as_str()),
        (Status::InTransit, "unknown")
    );
}

/// DHL Paket answers some accounts in German despite `language=en`: the German texts for
/// "loaded onto the delivery vehicle" and "held back, delivery expected on the next working
/// day" mean what the English ones do.
#[test]
fn german_answers_map_like_the_english_ones() {
    let body = |status: &str, description: &str| {
        json!({"shipments": [{
            "id": "00340434161094042557",
            "service": "parcel-de",
            "events": [{
                "timestamp": "2024-11-26T08:14:00",
                "statusCode": "transit",
                "status": status,
                "description": description
            }]
        }]})
        .to_string()
    };
    let meaning = |status: &str, description: &str| {
        let report = report_of(&body(status, description), "00340434161094042557");
        (report.events[0].status, report.events[0].reason)
    };
    let out_for_delivery = (Status::OutForDelivery, None);
    let delayed = (Status::InTransit, Some(Reason::CarrierDelay));
    assert_eq!(
        meaning(
            "Die Sendung wurde in das Zustellfahrzeug geladen.",
            "Die Sendung wurde in das Zustellfahrzeug geladen."
        ),
        out_for_delivery
    );
    assert_eq!(
        meaning(
            "The shipment has been loaded onto the delivery vehicle",
            "The shipment has been loaded onto the delivery vehicle"
        ),
        out_for_delivery
    );
    assert_eq!(
        meaning(
            "Die Sendung wurde zurückgestellt. Die Zustellung erfolgt voraussichtlich am nächsten Werktag.",
            "Die Sendung wurde zurückgestellt. Die Zustellung erfolgt voraussichtlich am nächsten Werktag."
        ),
        delayed
    );
    assert_eq!(
        meaning(
            "The shipment has been held back. Delivery is expected on the next working day.",
            "The shipment has been held back. Delivery is expected on the next working day."
        ),
        delayed
    );
}

#[test]
fn each_missing_code_is_reported_once() {
    let seen = UnmappedCodes::default();
    assert!(seen.first_time("SOMETHING_NEW"));
    assert!(!seen.first_time("SOMETHING_NEW"));
    assert!(seen.first_time("SOMETHING_ELSE"));
}

#[test]
fn answers_of_the_wrong_shape_are_unreadable_parcels_and_garbage_an_unreadable_call() {
    let dhl = adapter();
    let tracking = number("1234567890");
    let no_time = answer_with("1234567890", json!([{ "statusCode": "transit" }]));
    match dhl.read_answer(&tracking, &no_time) {
        Ok(Err(ParcelError::Malformed { detail, excerpt })) => {
            assert!(detail.contains("no timestamp"), "{detail}");
            assert!(excerpt.contains("1234567890"), "{excerpt}");
        }
        other => panic!("expected an unreadable parcel, got {other:?}"),
    }
    let bad_time = answer_with(
        "1234567890",
        json!([{ "timestamp": "yesterday", "statusCode": "transit" }]),
    );
    assert!(matches!(
        dhl.read_answer(&tracking, &bad_time),
        Ok(Err(ParcelError::Malformed { detail, .. })) if detail.contains("`yesterday`")
    ));
    assert!(matches!(
        dhl.read_answer(&tracking, r#"{"shipments": "none"}"#),
        Ok(Err(ParcelError::Malformed { .. }))
    ));
    assert!(matches!(
        dhl.read_answer(&tracking, r#"{"title": "something else"}"#),
        Ok(Err(ParcelError::Malformed { detail, .. })) if detail.contains("no `shipments`")
    ));
    assert_eq!(
        dhl.read_answer(&tracking, r#"{"shipments": []}"#),
        Ok(Err(ParcelError::NotFound))
    );
    match dhl.read_answer(&tracking, r#"{"shipments": [{"id": "12345"#) {
        Err(CarrierError::Malformed { detail, excerpt }) => {
            assert!(detail.contains("not the expected JSON"), "{detail}");
            assert!(excerpt.starts_with(r#"{"shipments""#), "{excerpt}");
        }
        other => panic!("expected an unreadable call, got {other:?}"),
    }
}

#[tokio::test]
async fn the_request_carries_the_number_the_language_and_the_api_key() {
    // The query parameters DHL's spec names (example_request_params.json) include the two sent.
    let params: serde_json::Value =
        serde_json::from_str(&published("dhl", "example_request_params.json")).expect("JSON");
    assert!(params.get("trackingNumber").is_some() && params.get("language").is_some());

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/track/shipments"))
        .and(query_param("trackingNumber", "7777777770"))
        .and(query_param("language", "en"))
        .and(header("DHL-API-Key", "test-key"))
        .and(header("Accept", "application/json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(published("dhl", "example_response.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    // A trailing slash on the base URL does not double the path's.
    let results = adapter()
        .track(
            &account(&format!("{}/", server.uri())),
            &[request("7777777770")],
        )
        .await
        .expect("a result");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].tracking_number, number("7777777770"));
    let report = results[0].outcome.as_ref().expect("a report");
    assert_eq!(report.events[0].status, Status::Delivered);
}

#[tokio::test]
async fn the_published_404_is_not_found_for_that_parcel_while_the_others_are_answered() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/track/shipments"))
        .and(query_param("trackingNumber", "8264715546"))
        .respond_with(
            ResponseTemplate::new(404)
                .insert_header("Content-Type", "application/problem+json")
                .set_body_string(published("dhl", "example_error_404.json")),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/track/shipments"))
        .and(query_param("trackingNumber", "7777777770"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(published("dhl", "example_response.json")),
        )
        .mount(&server)
        .await;
    let results = adapter()
        .track(
            &account(&server.uri()),
            &[request("8264715546"), request("7777777770")],
        )
        .await
        .expect("the call works");
    assert_eq!(results[0].tracking_number, number("8264715546"));
    assert_eq!(results[0].outcome, Err(ParcelError::NotFound));
    assert_eq!(results[1].tracking_number, number("7777777770"));
    assert!(results[1].outcome.is_ok());
}

#[tokio::test]
async fn a_404_that_is_not_dhls_answer_is_not_taken_for_an_unknown_number() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_string("<html>Not Found</html>"))
        .mount(&server)
        .await;
    match adapter()
        .track(&account(&server.uri()), &[request("7777777770")])
        .await
    {
        Err(CarrierError::Permanent(message)) => {
            assert!(message.contains("base URL"), "{message}");
            assert!(message.contains("<html>Not Found</html>"), "{message}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_key_is_an_auth_failure_and_a_missing_one_is_never_sent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401).set_body_string(
                r#"{"status":401,"title":"Unauthorized","detail":"Invalid API key"}"#,
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    match adapter()
        .track(&account(&server.uri()), &[request("7777777770")])
        .await
    {
        Err(CarrierError::Auth(message)) => assert!(message.contains("Invalid API key")),
        other => panic!("expected an auth failure, got {other:?}"),
    }

    let mut keyless = account(&server.uri());
    keyless.credentials = json!({}).into();
    match adapter().track(&keyless, &[request("7777777770")]).await {
        Err(CarrierError::Auth(message)) => assert!(message.contains("api_key"), "{message}"),
        other => panic!("expected an auth failure, got {other:?}"),
    }
}

#[tokio::test]
async fn too_many_calls_is_rate_limited_with_dhls_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        adapter()
            .track(&account(&server.uri()), &[request("7777777770")])
            .await,
        Err(CarrierError::RateLimited {
            retry_after: Some(Duration::from_secs(3600))
        })
    );
}

#[tokio::test]
async fn a_server_error_is_retried_within_the_call() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(published("dhl", "example_response.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let results = adapter()
        .track(&account(&server.uri()), &[request("7777777770")])
        .await
        .expect("the retry succeeds");
    assert!(results[0].outcome.is_ok());
}

#[tokio::test]
async fn a_server_error_that_persists_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .expect(3)
        .mount(&server)
        .await;
    match adapter()
        .track(&account(&server.uri()), &[request("7777777770")])
        .await
    {
        Err(CarrierError::Transient(message)) => assert!(message.contains("Bad Gateway")),
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn an_html_page_or_truncated_json_is_an_unreadable_answer() {
    for (body, words) in [
        (
            "<html><body><h1>Service Unavailable</h1></body></html>",
            "Service Unavailable",
        ),
        (
            r#"{"shipments":[{"id":"7777777770","events":[{"timest"#,
            "7777777770",
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&server)
            .await;
        match adapter()
            .track(&account(&server.uri()), &[request("7777777770")])
            .await
        {
            Err(CarrierError::Malformed { excerpt, .. }) => {
                assert!(excerpt.contains(words), "{excerpt}")
            }
            other => panic!("expected an unreadable answer, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_batch_becomes_one_call_per_number_answered_in_order() {
    let server = MockServer::start().await;
    for (id, description) in [
        ("1111111111", "Shipment picked up"),
        ("2222222222", "With delivery courier"),
        ("3333333333", "Delivered"),
    ] {
        Mock::given(method("GET"))
            .and(query_param("trackingNumber", id))
            .respond_with(ResponseTemplate::new(200).set_body_string(answer_with(
                id,
                json!([{
                    "timestamp": "2024-03-06T11:02:00+01:00",
                    "statusCode": "transit",
                    "description": description
                }]),
            )))
            .expect(1)
            .mount(&server)
            .await;
    }
    let batch = [
        request("3333333333"),
        request("1111111111"),
        request("2222222222"),
    ];
    let results = adapter()
        .track(&account(&server.uri()), &batch)
        .await
        .expect("a batch");
    let statuses: Vec<(String, Status)> = results
        .iter()
        .map(|r| {
            let report = r.outcome.as_ref().expect("a report");
            (r.tracking_number.to_string(), report.events[0].status)
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("3333333333".to_owned(), Status::Delivered),
            ("1111111111".to_owned(), Status::InTransit),
            ("2222222222".to_owned(), Status::OutForDelivery),
        ]
    );
    assert_eq!(
        adapter().track(&account(&server.uri()), &[]).await,
        Ok(vec![])
    );
}

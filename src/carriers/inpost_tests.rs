use super::*;
use crate::carriers::test_support::{self, fast_transport, number, published, request, ts};
use crate::domain::{Reason, Status};
use jiff::civil::date;
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NUMBER: &str = "520113015630320011234567";

fn adapter() -> InPost {
    InPost::bundled(fast_transport())
}

/// Tracking needs no credentials: the account has none.
fn account(base_url: &str) -> CarrierAccount {
    test_support::account("inpost", serde_json::Value::Null, Some(base_url))
}

/// A locker parcel from Warsaw to Kraków, collected by the customer.
///
/// InPost publishes no tracking example (its documentation page's example could not be
/// retrieved): this one is ours, built from the field list in tracking_resource_fields.md
/// (tracking_number, service, custom_attributes with target_machine_id/_detail, status,
/// tracking_details newest first with status/origin_status/agency/datetime, expected_flow,
/// created_at, updated_at), with status names from InPost's status list.
fn locker_journey() -> serde_json::Value {
    json!({
        "tracking_number": NUMBER,
        "type": "inpost_locker_standard",
        "service": "inpost_locker_standard",
        "status": "delivered",
        "custom_attributes": {
            "size": "B",
            "target_machine_id": "KRA010",
            "target_machine_detail": {
                "name": "KRA010",
                "opening_hours": "24/7",
                "location_description": "Przy markecie Biedronka",
                "location": { "latitude": 50.0614, "longitude": 19.9366 },
                "address": { "line1": "Medweckiego 2", "line2": "31-870 Kraków" },
                "type": ["parcel_locker"],
                "location247": true
            },
            "dropoff_machine_id": "WAW22A",
            "end_of_week_collection": false
        },
        "tracking_details": [
            { "status": "delivered", "origin_status": null, "agency": null,
              "datetime": "2024-03-07T18:02:11.000+01:00" },
            { "status": "pickup_reminder_sent", "origin_status": null, "agency": null,
              "datetime": "2024-03-07T09:15:40.000+01:00" },
            { "status": "ready_to_pickup", "origin_status": null, "agency": null,
              "datetime": "2024-03-06T09:15:40.000+01:00" },
            { "status": "out_for_delivery", "origin_status": null, "agency": "Kraków",
              "datetime": "2024-03-06T06:02:00.000+01:00" },
            { "status": "adopted_at_sorting_center", "origin_status": null, "agency": "Warszawa",
              "datetime": "2024-03-05T21:44:10.000+01:00" },
            { "status": "taken_by_courier", "origin_status": null, "agency": null,
              "datetime": "2024-03-05T16:30:00.000+01:00" },
            { "status": "dispatched_by_sender", "origin_status": null, "agency": null,
              "datetime": "2024-03-05T11:12:13.000+01:00" },
            { "status": "confirmed", "origin_status": null, "agency": null,
              "datetime": "2024-03-05T10:00:00.000+01:00" }
        ],
        "expected_flow": [],
        "created_at": "2024-03-05T09:58:02.000+01:00",
        "updated_at": "2024-03-07T18:02:11.000+01:00"
    })
}

/// The same parcel while it waits in the locker.
fn waiting_in_locker() -> serde_json::Value {
    let mut journey = locker_journey();
    journey["status"] = json!("ready_to_pickup");
    let details = journey["tracking_details"]
        .as_array_mut()
        .expect("tracking details");
    details.drain(0..2);
    journey
}

fn report_of(answer: &serde_json::Value, titles: &HashMap<String, String>) -> TrackReport {
    let parcel: Parcel = serde_json::from_value(answer.clone()).expect("InPost's shape");
    adapter()
        .report(&parcel, titles, &answer.to_string())
        .expect("a report")
}

/// A ShipX tracking answer served for `number`.
async fn serve(server: &MockServer, number: &str, answer: &serde_json::Value) {
    Mock::given(method("GET"))
        .and(path(format!("/v1/tracking/{number}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .mount(server)
        .await;
}

#[test]
fn the_data_file_parses_and_files_lockers_as_pickup_points() {
    let profile =
        CarrierProfile::from_toml("carriers/inpost.toml", BUNDLED_PROFILE).expect("valid");
    assert_eq!(profile.code.as_str(), "inpost");
    assert_eq!(profile.limits.batch_size, 1);
    assert!(profile.delivery_changes.is_empty());
    let meaning = |code: &str| {
        let m = profile
            .normalise(code)
            .unwrap_or_else(|| panic!("{code} is mapped"));
        (m.status, m.reason)
    };
    for waiting in ["ready_to_pickup", "avizo", "pickup_reminder_sent"] {
        assert_eq!(
            meaning(waiting),
            (Status::AvailableForPickup, None),
            "{waiting}"
        );
    }
    assert_eq!(meaning("created"), (Status::InfoReceived, None));
    assert_eq!(meaning("out_for_delivery"), (Status::OutForDelivery, None));
    assert_eq!(
        meaning("returned_to_sender"),
        (Status::Exception, Some(Reason::ReturnedToSender))
    );
    assert_eq!(
        meaning("undelivered_wrong_address"),
        (Status::AttemptFailed, Some(Reason::AddressIssue))
    );
    assert_eq!(
        profile.tracking_url(&number(NUMBER)),
        format!("https://inpost.pl/sledzenie-przesylek?number={NUMBER}")
    );
}

#[test]
fn the_published_status_resource_gives_the_title_of_a_status() {
    // example_status_resource.json: one entry of InPost's status list, as published.
    let entry = published("inpost", "example_status_resource.json");
    let title = "Placed in Parcel Locker (of destination).";
    assert_eq!(
        read_titles(&entry).get(READY_TO_PICKUP).map(String::as_str),
        Some(title)
    );
    // The list itself wraps the entries in `items`.
    let list = format!(r#"{{"href": "https://example.invalid/v1/statuses", "items": [{entry}]}}"#);
    assert_eq!(
        read_titles(&list).get(READY_TO_PICKUP).map(String::as_str),
        Some(title)
    );
    assert!(read_titles("<html>oops</html>").is_empty());
}

#[test]
fn a_locker_journey_is_normalised_event_by_event() {
    let titles = read_titles(&published("inpost", "example_status_resource.json"));
    let report = report_of(&locker_journey(), &titles);
    let scans = &report.events;
    assert_eq!(scans.len(), 8);
    // Oldest first after normalising.
    assert_eq!(scans[0].raw_code, "confirmed");
    assert_eq!(
        (scans[0].status, scans[0].reason),
        (Status::InfoReceived, None)
    );
    assert_eq!(scans[0].time.at, ts("2024-03-05T09:00:00Z"));
    assert_eq!(scans[0].time.offset_seconds, Some(3600));
    // Without a title from InPost's list, the name stands in for the words.
    assert_eq!(scans[0].raw_text, "confirmed");
    assert_eq!(scans[0].location, None);

    assert_eq!(scans[1].raw_code, "dispatched_by_sender");
    assert_eq!(scans[1].status, Status::InTransit);

    assert_eq!(scans[3].raw_code, "adopted_at_sorting_center");
    assert_eq!(
        (scans[3].status, scans[3].reason),
        (Status::InTransit, None)
    );
    assert_eq!(scans[3].location.as_deref(), Some("Warszawa, PL"));
    assert_eq!(scans[3].time.at, ts("2024-03-05T20:44:10Z"));

    assert_eq!(scans[4].status, Status::OutForDelivery);
    assert_eq!(scans[4].location.as_deref(), Some("Kraków, PL"));

    assert_eq!(scans[5].raw_code, "ready_to_pickup");
    assert_eq!(
        (scans[5].status, scans[5].reason),
        (Status::AvailableForPickup, None)
    );
    assert_eq!(
        scans[5].raw_text,
        "Placed in Parcel Locker (of destination)."
    );
    assert_eq!(scans[5].time.at, ts("2024-03-06T08:15:40Z"));
    assert_eq!(scans[5].location.as_deref(), Some("Kraków, PL"));

    assert_eq!(scans[6].raw_code, "pickup_reminder_sent");
    assert_eq!(scans[6].status, Status::AvailableForPickup);

    // Delivered straight from the locker: the customer collected it.
    assert_eq!(scans[7].raw_code, "delivered");
    assert_eq!(
        (scans[7].status, scans[7].reason),
        (Status::Delivered, Some(Reason::PickedUpByCustomer))
    );
    assert_eq!(scans[7].time.at, ts("2024-03-07T17:02:11Z"));
    assert_eq!(scans[7].location.as_deref(), Some("Kraków, PL"));

    // The locker stays the pickup point; once collected it holds nothing any more.
    assert_eq!(
        report.pickup_point,
        Some(PickupPoint {
            name: "Paczkomat KRA010".into(),
            address: Some("Medweckiego 2, 31-870 Kraków (Przy markecie Biedronka)".into()),
            hold_until: None,
        })
    );
    assert_eq!(report.estimate, None);
    assert_eq!(report.signed_by, None);
    assert_eq!(report.change_delivery_url, None);
}

#[test]
fn a_parcel_waiting_in_the_locker_is_held_for_72_hours() {
    let report = report_of(&waiting_in_locker(), &HashMap::new());
    assert_eq!(
        report.events.last().map(|e| e.status),
        Some(Status::AvailableForPickup)
    );
    // Placed at 09:15 on the 6th: it waits until 09:15 on the 9th.
    let point = report.pickup_point.expect("the locker");
    assert_eq!(point.hold_until, Some(date(2024, 3, 9)));
}

#[test]
fn a_delivery_by_courier_is_no_pickup_and_a_point_is_named_as_one() {
    let answer = json!({
        "status": "delivered",
        "custom_attributes": {
            "target_machine_id": "KRA01M",
            "target_machine_detail": { "name": "KRA01M", "type": ["pop"] }
        },
        "tracking_details": [
            { "status": "delivered", "datetime": "2024-03-07T12:00:00.000+01:00" },
            { "status": "out_for_delivery", "datetime": "2024-03-07T07:00:00.000+01:00" },
            { "status": "something_new", "datetime": "2024-03-06T07:00:00.000+01:00" }
        ]
    });
    let report = report_of(&answer, &HashMap::new());
    assert_eq!(
        (report.events[2].status, report.events[2].reason),
        (Status::Delivered, None)
    );
    // An unknown name is taken as moving, and kept.
    assert_eq!(
        (
            report.events[0].raw_code.as_str(),
            report.events[0].status,
            report.events[0].reason
        ),
        ("something_new", Status::InTransit, None)
    );
    let point = report.pickup_point.expect("the point");
    assert_eq!(point.name, "PaczkoPunkt KRA01M");
    assert_eq!(point.address, None);
}

#[test]
fn a_fresh_shipment_without_history_has_its_status_as_the_scan() {
    let answer = json!({
        "tracking_number": NUMBER,
        "status": "created",
        "tracking_details": [],
        "created_at": "2024-03-05T09:58:02.000+01:00",
        "updated_at": "2024-03-05T09:58:02.000+01:00"
    });
    let report = report_of(&answer, &HashMap::new());
    assert_eq!(report.events.len(), 1);
    assert_eq!(report.events[0].status, Status::InfoReceived);
    assert_eq!(report.events[0].time.at, ts("2024-03-05T08:58:02Z"));
    assert_eq!(report.pickup_point, None);
}

#[test]
fn answers_of_the_wrong_shape_are_unreadable_parcels() {
    let inpost = adapter();
    for (answer, words) in [
        (json!({ "tracking_number": NUMBER }), "neither"),
        (
            json!({ "tracking_details": [{ "status": "delivered" }] }),
            "no datetime",
        ),
        (
            json!({ "tracking_details": [{ "datetime": "2024-03-07T12:00:00Z" }] }),
            "no status",
        ),
        (
            json!({ "tracking_details": [{ "status": "delivered", "datetime": "wczoraj" }] }),
            "`wczoraj`",
        ),
    ] {
        let parcel: Parcel = serde_json::from_value(answer.clone()).expect("lenient shape");
        match inpost.report(&parcel, &HashMap::new(), &answer.to_string()) {
            Err(ParcelError::Malformed { detail, .. }) => {
                assert!(detail.contains(words), "{detail}")
            }
            other => panic!("expected an unreadable parcel, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_request_names_the_number_without_credentials_and_titles_are_read_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/tracking/{NUMBER}")))
        .and(header("Accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(locker_journey()))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/statuses"))
        .and(query_param("lang", "en_GB"))
        .respond_with(ResponseTemplate::new(200).set_body_string(format!(
            r#"{{"items": [{}]}}"#,
            published("inpost", "example_status_resource.json")
        )))
        .expect(1)
        .mount(&server)
        .await;
    let inpost = adapter();
    for _ in 0..2 {
        let results = inpost
            .track(&account(&server.uri()), &[request(NUMBER)])
            .await
            .expect("a result");
        let report = results[0].outcome.as_ref().expect("a report");
        let placed = report
            .events
            .iter()
            .find(|e| e.raw_code == READY_TO_PICKUP)
            .expect("the locker scan");
        assert_eq!(placed.raw_text, "Placed in Parcel Locker (of destination).");
    }
    let requests = server.received_requests().await.expect("recorded");
    assert!(
        requests
            .iter()
            .all(|r| !r.headers.contains_key("authorization"))
    );
}

#[tokio::test]
async fn an_unknown_number_is_not_found_while_the_rest_of_the_batch_is_answered() {
    let server = MockServer::start().await;
    // ShipX's error document, in the shape of the published 400 (our own 404 wording).
    Mock::given(method("GET"))
        .and(path("/v1/tracking/520000000000000000000000"))
        .respond_with(ResponseTemplate::new(404).set_body_string(
            r#"{"status":404,"error":"resource_not_found","description":"Resource not found","details":null}"#,
        ))
        .mount(&server)
        .await;
    serve(&server, NUMBER, &locker_journey()).await;
    let results = adapter()
        .track(
            &account(&server.uri()),
            &[request("520000000000000000000000"), request(NUMBER)],
        )
        .await
        .expect("the calls work");
    assert_eq!(
        results[0].tracking_number,
        number("520000000000000000000000")
    );
    assert_eq!(results[0].outcome, Err(ParcelError::NotFound));
    assert_eq!(results[1].tracking_number, number(NUMBER));
    assert!(results[1].outcome.is_ok());
}

#[tokio::test]
async fn the_published_400_is_a_permanent_failure_in_inposts_words() {
    // example_error_400_invalid_parameter.json, as InPost publishes it.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/tracking/{NUMBER}")))
        .respond_with(ResponseTemplate::new(400).set_body_string(published(
            "inpost",
            "example_error_400_invalid_parameter.json",
        )))
        .mount(&server)
        .await;
    match adapter()
        .track(&account(&server.uri()), &[request(NUMBER)])
        .await
    {
        Err(CarrierError::Permanent(message)) => {
            assert!(message.contains("invalid_parameter"), "{message}");
            assert!(message.contains("Provided unsupported value"), "{message}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_404_that_is_not_inposts_answer_is_not_taken_for_an_unknown_number() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_string("<html>nginx</html>"))
        .mount(&server)
        .await;
    assert!(matches!(
        adapter().track(&account(&server.uri()), &[request(NUMBER)]).await,
        Err(CarrierError::Permanent(message)) if message.contains("base URL")
    ));
}

#[tokio::test]
async fn too_many_requests_is_rate_limited_with_the_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/tracking/{NUMBER}")))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "5"))
        .mount(&server)
        .await;
    assert_eq!(
        adapter()
            .track(&account(&server.uri()), &[request(NUMBER)])
            .await,
        Err(CarrierError::RateLimited {
            retry_after: Some(Duration::from_secs(5))
        })
    );
}

#[tokio::test]
async fn a_server_error_is_retried_within_the_call() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/tracking/{NUMBER}")))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    serve(&server, NUMBER, &locker_journey()).await;
    let results = adapter()
        .track(&account(&server.uri()), &[request(NUMBER)])
        .await
        .expect("the retry succeeds");
    assert!(results[0].outcome.is_ok());
}

#[tokio::test]
async fn an_html_page_or_truncated_json_is_an_unreadable_answer() {
    for (body, words) in [
        (
            "<html><body>502 Bad Gateway</body></html>",
            "502 Bad Gateway",
        ),
        (
            r#"{"tracking_number":"5201130156","tracking_details":[{"stat"#,
            "5201130156",
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/v1/tracking/{NUMBER}")))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&server)
            .await;
        match adapter()
            .track(&account(&server.uri()), &[request(NUMBER)])
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
    let numbers = [
        "520000000000000000000003",
        "520000000000000000000001",
        "520000000000000000000002",
    ];
    for (n, status) in numbers
        .iter()
        .zip(["delivered", "taken_by_courier", "ready_to_pickup"])
    {
        serve(
            &server,
            n,
            &json!({ "status": status, "tracking_details": [
                { "status": status, "datetime": "2024-03-07T12:00:00.000+01:00" }
            ] }),
        )
        .await;
    }
    let batch: Vec<TrackRequest> = numbers.iter().map(|n| request(n)).collect();
    let results = adapter()
        .track(&account(&server.uri()), &batch)
        .await
        .expect("a batch");
    let got: Vec<(String, Status)> = results
        .iter()
        .map(|r| {
            let report = r.outcome.as_ref().expect("a report");
            (r.tracking_number.to_string(), report.events[0].status)
        })
        .collect();
    assert_eq!(
        got,
        [
            (numbers[0].to_owned(), Status::Delivered),
            (numbers[1].to_owned(), Status::InTransit),
            (numbers[2].to_owned(), Status::AvailableForPickup),
        ]
    );
    let tracking_calls = server
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.url.path().starts_with("/v1/tracking/"))
        .count();
    assert_eq!(tracking_calls, 3);
}

use super::*;
use crate::carriers::test_support::{self, fast_transport, published, request, ts};
use crate::domain::{Reason as R, Status as S, TrackingNumber};
use jiff::civil::date;
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{body_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A v3r2 207 multi-status answer built field by field from `tracking-v3r2_4.yaml`
/// (`MultiStatusResponse` = `SuccessResponse` | `FailureResponse`, `TrackingEvent` with
/// `GMTTimestamp`/`GMTOffset`, `DeliveryDateExpectation`), since USPS publishes no v3r2 example.
const MULTI_STATUS: &str = r#"[
  {
    "statusCode": "200",
    "trackingNumber": "9400100000000000000001",
    "status": "Delivered, Front Door/Porch",
    "statusCategory": "Delivered",
    "statusSummary": "Your item was delivered at the front door or porch at 2:03 pm on April 4, 2024 in PHOENIX, AZ 85001.",
    "mailClass": "USPS Ground Advantage",
    "deliveryDateExpectation": {
      "expectedDeliveryDate": "2024-04-05",
      "predictedDeliveryDate": "2024-04-04",
      "guaranteedDeliveryDate": "3 Business Days"
    },
    "servicesEligibility": {"RREEnabled": false, "proofOfDeliveryEnabled": true, "trackingProofOfDeliveryEnabled": true},
    "trackingEvents": [
      {
        "eventType": "Delivered, Front Door/Porch",
        "eventCode": "01",
        "eventTimestamp": "2024-04-04T14:03:12-07:00",
        "GMTTimestamp": "2024-04-04T21:03:12.041Z",
        "GMTOffset": "-7:00",
        "eventCity": "PHOENIX",
        "eventState": "AZ",
        "eventZIPCode": "85001",
        "recipientName": "J SMITH",
        "veriPoint": true
      },
      {
        "eventType": "Out for Delivery",
        "eventCode": "OF",
        "eventTimestamp": "2024-04-04T06:10:00",
        "eventCity": "PHOENIX",
        "eventState": "AZ",
        "eventZIPCode": "85001"
      },
      {
        "eventType": "Arrived at USPS Regional Facility",
        "eventCode": "10",
        "eventTimestamp": "2024-04-02T22:15:00Z",
        "eventCity": "LOS ANGELES",
        "eventState": "CA"
      },
      {
        "eventType": "Shipping Label Created, USPS Awaiting Item",
        "eventCode": "MA",
        "eventTimestamp": "2024-04-01",
        "eventCity": "NEW YORK",
        "eventState": "NY",
        "eventZIPCode": "10001"
      }
    ]
  },
  {
    "statusCode": "404",
    "trackingNumber": "9400100000000000000002",
    "apiVersion": "3.2.2",
    "error": {
      "code": "404",
      "message": "Resource Not Found",
      "errors": [{"status": "404", "code": "010001", "title": "Tracking number not found",
                  "detail": "The Postal Service could not locate the tracking information for the request."}]
    }
  },
  {
    "statusCode": "400",
    "trackingNumber": "9400100000000000000003",
    "error": {
      "code": "400",
      "message": "Bad Request",
      "errors": [{"status": "400", "title": "Invalid trackingNumber",
                  "detail": "Tracking ID, must be alphanumeric characters, string length is between 4 and 34."}]
    }
  },
  {
    "statusCode": "503",
    "trackingNumber": "9400100000000000000004",
    "error": {"code": "503", "message": "Service Unavailable"}
  },
  {
    "statusCode": "200",
    "trackingNumber": "LZ000000001US",
    "status": "Available for Pickup",
    "statusCategory": "Available for Pickup",
    "returnDateNotice": "2024-05-20",
    "trackingEvents": [
      {
        "eventType": "Available for Pickup",
        "eventCode": "14",
        "eventTimestamp": "2024-05-05T09:12:00",
        "GMTTimestamp": "2024-05-05T14:12:00Z",
        "GMTOffset": "-05:00",
        "eventCity": "CEDAR RAPIDS",
        "eventState": "IA",
        "eventZIPCode": "52404",
        "CODAmountDue": "0.00"
      },
      {
        "eventType": "Held in Customs",
        "eventCode": "E6",
        "eventTimestamp": "2024-05-02T11:00:00-04:00",
        "eventCity": "JAMAICA",
        "eventState": "NY"
      },
      {
        "eventType": "Customs Clearance",
        "eventCode": "E5",
        "eventTimestamp": "2024-05-01T19:40:00-04:00",
        "eventCity": "JAMAICA",
        "eventState": "NY"
      },
      {
        "eventType": "Processed Through Facility",
        "eventCode": "10",
        "eventTimestamp": "2024-04-29T08:00:00+02:00",
        "eventCity": "FRANKFURT",
        "eventCountry": "GERMANY"
      }
    ]
  },
  {
    "statusCode": "200",
    "trackingNumber": "9400100000000000000006",
    "statusCategory": "Out for Delivery",
    "trackingEvents": [
      {
        "eventType": "Some Scan USPS Added Later",
        "eventCode": "Q7",
        "GMTTimestamp": "2024-06-03T13:05:00Z",
        "GMTOffset": "-4:00",
        "eventCity": "RICHMOND",
        "eventState": "VA"
      },
      {
        "eventType": "Another New Scan",
        "eventCode": "Q8",
        "GMTTimestamp": "2024-06-02T13:05:00Z",
        "eventCity": "RICHMOND",
        "eventState": "VA"
      }
    ]
  },
  {
    "statusCode": "200",
    "trackingNumber": "9400100000000000000007",
    "statusCategory": "Delivered",
    "trackingEvents": [
      {
        "eventType": "Delivered, To Original Sender",
        "eventCode": "01",
        "eventTimestamp": "2024-07-01T10:00:00-05:00",
        "eventCity": "DALLAS",
        "eventState": "TX",
        "recipientName": "MAILROOM"
      },
      {
        "eventType": "Notice Left (No Authorized Recipient Available)",
        "eventCode": "02",
        "eventTimestamp": "2024-06-20T16:30:00-04:00",
        "eventCity": "ATLANTA",
        "eventState": "GA"
      }
    ]
  }
]"#;

fn usps() -> Usps {
    let profile = CarrierProfile::from_toml("carriers/usps.toml", BUNDLED_PROFILE)
        .expect("the bundled data file parses");
    Usps::new(profile, fast_transport())
}

fn requests(numbers: &[&str]) -> Vec<TrackRequest> {
    numbers.iter().map(|n| request(n)).collect()
}

fn account(base: &str) -> CarrierAccount {
    test_support::account(
        "usps",
        json!({ "client_id": "consumer-key", "client_secret": "consumer-secret" }),
        Some(base),
    )
}

fn report(result: &ParcelResult) -> &TrackReport {
    result
        .outcome
        .as_ref()
        .unwrap_or_else(|e| panic!("{}: {e:?}", result.tracking_number))
}

#[test]
fn the_bundled_data_file_parses_with_usps_limits() {
    let profile = CarrierProfile::from_toml("carriers/usps.toml", BUNDLED_PROFILE)
        .expect("the bundled data file parses");
    assert_eq!(profile.code.as_str(), "usps");
    assert_eq!(profile.limits.batch_size, MAX_BATCH);
    assert_eq!(profile.limits.daily_quota, Some(1440));
    assert!(profile.limits.requests_per_second * 3600.0 <= 60.0);
    assert_eq!(
        profile.tracking_url(&TrackingNumber::parse("9400100000000000000001").unwrap()),
        "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400100000000000000001"
    );
    for key in ["01", "02", "03", "14", "OF", "MA", "category|DELIVERED"] {
        assert!(profile.normalise(key).is_some(), "{key}");
    }
    // A "no attempt was made" delay is not a failed attempt.
    let late = profile.normalise("*|IN TRANSIT, ARRIVING LATE").unwrap();
    assert_eq!(
        (late.status, late.reason),
        (S::InTransit, Some(R::CarrierDelay))
    );
}

#[test]
fn the_published_detail_example_is_normalised() {
    // example_response_detail.json, as USPS's single GET answers it (one detail object).
    let usps = usps();
    let results = usps
        .read_answer(
            &requests(&["XXXXXXXXXXXXXXXXXXXX"]),
            &published("usps", "example_response_detail.json"),
        )
        .expect("an answer");
    assert_eq!(results.len(), 1);
    let report = report(&results[0]);
    assert_eq!(report.events.len(), 1);
    let accepted = &report.events[0];
    assert_eq!(accepted.status, S::InTransit);
    assert_eq!(accepted.reason, None);
    assert_eq!(accepted.raw_code, "03");
    assert_eq!(accepted.raw_text, "USPS in possession of item");
    // "2023-08-02T07:31:00Z" is 7:31 am in Richmond, VA (the statusSummary says so): EDT.
    assert_eq!(accepted.time.at, ts("2023-08-02T11:31:00Z"));
    assert_eq!(accepted.time.offset_seconds, Some(-4 * 3600));
    assert_eq!(accepted.location.as_deref(), Some("RICHMOND, VA, US"));
    assert_eq!(report.estimate, None);
    assert_eq!(report.signed_by, None);
    assert_eq!(report.pickup_point, None);
    assert_eq!(report.change_delivery_url, None);
}

#[test]
fn the_published_summary_example_is_not_tracking_detail() {
    // example_response_summary.json: `expand=summary` has no scans; an answer like it is not what
    // the v3r2 spec promises, and the carrier's words are kept for the merchant.
    let err = usps()
        .read_answer(
            &requests(&["XXXXXXXXXXXXXXXXXXXX"]),
            &published("usps", "example_response_summary.json"),
        )
        .expect_err("not a tracking detail");
    match err {
        CarrierError::Malformed { detail, excerpt } => {
            assert!(detail.contains("tracking details"), "{detail}");
            assert!(excerpt.contains("TrackSummary"), "{excerpt}");
            assert!(excerpt.contains("RICHMOND, VA 23227"), "{excerpt}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn a_multi_status_answer_gives_each_number_its_own_outcome() {
    let asked = requests(&[
        "9400100000000000000001",
        "9400100000000000000002",
        "9400100000000000000003",
        "9400100000000000000004",
        "LZ000000001US",
        "9400100000000000000006",
        "9400100000000000000007",
        "9400100000000000000008",
    ]);
    let results = usps().read_answer(&asked, MULTI_STATUS).expect("an answer");
    let order: Vec<&str> = results.iter().map(|r| r.tracking_number.as_str()).collect();
    assert_eq!(
        order,
        asked
            .iter()
            .map(|r| r.tracking_number.as_str())
            .collect::<Vec<_>>()
    );

    // Delivered to the porch, with GMT instant and offset, signer and estimate.
    let delivered = report(&results[0]);
    assert_eq!(delivered.events.len(), 4);
    let [porch, van, hub, label] = &delivered.events[..] else {
        panic!("four scans")
    };
    assert_eq!(
        (porch.status, porch.reason),
        (S::Delivered, Some(R::DeliveredToSafePlace))
    );
    assert_eq!(porch.raw_code, "01");
    assert_eq!(porch.raw_text, "Delivered, Front Door/Porch");
    // The local time with its offset is the instant (GMTTimestamp only adds milliseconds).
    assert_eq!(porch.time.at, ts("2024-04-04T21:03:12Z"));
    assert_eq!(porch.time.offset_seconds, Some(-7 * 3600));
    assert_eq!(porch.location.as_deref(), Some("PHOENIX, AZ, US"));
    // A bare local time in Arizona (no daylight saving time).
    assert_eq!((van.status, van.reason), (S::OutForDelivery, None));
    assert_eq!(van.raw_code, "OF");
    assert_eq!(van.time.at, ts("2024-04-04T13:10:00Z"));
    assert_eq!(van.time.offset_seconds, Some(-7 * 3600));
    // USPS's "Z" is the wall time in Los Angeles (PDT in April).
    assert_eq!((hub.status, hub.reason), (S::InTransit, None));
    assert_eq!(hub.time.at, ts("2024-04-03T05:15:00Z"));
    assert_eq!(hub.time.offset_seconds, Some(-7 * 3600));
    assert_eq!(hub.location.as_deref(), Some("LOS ANGELES, CA, US"));
    // A date alone: the start of that day in New York.
    assert_eq!((label.status, label.reason), (S::InfoReceived, None));
    assert_eq!(label.raw_code, "MA");
    assert_eq!(label.time.at, ts("2024-04-01T04:00:00Z"));
    assert_eq!(label.time.offset_seconds, Some(-4 * 3600));
    assert_eq!(delivered.signed_by.as_deref(), Some("J SMITH"));
    // The predicted date wins over the expected one; "3 Business Days" is no date.
    assert_eq!(
        delivered.estimate,
        Some(DeliveryWindow::on(date(2024, 4, 4)))
    );
    assert_eq!(delivered.pickup_point, None);

    assert_eq!(results[1].outcome, Err(ParcelError::NotFound));
    match &results[2].outcome {
        Err(ParcelError::Rejected(why)) => {
            assert!(
                why.contains("400") && why.contains("Invalid trackingNumber"),
                "{why}"
            )
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    match &results[3].outcome {
        Err(ParcelError::Malformed { detail, excerpt }) => {
            assert!(detail.contains("503"), "{detail}");
            assert!(excerpt.contains("Service Unavailable"), "{excerpt}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }

    // Inbound international: customs words, a foreign scan, a Post Office holding it.
    let waiting = report(&results[4]);
    let [pickup, held, clearance, frankfurt] = &waiting.events[..] else {
        panic!("four scans")
    };
    assert_eq!(
        (pickup.status, pickup.reason),
        (S::AvailableForPickup, None)
    );
    assert_eq!(pickup.time.at, ts("2024-05-05T14:12:00Z"));
    assert_eq!(pickup.time.offset_seconds, Some(-5 * 3600));
    assert_eq!(pickup.location.as_deref(), Some("CEDAR RAPIDS, IA, US"));
    assert_eq!(
        (held.status, held.reason),
        (S::Exception, Some(R::CustomsHeld))
    );
    assert_eq!(held.raw_code, "E6");
    assert_eq!(held.raw_text, "Held in Customs");
    assert_eq!(held.time.at, ts("2024-05-02T15:00:00Z"));
    assert_eq!(
        (clearance.status, clearance.reason),
        (S::InTransit, Some(R::CustomsClearanceStarted))
    );
    assert_eq!(frankfurt.time.at, ts("2024-04-29T06:00:00Z"));
    assert_eq!(frankfurt.time.offset_seconds, Some(2 * 3600));
    assert_eq!(frankfurt.location.as_deref(), Some("FRANKFURT, GERMANY"));
    assert_eq!(
        waiting.pickup_point,
        Some(PickupPoint {
            name: "CEDAR RAPIDS Post Office".into(),
            address: Some("CEDAR RAPIDS, IA 52404".into()),
            hold_until: Some(date(2024, 5, 20)),
        })
    );

    // Codes missing from the mapping: the newest takes the parcel's statusCategory, the older
    // one stays in transit; both keep USPS's code and words.
    let unknown = report(&results[5]);
    assert_eq!(unknown.events[0].status, S::OutForDelivery);
    assert_eq!(unknown.events[0].raw_code, "Q7");
    assert_eq!(unknown.events[0].raw_text, "Some Scan USPS Added Later");
    assert_eq!(unknown.events[0].time.offset_seconds, Some(-4 * 3600));
    assert_eq!(
        (unknown.events[1].status, unknown.events[1].reason),
        (S::InTransit, None)
    );
    // No GMTOffset: the offset of Richmond's zone at that instant.
    assert_eq!(unknown.events[1].time.offset_seconds, Some(-4 * 3600));

    // Code 01 "to original sender" is a return, not a delivery to the customer.
    let returned = report(&results[6]);
    assert_eq!(
        (returned.events[0].status, returned.events[0].reason),
        (S::Exception, Some(R::ReturnedToSender))
    );
    assert_eq!(returned.signed_by, None);
    assert_eq!(
        (returned.events[1].status, returned.events[1].reason),
        (S::AttemptFailed, Some(R::RecipientUnavailable))
    );

    // A number the answer does not mention.
    match &results[7].outcome {
        Err(ParcelError::Malformed { detail, .. }) => {
            assert!(detail.contains("no entry"), "{detail}")
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn a_broken_scan_spoils_only_its_own_parcel() {
    let body = json!([
        {"statusCode": "200", "trackingNumber": "9400100000000000000001",
         "trackingEvents": [{"eventType": "Delivered", "eventCode": "01", "eventTimestamp": "yesterday"}]},
        {"statusCode": "200", "trackingNumber": "9400100000000000000002",
         "trackingEvents": "not a list"},
        {"statusCode": "200", "trackingNumber": "9400100000000000000003", "statusCategory": "In Transit",
         "trackingEvents": [{"eventType": "Departed Post Office", "eventCode": "SF",
                             "eventTimestamp": "2024-04-02T18:00:00", "eventCity": "DENVER", "eventState": "CO"}]}
    ])
    .to_string();
    let results = usps()
        .read_answer(
            &requests(&[
                "9400100000000000000001",
                "9400100000000000000002",
                "9400100000000000000003",
            ]),
            &body,
        )
        .expect("an answer");
    match &results[0].outcome {
        Err(ParcelError::Malformed { detail, excerpt }) => {
            assert!(detail.contains("yesterday"), "{detail}");
            assert!(
                excerpt.contains("\"eventTimestamp\":\"yesterday\""),
                "{excerpt}"
            );
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert!(matches!(
        results[1].outcome,
        Err(ParcelError::Malformed { .. })
    ));
    let denver = &report(&results[2]).events[0];
    assert_eq!(denver.time.at, ts("2024-04-03T00:00:00Z"));
    assert_eq!(denver.time.offset_seconds, Some(-6 * 3600));
}

/// Live answers carry a `GMTTimestamp` a day early whenever USPS's conversion crosses midnight:
/// the local time at `GMTOffset` is the instant.
#[test]
fn the_local_time_and_offset_win_over_a_gmt_timestamp_a_day_off() {
    let body = json!([{
        "statusCode": "200", "trackingNumber": "9400100000000000000001",
        "trackingEvents": [{
            "eventType": "Departed USPS Regional Facility", "eventCode": "10",
            "eventTimestamp": "2024-11-25T18:31:00", "GMTTimestamp": "2024-11-25T00:31:21Z",
            "GMTOffset": "-06:00", "eventCity": "DALLAS TX DISTRIBUTION CENTER", "eventState": "TX"
        }]
    }])
    .to_string();
    let results = usps()
        .read_answer(&requests(&["9400100000000000000001"]), &body)
        .expect("an answer");
    let scan = &report(&results[0]).events[0];
    assert_eq!(scan.time.at, ts("2024-11-26T00:31:00Z"));
    assert_eq!(scan.time.offset_seconds, Some(-6 * 3600));
}

/// Live answers file a fresh label under `GX` with the words of a created label.
#[test]
fn a_label_created_under_gx_is_information_received_not_a_cancellation() {
    let body = json!([{
        "statusCode": "200", "trackingNumber": "9400100000000000000001",
        "trackingEvents": [{
            "eventType": "Shipping Label Created, USPS Awaiting Item", "eventCode": "GX",
            "eventTimestamp": "2024-11-25T09:12:00", "GMTOffset": "-05:00",
            "eventCity": "BROOKLYN", "eventState": "NY"
        }]
    }])
    .to_string();
    let results = usps()
        .read_answer(&requests(&["9400100000000000000001"]), &body)
        .expect("an answer");
    let label = &report(&results[0]).events[0];
    assert_eq!((label.status, label.reason), (S::InfoReceived, None));
    assert_eq!(label.raw_code, "GX");
}

#[test]
fn gmt_offsets_in_usps_spellings() {
    for (text, seconds) in [
        ("-7:00", -25200),
        ("-07:00", -25200),
        ("+0530", 19800),
        ("0:00", 0),
        ("+5", 18000),
    ] {
        assert_eq!(
            parse_gmt_offset(text).map(|o| o.seconds()),
            Some(seconds),
            "{text}"
        );
    }
    assert_eq!(parse_gmt_offset("GMT"), None);
    assert_eq!(parse_gmt_offset("-25:00"), None);
}

// ---- Over HTTP -------------------------------------------------------------------------------

fn token_answer(token: &str) -> ResponseTemplate {
    // USPS sends expires_in as a string.
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": token, "token_type": "Bearer", "expires_in": "28799",
        "status": "approved", "scope": "tracking"
    }))
}

fn in_transit(number: &str) -> Value {
    json!({
        "statusCode": "200",
        "trackingNumber": number,
        "statusCategory": "In Transit",
        "trackingEvents": [{
            "eventType": "Departed USPS Facility", "eventCode": "10",
            "GMTTimestamp": "2024-04-02T18:00:00Z", "GMTOffset": "-5:00",
            "eventCity": "MEMPHIS", "eventState": "TN"
        }]
    })
}

/// Answers every tracking call with one in-transit detail per number asked, in reverse order
/// (the answer's order must not matter).
struct EchoDetails;

impl Respond for EchoDetails {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let asked: Vec<Value> = serde_json::from_slice(&request.body).unwrap_or_default();
        let details: Vec<Value> = asked
            .iter()
            .rev()
            .filter_map(|a| a["trackingNumber"].as_str())
            .map(in_transit)
            .collect();
        ResponseTemplate::new(207).set_body_json(details)
    }
}

async fn token_mock(server: &MockServer, token: &str, times: u64) {
    Mock::given(method("POST"))
        .and(path("/oauth2/v3/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_id=consumer-key"))
        .respond_with(token_answer(token))
        .up_to_n_times(times)
        .expect(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_batch_is_one_post_with_a_reused_bearer_token() {
    let server = MockServer::start().await;
    token_mock(&server, "tok-1", 1).await;
    Mock::given(method("POST"))
        .and(path("/tracking/v3r2/tracking"))
        .and(header("authorization", "Bearer tok-1"))
        .and(header("content-type", "application/json"))
        .and(header("accept", "application/json"))
        .and(body_json(json!([
            {"trackingNumber": "9400100000000000000001"},
            {"trackingNumber": "9400100000000000000002"}
        ])))
        .respond_with(ResponseTemplate::new(207).set_body_string(MULTI_STATUS))
        .expect(2)
        .mount(&server)
        .await;
    let usps = usps();
    let account = account(&server.uri());
    let batch = requests(&["9400100000000000000001", "9400100000000000000002"]);
    for _ in 0..2 {
        let results = usps.track(&account, &batch).await.expect("tracked");
        assert_eq!(results.len(), 2);
        assert_eq!(report(&results[0]).events[0].status, S::Delivered);
        assert_eq!(results[1].outcome, Err(ParcelError::NotFound));
    }
    // The token endpoint was asked once (expect(1) is checked when the server drops).
}

#[tokio::test]
async fn a_refused_token_is_renewed_once_and_the_call_retried() {
    let server = MockServer::start().await;
    token_mock(&server, "stale", 1).await;
    token_mock(&server, "fresh", 1).await;
    Mock::given(method("POST"))
        .and(path("/tracking/v3r2/tracking"))
        .and(header("authorization", "Bearer stale"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"code": "401", "message": "Unauthorized", "errors": [{"title": "Invalid access token"}]}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/tracking/v3r2/tracking"))
        .and(header("authorization", "Bearer fresh"))
        .respond_with(EchoDetails)
        .expect(1)
        .mount(&server)
        .await;
    let results = usps()
        .track(
            &account(&server.uri()),
            &requests(&["9400100000000000000001"]),
        )
        .await
        .expect("tracked after re-authenticating");
    assert_eq!(
        report(&results[0]).events[0].location.as_deref(),
        Some("MEMPHIS, TN, US")
    );
}

#[tokio::test]
async fn a_second_refusal_is_an_auth_error() {
    let server = MockServer::start().await;
    token_mock(&server, "tok", 2).await;
    Mock::given(method("POST"))
        .and(path("/tracking/v3r2/tracking"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_string("{\"error\":{\"message\":\"Unauthorized\"}}"),
        )
        .expect(2)
        .mount(&server)
        .await;
    match usps()
        .track(
            &account(&server.uri()),
            &requests(&["9400100000000000000001"]),
        )
        .await
    {
        Err(CarrierError::Auth(said)) => assert!(said.contains("Unauthorized"), "{said}"),
        other => panic!("expected Auth, got {other:?}"),
    }
}

#[tokio::test]
async fn refused_or_missing_credentials_are_auth_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/v3/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_client", "error_description": "Client authentication failed"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let usps = usps();
    match usps
        .track(
            &account(&server.uri()),
            &requests(&["9400100000000000000001"]),
        )
        .await
    {
        Err(CarrierError::Auth(said)) => assert!(said.contains("invalid_client"), "{said}"),
        other => panic!("expected Auth, got {other:?}"),
    }
    let mut without = account(&server.uri());
    without.credentials = json!({ "client_id": "consumer-key" }).into();
    match usps
        .track(&without, &requests(&["9400100000000000000001"]))
        .await
    {
        Err(CarrierError::Auth(said)) => assert!(said.contains("client_secret"), "{said}"),
        other => panic!("expected Auth, got {other:?}"),
    }
}

#[tokio::test]
async fn too_many_requests_says_when_to_come_back() {
    let server = MockServer::start().await;
    token_mock(&server, "tok", 1).await;
    Mock::given(method("POST"))
        .and(path("/tracking/v3r2/tracking"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "30")
                .set_body_json(json!({"error": {"code": "429", "message": "Too Many Requests"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        usps()
            .track(
                &account(&server.uri()),
                &requests(&["9400100000000000000001"])
            )
            .await,
        Err(CarrierError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        })
    );
}

#[tokio::test]
async fn a_server_error_is_retried_within_the_call() {
    let server = MockServer::start().await;
    token_mock(&server, "tok", 1).await;
    Mock::given(method("POST"))
        .and(path("/tracking/v3r2/tracking"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/tracking/v3r2/tracking"))
        .respond_with(EchoDetails)
        .expect(1)
        .mount(&server)
        .await;
    let results = usps()
        .track(
            &account(&server.uri()),
            &requests(&["9400100000000000000001"]),
        )
        .await
        .expect("tracked on the second attempt");
    assert_eq!(report(&results[0]).events[0].raw_code, "10");

    // Still failing after the retries: transient.
    let down = MockServer::start().await;
    token_mock(&down, "tok", 1).await;
    Mock::given(method("POST"))
        .and(path("/tracking/v3r2/tracking"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .expect(3)
        .mount(&down)
        .await;
    match usps()
        .track(
            &account(&down.uri()),
            &requests(&["9400100000000000000001"]),
        )
        .await
    {
        Err(CarrierError::Transient(said)) => assert!(said.contains("Bad Gateway"), "{said}"),
        other => panic!("expected Transient, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_numbers_are_not_found_while_the_others_are_tracked() {
    let server = MockServer::start().await;
    token_mock(&server, "tok", 1).await;
    Mock::given(method("POST"))
        .and(path("/tracking/v3r2/tracking"))
        .respond_with(ResponseTemplate::new(207).set_body_json(json!([
            in_transit("9400100000000000000001"),
            {"statusCode": "404", "trackingNumber": "9400100000000000000002",
             "error": {"code": "404", "message": "Resource Not Found"}}
        ])))
        .mount(&server)
        .await;
    let results = usps()
        .track(
            &account(&server.uri()),
            &requests(&["9400100000000000000002", "9400100000000000000001"]),
        )
        .await
        .expect("tracked");
    assert_eq!(results[0].outcome, Err(ParcelError::NotFound));
    assert_eq!(report(&results[1]).events.len(), 1);

    // USPS's own 404 for the whole call: nobody is known yet.
    let none = MockServer::start().await;
    token_mock(&none, "tok", 1).await;
    Mock::given(method("POST"))
        .and(path("/tracking/v3r2/tracking"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "apiVersion": "3.2.2", "error": {"code": "404", "message": "Resource Not Found"}
        })))
        .mount(&none)
        .await;
    let results = usps()
        .track(
            &account(&none.uri()),
            &requests(&["9400100000000000000003"]),
        )
        .await
        .expect("an answer");
    assert_eq!(results[0].outcome, Err(ParcelError::NotFound));
}

/// USPS refuses a number it has no scan of yet with a 400 ("12: A status update is not yet
/// available on your package…"): that number is not found yet, the call is not refused.
#[tokio::test]
async fn a_400_saying_no_status_update_yet_is_not_found_for_that_number() {
    let server = MockServer::start().await;
    token_mock(&server, "tok", 1).await;
    Mock::given(method("POST"))
        .and(path("/tracking/v3r2/tracking"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "apiVersion": "3.2.2",
            "error": {
                "code": "400",
                "message": "12: A status update is not yet available on your package."
            }
        })))
        .mount(&server)
        .await;
    let adapter = usps();
    let results = adapter
        .track(
            &account(&server.uri()),
            &requests(&["9400100000000000000009"]),
        )
        .await
        .expect("not found is an answer, not a refused call");
    assert_eq!(results[0].outcome, Err(ParcelError::NotFound));

    // Any other 400 is still a refused call.
    let other = MockServer::start().await;
    token_mock(&other, "tok", 1).await;
    Mock::given(method("POST"))
        .and(path("/tracking/v3r2/tracking"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "apiVersion": "3.2.2", "error": {"code": "400", "message": "Invalid request body"}
        })))
        .mount(&other)
        .await;
    let refused = usps()
        .track(
            &account(&other.uri()),
            &requests(&["9400100000000000000009"]),
        )
        .await;
    assert!(
        matches!(refused, Err(CarrierError::Permanent(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn garbage_answers_are_malformed_with_the_carriers_words() {
    for (body, words) in [
        (
            "<html><head><title>Access Denied</title></head><body>Reference #18.2f</body></html>",
            "Access Denied",
        ),
        (
            r#"[{"statusCode":"200","trackingNumber":"9400100000000000000001","trackingEve"#,
            "trackingEve",
        ),
    ] {
        let server = MockServer::start().await;
        token_mock(&server, "tok", 1).await;
        Mock::given(method("POST"))
            .and(path("/tracking/v3r2/tracking"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&server)
            .await;
        match usps()
            .track(
                &account(&server.uri()),
                &requests(&["9400100000000000000001"]),
            )
            .await
        {
            Err(CarrierError::Malformed { detail, excerpt }) => {
                assert!(detail.contains("JSON"), "{detail}");
                assert!(excerpt.contains(words), "{excerpt}");
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    // A 404 that is not USPS's (a wrong base URL) is a configuration problem.
    let wrong = MockServer::start().await;
    token_mock(&wrong, "tok", 1).await;
    Mock::given(method("POST"))
        .and(path("/tracking/v3r2/tracking"))
        .respond_with(ResponseTemplate::new(404).set_body_string("<html>Not Found</html>"))
        .mount(&wrong)
        .await;
    assert!(matches!(
        usps()
            .track(
                &account(&wrong.uri()),
                &requests(&["9400100000000000000001"])
            )
            .await,
        Err(CarrierError::Permanent(_))
    ));
}

#[tokio::test]
async fn more_numbers_than_usps_takes_are_split_into_calls_of_35() {
    let server = MockServer::start().await;
    token_mock(&server, "tok", 1).await;
    Mock::given(method("POST"))
        .and(path("/tracking/v3r2/tracking"))
        .respond_with(EchoDetails)
        .expect(2)
        .mount(&server)
        .await;
    let numbers: Vec<String> = (0..40)
        .map(|i| format!("94001000000000000{i:05}"))
        .collect();
    let batch: Vec<TrackRequest> = numbers.iter().map(|n| request(n)).collect();
    let results = usps()
        .track(&account(&format!("{}/", server.uri())), &batch)
        .await
        .expect("tracked");
    let answered: Vec<&str> = results.iter().map(|r| r.tracking_number.as_str()).collect();
    assert_eq!(
        answered,
        numbers.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    let sizes: Vec<usize> = server
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.url.path() == "/tracking/v3r2/tracking")
        .map(|r| {
            serde_json::from_slice::<Vec<Value>>(&r.body)
                .expect("a JSON list")
                .len()
        })
        .collect();
    assert_eq!(sizes, vec![35, 5]);
    assert_eq!(usps().track(&account(&server.uri()), &[]).await, Ok(vec![]));
}

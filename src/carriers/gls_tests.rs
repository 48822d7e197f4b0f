use super::*;
use crate::carriers::test_support::{self, fast_transport, published, request, ts};
use crate::domain::{Reason as R, Status as S};
use jiff::Timestamp;
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{body_string_contains, header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The spec's fourth `Response200` example, "200Reference2Parcels" (one notification card that
/// finds two parcels), copied verbatim from `ecitrackandtrace.karrio-vendor.yaml`: it was not
/// extracted into a file of its own.
const REFERENCE_TWO_PARCELS: &str = r#"{
  "parcels": [
    {
      "requested": "747N6K", "unitno": "93835330599", "status": "INTRANSIT",
      "statusDateTime": "2024-09-18T06:50:22+0200",
      "events": [
        {"code": "INTIAL.NORMAL", "city": "", "postalCode": "", "country": "IT",
         "description": "The parcel was handed over to GLS.", "eventDateTime": "2024-09-18T06:50:22+0200"},
        {"code": "INTIAL.PREADVICE", "city": "", "postalCode": "", "country": "IT",
         "description": "The parcel data was entered into the GLS IT system; the parcel was not yet handed over to GLS.",
         "eventDateTime": "2024-09-17T22:27:25+0200"}
      ]
    },
    {
      "requested": "747N6K", "unitno": "93835330600", "status": "INTRANSIT",
      "statusDateTime": "2024-09-18T06:48:46+0200",
      "events": [
        {"code": "INTIAL.NORMAL", "city": "", "postalCode": "", "country": "IT",
         "description": "The parcel was handed over to GLS.", "eventDateTime": "2024-09-18T06:48:46+0200"},
        {"code": "INTIAL.PREADVICE", "city": "", "postalCode": "", "country": "IT",
         "description": "The parcel data was entered into the GLS IT system; the parcel was not yet handed over to GLS.",
         "eventDateTime": "2024-09-17T22:27:25+0200"}
      ]
    }
  ]
}"#;

fn gls() -> Gls {
    let profile = CarrierProfile::from_toml("carriers/gls.toml", BUNDLED_PROFILE)
        .expect("the bundled data file parses");
    Gls::new(profile, fast_transport())
}

fn requests(numbers: &[&str]) -> Vec<TrackRequest> {
    numbers.iter().map(|n| request(n)).collect()
}

fn account(base: &str) -> CarrierAccount {
    test_support::account(
        "gls",
        json!({ "client_id": "gls-key", "client_secret": "gls-secret" }),
        Some(base),
    )
}

fn report(result: &ParcelResult) -> &TrackReport {
    result
        .outcome
        .as_ref()
        .unwrap_or_else(|e| panic!("{}: {e:?}", result.tracking_number))
}

const PREADVICE_TEXT: &str = "The parcel data was entered into the GLS IT system; the parcel was not yet handed over to GLS.";

#[test]
fn the_bundled_data_file_parses_with_gls_limits() {
    let profile = CarrierProfile::from_toml("carriers/gls.toml", BUNDLED_PROFILE)
        .expect("the bundled data file parses");
    assert_eq!(profile.code.as_str(), "gls");
    assert_eq!(profile.limits.batch_size, MAX_BATCH);
    assert_eq!(profile.limits.daily_quota, Some(500));
    // Every parcel status of the spec but FINAL has a meaning.
    for status in [
        "PLANNEDPICKUP",
        "INPICKUP",
        "NOTPICKEDUP",
        "PREADVICE",
        "INTRANSIT",
        "INDELIVERY",
        "DELIVEREDPS",
        "DELIVERED",
        "INWAREHOUSE",
        "NOTDELIVERED",
        "CANCELED",
    ] {
        assert!(profile.normalise(status).is_some(), "{status}");
    }
    assert_eq!(
        profile.normalise("DELIVEREDPS").map(|m| m.status),
        Some(S::AvailableForPickup)
    );
}

#[test]
fn the_published_answer_without_errors_is_normalised() {
    let results = gls()
        .read_answer(
            &requests(&["36301917596"]),
            &published("gls", "example_response_200WithoutErrors.json"),
        )
        .expect("an answer");
    let report = report(&results[0]);
    let [e48, preadvice] = &report.events[..] else {
        panic!("two events: {:?}", report.events)
    };
    assert_eq!((e48.status, e48.reason), (S::InfoReceived, None));
    assert_eq!(e48.raw_code, "INTIAL.E48_DATA");
    assert_eq!(
        e48.raw_text,
        "The parcel was provided by the sender for collection by GLS."
    );
    // "+0200" without a colon.
    assert_eq!(e48.time.at, ts("2024-10-11T13:24:52Z"));
    assert_eq!(e48.time.offset_seconds, Some(7200));
    assert_eq!(e48.location.as_deref(), Some("DE"));
    assert_eq!(
        (preadvice.status, preadvice.reason),
        (S::InfoReceived, None)
    );
    assert_eq!(preadvice.raw_code, "INTIAL.PREADVICE");
    assert_eq!(preadvice.raw_text, PREADVICE_TEXT);
    assert_eq!(preadvice.time.at, ts("2024-10-11T13:24:51Z"));
    assert_eq!(preadvice.time.offset_seconds, Some(7200));
    assert_eq!(report.estimate, None);
    assert_eq!(report.signed_by, None);
    assert_eq!(report.pickup_point, None);
    assert_eq!(report.change_delivery_url, None);
}

#[test]
fn the_published_answer_with_errors_fails_only_the_unknown_parcel() {
    let results = gls()
        .read_answer(
            &requests(&["42249018928", "36301917596"]),
            &published("gls", "example_response_200WithErrors.json"),
        )
        .expect("an answer");
    assert_eq!(results[0].tracking_number.as_str(), "42249018928");
    assert_eq!(results[0].outcome, Err(ParcelError::NotFound));
    let known = report(&results[1]);
    assert_eq!(results[1].tracking_number.as_str(), "36301917596");
    assert_eq!(known.events.len(), 2);
    assert_eq!(known.events[0].raw_code, "INTIAL.E48_DATA");
    assert_eq!(known.events[0].time.at, ts("2024-10-11T13:24:52Z"));
}

#[test]
fn the_published_parcelshop_delivery_waits_for_the_customer() {
    let results = gls()
        .read_answer(
            &requests(&["42249028960"]),
            &published("gls", "example_response_200WithLinks.json"),
        )
        .expect("an answer");
    let report = report(&results[0]);
    let [shop, handed_over, e48, preadvice] = &report.events[..] else {
        panic!("four events: {:?}", report.events)
    };
    // "Delivered at the ParcelShop" (parcel status DELIVEREDPS): not yet with the customer.
    assert_eq!((shop.status, shop.reason), (S::AvailableForPickup, None));
    assert_eq!(shop.raw_code, "DELIVD.PARCELSHOP");
    assert_eq!(
        shop.raw_text,
        "The parcel has been delivered at the ParcelShop (see ParcelShop information)."
    );
    assert_eq!(shop.time.at, ts("2025-02-10T14:13:46Z"));
    assert_eq!(shop.time.offset_seconds, Some(3600));
    // GLS sends "" for an unknown country and city.
    assert_eq!(shop.location, None);
    assert_eq!(
        (handed_over.status, handed_over.reason),
        (S::InTransit, None)
    );
    assert_eq!(handed_over.raw_code, "INTIAL.NORMAL");
    assert_eq!(handed_over.raw_text, "The parcel was handed over to GLS.");
    assert_eq!(handed_over.time.at, ts("2025-02-10T14:11:12Z"));
    assert_eq!(handed_over.location.as_deref(), Some("DE"));
    assert_eq!(e48.status, S::InfoReceived);
    assert_eq!(e48.time.at, ts("2025-02-10T14:08:44Z"));
    assert_eq!(preadvice.status, S::InfoReceived);
    assert_eq!(preadvice.time.at, ts("2025-02-10T14:08:43Z"));
    assert_eq!(preadvice.time.offset_seconds, Some(3600));
}

/// A reference shared by two parcels is two parcels: the report follows the first, with its own
/// events only, and names the second, never a timeline merged from both.
#[test]
fn a_reference_for_two_parcels_is_two_parcels_not_one_merged_timeline() {
    let results = gls()
        .read_answer(&requests(&["747N6K"]), REFERENCE_TWO_PARCELS)
        .expect("an answer");
    let first_parcel = report(&results[0]);
    assert_eq!(first_parcel.events.len(), 2, "{:?}", first_parcel.events);
    let handed_over: Vec<Timestamp> = first_parcel
        .events
        .iter()
        .filter(|e| e.raw_code == "INTIAL.NORMAL")
        .map(|e| e.time.at)
        .collect();
    assert_eq!(handed_over, vec![ts("2024-09-18T04:50:22Z")]);
    assert_eq!(
        first_parcel.other_parcels,
        vec![TrackingNumber::parse("93835330600").unwrap()]
    );
    let first = &first_parcel.events[0];
    assert_eq!((first.status, first.reason), (S::InTransit, None));
    assert_eq!(first.location.as_deref(), Some("IT"));
    assert_eq!(first.time.offset_seconds, Some(7200));

    // Asked by one of its parcel numbers, that parcel is followed and the other named.
    let by_parcel = REFERENCE_TWO_PARCELS.replace("\"747N6K\"", "\"93835330600\"");
    let results = gls()
        .read_answer(&requests(&["93835330600"]), &by_parcel)
        .expect("an answer");
    let second = report(&results[0]);
    assert_eq!(second.events[0].time.at, ts("2024-09-18T04:48:46Z"));
    assert_eq!(
        second.other_parcels,
        vec![TrackingNumber::parse("93835330599").unwrap()]
    );
}

#[test]
fn the_published_event_codes_all_have_a_meaning() {
    // event_codes_example.json: GET /tracking/events/codes.
    let listed: Value =
        serde_json::from_str(&published("gls", "event_codes_example.json")).expect("JSON");
    let gls = gls();
    let meanings: Vec<(String, Status, Option<Reason>)> = listed["eventsCodes"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| {
            let code = c["code"].as_str().expect("a code").to_owned();
            let (status, reason) = gls.normalise(&code, None);
            (code, status, reason)
        })
        .collect();
    assert_eq!(
        meanings,
        vec![
            ("CANCEL.NORMAL".to_owned(), S::Exception, None),
            ("CHANGD.MONEWADDR".to_owned(), S::InTransit, None),
            ("CHANGD.PARCELBOX".to_owned(), S::InTransit, None),
        ]
    );
}

/// An answer built from the spec's `ParcelDTO`/`EventDTO` schema to exercise the mapping beyond
/// the published examples (which only show the start of a journey and a ParcelShop delivery).
const JOURNEYS: &str = r#"{
  "parcels": [
    {
      "requested": "11111111111", "unitno": "11111111111", "status": "DELIVERED",
      "statusDateTime": "2024-10-15T14:02:00+0200",
      "events": [
        {"code": "DELIVD.NEIGHBOR", "city": "Berlin", "postalCode": "10437", "country": "DE",
         "description": "The parcel has been delivered to the neighbour.", "eventDateTime": "2024-10-15T14:02:00+0200"},
        {"code": "NOTDEL.ABSENT", "city": "Berlin", "postalCode": "10437", "country": "DE",
         "description": "The parcel could not be delivered as the consignee was absent.", "eventDateTime": "2024-10-14T11:30:00+0200"},
        {"code": "NOUTDL.NORMAL", "city": "Berlin", "postalCode": "10437", "country": "DE",
         "description": "The parcel could not be delivered today.", "eventDateTime": "2024-10-13T08:00:00+0200"},
        {"code": "INBOUD.NORMAL", "city": "Wrocław", "postalCode": "", "country": "PL",
         "description": "The parcel has reached the parcel center.", "eventDateTime": "2024-10-12T05:10:00"}
      ]
    },
    {
      "requested": "22222222222", "unitno": "22222222222", "status": "INDELIVERY",
      "statusDateTime": "2024-10-16T07:00:00+0200",
      "events": [
        {"code": "NEWCAT.SOMETHING", "city": "Hamburg", "country": "DE",
         "description": "A new kind of scan.", "eventDateTime": "2024-10-16T07:00:00+0200"},
        {"code": "NEWCAT.OTHER", "city": "Hamburg", "country": "DE",
         "description": "Another new kind of scan.", "eventDateTime": "2024-10-15T21:00:00+0200"},
        {"code": "CUSTPB.DOCS", "city": "Zürich", "country": "CH",
         "description": "Customs clearance problem.", "eventDateTime": "2024-10-15T10:00:00+0200"}
      ]
    },
    {
      "requested": "33333333333", "unitno": "33333333333", "status": "INTRANSIT",
      "statusDateTime": "2024-10-17T09:00:00+0200",
      "events": [
        {"code": "RETURN.NORMAL", "city": "Neuenstein", "country": "DE",
         "description": "The parcel is on its way back to the sender.", "eventDateTime": "2024-10-17T09:00:00+0200"}
      ]
    },
    {"requested": "44444444444", "unitno": "44444444444", "status": "PREADVICE",
     "statusDateTime": "2024-10-18T10:00:00+0200"},
    {"requested": "55555555555", "errorCode": "E_400_03", "errorMessage": "Wrong Postal Code"},
    {"requested": "66666666666", "errorCode": "E_500_01", "errorMessage": "Internal Server Error"},
    {"requested": "77777777777", "unitno": "77777777777", "status": "INTRANSIT",
     "events": [{"code": "INBOUD.NORMAL", "country": "DE", "description": "No time"}]}
  ]
}"#;

#[test]
fn journeys_map_onto_the_taxonomy() {
    let asked = requests(&[
        "11111111111",
        "22222222222",
        "33333333333",
        "44444444444",
        "55555555555",
        "66666666666",
        "77777777777",
        "88888888888",
    ]);
    let results = gls().read_answer(&asked, JOURNEYS).expect("an answer");

    let delivered = report(&results[0]);
    let [neighbour, absent, no_attempt, hub] = &delivered.events[..] else {
        panic!("four events")
    };
    assert_eq!(
        (neighbour.status, neighbour.reason),
        (S::Delivered, Some(R::DeliveredToNeighbour))
    );
    assert_eq!(neighbour.location.as_deref(), Some("Berlin, DE"));
    assert_eq!(neighbour.time.at, ts("2024-10-15T12:02:00Z"));
    assert_eq!(
        (absent.status, absent.reason),
        (S::AttemptFailed, Some(R::RecipientUnavailable))
    );
    // Not out for delivery today: a delay, not a failed attempt.
    assert_eq!(
        (no_attempt.status, no_attempt.reason),
        (S::InTransit, Some(R::CarrierDelay))
    );
    assert_eq!(no_attempt.raw_code, "NOUTDL.NORMAL");
    // A time without offset is local to the scan's country (Poland, CEST).
    assert_eq!(hub.time.at, ts("2024-10-12T03:10:00Z"));
    assert_eq!(hub.time.offset_seconds, Some(7200));
    assert_eq!(hub.location.as_deref(), Some("Wrocław, PL"));

    let unknown = report(&results[1]);
    // The newest unknown code takes the parcel's status (INDELIVERY); the older one stays in
    // transit; both keep GLS's code and words.
    assert_eq!(
        (unknown.events[0].status, unknown.events[0].reason),
        (S::OutForDelivery, None)
    );
    assert_eq!(unknown.events[0].raw_code, "NEWCAT.SOMETHING");
    assert_eq!(unknown.events[0].raw_text, "A new kind of scan.");
    assert_eq!(
        (unknown.events[1].status, unknown.events[1].reason),
        (S::InTransit, None)
    );
    assert_eq!(
        (unknown.events[2].status, unknown.events[2].reason),
        (S::Exception, Some(R::CustomsHeld))
    );

    let returning = report(&results[2]);
    assert_eq!(
        (returning.events[0].status, returning.events[0].reason),
        (S::Exception, Some(R::ReturningToSender))
    );

    // Only a status: kept as one scan at its time.
    let status_only = report(&results[3]);
    assert_eq!(status_only.events.len(), 1);
    let only = &status_only.events[0];
    assert_eq!(
        (only.status, only.raw_code.as_str()),
        (S::InfoReceived, "PREADVICE")
    );
    assert_eq!(only.time.at, ts("2024-10-18T08:00:00Z"));
    assert_eq!(
        only.raw_text,
        "GLS has received the parcel data but not the physical parcel"
    );

    match &results[4].outcome {
        Err(ParcelError::Rejected(why)) => {
            assert!(
                why.contains("E_400_03") && why.contains("Wrong Postal Code"),
                "{why}"
            )
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    match &results[5].outcome {
        Err(ParcelError::Malformed { detail, excerpt }) => {
            assert!(detail.contains("E_500_01"), "{detail}");
            assert!(excerpt.contains("Internal Server Error"), "{excerpt}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    match &results[6].outcome {
        Err(ParcelError::Malformed { detail, excerpt }) => {
            assert!(detail.contains("eventDateTime"), "{detail}");
            assert!(excerpt.contains("No time"), "{excerpt}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    match &results[7].outcome {
        Err(ParcelError::Malformed { detail, .. }) => {
            assert!(detail.contains("no entry"), "{detail}")
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

// ---- Over HTTP -------------------------------------------------------------------------------

const TRACKING: &str = "/track-and-trace-v1/tracking/simple/trackids/";

fn token_answer(token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": token, "token_type": "Bearer", "expires_in": 14399
    }))
}

async fn token_mock(server: &MockServer, at: &str, token: &str, times: u64) {
    Mock::given(method("POST"))
        .and(path(at))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(token_answer(token))
        .up_to_n_times(times)
        .expect(times)
        .mount(server)
        .await;
}

/// Answers each number in the path with a one-event parcel, in reverse order.
struct EchoParcels;

impl Respond for EchoParcels {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let numbers = request
            .url
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .split(',')
            .map(str::to_owned)
            .collect::<Vec<_>>();
        let parcels: Vec<Value> = numbers
            .iter()
            .rev()
            .map(|n| {
                json!({
                    "requested": n, "unitno": n, "status": "INTRANSIT",
                    "statusDateTime": "2024-10-12T05:10:00+0200",
                    "events": [{"code": "INBOUD.NORMAL", "city": "Neuenstein", "postalCode": "74632",
                                "country": "DE", "description": "The parcel has reached the parcel center.",
                                "eventDateTime": "2024-10-12T05:10:00+0200"}]
                })
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({ "parcels": parcels }))
    }
}

#[tokio::test]
async fn a_batch_is_one_get_with_a_reused_bearer_token() {
    let server = MockServer::start().await;
    token_mock(&server, "/oauth2/v1/token", "tok-1", 1).await;
    Mock::given(method("GET"))
        .and(path(format!("{TRACKING}42249018928,36301917596")))
        .and(query_param("showEvents", "true"))
        .and(header("authorization", "Bearer tok-1"))
        .and(header("accept", "application/json"))
        .and(header("accept-language", "EN"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(published("gls", "example_response_200WithErrors.json")),
        )
        .expect(2)
        .mount(&server)
        .await;
    let gls = gls();
    // The spec's server URL, pasted with its API path and slash, works as a base URL too.
    let account = account(&format!("{}/track-and-trace-v1/", server.uri()));
    let batch = requests(&["42249018928", "36301917596"]);
    for _ in 0..2 {
        let results = gls.track(&account, &batch).await.expect("tracked");
        assert_eq!(results[0].outcome, Err(ParcelError::NotFound));
        assert_eq!(report(&results[1]).events.len(), 2);
    }
}

#[tokio::test]
async fn an_expired_token_is_renewed_once_and_the_call_retried() {
    let server = MockServer::start().await;
    token_mock(&server, "/oauth2/v1/token", "expired", 1).await;
    token_mock(&server, "/oauth2/v1/token", "fresh", 1).await;
    Mock::given(method("GET"))
        .and(path_regex("^/track-and-trace-v1/tracking/simple/trackids/"))
        .and(header("authorization", "Bearer expired"))
        // The spec's 401 example.
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "fault": {"faultstring": "The Token has expired: policy(Verify-JWT)",
                      "detail": {"errorcode": "steps.jwt.TokenExpired"}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/track-and-trace-v1/tracking/simple/trackids/"))
        .and(header("authorization", "Bearer fresh"))
        .respond_with(EchoParcels)
        .expect(1)
        .mount(&server)
        .await;
    let results = gls()
        .track(&account(&server.uri()), &requests(&["36301917596"]))
        .await
        .expect("tracked after re-authenticating");
    assert_eq!(
        report(&results[0]).events[0].location.as_deref(),
        Some("Neuenstein, DE")
    );
}

#[tokio::test]
async fn a_second_refusal_is_an_auth_error() {
    let server = MockServer::start().await;
    token_mock(&server, "/oauth2/v1/token", "tok", 2).await;
    Mock::given(method("GET"))
        .and(path_regex("^/track-and-trace-v1/"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "fault": {"faultstring": "Invalid access token", "detail": {"errorcode": "oauth.v2.InvalidAccessToken"}}
        })))
        .expect(2)
        .mount(&server)
        .await;
    match gls()
        .track(&account(&server.uri()), &requests(&["36301917596"]))
        .await
    {
        Err(CarrierError::Auth(said)) => assert!(said.contains("Invalid access token"), "{said}"),
        other => panic!("expected Auth, got {other:?}"),
    }
}

#[tokio::test]
async fn the_token_endpoint_can_be_replaced_per_account() {
    let server = MockServer::start().await;
    token_mock(&server, "/oauth2/v2/token", "v2-token", 1).await;
    Mock::given(method("GET"))
        .and(path_regex("^/track-and-trace-v1/"))
        .and(header("authorization", "Bearer v2-token"))
        .respond_with(EchoParcels)
        .expect(1)
        .mount(&server)
        .await;
    let mut account = account(&server.uri());
    account.credentials.insert("token_url", "/oauth2/v2/token");
    let results = gls()
        .track(&account, &requests(&["36301917596"]))
        .await
        .expect("tracked");
    assert!(results[0].outcome.is_ok());

    let mut without = account.clone();
    without.credentials = json!({ "client_secret": "gls-secret" }).into();
    match gls().track(&without, &requests(&["36301917596"])).await {
        Err(CarrierError::Auth(said)) => assert!(said.contains("client_id"), "{said}"),
        other => panic!("expected Auth, got {other:?}"),
    }
}

#[tokio::test]
async fn too_many_requests_is_rate_limited() {
    let server = MockServer::start().await;
    token_mock(&server, "/oauth2/v1/token", "tok", 1).await;
    // The spec's 429 example, once with a Retry-After and once without.
    let quota = json!({
        "fault": {"faultstring": "Rate limit quota violation. Quota limit  exceeded. Identifier : 14f8edf5-8954-45d8-986b-ee9db7cc68d3",
                  "detail": {"errorcode": "policies.ratelimit.QuotaViolation"}}
    });
    Mock::given(method("GET"))
        .and(path_regex("^/track-and-trace-v1/"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "3600")
                .set_body_json(quota.clone()),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/track-and-trace-v1/"))
        .respond_with(ResponseTemplate::new(429).set_body_json(quota))
        .mount(&server)
        .await;
    let gls = gls();
    let account = account(&server.uri());
    assert_eq!(
        gls.track(&account, &requests(&["36301917596"])).await,
        Err(CarrierError::RateLimited {
            retry_after: Some(Duration::from_secs(3600))
        })
    );
    assert_eq!(
        gls.track(&account, &requests(&["36301917596"])).await,
        Err(CarrierError::RateLimited { retry_after: None })
    );
}

#[tokio::test]
async fn a_server_error_is_retried_within_the_call() {
    let server = MockServer::start().await;
    token_mock(&server, "/oauth2/v1/token", "tok", 1).await;
    Mock::given(method("GET"))
        .and(path_regex("^/track-and-trace-v1/"))
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream reset"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/track-and-trace-v1/"))
        .respond_with(EchoParcels)
        .expect(1)
        .mount(&server)
        .await;
    let results = gls()
        .track(&account(&server.uri()), &requests(&["36301917596"]))
        .await
        .expect("tracked on the second attempt");
    assert_eq!(report(&results[0]).events[0].raw_code, "INBOUD.NORMAL");
}

#[tokio::test]
async fn garbage_answers_are_malformed_with_the_carriers_words() {
    for (body, words, detail_words) in [
        (
            "<!DOCTYPE html><html><body><h1>502 Proxy Error</h1></body></html>".to_owned(),
            "Proxy Error",
            "JSON",
        ),
        (
            r#"{"parcels":[{"requested":"36301917596","unitno":"36301917596","status":"INTRA"#
                .to_owned(),
            "INTRA",
            "JSON",
        ),
        (
            json!({"fault": {"faultstring": "Spike arrest violation"}}).to_string(),
            "Spike arrest violation",
            "ParcelsResponseDTO",
        ),
    ] {
        let server = MockServer::start().await;
        token_mock(&server, "/oauth2/v1/token", "tok", 1).await;
        Mock::given(method("GET"))
            .and(path_regex("^/track-and-trace-v1/"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&server)
            .await;
        match gls()
            .track(&account(&server.uri()), &requests(&["36301917596"]))
            .await
        {
            Err(CarrierError::Malformed { detail, excerpt }) => {
                assert!(detail.contains(detail_words), "{detail}");
                assert!(excerpt.contains(words), "{excerpt}");
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    // The spec's 404 is a wrong call, not an unknown parcel.
    let wrong = MockServer::start().await;
    token_mock(&wrong, "/oauth2/v1/token", "tok", 1).await;
    Mock::given(method("GET"))
        .and(path_regex("^/track-and-trace-v1/"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "type": "about:blank", "title": "Not Found", "status": 404,
            "detail": "No static resource ...", "instance": "/tracking/..."
        })))
        .mount(&wrong)
        .await;
    match gls()
        .track(&account(&wrong.uri()), &requests(&["36301917596"]))
        .await
    {
        Err(CarrierError::Permanent(said)) => {
            assert!(said.contains("No static resource"), "{said}")
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn more_numbers_than_gls_takes_are_split_into_calls_of_10() {
    let server = MockServer::start().await;
    token_mock(&server, "/oauth2/v1/token", "tok", 1).await;
    Mock::given(method("GET"))
        .and(path_regex("^/track-and-trace-v1/tracking/simple/trackids/"))
        .respond_with(EchoParcels)
        .expect(3)
        .mount(&server)
        .await;
    let numbers: Vec<String> = (0..23).map(|i| format!("9{i:010}")).collect();
    let batch: Vec<TrackRequest> = numbers.iter().map(|n| request(n)).collect();
    let results = gls()
        .track(&account(&server.uri()), &batch)
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
        .filter(|r| r.url.path().starts_with(TRACKING))
        .map(|r| {
            r.url
                .path()
                .rsplit('/')
                .next()
                .unwrap_or("")
                .split(',')
                .count()
        })
        .collect();
    assert_eq!(sizes, vec![10, 10, 3]);
    assert_eq!(gls().track(&account(&server.uri()), &[]).await, Ok(vec![]));
}

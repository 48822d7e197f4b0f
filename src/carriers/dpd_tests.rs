use super::*;
use crate::carriers::test_support::{self, fast_transport, number, published, request, ts};
use jiff::SignedDuration;
use std::time::Duration;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// DPD's published example answer (karrio's captured DPD Belgium response, Aug 2021).
const RESPONSE_FILE: &str = "example_getTrackingData_response.karrio-test.xml";
const FIXTURE_NUMBER: &str = "05308801410058";

fn response_fixture() -> String {
    published("dpd", RESPONSE_FILE)
}

fn request_fixture() -> String {
    published("dpd", "example_getTrackingData_request.karrio-test.xml")
}

fn dpd() -> Dpd {
    Dpd::bundled(fast_transport())
}

fn account(base_url: Option<String>) -> CarrierAccount {
    test_support::account(
        "dpd",
        serde_json::json!({"delis_id": "KD12345", "password": "s3cret&"}),
        base_url.as_deref(),
    )
}

/// A `getAuth` answer in the shape of DPD's LoginService 2.1 schema; `expires` is written as DPD
/// does, a bare local time (Europe/Amsterdam here).
fn login_answer(token: &str, expires: Timestamp) -> String {
    let local = expires
        .to_zoned(TimeZone::get("Europe/Amsterdam").expect("a zone"))
        .datetime()
        .strftime("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string();
    format!(
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <getAuthResponse xmlns="http://dpd.com/common/service/types/LoginService/2.1">
      <return>
        <delisId>KD12345</delisId>
        <customerUid>KD12345</customerUid>
        <authToken>{token}</authToken>
        <depot>0530</depot>
        <authTokenExpires>{local}</authTokenExpires>
      </return>
    </getAuthResponse>
  </soap:Body>
</soap:Envelope>"#
    )
}

/// A SOAP fault as DPD sends them: SOAP code and string, DPD's code and message in the detail.
fn fault(detail_element: &str, code: &str, message: &str) -> String {
    format!(
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <soap:Fault>
      <faultcode>soap:Server</faultcode>
      <faultstring>Fault occured</faultstring>
      <detail>
        <ns:{detail_element} xmlns:ns="http://dpd.com/common/service/types/Authentication/2.0">
          <errorCode>{code}</errorCode>
          <errorMessage>{message}</errorMessage>
        </ns:{detail_element}>
      </detail>
    </soap:Fault>
  </soap:Body>
</soap:Envelope>"#
    )
}

fn token_refused() -> String {
    fault(
        "authenticationFault",
        "LOGIN_5",
        "The authToken is invalid.",
    )
}

fn answer_for(number: &str) -> String {
    // The same journey for another parcel.
    response_fixture().replace(FIXTURE_NUMBER, number)
}

async fn mount_login(server: &MockServer, token: &str, expires: Timestamp) {
    Mock::given(method("POST"))
        .and(path(LOGIN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_string(login_answer(token, expires)))
        .mount(server)
        .await;
}

fn tomorrow() -> Timestamp {
    Timestamp::now() + SignedDuration::from_hours(24)
}

async fn requests_to(server: &MockServer, to: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == to)
        .collect()
}

fn report_of(outcome: &Result<TrackReport, ParcelError>) -> &TrackReport {
    outcome.as_ref().expect("a report")
}

// ---------------------------------------------------------------------------------------------
// The published payloads.

#[test]
fn the_data_file_parses_and_maps_every_code_of_the_published_example() {
    let profile = CarrierProfile::from_toml("carriers/dpd.toml", BUNDLED_PROFILE)
        .expect("carriers/dpd.toml parses");
    assert_eq!(profile.code.as_str(), "dpd");
    assert_eq!(profile.limits.batch_size, 1);
    for code in [
        "BetweenDepots",
        "Depot",
        "Courier",
        "DeliveryFailure",
        "ParcelShop",
        "PickedUp",
        "ReturningFromDelivery",
    ] {
        assert!(profile.normalise(code).is_some(), "{code} is mapped");
    }
    assert_eq!(
        profile.tracking_url(&number(FIXTURE_NUMBER)),
        "https://www.dpdgroup.com/nl/mydpd/my-parcels/track?lang=en&parcelNumber=05308801410058"
    );
}

#[test]
fn the_published_example_answer_is_normalised_scan_by_scan() {
    // File: example_getTrackingData_response.karrio-test.xml (DPD Belgium, August 2021).
    let parcel = number(FIXTURE_NUMBER);
    let outcome = dpd()
        .read_tracking(&parcel, &response_fixture(), "en_EN")
        .expect("a readable answer");
    let report = report_of(&outcome);
    assert_eq!(report.events.len(), 15, "{RESPONSE_FILE}: every statusInfo");

    let check = |index: usize,
                 code: &str,
                 status: Status,
                 utc: &str,
                 offset: i32,
                 location: &str,
                 text: &str| {
        let event = &report.events[index];
        assert_eq!(event.raw_code, code, "event {index}");
        assert_eq!(event.status, status, "event {index} ({code})");
        assert_eq!(event.reason, None, "event {index} ({code})");
        assert_eq!(event.time.at, ts(utc), "event {index} ({code})");
        assert_eq!(event.time.offset_seconds, Some(offset), "event {index}");
        assert_eq!(event.location.as_deref(), Some(location), "event {index}");
        assert_eq!(event.raw_text, text, "event {index}");
    };
    // "8/17/2021 7:11:26 PM" at Puurs (BE): 19:11:26 Brussels summer time.
    check(
        0,
        "BetweenDepots",
        Status::InTransit,
        "2021-08-17T17:11:26Z",
        7200,
        "Puurs, BE",
        "The parcel is at the parcel dispatch centre.",
    );
    // "8/18/2021 4:09:55 AM": the morning, not the afternoon.
    check(
        2,
        "Depot",
        Status::InTransit,
        "2021-08-18T02:09:55Z",
        7200,
        "Mechelen, BE",
        "At parcel delivery centre.",
    );
    check(
        3,
        "Courier",
        Status::OutForDelivery,
        "2021-08-18T05:34:34Z",
        7200,
        "Mechelen, BE",
        "The parcel has left the parcel delivery centre and is on its way to the consignee.",
    );
    // A German depot: read at Europe/Berlin.
    check(
        4,
        "Courier",
        Status::OutForDelivery,
        "2021-08-18T08:14:00Z",
        7200,
        "Aschaffenburg, DE",
        "The parcel has left the parcel delivery centre and is on its way to the consignee.",
    );
    check(
        5,
        "DeliveryFailure",
        Status::AttemptFailed,
        "2021-08-18T12:43:31Z",
        7200,
        "Mechelen, BE",
        "Unfortunately we have not been able to deliver your parcel.",
    );
    check(
        7,
        "ParcelShop",
        Status::AvailableForPickup,
        "2021-08-18T14:09:35Z",
        7200,
        "Mechelen, BE",
        "Delivered by driver to Pickup parcelshop",
    );
    check(
        13,
        "PickedUp",
        Status::InTransit,
        "2021-08-19T13:57:33Z",
        7200,
        "Mechelen, BE",
        "DPD has received your parcel.",
    );
    check(
        14,
        "ReturningFromDelivery",
        Status::AttemptFailed,
        "2021-08-19T15:11:26Z",
        7200,
        "Mechelen, BE",
        "After an unsuccessful delivery attempt the parcel is back at the recipient depot.",
    );

    // The example has no Predict text, no signature and no parcelshop details.
    assert_eq!(report.estimate, None);
    assert_eq!(report.signed_by, None);
    assert_eq!(report.pickup_point, None);
    // The last scan is a failed attempt: the customer can still change the delivery.
    assert_eq!(
        report.change_delivery_url.as_deref(),
        Some(
            "https://www.dpdgroup.com/nl/mydpd/my-parcels/track?lang=en&parcelNumber=05308801410058"
        )
    );
}

#[test]
fn our_request_is_the_published_example_request() {
    // File: example_getTrackingData_request.karrio-test.xml, with its placeholders.
    let ours = tracking_envelope("KD*****", "[AUTH_TOKEN]", "en_EN", FIXTURE_NUMBER);
    let ours = Element::parse(&ours).expect("our envelope is XML");
    let published = Element::parse(&request_fixture()).expect("the example is XML");
    assert_eq!(ours.render(), published.render());
}

#[test]
fn a_delivered_parcel_offers_no_change_and_a_predict_text_gives_the_estimate() {
    let delivered = response_fixture()
        .replace(
            "<status>ReturningFromDelivery</status>",
            "<status>Delivered</status>",
        )
        .replace(
            "<status>SHIPMENT</status>",
            r#"<predictInformation>
                  <label><content>Predict</content><bold>true</bold><paragraph>false</paragraph></label>
                  <content><content>Your parcel will be delivered on 8/20/2021 between 10:30 and 11:30.</content><bold>false</bold><paragraph>false</paragraph></content>
               </predictInformation>
               <status>SHIPMENT</status>"#,
        );
    let outcome = dpd()
        .read_tracking(&number(FIXTURE_NUMBER), &delivered, "en_EN")
        .expect("a readable answer");
    let report = report_of(&outcome);
    assert_eq!(report.events[14].status, Status::Delivered);
    assert_eq!(report.change_delivery_url, None);
    assert_eq!(
        report.estimate,
        Some(DeliveryWindow::on(jiff::civil::date(2021, 8, 20)))
    );
}

#[test]
fn a_code_missing_from_the_mapping_keeps_the_scan_as_moving() {
    let changed =
        response_fixture().replace("<status>Depot</status>", "<status>HubScanNew</status>");
    let dpd = dpd();
    let outcome = dpd
        .read_tracking(&number(FIXTURE_NUMBER), &changed, "en_EN")
        .expect("a readable answer");
    let event = &report_of(&outcome).events[2];
    assert_eq!(event.raw_code, "HubScanNew");
    assert_eq!(event.status, Status::InTransit);
    assert_eq!(event.raw_text, "At parcel delivery centre.");
    assert!(dpd.unmapped.logged().contains("HubScanNew"));
}

#[test]
fn milestones_not_reached_yet_are_not_scans() {
    // DPD Germany's shape: the five milestones, flagged reached or not, in German layout.
    let body = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
      <ns2:getTrackingDataResponse xmlns:ns2="http://dpd.com/common/service/types/ParcelLifeCycleService/2.0">
        <trackingresult>
          <statusInfo><status>ACCEPTED</status><label><content>Auftrag angenommen</content><bold>true</bold><paragraph>false</paragraph></label>
            <description><content><content>Die Auftragsdaten wurden an DPD übermittelt.</content><bold>false</bold><paragraph>false</paragraph></content></description>
            <statusHasBeenReached>true</statusHasBeenReached><isCurrentStatus>false</isCurrentStatus><showContactInfo>false</showContactInfo>
            <date><content>02.03.2026 18:05</content><bold>false</bold><paragraph>false</paragraph></date></statusInfo>
          <statusInfo><status>AT_SENDING_DEPOT</status><label><content>Im Depot</content><bold>true</bold><paragraph>false</paragraph></label>
            <description><content><content>Paket ist im Depot.</content><bold>false</bold><paragraph>false</paragraph></content></description>
            <statusHasBeenReached>true</statusHasBeenReached><isCurrentStatus>true</isCurrentStatus><showContactInfo>false</showContactInfo>
            <location><content>Leipzig (DE)</content><bold>true</bold><paragraph>false</paragraph></location>
            <date><content>03.03.2026 06:40</content><bold>false</bold><paragraph>false</paragraph></date></statusInfo>
          <statusInfo><status>DELIVERED</status><label><content>Zugestellt</content><bold>true</bold><paragraph>false</paragraph></label>
            <description><content><content>Zugestellt.</content><bold>false</bold><paragraph>false</paragraph></content></description>
            <statusHasBeenReached>false</statusHasBeenReached><isCurrentStatus>false</isCurrentStatus><showContactInfo>false</showContactInfo></statusInfo>
        </trackingresult>
      </ns2:getTrackingDataResponse></soap:Body></soap:Envelope>"#;
    let outcome = dpd()
        .read_tracking(&number("01234567890123"), body, "de_DE")
        .expect("a readable answer");
    let events = &report_of(&outcome).events;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].status, Status::InfoReceived);
    // No location: DPD BeNeLux's home zone (CET in March).
    assert_eq!(events[0].time.at, ts("2026-03-02T17:05:00Z"));
    assert_eq!(events[0].location, None);
    assert_eq!(events[1].status, Status::InTransit);
    assert_eq!(events[1].time.at, ts("2026-03-03T05:40:00Z"));
    assert_eq!(events[1].time.offset_seconds, Some(3600));
    assert_eq!(events[1].location.as_deref(), Some("Leipzig, DE"));
}

#[test]
fn an_answer_without_scans_is_not_found_and_bad_times_are_malformed() {
    let empty = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
      <getTrackingDataResponse xmlns="http://dpd.com/common/service/types/ParcelLifeCycleService/2.0">
        <trackingresult/></getTrackingDataResponse></soap:Body></soap:Envelope>"#;
    let parcel = number(FIXTURE_NUMBER);
    assert_eq!(
        dpd().read_tracking(&parcel, empty, "en_EN"),
        Ok(Err(ParcelError::NotFound))
    );
    let bad = response_fixture().replace("8/18/2021 4:09:55 AM", "yesterday morning");
    match dpd().read_tracking(&parcel, &bad, "en_EN") {
        Ok(Err(ParcelError::Malformed { detail, excerpt })) => {
            assert!(detail.contains("yesterday morning"), "{detail}");
            assert!(excerpt.contains("<status>Depot</status>"), "{excerpt}");
        }
        other => panic!("expected a malformed parcel, got {other:?}"),
    }
}

#[test]
fn times_in_each_language_layout() {
    let brussels = TimeZone::get("Europe/Brussels").unwrap();
    let expected = ts("2021-08-17T17:11:26Z");
    for (text, language) in [
        ("8/17/2021 7:11:26 PM", "en_EN"),
        ("8/17/2021 19:11:26", "en_US"),
        ("17-8-2021 19:11:26", "nl_NL"),
        ("17.08.2021 19:11:26", "de_DE"),
        ("17/08/2021 19:11:26", "fr_BE"),
        ("2021-08-17T19:11:26", "nl_NL"),
    ] {
        let time = parse_time(text, language, &brussels).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(time.at, expected, "{text} ({language})");
        assert_eq!(time.offset_seconds, Some(7200), "{text}");
    }
    // 12 AM is midnight, 12 PM noon.
    let midnight = parse_time("8/17/2021 12:05:00 AM", "en_EN", &brussels).unwrap();
    assert_eq!(midnight.at, ts("2021-08-16T22:05:00Z"));
    assert!(parse_time("soon", "en_EN", &brussels).is_err());
}

#[test]
fn the_label_number_is_found_in_what_merchants_register() {
    let label = |text: &str| parcel_label_number(&number(text)).to_owned();
    assert_eq!(label(FIXTURE_NUMBER), FIXTURE_NUMBER);
    // With the check character printed under the barcode.
    assert_eq!(label("05308801410058Q"), FIXTURE_NUMBER);
    // The whole barcode: postcode 2800000, parcel number, service 101, country 056, check.
    assert_eq!(label("280000005308801410058101056Z"), FIXTURE_NUMBER);
    assert_eq!(label("DPD-ABC-123"), "DPD-ABC-123");
}

#[test]
fn places_are_city_and_country() {
    assert_eq!(Place::parse("Puurs (BE)").label(), "Puurs, BE");
    assert_eq!(
        Place::parse(" Aschaffenburg (de) ").label(),
        "Aschaffenburg, DE"
    );
    assert_eq!(Place::parse("Depot 0530").label(), "Depot 0530");
    assert_eq!(Place::parse("Hub (Nord)").country, None);
}

#[test]
fn the_xml_reader_ignores_namespaces_and_names_what_is_broken() {
    let doc = Element::parse(
        r#"<?xml version="1.0"?><a:Root xmlns:a="urn:x"><a:Item>caf&#233; &amp; co</a:Item><Empty/></a:Root>"#,
    )
    .expect("XML");
    assert_eq!(doc.name, "Root");
    assert_eq!(doc.text_of("Item"), Some("café & co"));
    assert!(doc.child("Empty").is_some());
    assert!(Element::parse("<a><b></a>").is_err());
    assert!(
        Element::parse("<a><b>text</b>")
            .unwrap_err()
            .contains("ends inside <a>")
    );
    assert!(Element::parse("Bad Gateway").is_err());
    assert!(Element::parse("").is_err());
    assert!(
        Element::parse("<a/><b/>")
            .unwrap_err()
            .contains("second root")
    );
}

// ---------------------------------------------------------------------------------------------
// Over HTTP.

#[tokio::test]
async fn one_login_serves_many_calls_and_each_call_is_dpds_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(LOGIN_PATH))
        .and(header("SOAPAction", LOGIN_ACTION))
        .and(body_string_contains("<delisId>KD12345</delisId>"))
        .and(body_string_contains("<password>s3cret&amp;</password>"))
        .and(body_string_contains(
            "<messageLanguage>en_EN</messageLanguage>",
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(login_answer("TOKEN-1", tomorrow())),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(TRACKING_PATH))
        .and(header("SOAPAction", TRACKING_ACTION))
        .and(header("Content-Type", "text/xml; charset=utf-8"))
        .and(body_string_contains("<authToken>TOKEN-1</authToken>"))
        .and(body_string_contains("<delisId>KD12345</delisId>"))
        .and(body_string_contains(
            "<parcelLabelNumber>05308801410058</parcelLabelNumber>",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(response_fixture()))
        .expect(2)
        .mount(&server)
        .await;
    let dpd = dpd();
    let account = account(Some(format!("{}/", server.uri())));
    for _ in 0..2 {
        let results = dpd
            .track(&account, &[request(FIXTURE_NUMBER)])
            .await
            .expect("tracked");
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].tracking_number, number(FIXTURE_NUMBER));
        assert_eq!(report_of(&results[0].outcome).events.len(), 15);
    }
    server.verify().await;
}

#[tokio::test]
async fn a_batch_is_one_call_per_parcel_in_order_and_an_unknown_parcel_stays_its_own() {
    let server = MockServer::start().await;
    mount_login(&server, "TOKEN-1", tomorrow()).await;
    Mock::given(method("POST"))
        .and(path(TRACKING_PATH))
        .and(body_string_contains(
            "<parcelLabelNumber>09981122334455</parcelLabelNumber>",
        ))
        .respond_with(ResponseTemplate::new(500).set_body_string(fault(
            "faults",
            "DELICOM_ERR_PARCEL_NOT_FOUND",
            "Parcel not found.",
        )))
        .mount(&server)
        .await;
    for known in [FIXTURE_NUMBER, "05308801410059"] {
        Mock::given(method("POST"))
            .and(path(TRACKING_PATH))
            .and(body_string_contains(format!(
                "<parcelLabelNumber>{known}</parcelLabelNumber>"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_string(answer_for(known)))
            .mount(&server)
            .await;
    }
    let batch = [
        request("05308801410059"),
        request("09981122334455"),
        request(FIXTURE_NUMBER),
    ];
    let results = dpd()
        .track(&account(Some(server.uri())), &batch)
        .await
        .expect("tracked");
    let order: Vec<&str> = results.iter().map(|r| r.tracking_number.as_str()).collect();
    assert_eq!(order, ["05308801410059", "09981122334455", FIXTURE_NUMBER]);
    assert!(results[0].outcome.is_ok());
    assert_eq!(results[1].outcome, Err(ParcelError::NotFound));
    assert!(results[2].outcome.is_ok());
    // More numbers than batch_size (1): one getTrackingData per parcel, in request order. (The
    // fault comes with HTTP 500, which the transport retries within the call, hence dedup.)
    let mut asked: Vec<String> = requests_to(&server, TRACKING_PATH)
        .await
        .iter()
        .map(|r| {
            Element::parse(&String::from_utf8_lossy(&r.body))
                .ok()
                .and_then(|doc| doc.find("parcelLabelNumber").map(|e| e.text().to_owned()))
                .unwrap_or_default()
        })
        .collect();
    asked.dedup();
    assert_eq!(asked, ["05308801410059", "09981122334455", FIXTURE_NUMBER]);
    assert_eq!(requests_to(&server, LOGIN_PATH).await.len(), 1);
}

#[tokio::test]
async fn a_refused_token_is_dropped_and_one_new_login_is_tried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(LOGIN_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(login_answer("TOKEN-OLD", tomorrow())),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    mount_login(&server, "TOKEN-NEW", tomorrow()).await;
    Mock::given(method("POST"))
        .and(path(TRACKING_PATH))
        .and(body_string_contains("<authToken>TOKEN-OLD</authToken>"))
        .respond_with(ResponseTemplate::new(500).set_body_string(token_refused()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(TRACKING_PATH))
        .and(body_string_contains("<authToken>TOKEN-NEW</authToken>"))
        .respond_with(ResponseTemplate::new(200).set_body_string(response_fixture()))
        .mount(&server)
        .await;
    let dpd = dpd();
    let account = account(Some(server.uri()));
    let results = dpd
        .track(&account, &[request(FIXTURE_NUMBER)])
        .await
        .expect("tracked after a new login");
    assert!(results[0].outcome.is_ok());
    assert_eq!(requests_to(&server, LOGIN_PATH).await.len(), 2);
    // The new token is kept for the next call.
    dpd.track(&account, &[request(FIXTURE_NUMBER)])
        .await
        .expect("tracked");
    assert_eq!(requests_to(&server, LOGIN_PATH).await.len(), 2);
}

#[tokio::test]
async fn a_token_refused_twice_is_an_authentication_failure_with_dpds_words() {
    let server = MockServer::start().await;
    mount_login(&server, "TOKEN-1", tomorrow()).await;
    Mock::given(method("POST"))
        .and(path(TRACKING_PATH))
        .respond_with(ResponseTemplate::new(500).set_body_string(token_refused()))
        .mount(&server)
        .await;
    match dpd()
        .track(&account(Some(server.uri())), &[request(FIXTURE_NUMBER)])
        .await
    {
        Err(CarrierError::Auth(said)) => {
            assert!(said.contains("LOGIN_5"), "{said}");
            assert!(said.contains("The authToken is invalid."), "{said}");
        }
        other => panic!("expected an auth failure, got {other:?}"),
    }
    assert_eq!(requests_to(&server, LOGIN_PATH).await.len(), 2);
}

#[tokio::test]
async fn a_refused_login_is_an_authentication_failure() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(LOGIN_PATH))
        .respond_with(ResponseTemplate::new(500).set_body_string(fault(
            "authenticationFault",
            "DELICOM_ERR_AUTHENTICATION",
            "Authentication failure, check delisId and password.",
        )))
        .mount(&server)
        .await;
    match dpd()
        .track(&account(Some(server.uri())), &[request(FIXTURE_NUMBER)])
        .await
    {
        Err(CarrierError::Auth(said)) => {
            assert!(said.contains("DELICOM_ERR_AUTHENTICATION"), "{said}");
            assert!(said.contains("check delisId and password"), "{said}");
        }
        other => panic!("expected an auth failure, got {other:?}"),
    }
    assert!(requests_to(&server, TRACKING_PATH).await.is_empty());

    let mut no_password = account(Some(server.uri()));
    no_password.credentials = serde_json::json!({"delis_id": "KD12345"}).into();
    match dpd().track(&no_password, &[request(FIXTURE_NUMBER)]).await {
        Err(CarrierError::Auth(said)) => assert!(said.contains("password"), "{said}"),
        other => panic!("expected an auth failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_dpd_calls_expired_is_renewed_on_the_next_call() {
    let server = MockServer::start().await;
    mount_login(
        &server,
        "TOKEN-1",
        Timestamp::now() - SignedDuration::from_mins(5),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(TRACKING_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_string(response_fixture()))
        .mount(&server)
        .await;
    let dpd = dpd();
    let account = account(Some(server.uri()));
    for _ in 0..2 {
        dpd.track(&account, &[request(FIXTURE_NUMBER)])
            .await
            .expect("tracked");
    }
    assert_eq!(requests_to(&server, LOGIN_PATH).await.len(), 2);
}

#[tokio::test]
async fn too_many_requests_is_rate_limited_with_dpds_wait() {
    let server = MockServer::start().await;
    mount_login(&server, "TOKEN-1", tomorrow()).await;
    Mock::given(method("POST"))
        .and(path(TRACKING_PATH))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "30"))
        .mount(&server)
        .await;
    assert_eq!(
        dpd()
            .track(&account(Some(server.uri())), &[request(FIXTURE_NUMBER)])
            .await,
        Err(CarrierError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        })
    );
}

#[tokio::test]
async fn a_server_error_is_retried_within_the_call() {
    let server = MockServer::start().await;
    mount_login(&server, "TOKEN-1", tomorrow()).await;
    Mock::given(method("POST"))
        .and(path(TRACKING_PATH))
        .respond_with(ResponseTemplate::new(503).set_body_string("<html>busy</html>"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(TRACKING_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_string(response_fixture()))
        .mount(&server)
        .await;
    let results = dpd()
        .track(&account(Some(server.uri())), &[request(FIXTURE_NUMBER)])
        .await
        .expect("tracked on the second attempt");
    assert!(results[0].outcome.is_ok());
    assert_eq!(requests_to(&server, TRACKING_PATH).await.len(), 2);
}

#[tokio::test]
async fn a_bare_server_fault_is_transient_and_keeps_the_fault_string() {
    let server = MockServer::start().await;
    mount_login(&server, "TOKEN-1", tomorrow()).await;
    let bare = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
        <soap:Fault><faultcode>soap:Server</faultcode>
        <faultstring>java.lang.NullPointerException in ParcelLifeCycleService</faultstring>
        </soap:Fault></soap:Body></soap:Envelope>"#;
    Mock::given(method("POST"))
        .and(path(TRACKING_PATH))
        .respond_with(ResponseTemplate::new(500).set_body_string(bare))
        .mount(&server)
        .await;
    match dpd()
        .track(&account(Some(server.uri())), &[request(FIXTURE_NUMBER)])
        .await
    {
        Err(CarrierError::Transient(said)) => {
            assert!(said.contains("NullPointerException"), "{said}");
            assert!(said.contains("soap:Server"), "{said}");
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_fault_about_the_number_is_that_parcels_rejection() {
    let server = MockServer::start().await;
    mount_login(&server, "TOKEN-1", tomorrow()).await;
    Mock::given(method("POST"))
        .and(path(TRACKING_PATH))
        .respond_with(ResponseTemplate::new(500).set_body_string(fault(
            "faults",
            "COMMON_7",
            "parcelLabelNumber has an invalid format",
        )))
        .mount(&server)
        .await;
    let results = dpd()
        .track(&account(Some(server.uri())), &[request("ABC123")])
        .await
        .expect("the call worked");
    match &results[0].outcome {
        Err(ParcelError::Rejected(said)) => {
            assert!(said.contains("COMMON_7"), "{said}");
            assert!(said.contains("invalid format"), "{said}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_answers_are_malformed_with_what_dpd_sent() {
    let server = MockServer::start().await;
    mount_login(&server, "TOKEN-1", tomorrow()).await;
    let html = "<!DOCTYPE html><html><head><title>502 Proxy Error</title></head><body><p>Proxy Error<br></p></body></html>";
    Mock::given(method("POST"))
        .and(path(TRACKING_PATH))
        .and(body_string_contains(FIXTURE_NUMBER))
        .respond_with(ResponseTemplate::new(200).set_body_string(html))
        .mount(&server)
        .await;
    let fixture = response_fixture();
    let truncated = fixture[..fixture.len() / 2].to_owned();
    Mock::given(method("POST"))
        .and(path(TRACKING_PATH))
        .and(body_string_contains("05308801410059"))
        .respond_with(ResponseTemplate::new(200).set_body_string(truncated))
        .mount(&server)
        .await;
    let account = account(Some(server.uri()));
    match dpd().track(&account, &[request(FIXTURE_NUMBER)]).await {
        Err(CarrierError::Malformed { detail, excerpt }) => {
            assert!(detail.contains("not a SOAP answer"), "{detail}");
            assert!(excerpt.contains("502 Proxy Error"), "{excerpt}");
        }
        other => panic!("expected a malformed answer, got {other:?}"),
    }
    match dpd().track(&account, &[request("05308801410059")]).await {
        Err(CarrierError::Malformed { detail, excerpt }) => {
            assert!(detail.contains("ends inside"), "{detail}");
            assert!(excerpt.starts_with("<soap:Envelope"), "{excerpt}");
        }
        other => panic!("expected a malformed answer, got {other:?}"),
    }
}

#[tokio::test]
async fn a_registered_barcode_is_tracked_by_its_parcel_number_and_answered_as_registered() {
    let server = MockServer::start().await;
    mount_login(&server, "TOKEN-1", tomorrow()).await;
    Mock::given(method("POST"))
        .and(path(TRACKING_PATH))
        .and(body_string_contains(
            "<parcelLabelNumber>05308801410058</parcelLabelNumber>",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(response_fixture()))
        .expect(1)
        .mount(&server)
        .await;
    let results = dpd()
        .track(
            &account(Some(server.uri())),
            &[request("280000005308801410058101056Z")],
        )
        .await
        .expect("tracked");
    assert_eq!(
        results[0].tracking_number.as_str(),
        "280000005308801410058101056Z"
    );
    assert!(results[0].outcome.is_ok());
    server.verify().await;
}

#[tokio::test]
async fn an_empty_batch_calls_nobody() {
    let server = MockServer::start().await;
    assert_eq!(
        dpd().track(&account(Some(server.uri())), &[]).await,
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

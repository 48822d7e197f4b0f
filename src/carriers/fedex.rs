//! FedEx, through its Track API v1 (FedEx's Track API OpenAPI document, kept as a test fixture in `tests/fixtures/carriers/fedex/track-openapi.json`).
//!
//! ## Credentials
//!
//! A FedEx carrier account's `credentials` hold the project's API key and secret key from the
//! FedEx developer portal, as OAuth2 client credentials:
//!
//! ```json
//! { "client_id": "<API key>", "client_secret": "<secret key>" }
//! ```
//!
//! The account's `base_url` selects the environment: `https://apis-sandbox.fedex.com` is FedEx's
//! sandbox; without it Waymark calls production, [`PRODUCTION_URL`].
//!
//! ## Calls
//!
//! - A token from `POST {base}/oauth/token` (form `grant_type=client_credentials`, `client_id`,
//!   `client_secret`), which lives 60 minutes and is cached per account until shortly before it
//!   expires. A `401` drops the token and re-authenticates once.
//! - `POST {base}/track/v1/trackingnumbers` with up to [`MAX_NUMBERS_PER_CALL`] numbers and
//!   `includeDetailedScans: true`; a bigger batch is split into several calls, answered in order.
//!
//! ## Reading an answer
//!
//! - Per-number errors arrive inside the `200` (`trackResults[].error`): a "not found" code
//!   (`TRACKING.TRACKINGNUMBER.NOTFOUND`) is [`ParcelError::NotFound`], any other refuses that
//!   number only. A result that carries scans or a status is read even when it also carries an
//!   error (FedEx's own sample does).
//! - FedEx may return several results for one number (numbers are reused after some years); the
//!   one with the latest scan is the parcel.
//! - Scan times carry their offset; a time without one is placed in the zone of the scan's state
//!   or country, else FedEx's home zone (US Central).
//! - A scan's meaning is looked up in `carriers/fedex.toml` by `<eventType>:<exceptionCode>`, then
//!   its `eventType`, then its `derivedStatusCode` (FedEx's coarse category); see that file.
//! - The estimate is `estimatedDeliveryTimeWindow`, else `standardTransitTimeWindow`, else the
//!   `ESTIMATED_DELIVERY`, `APPOINTMENT_DELIVERY` or `COMMITMENT` date; `deliveryDetails` names who signed;
//!   `holdAtLocation` is the pickup point.

use async_trait::async_trait;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use reqwest::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use super::profile::{Mapping, UnmappedCodes};
use super::timestamps::{parse_iso, zone_for_place};
use super::transport::{self, TokenCache, Transport, excerpt, lenient_list, parse_json};
use super::{
    Carrier, CarrierAccount, CarrierError, CarrierProfile, ParcelError, ParcelResult, PickupPoint,
    TrackReport, TrackRequest,
};
use crate::domain::{DeliveryWindow, Status, TrackingEvent, TrackingNumber};

/// FedEx's data file, compiled in; a file of the same name in the carriers directory replaces it.
pub const BUNDLED_PROFILE: &str = include_str!("../../carriers/fedex.toml");

/// FedEx's production API.
pub const PRODUCTION_URL: &str = "https://apis.fedex.com";

/// The most numbers FedEx takes in one call ("Maximum limit is 30", `trackingInfo`).
pub const MAX_NUMBERS_PER_CALL: usize = 30;

/// Where FedEx is at home (Memphis): the zone for a zone-less time at a scan without a place.
const HOME_ZONE: &str = "America/Chicago";

/// FedEx's Track API.
#[derive(Debug)]
pub struct Fedex {
    profile: CarrierProfile,
    transport: Transport,
    tokens: TokenCache,
    unmapped: UnmappedCodes,
}

impl Fedex {
    /// An adapter that normalises through `profile` and calls FedEx through `transport`.
    pub fn new(profile: CarrierProfile, transport: Transport) -> Self {
        Fedex {
            profile,
            tokens: transport.token_cache(),
            transport,
            unmapped: UnmappedCodes::default(),
        }
    }

    /// An adapter with the bundled `carriers/fedex.toml`.
    pub fn bundled(transport: Transport) -> Self {
        let profile = CarrierProfile::from_toml("carriers/fedex.toml (bundled)", BUNDLED_PROFILE)
            .expect("the bundled carriers/fedex.toml is valid (checked by its tests)");
        Fedex::new(profile, transport)
    }

    /// Numbers per call: the data file's batch size, never more than FedEx accepts.
    fn per_call(&self) -> usize {
        self.profile
            .limits
            .batch_size
            .clamp(1, MAX_NUMBERS_PER_CALL)
    }

    /// One call for up to [`MAX_NUMBERS_PER_CALL`] numbers.
    async fn track_chunk(
        &self,
        account: &CarrierAccount,
        base: &str,
        chunk: &[TrackRequest],
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        let url = format!("{base}/track/v1/trackingnumbers");
        let body = serde_json::json!({
            "includeDetailedScans": true,
            "trackingInfo": chunk
                .iter()
                .map(|r| serde_json::json!({
                    "trackingNumberInfo": { "trackingNumber": r.tracking_number.as_str() }
                }))
                .collect::<Vec<_>>(),
        });
        let token_url = format!("{base}/oauth/token");
        let answer = self
            .transport
            .send_with_client_credentials(
                "FedEx",
                &self.tokens,
                account,
                &token_url,
                |client, token| {
                    client
                        .post(&url)
                        .bearer_auth(token)
                        .header("x-customer-transaction-id", Uuid::now_v7().to_string())
                        .header("x-locale", "en_US")
                        .header(reqwest::header::ACCEPT, "application/json")
                        .json(&body)
                },
            )
            .await?;
        match answer.status {
            s if s.is_success() => self.parse_answer(chunk, &answer.body),
            StatusCode::NOT_FOUND => match error_codes(&answer.body) {
                // FedEx's tracking "not found" codes for the whole request: no number is known.
                Some(codes) if codes.iter().any(|c| is_not_found(c)) => Ok(chunk
                    .iter()
                    .map(|r| ParcelResult {
                        tracking_number: r.tracking_number.clone(),
                        outcome: Err(ParcelError::NotFound),
                    })
                    .collect()),
                // "NOT.FOUND.ERROR" or no FedEx body: a wrong URL, not unknown parcels.
                _ => Err(answer.error()),
            },
            _ => Err(answer.error()),
        }
    }

    /// Read the body of a `200` answer for `numbers`, one result each, in order (see below).
    pub fn read_answer_body(
        &self,
        numbers: &[TrackingNumber],
        body: &str,
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        self.parse_answer(&super::unregistered(numbers), body)
    }

    /// Read a `200` answer for `requested`: one result per requested number, in order. Garbage
    /// (an HTML page, truncated JSON, no `output`) fails the call; a number the answer is silent
    /// about, or whose record lacks what the spec promises, fails only that parcel.
    fn parse_answer(
        &self,
        requested: &[TrackRequest],
        body: &str,
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        let answer: TrackResponse = parse_json(body)?;
        let Some(output) = answer.output else {
            let detail = if answer.errors.is_empty() {
                "the answer has no output".to_owned()
            } else {
                format!(
                    "the answer has no output: {}",
                    FedexError::join(&answer.errors)
                )
            };
            return Err(transport::malformed(detail, body));
        };
        // Each number's record is read on its own, so a record FedEx got wrong spoils only its
        // parcel, and the excerpt kept is that record. The same number asked twice gets the
        // same answer.
        let mut outcomes: Vec<(String, Result<TrackReport, ParcelError>)> = Vec::new();
        for raw in output.complete_track_results {
            let record = raw.to_string();
            let (number, outcome) = match CompleteTrackResult::deserialize(&raw) {
                Ok(result) => {
                    let Some(number) = result.number() else {
                        continue;
                    };
                    if outcomes.iter().any(|(known, _)| *known == number) {
                        continue;
                    }
                    let outcome = self.outcome(result, &record);
                    (number, outcome)
                }
                Err(e) => {
                    let Some(number) = raw
                        .get("trackingNumber")
                        .and_then(|n| n.as_str())
                        .and_then(|n| TrackingNumber::parse(n).ok())
                    else {
                        continue;
                    };
                    let outcome = Err(ParcelError::Malformed {
                        detail: format!("the number's record is not what the spec says: {e}"),
                        excerpt: excerpt(&record),
                    });
                    (number.as_str().to_owned(), outcome)
                }
            };
            outcomes.push((number, outcome));
        }
        Ok(requested
            .iter()
            .map(|request| {
                let wanted = request.tracking_number.as_str();
                let outcome = outcomes
                    .iter()
                    .find(|(number, _)| number == wanted)
                    .map(|(_, outcome)| outcome.clone())
                    .unwrap_or_else(|| {
                        Err(ParcelError::Malformed {
                            detail: format!("the answer has no result for {wanted}"),
                            excerpt: excerpt(body),
                        })
                    });
                ParcelResult {
                    tracking_number: request.tracking_number.clone(),
                    outcome,
                }
            })
            .collect())
    }

    /// What one number's results say.
    fn outcome(&self, result: CompleteTrackResult, body: &str) -> Result<TrackReport, ParcelError> {
        let (with_data, without): (Vec<TrackResult>, Vec<TrackResult>) = result
            .track_results
            .into_iter()
            .partition(TrackResult::has_data);
        if with_data.is_empty() {
            return Err(match without.iter().find_map(|r| r.error.as_ref()) {
                Some(error) if error.code().is_some_and(is_not_found) => ParcelError::NotFound,
                Some(error) => ParcelError::Rejected(error.describe()),
                None => ParcelError::Malformed {
                    detail: "the result has no scans, no status and no error".into(),
                    excerpt: excerpt(body),
                },
            });
        }
        // Several results: FedEx reused the number. The one with the latest scan is this parcel.
        let mut best: Option<TrackReport> = None;
        let mut first_problem = None;
        for track in with_data {
            match self.report(track, body) {
                Ok(report) => {
                    let latest = |r: &TrackReport| r.events.iter().map(|e| e.time.at).max();
                    if best.as_ref().is_none_or(|b| latest(&report) > latest(b)) {
                        best = Some(report);
                    }
                }
                Err(problem) => {
                    first_problem.get_or_insert(problem);
                }
            }
        }
        match (best, first_problem) {
            (Some(report), _) => Ok(report),
            (None, Some(problem)) => Err(problem),
            (None, None) => Err(ParcelError::Malformed {
                detail: "the result has no scans".into(),
                excerpt: excerpt(body),
            }),
        }
    }

    fn report(&self, track: TrackResult, body: &str) -> Result<TrackReport, ParcelError> {
        let delivered_at = track
            .delivery_details
            .as_ref()
            .and_then(|d| text(&d.location_type))
            .map(str::to_ascii_uppercase);
        let mut events = Vec::with_capacity(track.scan_events.len());
        for (index, scan) in track.scan_events.iter().enumerate() {
            let event = self.event(scan, delivered_at.as_deref()).map_err(|why| {
                ParcelError::Malformed {
                    detail: format!("scan event {index}: {why}"),
                    excerpt: excerpt(body),
                }
            })?;
            events.push(event);
        }
        let signed_by = track
            .delivery_details
            .as_ref()
            .and_then(|d| text(&d.signed_by_name).or(text(&d.received_by_name)))
            .map(str::to_owned);
        Ok(TrackReport {
            events,
            estimate: estimate(&track),
            signed_by,
            pickup_point: track.hold_at_location.as_ref().map(pickup_point),
            // FedEx's API gives no per-parcel link to change the delivery.
            change_delivery_url: None,
            other_parcels: Vec::new(),
        })
    }

    fn event(&self, scan: &ScanEvent, delivered_at: Option<&str>) -> Result<TrackingEvent, String> {
        let date = text(&scan.date).ok_or("it has no date".to_owned())?;
        let place = scan.scan_location.as_ref();
        let zone = place
            .and_then(|a| zone_for_place(text(&a.country_code), text(&a.state_or_province_code)))
            .or_else(|| TimeZone::get(HOME_ZONE).ok());
        let time = parse_iso(date, zone.as_ref()).map_err(|e| e.to_string())?;
        let event_type = text(&scan.event_type);
        let derived = text(&scan.derived_status_code);
        let raw_code = event_type
            .or(derived)
            .ok_or("it has no eventType or derivedStatusCode".to_owned())?;

        let mut mapping = self.normalise(event_type, text(&scan.exception_code), derived);
        if let (Status::Delivered, None, Some(place)) =
            (mapping.status, mapping.reason, delivered_at)
        {
            if let Some(refined) = self
                .profile
                .normalise(&format!("delivered_at:{place}"))
                .filter(|m| m.status == Status::Delivered)
            {
                mapping = refined;
            }
        }

        let description = text(&scan.event_description).or(text(&scan.derived_status));
        let exception = text(&scan.exception_description);
        let raw_text = match (description, exception) {
            (Some(what), Some(why)) if !what.eq_ignore_ascii_case(why) => format!("{what}: {why}"),
            (Some(only), _) | (None, Some(only)) => only.to_owned(),
            (None, None) => String::new(),
        };
        Ok(TrackingEvent {
            time,
            status: mapping.status,
            reason: mapping.reason,
            raw_code: raw_code.to_owned(),
            raw_text,
            location: place.and_then(Address::label),
        })
    }

    /// The mapping's meaning of a scan: `<eventType>:<exceptionCode>`, else its event type, else
    /// (with a warning, so the mapping can be extended) its derived status, else in transit.
    fn normalise(
        &self,
        event_type: Option<&str>,
        exception_code: Option<&str>,
        derived: Option<&str>,
    ) -> Mapping {
        let with_exception = event_type
            .zip(exception_code)
            .map(|(kind, exception)| format!("{kind}:{exception}"));
        if let Some(mapping) = [with_exception.as_deref(), event_type]
            .into_iter()
            .flatten()
            .find_map(|key| self.profile.normalise(key))
        {
            return mapping;
        }
        let unknown = format!(
            "eventType={} exceptionCode={} derivedStatusCode={}",
            event_type.unwrap_or("-"),
            exception_code.unwrap_or("-"),
            derived.unwrap_or("-")
        );
        if self.unmapped.first_time(&unknown) {
            tracing::warn!(
                carrier = %self.profile.code,
                codes = %unknown,
                "FedEx scan code is not in the mapping; using its derived status (extend carriers/fedex.toml)"
            );
        }
        Mapping::for_unknown_code(derived.and_then(|code| self.profile.normalise(code)))
    }
}

#[async_trait]
impl Carrier for Fedex {
    fn profile(&self) -> &CarrierProfile {
        &self.profile
    }

    async fn track(
        &self,
        account: &CarrierAccount,
        batch: &[TrackRequest],
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        let base = transport::base_url(account, PRODUCTION_URL);
        let mut results = Vec::with_capacity(batch.len());
        // The scheduler splits batches already; a caller that does not still gets every number
        // answered, in calls FedEx accepts.
        for chunk in batch.chunks(self.per_call()) {
            results.extend(self.track_chunk(account, &base, chunk).await?);
        }
        Ok(results)
    }
}

/// Whether a FedEx error code says the number is unknown (`TRACKING.TRACKINGNUMBER.NOTFOUND`,
/// `TRACKING.DATA.NOTFOUND`). `NOT.FOUND.ERROR` is about the URL, not a parcel.
fn is_not_found(code: &str) -> bool {
    let code = code.trim().to_ascii_uppercase();
    code.starts_with("TRACKING.") && code.ends_with("NOTFOUND")
}

/// The error codes of FedEx's error body (`{"errors":[{code,message}]}`).
fn error_codes(body: &str) -> Option<Vec<String>> {
    let parsed: TrackResponse = serde_json::from_str(body).ok()?;
    let codes: Vec<String> = parsed
        .errors
        .iter()
        .filter_map(|e| e.code().map(str::to_owned))
        .collect();
    (!codes.is_empty()).then_some(codes)
}

/// A non-empty, trimmed text field.
fn text(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// The local date of a FedEx date-time (`2021-10-15T00:00:00-06:00`, `2019-05-07`): the day as
/// FedEx wrote it, which is the day in the destination's calendar.
fn local_date(value: &str) -> Option<Date> {
    value.trim().get(..10)?.parse().ok()
}

/// The carrier's estimate: the estimated window, else the standard transit window (live
/// answers often leave the estimated one empty and give only the standard one), else the
/// estimated, appointment or committed date. An unreadable or inverted window is logged and
/// skipped, not a failed parcel: the scans matter more.
fn estimate(track: &TrackResult) -> Option<DeliveryWindow> {
    let windows = [
        ("estimated", &track.estimated_delivery_time_window),
        ("standard transit", &track.standard_transit_time_window),
    ];
    if let Some(window) = windows
        .into_iter()
        .find_map(|(name, window)| window_of(name, window.as_ref()?))
    {
        return Some(window);
    }
    ["ESTIMATED_DELIVERY", "APPOINTMENT_DELIVERY", "COMMITMENT"]
        .into_iter()
        .find_map(|wanted| {
            track
                .date_and_times
                .iter()
                .filter(|d| text(&d.kind).is_some_and(|k| k.eq_ignore_ascii_case(wanted)))
                .find_map(|d| text(&d.date_time).and_then(local_date))
        })
        .map(DeliveryWindow::on)
}

/// The dates of one of FedEx's time windows, `None` when it has none (or they are unreadable).
fn window_of(name: &str, window: &TimeWindow) -> Option<DeliveryWindow> {
    let range = window.window.as_ref()?;
    let begins = text(&range.begins).and_then(local_date);
    let ends = text(&range.ends).and_then(local_date);
    let read = match (begins, ends) {
        (Some(from), Some(to)) => DeliveryWindow::between(from, to).ok(),
        (Some(one), None) | (None, Some(one)) => Some(DeliveryWindow::on(one)),
        (None, None) => None,
    };
    if read.is_none() && (range.begins.is_some() || range.ends.is_some()) {
        tracing::warn!(
            carrier = "fedex",
            window = name,
            begins = ?range.begins,
            ends = ?range.ends,
            "FedEx delivery window is unreadable; ignoring it"
        );
    }
    read
}

/// The FedEx location holding the parcel for the customer.
fn pickup_point(location: &LocationDetail) -> PickupPoint {
    let contact = location
        .location_contact_and_address
        .as_ref()
        .and_then(|c| c.contact.as_ref());
    let name = contact
        .and_then(|c| text(&c.company_name).or(text(&c.person_name)))
        .map(str::to_owned)
        .or_else(|| text(&location.location_id).map(|id| format!("FedEx location {id}")))
        .unwrap_or_else(|| "FedEx location".to_owned());
    let address = location
        .location_contact_and_address
        .as_ref()
        .and_then(|c| c.address.as_ref())
        .and_then(Address::full);
    PickupPoint {
        name,
        address,
        // FedEx does not say how long it holds the parcel.
        hold_until: None,
    }
}

// The parts of the spec's TrkcResponseVO_TrackingNumber Waymark reads. Every field is optional so
// that a missing one is reported by name, not as a parse error of the whole answer. `alerts` is
// not read: the spec says it is a list, its own example sends a string.

#[derive(Debug, Deserialize)]
struct TrackResponse {
    output: Option<Output>,
    /// Present on error answers (`ErrorResponseVO`).
    #[serde(default, deserialize_with = "lenient_list")]
    errors: Vec<FedexError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    /// Read one by one (see [`Fedex::parse_answer`]).
    #[serde(default, deserialize_with = "lenient_list")]
    complete_track_results: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompleteTrackResult {
    tracking_number: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    track_results: Vec<TrackResult>,
}

impl CompleteTrackResult {
    /// The number this result answers, as Waymark spells numbers.
    fn number(&self) -> Option<String> {
        text(&self.tracking_number)
            .or_else(|| {
                self.track_results
                    .iter()
                    .find_map(|r| r.tracking_number_info.as_ref()?.tracking_number.as_deref())
            })
            .and_then(|n| TrackingNumber::parse(n).ok())
            .map(|n| n.as_str().to_owned())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackResult {
    tracking_number_info: Option<TrackingNumberInfo>,
    latest_status_detail: Option<serde_json::Value>,
    error: Option<FedexError>,
    delivery_details: Option<DeliveryDetails>,
    #[serde(default, deserialize_with = "lenient_list")]
    scan_events: Vec<ScanEvent>,
    #[serde(default, deserialize_with = "lenient_list")]
    date_and_times: Vec<DateAndTime>,
    hold_at_location: Option<LocationDetail>,
    estimated_delivery_time_window: Option<TimeWindow>,
    standard_transit_time_window: Option<TimeWindow>,
}

impl TrackResult {
    /// Whether FedEx said anything about the parcel itself.
    fn has_data(&self) -> bool {
        !self.scan_events.is_empty() || self.latest_status_detail.is_some()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackingNumberInfo {
    tracking_number: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScanEvent {
    date: Option<String>,
    derived_status: Option<String>,
    scan_location: Option<Address>,
    exception_description: Option<String>,
    event_description: Option<String>,
    event_type: Option<String>,
    derived_status_code: Option<String>,
    exception_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Address {
    #[serde(default, deserialize_with = "lenient_list")]
    street_lines: Vec<String>,
    city: Option<String>,
    state_or_province_code: Option<String>,
    postal_code: Option<String>,
    country_code: Option<String>,
}

impl Address {
    /// "SEATTLE, US" as Waymark shows a scan's place; whichever half FedEx gave, else nothing.
    fn label(&self) -> Option<String> {
        match (text(&self.city), text(&self.country_code)) {
            (Some(city), Some(country)) => Some(format!("{city}, {country}")),
            (Some(only), None) | (None, Some(only)) => Some(only.to_owned()),
            (None, None) => None,
        }
    }

    /// "1043 North Easy Street, Suite 999, 98101 SEATTLE, US"; none without a street.
    fn full(&self) -> Option<String> {
        let street: Vec<String> = self
            .street_lines
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if street.is_empty() {
            return None;
        }
        let town = [text(&self.postal_code), text(&self.city)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let parts: Vec<String> = street
            .into_iter()
            .chain((!town.is_empty()).then_some(town))
            .chain(text(&self.country_code).map(str::to_owned))
            .collect();
        Some(parts.join(", "))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryDetails {
    received_by_name: Option<String>,
    signed_by_name: Option<String>,
    location_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DateAndTime {
    date_time: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TimeWindow {
    window: Option<TimeRange>,
}

#[derive(Debug, Deserialize)]
struct TimeRange {
    begins: Option<String>,
    ends: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LocationDetail {
    location_id: Option<String>,
    location_contact_and_address: Option<ContactAndAddress>,
}

#[derive(Debug, Deserialize)]
struct ContactAndAddress {
    contact: Option<Contact>,
    address: Option<Address>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Contact {
    person_name: Option<String>,
    company_name: Option<String>,
}

/// A FedEx error: `{code, message}`.
#[derive(Debug, Deserialize)]
struct FedexError {
    code: Option<String>,
    message: Option<String>,
}

impl FedexError {
    fn code(&self) -> Option<&str> {
        text(&self.code)
    }

    /// "code: message", in FedEx's words.
    fn describe(&self) -> String {
        match (text(&self.code), text(&self.message)) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(only), None) | (None, Some(only)) => only.to_owned(),
            (None, None) => "(no message)".to_owned(),
        }
    }

    fn join(errors: &[FedexError]) -> String {
        errors
            .iter()
            .map(FedexError::describe)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
#[path = "fedex_tests.rs"]
mod tests;

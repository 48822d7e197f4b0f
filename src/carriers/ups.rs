//! UPS, through its Track API v1 (UPS's `Tracking.yaml` OpenAPI document, github.com/UPS-API/api-documentation).
//!
//! ## Credentials
//!
//! A UPS carrier account's `credentials` hold the app's OAuth2 client credentials from the UPS
//! developer portal:
//!
//! ```json
//! { "client_id": "…", "client_secret": "…" }
//! ```
//!
//! The account's `base_url` selects the environment: `https://wwwcie.ups.com` is UPS's test
//! environment (CIE); without it Waymark calls production, [`PRODUCTION_URL`].
//!
//! ## Calls
//!
//! - A token from `POST {base}/security/v1/oauth/token` (client id and secret as HTTP basic
//!   auth, `grant_type=client_credentials`), cached per account until shortly before it expires.
//!   A `401` on a tracking call drops the token and re-authenticates once.
//! - `GET {base}/api/track/v1/details/{inquiryNumber}` per number — the API takes one number per
//!   call — with a fresh `transId` (32 characters, the most UPS accepts) and `transactionSrc:
//!   waymark`. Milestones, signature images and POD documents are not asked for: the activity
//!   list already says everything the detectors need, and the images are customer data Waymark
//!   does not keep.
//!
//! ## Reading an answer
//!
//! - Activity `date` + `time` are local to the scan, without an offset. When UPS adds
//!   `gmtDate`/`gmtTime`/`gmtOffset`, those give the exact instant and offset; otherwise the
//!   local time is placed in the zone of the scan's state or province (US, Canada, Australia
//!   span several zones), else of its country, else UPS's home zone (US Eastern).
//! - A scan's meaning is looked up in `carriers/ups.toml` by its two-character activity code, then
//!   its three-digit status code, then its status type (`type:<T>`, UPS's coarse category); see
//!   that file.
//! - The estimate is the rescheduled delivery date (`RDD`) when there is one, else the scheduled
//!   one (`SDD`); `deliveryInformation.receivedBy` is who signed; `accessPointInformation` makes a
//!   pickup point with its `pickupByDate`.
//! - A `404` (or a shipment answered with a "not found" warning and no package) is
//!   [`ParcelError::NotFound`]; a `400` with UPS's error body refuses that number only.

use async_trait::async_trait;
use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};
use reqwest::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use super::profile::{Mapping, UnmappedCodes};
use super::timestamps::{parse_local, zone_for_place};
use super::transport::{self, Answer, TokenCache, Transport, excerpt, lenient_list, parse_json};
use super::{
    Carrier, CarrierAccount, CarrierError, CarrierProfile, ParcelError, ParcelResult, PickupPoint,
    TrackReport, TrackRequest,
};
use crate::domain::{DeliveryWindow, EventTime, Reason, Status, TrackingEvent, TrackingNumber};

/// UPS's data file, compiled in; a file of the same name in the carriers directory replaces it.
pub const BUNDLED_PROFILE: &str = include_str!("../../carriers/ups.toml");

/// UPS's production API.
pub const PRODUCTION_URL: &str = "https://onlinetools.ups.com";

/// How Waymark names itself to UPS in `transactionSrc`.
const TRANSACTION_SOURCE: &str = "waymark";

/// Where UPS is at home: the zone for a zone-less time at a scan without a country.
const HOME_ZONE: &str = "America/New_York";

/// UPS's Track API.
#[derive(Debug)]
pub struct Ups {
    profile: CarrierProfile,
    transport: Transport,
    tokens: TokenCache,
    unmapped: UnmappedCodes,
}

impl Ups {
    /// An adapter that normalises through `profile` and calls UPS through `transport`.
    pub fn new(profile: CarrierProfile, transport: Transport) -> Self {
        Ups {
            profile,
            tokens: transport.token_cache(),
            transport,
            unmapped: UnmappedCodes::default(),
        }
    }

    /// An adapter with the bundled `carriers/ups.toml`.
    pub fn bundled(transport: Transport) -> Self {
        let profile = CarrierProfile::from_toml("carriers/ups.toml (bundled)", BUNDLED_PROFILE)
            .expect("the bundled carriers/ups.toml is valid (checked by its tests)");
        Ups::new(profile, transport)
    }

    async fn track_one(
        &self,
        account: &CarrierAccount,
        base: &str,
        number: &TrackingNumber,
    ) -> Result<Result<TrackReport, ParcelError>, CarrierError> {
        let url = format!("{base}/api/track/v1/details/{number}");
        let token_url = format!("{base}/security/v1/oauth/token");
        let answer = self
            .transport
            .send_with_client_credentials(
                "UPS",
                &self.tokens,
                account,
                &token_url,
                |client, token| {
                    client
                        .get(&url)
                        .query(&[
                            ("locale", "en_US"),
                            ("returnSignature", "false"),
                            ("returnMilestones", "false"),
                            ("returnPOD", "false"),
                        ])
                        .bearer_auth(token)
                        // Unique per request, retries included; a simple UUID is exactly 32 characters.
                        .header("transId", Uuid::now_v7().simple().to_string())
                        .header("transactionSrc", TRANSACTION_SOURCE)
                        .header(reqwest::header::ACCEPT, "application/json")
                },
            )
            .await?;
        self.read_answer(number, &answer)
    }

    /// What one answer of the details endpoint says about `number`.
    fn read_answer(
        &self,
        number: &TrackingNumber,
        answer: &Answer,
    ) -> Result<Result<TrackReport, ParcelError>, CarrierError> {
        match answer.status {
            s if s.is_success() => self.parse_details(number, &answer.body),
            StatusCode::NOT_FOUND => match error_body(&answer.body) {
                // UPS's own "Tracking Information Not Found" (TW0001 and kin).
                Some(_) => Ok(Err(ParcelError::NotFound)),
                // A 404 without UPS's error body is a wrong URL, not an unknown parcel.
                None => Err(answer.error()),
            },
            StatusCode::BAD_REQUEST => match error_body(&answer.body) {
                // One number per call: a refused request is a refused number ("Invalid
                // inquiry number"), which must not hold up the rest of the batch.
                Some(said) => Ok(Err(ParcelError::Rejected(said))),
                None => Err(answer.error()),
            },
            _ => Err(answer.error()),
        }
    }

    /// Read the body of a `200` answer of the details endpoint for `numbers`. The answer is
    /// about one inquiry number, so asking about more than one number is refused; garbage is a
    /// classified error, JSON that lacks what the spec promises that parcel's error.
    pub fn read_answer_body(
        &self,
        numbers: &[TrackingNumber],
        body: &str,
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        super::one_parcel_answer("UPS", numbers, |number| self.parse_details(number, body))
    }

    /// Read a `200` answer of the details endpoint. Garbage (an HTML page, truncated JSON) fails
    /// the call; JSON that lacks what the spec promises fails this parcel only.
    fn parse_details(
        &self,
        number: &TrackingNumber,
        body: &str,
    ) -> Result<Result<TrackReport, ParcelError>, CarrierError> {
        let answer: TrackApiResponse = parse_json(body)?;
        Ok(self.report(number, answer, body))
    }

    fn report(
        &self,
        number: &TrackingNumber,
        answer: TrackApiResponse,
        body: &str,
    ) -> Result<TrackReport, ParcelError> {
        let malformed = |detail: String| ParcelError::Malformed {
            detail,
            excerpt: excerpt(body),
        };
        let Some(track) = answer.track_response else {
            return Err(malformed("the answer has no trackResponse".into()));
        };
        let Some(shipment) = track.shipment.into_iter().next() else {
            return Err(malformed("trackResponse has no shipment".into()));
        };
        let package = match shipment.package.len() {
            0 => {
                return Err(if shipment.warnings.iter().any(Message::is_not_found) {
                    ParcelError::NotFound
                } else if !shipment.warnings.is_empty() {
                    ParcelError::Rejected(Message::join(&shipment.warnings))
                } else {
                    malformed("the shipment has no package".into())
                });
            }
            _ => {
                let wanted = number.as_str();
                let at = shipment
                    .package
                    .iter()
                    .position(|p| {
                        p.tracking_number
                            .as_deref()
                            .is_some_and(|n| n.trim().eq_ignore_ascii_case(wanted))
                    })
                    .unwrap_or(0);
                shipment.package.into_iter().nth(at)
            }
        };
        let Some(package) = package else {
            return Err(malformed("the shipment has no package".into()));
        };

        let left_at = package
            .delivery_information
            .as_ref()
            .and_then(|d| text(&d.location))
            .map(str::to_uppercase);
        let mut events = Vec::with_capacity(package.activity.len());
        for (index, activity) in package.activity.iter().enumerate() {
            let event = self
                .event(activity, left_at.as_deref())
                .map_err(|why| malformed(format!("activity {index}: {why}")))?;
            events.push(event);
        }

        let signed_by = package
            .delivery_information
            .as_ref()
            .and_then(|d| text(&d.received_by))
            .map(str::to_owned);
        // UPS sends `accessPointInformation` for parcels that were only offered an Access Point
        // (delivered to the door all the same): a pickup point is shown only once one held it.
        let pickup_point = package
            .access_point_information
            .as_ref()
            .filter(|_| events.iter().any(held_for_pickup))
            .map(|point| access_point(point, &package, &events));

        Ok(TrackReport {
            estimate: estimate(&package.delivery_date),
            signed_by,
            pickup_point,
            // UPS's API gives no per-parcel link to change the delivery.
            change_delivery_url: None,
            events,
            other_parcels: Vec::new(),
        })
    }

    /// One activity as a normalised event.
    fn event(&self, activity: &Activity, left_at: Option<&str>) -> Result<TrackingEvent, String> {
        let status = activity
            .status
            .as_ref()
            .ok_or("it has no status".to_owned())?;
        let address = activity.location.as_ref().and_then(|l| l.address.as_ref());
        let time = activity_time(activity, address)?;
        let code = text(&status.code);
        let status_code = text(&status.status_code);
        let kind = text(&status.kind);
        let raw_code = code
            .or(status_code)
            .or(kind)
            .ok_or("its status has no code, status code or type".to_owned())?;

        let mut mapping = self.normalise(code, status_code, kind);
        if let (Status::Delivered, None, Some(place)) = (mapping.status, mapping.reason, left_at) {
            if let Some(refined) = self
                .profile
                .normalise(&format!("delivered_at:{place}"))
                .filter(|m| m.status == Status::Delivered)
            {
                mapping = refined;
            }
        }

        Ok(TrackingEvent {
            time,
            status: mapping.status,
            reason: mapping.reason,
            raw_code: raw_code.to_owned(),
            raw_text: text(&status.description).unwrap_or_default().to_owned(),
            location: address.and_then(Address::label),
        })
    }

    /// The mapping's meaning of a scan: its activity code, else its status code, else (with a
    /// warning, so the mapping can be extended) its coarse type, else in transit.
    fn normalise(
        &self,
        code: Option<&str>,
        status_code: Option<&str>,
        kind: Option<&str>,
    ) -> Mapping {
        if let Some(mapping) = [code, status_code]
            .into_iter()
            .flatten()
            .find_map(|key| self.profile.normalise(key))
        {
            return mapping;
        }
        let unknown = format!(
            "code={} statusCode={} type={}",
            code.unwrap_or("-"),
            status_code.unwrap_or("-"),
            kind.unwrap_or("-")
        );
        if self.unmapped.first_time(&unknown) {
            tracing::warn!(
                carrier = %self.profile.code,
                codes = %unknown,
                "UPS scan code is not in the mapping; using its status type (extend carriers/ups.toml)"
            );
        }
        Mapping::for_unknown_code(kind.and_then(|k| self.profile.normalise(&format!("type:{k}"))))
    }
}

#[async_trait]
impl Carrier for Ups {
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
        // The API takes one number per call; a bigger batch becomes calls in a row, so the
        // account's rate limit is never exceeded by one `track`.
        for request in batch {
            let outcome = self
                .track_one(account, &base, &request.tracking_number)
                .await?;
            results.push(ParcelResult {
                tracking_number: request.tracking_number.clone(),
                outcome,
            });
        }
        Ok(results)
    }
}

/// UPS's error body (`{"response":{"errors":[{code,message}]}}`), as "code: message" text.
fn error_body(body: &str) -> Option<String> {
    let parsed: ErrorResponse = serde_json::from_str(body).ok()?;
    let errors = parsed.response?.errors;
    (!errors.is_empty()).then(|| Message::join(&errors))
}

/// A non-empty, trimmed text field.
fn text(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// When an activity happened. UPS's GMT fields, when present, are exact; otherwise the bare
/// local date and time are placed in the scan country's zone, else UPS's home zone.
fn activity_time(activity: &Activity, address: Option<&Address>) -> Result<EventTime, String> {
    if let (Some(date), Some(time), Some(offset)) = (
        text(&activity.gmt_date),
        text(&activity.gmt_time),
        text(&activity.gmt_offset),
    ) {
        let time = clock_digits(time).ok_or(format!("gmtTime `{time}` is not a time"))?;
        let utc = parse_local(
            &format!("{date}{time}"),
            "%Y%m%d%H%M%S",
            Some(&TimeZone::UTC),
        )
        .map_err(|e| format!("gmtDate/gmtTime: {e}"))?;
        let offset =
            parse_offset(offset).ok_or(format!("gmtOffset `{offset}` is not an offset"))?;
        return Ok(EventTime::with_offset(utc.at, offset));
    }
    let date = text(&activity.date).ok_or("it has no date".to_owned())?;
    let time = text(&activity.time).ok_or("it has no time".to_owned())?;
    let time = clock_digits(time).ok_or(format!("time `{time}` is not a time"))?;
    let zone = address
        .and_then(|a| zone_for_place(a.country(), text(&a.state_province)))
        .or_else(|| TimeZone::get(HOME_ZONE).ok());
    parse_local(&format!("{date}{time}"), "%Y%m%d%H%M%S", zone.as_ref()).map_err(|e| e.to_string())
}

/// A time of day as UPS writes it, as `HHMMSS`: the spec's `HHMMSS` (`74700`, without its
/// leading zero) or, as live answers write it, `HH:MM:SS` (or `HH:MM`).
fn clock_digits(text: &str) -> Option<String> {
    let text = text.trim();
    if text.contains(':') {
        let parts: Vec<&str> = text.split(':').collect();
        if !(2..=3).contains(&parts.len())
            || parts
                .iter()
                .any(|p| p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        let second = parts.get(2).copied().unwrap_or("0");
        return Some(format!("{:0>2}{:0>2}{:0>2}", parts[0], parts[1], second));
    }
    (!text.is_empty() && text.len() <= 6 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{text:0>6}"))
}

/// `-05:00`, `-0500`, `+5` or `Z` as an offset.
fn parse_offset(text: &str) -> Option<Offset> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("z") {
        return Some(Offset::UTC);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => (1, text),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = if digits.len() <= 2 {
        (digits.parse::<i32>().ok()?, 0)
    } else {
        let split = digits.len() - 2;
        (
            digits[..split].parse::<i32>().ok()?,
            digits[split..].parse::<i32>().ok()?,
        )
    };
    if hours > 18 || minutes > 59 {
        return None;
    }
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

/// A `YYYYMMDD` date.
fn parse_date(text: &str) -> Option<Date> {
    Date::strptime("%Y%m%d", text.trim()).ok()
}

/// The carrier's estimate: the rescheduled delivery date when UPS moved it, else the scheduled
/// one. The delivered date (`DEL`) is not an estimate.
fn estimate(dates: &[DeliveryDate]) -> Option<DeliveryWindow> {
    let of_type = |wanted: &str| {
        dates
            .iter()
            .filter(|d| text(&d.kind).is_some_and(|k| k.eq_ignore_ascii_case(wanted)))
            .find_map(|d| {
                let raw = text(&d.date)?;
                let date = parse_date(raw);
                if date.is_none() {
                    tracing::warn!(
                        carrier = "ups",
                        date = raw,
                        "UPS delivery date is not YYYYMMDD"
                    );
                }
                date
            })
    };
    of_type("RDD")
        .or_else(|| of_type("SDD"))
        .map(DeliveryWindow::on)
}

/// Whether this scan says the parcel waits (or waited) at a pickup point for the customer.
fn held_for_pickup(event: &TrackingEvent) -> bool {
    event.status == Status::AvailableForPickup || event.reason == Some(Reason::PickedUpByCustomer)
}

/// The UPS Access Point the package waits (or waited) at. UPS names only the last day it
/// is held; the address is the latest scan's, once the parcel is there.
fn access_point(
    point: &AccessPointInformation,
    package: &Package,
    events: &[TrackingEvent],
) -> PickupPoint {
    let latest = events
        .iter()
        .enumerate()
        .max_by_key(|(_, e)| e.time.at)
        .map(|(index, e)| (index, e.status));
    let address = match latest {
        Some((index, Status::AvailableForPickup)) => package
            .activity
            .get(index)
            .and_then(|a| a.location.as_ref())
            .and_then(|l| l.address.as_ref())
            .and_then(Address::full),
        _ => None,
    };
    PickupPoint {
        name: "UPS Access Point".into(),
        address,
        hold_until: text(&point.pickup_by_date).and_then(parse_date),
    }
}

// The parts of Tracking.yaml's TrackApiResponse Waymark reads. Every field is optional so that
// a missing one is reported by name, not as a parse error of the whole answer.

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackApiResponse {
    track_response: Option<TrackResponse>,
}

#[derive(Debug, Deserialize)]
struct TrackResponse {
    #[serde(default, deserialize_with = "lenient_list")]
    shipment: Vec<Shipment>,
}

#[derive(Debug, Deserialize)]
struct Shipment {
    #[serde(default, deserialize_with = "lenient_list")]
    package: Vec<Package>,
    #[serde(default, deserialize_with = "lenient_list")]
    warnings: Vec<Message>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Package {
    tracking_number: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    activity: Vec<Activity>,
    #[serde(default, deserialize_with = "lenient_list")]
    delivery_date: Vec<DeliveryDate>,
    delivery_information: Option<DeliveryInformation>,
    access_point_information: Option<AccessPointInformation>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Activity {
    location: Option<Location>,
    status: Option<ActivityStatus>,
    date: Option<String>,
    time: Option<String>,
    gmt_date: Option<String>,
    gmt_time: Option<String>,
    gmt_offset: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Location {
    address: Option<Address>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Address {
    address_line1: Option<String>,
    address_line2: Option<String>,
    city: Option<String>,
    state_province: Option<String>,
    postal_code: Option<String>,
    country_code: Option<String>,
    country: Option<String>,
}

impl Address {
    fn country(&self) -> Option<&str> {
        text(&self.country_code).or(text(&self.country))
    }

    /// "Paramus, US" as Waymark shows a scan's place; whichever half UPS gave, else nothing.
    fn label(&self) -> Option<String> {
        match (text(&self.city), self.country()) {
            (Some(city), Some(country)) => Some(format!("{city}, {country}")),
            (Some(only), None) | (None, Some(only)) => Some(only.to_owned()),
            (None, None) => None,
        }
    }

    /// The street address, when UPS gave one: "12 Main St, 07652 Paramus, US".
    fn full(&self) -> Option<String> {
        let street: Vec<&str> = [text(&self.address_line1), text(&self.address_line2)]
            .into_iter()
            .flatten()
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
            .map(str::to_owned)
            .chain((!town.is_empty()).then_some(town))
            .chain(self.country().map(str::to_owned))
            .collect();
        Some(parts.join(", "))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActivityStatus {
    #[serde(rename = "type")]
    kind: Option<String>,
    description: Option<String>,
    code: Option<String>,
    status_code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DeliveryDate {
    #[serde(rename = "type")]
    kind: Option<String>,
    date: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryInformation {
    location: Option<String>,
    received_by: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccessPointInformation {
    pickup_by_date: Option<String>,
}

/// A UPS warning or error: `{code, message}`.
#[derive(Debug, Deserialize)]
struct Message {
    code: Option<String>,
    message: Option<String>,
}

impl Message {
    /// UPS's "Tracking Information Not Found" (code TW0001).
    fn is_not_found(&self) -> bool {
        text(&self.code).is_some_and(|c| c.eq_ignore_ascii_case("TW0001"))
            || text(&self.message).is_some_and(|m| m.to_ascii_lowercase().contains("not found"))
    }

    fn join(messages: &[Message]) -> String {
        messages
            .iter()
            .map(|m| match (text(&m.code), text(&m.message)) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(only), None) | (None, Some(only)) => only.to_owned(),
                (None, None) => "(no message)".to_owned(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[derive(Debug, Deserialize)]
struct ErrorResponse {
    response: Option<ErrorList>,
}

#[derive(Debug, Deserialize)]
struct ErrorList {
    #[serde(default, deserialize_with = "lenient_list")]
    errors: Vec<Message>,
}

#[cfg(test)]
#[path = "ups_tests.rs"]
mod tests;

//! PostNL, through PostNL's Shipment Status v2 API
//! (`GET {base}/shipment/v2/status/barcode/{barcode}?detail=true`).
//!
//! ## Account
//!
//! Credentials: `{"api_key": "<API key from PostNL's developer portal>"}`, sent as the `apikey`
//! header. The base URL is the account's `base_url` when set (PostNL's sandbox,
//! [`SANDBOX_BASE_URL`], or a test server), else [`PRODUCTION_BASE_URL`].
//!
//! ## Calls
//!
//! One barcode per call, so a batch becomes one call per number, in order. `detail=true` asks
//! for the whole history: `CompleteStatus` with every event (codes like `J05`, `I10`) and the
//! status history (numeric codes like `7`, `11`). Without detail PostNL answers `CurrentStatus`,
//! the latest status only; both are read.
//!
//! ## What an answer means
//!
//! - Events are normalised by their event code; an event code missing from the mapping falls
//!   back to the numeric status PostNL recorded at the same moment (see `carriers/postnl.toml`).
//!   An answer without events is normalised by its status history.
//! - `200` with the warning "No shipment found" (code 2): the barcode is unknown, normal for a
//!   fresh label; that parcel is [`ParcelError::NotFound`]. Other warnings without a shipment
//!   are [`ParcelError::Rejected`] with PostNL's words.
//! - Anything but `200` is classified by [`Answer::error`](super::transport::Answer::error).
//!
//! PostNL writes times as bare local times (`08-11-2022 10:13:20`) in the Netherlands; they are
//! read in Amsterdam's zone. PostNL's events name a depot code, not a place, so events carry no
//! location. The signature call (`/status/signature/{barcode}`) returns only an image and a date,
//! no name, so `signed_by` stays empty and that call is not made.

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use reqwest::header::ACCEPT;
use serde::{Deserialize, Deserializer};
use std::collections::{HashMap, HashSet};

use super::delivery_to_come;
use super::profile::{Mapping, UnmappedCodes};
use super::timestamps::{BadTime, parse_iso, parse_local};
use super::transport::{self, Transport, malformed_parcel};
use super::{
    Carrier, CarrierAccount, CarrierError, CarrierProfile, ParcelError, ParcelResult, PickupPoint,
    TrackReport, TrackRequest,
};
use crate::domain::{DeliveryWindow, EventTime, Reason, Status, TrackingEvent, TrackingNumber};

/// PostNL's data file, compiled in; a file of the same name in the carriers directory replaces
/// it.
pub const BUNDLED_PROFILE: &str = include_str!("../../carriers/postnl.toml");

/// Where PostNL's production API lives.
pub const PRODUCTION_BASE_URL: &str = "https://api.postnl.nl";

/// PostNL's sandbox, for an account's `base_url` while integrating.
pub const SANDBOX_BASE_URL: &str = "https://api-sandbox.postnl.nl";

/// PostNL's times are local to the Netherlands.
const HOME_ZONE: &str = "Europe/Amsterdam";

/// Status code 99, "not applicable": PostNL's filler between real statuses.
const NOT_APPLICABLE: &str = "99";

/// The warning code PostNL answers for a barcode it does not know.
const NO_SHIPMENT_FOUND: &str = "2";

/// The address type of the receiver, and of the PostNL location a parcel is delivered to for
/// pickup (PostNL's address types: 01 receiver, 02 sender, ..., 09 delivery address for pick-up
/// at a PostNL location).
const RECEIVER: &str = "01";
const PICKUP_LOCATION: &str = "09";

/// The PostNL adapter.
#[derive(Debug)]
pub struct PostNl {
    profile: CarrierProfile,
    transport: Transport,
    unmapped: UnmappedCodes,
}

impl PostNl {
    /// An adapter that normalises through `profile` and calls PostNL through `transport`.
    pub fn new(profile: CarrierProfile, transport: Transport) -> Self {
        PostNl {
            profile,
            transport,
            unmapped: UnmappedCodes::default(),
        }
    }

    /// An adapter with the bundled `carriers/postnl.toml`.
    pub fn bundled(transport: Transport) -> Self {
        let profile = CarrierProfile::from_toml("carriers/postnl.toml (bundled)", BUNDLED_PROFILE)
            .expect("the bundled carriers/postnl.toml is valid (checked by its tests)");
        PostNl::new(profile, transport)
    }

    async fn track_one(
        &self,
        base: &str,
        api_key: &str,
        number: &TrackingNumber,
    ) -> Result<Result<TrackReport, ParcelError>, CarrierError> {
        let url = format!("{base}/shipment/v2/status/barcode/{number}");
        let answer = self
            .transport
            .send(|client| {
                client
                    .get(&url)
                    .query(&[("detail", "true"), ("language", "EN")])
                    .header("apikey", api_key)
                    .header(ACCEPT, "application/json")
            })
            .await?;
        if !answer.status.is_success() {
            return Err(answer.error());
        }
        self.read_answer(number, &answer.body)
    }

    /// Read the body of a `200` answer for `numbers`. The answer is about one barcode, so asking
    /// about more than one number is refused; garbage is a classified error, a readable answer of
    /// the wrong shape that parcel's error.
    pub fn read_answer_body(
        &self,
        numbers: &[TrackingNumber],
        body: &str,
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        super::one_parcel_answer("PostNL", numbers, |number| self.read_answer(number, body))
    }

    /// Read a `200` answer for `number`: garbage (an HTML page, a SOAP fault, truncated JSON) is
    /// an unreadable call; a readable answer of the wrong shape is an unreadable parcel.
    fn read_answer(
        &self,
        number: &TrackingNumber,
        body: &str,
    ) -> Result<Result<TrackReport, ParcelError>, CarrierError> {
        let value: serde_json::Value = transport::parse_json(body)?;
        let answer: Answer = match serde_json::from_value(value) {
            Ok(answer) => answer,
            Err(e) => {
                return Ok(Err(malformed_parcel(
                    format!("not PostNL's status answer: {e}"),
                    body,
                )));
            }
        };
        let block = answer.complete_status.or(answer.current_status);
        let mut warnings = answer.warnings.unwrap_or_default();
        let shipments = match block {
            Some(block) => {
                warnings.extend(block.warnings.unwrap_or_default());
                block.shipment
            }
            None if warnings.is_empty() => {
                return Ok(Err(malformed_parcel(
                    "the answer has neither `CompleteStatus` nor `CurrentStatus`",
                    body,
                )));
            }
            None => Vec::new(),
        };
        // A multi-parcel shipment lists every parcel; the one asked for is the one wanted.
        let shipment = shipments
            .iter()
            .find(|s| s.barcode.as_deref() == Some(number.as_str()))
            .or_else(|| {
                shipments
                    .iter()
                    .find(|s| s.main_barcode.as_deref() == Some(number.as_str()))
            })
            .or_else(|| shipments.first());
        let Some(shipment) = shipment else {
            let unknown = warnings.is_empty()
                || warnings.iter().any(|w| {
                    w.code.as_deref() == Some(NO_SHIPMENT_FOUND)
                        || w.message
                            .as_deref()
                            .is_some_and(|m| m.to_lowercase().contains("no shipment found"))
                });
            return Ok(Err(if unknown {
                ParcelError::NotFound
            } else {
                ParcelError::Rejected(
                    warnings
                        .iter()
                        .map(Warning::describe)
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            }));
        };
        Ok(self.report(number, shipment, body))
    }

    fn report(
        &self,
        number: &TrackingNumber,
        shipment: &Shipment,
        body: &str,
    ) -> Result<TrackReport, ParcelError> {
        let zone = home_zone();
        // The status history: the coarse meaning of each moment, and the scans themselves when
        // PostNL sends no events.
        let mut history: Vec<(EventTime, &StatusEntry)> = Vec::new();
        // Looked up per entry and per event: a list scan each time would make a long answer
        // (a hostile one, up to the transport's size limit) take minutes.
        let mut recorded: HashSet<(Timestamp, &str)> = HashSet::new();
        let mut first_at: HashMap<Timestamp, &str> = HashMap::new();
        for entry in shipment.status.iter().chain(&shipment.old_status) {
            let Some(code) = entry.status_code.as_deref() else {
                continue;
            };
            if code == NOT_APPLICABLE {
                continue;
            }
            let Some(stamp) = entry.time_stamp.as_deref() else {
                return Err(malformed_parcel(format!("status {code} has no time"), body));
            };
            let time =
                postnl_time(stamp, &zone).map_err(|e| malformed_parcel(e.to_string(), body))?;
            // The current status repeats the newest entry of the history.
            if recorded.insert((time.at, code)) {
                first_at.entry(time.at).or_insert(code);
                history.push((time, entry));
            }
        }

        let mut events = Vec::new();
        if shipment.event.is_empty() {
            for (time, entry) in &history {
                let code = entry.status_code.as_deref().unwrap_or_default();
                let (status, reason) = self.status_meaning(code);
                events.push(TrackingEvent {
                    time: *time,
                    status,
                    reason,
                    raw_code: code.to_owned(),
                    raw_text: entry.status_description.clone().unwrap_or_default(),
                    location: None,
                });
            }
        } else {
            for event in &shipment.event {
                let Some(code) = event.code.as_deref() else {
                    return Err(malformed_parcel("an event has no code", body));
                };
                let Some(stamp) = event.time_stamp.as_deref() else {
                    return Err(malformed_parcel(format!("event {code} has no time"), body));
                };
                let time =
                    postnl_time(stamp, &zone).map_err(|e| malformed_parcel(e.to_string(), body))?;
                let (status, reason) = self.event_meaning(code, first_at.get(&time.at).copied());
                events.push(TrackingEvent {
                    time,
                    status,
                    reason,
                    raw_code: code.to_owned(),
                    raw_text: event.description.clone().unwrap_or_default(),
                    location: None,
                });
            }
        }

        let latest = events.iter().max_by_key(|e| e.time.at);
        let to_come = latest.is_none_or(|e| delivery_to_come(e.status, e.reason));
        Ok(TrackReport {
            estimate: estimate(shipment, &zone),
            signed_by: None,
            pickup_point: shipment
                .address_of(PICKUP_LOCATION)
                .map(Address::pickup_point),
            change_delivery_url: to_come
                .then(|| change_delivery_url(number, shipment))
                .flatten(),
            events,
            other_parcels: Vec::new(),
        })
    }

    /// An event's meaning by its event code; a missing code falls back to `coarse`, the status
    /// PostNL recorded at the same moment, else to "moving".
    fn event_meaning(&self, code: &str, coarse: Option<&str>) -> (Status, Option<Reason>) {
        if let Some(mapping) = self.profile.normalise(code) {
            return (mapping.status, mapping.reason);
        }
        let fallback = coarse.and_then(|status| self.profile.normalise(status));
        if self.unmapped.first_time(code) {
            tracing::warn!(
                carrier = %self.profile.code,
                code,
                status = coarse.unwrap_or("(none at that time)"),
                "PostNL event code missing from the mapping; normalised by PostNL's status \
                 (add it to carriers/postnl.toml)"
            );
        }
        let meaning = Mapping::for_unknown_code(fallback);
        (meaning.status, meaning.reason)
    }

    fn status_meaning(&self, code: &str) -> (Status, Option<Reason>) {
        if let Some(mapping) = self.profile.normalise(code) {
            return (mapping.status, mapping.reason);
        }
        if self.unmapped.first_time(code) {
            tracing::warn!(
                carrier = %self.profile.code,
                code,
                "PostNL status code missing from the mapping; taken as in transit \
                 (add it to carriers/postnl.toml)"
            );
        }
        (Status::InTransit, None)
    }
}

#[async_trait]
impl Carrier for PostNl {
    fn profile(&self) -> &CarrierProfile {
        &self.profile
    }

    async fn track(
        &self,
        account: &CarrierAccount,
        batch: &[TrackRequest],
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let api_key = transport::credential(account, "api_key")?;
        let base = transport::base_url(account, PRODUCTION_BASE_URL);
        let mut results = Vec::with_capacity(batch.len());
        // One barcode per call, whatever the batch size: the batch is split here, in order.
        for request in batch {
            let outcome = self
                .track_one(&base, api_key, &request.tracking_number)
                .await?;
            results.push(ParcelResult {
                tracking_number: request.tracking_number.clone(),
                outcome,
            });
        }
        Ok(results)
    }
}

fn home_zone() -> TimeZone {
    TimeZone::get(HOME_ZONE).unwrap_or(TimeZone::UTC)
}

/// A PostNL time: `08-11-2022 10:13:20` (events and statuses, sometimes with milliseconds),
/// `11/07/2022 10:00:00` (month first, in the SDK's expectation example) or ISO 8601 (the
/// expectation and updated-shipments answers), all local to the Netherlands unless they say
/// otherwise.
fn postnl_time(text: &str, zone: &TimeZone) -> Result<EventTime, BadTime> {
    let trimmed = text.trim();
    let whole_seconds = match trimmed.rsplit_once('.') {
        Some((head, fraction))
            if head.len() == 19 && fraction.chars().all(|c| c.is_ascii_digit()) =>
        {
            head
        }
        _ => trimmed,
    };
    for layout in ["%d-%m-%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S"] {
        if let Ok(time) = parse_local(whole_seconds, layout, Some(zone)) {
            return Ok(time);
        }
    }
    parse_iso(trimmed, Some(zone))
}

/// The day a PostNL date or time falls on in the Netherlands.
fn postnl_date(text: &str, zone: &TimeZone) -> Option<Date> {
    if let Ok(day) = text.trim().parse::<Date>() {
        return Some(day);
    }
    postnl_time(text, zone)
        .ok()
        .map(|time| time.at.to_zoned(zone.clone()).date())
}

/// The expected delivery: PostNL's time frame when it gives one, else its delivery date.
fn estimate(shipment: &Shipment, zone: &TimeZone) -> Option<DeliveryWindow> {
    let expectation = shipment.expectation.as_ref();
    let from = expectation
        .and_then(|e| e.eta_from.as_deref())
        .and_then(|t| postnl_date(t, zone));
    let to = expectation
        .and_then(|e| e.eta_to.as_deref())
        .and_then(|t| postnl_date(t, zone));
    match (from, to) {
        (Some(from), Some(to)) => {
            Some(DeliveryWindow::between(from, to).unwrap_or(DeliveryWindow::on(from)))
        }
        (Some(day), None) | (None, Some(day)) => Some(DeliveryWindow::on(day)),
        (None, None) => shipment
            .delivery_date
            .as_deref()
            .and_then(|d| postnl_date(d, zone))
            .map(DeliveryWindow::on),
    }
}

/// PostNL's Track & Trace page for this parcel, where the recipient changes the delivery: the
/// barcode with the receiver's country and postcode (`3SDEVC288882229-NL-3571ZZ`).
fn change_delivery_url(number: &TrackingNumber, shipment: &Shipment) -> Option<String> {
    let receiver = shipment.address_of(RECEIVER)?;
    let postcode: String = receiver
        .zipcode
        .as_deref()?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let country = receiver.country_code.as_deref().unwrap_or("NL");
    Some(format!(
        "https://jouw.postnl.nl/track-and-trace/{number}-{country}-{postcode}"
    ))
}

/// A text field as PostNL fills it: a string, but empty fields come as `{}` (an object) or as the
/// string `"{}"`; both read as absent, as do empty strings and `null`. Numbers are kept as text.
fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(text)) => {
            let text = text.trim();
            (!text.is_empty() && text != "{}").then(|| text.to_owned())
        }
        Some(serde_json::Value::Number(number)) => Some(number.to_string()),
        _ => None,
    })
}

/// PostNL sends one item as an object and several as an array (`Shipment`, `Event`, ...).
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        Many(Vec<T>),
        One(T),
    }
    Ok(match Option::<OneOrMany<T>>::deserialize(d)? {
        Some(OneOrMany::Many(items)) => items,
        Some(OneOrMany::One(item)) => vec![item],
        None => Vec::new(),
    })
}

/// PostNL's answer (`ShippingstatusResponse`), the parts Waymark reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    #[serde(default)]
    complete_status: Option<StatusBlock>,
    #[serde(default)]
    current_status: Option<StatusBlock>,
    #[serde(default)]
    warnings: Option<Vec<Warning>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StatusBlock {
    #[serde(default, deserialize_with = "one_or_many")]
    shipment: Vec<Shipment>,
    #[serde(default)]
    warnings: Option<Vec<Warning>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Warning {
    #[serde(default, deserialize_with = "lenient_text")]
    code: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    message: Option<String>,
}

impl Warning {
    fn describe(&self) -> String {
        match (&self.code, &self.message) {
            (Some(code), Some(message)) => format!("{message} (warning {code})"),
            (None, Some(message)) => message.clone(),
            (Some(code), None) => format!("warning {code}"),
            (None, None) => "an empty warning".to_owned(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Shipment {
    #[serde(default, deserialize_with = "lenient_text")]
    main_barcode: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    barcode: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    delivery_date: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    address: Vec<Address>,
    #[serde(default, deserialize_with = "one_or_many")]
    event: Vec<Event>,
    #[serde(default)]
    expectation: Option<Expectation>,
    #[serde(default)]
    status: Option<StatusEntry>,
    #[serde(default, deserialize_with = "one_or_many")]
    old_status: Vec<StatusEntry>,
}

impl Shipment {
    fn address_of(&self, kind: &str) -> Option<&Address> {
        self.address
            .iter()
            .find(|a| a.address_type.as_deref() == Some(kind))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Event {
    #[serde(default, deserialize_with = "lenient_text")]
    code: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    description: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    time_stamp: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StatusEntry {
    // The updated-shipments answer spells it `Timestamp`.
    #[serde(default, alias = "Timestamp", deserialize_with = "lenient_text")]
    time_stamp: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    status_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    status_description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Expectation {
    #[serde(default, rename = "ETAFrom", deserialize_with = "lenient_text")]
    eta_from: Option<String>,
    #[serde(default, rename = "ETATo", deserialize_with = "lenient_text")]
    eta_to: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Address {
    #[serde(default, deserialize_with = "lenient_text")]
    address_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    company_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    street: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    house_number: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    house_number_suffix: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    zipcode: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    city: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    country_code: Option<String>,
}

impl Address {
    /// The PostNL location as the customer looks for it: its name, and "Street 42-60, 2132WT
    /// Hoofddorp".
    fn pickup_point(&self) -> PickupPoint {
        let street: String = [&self.street, &self.house_number]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
            + self.house_number_suffix.as_deref().unwrap_or_default();
        let place: String = [&self.zipcode, &self.city]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        let address: Vec<&str> = [street.as_str(), place.as_str()]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect();
        PickupPoint {
            name: self
                .company_name
                .clone()
                .unwrap_or_else(|| "PostNL location".to_owned()),
            address: (!address.is_empty()).then(|| address.join(", ")),
            hold_until: None,
        }
    }
}

#[cfg(test)]
#[path = "postnl_tests.rs"]
mod tests;

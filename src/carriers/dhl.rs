//! DHL, through DHL's "Shipment Tracking – Unified" API (`GET {base}/track/shipments`).
//!
//! ## Account
//!
//! Credentials: `{"api_key": "<API key of the merchant's app on developer.dhl.com>"}`, sent as the
//! `DHL-API-Key` header. The base URL is the account's `base_url` when set (a test server), else
//! [`PRODUCTION_BASE_URL`].
//!
//! ## Calls and quotas
//!
//! The API takes one tracking number per call, so a batch becomes one call per number, in order.
//! DHL's default plan allows 250 calls a day and 10 fetches of one shipment a day; both are in
//! `carriers/dhl.toml` for the scheduler to respect.
//!
//! ## What an answer means
//!
//! - `200` with the number's shipment: its events are normalised (see the mapping notes in
//!   `carriers/dhl.toml`: the finer `status`, `description` or `remark`, else DHL's coarse
//!   `statusCode`). When DHL sends no events, the shipment's current status stands in for them.
//! - `404` with DHL's problem answer ("No result found"): the number is unknown, which is normal
//!   for a fresh label; that parcel is [`ParcelError::NotFound`].
//! - Anything else is classified by [`Answer::error`](super::transport::Answer::error).
//!
//! DHL writes event times with an offset, in UTC, or as a bare local time; a bare time is read in
//! the zone of the scan's country, else in Germany's.

use async_trait::async_trait;
use jiff::tz::TimeZone;
use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde::Deserialize;

use super::profile::{Mapping, UnmappedCodes};
use super::timestamps::{parse_iso, zone_for_country};
use super::transport::{self, Transport, excerpt, lenient_text, malformed_parcel};
use super::{
    Carrier, CarrierAccount, CarrierError, CarrierProfile, ParcelError, ParcelResult, TrackReport,
    TrackRequest,
};
use crate::domain::{DeliveryWindow, Reason, Status, TrackingEvent, TrackingNumber};

/// DHL's data file, compiled in; a file of the same name in the carriers directory replaces it.
pub const BUNDLED_PROFILE: &str = include_str!("../../carriers/dhl.toml");

/// Where DHL's production API lives.
pub const PRODUCTION_BASE_URL: &str = "https://api-eu.dhl.com";

/// Bare local times without a scan country are read in DHL's home zone.
const HOME_ZONE: &str = "Europe/Berlin";

/// The language asked for; the texts in the mapping are DHL's English ones.
const LANGUAGE: &str = "en";

/// The DHL adapter.
#[derive(Debug)]
pub struct Dhl {
    profile: CarrierProfile,
    transport: Transport,
    unmapped: UnmappedCodes,
}

impl Dhl {
    /// An adapter that normalises through `profile` and calls DHL through `transport`.
    pub fn new(profile: CarrierProfile, transport: Transport) -> Self {
        Dhl {
            profile,
            transport,
            unmapped: UnmappedCodes::default(),
        }
    }

    /// An adapter with the bundled `carriers/dhl.toml`.
    pub fn bundled(transport: Transport) -> Self {
        let profile = CarrierProfile::from_toml("carriers/dhl.toml (bundled)", BUNDLED_PROFILE)
            .expect("the bundled carriers/dhl.toml is valid (checked by its tests)");
        Dhl::new(profile, transport)
    }

    /// One call for one number: the parcel's outcome, or why the call itself failed.
    async fn track_one(
        &self,
        base: &str,
        api_key: &str,
        number: &TrackingNumber,
    ) -> Result<Result<TrackReport, ParcelError>, CarrierError> {
        let url = format!("{base}/track/shipments");
        let answer = self
            .transport
            .send(|client| {
                client
                    .get(&url)
                    .query(&[("trackingNumber", number.as_str()), ("language", LANGUAGE)])
                    .header("DHL-API-Key", api_key)
                    .header(ACCEPT, "application/json")
            })
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            // DHL answers an unknown number with a problem document. A 404 without one is a
            // wrong base URL or a proxy, and must not mark every parcel unknown for ever.
            return if is_problem_document(&answer.body) {
                Ok(Err(ParcelError::NotFound))
            } else {
                Err(CarrierError::Permanent(format!(
                    "404 without DHL's \"no result\" answer (is the base URL right?): {}",
                    excerpt(&answer.body)
                )))
            };
        }
        if !answer.status.is_success() {
            return Err(answer.error());
        }
        self.read_answer(number, &answer.body)
    }

    /// Read the body of a `200` answer for `numbers`. The answer is about one number, so asking
    /// about more than one is refused; garbage is a classified error, a readable answer of the
    /// wrong shape that parcel's error.
    pub fn read_answer_body(
        &self,
        numbers: &[TrackingNumber],
        body: &str,
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        super::one_parcel_answer("DHL", numbers, |number| self.read_answer(number, body))
    }

    /// Read a `200` answer for `number`: garbage is an unreadable call, a readable answer of the
    /// wrong shape an unreadable parcel.
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
                    format!("not DHL's shipments answer: {e}"),
                    body,
                )));
            }
        };
        let Some(shipments) = answer.shipments else {
            return Ok(Err(malformed_parcel("the answer has no `shipments`", body)));
        };
        // DHL may list the same number under several services; prefer the one that carries it.
        let shipment = shipments
            .iter()
            .find(|s| {
                s.id.as_deref()
                    .is_some_and(|id| id.eq_ignore_ascii_case(number.as_str()))
            })
            .or_else(|| shipments.first());
        Ok(match shipment {
            Some(shipment) => self.report(shipment, body),
            None => Err(ParcelError::NotFound),
        })
    }

    /// Normalise one shipment of DHL's answer.
    fn report(&self, shipment: &Shipment, body: &str) -> Result<TrackReport, ParcelError> {
        let home = home_zone();
        let mut scans: Vec<&Event> = shipment.events.iter().flatten().collect();
        if scans.is_empty() {
            // Without full data access DHL may send only the current status: it is a scan too.
            scans.extend(shipment.status.as_ref());
        }
        let events = scans
            .into_iter()
            .map(|event| self.event(event, &home, body))
            .collect::<Result<Vec<_>, _>>()?;

        let destination_zone = shipment
            .destination
            .as_ref()
            .and_then(Place::country)
            .and_then(zone_for_country)
            .unwrap_or(home);
        Ok(TrackReport {
            events,
            estimate: estimate(shipment, &destination_zone),
            signed_by: shipment
                .details
                .as_ref()
                .and_then(|d| d.proof_of_delivery.as_ref())
                .and_then(|pod| pod.signed.as_ref())
                .and_then(Person::display_name),
            pickup_point: None,
            change_delivery_url: shipment.reroute_url.clone(),
            other_parcels: Vec::new(),
        })
    }

    fn event(
        &self,
        event: &Event,
        home: &TimeZone,
        body: &str,
    ) -> Result<TrackingEvent, ParcelError> {
        let Some(timestamp) = event.timestamp.as_deref() else {
            return Err(malformed_parcel("an event has no timestamp", body));
        };
        let country = event.location.as_ref().and_then(Place::country);
        let zone = country.and_then(zone_for_country);
        let time = parse_iso(timestamp, Some(zone.as_ref().unwrap_or(home)))
            .map_err(|e| malformed_parcel(e.to_string(), body))?;
        let (status, reason) = self.meaning(event);
        let raw_code = event
            .status
            .clone()
            .or_else(|| event.status_code.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        let raw_text = event
            .description
            .clone()
            .or_else(|| event.status.clone())
            .or_else(|| event.remark.clone())
            .unwrap_or_default();
        Ok(TrackingEvent {
            time,
            status,
            reason,
            raw_code,
            raw_text,
            location: event.location.as_ref().and_then(Place::label),
        })
    }

    /// What an event means: its finer status, description or remark when the mapping knows one,
    /// else DHL's coarse category, else "moving".
    fn meaning(&self, event: &Event) -> (Status, Option<Reason>) {
        let coarse = event.status_code.as_deref();
        let finer: Vec<&str> = [&event.status, &event.description, &event.remark]
            .into_iter()
            .flatten()
            .map(String::as_str)
            // Some services repeat the coarse category as the status: that says nothing finer.
            .filter(|text| Some(*text) != coarse)
            .collect();
        for text in &finer {
            for key in [*text, text.trim_end_matches('.')] {
                if let Some(mapping) = self.profile.normalise(key) {
                    return (mapping.status, mapping.reason);
                }
            }
        }
        // Sentences worded otherwise (or in German, which DHL Paket sends some accounts despite
        // `language=en`) are still recognised by their telling phrase.
        if let Some(mapping) = finer.iter().find_map(|text| self.profile.phrase(text)) {
            return (mapping.status, mapping.reason);
        }
        let fallback = coarse.and_then(|code| self.profile.normalise(code));
        let missing = finer.first().copied().or(coarse).unwrap_or("(no status)");
        if self.unmapped.first_time(missing) {
            tracing::warn!(
                carrier = %self.profile.code,
                code = missing,
                category = coarse.unwrap_or("(none)"),
                "DHL status missing from the mapping; normalised by DHL's coarse category \
                 (add it to carriers/dhl.toml)"
            );
        }
        let meaning = Mapping::for_unknown_code(fallback);
        (meaning.status, meaning.reason)
    }
}

#[async_trait]
impl Carrier for Dhl {
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
        // One number per call, whatever the batch size: the batch is split here, in order.
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

/// Whether a body is an RFC 7807 problem document, which is how DHL says "no result".
fn is_problem_document(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body).is_ok_and(|value| {
        value.is_object()
            && ["title", "detail", "status"]
                .iter()
                .any(|key| value.get(key).is_some())
    })
}

/// The carrier's estimate: the time frame when DHL gives one, else the estimated time. The dates
/// are taken as DHL writes them (DHL writes "by end of day" as 22:00 UTC of the same day).
fn estimate(shipment: &Shipment, zone: &TimeZone) -> Option<DeliveryWindow> {
    let date = |text: &str| {
        parse_iso(text, Some(zone))
            .ok()
            .map(|time| time.local().date())
    };
    let frame = shipment.estimated_delivery_time_frame.as_ref();
    let from = frame
        .and_then(|f| f.estimated_from.as_deref())
        .and_then(date);
    let through = frame
        .and_then(|f| f.estimated_through.as_deref())
        .and_then(date);
    match (from, through) {
        (Some(from), Some(through)) => {
            Some(DeliveryWindow::between(from, through).unwrap_or(DeliveryWindow::on(from)))
        }
        (Some(day), None) | (None, Some(day)) => Some(DeliveryWindow::on(day)),
        (None, None) => shipment
            .estimated_time_of_delivery
            .as_deref()
            .and_then(date)
            .map(DeliveryWindow::on),
    }
}

/// DHL's answer (`supermodelIoLogisticsTrackingShipments`), the parts Waymark reads. Text fields
/// are read leniently: DHL sends some as numbers (the spec example's `id`), empty or `null`.
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    shipments: Option<Vec<Shipment>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shipment {
    #[serde(default, deserialize_with = "lenient_text")]
    id: Option<String>,
    #[serde(default)]
    destination: Option<Place>,
    #[serde(default)]
    status: Option<Event>,
    #[serde(default, deserialize_with = "lenient_text")]
    estimated_time_of_delivery: Option<String>,
    #[serde(default)]
    estimated_delivery_time_frame: Option<TimeFrame>,
    #[serde(default, deserialize_with = "lenient_text")]
    reroute_url: Option<String>,
    #[serde(default)]
    details: Option<Details>,
    #[serde(default)]
    events: Option<Vec<Event>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimeFrame {
    #[serde(default, deserialize_with = "lenient_text")]
    estimated_from: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    estimated_through: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    #[serde(default, deserialize_with = "lenient_text")]
    timestamp: Option<String>,
    #[serde(default)]
    location: Option<Place>,
    #[serde(default, deserialize_with = "lenient_text")]
    status_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    description: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    remark: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Place {
    #[serde(default)]
    address: Option<Address>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Address {
    #[serde(default, deserialize_with = "lenient_text")]
    country_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    address_locality: Option<String>,
}

impl Place {
    fn country(&self) -> Option<&str> {
        self.address.as_ref()?.country_code.as_deref()
    }

    /// "City, CC". DHL's `addressLocality` sometimes carries the street first ("Oderweg 2,
    /// AMSTERDAM"): leading parts with a house number are dropped, the rest ("CINCINNATI HUB,
    /// OH") is kept as DHL wrote it.
    fn label(&self) -> Option<String> {
        let address = self.address.as_ref()?;
        let city = address.address_locality.as_deref().map(|locality| {
            let mut parts: Vec<&str> = locality.split(',').map(str::trim).collect();
            while parts.len() > 1 && parts[0].chars().any(|c| c.is_ascii_digit()) {
                parts.remove(0);
            }
            parts.join(", ")
        });
        let city = city.filter(|city| !city.is_empty());
        let city = city.as_deref();
        let country = address.country_code.as_deref();
        match (city, country) {
            (Some(city), Some(country)) => Some(format!("{city}, {country}")),
            (Some(city), None) => Some(city.to_owned()),
            (None, Some(country)) => Some(country.to_owned()),
            (None, None) => None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Details {
    #[serde(default)]
    proof_of_delivery: Option<ProofOfDelivery>,
}

#[derive(Debug, Deserialize)]
struct ProofOfDelivery {
    #[serde(default)]
    signed: Option<Person>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Person {
    #[serde(default, deserialize_with = "lenient_text")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    given_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    family_name: Option<String>,
}

impl Person {
    /// The signer as DHL names them: `name`, else given and family name.
    fn display_name(&self) -> Option<String> {
        if let Some(name) = &self.name {
            return Some(name.clone());
        }
        let parts: Vec<&str> = [&self.given_name, &self.family_name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

#[cfg(test)]
#[path = "dhl_tests.rs"]
mod tests;

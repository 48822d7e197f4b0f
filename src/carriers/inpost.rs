//! InPost (Poland), through the ShipX API's tracking resource (`GET {base}/v1/tracking/{number}`).
//!
//! ## Account
//!
//! The tracking resource needs no authorisation, so the account needs no credentials (any
//! `credentials` value is ignored). The base URL is the account's `base_url` when set (ShipX's
//! sandbox or a test server), else [`PRODUCTION_BASE_URL`].
//!
//! ## Calls
//!
//! One number per call, so a batch becomes one call per number, in order. Once a day the adapter
//! also reads InPost's status list (`GET {base}/v1/statuses?lang=en_GB`, no authorisation either)
//! so each scan keeps InPost's own words ("Placed in Parcel Locker (of destination).") beside its
//! status name; when that list cannot be read the name stands in for the words.
//!
//! ## What an answer means
//!
//! - Each entry of `tracking_details` is a scan, normalised by its status name through
//!   `carriers/inpost.toml` (ShipX has no coarser category: a name missing there is taken as in
//!   transit and logged once). A `delivered` that follows a wait in a locker or at a pick-up point
//!   is the customer collecting it ([`Reason::PickedUpByCustomer`]).
//! - The locker the parcel goes to (`custom_attributes.target_machine_id` and
//!   `target_machine_detail`) is the pickup point; while the parcel waits there, it is held for 72
//!   hours after it was placed (InPost's description of `ready_to_pickup`).
//! - `404` with InPost's error document: the number is unknown, normal for a fresh label; that
//!   parcel is [`ParcelError::NotFound`]. Anything else is classified by
//!   [`Answer::error`](super::transport::Answer::error).
//!
//! ShipX writes times with an offset (`2024-03-06T09:15:40.000+01:00`), which is kept.

use async_trait::async_trait;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::profile::UnmappedCodes;
use super::timestamps::parse_iso;
use super::transport::{self, Transport, excerpt, lenient_text, malformed_parcel};
use super::{
    Carrier, CarrierAccount, CarrierError, CarrierProfile, ParcelError, ParcelResult, PickupPoint,
    TrackReport, TrackRequest,
};
use crate::domain::{Reason, Status, TrackingEvent, TrackingNumber};

/// InPost's data file, compiled in; a file of the same name in the carriers directory replaces
/// it.
pub const BUNDLED_PROFILE: &str = include_str!("../../carriers/inpost.toml");

/// Where the ShipX API lives.
pub const PRODUCTION_BASE_URL: &str = "https://api-shipx-pl.easypack24.net";

/// InPost's times carry offsets; this zone only names the locker's calendar for hold dates.
const HOME_ZONE: &str = "Europe/Warsaw";

/// The status a parcel has once it is in the destination locker.
const READY_TO_PICKUP: &str = "ready_to_pickup";

/// The statuses of a parcel in the target locker.
const AT_THE_LOCKER: [&str; 2] = [READY_TO_PICKUP, "pickup_reminder_sent"];

/// How long a parcel waits in the locker ("The parcel will wait for collection for the next 72
/// hours", InPost's status list).
const LOCKER_HOLD: SignedDuration = SignedDuration::from_hours(72);

/// How long InPost's status titles are kept, and how long to wait after failing to read them.
const TITLES_FOR: SignedDuration = SignedDuration::from_hours(24);
const TITLES_RETRY_AFTER: SignedDuration = SignedDuration::from_hours(1);

/// The InPost adapter.
#[derive(Debug)]
pub struct InPost {
    profile: CarrierProfile,
    transport: Transport,
    unmapped: UnmappedCodes,
    titles: StatusTitles,
}

impl InPost {
    /// An adapter that normalises through `profile` and calls ShipX through `transport`.
    pub fn new(profile: CarrierProfile, transport: Transport) -> Self {
        InPost {
            profile,
            transport,
            unmapped: UnmappedCodes::default(),
            titles: StatusTitles::default(),
        }
    }

    /// An adapter with the bundled `carriers/inpost.toml`.
    pub fn bundled(transport: Transport) -> Self {
        let profile = CarrierProfile::from_toml("carriers/inpost.toml (bundled)", BUNDLED_PROFILE)
            .expect("the bundled carriers/inpost.toml is valid (checked by its tests)");
        InPost::new(profile, transport)
    }

    async fn track_one(
        &self,
        base: &str,
        number: &TrackingNumber,
    ) -> Result<Result<TrackReport, ParcelError>, CarrierError> {
        let url = format!("{base}/v1/tracking/{number}");
        let answer = self
            .transport
            .send(|client| client.get(&url).header(ACCEPT, "application/json"))
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            // ShipX answers an unknown number with its error document. A 404 without one is a
            // wrong base URL or a proxy, and must not mark every parcel unknown for ever.
            return if is_error_document(&answer.body) {
                Ok(Err(ParcelError::NotFound))
            } else {
                Err(CarrierError::Permanent(format!(
                    "404 without InPost's error answer (is the base URL right?): {}",
                    excerpt(&answer.body)
                )))
            };
        }
        if !answer.status.is_success() {
            return Err(answer.error());
        }
        let parcel = match read_parcel(&answer.body)? {
            Ok(parcel) => parcel,
            Err(unreadable) => return Ok(Err(unreadable)),
        };
        let titles = self.titles(base).await;
        Ok(self.report(&parcel, &titles, &answer.body))
    }

    /// Read the body of a `200` tracking answer for `numbers`. The answer is about one parcel,
    /// so asking about more than one number is refused; garbage is a classified error, a
    /// readable answer of the wrong shape that parcel's error. Scans keep InPost's status names
    /// as their words: the titles a poll reads from the status list are not asked for here.
    pub fn read_answer_body(
        &self,
        numbers: &[TrackingNumber],
        body: &str,
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        super::one_parcel_answer("InPost", numbers, |_| {
            Ok(read_parcel(body)?.and_then(|parcel| self.report(&parcel, &HashMap::new(), body)))
        })
    }

    /// InPost's status titles for `base`, read at most once a day (once an hour after a failure).
    async fn titles(&self, base: &str) -> Titles {
        let now = Timestamp::now();
        if let Some(cached) = self.titles.fresh(base, now) {
            return cached;
        }
        let url = format!("{base}/v1/statuses");
        let answer = self
            .transport
            .send(|client| {
                client
                    .get(&url)
                    .query(&[("lang", "en_GB")])
                    .header(ACCEPT, "application/json")
            })
            .await;
        let titles = match answer {
            Ok(answer) if answer.status.is_success() => read_titles(&answer.body),
            Ok(answer) => {
                tracing::warn!(status = %answer.status, "InPost's status list could not be read");
                HashMap::new()
            }
            Err(e) => {
                tracing::warn!(error = %e, "InPost's status list could not be read");
                HashMap::new()
            }
        };
        self.titles.store(base, now, titles)
    }

    /// Normalise InPost's answer for one parcel.
    fn report(
        &self,
        parcel: &Parcel,
        titles: &HashMap<String, String>,
        body: &str,
    ) -> Result<TrackReport, ParcelError> {
        let mut scans: Vec<(&str, &str, Option<&str>)> = Vec::new();
        match parcel.tracking_details.as_deref() {
            Some(details) if !details.is_empty() => {
                for detail in details {
                    let Some(name) = detail.status.as_deref() else {
                        return Err(malformed_parcel("a tracking detail has no status", body));
                    };
                    let Some(at) = detail.datetime.as_deref() else {
                        return Err(malformed_parcel(
                            format!("status {name} has no datetime"),
                            body,
                        ));
                    };
                    scans.push((name, at, detail.agency.as_deref()));
                }
            }
            _ => {
                // A fresh shipment may have no history yet: its current status is the scan.
                let Some(name) = parcel.status.as_deref() else {
                    return Err(malformed_parcel(
                        "the answer has neither `tracking_details` nor `status`",
                        body,
                    ));
                };
                let Some(at) = parcel
                    .updated_at
                    .as_deref()
                    .or(parcel.created_at.as_deref())
                else {
                    return Err(malformed_parcel(format!("status {name} has no time"), body));
                };
                scans.push((name, at, None));
            }
        }

        let home = home_zone();
        let locker = parcel.custom_attributes.as_ref();
        let locker_place = locker
            .and_then(|l| l.target_machine_detail.as_ref())
            .and_then(Machine::place);
        let mut events = Vec::with_capacity(scans.len());
        for (name, at, agency) in scans {
            let time =
                parse_iso(at, Some(&home)).map_err(|e| malformed_parcel(e.to_string(), body))?;
            let (status, reason) = self.meaning(name);
            // Scans at the target locker happen where the locker is (a parcel waiting at the
            // branch or a point after an `avizo` is elsewhere).
            let location = if AT_THE_LOCKER.contains(&name) && locker_place.is_some() {
                locker_place.clone()
            } else {
                agency.map(|agency| format!("{agency}, PL"))
            };
            events.push(TrackingEvent {
                time,
                status,
                reason,
                raw_code: name.to_owned(),
                raw_text: titles.get(name).cloned().unwrap_or_else(|| name.to_owned()),
                location,
            });
        }
        // ShipX lists the newest first; the rules below read the journey in order.
        events.sort_by_key(|e| e.time.at);
        for i in 1..events.len() {
            // "delivered" right after waiting in a locker or at a point: the customer took it.
            if events[i].status == Status::Delivered
                && events[i].reason.is_none()
                && events[i - 1].status == Status::AvailableForPickup
            {
                events[i].reason = Some(Reason::PickedUpByCustomer);
                if events[i].location.is_none() {
                    events[i].location = events[i - 1].location.clone();
                }
            }
        }

        let pickup_point = locker.and_then(|l| l.pickup_point(&events, &home));
        Ok(TrackReport {
            events,
            estimate: None,
            signed_by: None,
            pickup_point,
            change_delivery_url: None,
            other_parcels: Vec::new(),
        })
    }

    fn meaning(&self, name: &str) -> (Status, Option<Reason>) {
        if let Some(mapping) = self.profile.normalise(name) {
            return (mapping.status, mapping.reason);
        }
        if self.unmapped.first_time(name) {
            tracing::warn!(
                carrier = %self.profile.code,
                code = name,
                "InPost status missing from the mapping; taken as in transit \
                 (add it to carriers/inpost.toml)"
            );
        }
        (Status::InTransit, None)
    }
}

#[async_trait]
impl Carrier for InPost {
    fn profile(&self) -> &CarrierProfile {
        &self.profile
    }

    async fn track(
        &self,
        account: &CarrierAccount,
        batch: &[TrackRequest],
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        let base = transport::base_url(account, PRODUCTION_BASE_URL);
        let mut results = Vec::with_capacity(batch.len());
        // One number per call, whatever the batch size: the batch is split here, in order.
        for request in batch {
            let outcome = self.track_one(&base, &request.tracking_number).await?;
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

/// The parcel in a tracking answer: garbage is an unreadable call, JSON of the wrong shape an
/// unreadable parcel.
fn read_parcel(body: &str) -> Result<Result<Parcel, ParcelError>, CarrierError> {
    let value: serde_json::Value = transport::parse_json(body)?;
    Ok(serde_json::from_value(value)
        .map_err(|e| malformed_parcel(format!("not InPost's tracking answer: {e}"), body)))
}

/// Whether a body is ShipX's error document (`{"status": 404, "error": "...", ...}`).
fn is_error_document(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .is_ok_and(|value| value.get("error").is_some() || value.get("status").is_some())
}

/// Status name → title from InPost's status list: `{"items": [{"name", "title", ...}]}`, a bare
/// list, or a single status resource. Anything unreadable gives no titles.
fn read_titles(body: &str) -> HashMap<String, String> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        tracing::warn!(
            answer = %excerpt(body),
            "InPost's status list is not JSON"
        );
        return HashMap::new();
    };
    let items: Vec<&serde_json::Value> = match &value {
        serde_json::Value::Array(items) => items.iter().collect(),
        serde_json::Value::Object(object) => match object.get("items") {
            Some(serde_json::Value::Array(items)) => items.iter().collect(),
            _ => vec![&value],
        },
        _ => Vec::new(),
    };
    items
        .into_iter()
        .filter_map(|item| {
            let name = item.get("name")?.as_str()?.trim();
            let title = item.get("title")?.as_str()?.trim();
            (!name.is_empty() && !title.is_empty()).then(|| (name.to_owned(), title.to_owned()))
        })
        .collect()
}

/// Status name → InPost's title for it.
type Titles = Arc<HashMap<String, String>>;

/// InPost's status titles per base URL, with when they were read.
#[derive(Debug, Default)]
struct StatusTitles(Mutex<HashMap<String, (Timestamp, Titles)>>);

impl StatusTitles {
    /// The titles for `base` when they are recent enough (an empty list, a failed read, is
    /// retried sooner).
    fn fresh(&self, base: &str, now: Timestamp) -> Option<Titles> {
        let cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (read_at, titles) = cache.get(base)?;
        let keep_for = if titles.is_empty() {
            TITLES_RETRY_AFTER
        } else {
            TITLES_FOR
        };
        (now.duration_since(*read_at) < keep_for).then(|| Arc::clone(titles))
    }

    fn store(&self, base: &str, now: Timestamp, titles: HashMap<String, String>) -> Titles {
        let titles = Arc::new(titles);
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(base.to_owned(), (now, Arc::clone(&titles)));
        titles
    }
}

/// ShipX's tracking answer, the parts Waymark reads (see `tracking_resource_fields.md`).
#[derive(Debug, Deserialize)]
struct Parcel {
    #[serde(default, deserialize_with = "lenient_text")]
    status: Option<String>,
    #[serde(default)]
    custom_attributes: Option<CustomAttributes>,
    #[serde(default)]
    tracking_details: Option<Vec<Detail>>,
    #[serde(default, deserialize_with = "lenient_text")]
    created_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    updated_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Detail {
    #[serde(default, deserialize_with = "lenient_text")]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    agency: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    datetime: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CustomAttributes {
    #[serde(default, deserialize_with = "lenient_text")]
    target_machine_id: Option<String>,
    #[serde(default)]
    target_machine_detail: Option<Machine>,
}

impl CustomAttributes {
    /// The locker or point the parcel goes to, with how long it is held while it waits there.
    fn pickup_point(&self, events: &[TrackingEvent], zone: &TimeZone) -> Option<PickupPoint> {
        let detail = self.target_machine_detail.as_ref();
        let id = detail
            .and_then(|d| d.name.as_deref())
            .or(self.target_machine_id.as_deref())?;
        let kind = if detail.is_some_and(Machine::is_point) {
            "PaczkoPunkt"
        } else {
            "Paczkomat"
        };
        let waiting = events
            .last()
            .is_some_and(|e| e.status == Status::AvailableForPickup);
        let hold_until = events
            .iter()
            .rev()
            .find(|e| e.raw_code == READY_TO_PICKUP)
            .filter(|_| waiting)
            .and_then(|placed| placed.time.at.checked_add(LOCKER_HOLD).ok())
            .map(|until| until.to_zoned(zone.clone()).date());
        Some(PickupPoint {
            name: format!("{kind} {id}"),
            address: detail.and_then(Machine::address),
            hold_until,
        })
    }
}

#[derive(Debug, Deserialize)]
struct Machine {
    #[serde(default, deserialize_with = "lenient_text")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    location_description: Option<String>,
    #[serde(default)]
    address: Option<MachineAddress>,
    #[serde(default, rename = "type")]
    kinds: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
struct MachineAddress {
    #[serde(default, deserialize_with = "lenient_text")]
    line1: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    line2: Option<String>,
}

impl Machine {
    /// A Parcel Point (a shop counter) rather than a locker.
    fn is_point(&self) -> bool {
        let kinds: Vec<&str> = self
            .kinds
            .iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
            .collect();
        !kinds.is_empty() && !kinds.contains(&"parcel_locker")
    }

    /// "Medweckiego 2, 31-870 Kraków (Przy markecie Biedronka)".
    fn address(&self) -> Option<String> {
        let lines: Vec<&str> = self
            .address
            .iter()
            .flat_map(|a| [&a.line1, &a.line2])
            .flatten()
            .map(String::as_str)
            .collect();
        let mut address = lines.join(", ");
        if let Some(description) = &self.location_description {
            if address.is_empty() {
                address = description.clone();
            } else {
                address = format!("{address} ({description})");
            }
        }
        (!address.is_empty()).then_some(address)
    }

    /// "Kraków, PL": the city of `line2` ("31-870 Kraków"), without the postcode.
    fn place(&self) -> Option<String> {
        let line2 = self.address.as_ref()?.line2.as_deref()?;
        let mut words = line2.split_whitespace().peekable();
        if words.peek().is_some_and(|w| is_postcode(w)) {
            words.next();
        }
        let city = words.collect::<Vec<_>>().join(" ");
        (!city.is_empty()).then(|| format!("{city}, PL"))
    }
}

/// A Polish postcode: `31-870`.
fn is_postcode(word: &str) -> bool {
    let bytes = word.as_bytes();
    bytes.len() == 6
        && bytes[2] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 2 || b.is_ascii_digit())
}

#[cfg(test)]
#[path = "inpost_tests.rs"]
mod tests;

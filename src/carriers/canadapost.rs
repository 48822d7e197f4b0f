//! Canada Post: the Tracking web service, `GET {base}/vis/track/pin/{pin}/detail`.
//!
//! One call tracks one PIN. The answer is a `tracking-detail` document (namespace
//! `http://www.canadapost.ca/ws/track`, though the published sample has none; both are read) or,
//! on failure, a `messages` document with Canada Post's code and description; code `004` ("no
//! tracking information") is a parcel Canada Post does not know yet.
//!
//! ## Credentials (`CarrierAccount::credentials`)
//!
//! - `username` and `password`: the two halves of the Canada Post API key (sent as HTTP basic
//!   auth), required;
//! - `language`: optional, `en-CA` (default) or `fr-CA`, the language of event descriptions.
//!
//! `CarrierAccount::base_url` selects another environment (`https://ct.soa-gw.canadapost.ca` for
//! Canada Post's development environment); without it the adapter calls [`PRODUCTION_BASE`].
//!
//! ## Times
//!
//! Each event has a local date and time at the event site and a zone abbreviation (`EST`,
//! `EDT`, `HNE`, ...). The abbreviation's offset is used when Waymark knows it; otherwise the
//! zone of the event's province (`BC` → America/Vancouver), else America/Toronto.
//!
//! ## Codes Canada Post reuses
//!
//! Canada Post reports the delivery of a returned item back to its sender with the same codes as
//! a delivery to the customer ("Item successfully delivered"). So after a "being returned to
//! sender" event, a later delivery is read as returned to the sender and a later "out for
//! delivery" as the return trip. And a plain delivery after the item waited at a post office or
//! locker is the customer collecting it.

use async_trait::async_trait;
use jiff::civil::{Date, DateTime};
use jiff::tz::{Offset, TimeZone};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, ACCEPT_LANGUAGE};

use super::delivery_to_come;
use super::profile::UnmappedCodes;
use super::timestamps::{local, zone_for_region};
use super::transport::{self, Answer, Transport, credential, excerpt, malformed};
use super::xml::Element;
use super::{
    Carrier, CarrierAccount, CarrierError, CarrierProfile, ParcelError, ParcelResult, PickupPoint,
    TrackReport, TrackRequest,
};
use crate::domain::timeline::is_final;
use crate::domain::{DeliveryWindow, EventTime, Reason, Status, TrackingEvent, TrackingNumber};

/// Canada Post's data file, compiled in; a file of the same name in the carriers directory
/// replaces it.
pub const BUNDLED_PROFILE: &str = include_str!("../../carriers/canadapost.toml");

/// Canada Post's production web services gateway.
pub const PRODUCTION_BASE: &str = "https://soa-gw.canadapost.ca";

/// The media type of the tracking service, version 2.
const TRACK_MEDIA_TYPE: &str = "application/vnd.cpc.track-v2+xml";

const DEFAULT_LANGUAGE: &str = "en-CA";

/// Canada Post's "no tracking information for this PIN".
const NO_TRACKING: &str = "004";

/// Where an event with neither a known zone abbreviation nor a province happened, clock-wise.
const HOME_ZONE: &str = "America/Toronto";

/// The Canada Post adapter.
#[derive(Debug)]
pub struct CanadaPost {
    profile: CarrierProfile,
    transport: Transport,
    unmapped: UnmappedCodes,
}

impl CanadaPost {
    /// An adapter that normalises through `profile` and calls Canada Post through `transport`.
    pub fn new(profile: CarrierProfile, transport: Transport) -> Self {
        CanadaPost {
            profile,
            transport,
            unmapped: UnmappedCodes::default(),
        }
    }

    /// An adapter with the bundled `carriers/canadapost.toml`.
    pub fn bundled(transport: Transport) -> Self {
        let profile =
            CarrierProfile::from_toml("carriers/canadapost.toml (bundled)", BUNDLED_PROFILE)
                .expect("the bundled carriers/canadapost.toml is valid (checked by its tests)");
        CanadaPost::new(profile, transport)
    }

    /// Read the body of a `200` answer of Get Tracking Details for `numbers`, as
    /// [`CanadaPost::read_answer`] does. The answer is about one PIN, so asking about more than
    /// one number is refused.
    pub fn read_answer_body(
        &self,
        numbers: &[TrackingNumber],
        body: &str,
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        let answer = Answer {
            status: StatusCode::OK,
            headers: Default::default(),
            body: body.to_owned(),
        };
        super::one_parcel_answer("Canada Post", numbers, |number| {
            self.read_answer(number, &answer)
        })
    }

    /// Read one answer of Get Tracking Details (its status and body) for `number`.
    pub fn read_answer(
        &self,
        number: &TrackingNumber,
        answer: &Answer,
    ) -> Result<Result<TrackReport, ParcelError>, CarrierError> {
        if matches!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Err(answer.error());
        }
        let doc = Element::parse(&answer.body);
        let messages = doc
            .as_ref()
            .ok()
            .filter(|d| d.name == "messages")
            .map(Messages::read);
        if let Some(messages) = messages {
            if messages.has_code(NO_TRACKING) {
                return Ok(Err(ParcelError::NotFound));
            }
            return if answer.status.is_server_error() {
                Err(CarrierError::Transient(format!(
                    "{}: {}",
                    answer.status,
                    messages.said()
                )))
            } else {
                // A refusal about this PIN (wrong format, not this customer's item).
                Ok(Err(ParcelError::Rejected(messages.said())))
            };
        }
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(Err(ParcelError::NotFound));
        }
        if !answer.status.is_success() {
            return Err(answer.error());
        }
        let doc = doc.map_err(|why| {
            malformed(
                format!("Canada Post tracking: not an XML answer ({why})"),
                &answer.body,
            )
        })?;
        if doc.name != "tracking-detail" {
            return Err(malformed(
                format!(
                    "Canada Post tracking: expected <tracking-detail>, got <{}>",
                    doc.name
                ),
                &answer.body,
            ));
        }
        Ok(self.report(number, &doc))
    }

    /// The report in one `tracking-detail`.
    fn report(
        &self,
        number: &TrackingNumber,
        detail: &Element,
    ) -> Result<TrackReport, ParcelError> {
        let mut scans = Vec::new();
        for occurrence in detail
            .child("significant-events")
            .into_iter()
            .flat_map(|events| events.children("occurrence"))
        {
            scans.push(self.scan(occurrence)?);
        }
        if scans.is_empty() {
            // A PIN Canada Post has a record for but no event yet: nothing to tell.
            return Err(ParcelError::NotFound);
        }
        // Canada Post lists the newest first; the rules below read the journey forwards.
        scans.sort_by_key(|scan| scan.event.time.at);
        reinterpret_reused_codes(&mut scans);

        // Where the journey stands: the latest scan, unless an earlier one ended it (as the
        // timeline judges): a stray scan after a delivery reopens nothing.
        let latest = scans
            .iter()
            .rposition(|scan| is_final(scan.event.status, scan.event.reason))
            .map_or(scans.last(), |end| scans.get(end));
        let signed_by = scans.iter().rev().find_map(|scan| scan.signatory.clone());
        let pickup_point = latest
            .filter(|scan| scan.event.status == Status::AvailableForPickup)
            .and_then(|scan| {
                scan.retail_name.as_ref().map(|name| PickupPoint {
                    name: name.clone(),
                    address: scan.event.location.clone(),
                    hold_until: None,
                })
            });
        let change_delivery_url = latest
            .filter(|scan| delivery_to_come(scan.event.status, scan.event.reason))
            .and_then(|_| {
                self.profile
                    .delivery_change_links(number)
                    .into_iter()
                    .next()
            })
            .map(|(_, url)| url);
        let estimate = ["changed-expected-date", "expected-delivery-date"]
            .iter()
            .find_map(|field| detail.text_of(field))
            .and_then(|text| match text.parse::<Date>() {
                Ok(date) => Some(DeliveryWindow::on(date)),
                Err(e) => {
                    // An unreadable estimate is not worth losing the scans over.
                    tracing::warn!(carrier = %self.profile.code, text, "Canada Post expected delivery date unreadable: {e}");
                    None
                }
            });
        Ok(TrackReport {
            events: scans.into_iter().map(|scan| scan.event).collect(),
            estimate,
            signed_by,
            pickup_point,
            change_delivery_url,
            other_parcels: Vec::new(),
        })
    }

    /// One `occurrence`.
    fn scan(&self, occurrence: &Element) -> Result<Scan, ParcelError> {
        let missing = |field: &str| ParcelError::Malformed {
            detail: format!("an occurrence without its {field}"),
            excerpt: excerpt(&occurrence.render()),
        };
        let code = occurrence
            .text_of("event-identifier")
            .ok_or_else(|| missing("event-identifier"))?;
        let date = occurrence
            .text_of("event-date")
            .ok_or_else(|| missing("event-date"))?;
        let clock = occurrence
            .text_of("event-time")
            .ok_or_else(|| missing("event-time"))?;
        let province = occurrence.text_of("event-province");
        let time = event_time(date, clock, occurrence.text_of("event-time-zone"), province)
            .map_err(|why| ParcelError::Malformed {
                detail: format!("event `{code}`: {why}"),
                excerpt: excerpt(&occurrence.render()),
            })?;
        let (status, reason) = self.meaning(code);
        let description = occurrence.text_of("event-description").unwrap_or(code);
        Ok(Scan {
            event: TrackingEvent {
                time,
                status,
                reason,
                raw_code: code.to_owned(),
                raw_text: description.to_owned(),
                location: location(occurrence.text_of("event-site"), province),
            },
            signatory: occurrence.text_of("signatory-name").map(str::to_owned),
            retail_name: occurrence.text_of("event-retail-name").map(str::to_owned),
        })
    }

    /// The normalised meaning of an event code, looked up as sent and then without leading
    /// zeros ("0174" → "174"). Canada Post has no coarser category, so a code the mapping lacks
    /// is kept as moving and logged once.
    fn meaning(&self, code: &str) -> (Status, Option<Reason>) {
        let unpadded = code.trim().trim_start_matches('0');
        if let Some(mapping) = self
            .profile
            .normalise(code)
            .or_else(|| self.profile.normalise(unpadded))
        {
            return (mapping.status, mapping.reason);
        }
        if self.unmapped.first_time(code) {
            tracing::warn!(
                carrier = %self.profile.code,
                code,
                "Canada Post event code not in the mapping (carriers/canadapost.toml); kept as in_transit"
            );
        }
        (Status::InTransit, None)
    }
}

#[async_trait]
impl Carrier for CanadaPost {
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
        let username = credential(account, "username")?;
        let password = credential(account, "password")?;
        let language = account
            .credentials
            .expose("language")
            .filter(|v| !v.trim().is_empty())
            .unwrap_or(DEFAULT_LANGUAGE);
        let base = transport::base_url(account, PRODUCTION_BASE);
        // One PIN per call: a batch is a run of calls, answered in order.
        let mut results = Vec::with_capacity(batch.len());
        for request in batch {
            let number = &request.tracking_number;
            let url = format!("{base}/vis/track/pin/{}/detail", number.as_str());
            let answer = self
                .transport
                .send(|client| {
                    client
                        .get(&url)
                        .basic_auth(username, Some(password))
                        .header(ACCEPT, TRACK_MEDIA_TYPE)
                        .header(ACCEPT_LANGUAGE, language)
                })
                .await?;
            results.push(ParcelResult {
                tracking_number: number.clone(),
                outcome: self.read_answer(number, &answer)?,
            });
        }
        Ok(results)
    }
}

/// Event codes that record the proof of delivery (20: "Signature image recorded for Online
/// viewing") rather than a step of the journey; they may come before the delivery scan itself.
const PROOF_OF_DELIVERY_RECORDS: &[&str] = &["20"];

/// An event with what it says beyond the normalised scan.
#[derive(Debug, Clone)]
struct Scan {
    event: TrackingEvent,
    signatory: Option<String>,
    retail_name: Option<String>,
}

/// Apply the two rules for codes Canada Post reuses (see the module documentation) to scans in
/// time order.
fn reinterpret_reused_codes(scans: &mut [Scan]) {
    let mut returning = false;
    let mut waited_for_pickup = false;
    let mut before: Option<(Status, Option<Reason>)> = None;
    for scan in scans {
        let event = &mut scan.event;
        // A record of the proof of delivery says nothing new about where the item is: it keeps
        // the meaning of the scan before it (out for delivery stays out for delivery), and after
        // a delivery it stays the in-transit note the timeline ignores.
        if PROOF_OF_DELIVERY_RECORDS.contains(&event.raw_code.trim_start_matches('0')) {
            if let Some((status, reason)) = before.filter(|(s, r)| !is_final(*s, *r)) {
                (event.status, event.reason) = (status, reason);
            }
            continue;
        }
        before = Some((event.status, event.reason));
        if returning {
            match event.status {
                Status::Delivered => {
                    event.status = Status::Exception;
                    event.reason = Some(Reason::ReturnedToSender);
                }
                Status::OutForDelivery => {
                    event.status = Status::Exception;
                    event.reason = Some(Reason::ReturningToSender);
                }
                _ => {}
            }
        } else if event.status == Status::Delivered && event.reason.is_none() && waited_for_pickup {
            event.reason = Some(Reason::PickedUpByCustomer);
        }
        returning |= event.reason == Some(Reason::ReturningToSender);
        waited_for_pickup |= event.status == Status::AvailableForPickup;
    }
}

/// Canada Post's messages: `<messages><message><code>…</code><description>…</description>`.
struct Messages(Vec<(String, String)>);

impl Messages {
    fn read(doc: &Element) -> Messages {
        Messages(
            doc.children("message")
                .map(|m| {
                    (
                        m.text_of("code").unwrap_or_default().to_owned(),
                        m.text_of("description").unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
        )
    }

    fn has_code(&self, code: &str) -> bool {
        self.0.iter().any(|(c, _)| c == code)
    }

    fn said(&self) -> String {
        if self.0.is_empty() {
            return "Canada Post sent an empty <messages>".into();
        }
        self.0
            .iter()
            .map(|(code, description)| format!("{code}: {description}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// "SAINTE-FOY, QC, CA" for a Canadian site; the site alone elsewhere.
fn location(site: Option<&str>, province: Option<&str>) -> Option<String> {
    let canadian = province.filter(|p| zone_for_region("CA", p).is_some());
    match (site, canadian) {
        (Some(site), Some(province)) => Some(format!("{site}, {province}, CA")),
        (None, Some(province)) => Some(format!("{province}, CA")),
        (Some(site), None) => Some(site.to_owned()),
        (None, None) => None,
    }
}

/// An event's date and time at its site.
fn event_time(
    date: &str,
    clock: &str,
    abbreviation: Option<&str>,
    province: Option<&str>,
) -> Result<EventTime, String> {
    let civil = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| DateTime::strptime(format, format!("{date} {clock}")).ok())
        .ok_or_else(|| {
            format!("`{date} {clock}` is not a date and time like 2011-02-03 08:27:43")
        })?;
    let zone = abbreviation
        .and_then(abbreviation_offset)
        .map(TimeZone::fixed)
        .or_else(|| province.and_then(|p| zone_for_region("CA", p)))
        .or_else(|| TimeZone::get(HOME_ZONE).ok());
    local(civil, zone.as_ref())
}

/// The offset a North American zone abbreviation stands for, in English or French.
fn abbreviation_offset(abbreviation: &str) -> Option<Offset> {
    let seconds = match abbreviation.trim().to_ascii_uppercase().as_str() {
        "NST" | "HNT" => -(3 * 3600 + 1800),
        "NDT" | "HAT" => -(2 * 3600 + 1800),
        "AST" | "HNA" => -4 * 3600,
        "ADT" | "HAA" => -3 * 3600,
        "EST" | "HNE" => -5 * 3600,
        "EDT" | "HAE" => -4 * 3600,
        "CST" | "HNC" => -6 * 3600,
        "CDT" | "HAC" => -5 * 3600,
        "MST" | "HNR" => -7 * 3600,
        "MDT" | "HAR" => -6 * 3600,
        "PST" | "HNP" => -8 * 3600,
        "PDT" | "HAP" => -7 * 3600,
        "UTC" | "GMT" => 0,
        _ => return None,
    };
    Offset::from_seconds(seconds).ok()
}

#[cfg(test)]
#[path = "canadapost_tests.rs"]
mod tests;

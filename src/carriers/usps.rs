//! USPS, through its Tracking API v3r2 (USPS's `tracking-v3r2_4.yaml`, developers.usps.com).
//!
//! One call tracks up to 35 numbers: `POST {base}/tracking/v3r2/tracking` with
//! `[{"trackingNumber": ...}, ...]`, answered `200` (every number found, a `TrackingDetails`
//! list) or `207` (a `MultiStatusResponse`: a `statusCode` per number, `"404"` for the ones USPS
//! does not know yet). Each number gets its own outcome; one bad entry never spoils the others.
//!
//! ## Credentials
//!
//! The account's `credentials` object holds `client_id` and `client_secret`: the Consumer Key and
//! Consumer Secret of the merchant's app on the USPS developer portal. They are exchanged for an
//! OAuth2 bearer token at `POST {base}/oauth2/v3/token` (client credentials; USPS tokens live
//! eight hours), cached per account, and renewed once when USPS answers `401`.
//!
//! `{base}` is the account's `base_url` when set (the test environment
//! [`TEST_BASE_URL`], or a mock server), else [`PRODUCTION_BASE_URL`].
//!
//! ## Normalising
//!
//! USPS scan event codes are looked up in `carriers/usps.toml` (see the order there): first with
//! USPS's words, because USPS files every kind of delivery (porch, neighbour, back to the sender)
//! under code `01`; then the code alone; then the words alone; and for the newest scan the
//! parcel's `statusCategory`. A scan nothing matches stays `in_transit` with its raw code and
//! words kept, and is logged once so the mapping can be extended.
//!
//! ## Times
//!
//! v3r2 scans carry `eventTimestamp` (the local wall time), `GMTOffset` (the local offset) and
//! `GMTTimestamp` (meant to be the instant, but a day off whenever USPS's conversion crosses
//! midnight). The instant is the local time at `GMTOffset`; `GMTTimestamp` is used only without
//! them. Without an offset, `eventTimestamp` is read as the local wall time at the scan's
//! place, even when it ends in `Z`: USPS's published example stamps a scan
//! `2023-08-02T07:31:00Z` whose summary says "7:31 am on August 2, 2023 in RICHMOND, VA", so that
//! `Z` does not mean UTC. The place's zone comes from the state (or the country), else US Eastern.

use async_trait::async_trait;
use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};
use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::HashMap;

use super::profile::{Mapping, UnmappedCodes};
use super::timestamps::{self, parse_iso};
use super::transport::{self, TokenCache, Transport, excerpt, malformed, number_key};
use super::{
    Carrier, CarrierAccount, CarrierError, CarrierProfile, ParcelError, ParcelResult, PickupPoint,
    TrackReport, TrackRequest,
};
use crate::domain::{DeliveryWindow, EventTime, Reason, Status, TrackingEvent, TrackingNumber};

/// USPS's data file, compiled in; a file of the same name in the carriers directory replaces it.
pub const BUNDLED_PROFILE: &str = include_str!("../../carriers/usps.toml");

/// Where production accounts are tracked.
pub const PRODUCTION_BASE_URL: &str = "https://apis.usps.com";

/// USPS's test environment ("TEM"); set it as the account's `base_url`.
pub const TEST_BASE_URL: &str = "https://apis-tem.usps.com";

/// Most numbers USPS accepts in one call (`TrackingRequest` `maxItems: 35`), whatever the data
/// file says.
pub const MAX_BATCH: usize = 35;

const TRACKING_PATH: &str = "/tracking/v3r2/tracking";
const TOKEN_PATH: &str = "/oauth2/v3/token";

/// The zone of scans that name no place Waymark knows: USPS's headquarters and most of its
/// volume are on Eastern time.
const HOME_ZONE: &str = "America/New_York";

/// The USPS adapter.
#[derive(Debug)]
pub struct Usps {
    profile: CarrierProfile,
    transport: Transport,
    tokens: TokenCache,
    unmapped: UnmappedCodes,
}

impl Usps {
    /// An adapter that normalises through `profile` and calls USPS through `transport`.
    pub fn new(profile: CarrierProfile, transport: Transport) -> Self {
        Usps {
            profile,
            tokens: transport.token_cache(),
            transport,
            unmapped: UnmappedCodes::default(),
        }
    }

    async fn track_chunk(
        &self,
        account: &CarrierAccount,
        chunk: &[TrackRequest],
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        let base = base_url(account);
        let url = format!("{base}{TRACKING_PATH}");
        let body: Vec<Value> = chunk
            .iter()
            .map(|r| serde_json::json!({ "trackingNumber": r.tracking_number.as_str() }))
            .collect();
        let token_url = format!("{base}{TOKEN_PATH}");
        let answer = self
            .transport
            .send_with_client_credentials(
                "USPS",
                &self.tokens,
                account,
                &token_url,
                |client, token| {
                    client
                        .post(&url)
                        .bearer_auth(token)
                        .header(ACCEPT, "application/json")
                        .json(&body)
                },
            )
            .await?;
        match answer.status {
            StatusCode::OK | StatusCode::MULTI_STATUS => self.read_answer(chunk, &answer.body),
            // USPS's own "not found" for the whole call (its ErrorMessage body): none of the
            // numbers is known yet. Anything else on a 404 (an HTML page from a wrong base URL)
            // is a configuration problem, not a parcel one.
            StatusCode::NOT_FOUND if is_usps_error(&answer.body) => Ok(not_found(chunk)),
            // "12: A status update is not yet available on your package": a fresh label USPS
            // has not scanned, refused as a bad request. It is "not found yet", not a refusal
            // of the call: the numbers are asked again at the not-found cadence.
            StatusCode::BAD_REQUEST if says_not_yet_available(&answer.body) => Ok(not_found(chunk)),
            _ => Err(answer.error()),
        }
    }

    /// Read the body of a `200`/`207` answer for `numbers`: one result each, in order, or a
    /// classified error when the body is not USPS's answer.
    pub fn read_answer_body(
        &self,
        numbers: &[TrackingNumber],
        body: &str,
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        self.read_answer(&super::unregistered(numbers), body)
    }

    /// One result per requested number, in request order, from a 200/207 body.
    fn read_answer(
        &self,
        chunk: &[TrackRequest],
        body: &str,
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        let value: Value = transport::parse_json(body)?;
        let items = match value {
            Value::Array(items) => items,
            // The older single-number GET answers one detail object; take it as a list of one.
            Value::Object(ref fields) if fields.contains_key("trackingNumber") => vec![value],
            _ => {
                return Err(malformed(
                    "expected a list of tracking details (TrackingDetails or MultiStatusResponse)",
                    body,
                ));
            }
        };
        let mut by_number: HashMap<String, Result<TrackReport, ParcelError>> = HashMap::new();
        let mut anonymous = Vec::new();
        for item in &items {
            match item.get("trackingNumber").and_then(Value::as_str) {
                Some(number) => {
                    by_number
                        .entry(number_key(number))
                        .or_insert_with(|| self.parcel(item));
                }
                None => anonymous.push(item),
            }
        }
        // A lone entry without a number can only be the answer for a lone request.
        if let ([request], [item]) = (chunk, anonymous.as_slice()) {
            by_number
                .entry(number_key(request.tracking_number.as_str()))
                .or_insert_with(|| self.parcel(item));
        }
        Ok(chunk
            .iter()
            .map(|request| ParcelResult {
                tracking_number: request.tracking_number.clone(),
                outcome: by_number
                    .get(&number_key(request.tracking_number.as_str()))
                    .cloned()
                    .unwrap_or_else(|| {
                        Err(ParcelError::Malformed {
                            detail: "USPS's answer has no entry for this number".into(),
                            excerpt: excerpt(body),
                        })
                    }),
            })
            .collect())
    }

    /// The outcome for one entry of the answer: a per-number failure, or a tracking detail.
    fn parcel(&self, item: &Value) -> Result<TrackReport, ParcelError> {
        if let Some(failure) = failure(item) {
            return Err(failure);
        }
        let detail: Detail =
            serde_json::from_value(item.clone()).map_err(|e| ParcelError::Malformed {
                detail: format!("not a USPS tracking detail: {e}"),
                excerpt: excerpt(&item.to_string()),
            })?;
        self.report(&detail, item)
    }

    /// A USPS tracking detail (v3r2, or the older v3 layout) as a normalised report.
    fn report(&self, detail: &Detail, raw: &Value) -> Result<TrackReport, ParcelError> {
        let events = detail.tracking_events.as_deref().unwrap_or_default();
        if events.is_empty() && detail.knows_nothing() {
            return Err(ParcelError::NotFound);
        }
        let mut timed = Vec::with_capacity(events.len());
        for event in events {
            let zone = event.zone();
            let time = event.time(&zone).map_err(|why| ParcelError::Malformed {
                detail: format!("a scan's time cannot be read: {why}"),
                excerpt: excerpt(&raw_event(raw, event)),
            })?;
            timed.push((event, time));
        }
        // USPS lists the newest scan first; ties keep USPS's order.
        let newest = timed
            .iter()
            .enumerate()
            .max_by(|(i, a), (j, b)| a.1.at.cmp(&b.1.at).then(j.cmp(i)))
            .map(|(i, _)| i);
        let normalised: Vec<TrackingEvent> = timed
            .iter()
            .enumerate()
            .map(|(i, (event, time))| {
                let category = (Some(i) == newest)
                    .then_some(detail.status_category.as_deref())
                    .flatten();
                let code = event.event_code.clone().unwrap_or_default();
                let text = event.event_type.clone().unwrap_or_default();
                let (status, reason) = self.normalise(&code, &text, category);
                TrackingEvent {
                    time: *time,
                    status,
                    reason,
                    raw_code: code,
                    raw_text: text,
                    location: event.location(),
                }
            })
            .collect();

        let newest_scan = newest.map(|i| (timed[i].0, &normalised[i]));
        let signed_by = timed
            .iter()
            .zip(&normalised)
            .filter(|(_, e)| e.status == Status::Delivered)
            .max_by_key(|(_, e)| e.time.at)
            .and_then(|((event, _), _)| event.signer());
        let pickup_point = newest_scan
            .filter(|(_, e)| e.status == Status::AvailableForPickup)
            .map(|(event, _)| PickupPoint {
                name: match (&event.firm, &event.event_city) {
                    (Some(firm), _) => firm.clone(),
                    (None, Some(city)) => format!("{city} Post Office"),
                    (None, None) => "Post Office".into(),
                },
                address: event.address(),
                hold_until: detail.return_date_notice.as_deref().and_then(date_of),
            });
        Ok(TrackReport {
            events: normalised,
            estimate: detail.estimate(),
            signed_by,
            pickup_point,
            // USPS's answer carries no change-delivery link; the data file lists USPS's pages.
            change_delivery_url: None,
            other_parcels: Vec::new(),
        })
    }

    /// A scan's meaning, looked up in the order `carriers/usps.toml` describes.
    fn normalise(
        &self,
        code: &str,
        text: &str,
        category: Option<&str>,
    ) -> (Status, Option<Reason>) {
        let words = shout(text);
        let code = code.trim();
        let mut keys = Vec::with_capacity(4);
        if !code.is_empty() {
            if !words.is_empty() {
                keys.push(format!("{code}|{words}"));
            }
            keys.push(code.to_owned());
        }
        if !words.is_empty() {
            keys.push(format!("*|{words}"));
        }
        if let Some(mapping) = keys.iter().find_map(|key| self.profile.normalise(key)) {
            return (mapping.status, mapping.reason);
        }
        let unmapped = if code.is_empty() {
            words.as_str()
        } else {
            code
        };
        if self.unmapped.first_time(unmapped) {
            tracing::warn!(
                carrier = "usps",
                code = unmapped,
                text,
                "USPS scan code not in the mapping (carriers/usps.toml); using the parcel's status category or in_transit"
            );
        }
        let coarse = category
            .map(|c| format!("category|{}", shout(c)))
            .and_then(|key| self.profile.normalise(&key));
        let meaning = Mapping::for_unknown_code(coarse);
        (meaning.status, meaning.reason)
    }
}

#[async_trait]
impl Carrier for Usps {
    fn profile(&self) -> &CarrierProfile {
        &self.profile
    }

    async fn track(
        &self,
        account: &CarrierAccount,
        batch: &[TrackRequest],
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        let size = self.profile.limits.batch_size.clamp(1, MAX_BATCH);
        let mut results = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(size) {
            results.extend(self.track_chunk(account, chunk).await?);
        }
        Ok(results)
    }
}

/// The account's base URL without a trailing slash (or the API path, if a merchant pasted the
/// spec's server URL), else production.
fn base_url(account: &CarrierAccount) -> String {
    let base = transport::base_url(account, PRODUCTION_BASE_URL);
    match base.strip_suffix("/tracking/v3r2") {
        Some(stripped) => stripped.to_owned(),
        None => base,
    }
}

/// Words as the data file spells its keys: trimmed, single-spaced, upper-case.
fn shout(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// "Not found (yet)" for every number of `chunk`.
fn not_found(chunk: &[TrackRequest]) -> Vec<ParcelResult> {
    chunk
        .iter()
        .map(|r| ParcelResult {
            tracking_number: r.tracking_number.clone(),
            outcome: Err(ParcelError::NotFound),
        })
        .collect()
}

/// Whether USPS's error says the number has no scan yet ("12: A status update is not yet
/// available on your package…").
fn says_not_yet_available(body: &str) -> bool {
    is_usps_error(body) && body.to_lowercase().contains("not yet available")
}

/// Whether a body is USPS's `ErrorMessage` JSON (and not, say, a proxy's HTML page).
fn is_usps_error(body: &str) -> bool {
    serde_json::from_str::<Value>(body)
        .ok()
        .is_some_and(|v| v.get("error").is_some_and(Value::is_object))
}

/// A per-number failure inside a 200/207 (`FailureResponse`), classified; `None` for a detail.
fn failure(item: &Value) -> Option<ParcelError> {
    let status_code = item.get("statusCode").and_then(scalar_text);
    let error = item.get("error").filter(|e| e.is_object());
    let failed = error.is_some() || status_code.as_deref().is_some_and(|c| !c.starts_with('2'));
    if !failed {
        return None;
    }
    let code = status_code
        .or_else(|| error.and_then(|e| e.get("code")).and_then(scalar_text))
        .unwrap_or_else(|| "?".into());
    let mut words: Vec<String> = Vec::new();
    if let Some(message) = error.and_then(|e| e.get("message")).and_then(Value::as_str) {
        words.push(message.to_owned());
    }
    for part in error
        .and_then(|e| e.get("errors"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for key in ["title", "detail"] {
            if let Some(text) = part.get(key).and_then(Value::as_str) {
                if !words.iter().any(|w| w == text) {
                    words.push(text.to_owned());
                }
            }
        }
    }
    let said = words.join(": ");
    let lower = said.to_lowercase();
    Some(
        if code == "404"
            || lower.contains("not found")
            || lower.contains("could not locate")
            || lower.contains("not yet available")
        {
            ParcelError::NotFound
        } else if code.starts_with('4') {
            ParcelError::Rejected(format!("USPS {code}: {said}"))
        } else {
            ParcelError::Malformed {
                detail: format!("USPS could not answer for this number ({code}): {said}"),
                excerpt: excerpt(&item.to_string()),
            }
        },
    )
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The JSON of one scan for an error excerpt (the whole entry when it cannot be singled out).
fn raw_event(raw: &Value, event: &Event) -> String {
    raw.get("trackingEvents")
        .and_then(Value::as_array)
        .and_then(|all| {
            all.iter().find(|e| {
                e.get("eventTimestamp").and_then(Value::as_str) == event.event_timestamp.as_deref()
                    && e.get("eventCode").and_then(Value::as_str) == event.event_code.as_deref()
            })
        })
        .unwrap_or(raw)
        .to_string()
}

/// The date at the start of `2024-04-04`, `2024-04-04T14:03:12Z` or `2024-04-04 14:03:12:000`.
fn date_of(text: &str) -> Option<Date> {
    text.trim().get(..10)?.parse().ok()
}

/// A text field that USPS sometimes sends as a number, a boolean or `null`; blank means absent.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

/// The parts of a USPS tracking detail Waymark reads. Both the v3r2 layout
/// (`deliveryDateExpectation`, `eventZIPCode`, `recipientName`) and the older v3 one used by
/// USPS's published examples (flat `expectedDeliveryTimeStamp`, `eventZIP`, `name`) are read.
#[derive(Debug, Default, Deserialize)]
struct Detail {
    #[serde(default, rename = "status", deserialize_with = "text")]
    status: Option<String>,
    #[serde(default, rename = "statusCategory", deserialize_with = "text")]
    status_category: Option<String>,
    #[serde(default, rename = "statusSummary", deserialize_with = "text")]
    status_summary: Option<String>,
    #[serde(default, rename = "deliveryDateExpectation")]
    delivery_date_expectation: Option<Expectation>,
    #[serde(default, rename = "predictedDeliveryDate", deserialize_with = "text")]
    predicted_delivery_date: Option<String>,
    #[serde(
        default,
        rename = "predictedDeliveryTimeStamp",
        deserialize_with = "text"
    )]
    predicted_delivery_time_stamp: Option<String>,
    #[serde(default, rename = "expectedDeliveryDate", deserialize_with = "text")]
    expected_delivery_date: Option<String>,
    #[serde(
        default,
        rename = "expectedDeliveryTimeStamp",
        deserialize_with = "text"
    )]
    expected_delivery_time_stamp: Option<String>,
    #[serde(default, rename = "guaranteedDeliveryDate", deserialize_with = "text")]
    guaranteed_delivery_date: Option<String>,
    #[serde(
        default,
        rename = "guaranteedDeliveryTimeStamp",
        deserialize_with = "text"
    )]
    guaranteed_delivery_time_stamp: Option<String>,
    /// When an unclaimed item goes back to the sender: the last day it waits for pickup.
    #[serde(default, rename = "returnDateNotice", deserialize_with = "text")]
    return_date_notice: Option<String>,
    #[serde(default, rename = "trackingEvents")]
    tracking_events: Option<Vec<Event>>,
}

/// `DeliveryDateExpectation` (v3r2).
#[derive(Debug, Default, Deserialize)]
struct Expectation {
    #[serde(default, rename = "predictedDeliveryDate", deserialize_with = "text")]
    predicted_delivery_date: Option<String>,
    #[serde(default, rename = "expectedDeliveryDate", deserialize_with = "text")]
    expected_delivery_date: Option<String>,
    /// A date, a date and time, or words ("3 Business Days"); only dates are used.
    #[serde(default, rename = "guaranteedDeliveryDate", deserialize_with = "text")]
    guaranteed_delivery_date: Option<String>,
}

impl Detail {
    /// The carrier's estimate: USPS's predicted date (its freshest), else the expected date from
    /// the service standard, else a guaranteed date.
    fn estimate(&self) -> Option<DeliveryWindow> {
        let nested = self.delivery_date_expectation.as_ref();
        [
            nested.and_then(|e| e.predicted_delivery_date.as_deref()),
            self.predicted_delivery_date.as_deref(),
            self.predicted_delivery_time_stamp.as_deref(),
            nested.and_then(|e| e.expected_delivery_date.as_deref()),
            self.expected_delivery_date.as_deref(),
            self.expected_delivery_time_stamp.as_deref(),
            nested.and_then(|e| e.guaranteed_delivery_date.as_deref()),
            self.guaranteed_delivery_date.as_deref(),
            self.guaranteed_delivery_time_stamp.as_deref(),
        ]
        .into_iter()
        .flatten()
        .find_map(date_of)
        .map(DeliveryWindow::on)
    }

    /// No scan and nothing said about the parcel: USPS does not know it (yet).
    fn knows_nothing(&self) -> bool {
        let said = [&self.status, &self.status_category, &self.status_summary]
            .into_iter()
            .flatten()
            .map(|s| s.to_lowercase())
            .collect::<Vec<_>>();
        said.is_empty()
            || said
                .iter()
                .any(|s| s.contains("could not locate") || s.contains("not found"))
    }
}

/// One scan (`TrackingEvent` in the spec).
#[derive(Debug, Default, Deserialize)]
struct Event {
    #[serde(default, rename = "eventType", deserialize_with = "text")]
    event_type: Option<String>,
    #[serde(default, rename = "eventCode", deserialize_with = "text")]
    event_code: Option<String>,
    #[serde(default, rename = "eventTimestamp", deserialize_with = "text")]
    event_timestamp: Option<String>,
    #[serde(default, rename = "GMTTimestamp", deserialize_with = "text")]
    gmt_timestamp: Option<String>,
    #[serde(default, rename = "GMTOffset", deserialize_with = "text")]
    gmt_offset: Option<String>,
    #[serde(default, rename = "eventCity", deserialize_with = "text")]
    event_city: Option<String>,
    #[serde(default, rename = "eventState", deserialize_with = "text")]
    event_state: Option<String>,
    #[serde(default, rename = "eventCountry", deserialize_with = "text")]
    event_country: Option<String>,
    #[serde(
        default,
        rename = "eventZIPCode",
        alias = "eventZIP",
        deserialize_with = "text"
    )]
    event_zip: Option<String>,
    #[serde(default, deserialize_with = "text")]
    firm: Option<String>,
    /// v3r2's signer.
    #[serde(default, rename = "recipientName", deserialize_with = "text")]
    recipient_name: Option<String>,
    /// v3's signer.
    #[serde(default, deserialize_with = "text")]
    name: Option<String>,
}

impl Event {
    /// Whether the scan happened in the United States (USPS leaves the country out there).
    fn domestic(&self) -> bool {
        self.event_country
            .as_deref()
            .is_none_or(|c| ["US", "USA", "UNITED STATES"].contains(&c.to_uppercase().as_str()))
    }

    /// The zone of the scan's place: its state's, its country's, else US Eastern.
    fn zone(&self) -> TimeZone {
        let by_state = self
            .event_state
            .as_deref()
            .filter(|_| self.domestic())
            .and_then(|state| timestamps::zone_for_region("US", state));
        let by_country = || {
            self.event_country
                .as_deref()
                .filter(|c| !self.domestic() && c.len() == 2)
                .and_then(timestamps::zone_for_country)
        };
        by_state
            .or_else(by_country)
            .or_else(|| TimeZone::get(HOME_ZONE).ok())
            .unwrap_or(TimeZone::UTC)
    }

    /// When the scan happened. The local `eventTimestamp` with `GMTOffset` is the truth:
    /// USPS's `GMTTimestamp` is a day off whenever its conversion crosses midnight (local
    /// `2024-11-25T18:31:00` at `-06:00` arrives as `2024-11-25T00:31:21Z`), so it is only used
    /// when the local fields are missing.
    fn time(&self, zone: &TimeZone) -> Result<EventTime, String> {
        let offset = self.gmt_offset.as_deref().and_then(parse_gmt_offset);
        if let Some(local) = self.event_timestamp.as_deref() {
            if let Some(written) = explicit_offset(local) {
                let at = parse_iso(local, None).map_err(|e| e.to_string())?.at;
                return Ok(EventTime::with_offset(at, written));
            }
            if let Some(offset) = offset {
                let at = local_time(local, &TimeZone::fixed(offset))?.at;
                return Ok(EventTime::with_offset(at, offset));
            }
        }
        if let Some(gmt) = &self.gmt_timestamp {
            // GMTTimestamp is the instant; a bare one is still GMT.
            let at = parse_iso(gmt, Some(&TimeZone::UTC))
                .map_err(|e| e.to_string())?
                .at;
            let offset = self
                .gmt_offset
                .as_deref()
                .and_then(parse_gmt_offset)
                .or_else(|| self.event_timestamp.as_deref().and_then(explicit_offset))
                .unwrap_or_else(|| zone.to_offset(at));
            return Ok(EventTime::with_offset(at, offset));
        }
        let text = self
            .event_timestamp
            .as_deref()
            .ok_or("the scan has neither eventTimestamp nor GMTTimestamp")?;
        local_time(text, zone)
    }

    /// "RICHMOND, VA, US" at home, "FRANKFURT, DE" abroad.
    fn location(&self) -> Option<String> {
        let mut parts: Vec<&str> = Vec::new();
        parts.extend(self.event_city.as_deref());
        if self.domestic() {
            parts.extend(self.event_state.as_deref());
            if !parts.is_empty() {
                parts.push("US");
            }
        } else {
            parts.extend(self.event_country.as_deref());
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// "CEDAR RAPIDS, IA 52404": where a Post Office holding the parcel is.
    fn address(&self) -> Option<String> {
        let region = [self.event_state.as_deref(), self.event_zip.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let parts: Vec<&str> = [self.event_city.as_deref(), Some(region.as_str())]
            .into_iter()
            .flatten()
            .filter(|p| !p.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    fn signer(&self) -> Option<String> {
        self.recipient_name.clone().or_else(|| self.name.clone())
    }
}

/// A scan time without a trustworthy offset, read as the wall time at the scan's place: a date
/// alone is the start of that day, and a trailing `Z` is ignored (see the module doc).
fn local_time(text: &str, zone: &TimeZone) -> Result<EventTime, String> {
    let text = text.trim();
    // Only a bare `YYYY-MM-DD`: jiff would also read the date out of a full date and time.
    if text.len() == 10 {
        if let Ok(date) = text.parse::<Date>() {
            return timestamps::local(date.at(0, 0, 0, 0), Some(zone));
        }
    }
    let wall = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix('z'))
        .unwrap_or(text);
    parse_iso(wall, Some(zone)).map_err(|e| e.to_string())
}

/// The offset written into `eventTimestamp` itself (`…-07:00`), if any; `Z` does not count.
fn explicit_offset(text: &str) -> Option<Offset> {
    let text = text.trim();
    if text.ends_with(['Z', 'z']) {
        return None;
    }
    parse_iso(text, None).ok()?.offset()
}

/// `GMTOffset` as USPS writes it: `-7:00`, `-07:00`, `+0530`, `0:00`.
fn parse_gmt_offset(text: &str) -> Option<Offset> {
    let text = text.trim();
    let (sign, rest) = match text.as_bytes().first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if !(0..=18).contains(&hours) || !(0..60).contains(&minutes) {
        return None;
    }
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

#[cfg(test)]
#[path = "usps_tests.rs"]
mod tests;

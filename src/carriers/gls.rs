//! GLS, through its Track And Trace API v1 (GLS's `ecitrackandtrace.yaml`, its OpenAPI 1.0.7,
//! published on dev-portal.gls-group.net).
//!
//! One call tracks up to 10 parcel numbers:
//! `GET {base}/track-and-trace-v1/tracking/simple/trackids/{n1,n2,...}`, answered `200` with a
//! `parcels` list. A number GLS does not know comes back inside that list with
//! `errorCode: E_404_01`; it is reported as not found for that number alone. A reference (a
//! Track ID) may stand for several parcels, each answered with the same `requested`: the report
//! follows one of them and names the others in [`TrackReport::other_parcels`], so each parcel
//! keeps its own journey.
//!
//! ## Credentials
//!
//! The account's `credentials` object holds `client_id` and `client_secret` (the API key and
//! secret of the merchant's app on the GLS developer portal), exchanged for an OAuth2 bearer
//! token with the client-credentials grant at `{base}/oauth2/v1/token` (the token URL the spec
//! names), cached per account and renewed once when GLS answers `401`. An optional `token_url`
//! credential replaces that endpoint (GLS's Authentication API v2 answers at
//! `{base}/oauth2/v2/token`); a path there is taken relative to `{base}`.
//!
//! `{base}` is the account's `base_url` when set (e.g. [`SANDBOX_BASE_URL`] or a mock server),
//! else [`PRODUCTION_BASE_URL`]. The spec's server URLs (`…/track-and-trace-v1/`) are accepted
//! too.
//!
//! ## Normalising
//!
//! GLS event codes are `<CATEGORY>.<DETAIL>` (`INTIAL.NORMAL`, `DELIVD.PARCELSHOP`). Each is
//! looked up in `carriers/gls.toml` whole, then by its category, then — for the newest event —
//! by the parcel's coarse `status` (`PREADVICE`, `DELIVEREDPS`, ...), else `in_transit`, logged
//! once. A parcel delivered to a ParcelShop waits there for the customer: it is
//! `available_for_pickup`, not delivered.
//!
//! ## Times
//!
//! GLS writes offsets without a colon (`2024-10-11T15:24:52+0200`); the offset is kept as the
//! scan's local offset. A time without one is read in the scan country's zone, else Germany's.

use async_trait::async_trait;
use jiff::tz::TimeZone;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, ACCEPT_LANGUAGE};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

use super::profile::{Mapping, UnmappedCodes};
use super::timestamps::{self, parse_iso};
use super::transport::{self, TokenCache, Transport, excerpt, lenient_text, malformed, number_key};
use super::{
    Carrier, CarrierAccount, CarrierError, CarrierProfile, ParcelError, ParcelResult, TrackReport,
    TrackRequest,
};
use crate::domain::{Reason, Status, TrackingEvent, TrackingNumber};

/// GLS's data file, compiled in; a file of the same name in the carriers directory replaces it.
pub const BUNDLED_PROFILE: &str = include_str!("../../carriers/gls.toml");

/// Where production accounts are tracked (the host of the spec's production server).
pub const PRODUCTION_BASE_URL: &str = "https://api.gls-group.net";

/// GLS's sandbox, answering its test data set (parcels `QAS_0000001` …).
pub const SANDBOX_BASE_URL: &str = "https://api-sandbox.gls-group.net";

/// Most parcel numbers GLS accepts in one call, whatever the data file says: "a maximum limit of
/// 10 parcel IDs per request".
pub const MAX_BATCH: usize = 10;

const API_PATH: &str = "/track-and-trace-v1";
const TRACKING_PATH: &str = "/track-and-trace-v1/tracking/simple/trackids/";
const TOKEN_PATH: &str = "/oauth2/v1/token";

/// The zone of scans GLS sends without an offset and without a country Waymark knows: GLS's home.
const HOME_ZONE: &str = "Europe/Berlin";

/// The GLS adapter.
#[derive(Debug)]
pub struct Gls {
    profile: CarrierProfile,
    transport: Transport,
    tokens: TokenCache,
    unmapped: UnmappedCodes,
}

impl Gls {
    /// An adapter that normalises through `profile` and calls GLS through `transport`.
    pub fn new(profile: CarrierProfile, transport: Transport) -> Self {
        Gls {
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
        let numbers: Vec<&str> = chunk.iter().map(|r| r.tracking_number.as_str()).collect();
        // Tracking numbers are letters, digits and dashes only, so they need no escaping.
        let url = format!("{}{TRACKING_PATH}{}", base_url(account), numbers.join(","));
        let token_url = token_url(account);
        // GLS's gateway answers an expired token with a 401 "The Token has expired".
        let answer = self
            .transport
            .send_with_client_credentials(
                "GLS",
                &self.tokens,
                account,
                &token_url,
                |client, token| {
                    client
                        .get(&url)
                        .query(&[("showEvents", "true")])
                        .bearer_auth(token)
                        .header(ACCEPT, "application/json")
                        // The raw event texts are for the merchant; English is GLS's default.
                        .header(ACCEPT_LANGUAGE, "EN")
                },
            )
            .await?;
        match answer.status {
            StatusCode::OK => self.read_answer(chunk, &answer.body),
            // GLS's 404 means a wrong path ("No static resource ..."); unknown parcels come back
            // inside a 200. Should a 404 ever carry parcels, they are read all the same.
            StatusCode::NOT_FOUND if has_parcels(&answer.body) => {
                self.read_answer(chunk, &answer.body)
            }
            _ => Err(answer.error()),
        }
    }

    /// Read the body of a `200` answer (a `ParcelsResponseDTO`) for `numbers`: one result each,
    /// in order, or a classified error when the body is not GLS's answer.
    pub fn read_answer_body(
        &self,
        numbers: &[TrackingNumber],
        body: &str,
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        self.read_answer(&super::unregistered(numbers), body)
    }

    /// One result per requested number, in request order, from a `ParcelsResponseDTO` body.
    fn read_answer(
        &self,
        chunk: &[TrackRequest],
        body: &str,
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        let value: Value = transport::parse_json(body)?;
        let Some(parcels) = value.get("parcels").and_then(Value::as_array) else {
            return Err(malformed(
                "expected {\"parcels\": [...]} (ParcelsResponseDTO)",
                body,
            ));
        };
        // A reference may stand for several parcels, each answered with the same `requested`.
        let mut by_number: HashMap<String, Vec<&Value>> = HashMap::new();
        for parcel in parcels {
            let requested = ["requested", "unitno"]
                .into_iter()
                .find_map(|key| parcel.get(key).and_then(Value::as_str));
            if let Some(number) = requested {
                by_number
                    .entry(number_key(number))
                    .or_default()
                    .push(parcel);
            }
        }
        Ok(chunk
            .iter()
            .map(|request| {
                let key = number_key(request.tracking_number.as_str());
                let outcome = match by_number.get(&key) {
                    Some(entries) => self.parcel(&key, entries),
                    None => Err(ParcelError::Malformed {
                        detail: "GLS's answer has no entry for this number".into(),
                        excerpt: excerpt(body),
                    }),
                };
                ParcelResult {
                    tracking_number: request.tracking_number.clone(),
                    outcome,
                }
            })
            .collect())
    }

    /// The outcome for the entries answering one number, or the error GLS gave for it. A
    /// reference GLS answers with several parcels (the parcels of one order share it) is several
    /// parcels, each with a journey of its own, never one merged timeline: the report follows
    /// the parcel the number itself names, else the first listed, and names the others.
    fn parcel(&self, requested: &str, entries: &[&Value]) -> Result<TrackReport, ParcelError> {
        let (failed, found): (Vec<&Value>, Vec<&Value>) = entries
            .iter()
            .partition(|e| e.get("errorCode").is_some_and(|c| !c.is_null()));
        let unit = |entry: &Value| entry.get("unitno").and_then(Value::as_str).map(number_key);
        let followed = found
            .iter()
            .position(|e| unit(e).as_deref() == Some(requested))
            .unwrap_or(0);
        let Some(raw) = found.get(followed) else {
            return Err(failed.first().map_or(ParcelError::NotFound, |e| failure(e)));
        };
        let mut other_parcels = Vec::new();
        for (index, entry) in found.iter().enumerate() {
            let number = unit(entry).and_then(|n| TrackingNumber::parse(&n).ok());
            match number {
                Some(number) if index != followed && !other_parcels.contains(&number) => {
                    other_parcels.push(number)
                }
                _ => {}
            }
        }
        let parcel: Parcel =
            serde_json::from_value((*raw).clone()).map_err(|e| ParcelError::Malformed {
                detail: format!("not a GLS parcel: {e}"),
                excerpt: excerpt(&raw.to_string()),
            })?;
        Ok(TrackReport {
            events: self.events(&parcel, raw)?,
            other_parcels,
            // GLS's Track And Trace answers no estimate, no signer and no change link; the
            // ParcelShop behind DELIVD.PARCELSHOP is only named by a second API that needs the
            // parcel's original destination postal code, which Waymark does not pass here.
            ..TrackReport::default()
        })
    }

    /// One parcel's events, normalised.
    fn events(&self, parcel: &Parcel, raw: &Value) -> Result<Vec<TrackingEvent>, ParcelError> {
        let bad = |detail: String| ParcelError::Malformed {
            detail,
            excerpt: excerpt(&raw.to_string()),
        };
        let scans = parcel.events.as_deref().unwrap_or_default();
        if scans.is_empty() {
            // With showEvents=false, or for a parcel GLS only knows the status of, the status is
            // the one thing said: keep it as a scan at its time.
            let (Some(status), Some(at)) = (&parcel.status, &parcel.status_date_time) else {
                return Err(bad("a GLS parcel with neither events nor a status".into()));
            };
            let time = parse_iso(at, home_zone().as_ref())
                .map_err(|e| bad(format!("statusDateTime cannot be read: {e}")))?;
            let (meaning, reason) = self.normalise(status, None);
            return Ok(vec![TrackingEvent {
                time,
                status: meaning,
                reason,
                raw_code: status.clone(),
                raw_text: status_text(status).unwrap_or(status).to_owned(),
                location: None,
            }]);
        }
        let mut timed = Vec::with_capacity(scans.len());
        for scan in scans {
            let text = scan
                .event_date_time
                .as_deref()
                .ok_or_else(|| bad("an event without eventDateTime".into()))?;
            let time = parse_iso(text, scan.zone().as_ref())
                .map_err(|e| bad(format!("an event's time cannot be read: {e}")))?;
            timed.push((scan, time));
        }
        // GLS lists the newest event first; ties keep GLS's order.
        let newest = timed
            .iter()
            .enumerate()
            .max_by(|(i, a), (j, b)| a.1.at.cmp(&b.1.at).then(j.cmp(i)))
            .map(|(i, _)| i);
        Ok(timed
            .iter()
            .enumerate()
            .map(|(i, (scan, time))| {
                let status = (Some(i) == newest)
                    .then_some(parcel.status.as_deref())
                    .flatten();
                let code = scan.code.clone().unwrap_or_default();
                let (status, reason) = self.normalise(&code, status);
                TrackingEvent {
                    time: *time,
                    status,
                    reason,
                    raw_code: code,
                    raw_text: scan.description.clone().unwrap_or_default(),
                    location: scan.location(),
                }
            })
            .collect())
    }

    /// An event code's meaning, looked up in the order `carriers/gls.toml` describes.
    fn normalise(&self, code: &str, parcel_status: Option<&str>) -> (Status, Option<Reason>) {
        let code = code.trim();
        if let Some(mapping) = self.profile.normalise(code) {
            return (mapping.status, mapping.reason);
        }
        // The data file lists GLS's categories (`NOTDEL`) as codes of their own: a detail the
        // file lacks (`NOTDEL.NEWREASON`) still says what its category says.
        let category = code.split_once('.').map_or(code, |(category, _)| category);
        if let Some(mapping) = self.profile.normalise(category) {
            tracing::debug!(
                carrier = "gls",
                code,
                "GLS event code mapped by its category"
            );
            return (mapping.status, mapping.reason);
        }
        if self.unmapped.first_time(code) {
            tracing::warn!(
                carrier = "gls",
                code,
                "GLS event code not in the mapping (carriers/gls.toml); using the parcel's status or in_transit"
            );
        }
        let meaning =
            Mapping::for_unknown_code(parcel_status.and_then(|s| self.profile.normalise(s)));
        (meaning.status, meaning.reason)
    }
}

#[async_trait]
impl Carrier for Gls {
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

/// The account's base URL without a trailing slash or the API's own path, else production.
fn base_url(account: &CarrierAccount) -> String {
    let base = transport::base_url(account, PRODUCTION_BASE_URL);
    match base.strip_suffix(API_PATH) {
        Some(stripped) => stripped.to_owned(),
        None => base,
    }
}

/// The account's `token_url` (absolute, or a path on the base URL), else the spec's.
fn token_url(account: &CarrierAccount) -> String {
    match account
        .credentials
        .expose("token_url")
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        Some(url) if url.starts_with('/') => format!("{}{url}", base_url(account)),
        Some(url) => url.to_owned(),
        None => format!("{}{TOKEN_PATH}", base_url(account)),
    }
}

fn has_parcels(body: &str) -> bool {
    serde_json::from_str::<Value>(body)
        .ok()
        .is_some_and(|v| v.get("parcels").is_some_and(Value::is_array))
}

fn home_zone() -> Option<TimeZone> {
    TimeZone::get(HOME_ZONE).ok()
}

/// A per-parcel error inside a 200 (`ParcelErrorCodeDTO`), classified.
fn failure(entry: &Value) -> ParcelError {
    let code = entry
        .get("errorCode")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let message = entry
        .get("errorMessage")
        .and_then(Value::as_str)
        .unwrap_or("");
    match code {
        // E_404_01 Resource Not Found; E_404_02 No Delivery Info.
        c if c.starts_with("E_404") => ParcelError::NotFound,
        // E_400_01 Bad Request, E_400_02 Limit Size Exceeded, E_400_03 Wrong Postal Code.
        c if c.starts_with("E_400") => ParcelError::Rejected(format!("GLS {code}: {message}")),
        // E_500_01 Internal Server Error, or a code the spec does not list: worth asking again.
        _ => ParcelError::Malformed {
            detail: format!("GLS could not answer for this parcel ({code}): {message}"),
            excerpt: excerpt(&entry.to_string()),
        },
    }
}

/// The spec's words for a parcel status, for a status-only parcel.
fn status_text(status: &str) -> Option<&'static str> {
    Some(match status {
        "PLANNEDPICKUP" => "Parcel is planned to be picked up",
        "INPICKUP" => "Parcel will be picked up by a driver",
        "NOTPICKEDUP" => "Parcel was not picked up",
        "PREADVICE" => "GLS has received the parcel data but not the physical parcel",
        "INTRANSIT" => "Parcel is on its way to the final depot",
        "INDELIVERY" => "Parcel is in delivery by a driver",
        "DELIVEREDPS" => "Parcel delivered to a parcel shop",
        "DELIVERED" => "Parcel was delivered",
        "INWAREHOUSE" => "Parcel is in warehouse",
        "NOTDELIVERED" => "Parcel was not delivered",
        "CANCELED" => "Parcel was cancelled",
        "FINAL" => "Parcel history closed",
        _ => return None,
    })
}

/// `ParcelDTO`: the parts Waymark reads. Text fields are read leniently: GLS sends some as
/// numbers, and `""` for unknown cities.
#[derive(Debug, Deserialize)]
struct Parcel {
    #[serde(default, deserialize_with = "lenient_text")]
    status: Option<String>,
    #[serde(default, rename = "statusDateTime", deserialize_with = "lenient_text")]
    status_date_time: Option<String>,
    #[serde(default)]
    events: Option<Vec<Event>>,
}

/// `EventDTO`.
#[derive(Debug, Deserialize)]
struct Event {
    #[serde(default, deserialize_with = "lenient_text")]
    code: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    city: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    country: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    description: Option<String>,
    #[serde(default, rename = "eventDateTime", deserialize_with = "lenient_text")]
    event_date_time: Option<String>,
}

impl Event {
    /// "Berlin, DE"; just "DE" when GLS names no city.
    fn location(&self) -> Option<String> {
        let parts: Vec<&str> = [self.city.as_deref(), self.country.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// The zone for a time written without an offset: the scan country's, else GLS's home.
    fn zone(&self) -> Option<TimeZone> {
        self.country
            .as_deref()
            .and_then(timestamps::zone_for_country)
            .or_else(home_zone)
    }
}

#[cfg(test)]
#[path = "gls_tests.rs"]
mod tests;

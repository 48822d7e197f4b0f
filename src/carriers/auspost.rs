//! Australia Post: the Shipping and Tracking API's "Track items", up to ten numbers per call.
//!
//! `GET {base}/shipping/v1/track?tracking_ids=A,B,...` with HTTP basic auth (the API key as user
//! name, the password as password) and an `account-number` header. The base is the account's
//! `base_url` when set (Australia Post's test environment, or a mock in tests), else
//! [`PRODUCTION_BASE_URL`].
//!
//! Credentials, in the account's `credentials` object:
//! - `api_key`: the Shipping and Tracking API key;
//! - `password`: the password issued with it;
//! - `account_number`: the eParcel / StarTrack charge account number the key belongs to.
//!
//! The answer is a 200 with one `tracking_results` entry per number. A number Australia Post does
//! not know comes back inside that 200 with `errors: [{code: "ESB-10001", name: "Invalid
//! tracking ID"}]` — for Waymark that is [`ParcelError::NotFound`] for that number only, since a
//! fresh label is unknown for hours. Other per-number errors are that number's
//! [`ParcelError::Rejected`].
//!
//! Australia Post sends no event codes: a scan is a `description`, a `date` with an offset and a
//! `location` such as `ALEXANDRIA NSW` or `SYDNEY (AU)`. The description is the code looked up in
//! `carriers/auspost.toml`; one the file lacks falls back to the article's own `status` for its
//! latest scan, else in_transit, and is logged once so the file can be extended.

use async_trait::async_trait;
use jiff::tz::TimeZone;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};

use super::profile::{Mapping, UnmappedCodes};
use super::timestamps::{parse_iso, zone_for_country, zone_for_region};
use super::transport::{self, Answer, Transport, credential, excerpt, malformed, number_key};
use super::{
    Carrier, CarrierAccount, CarrierError, CarrierProfile, ParcelError, ParcelResult, PickupPoint,
    TrackReport, TrackRequest,
};
use crate::domain::{Status, TrackingEvent, TrackingNumber};

/// Australia Post's data file, compiled in; a file of the same name in the carriers directory
/// replaces it (see [`CarrierProfile::load`]).
pub const BUNDLED_PROFILE: &str = include_str!("../../carriers/auspost.toml");

/// Where the Shipping and Tracking API lives when the account names no other base URL.
pub const PRODUCTION_BASE_URL: &str = "https://digitalapi.auspost.com.au";

/// Most tracking ids Track items accepts in one call, whatever the data file says.
pub const MAX_IDS_PER_CALL: usize = 10;

/// Australia Post's head office zone, for a time without an offset at a place we cannot place.
const HOME_ZONE: &str = "Australia/Melbourne";

/// Per-number error codes that mean "not known (yet)".
const NOT_FOUND_CODES: [&str; 2] = ["ESB-10001", "ESB-10002"];

/// The Australia Post adapter.
#[derive(Debug)]
pub struct AusPost {
    profile: CarrierProfile,
    transport: Transport,
    unmapped: UnmappedCodes,
}

impl AusPost {
    /// An adapter that normalises through `profile` and calls Australia Post through `transport`.
    pub fn new(profile: CarrierProfile, transport: Transport) -> Self {
        AusPost {
            profile,
            transport,
            unmapped: UnmappedCodes::default(),
        }
    }

    /// An adapter with the bundled `carriers/auspost.toml`.
    pub fn bundled(transport: Transport) -> Self {
        let profile = CarrierProfile::from_toml("carriers/auspost.toml (bundled)", BUNDLED_PROFILE)
            .expect("the bundled carriers/auspost.toml is valid (checked by its tests)");
        AusPost::new(profile, transport)
    }

    /// Read the body of a Track items answer: one outcome per requested number, in request
    /// order, or — when the body is not what Australia Post's spec says — a classified error.
    pub fn read_track(
        &self,
        numbers: &[TrackingNumber],
        body: &str,
    ) -> Result<Vec<Result<TrackReport, ParcelError>>, CarrierError> {
        let answer: TrackAnswer = transport::parse_json(body)?;
        let Some(results) = answer.tracking_results else {
            return Err(match answer.errors {
                Some(errors) if !errors.is_empty() => CarrierError::Permanent(format!(
                    "Australia Post answered with errors only: {}",
                    words(&errors)
                )),
                _ => malformed("the answer has no `tracking_results`", body),
            });
        };
        let mut by_id: HashMap<String, &TrackingResult> = HashMap::new();
        for result in &results {
            if let Some(id) = result.tracking_id.as_deref() {
                by_id.entry(number_key(id)).or_insert(result);
            }
        }
        Ok(numbers
            .iter()
            .map(|number| match by_id.get(&number_key(number.as_str())) {
                Some(result) => self.outcome(result, body),
                None => Err(ParcelError::Malformed {
                    detail: format!("the answer has no tracking result for {number}"),
                    excerpt: excerpt(body),
                }),
            })
            .collect())
    }

    /// Read the body of a Track items answer for `numbers`, as [`AusPost::read_track`] does,
    /// each outcome paired with its number.
    pub fn read_answer_body(
        &self,
        numbers: &[TrackingNumber],
        body: &str,
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        let outcomes = self.read_track(numbers, body)?;
        Ok(numbers
            .iter()
            .zip(outcomes)
            .map(|(number, outcome)| ParcelResult {
                tracking_number: number.clone(),
                outcome,
            })
            .collect())
    }

    /// One call for up to [`MAX_IDS_PER_CALL`] numbers.
    async fn track_chunk(
        &self,
        base: &str,
        auth: &Credentials<'_>,
        chunk: &[TrackRequest],
    ) -> Result<Vec<Result<TrackReport, ParcelError>>, CarrierError> {
        let numbers: Vec<TrackingNumber> =
            chunk.iter().map(|r| r.tracking_number.clone()).collect();
        let ids = numbers
            .iter()
            .map(TrackingNumber::as_str)
            .collect::<Vec<_>>()
            .join(",");
        // Tracking numbers are letters, digits and dashes only; the commas stay literal, as
        // Australia Post documents them.
        let url = format!("{base}/shipping/v1/track?tracking_ids={ids}");
        let answer = self
            .transport
            .send(|client| {
                client
                    .get(&url)
                    .basic_auth(auth.api_key, Some(auth.password))
                    .header("account-number", auth.account_number)
                    .header(reqwest::header::ACCEPT, "application/json")
            })
            .await?;
        self.judge(&numbers, &answer)
    }

    fn judge(
        &self,
        numbers: &[TrackingNumber],
        answer: &Answer,
    ) -> Result<Vec<Result<TrackReport, ParcelError>>, CarrierError> {
        if answer.status.is_success() {
            return self.read_track(numbers, &answer.body);
        }
        // Some gateways answer a batch of unknown numbers with a non-2xx that still carries
        // the per-number results; read those rather than failing every number.
        if let Ok(TrackAnswer {
            tracking_results: Some(_),
            ..
        }) = serde_json::from_str::<TrackAnswer>(&answer.body)
        {
            return self.read_track(numbers, &answer.body);
        }
        Err(answer.error())
    }

    /// One number's result: its own errors, or its articles' scans normalised.
    fn outcome(&self, result: &TrackingResult, body: &str) -> Result<TrackReport, ParcelError> {
        if let Some(errors) = result.errors.as_ref().filter(|e| !e.is_empty()) {
            if errors
                .iter()
                .any(|e| NOT_FOUND_CODES.contains(&e.code.as_deref().unwrap_or_default().trim()))
            {
                return Err(ParcelError::NotFound);
            }
            return Err(ParcelError::Rejected(words(errors)));
        }

        let articles = result.articles();
        if articles.is_empty() && result.status.is_none() {
            return Err(ParcelError::Malformed {
                detail: format!(
                    "the result for {} has neither `errors` nor `trackable_items`",
                    result.tracking_id.as_deref().unwrap_or("?")
                ),
                excerpt: excerpt(body),
            });
        }

        // The same scan is often listed twice (once per leg of a consignment, or repeated by
        // the carrier); it is one scan.
        let mut seen = HashSet::new();
        let mut scans = Vec::new();
        for article in &articles {
            let status = article.status.as_deref().or(result.status.as_deref());
            for raw in article.events.iter().flatten() {
                let (Some(text), Some(date)) = (
                    raw.description
                        .as_deref()
                        .map(str::trim)
                        .filter(|d| !d.is_empty()),
                    raw.date.as_deref(),
                ) else {
                    return Err(ParcelError::Malformed {
                        detail: "an event has no `description` or no `date`".into(),
                        excerpt: excerpt(body),
                    });
                };
                let place = raw.location.as_deref().map(Place::read);
                let zone = place
                    .as_ref()
                    .and_then(|p| p.zone.clone())
                    .unwrap_or_else(|| TimeZone::get(HOME_ZONE).unwrap_or(TimeZone::UTC));
                let time = parse_iso(date, Some(&zone)).map_err(|e| ParcelError::Malformed {
                    detail: e.to_string(),
                    excerpt: excerpt(body),
                })?;
                if seen.insert((time.at, text.to_owned(), raw.location.clone())) {
                    scans.push((text, time, place, status));
                }
            }
        }
        let latest_at = scans.iter().map(|(_, time, _, _)| time.at).max();

        let mut events = Vec::with_capacity(scans.len());
        let mut places = Vec::with_capacity(scans.len());
        for (text, time, place, status) in scans {
            // The article's status describes where it is now, so it can only stand in for the
            // latest scan.
            let status = (Some(time.at) == latest_at).then_some(status).flatten();
            let meaning = self.meaning(text, status);
            events.push(TrackingEvent {
                time,
                status: meaning.status,
                reason: meaning.reason,
                raw_code: text.to_owned(),
                raw_text: text.to_owned(),
                location: place.as_ref().map(|p| p.label.clone()),
            });
            places.push(place.map(|p| p.raw));
        }

        // A parcel waiting at a Post Office or Parcel Locker waits where it was last scanned.
        let pickup_point = events
            .iter()
            .enumerate()
            .max_by_key(|(_, e)| e.time.at)
            .filter(|(_, e)| e.status == Status::AvailableForPickup)
            .and_then(|(i, _)| places.get(i).cloned().flatten())
            .map(|name| PickupPoint {
                name,
                address: None,
                hold_until: None,
            });

        Ok(TrackReport {
            events,
            // Track items gives no estimate, signature or change link (see the module doc).
            estimate: None,
            signed_by: None,
            pickup_point,
            change_delivery_url: None,
            other_parcels: Vec::new(),
        })
    }

    /// What one scan means: its description in the mapping, else a phrase of it, else the
    /// article's status (latest scan only), else in transit.
    fn meaning(&self, text: &str, status: Option<&str>) -> Mapping {
        if let Some(mapping) = self.profile.normalise(text) {
            return mapping;
        }
        if let Some(mapping) = self.profile.phrase(text) {
            return mapping;
        }
        self.warn_once(text);
        Mapping::for_unknown_code(
            status.and_then(|s| self.profile.normalise(&format!("status:{}", s.trim()))),
        )
    }

    fn warn_once(&self, text: &str) {
        if self.unmapped.first_time(text) {
            tracing::warn!(
                carrier = %self.profile.code,
                description = text,
                "Australia Post scan description is not in carriers/auspost.toml; using the article status or in_transit"
            );
        }
    }
}

#[async_trait]
impl Carrier for AusPost {
    fn profile(&self) -> &CarrierProfile {
        &self.profile
    }

    /// All numbers of a call go together; a batch larger than Track items takes (or than the
    /// data file's batch size) is split into several calls, answered in request order. A
    /// failure of one call (credentials, throttling, an outage) fails the batch: the next calls
    /// would meet the same fate.
    async fn track(
        &self,
        account: &CarrierAccount,
        batch: &[TrackRequest],
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        let auth = Credentials {
            api_key: credential(account, "api_key")?,
            password: credential(account, "password")?,
            account_number: credential(account, "account_number")?,
        };
        let base = transport::base_url(account, PRODUCTION_BASE_URL);
        let size = self.profile.limits.batch_size.clamp(1, MAX_IDS_PER_CALL);
        let mut results = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(size) {
            let outcomes = self.track_chunk(&base, &auth, chunk).await?;
            results.extend(
                chunk
                    .iter()
                    .zip(outcomes)
                    .map(|(request, outcome)| ParcelResult {
                        tracking_number: request.tracking_number.clone(),
                        outcome,
                    }),
            );
        }
        Ok(results)
    }
}

/// The account's secrets for one batch.
struct Credentials<'a> {
    api_key: &'a str,
    password: &'a str,
    account_number: &'a str,
}

/// Australia Post's errors as one sentence.
fn words(errors: &[AusError]) -> String {
    errors
        .iter()
        .map(|e| {
            [&e.code, &e.name, &e.message]
                .into_iter()
                .flatten()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(": ")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A scan location as Australia Post writes it.
#[derive(Debug, Clone)]
struct Place {
    /// Exactly as sent, for a pickup point's name.
    raw: String,
    /// "City, CC": `ALEXANDRIA NSW, AU`, `JOHN F. KENNEDY APT/NEW YORK, US`.
    label: String,
    /// Where a time without offset was local.
    zone: Option<TimeZone>,
}

impl Place {
    fn read(location: &str) -> Place {
        let raw = location.trim().to_owned();
        // `SYDNEY (AU)`, `JOHN F. KENNEDY APT/NEW YORK (US)`: a place abroad, or a gateway.
        if let Some(open) = raw.rfind('(') {
            let country = raw[open + 1..].trim_end_matches(')').trim();
            if raw.ends_with(')')
                && country.len() == 2
                && country.chars().all(|c| c.is_ascii_alphabetic())
            {
                let country = country.to_ascii_uppercase();
                let city = raw[..open].trim();
                return Place {
                    label: format!("{city}, {country}"),
                    zone: zone_for_country(&country),
                    raw,
                };
            }
        }
        // `ALEXANDRIA NSW`, `Sydney,NSW`: a suburb and its state (scans in Perth are three
        // hours behind scans in Sydney).
        let cut = raw.rfind([' ', ',']);
        if let Some(cut) = cut {
            let state = raw[cut + 1..].trim().to_ascii_uppercase();
            if let Some(zone) = zone_for_region("AU", &state) {
                let suburb = raw[..cut].trim().trim_end_matches(',').trim();
                return Place {
                    label: format!("{suburb} {state}, AU"),
                    zone: Some(zone),
                    raw,
                };
            }
        }
        Place {
            label: raw.clone(),
            zone: None,
            raw,
        }
    }
}

/// The Track items answer.
#[derive(Debug, Deserialize)]
struct TrackAnswer {
    tracking_results: Option<Vec<TrackingResult>>,
    /// Errors about the whole request.
    errors: Option<Vec<AusError>>,
}

#[derive(Debug, Deserialize)]
struct AusError {
    code: Option<String>,
    name: Option<String>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TrackingResult {
    tracking_id: Option<String>,
    status: Option<String>,
    errors: Option<Vec<AusError>>,
    trackable_items: Option<Vec<TrackableItem>>,
}

impl TrackingResult {
    /// Every article of the result: a trackable item is an article itself, or a consignment
    /// whose `items` are the articles.
    fn articles(&self) -> Vec<&TrackableItem> {
        self.trackable_items
            .iter()
            .flatten()
            .flat_map(|item| match &item.items {
                Some(items) => items.iter().collect::<Vec<_>>(),
                None => vec![item],
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
struct TrackableItem {
    status: Option<String>,
    events: Option<Vec<RawEvent>>,
    /// Present when this item is a consignment of several articles.
    items: Option<Vec<TrackableItem>>,
}

#[derive(Debug, Deserialize)]
struct RawEvent {
    location: Option<String>,
    description: Option<String>,
    date: Option<String>,
}

#[cfg(test)]
#[path = "auspost_tests.rs"]
mod tests;

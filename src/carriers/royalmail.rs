//! Royal Mail: the Tracking API v2 `events` operation, one mail piece per call.
//!
//! `GET {base}/mailpieces/v2/{mailPieceId}/events` with the headers `X-IBM-Client-Id`,
//! `X-IBM-Client-Secret` and `X-Accept-RMG-Terms: yes`. The base is the account's `base_url`
//! when set (Royal Mail's test environment, or a mock in tests), else
//! [`PRODUCTION_BASE_URL`].
//!
//! Credentials, in the account's `credentials` object:
//! - `client_id`: the client id of the application registered on Royal Mail's developer portal;
//! - `client_secret`: its client secret.
//!
//! Errors come in Royal Mail's own shape, `{httpCode, httpMessage, moreInformation, errors:
//! [{errorCode, errorDescription, errorCause, errorResolution}]}`. Royal Mail splits its codes in
//! two: `E0…` are technical (about the call: headers, throttling, outages) and `E1…` are business
//! errors (about the mail piece). So an `E1…` code is that parcel's answer (`E1142`, "barcode
//! reference not recognised", means Royal Mail does not know the number yet), and an `E0…` code
//! is the call's. One quirk is honoured on purpose: Royal Mail's gateway has been seen answering
//! `httpCode 400` with `moreInformation` "The rate limit has been exceeded…" — any such wording is
//! [`CarrierError::RateLimited`], whatever the status or error code next to it.
//!
//! Event codes (`EVKSP`, `EVGPD`, …) are normalised through `carriers/royalmail.toml`; a code the
//! file lacks falls back to the parcel's `statusCategory` for its latest scan, else in_transit,
//! and is logged once so the file can be extended.

use async_trait::async_trait;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use reqwest::StatusCode;
use serde::Deserialize;

use super::profile::{Mapping, UnmappedCodes};
use super::timestamps::parse_iso;
use super::transport::{self, Answer, Transport, credential, excerpt, malformed};
use super::{
    Carrier, CarrierAccount, CarrierError, CarrierProfile, ParcelError, ParcelResult, PickupPoint,
    TrackReport, TrackRequest,
};
use crate::domain::{DeliveryWindow, Reason, Status, TrackingEvent, TrackingNumber};

/// Royal Mail's data file, compiled in; a file of the same name in the carriers directory
/// replaces it (see [`CarrierProfile::load`]).
pub const BUNDLED_PROFILE: &str = include_str!("../../carriers/royalmail.toml");

/// Where the Tracking API lives when the account names no other base URL.
pub const PRODUCTION_BASE_URL: &str = "https://api.royalmail.net";

/// Royal Mail's public website, which its relative links (`/personal/receiving-mail/redelivery`)
/// point into.
const WEBSITE: &str = "https://www.royalmail.com";

/// Royal Mail scans happen in the UK: a time without an offset is UK local time.
const HOME_ZONE: &str = "Europe/London";

/// The country every Royal Mail scan location is in (foreign legs are tracked by the foreign
/// postal operator, which Royal Mail only links to).
const HOME_COUNTRY: &str = "GB";

/// The Royal Mail adapter.
#[derive(Debug)]
pub struct RoyalMail {
    profile: CarrierProfile,
    transport: Transport,
    unmapped: UnmappedCodes,
}

impl RoyalMail {
    /// An adapter that normalises through `profile` and calls Royal Mail through `transport`.
    pub fn new(profile: CarrierProfile, transport: Transport) -> Self {
        RoyalMail {
            profile,
            transport,
            unmapped: UnmappedCodes::default(),
        }
    }

    /// An adapter with the bundled `carriers/royalmail.toml`.
    pub fn bundled(transport: Transport) -> Self {
        let profile =
            CarrierProfile::from_toml("carriers/royalmail.toml (bundled)", BUNDLED_PROFILE)
                .expect("the bundled carriers/royalmail.toml is valid (checked by its tests)");
        RoyalMail::new(profile, transport)
    }

    /// Read the body of a successful `events` answer: the parcel's report, the parcel's own
    /// error, or — when the body is not what Royal Mail's spec says — a classified error.
    pub fn read_events(
        &self,
        body: &str,
    ) -> Result<Result<TrackReport, ParcelError>, CarrierError> {
        let answer: EventsAnswer = transport::parse_json(body)?;
        match answer.mail_pieces {
            Some(pieces) => Ok(self.report(pieces, body)),
            None if answer.errors.is_some() || answer.more_information.is_some() => judge_errors(
                StatusCode::OK,
                &answer,
                &reqwest::header::HeaderMap::new(),
                body,
            ),
            None => Err(malformed("the answer has no `mailPieces`", body)),
        }
    }

    /// Read the body of a successful `events` answer for `numbers` (see
    /// [`RoyalMail::read_events`]). The answer is about one mail piece, so asking about more than
    /// one number is refused.
    pub fn read_answer_body(
        &self,
        numbers: &[TrackingNumber],
        body: &str,
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        super::one_parcel_answer("Royal Mail", numbers, |_| self.read_events(body))
    }

    /// One call for one mail piece; `Ok(Err(_))` is that parcel's problem, `Err(_)` the call's.
    async fn track_one(
        &self,
        base: &str,
        client_id: &str,
        client_secret: &str,
        number: &TrackingNumber,
    ) -> Result<Result<TrackReport, ParcelError>, CarrierError> {
        // Tracking numbers are letters, digits and dashes only, so they are safe in a path.
        let url = format!("{base}/mailpieces/v2/{}/events", number.as_str());
        let answer = self
            .transport
            .send(|client| {
                client
                    .get(&url)
                    .header("X-IBM-Client-Id", client_id)
                    .header("X-IBM-Client-Secret", client_secret)
                    .header("X-Accept-RMG-Terms", "yes")
                    .header(reqwest::header::ACCEPT, "application/json")
            })
            .await?;
        self.judge(&answer)
    }

    fn judge(&self, answer: &Answer) -> Result<Result<TrackReport, ParcelError>, CarrierError> {
        if answer.status.is_success() {
            return self.read_events(&answer.body);
        }
        match serde_json::from_str::<EventsAnswer>(&answer.body) {
            Ok(said) => judge_errors(answer.status, &said, &answer.headers, &answer.body),
            // Royal Mail's unknown-barcode answer is a 404; without its error body (a gateway
            // page) it still means the piece is not there to be found.
            Err(_) if answer.status == StatusCode::NOT_FOUND => Ok(Err(ParcelError::NotFound)),
            Err(_) => Err(answer.error()),
        }
    }

    /// Normalise one mail piece.
    fn report(&self, pieces: MailPieces, body: &str) -> Result<TrackReport, ParcelError> {
        let zone = TimeZone::get(HOME_ZONE).unwrap_or(TimeZone::UTC);
        let summary = pieces.summary.unwrap_or_default();
        let mut raw_events = pieces.events.unwrap_or_default();
        if raw_events.is_empty() {
            // Some pieces come back with a summary only; its last event is still a scan.
            if let (Some(code), Some(at)) =
                (&summary.last_event_code, &summary.last_event_date_time)
            {
                raw_events.push(RawEvent {
                    event_code: Some(code.clone()),
                    event_name: summary.last_event_name.clone(),
                    event_date_time: Some(at.clone()),
                    location_name: summary.last_event_location_name.clone(),
                });
            }
        }

        let mut scans = Vec::with_capacity(raw_events.len());
        for raw in &raw_events {
            let (Some(code), Some(at)) = (
                raw.event_code
                    .as_deref()
                    .map(str::trim)
                    .filter(|c| !c.is_empty()),
                raw.event_date_time.as_deref(),
            ) else {
                return Err(ParcelError::Malformed {
                    detail: "an event has no `eventCode` or no `eventDateTime`".into(),
                    excerpt: excerpt(body),
                });
            };
            let time = parse_iso(at, Some(&zone)).map_err(|e| ParcelError::Malformed {
                detail: e.to_string(),
                excerpt: excerpt(body),
            })?;
            scans.push((raw, code, time));
        }
        let latest_at = scans.iter().map(|(_, _, time)| time.at).max();

        let mut events = Vec::with_capacity(scans.len());
        let mut places = Vec::with_capacity(scans.len());
        for (raw, code, time) in scans {
            let text = raw.event_name.as_deref().unwrap_or_default().trim();
            // The parcel's statusCategory describes where it is now, so it can only stand in
            // for the latest scan.
            let category = (Some(time.at) == latest_at)
                .then_some(summary.status_category.as_deref())
                .flatten();
            let meaning = self.meaning(code, text, category);
            let place = raw
                .location_name
                .as_deref()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned);
            events.push(TrackingEvent {
                time,
                status: meaning.status,
                reason: meaning.reason,
                raw_code: code.to_owned(),
                raw_text: text.to_owned(),
                location: place.as_ref().map(|l| format!("{l}, {HOME_COUNTRY}")),
            });
            places.push(place);
        }

        let latest = events.iter().enumerate().max_by_key(|(_, e)| e.time.at);
        // A parcel waiting at a delivery office or Post Office waits where it was last scanned.
        let pickup_point = latest
            .filter(|(_, e)| e.status == Status::AvailableForPickup)
            .and_then(|(i, _)| places.get(i).cloned().flatten())
            .map(|name| PickupPoint {
                name,
                address: None,
                hold_until: None,
            });
        let latest = latest.map(|(_, e)| e);
        let delivery_to_come = latest.is_none_or(|e| {
            e.status != Status::Delivered && !e.reason.is_some_and(Reason::is_return)
        });
        let change_delivery_url = pieces
            .links
            .and_then(|links| links.redelivery)
            .and_then(|link| link.href)
            .filter(|_| delivery_to_come)
            .map(|href| absolute(&href));

        Ok(TrackReport {
            events,
            estimate: pieces.estimated_delivery.and_then(|e| estimate(&e)),
            signed_by: pieces
                .signature
                .and_then(|s| s.recipient_name)
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty()),
            pickup_point,
            change_delivery_url,
            other_parcels: Vec::new(),
        })
    }

    /// What one scan means: its code in the mapping, else a phrase of its words, else the
    /// parcel's status category (latest scan only), else in transit.
    fn meaning(&self, code: &str, text: &str, category: Option<&str>) -> Mapping {
        if let Some(mapping) = self.profile.normalise(code) {
            return mapping;
        }
        if let Some(mapping) = self.profile.phrase(text) {
            return mapping;
        }
        self.warn_once(code, text);
        Mapping::for_unknown_code(
            category.and_then(|c| self.profile.normalise(&format!("category:{}", c.trim()))),
        )
    }

    fn warn_once(&self, code: &str, text: &str) {
        if self.unmapped.first_time(code) {
            tracing::warn!(
                carrier = %self.profile.code,
                code,
                text,
                "Royal Mail event code is not in carriers/royalmail.toml; using its status category or in_transit"
            );
        }
    }
}

#[async_trait]
impl Carrier for RoyalMail {
    fn profile(&self) -> &CarrierProfile {
        &self.profile
    }

    /// Royal Mail's events operation takes one number, so a batch is one call per number, in
    /// order. A failure of the call itself (credentials, throttling, an outage) stops the batch:
    /// the next numbers would meet the same fate.
    async fn track(
        &self,
        account: &CarrierAccount,
        batch: &[TrackRequest],
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        let client_id = credential(account, "client_id")?;
        let client_secret = credential(account, "client_secret")?;
        let base = transport::base_url(account, PRODUCTION_BASE_URL);
        let mut results = Vec::with_capacity(batch.len());
        for request in batch {
            let outcome = self
                .track_one(&base, client_id, client_secret, &request.tracking_number)
                .await?;
            results.push(ParcelResult {
                tracking_number: request.tracking_number.clone(),
                outcome,
            });
        }
        Ok(results)
    }
}

/// Royal Mail's answer for an error, classified: the parcel's (`E1…`) or the call's (`E0…`).
fn judge_errors(
    status: StatusCode,
    said: &EventsAnswer,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) -> Result<Result<TrackReport, ParcelError>, CarrierError> {
    let errors = said.errors.as_deref().unwrap_or_default();
    let words = said.words();
    if words.to_lowercase().contains("rate limit")
        || words.to_lowercase().contains("too many requests")
        || errors.iter().any(|e| e.code() == "E0010")
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        return Err(CarrierError::RateLimited {
            retry_after: transport::retry_after(headers),
        });
    }
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(CarrierError::Auth(format!("{status}: {words}")));
    }
    if let Some(error) = errors.iter().find(|e| e.code().starts_with("E1")) {
        return Ok(Err(match error.code() {
            // Barcode reference not recognised: a fresh label is unknown for hours.
            "E1142" => ParcelError::NotFound,
            _ => ParcelError::Rejected(words),
        }));
    }
    if status == StatusCode::NOT_FOUND && errors.is_empty() {
        return Ok(Err(ParcelError::NotFound));
    }
    // E0009 (internal error) and E0001 (service unavailable) come with a 5xx, which
    // `classify` already calls transient; a 200 carrying them is the same outage.
    if errors.iter().any(|e| matches!(e.code(), "E0001" | "E0009")) {
        return Err(CarrierError::Transient(format!("{status}: {words}")));
    }
    if status.is_success() {
        return Err(CarrierError::Permanent(format!(
            "Royal Mail answered with errors only: {words}"
        )));
    }
    Err(transport::classify(status, headers, body))
}

/// Royal Mail's estimated delivery date; the window's hours do not fit a date window.
fn estimate(estimated: &EstimatedDelivery) -> Option<DeliveryWindow> {
    let text = estimated.date.as_deref()?.trim();
    // The API sends `2017-02-20`; some proxies re-serialise it as a midnight timestamp.
    let date = text.get(..10).and_then(|d| d.parse::<Date>().ok());
    if date.is_none() {
        tracing::warn!(
            date = text,
            "Royal Mail estimated delivery date is not a date; ignored"
        );
    }
    date.map(DeliveryWindow::on)
}

/// Royal Mail's links are relative to its website.
fn absolute(href: &str) -> String {
    let href = href.trim();
    if href.starts_with("http://") || href.starts_with("https://") {
        href.to_owned()
    } else {
        format!("{WEBSITE}/{}", href.trim_start_matches('/'))
    }
}

/// The `events` answer: `mailPieces` on success, Royal Mail's error fields otherwise.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventsAnswer {
    mail_pieces: Option<MailPieces>,
    /// A string in Royal Mail's samples; a number from some gateways.
    http_code: Option<serde_json::Value>,
    http_message: Option<String>,
    more_information: Option<String>,
    errors: Option<Vec<RmError>>,
}

impl EventsAnswer {
    /// Everything Royal Mail said about the error, for the merchant to read.
    fn words(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(code) = &self.http_code {
            let code = code
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| code.to_string());
            parts.push(format!("httpCode {code}"));
        }
        parts.extend(self.http_message.iter().cloned());
        parts.extend(self.more_information.iter().cloned());
        for error in self.errors.iter().flatten() {
            let mut said = error.code().to_owned();
            for part in [&error.error_description, &error.error_cause]
                .into_iter()
                .flatten()
            {
                said.push_str(": ");
                said.push_str(part);
            }
            parts.push(said);
        }
        parts.join("; ")
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RmError {
    error_code: Option<String>,
    error_description: Option<String>,
    error_cause: Option<String>,
}

impl RmError {
    fn code(&self) -> &str {
        self.error_code
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MailPieces {
    summary: Option<Summary>,
    signature: Option<Signature>,
    estimated_delivery: Option<EstimatedDelivery>,
    events: Option<Vec<RawEvent>>,
    links: Option<Links>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    last_event_code: Option<String>,
    last_event_name: Option<String>,
    last_event_date_time: Option<String>,
    last_event_location_name: Option<String>,
    status_category: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Signature {
    recipient_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EstimatedDelivery {
    date: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    event_code: Option<String>,
    event_name: Option<String>,
    event_date_time: Option<String>,
    location_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Links {
    redelivery: Option<Link>,
}

#[derive(Debug, Deserialize)]
struct Link {
    href: Option<String>,
}

#[cfg(test)]
#[path = "royalmail_tests.rs"]
mod tests;

//! DPD (BeNeLux shipper web services): ParcelLifeCycleService 2.0 over SOAP.
//!
//! One `getTrackingData` call tracks one parcel label number. Every call carries an
//! `authentication` SOAP header with a token from DPD's LoginService (`getAuth` with the DELIS id
//! and password). A token lives about a day; it is cached per account in a [`TokenCache`] and
//! renewed shortly before it expires, and when DPD refuses it (an authentication fault) it is
//! dropped and fetched again once before the call counts as an authentication failure.
//!
//! ## Credentials (`CarrierAccount::credentials`)
//!
//! - `delis_id`: the DELIS id ("KD12345"), required;
//! - `password`: the DELIS password, required;
//! - `message_language`: optional, default `en_EN`: the language of DPD's texts, which also
//!   decides how DPD writes times (see below).
//!
//! `CarrierAccount::base_url` selects another environment (`https://wsshipper.dpd.be` for DPD
//! Belgium, `https://shipperadmintest.dpd.nl/PublicApi` for the test system); without it the
//! adapter calls [`PRODUCTION_BASE`].
//!
//! ## Times
//!
//! DPD writes times without an offset, in the layout of the message language: `8/17/2021 7:11:26
//! PM` in English, `17-8-2021 19:11:26` in Dutch, `17.08.2021 19:11:26` in German. Each is read
//! at the zone of the scan's country (`Puurs (BE)` → Europe/Brussels), else at Europe/Amsterdam.
//!
//! ## Faults
//!
//! DPD answers a failed call with a SOAP fault (HTTP 500). An authentication fault triggers one
//! new login; a fault saying the parcel is unknown is [`ParcelError::NotFound`] for that parcel;
//! another fault with DPD's own error code is [`ParcelError::Rejected`]; a bare server fault is
//! [`CarrierError::Transient`]. The fault's code and text are kept in every case.

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use std::time::Duration;

use super::delivery_to_come;
use super::profile::UnmappedCodes;
use super::timestamps::{BadTime, parse_iso, parse_local, zone_for_country};
use super::transport::{
    self, Answer, TokenAnswer, TokenCache, Transport, credential, excerpt, malformed,
};
use super::xml::Element;
use super::{
    Carrier, CarrierAccount, CarrierError, CarrierProfile, ParcelError, ParcelResult, TrackReport,
    TrackRequest,
};
use crate::domain::{DeliveryWindow, EventTime, Reason, Status, TrackingEvent, TrackingNumber};

/// DPD's data file, compiled in; a file of the same name in the carriers directory replaces it.
pub const BUNDLED_PROFILE: &str = include_str!("../../carriers/dpd.toml");

/// DPD Netherlands' production shipper web services.
pub const PRODUCTION_BASE: &str = "https://wsshipper.dpd.nl";

const LOGIN_PATH: &str = "/soap/services/LoginService/V2_1";
const TRACKING_PATH: &str = "/soap/services/ParcelLifeCycleService/V2_0";
const LOGIN_ACTION: &str = "http://dpd.com/common/service/types/LoginService/2.1/getAuth";
const TRACKING_ACTION: &str =
    "http://dpd.com/common/service/types/ParcelLifeCycleService/2.0/getTrackingData";

/// The language asked for when the account names none; DPD then writes US-style times.
const DEFAULT_LANGUAGE: &str = "en_EN";

/// Where a scan without a readable country happened, as far as its clock goes: DPD BeNeLux
/// (Amsterdam and Brussels keep the same time).
const HOME_ZONE: &str = "Europe/Amsterdam";

/// How long a token lives when DPD's login answer does not say (DPD: about a day).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The DPD adapter.
#[derive(Debug)]
pub struct Dpd {
    profile: CarrierProfile,
    transport: Transport,
    tokens: TokenCache,
    unmapped: UnmappedCodes,
}

/// What the adapter needs from an account for one call.
struct Login<'a> {
    base: String,
    delis_id: &'a str,
    password: &'a str,
    language: &'a str,
}

impl<'a> Login<'a> {
    fn of(account: &'a CarrierAccount) -> Result<Self, CarrierError> {
        Ok(Login {
            base: transport::base_url(account, PRODUCTION_BASE),
            delis_id: credential(account, "delis_id")?,
            password: credential(account, "password")?,
            language: account
                .credentials
                .expose("message_language")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or(DEFAULT_LANGUAGE),
        })
    }
}

/// What one tracking answer means.
enum Reply {
    Parcel(Result<TrackReport, ParcelError>),
    /// DPD refused the token; the words say why.
    TokenRefused(String),
}

impl Dpd {
    /// An adapter that normalises through `profile` and calls DPD through `transport`.
    pub fn new(profile: CarrierProfile, transport: Transport) -> Self {
        Dpd {
            profile,
            tokens: transport.token_cache(),
            transport,
            unmapped: UnmappedCodes::default(),
        }
    }

    /// An adapter with the bundled `carriers/dpd.toml`.
    pub fn bundled(transport: Transport) -> Self {
        let profile = CarrierProfile::from_toml("carriers/dpd.toml (bundled)", BUNDLED_PROFILE)
            .expect("the bundled carriers/dpd.toml is valid (checked by its tests)");
        Dpd::new(profile, transport)
    }

    /// Read one `getTrackingData` answer body (HTTP 200) into a report for `number`, with DPD's
    /// texts in `language`. A SOAP fault or a body that is not DPD's answer is an error.
    pub fn read_tracking(
        &self,
        number: &TrackingNumber,
        body: &str,
        language: &str,
    ) -> Result<Result<TrackReport, ParcelError>, CarrierError> {
        let answer = Answer {
            status: StatusCode::OK,
            headers: Default::default(),
            body: body.to_owned(),
        };
        match self.judge(number, &answer, language)? {
            Reply::Parcel(outcome) => Ok(outcome),
            Reply::TokenRefused(said) => Err(CarrierError::Auth(said)),
        }
    }

    /// Read a `getTrackingData` answer body (HTTP 200) for `numbers`, with DPD's texts in the
    /// language the adapter asks for by default (`en_EN`; [`Dpd::read_tracking`] reads another).
    /// The answer is about one parcel, so asking about more than one number is refused; a SOAP
    /// fault or a body that is not DPD's answer is a classified error.
    pub fn read_answer_body(
        &self,
        numbers: &[TrackingNumber],
        body: &str,
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        super::one_parcel_answer("DPD", numbers, |number| {
            self.read_tracking(number, body, DEFAULT_LANGUAGE)
        })
    }

    async fn track_one(
        &self,
        account: &CarrierAccount,
        login: &Login<'_>,
        number: &TrackingNumber,
    ) -> Result<Result<TrackReport, ParcelError>, CarrierError> {
        let url = format!("{}{TRACKING_PATH}", login.base);
        let mut logged_in_again = false;
        loop {
            let token = self.tokens.token(account.id, || self.log_in(login)).await?;
            let envelope = tracking_envelope(
                login.delis_id,
                &token,
                login.language,
                parcel_label_number(number),
            );
            let answer = self
                .transport
                .send(|client| {
                    client
                        .post(&url)
                        .header(CONTENT_TYPE, "text/xml; charset=utf-8")
                        .header("SOAPAction", TRACKING_ACTION)
                        .body(envelope.clone())
                })
                .await?;
            match self.judge(number, &answer, login.language)? {
                Reply::Parcel(outcome) => return Ok(outcome),
                Reply::TokenRefused(said) => {
                    // Tokens can be revoked before their time (a new login elsewhere, a password
                    // change): log in once more before calling the credentials wrong.
                    self.tokens.invalidate(account.id).await?;
                    if logged_in_again {
                        return Err(CarrierError::Auth(said));
                    }
                    logged_in_again = true;
                }
            }
        }
    }

    /// `getAuth`: a fresh token and how long DPD says it lives.
    async fn log_in(&self, login: &Login<'_>) -> Result<TokenAnswer, CarrierError> {
        let url = format!("{}{LOGIN_PATH}", login.base);
        let envelope = login_envelope(login.delis_id, login.password, login.language);
        let answer = self
            .transport
            .send(|client| {
                client
                    .post(&url)
                    .header(CONTENT_TYPE, "text/xml; charset=utf-8")
                    .header("SOAPAction", LOGIN_ACTION)
                    .body(envelope.clone())
            })
            .await?;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            return Err(answer.error());
        }
        let doc = Element::parse(&answer.body);
        if let Some(fault) = doc.as_ref().ok().and_then(Fault::find) {
            return Err(if fault.is_bare_server_fault() {
                CarrierError::Transient(format!("DPD login: SOAP fault {}", fault.said()))
            } else {
                // Any other fault at login is about the DELIS id or password.
                CarrierError::Auth(format!("DPD login refused: {}", fault.said()))
            });
        }
        if !answer.status.is_success() {
            return Err(match answer.error() {
                CarrierError::Permanent(said) => CarrierError::Auth(said),
                other => other,
            });
        }
        let doc = doc.map_err(|why| {
            malformed(
                format!("DPD login: not a SOAP answer ({why})"),
                &answer.body,
            )
        })?;
        let Some(login_answer) = doc.find("getAuthResponse").and_then(|r| r.child("return")) else {
            return Err(malformed(
                "DPD login: no getAuthResponse/return in the answer",
                &answer.body,
            ));
        };
        let Some(token) = login_answer.text_of("authToken") else {
            return Err(malformed(
                "DPD login: the answer has no authToken",
                &answer.body,
            ));
        };
        let now = Timestamp::now();
        let lifetime = login_answer
            .text_of("authTokenExpires")
            .and_then(|text| parse_iso(text, Some(&home_zone())).ok())
            .map(|expires| {
                // A token DPD already calls expired is used for this call only.
                u64::try_from(expires.at.duration_since(now).as_secs()).unwrap_or(0)
            })
            .unwrap_or(DEFAULT_TOKEN_LIFETIME.as_secs());
        Ok(TokenAnswer {
            access_token: token.into(),
            expires_in: Some(lifetime),
        })
    }

    /// What an answer to `getTrackingData` means.
    fn judge(
        &self,
        number: &TrackingNumber,
        answer: &Answer,
        language: &str,
    ) -> Result<Reply, CarrierError> {
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            return Err(answer.error());
        }
        let doc = Element::parse(&answer.body);
        if let Some(fault) = doc.as_ref().ok().and_then(Fault::find) {
            return fault.judge();
        }
        if matches!(
            answer.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Ok(Reply::TokenRefused(format!(
                "{}: {}",
                answer.status,
                excerpt(&answer.body)
            )));
        }
        if !answer.status.is_success() {
            return Err(answer.error());
        }
        let doc = doc.map_err(|why| {
            malformed(
                format!("DPD tracking: not a SOAP answer ({why})"),
                &answer.body,
            )
        })?;
        let Some(response) = doc.find("getTrackingDataResponse") else {
            return Err(malformed(
                format!(
                    "DPD tracking: expected a getTrackingDataResponse, got <{}>",
                    doc.name
                ),
                &answer.body,
            ));
        };
        let Some(result) = response.child("trackingresult") else {
            return Ok(Reply::Parcel(Err(ParcelError::Malformed {
                detail: "getTrackingDataResponse without its trackingresult".into(),
                excerpt: excerpt(&response.render()),
            })));
        };
        Ok(Reply::Parcel(self.report(number, result, language)))
    }

    /// The report in one `trackingresult`.
    fn report(
        &self,
        number: &TrackingNumber,
        result: &Element,
        language: &str,
    ) -> Result<TrackReport, ParcelError> {
        let home = home_zone();
        let mut events = Vec::new();
        for info in result.children("statusInfo") {
            // DPD Germany lists its five milestones whether reached or not; only reached ones
            // are scans.
            if info.text_of("statusHasBeenReached") == Some("false") {
                continue;
            }
            let Some(code) = info.text_of("status") else {
                return Err(ParcelError::Malformed {
                    detail: "a statusInfo without its status code".into(),
                    excerpt: excerpt(&info.render()),
                });
            };
            // A milestone without a date cannot be placed on a timeline (the schema makes the
            // date optional); the dated scans around it tell the story.
            let Some(date) = info.child("date").and_then(|d| d.text_of("content")) else {
                continue;
            };
            let place = info
                .child("location")
                .and_then(|l| l.text_of("content"))
                .map(Place::parse);
            let zone = place
                .as_ref()
                .and_then(|p| p.country.as_deref())
                .and_then(zone_for_country)
                .unwrap_or_else(|| home.clone());
            let time = parse_time(date, language, &zone).map_err(|e| ParcelError::Malformed {
                detail: format!("statusInfo `{code}`: {e}"),
                excerpt: excerpt(&info.render()),
            })?;
            let (status, reason) = self.meaning(code);
            events.push(TrackingEvent {
                time,
                status,
                reason,
                raw_code: code.to_owned(),
                raw_text: description(info).unwrap_or_else(|| code.to_owned()),
                location: place.map(|p| p.label()),
            });
        }
        if events.is_empty() {
            // DPD knows the label at best, but no parcel has been scanned: nothing to tell yet.
            return Err(ParcelError::NotFound);
        }
        let estimate = result
            .child("shipmentInfo")
            .and_then(|info| info.child("predictInformation"))
            .and_then(|predict| predicted_date(predict, language))
            .map(DeliveryWindow::on);
        let latest = events.iter().max_by_key(|e| e.time.at);
        let change_delivery_url = latest
            .filter(|e| delivery_to_come(e.status, e.reason))
            .and_then(|_| {
                self.profile
                    .delivery_change_links(number)
                    .into_iter()
                    .next()
            })
            .map(|(_, url)| url);
        Ok(TrackReport {
            events,
            estimate,
            signed_by: None,
            pickup_point: None,
            change_delivery_url,
            other_parcels: Vec::new(),
        })
    }

    /// The normalised meaning of a DPD status code; a code the mapping lacks is kept as moving
    /// (DPD has no coarser category to fall back on) and logged once.
    fn meaning(&self, code: &str) -> (Status, Option<Reason>) {
        if let Some(mapping) = self.profile.normalise(code) {
            return (mapping.status, mapping.reason);
        }
        if self.unmapped.first_time(code) {
            tracing::warn!(
                carrier = %self.profile.code,
                code,
                "DPD status code not in the mapping (carriers/dpd.toml); kept as in_transit"
            );
        }
        (Status::InTransit, None)
    }
}

#[async_trait]
impl Carrier for Dpd {
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
        let login = Login::of(account)?;
        // getTrackingData takes one parcel per call, so a batch is a run of calls, in order.
        let mut results = Vec::with_capacity(batch.len());
        for request in batch {
            let outcome = self
                .track_one(account, &login, &request.tracking_number)
                .await?;
            results.push(ParcelResult {
                tracking_number: request.tracking_number.clone(),
                outcome,
            });
        }
        Ok(results)
    }
}

/// A SOAP fault, with DPD's own error code and message when its detail has them.
#[derive(Debug)]
struct Fault {
    fault_code: String,
    fault_string: String,
    /// The detail's element: `authenticationFault`, `faults`, ...
    kind: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
}

impl Fault {
    fn find(doc: &Element) -> Option<Fault> {
        let fault = doc.find("Fault")?;
        let detail = fault.child("detail").and_then(|d| d.children.first());
        let detail_text = |names: &[&str]| {
            detail.and_then(|d| {
                names
                    .iter()
                    .find_map(|name| d.text_of(name).or_else(|| d.find(name).map(|e| e.text())))
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
            })
        };
        Some(Fault {
            fault_code: fault.text_of("faultcode").unwrap_or_default().to_owned(),
            fault_string: fault.text_of("faultstring").unwrap_or_default().to_owned(),
            kind: detail.map(|d| d.name.clone()),
            error_code: detail_text(&["errorCode", "faultCode"]),
            error_message: detail_text(&["errorMessage", "message"]),
        })
    }

    /// The fault in DPD's words: its error code and message, then the SOAP code and string.
    fn said(&self) -> String {
        let soap = format!("{}: {}", self.fault_code, self.fault_string);
        match (&self.error_code, &self.error_message) {
            (Some(code), Some(message)) => format!("{code}: {message} ({soap})"),
            (Some(code), None) => format!("{code} ({soap})"),
            (None, Some(message)) => format!("{message} ({soap})"),
            (None, None) => soap,
        }
    }

    fn is_auth(&self) -> bool {
        let code = self.error_code.as_deref().unwrap_or_default();
        self.kind
            .as_deref()
            .is_some_and(|k| k.to_ascii_lowercase().contains("authentication"))
            || code.starts_with("LOGIN_")
            || code.to_ascii_uppercase().contains("AUTHENTICATION")
    }

    fn is_not_found(&self) -> bool {
        let words = format!(
            "{} {} {}",
            self.error_code.as_deref().unwrap_or_default(),
            self.error_message.as_deref().unwrap_or_default(),
            self.fault_string
        )
        .to_ascii_lowercase();
        [
            "not found",
            "not_found",
            "notfound",
            "unknown parcel",
            "no data",
            "no tracking",
        ]
        .iter()
        .any(|needle| words.contains(needle))
    }

    /// A server fault that names no DPD error: something broke on DPD's side.
    fn is_bare_server_fault(&self) -> bool {
        self.error_code.is_none() && !self.fault_code.ends_with("Client")
    }

    fn judge(&self) -> Result<Reply, CarrierError> {
        if self.is_auth() {
            return Ok(Reply::TokenRefused(format!(
                "DPD refused the token: {}",
                self.said()
            )));
        }
        if self.is_not_found() {
            return Ok(Reply::Parcel(Err(ParcelError::NotFound)));
        }
        if self.is_bare_server_fault() {
            return Err(CarrierError::Transient(format!(
                "DPD tracking: SOAP fault {}",
                self.said()
            )));
        }
        Ok(Reply::Parcel(Err(ParcelError::Rejected(self.said()))))
    }
}

/// A scan location as DPD writes it: `Puurs (BE)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    city: String,
    country: Option<String>,
}

impl Place {
    fn parse(text: &str) -> Place {
        let text = text.trim();
        if let Some(open) = text.rfind('(') {
            let inner = text[open + 1..].trim_end_matches(')').trim();
            if text.ends_with(')')
                && inner.len() == 2
                && inner.chars().all(|c| c.is_ascii_alphabetic())
            {
                return Place {
                    city: text[..open].trim().to_owned(),
                    country: Some(inner.to_ascii_uppercase()),
                };
            }
        }
        Place {
            city: text.to_owned(),
            country: None,
        }
    }

    /// "Puurs, BE".
    fn label(&self) -> String {
        match &self.country {
            Some(country) if !self.city.is_empty() => format!("{}, {country}", self.city),
            Some(country) => country.clone(),
            None => self.city.clone(),
        }
    }
}

fn home_zone() -> TimeZone {
    TimeZone::get(HOME_ZONE).unwrap_or(TimeZone::UTC)
}

/// Whether English is asked for: DPD then writes dates month first.
fn month_first(language: &str, text: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    upper.ends_with("AM")
        || upper.ends_with("PM")
        || language.trim().to_ascii_lowercase().starts_with("en")
}

/// A DPD time in the layout of `language`, local to `zone`.
fn parse_time(text: &str, language: &str, zone: &TimeZone) -> Result<EventTime, BadTime> {
    const MONTH_FIRST: [&str; 4] = [
        "%m/%d/%Y %I:%M:%S %p",
        "%m/%d/%Y %I:%M %p",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %H:%M",
    ];
    const DAY_FIRST: [&str; 2] = ["%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"];
    const OTHERS: [&str; 4] = [
        "%d.%m.%Y %H:%M:%S",
        "%d.%m.%Y %H:%M",
        "%d-%m-%Y %H:%M:%S",
        "%d-%m-%Y %H:%M",
    ];
    let slashes: &[&str] = if month_first(language, text) {
        &MONTH_FIRST
    } else {
        &DAY_FIRST
    };
    slashes
        .iter()
        .chain(OTHERS.iter())
        .find_map(|format| parse_local(text, format, Some(zone)).ok())
        .map_or_else(|| parse_iso(text, Some(zone)), Ok)
}

/// The scan's description: DPD's content lines, else its label.
fn description(info: &Element) -> Option<String> {
    let lines: Vec<&str> = info
        .child("description")
        .map(|d| {
            d.children("content")
                .filter_map(|line| line.text_of("content"))
                .collect()
        })
        .unwrap_or_default();
    if !lines.is_empty() {
        return Some(lines.join(" "));
    }
    info.child("label")
        .and_then(|l| l.text_of("content"))
        .map(str::to_owned)
}

/// The date in DPD's Predict text ("Your parcel will be delivered on 19.08.2021 between 10:30
/// and 11:30"). DPD sends the prediction as display text only, so the first date in it is taken.
fn predicted_date(predict: &Element, language: &str) -> Option<Date> {
    let mut texts: Vec<&str> = Vec::new();
    if let Some(label) = predict.child("label").and_then(|l| l.text_of("content")) {
        texts.push(label);
    }
    texts.extend(
        predict
            .children("content")
            .filter_map(|line| line.text_of("content")),
    );
    let slashes = if month_first(language, "") {
        "%m/%d/%Y"
    } else {
        "%d/%m/%Y"
    };
    texts
        .iter()
        .flat_map(|text| text.split(|c: char| c.is_whitespace() || c == ',' || c == ';'))
        .map(|word| word.trim_matches(|c: char| !c.is_ascii_digit()))
        .filter(|word| word.len() >= 8)
        .find_map(|word| {
            [slashes, "%d.%m.%Y", "%d-%m-%Y", "%Y-%m-%d"]
                .iter()
                .find_map(|format| Date::strptime(format, word).ok())
        })
}

fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(text)
}

/// The `getAuth` request, as DPD's LoginService 2.1 expects it.
fn login_envelope(delis_id: &str, password: &str, language: &str) -> String {
    format!(
        concat!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" "#,
            r#"xmlns:ns="http://dpd.com/common/service/types/LoginService/2.1">"#,
            "<soapenv:Header/><soapenv:Body><ns:getAuth>",
            "<delisId>{}</delisId><password>{}</password><messageLanguage>{}</messageLanguage>",
            "</ns:getAuth></soapenv:Body></soapenv:Envelope>"
        ),
        escape(delis_id),
        escape(password),
        escape(language)
    )
}

/// The 14-digit parcel label number `getTrackingData` takes, from what a merchant may have
/// registered: that number, the number followed by its check character (as printed under the
/// barcode), or the whole 28-character label barcode (destination postcode, parcel number,
/// service, country, check character).
fn parcel_label_number(number: &TrackingNumber) -> &str {
    let text = number.as_str();
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    match text.len() {
        15 if digits(&text[..14]) => &text[..14],
        28 if digits(&text[..27]) => &text[7..21],
        _ => text,
    }
}

/// The `getTrackingData` request for one parcel, with the authentication header.
fn tracking_envelope(delis_id: &str, token: &str, language: &str, parcel: &str) -> String {
    format!(
        concat!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" "#,
            r#"xmlns:ns="http://dpd.com/common/service/types/Authentication/2.0" "#,
            r#"xmlns:ns1="http://dpd.com/common/service/types/ParcelLifeCycleService/2.0">"#,
            "<soapenv:Header><ns:authentication>",
            "<delisId>{}</delisId><authToken>{}</authToken><messageLanguage>{}</messageLanguage>",
            "</ns:authentication></soapenv:Header>",
            "<soapenv:Body><ns1:getTrackingData><parcelLabelNumber>{}</parcelLabelNumber>",
            "</ns1:getTrackingData></soapenv:Body></soapenv:Envelope>"
        ),
        escape(delis_id),
        escape(token),
        escape(language),
        escape(parcel)
    )
}

#[cfg(test)]
#[path = "dpd_tests.rs"]
mod tests;

//! A shipment and the validated values it is made of ("parse, don't validate").

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

use super::estimate::DeliveryWindow;
use super::status::{Reason, Status};

/// A value refused at the door, naming the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidField {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        InvalidField {
            field,
            reason: reason.into(),
        }
    }
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A carrier's tracking number: upper case, no spaces, 4 to 40 letters, digits or dashes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrackingNumber(String);
string_newtype!(TrackingNumber);

impl TrackingNumber {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let field = "tracking_number";
        let cleaned: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        if cleaned.is_empty() {
            return Err(InvalidField::new(field, "is empty"));
        }
        if let Some(bad) = cleaned
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(InvalidField::new(
                field,
                format!("`{raw}` contains `{bad}`; only letters, digits and dashes are allowed"),
            ));
        }
        if !(4..=40).contains(&cleaned.len()) {
            return Err(InvalidField::new(
                field,
                format!("`{raw}` has {} characters; expected 4 to 40", cleaned.len()),
            ));
        }
        Ok(TrackingNumber(cleaned))
    }
}

impl TryFrom<String> for TrackingNumber {
    type Error = InvalidField;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        TrackingNumber::parse(&value)
    }
}
impl From<TrackingNumber> for String {
    fn from(value: TrackingNumber) -> Self {
        value.0
    }
}

/// A customer's email address, checked with the same parser that later sends to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);
string_newtype!(EmailAddress);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let trimmed = raw.trim();
        trimmed.parse::<lettre::Address>().map_err(|e| {
            InvalidField::new(
                "customer_email",
                format!("`{trimmed}` is not an address: {e}"),
            )
        })?;
        Ok(EmailAddress(trimmed.to_owned()))
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = InvalidField;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        EmailAddress::parse(&value)
    }
}
impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

/// A language Waymark writes to customers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    De,
    Pl,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::En, Language::De, Language::Pl];
    /// Used when a template is missing in the customer's language.
    pub const FALLBACK: Language = Language::En;

    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
            Language::Pl => "pl",
        }
    }
}

/// A customer's locale: a BCP 47 tag whose language Waymark has templates for (`de`, `de-AT`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Locale {
    tag: String,
    language: Language,
}

impl Locale {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let field = "locale";
        let tag = raw.trim().replace('_', "-");
        let mut parts = tag.split('-');
        let primary = parts.next().unwrap_or_default().to_ascii_lowercase();
        let well_formed = (2..=3).contains(&primary.len())
            && primary.chars().all(|c| c.is_ascii_alphabetic())
            && parts.all(|p| {
                (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric())
            });
        if !well_formed {
            return Err(InvalidField::new(
                field,
                format!("`{raw}` is not a language tag like `en` or `de-AT`"),
            ));
        }
        let language = Language::ALL
            .into_iter()
            .find(|l| l.as_str() == primary)
            .ok_or_else(|| {
                InvalidField::new(
                    field,
                    format!("`{raw}` is not a supported language; supported: en, de, pl"),
                )
            })?;
        let mut normalised = primary.clone();
        for part in tag.split('-').skip(1) {
            normalised.push('-');
            if part.len() == 2 {
                normalised.push_str(&part.to_ascii_uppercase());
            } else {
                normalised.push_str(part);
            }
        }
        Ok(Locale {
            tag: normalised,
            language,
        })
    }

    pub fn language(&self) -> Language {
        self.language
    }

    pub fn as_str(&self) -> &str {
        &self.tag
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag)
    }
}
impl TryFrom<String> for Locale {
    type Error = InvalidField;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Locale::parse(&value)
    }
}
impl From<Locale> for String {
    fn from(value: Locale) -> Self {
        value.tag
    }
}

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(String);
string_newtype!(CountryCode);

impl CountryCode {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() != 2 || !code.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(InvalidField::new(
                "destination_country",
                format!("`{raw}` is not a two-letter country code like DE"),
            ));
        }
        Ok(CountryCode(code))
    }
}
impl TryFrom<String> for CountryCode {
    type Error = InvalidField;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CountryCode::parse(&value)
    }
}
impl From<CountryCode> for String {
    fn from(value: CountryCode) -> Self {
        value.0
    }
}

/// An IANA time zone name (`Europe/Berlin`) known to the bundled time-zone database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZoneName(String);
string_newtype!(TimeZoneName);

impl TimeZoneName {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let name = raw.trim();
        jiff::tz::TimeZone::get(name).map_err(|_| {
            InvalidField::new(
                "time_zone",
                format!("`{raw}` is not a time zone like Europe/Berlin"),
            )
        })?;
        Ok(TimeZoneName(name.to_owned()))
    }

    /// The zone most people in `country` live in (for shipments and scans that name none).
    pub fn default_for(country: &CountryCode) -> Option<&'static str> {
        Some(match country.as_str() {
            "AT" => "Europe/Vienna",
            "BE" => "Europe/Brussels",
            "CH" => "Europe/Zurich",
            "CZ" => "Europe/Prague",
            "DE" => "Europe/Berlin",
            "DK" => "Europe/Copenhagen",
            "ES" => "Europe/Madrid",
            "FR" => "Europe/Paris",
            "GB" => "Europe/London",
            "IE" => "Europe/Dublin",
            "IT" => "Europe/Rome",
            "LU" => "Europe/Luxembourg",
            "NL" => "Europe/Amsterdam",
            "PL" => "Europe/Warsaw",
            "PT" => "Europe/Lisbon",
            "SE" => "Europe/Stockholm",
            "US" => "America/New_York",
            "CA" => "America/Toronto",
            "AU" => "Australia/Sydney",
            _ => return None,
        })
    }

    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        // Validated at parse time; UTC only if the database changed underneath us.
        jiff::tz::TimeZone::get(&self.0).unwrap_or(jiff::tz::TimeZone::UTC)
    }
}
impl TryFrom<String> for TimeZoneName {
    type Error = InvalidField;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        TimeZoneName::parse(&value)
    }
}
impl From<TimeZoneName> for String {
    fn from(value: TimeZoneName) -> Self {
        value.0
    }
}

/// A carrier's short code (`dhl`, `ups`, `sandbox`), as named by its file in `carriers/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CarrierCode(String);
string_newtype!(CarrierCode);

impl CarrierCode {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let code = raw.trim().to_ascii_lowercase();
        if code.is_empty()
            || code.len() > 32
            || !code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(InvalidField::new(
                "carrier",
                format!("`{raw}` is not a carrier code like `dhl`"),
            ));
        }
        Ok(CarrierCode(code))
    }
}
impl TryFrom<String> for CarrierCode {
    type Error = InvalidField;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CarrierCode::parse(&value)
    }
}
impl From<CarrierCode> for String {
    fn from(value: CarrierCode) -> Self {
        value.0
    }
}

/// A pickup point or locker where a parcel waits for the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickupPoint {
    pub name: String,
    pub address: Option<String>,
    /// The last day the parcel is held before it goes back to the merchant.
    pub hold_until: Option<jiff::civil::Date>,
}

/// The person the parcel is for, and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub email: EmailAddress,
    pub name: Option<String>,
    pub locale: Locale,
    /// Where the customer lives; quiet hours and dates are shown in this zone.
    pub time_zone: TimeZoneName,
}

/// A shipment as a merchant registers it, already validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewShipment {
    pub carrier_account_id: Uuid,
    pub carrier: CarrierCode,
    pub tracking_number: TrackingNumber,
    pub customer: Customer,
    pub destination_country: CountryCode,
    pub order_reference: Option<String>,
    pub promise: Option<DeliveryWindow>,
}

/// What Waymark currently knows about a shipment's journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JourneyState {
    pub status: Status,
    pub reason: Option<Reason>,
    /// The carrier's latest delivery estimate.
    pub carrier_estimate: Option<DeliveryWindow>,
    /// The time of the latest scan, if any.
    pub last_event_at: Option<Timestamp>,
    /// False once the journey is over (delivered, returned, lost, expired): no more polls.
    pub active: bool,
}

impl JourneyState {
    pub fn new_shipment() -> Self {
        JourneyState {
            status: Status::Pending,
            reason: None,
            carrier_estimate: None,
            last_event_at: None,
            active: true,
        }
    }
}

/// A registered shipment, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub id: Uuid,
    pub carrier_account_id: Uuid,
    pub carrier: CarrierCode,
    pub tracking_number: TrackingNumber,
    pub customer: Customer,
    pub destination_country: CountryCode,
    pub order_reference: Option<String>,
    pub promise: Option<DeliveryWindow>,
    pub created_at: Timestamp,
    /// Unguessable token in the customer's tracking-page and unsubscribe links.
    pub public_token: String,
    /// The customer asked for no more messages about this shipment.
    pub muted: bool,
    pub journey: JourneyState,
    /// Consecutive failed polls, for back-off.
    pub poll_failures: u32,
    /// The last poll error, kept for the merchant.
    pub last_error: Option<String>,
    /// How often the shipment was fetched in the carrier's latest day (per-shipment caps).
    pub fetched: Option<FetchCount>,
}

/// How many times a shipment was fetched from its carrier in one of the carrier's days (the
/// days its quotas count, e.g. midnight to midnight UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchCount {
    /// The carrier day, named after the date it started.
    pub day: String,
    pub count: u32,
}

impl FetchCount {
    /// The count once one more fetch is made in `day`, after `before`.
    pub fn one_more(before: Option<&FetchCount>, day: &str) -> FetchCount {
        match before {
            Some(before) if before.day == day => FetchCount {
                day: day.to_owned(),
                count: before.count.saturating_add(1),
            },
            _ => FetchCount {
                day: day.to_owned(),
                count: 1,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_numbers_are_normalised_or_refused_with_the_field() {
        assert_eq!(
            TrackingNumber::parse(" 1z 999 aa1 ").unwrap().as_str(),
            "1Z999AA1"
        );
        let err = TrackingNumber::parse("12/34").unwrap_err();
        assert_eq!(err.field, "tracking_number");
        assert!(err.reason.contains('/'));
        assert!(
            TrackingNumber::parse("ab")
                .unwrap_err()
                .reason
                .contains("4 to 40")
        );
    }

    #[test]
    fn email_addresses_are_checked() {
        assert!(EmailAddress::parse("anna@example.com").is_ok());
        let err = EmailAddress::parse("anna.example.com").unwrap_err();
        assert_eq!(err.field, "customer_email");
        assert_eq!(
            err.to_string(),
            "customer_email: `anna.example.com` is not an address: Missing domain or user"
        );
    }

    #[test]
    fn locales_must_be_supported_languages() {
        let at = Locale::parse("de_at").unwrap();
        assert_eq!(at.as_str(), "de-AT");
        assert_eq!(at.language(), Language::De);
        assert_eq!(Locale::parse("pl").unwrap().language(), Language::Pl);
        let err = Locale::parse("fr-FR").unwrap_err();
        assert_eq!(err.field, "locale");
        assert!(err.reason.contains("not a supported language"));
        assert!(
            Locale::parse("english!")
                .unwrap_err()
                .reason
                .contains("language tag")
        );
    }

    #[test]
    fn countries_time_zones_and_carriers_are_checked() {
        assert_eq!(CountryCode::parse("de").unwrap().as_str(), "DE");
        assert_eq!(
            CountryCode::parse("DEU").unwrap_err().field,
            "destination_country"
        );
        assert!(TimeZoneName::parse("Europe/Warsaw").is_ok());
        assert_eq!(
            TimeZoneName::parse("Mars/Olympus").unwrap_err().field,
            "time_zone"
        );
        assert_eq!(CarrierCode::parse(" DHL ").unwrap().as_str(), "dhl");
        assert_eq!(CarrierCode::parse("dh l").unwrap_err().field, "carrier");
    }
}

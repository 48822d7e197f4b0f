//! A shipment and the validated values it is made of ("parse, don't validate").

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

use super::estimate::DeliveryWindow;
use super::merchant::MerchantId;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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

/// A customer's locale: a well-formed BCP 47 tag (`de`, `de-AT`, `fr-CA`), or `und` when the
/// merchant did not say. Waymark writes in its language where it has templates for it; for any
/// other (and for `und`) the tracking page follows the browser's `Accept-Language` and messages
/// the merchant's language.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Locale {
    tag: String,
    language: Option<Language>,
}

impl Locale {
    /// The tag BCP 47 reserves for "undetermined": a customer whose language nobody gave.
    pub const UNDETERMINED: &'static str = "und";

    /// A customer whose language the merchant did not give.
    pub fn undetermined() -> Self {
        Locale {
            tag: Self::UNDETERMINED.to_owned(),
            language: None,
        }
    }

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
        let language = Language::ALL.into_iter().find(|l| l.as_str() == primary);
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

    /// The language Waymark writes to this customer in, if it has templates for theirs.
    pub fn language(&self) -> Option<Language> {
        self.language
    }

    /// The customer's language where Waymark writes it, else `fallback`.
    pub fn language_or(&self, fallback: Language) -> Language {
        self.language.unwrap_or(fallback)
    }

    /// False for `und`: nobody said which language the customer reads.
    pub fn is_determined(&self) -> bool {
        self.tag != Self::UNDETERMINED
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

/// A customer's phone number in E.164 form (`+4915112345678`): read as the customer's country
/// writes it (`0151 1234 5678` in Germany) or in international form, and checked against the
/// numbering plan of the country it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);
string_newtype!(PhoneNumber);

impl PhoneNumber {
    /// `raw` as a number of `country` unless it says otherwise (`+…`, `00…`).
    pub fn parse(raw: &str, country: &CountryCode) -> Result<Self, InvalidField> {
        let field = "customer_phone";
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.len() > 40 {
            return Err(InvalidField::new(field, "must be 1 to 40 characters"));
        }
        let region = country.as_str().parse::<phonenumber::country::Id>().ok();
        let number = phonenumber::parse(region, trimmed)
            .map_err(|e| InvalidField::new(field, format!("not a phone number: {e}")))?;
        if !phonenumber::is_valid(&number) {
            return Err(InvalidField::new(
                field,
                "not a number in use in its country's numbering plan",
            ));
        }
        Ok(PhoneNumber(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = InvalidField;
    /// A stored number, already E.164.
    fn try_from(e164: String) -> Result<Self, InvalidField> {
        let valid = e164.starts_with('+')
            && (8..=16).contains(&e164.len())
            && e164[1..].chars().all(|c| c.is_ascii_digit());
        if valid {
            Ok(PhoneNumber(e164))
        } else {
            Err(InvalidField::new("customer_phone", "not in E.164 form"))
        }
    }
}

impl From<PhoneNumber> for String {
    fn from(phone: PhoneNumber) -> String {
        phone.0
    }
}

/// A destination postal code, written the way its country writes it (`94105`, `V6B 1A1`,
/// `00-950`, `SW1A 1AA`): trimmed, upper case, spaces and dashes where the country puts them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PostalCode(String);
string_newtype!(PostalCode);

impl PostalCode {
    /// Check `raw` against the format of `country`'s postal codes where that format is simple,
    /// else against the shape of any postal code (2 to 10 letters, digits, spaces or dashes),
    /// and write it the country's way.
    pub fn parse(country: &CountryCode, raw: &str) -> Result<Self, InvalidField> {
        let trimmed = raw.trim();
        let compact: String = trimmed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect::<String>()
            .to_ascii_uppercase();
        let digits = |n: usize| compact.len() == n && compact.bytes().all(|b| b.is_ascii_digit());
        let split = |at: usize, sep: &str| format!("{}{sep}{}", &compact[..at], &compact[at..]);
        let (code, expected) = match country.as_str() {
            "US" => (
                if digits(5) {
                    Some(compact.clone())
                } else {
                    digits(9).then(|| split(5, "-"))
                },
                "5 digits like 94105, or 9 like 94105-1234",
            ),
            "CA" => (
                is_canadian(&compact).then(|| split(3, " ")),
                "letter, digit, letter, digit, letter, digit like V6B 1A1",
            ),
            "AU" | "AT" | "BE" | "CH" | "DK" | "LU" => {
                (digits(4).then(|| compact.clone()), "4 digits")
            }
            "DE" | "FR" | "IT" => (digits(5).then(|| compact.clone()), "5 digits"),
            "ES" => {
                let province = compact.get(..2).and_then(|p| p.parse::<u8>().ok());
                let known = province.is_some_and(|p| (1..=52).contains(&p));
                (
                    (digits(5) && known).then(|| compact.clone()),
                    "5 digits starting with a province, 01 to 52",
                )
            }
            "CZ" | "SE" => (digits(5).then(|| split(3, " ")), "5 digits like 110 00"),
            "PL" => (digits(5).then(|| split(2, "-")), "5 digits like 00-950"),
            "PT" => (digits(7).then(|| split(4, "-")), "7 digits like 1100-148"),
            "NL" => (
                is_dutch(&compact).then(|| split(4, " ")),
                "4 digits and 2 letters like 1012 JS",
            ),
            "GB" => (
                is_british(&compact).then(|| split(compact.len() - 3, " ")),
                "an outward and an inward code like SW1A 1AA",
            ),
            "IE" => (
                is_eircode(&compact).then(|| split(3, " ")),
                "an Eircode like D02 X285",
            ),
            _ => (
                PostalCode::shaped(trimmed).map(|p| p.0),
                "2 to 10 letters, digits, spaces or dashes",
            ),
        };
        code.map(PostalCode).ok_or_else(|| {
            InvalidField::new(
                "destination_postal_code",
                format!("`{trimmed}` is not a {country} postal code: expected {expected}"),
            )
        })
    }

    /// The code if it has the shape of any postal code: how a stored one is read back, so that
    /// a code taken in under older rules still reads.
    fn shaped(raw: &str) -> Option<PostalCode> {
        let code = raw
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase();
        let fits = (2..=10).contains(&code.len())
            && code.starts_with(|c: char| c.is_ascii_alphanumeric())
            && code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
        fits.then_some(PostalCode(code))
    }

    /// Its letters and digits alone (`V6B1A1`, `941051234`), as the zone table reads it.
    pub fn alphanumerics(&self) -> String {
        self.0.chars().filter(char::is_ascii_alphanumeric).collect()
    }
}

/// `A1A1A1`, with the letters Canada Post uses (never D, F, I, O, Q or U; W and Z not first).
fn is_canadian(code: &str) -> bool {
    let b = code.as_bytes();
    let letter = |c: u8| c.is_ascii_uppercase() && !b"DFIOQU".contains(&c);
    b.len() == 6
        && letter(b[0])
        && !b"WZ".contains(&b[0])
        && b[1].is_ascii_digit()
        && letter(b[2])
        && b[3].is_ascii_digit()
        && letter(b[4])
        && b[5].is_ascii_digit()
}

/// `1234AB`: four digits, the first not 0, then two letters.
fn is_dutch(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 6
        && (b'1'..=b'9').contains(&b[0])
        && b[1..4].iter().all(u8::is_ascii_digit)
        && b[4..].iter().all(u8::is_ascii_uppercase)
}

/// An outward code (`A9`, `A99`, `A9A`, `AA9`, `AA99`, `AA9A`) and an inward one (`9AA`).
fn is_british(code: &str) -> bool {
    if code == "GIR0AA" {
        return true;
    }
    let b = code.as_bytes();
    if !(5..=7).contains(&b.len()) {
        return false;
    }
    let (outward, inward) = b.split_at(b.len() - 3);
    let inward_ok = inward[0].is_ascii_digit() && inward[1..].iter().all(u8::is_ascii_uppercase);
    let shape: String = outward
        .iter()
        .map(|c| if c.is_ascii_digit() { '9' } else { 'A' })
        .collect();
    let outward_ok = outward.iter().all(u8::is_ascii_alphanumeric)
        && ["A9", "A99", "A9A", "AA9", "AA99", "AA9A"].contains(&shape.as_str());
    inward_ok && outward_ok
}

/// An Eircode: a routing key (a letter and two digits, or Dublin's `D6W`) and four letters or
/// digits.
fn is_eircode(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 7
        && (b.starts_with(b"D6W")
            || (b[0].is_ascii_uppercase() && b[1].is_ascii_digit() && b[2].is_ascii_digit()))
        && b[3..].iter().all(u8::is_ascii_alphanumeric)
}

impl TryFrom<String> for PostalCode {
    type Error = InvalidField;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PostalCode::shaped(&value).ok_or_else(|| {
            InvalidField::new(
                "destination_postal_code",
                format!("`{value}` is not a postal code"),
            )
        })
    }
}
impl From<PostalCode> for String {
    fn from(value: PostalCode) -> Self {
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

    /// The zone a carrier scan in `country` that names no place is read in: the country's zone,
    /// or for a country that spans several the one most scans happen in. A customer's zone is
    /// never guessed from it: see [`ZoneTable::customer_zone`](super::zones::ZoneTable).
    pub fn default_for(country: &CountryCode) -> Option<&'static str> {
        super::zones::ZoneTable::bundled()
            .main_zone(country)
            .map(TimeZoneName::as_str)
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
    /// Where messages go; `None` once the customer's personal data was erased.
    pub email: Option<EmailAddress>,
    pub name: Option<String>,
    /// For text messages, E.164; `None` when not given or erased.
    #[serde(default)]
    pub phone: Option<PhoneNumber>,
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
    /// Where given: it places the customer in their zone, and later features rely on it.
    pub destination_postal_code: Option<PostalCode>,
    pub order_reference: Option<String>,
    pub promise: Option<DeliveryWindow>,
    /// What the order is worth, for the merchant's delivery-change policy.
    pub order_value: Option<super::delivery_change::Money>,
    /// The carrier must get a signature: the delivery cannot be redirected.
    pub signature_required: bool,
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
    /// The merchant whose carrier account it is registered on.
    pub merchant_id: MerchantId,
    pub carrier_account_id: Uuid,
    pub carrier: CarrierCode,
    pub tracking_number: TrackingNumber,
    pub customer: Customer,
    pub destination_country: CountryCode,
    pub destination_postal_code: Option<PostalCode>,
    pub order_reference: Option<String>,
    pub promise: Option<DeliveryWindow>,
    /// What the order is worth, for the merchant's delivery-change policy.
    pub order_value: Option<super::delivery_change::Money>,
    /// The carrier must get a signature: the delivery cannot be redirected.
    pub signature_required: bool,
    pub created_at: Timestamp,
    /// The random token of the customer's links for shipments registered before links carried
    /// their own proof (`v2:<id>` for later ones, which no link uses): their emails still work.
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
    /// When the customer's personal data (address, name, postal code, what carriers said about
    /// who took the parcel) was erased: what is left is anonymous delivery statistics.
    pub erased_at: Option<Timestamp>,
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
    fn phone_numbers_are_kept_as_e164_read_in_the_customers_country() {
        let de = CountryCode::parse("DE").unwrap();
        let pl = CountryCode::parse("PL").unwrap();
        let phone = |raw: &str, country: &CountryCode| PhoneNumber::parse(raw, country);
        assert_eq!(
            phone("0151 23456789", &de).unwrap().as_str(),
            "+4915123456789"
        );
        assert_eq!(
            phone("+48 512 345 678", &de).unwrap().as_str(),
            "+48512345678"
        );
        assert_eq!(phone("512-345-678", &pl).unwrap().as_str(), "+48512345678");
        assert_eq!(
            phone("0048 512 345 678", &de).unwrap().as_str(),
            "+48512345678"
        );
        for bad in ["", "hello", "0151", "+49 000 0000000", &"1".repeat(41)] {
            assert_eq!(
                phone(bad, &de).unwrap_err().field,
                "customer_phone",
                "{bad:?}"
            );
        }
        assert!(PhoneNumber::try_from("+4915123456789".to_owned()).is_ok());
        assert!(PhoneNumber::try_from("015123456789".to_owned()).is_err());
    }

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
    fn locales_are_language_tags_and_waymark_knows_some_of_their_languages() {
        let at = Locale::parse("de_at").unwrap();
        assert_eq!(at.as_str(), "de-AT");
        assert_eq!(at.language(), Some(Language::De));
        assert_eq!(Locale::parse("pl").unwrap().language(), Some(Language::Pl));
        let french = Locale::parse("fr-FR").unwrap();
        assert_eq!(french.language(), None);
        assert_eq!(french.language_or(Language::De), Language::De);
        assert!(french.is_determined());
        let unknown = Locale::undetermined();
        assert_eq!(Locale::parse("und").unwrap(), unknown);
        assert!(!unknown.is_determined());
        let err = Locale::parse("english!").unwrap_err();
        assert_eq!(err.field, "locale");
        assert!(err.reason.contains("language tag"));
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

    #[test]
    fn postal_codes_are_written_the_countrys_way_or_refused_with_the_field() {
        let parse = |country: &str, raw: &str| {
            PostalCode::parse(&CountryCode::parse(country).unwrap(), raw)
        };
        for (country, raw, written) in [
            ("US", " 94105 ", "94105"),
            ("US", "941051234", "94105-1234"),
            ("US", "94105 - 1234", "94105-1234"),
            ("CA", "v6b1a1", "V6B 1A1"),
            ("CA", "B3H  4R2", "B3H 4R2"),
            ("AU", "6000", "6000"),
            ("DE", "10115", "10115"),
            ("GB", "sw1a1aa", "SW1A 1AA"),
            ("GB", "M1 1AE", "M1 1AE"),
            ("IE", "d02x285", "D02 X285"),
            ("NL", "1012js", "1012 JS"),
            ("PL", "00950", "00-950"),
            ("PT", "1100148", "1100-148"),
            ("SE", "11152", "111 52"),
            ("JP", " 100-0001 ", "100-0001"),
            ("BR", "01310  100", "01310 100"),
        ] {
            assert_eq!(
                parse(country, raw).map(|code| code.to_string()),
                Ok(written.to_owned()),
                "{country} {raw:?}"
            );
        }
        for (country, raw) in [
            ("US", "9410"),
            ("US", "94105-12"),
            ("US", "ABCDE"),
            ("CA", "V6B 1A"),
            ("CA", "D6B 1A1"),
            ("AU", "60000"),
            ("DE", "1011"),
            ("ES", "53001"),
            ("GB", "SW1A"),
            ("NL", "0123 AB"),
            ("JP", "1"),
            ("JP", "100/0001"),
            ("JP", "12345678901"),
        ] {
            let refused = parse(country, raw).unwrap_err();
            assert_eq!(refused.field, "destination_postal_code", "{country} {raw}");
            assert!(refused.reason.contains(raw), "{refused}");
        }
        assert_eq!(
            parse("US", "9410").unwrap_err().to_string(),
            "destination_postal_code: `9410` is not a US postal code: expected 5 digits like \
             94105, or 9 like 94105-1234"
        );
    }
}

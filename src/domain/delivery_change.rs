//! A customer's change to a delivery: another day, a neighbour, a pickup point or a safe place.
//!
//! What can be changed, and until when, follows from three things: the carrier (which changes
//! it takes, and whether still once the parcel is on the van, in `carriers/<code>.toml`), the
//! merchant's policy (which changes, for which countries, up to which order value), and the
//! parcel itself (not after delivery, not when a signature is required). A request then lives
//! through the states of [`ChangeState`]; nothing changes before the customer proved, with a
//! one-time code sent to what is on file, that the parcel is theirs.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;
use uuid::Uuid;

use super::shipment::{CountryCode, InvalidField, Shipment};
use super::status::{Status, UnknownName};
use super::{HolidayCalendar, MerchantId};

/// The four ways a customer can change a delivery.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Deliver on a later delivery day.
    AnotherDay,
    /// Leave the parcel with a neighbour.
    Neighbour,
    /// Take the parcel to a pickup point to collect.
    PickupPoint,
    /// Leave the parcel in a safe place at the address.
    SafePlace,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 4] = [
        ChangeKind::AnotherDay,
        ChangeKind::Neighbour,
        ChangeKind::PickupPoint,
        ChangeKind::SafePlace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::AnotherDay => "another_day",
            ChangeKind::Neighbour => "neighbour",
            ChangeKind::PickupPoint => "pickup_point",
            ChangeKind::SafePlace => "safe_place",
        }
    }

    /// Whether the parcel ends up somewhere other than the destination address.
    pub fn leaves_the_address(self) -> bool {
        matches!(self, ChangeKind::Neighbour | ChangeKind::PickupPoint)
    }
}

impl FromStr for ChangeKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChangeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "delivery change",
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What exactly the customer asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChangeDetails {
    AnotherDay {
        #[schema(value_type = String, example = "2026-12-07")]
        date: Date,
    },
    Neighbour {
        name: String,
        house_number: String,
    },
    PickupPoint {
        /// The carrier's id of the point.
        point_id: String,
        name: String,
        address: Option<String>,
    },
    SafePlace {
        /// One of the carrier's safe places (`front_door`, `garage`, ...).
        place: String,
    },
}

impl ChangeDetails {
    pub fn kind(&self) -> ChangeKind {
        match self {
            ChangeDetails::AnotherDay { .. } => ChangeKind::AnotherDay,
            ChangeDetails::Neighbour { .. } => ChangeKind::Neighbour,
            ChangeDetails::PickupPoint { .. } => ChangeKind::PickupPoint,
            ChangeDetails::SafePlace { .. } => ChangeKind::SafePlace,
        }
    }

    /// The change in plain English, for the merchant and the audit trail.
    pub fn describe(&self) -> String {
        match self {
            ChangeDetails::AnotherDay { date } => format!("deliver on {date}"),
            ChangeDetails::Neighbour { name, house_number } => {
                format!("leave with the neighbour {name}, no. {house_number}")
            }
            ChangeDetails::PickupPoint { name, .. } => format!("take to the pickup point {name}"),
            ChangeDetails::SafePlace { place } => format!("leave at the safe place: {place}"),
        }
    }
}

/// The longest name or house number a neighbour form takes.
const MAX_NEIGHBOUR_TEXT: usize = 80;

/// A neighbour's name or house number as typed: trimmed, one line, not empty, not too long.
pub fn neighbour_text(field: &'static str, raw: &str) -> Result<String, InvalidField> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(InvalidField::new(field, "is required"));
    }
    if text.chars().count() > MAX_NEIGHBOUR_TEXT || text.chars().any(char::is_control) {
        return Err(InvalidField::new(
            field,
            format!("must be at most {MAX_NEIGHBOUR_TEXT} characters on one line"),
        ));
    }
    Ok(text.to_owned())
}

/// Where a request is. A request starts [`ChangeState::CodeSent`]; a right code moves it on to
/// [`ChangeState::AwaitingApproval`] or straight to being carried out; [`ChangeState::Executed`],
/// [`ChangeState::HandedToMerchant`], [`ChangeState::Rejected`], [`ChangeState::Refused`],
/// [`ChangeState::Locked`] and [`ChangeState::Expired`] are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeState {
    /// A one-time code went to the customer's email; the request waits for it.
    CodeSent,
    /// Too many wrong codes: the request is dead, a new one needs a new code.
    Locked,
    /// The code was not given in time.
    Expired,
    /// Verified, but the merchant's risk rules want the merchant to approve it first.
    AwaitingApproval,
    /// Approved by the merchant and about to be carried out.
    Approved,
    /// The merchant said no.
    Rejected,
    /// Carried out through the carrier's API: the carrier has the new instruction.
    Executed,
    /// The carrier takes no changes through its API: the merchant was asked to make it with the
    /// carrier.
    HandedToMerchant,
    /// Too late: by the time it was verified or approved, the parcel could no longer be changed
    /// this way (delivered, on the van, ...).
    Refused,
}

impl ChangeState {
    pub const ALL: [ChangeState; 9] = [
        ChangeState::CodeSent,
        ChangeState::Locked,
        ChangeState::Expired,
        ChangeState::AwaitingApproval,
        ChangeState::Approved,
        ChangeState::Rejected,
        ChangeState::Executed,
        ChangeState::HandedToMerchant,
        ChangeState::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeState::CodeSent => "code_sent",
            ChangeState::Locked => "locked",
            ChangeState::Expired => "expired",
            ChangeState::AwaitingApproval => "awaiting_approval",
            ChangeState::Approved => "approved",
            ChangeState::Rejected => "rejected",
            ChangeState::Executed => "executed",
            ChangeState::HandedToMerchant => "handed_to_merchant",
            ChangeState::Refused => "refused",
        }
    }

    /// Nothing more will happen to a request in this state.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            ChangeState::CodeSent | ChangeState::AwaitingApproval | ChangeState::Approved
        )
    }

    /// The customer's change was accepted (carried out or passed on to be).
    pub fn is_accepted(self) -> bool {
        matches!(self, ChangeState::Executed | ChangeState::HandedToMerchant)
    }
}

impl FromStr for ChangeState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChangeState::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "delivery change state",
                value: s.to_owned(),
            })
    }
}

/// A delivery-change request as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRequest {
    pub id: Uuid,
    pub shipment_id: Uuid,
    pub merchant_id: MerchantId,
    pub details: ChangeDetails,
    pub state: ChangeState,
    /// The HMAC of the one-time code ([`crate::links::Links::code_hash`]), hex.
    pub code_hash: Option<String>,
    /// Where the code went, as the customer sees it (`a…@example.com`).
    pub code_sent_to: Option<String>,
    pub code_expires_at: Timestamp,
    pub wrong_codes: u32,
    /// A SHA-256 of the address of the client that asked.
    pub client_hash: Option<String>,
    /// Why it waits for the merchant, when it does.
    pub approval_reason: Option<String>,
    /// The merchant's reason for a rejection, or why it was refused.
    pub outcome_note: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One step of a request's audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangeEvent {
    #[schema(value_type = String)]
    pub at: Timestamp,
    pub state: ChangeState,
    /// What happened, in plain English (never the code, never the customer's address).
    pub note: String,
}

/// How many wrong codes lock a request.
pub const MAX_WRONG_CODES: u32 = 5;
/// How long a one-time code is valid.
pub const CODE_VALID_FOR: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

/// An amount in a currency's minor units (cents), as the merchant registered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// In minor units: 12990 is 129.90.
    pub amount_minor: i64,
    /// ISO 4217, upper case (`EUR`).
    #[schema(example = "EUR")]
    pub currency: String,
}

impl Money {
    /// Read an amount given as a decimal string ("129.90") in `currency`.
    pub fn parse(field: &'static str, amount: &str, currency: &str) -> Result<Money, InvalidField> {
        let currency = currency.trim().to_ascii_uppercase();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(InvalidField::new(
                field,
                format!("currency `{currency}` is not a three-letter ISO 4217 code"),
            ));
        }
        let bad = || {
            InvalidField::new(
                field,
                format!("amount `{amount}` is not a number with at most two decimals, like 129.90"),
            )
        };
        let (whole, fraction) = amount.trim().split_once('.').unwrap_or((amount.trim(), ""));
        if whole.is_empty()
            || fraction.len() > 2
            || !whole.chars().all(|c| c.is_ascii_digit())
            || !fraction.chars().all(|c| c.is_ascii_digit())
        {
            return Err(bad());
        }
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let cents: i64 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
        let amount_minor = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .ok_or_else(bad)?;
        Ok(Money {
            amount_minor,
            currency,
        })
    }

    /// Whether this is more than `limit`; amounts in another currency cannot be compared and
    /// count as more, so a limit is never slipped past by a currency.
    pub fn exceeds(&self, limit: &Money) -> bool {
        self.currency != limit.currency || self.amount_minor > limit.amount_minor
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:02} {}",
            self.amount_minor / 100,
            (self.amount_minor % 100).abs(),
            self.currency
        )
    }
}

/// What the merchant allows customers to change, and what needs the merchant's approval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryChangePolicy {
    /// Customers cannot change deliveries at all.
    pub disabled: bool,
    /// The changes offered; empty: every change the carrier takes.
    pub kinds: Vec<ChangeKind>,
    /// Destination countries where changes are offered; empty: all.
    #[schema(value_type = Vec<String>)]
    pub countries: Vec<CountryCode>,
    /// No changes for orders worth more than this (or of unknown value, when set).
    pub max_order_value: Option<Money>,
    /// A change that leaves the parcel away from the address (a neighbour, a pickup point) on an
    /// order worth more than this waits for the merchant's approval.
    pub approval_above_order_value: Option<Money>,
    /// The second and later accepted change of one shipment waits for the merchant's approval.
    pub approve_repeat_changes: bool,
}

impl DeliveryChangePolicy {
    /// Every problem, each naming its field.
    pub fn check(&self) -> Vec<InvalidField> {
        let mut problems = Vec::new();
        for (field, money) in [
            ("delivery_changes.max_order_value", &self.max_order_value),
            (
                "delivery_changes.approval_above_order_value",
                &self.approval_above_order_value,
            ),
        ] {
            if let Some(m) = money
                && (m.amount_minor < 0
                    || m.currency.len() != 3
                    || !m.currency.chars().all(|c| c.is_ascii_uppercase()))
            {
                problems.push(InvalidField::new(
                    field,
                    "must be a non-negative amount_minor with a three-letter upper-case currency",
                ));
            }
        }
        problems
    }

    /// Why the policy offers no `kind` for `shipment`, or `None` when it offers it.
    pub fn refuses(&self, kind: ChangeKind, shipment: &Shipment) -> Option<Refusal> {
        if self.disabled || (!self.kinds.is_empty() && !self.kinds.contains(&kind)) {
            return Some(Refusal::NotOffered);
        }
        if !self.countries.is_empty() && !self.countries.contains(&shipment.destination_country) {
            return Some(Refusal::NotOffered);
        }
        if let Some(limit) = &self.max_order_value {
            let too_much = shipment
                .order_value
                .as_ref()
                .is_none_or(|value| value.exceeds(limit));
            if too_much {
                return Some(Refusal::OrderValue);
            }
        }
        None
    }

    /// Why an accepted change of `kind` must wait for the merchant; `earlier_changes` counts the
    /// shipment's changes accepted before.
    pub fn needs_approval(
        &self,
        kind: ChangeKind,
        shipment: &Shipment,
        earlier_changes: usize,
    ) -> Option<String> {
        if self.approve_repeat_changes && earlier_changes > 0 {
            return Some("the shipment's delivery was changed before".into());
        }
        if let Some(limit) = &self.approval_above_order_value
            && kind.leaves_the_address()
        {
            match &shipment.order_value {
                Some(value) if value.exceeds(limit) => {
                    return Some(format!(
                        "the parcel leaves the address and the order is worth {value}, above {limit}"
                    ));
                }
                None => {
                    return Some(
                        "the parcel leaves the address and the order's value is unknown".into(),
                    );
                }
                Some(_) => {}
            }
        }
        None
    }
}

/// What the carrier takes, from its `carriers/<code>.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarrierChangeRules {
    /// The changes the carrier takes.
    pub kinds: Vec<ChangeKind>,
    /// Whether changes are still taken once the parcel is out for delivery.
    pub while_out_for_delivery: bool,
    /// The safe places the carrier knows.
    pub safe_places: Vec<String>,
    /// How many of the next delivery days "another day" offers.
    pub another_day_choices: usize,
}

/// Why a change is not offered (or no longer possible).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The carrier or the merchant does not offer it.
    NotOffered,
    /// The journey is over, or the parcel is on its way back.
    JourneyOver,
    /// The parcel is already on the van and the carrier takes no changes then.
    OutForDelivery,
    /// The parcel needs a signature.
    SignatureRequired,
    /// The order is worth more than the merchant allows changes for.
    OrderValue,
    /// There is nowhere to send the code to.
    NoContact,
}

impl Refusal {
    /// In plain English, for the merchant and the audit trail.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::NotOffered => "this change is not offered for this parcel",
            Refusal::JourneyOver => "the parcel was delivered or its journey is over",
            Refusal::OutForDelivery => "the parcel is already out for delivery",
            Refusal::SignatureRequired => "the parcel needs a signature",
            Refusal::OrderValue => "the order's value is above the shop's limit for changes",
            Refusal::NoContact => "there is no email address on file to send a code to",
        }
    }
}

/// Why no change of the parcel is possible now, whatever the kind: `None` while one can be.
pub fn parcel_refuses(shipment: &Shipment, rules: &CarrierChangeRules) -> Option<Refusal> {
    let journey = &shipment.journey;
    if !journey.active
        || !crate::carriers::delivery_to_come(journey.status, journey.reason)
        || shipment.erased_at.is_some()
    {
        return Some(Refusal::JourneyOver);
    }
    if journey.status == Status::OutForDelivery && !rules.while_out_for_delivery {
        return Some(Refusal::OutForDelivery);
    }
    if shipment.signature_required {
        return Some(Refusal::SignatureRequired);
    }
    if shipment.customer.email.is_none() {
        return Some(Refusal::NoContact);
    }
    None
}

/// Why `kind` cannot be asked for now, or `None` when it can.
pub fn refuses(
    kind: ChangeKind,
    shipment: &Shipment,
    rules: &CarrierChangeRules,
    policy: &DeliveryChangePolicy,
) -> Option<Refusal> {
    if !rules.kinds.contains(&kind) {
        return Some(Refusal::NotOffered);
    }
    parcel_refuses(shipment, rules).or_else(|| policy.refuses(kind, shipment))
}

/// The next `count` delivery days at the destination after `today`: no Sundays, no public
/// holidays, whatever days the carrier's sandbox vans keep.
pub fn next_delivery_days(
    calendar: &HolidayCalendar,
    country: &CountryCode,
    today: Date,
    count: usize,
) -> Vec<Date> {
    let mut days = Vec::with_capacity(count);
    let mut day = today;
    // Two weeks are always enough for a handful of days, whatever the holidays.
    for _ in 0..21 {
        if days.len() == count {
            break;
        }
        let Ok(next) = day.tomorrow() else { break };
        day = next;
        if day.weekday() != jiff::civil::Weekday::Sunday && !calendar.is_holiday(country, day) {
            days.push(day);
        }
    }
    days
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_decimal_amounts_and_names_the_field_when_it_cannot() {
        let m = Money::parse("order_value", "129.9", "eur").unwrap();
        assert_eq!(m.amount_minor, 12990);
        assert_eq!(m.currency, "EUR");
        assert_eq!(m.to_string(), "129.90 EUR");
        assert_eq!(Money::parse("v", "7", "PLN").unwrap().amount_minor, 700);
        for bad in ["", "1.234", "-5", "1,50", "abc", ".5"] {
            let e = Money::parse("order_value", bad, "EUR").unwrap_err();
            assert_eq!(e.field, "order_value", "{bad}");
        }
        assert!(Money::parse("order_value", "1", "EURO").is_err());
    }

    #[test]
    fn another_currency_always_exceeds_a_limit() {
        let limit = Money::parse("l", "100", "EUR").unwrap();
        assert!(!Money::parse("v", "100", "EUR").unwrap().exceeds(&limit));
        assert!(Money::parse("v", "100.01", "EUR").unwrap().exceeds(&limit));
        assert!(Money::parse("v", "1", "PLN").unwrap().exceeds(&limit));
    }

    #[test]
    fn kinds_and_states_round_trip_through_their_names() {
        for kind in ChangeKind::ALL {
            assert_eq!(kind.as_str().parse::<ChangeKind>().unwrap(), kind);
        }
        for state in ChangeState::ALL {
            assert_eq!(state.as_str().parse::<ChangeState>().unwrap(), state);
        }
        assert!("teleport".parse::<ChangeKind>().is_err());
    }

    #[test]
    fn details_serialise_with_their_kind() {
        let d = ChangeDetails::Neighbour {
            name: "Anna Nowak".into(),
            house_number: "12a".into(),
        };
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["kind"], "neighbour");
        assert_eq!(serde_json::from_value::<ChangeDetails>(json).unwrap(), d);
        assert_eq!(d.kind(), ChangeKind::Neighbour);
    }

    #[test]
    fn neighbour_text_is_trimmed_and_limited() {
        assert_eq!(neighbour_text("name", "  Jan ").unwrap(), "Jan");
        assert_eq!(neighbour_text("name", " ").unwrap_err().field, "name");
        assert!(neighbour_text("house_number", &"9".repeat(81)).is_err());
        assert!(neighbour_text("house_number", "1\n2").is_err());
    }

    #[test]
    fn delivery_days_skip_sundays_and_public_holidays() {
        let calendar = HolidayCalendar::bundled();
        let de = CountryCode::parse("DE").unwrap();
        // Wednesday 23 December 2026: Christmas Day and Boxing Day are holidays, the 27th a
        // Sunday.
        let days = next_delivery_days(&calendar, &de, "2026-12-23".parse().unwrap(), 3);
        let want: Vec<Date> = ["2026-12-24", "2026-12-28", "2026-12-29"]
            .iter()
            .map(|d| d.parse().unwrap())
            .collect();
        assert_eq!(days, want);
    }
}

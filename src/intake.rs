//! Taking shipments in: every field checked at the door, with an error that names the field and
//! the reason; nothing half-valid reaches the store.

use jiff::Timestamp;
use serde::Deserialize;
use std::io::Read;

use crate::carriers::CarrierRegistry;
use crate::domain::{
    CountryCode, Customer, DeliveryWindow, EmailAddress, InvalidField, Locale, NewShipment,
    Shipment, TimeZoneName, TrackingNumber,
};
use crate::store::{Store, StoreError};

/// The account used when a shipment names none.
pub const DEFAULT_ACCOUNT: &str = "default";

/// A shipment as a merchant submits it (CLI flags, a CSV row): raw text, not yet trusted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipmentInput {
    /// The carrier's code; when empty, recognised from the tracking number.
    #[serde(default)]
    pub carrier: String,
    /// The merchant's carrier account by name; `default` when empty.
    #[serde(default)]
    pub account: Option<String>,
    pub tracking_number: String,
    pub customer_email: String,
    #[serde(default)]
    pub customer_name: Option<String>,
    pub locale: String,
    /// IANA zone; when empty, the destination country's main zone.
    #[serde(default)]
    pub time_zone: Option<String>,
    pub destination_country: String,
    #[serde(default)]
    pub order_reference: Option<String>,
    /// `2026-03-04` or `2026-03-04..2026-03-06`.
    #[serde(default)]
    pub promise: Option<String>,
}

/// Why a shipment was refused.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// One or more fields are wrong; each names itself.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<InvalidField>),
    #[error(transparent)]
    Store(StoreError),
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl ShipmentInput {
    /// Check every field against the known carriers; collect every problem, not just the first.
    pub fn validate(&self, carriers: &CarrierRegistry) -> Result<ValidShipment, Vec<InvalidField>> {
        let mut problems = Vec::new();
        fn keep<T>(problems: &mut Vec<InvalidField>, result: Result<T, InvalidField>) -> Option<T> {
            result.map_err(|e| problems.push(e)).ok()
        }
        let tracking_number = keep(&mut problems, TrackingNumber::parse(&self.tracking_number));
        let carrier = if self.carrier.trim().is_empty() {
            tracking_number
                .as_ref()
                .and_then(|number| keep(&mut problems, recognised_carrier(carriers, number)))
        } else {
            keep(&mut problems, carriers.known(&self.carrier))
        };
        let email = keep(&mut problems, EmailAddress::parse(&self.customer_email));
        let locale = keep(&mut problems, Locale::parse(&self.locale));
        let country = keep(&mut problems, CountryCode::parse(&self.destination_country));
        let time_zone = match non_empty(&self.time_zone) {
            Some(tz) => keep(&mut problems, TimeZoneName::parse(tz)),
            None => match country.as_ref().map(|c| (c, TimeZoneName::default_for(c))) {
                Some((_, Some(tz))) => keep(&mut problems, TimeZoneName::parse(tz)),
                Some((c, None)) => keep(
                    &mut problems,
                    Err(InvalidField::new(
                        "time_zone",
                        format!(
                            "required for destination {c}: give the customer's zone, e.g. Europe/Berlin"
                        ),
                    )),
                ),
                None => None,
            },
        };
        let promise = match non_empty(&self.promise) {
            Some(text) => keep(
                &mut problems,
                DeliveryWindow::parse(text).map_err(|reason| InvalidField::new("promise", reason)),
            ),
            None => None,
        };
        let name = non_empty(&self.customer_name).map(str::to_owned);
        if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
            problems.push(InvalidField::new(
                "customer_name",
                "longer than 200 characters",
            ));
        }
        let order_reference = non_empty(&self.order_reference).map(str::to_owned);
        if order_reference
            .as_ref()
            .is_some_and(|r| r.chars().count() > 100)
        {
            problems.push(InvalidField::new(
                "order_reference",
                "longer than 100 characters",
            ));
        }
        match (carrier, tracking_number, email, locale, country, time_zone) {
            (
                Some(carrier),
                Some(tracking_number),
                Some(email),
                Some(locale),
                Some(country),
                Some(time_zone),
            ) if problems.is_empty() => Ok(ValidShipment {
                account: non_empty(&self.account)
                    .unwrap_or(DEFAULT_ACCOUNT)
                    .to_owned(),
                carrier,
                tracking_number,
                customer: Customer {
                    email,
                    name,
                    locale,
                    time_zone,
                },
                destination_country: country,
                order_reference,
                promise,
            }),
            _ => Err(problems),
        }
    }
}

/// The carrier that issued `number`, when its format says so unambiguously.
fn recognised_carrier(
    carriers: &CarrierRegistry,
    number: &TrackingNumber,
) -> Result<crate::domain::CarrierCode, InvalidField> {
    use crate::carriers::recognise::Recognition;
    match carriers.recognise(number.as_str()) {
        Recognition::Recognised(candidate) => Ok(candidate.carrier),
        Recognition::Ambiguous(candidates) => {
            let codes: Vec<String> = candidates
                .iter()
                .map(|c| format!("{} ({})", c.carrier, c.carrier_name))
                .collect();
            Err(InvalidField::new(
                "carrier",
                format!(
                    "not given, and `{number}` could be from any of: {}; name the carrier",
                    codes.join(", ")
                ),
            ))
        }
        Recognition::NotRecognised => Err(InvalidField::new(
            "carrier",
            format!("not given, and `{number}` matches no carrier's number format Waymark knows"),
        )),
    }
}

/// A shipment whose every field is valid, not yet tied to a stored account.
#[derive(Debug, Clone)]
pub struct ValidShipment {
    pub account: String,
    pub carrier: crate::domain::CarrierCode,
    pub tracking_number: TrackingNumber,
    pub customer: Customer,
    pub destination_country: CountryCode,
    pub order_reference: Option<String>,
    pub promise: Option<DeliveryWindow>,
}

/// Validate and store one shipment.
pub async fn register(
    store: &dyn Store,
    carriers: &CarrierRegistry,
    input: &ShipmentInput,
    now: Timestamp,
) -> Result<Shipment, IntakeError> {
    let valid = input.validate(carriers).map_err(IntakeError::Invalid)?;
    let account = store
        .carrier_account_by_name(&valid.carrier, &valid.account)
        .await
        .map_err(IntakeError::Store)?
        .ok_or_else(|| {
            IntakeError::Invalid(vec![InvalidField::new(
                "account",
                format!("no {} account named `{}`", valid.carrier, valid.account),
            )])
        })?;
    let new = NewShipment {
        carrier_account_id: account.id,
        carrier: valid.carrier,
        tracking_number: valid.tracking_number,
        customer: valid.customer,
        destination_country: valid.destination_country,
        order_reference: valid.order_reference,
        promise: valid.promise,
    };
    store.insert_shipment(&new, now).await.map_err(|e| match e {
        StoreError::Duplicate { field, detail } => {
            IntakeError::Invalid(vec![InvalidField::new(field, detail)])
        }
        other => IntakeError::Store(other),
    })
}

/// The outcome of a CSV import: what went in, and each refused line with its reason.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub imported: Vec<Shipment>,
    /// (line number in the file, why it was refused)
    pub refused: Vec<(u64, String)>,
}

/// Import shipments from CSV with a header row naming `ShipmentInput`'s fields. Good rows go
/// in; bad rows are reported by line and refused; a store failure stops the import.
pub async fn import_csv(
    store: &dyn Store,
    carriers: &CarrierRegistry,
    input: impl Read,
    now: Timestamp,
) -> Result<ImportReport, StoreError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut report = ImportReport::default();
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(error) => {
            report
                .refused
                .push((1, format!("unreadable header: {error}")));
            return Ok(report);
        }
    };
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                let refused = match record.deserialize::<ShipmentInput>(Some(&headers)) {
                    Err(error) => Some(format!("unreadable row: {error}")),
                    Ok(shipment) => match register(store, carriers, &shipment, now).await {
                        Ok(stored) => {
                            report.imported.push(stored);
                            None
                        }
                        Err(IntakeError::Store(e)) => return Err(e),
                        Err(refused) => Some(refused.to_string()),
                    },
                };
                if let Some(why) = refused {
                    report.refused.push((line, why));
                }
            }
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line());
                report
                    .refused
                    .push((line, format!("unreadable row: {error}")));
                if !matches!(
                    error.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                ) {
                    break;
                }
            }
        }
    }
    Ok(report)
}

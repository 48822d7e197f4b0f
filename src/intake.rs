//! Taking shipments in: every field checked at the door, with an error that names the field and
//! the reason; nothing half-valid reaches the store.

use jiff::Timestamp;
use serde::Deserialize;
use std::io::Read;

use crate::carriers::CarrierRegistry;
use crate::domain::{
    CountryCode, Customer, DeliveryWindow, EmailAddress, InvalidField, Locale, NewShipment,
    PostalCode, Shipment, TimeZoneName, TrackingNumber, ZoneTable,
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
    /// IANA zone; when empty, the destination country's, or where the country spans several
    /// zones, the one the postal code places the customer in.
    #[serde(default)]
    pub time_zone: Option<String>,
    pub destination_country: String,
    /// Checked against the country's format where it is simple, and stored as the country
    /// writes it.
    #[serde(default)]
    pub destination_postal_code: Option<String>,
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
        // A postal code is checked against its country's format, so not without a country.
        // `Err`: it was given and is wrong, which is its own problem and not also the zone's.
        let postal_code = match (&country, non_empty(&self.destination_postal_code)) {
            (Some(country), Some(raw)) => PostalCode::parse(country, raw)
                .map(Some)
                .map_err(|e| problems.push(e)),
            _ => Ok(None),
        };
        let time_zone = match (non_empty(&self.time_zone), &country, &postal_code) {
            (Some(tz), _, _) => keep(&mut problems, TimeZoneName::parse(tz)),
            (None, Some(country), Ok(code)) => keep(
                &mut problems,
                ZoneTable::bundled().customer_zone(country, code.as_ref()),
            ),
            (None, _, _) => None,
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
                    email: Some(email),
                    name,
                    locale,
                    time_zone,
                },
                destination_country: country,
                destination_postal_code: postal_code.ok().flatten(),
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
    pub destination_postal_code: Option<PostalCode>,
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
        destination_postal_code: valid.destination_postal_code,
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
    let mut report = ImportReport::default();
    for (line, row) in csv_rows(input) {
        let refused = match row {
            Err(why) => Some(why),
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
    Ok(report)
}

/// The rows of a CSV import as [`import_csv`] reads them, before any is validated: each data
/// row's line number and its shipment, or why it cannot be read.
pub fn csv_rows<R: Read>(input: R) -> CsvRows<R> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader
        .headers()
        .cloned()
        .map_err(|error| format!("unreadable header: {error}"));
    CsvRows {
        reader,
        headers,
        record: csv::StringRecord::new(),
        done: false,
    }
}

/// The iterator [`csv_rows`] returns. An unreadable header is reported as line 1 and ends the
/// rows; so does an error after which the rest of the file cannot be read. A row with the wrong
/// number of fields or invalid UTF-8 is reported and reading goes on.
pub struct CsvRows<R> {
    reader: csv::Reader<R>,
    headers: Result<csv::StringRecord, String>,
    record: csv::StringRecord,
    done: bool,
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = (u64, Result<ShipmentInput, String>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let headers = match &self.headers {
            Ok(headers) => headers,
            Err(why) => {
                self.done = true;
                return Some((1, Err(why.clone())));
            }
        };
        match self.reader.read_record(&mut self.record) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                let line = self.record.position().map_or(0, |p| p.line());
                let row = self
                    .record
                    .deserialize::<ShipmentInput>(Some(headers))
                    .map_err(|error| format!("unreadable row: {error}"));
                Some((line, row))
            }
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line());
                self.done = !matches!(
                    error.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                );
                Some((line, Err(format!("unreadable row: {error}"))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_name_their_lines_and_go_on_after_a_short_row() {
        let csv = "tracking_number,customer_email,locale,destination_country\n\
                   SBX-ONTIME-000101,anna@example.pl,pl,PL\n\
                   SBX-ONTIME-000102,jan@example.pl\n\
                   SBX-ONTIME-000103,ola@example.pl,pl,PL,extra\n\
                   SBX-ONTIME-000104,marie@example.fr,fr,FR\n";
        let rows: Vec<(u64, Result<ShipmentInput, String>)> = csv_rows(csv.as_bytes()).collect();
        let lines: Vec<u64> = rows.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        assert_eq!(
            rows[0].1.as_ref().map(|s| s.tracking_number.as_str()),
            Ok("SBX-ONTIME-000101")
        );
        assert!(
            rows[1]
                .1
                .as_ref()
                .is_err_and(|why| why.starts_with("unreadable row"))
        );
        assert!(rows[2].1.is_err());
        assert!(rows[3].1.is_ok());
    }

    #[test]
    fn an_unreadable_header_is_line_one_and_the_end() {
        let rows: Vec<(u64, Result<ShipmentInput, String>)> =
            csv_rows(&b"tracking_number,\xff\nSBX-1,a@b.c\n"[..]).collect();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].0, 1);
        assert!(
            rows[0]
                .1
                .as_ref()
                .is_err_and(|why| why.starts_with("unreadable header"))
        );
    }
}

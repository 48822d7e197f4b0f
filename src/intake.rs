//! Taking shipments in: every field checked at the door, with an error that names the field and
//! the reason; nothing half-valid reaches the store.

use jiff::Timestamp;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Read;

use crate::carriers::CarrierRegistry;
use crate::domain::{
    CarrierCode, CountryCode, Customer, DeliveryWindow, EmailAddress, InvalidField, Locale,
    MerchantId, Money, NewShipment, PhoneNumber, PostalCode, Shipment, TimeZoneName,
    TrackingNumber, ZoneTable,
};
use crate::store::{ShipmentChanges, Store, StoreError};

/// The account used when a shipment names none.
pub const DEFAULT_ACCOUNT: &str = "default";

/// A shipment as a merchant submits it (CLI flags, a CSV row, an API request): raw text, not
/// yet trusted. Every field is checked by [`ShipmentInput::validate`], and a refusal names each
/// wrong one.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
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
    /// For text messages: as the destination country writes it, or international (`+49…`).
    #[serde(default)]
    pub customer_phone: Option<String>,
    /// The customer's language tag (`de-AT`). Left out, or one Waymark has no templates for
    /// (en, de, pl): messages go in the merchant's language, and the tracking page follows the
    /// visitor's browser.
    #[serde(default)]
    pub locale: Option<String>,
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
    /// What the order is worth, a decimal like `129.90`, in `order_currency`: the merchant's
    /// delivery-change policy and risk rules go by it.
    #[serde(default)]
    pub order_value: Option<String>,
    /// ISO 4217 (`EUR`); required with `order_value`.
    #[serde(default)]
    pub order_currency: Option<String>,
    /// The carrier must get a signature: the customer cannot redirect the delivery.
    #[serde(default)]
    pub signature_required: Option<bool>,
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
        let locale = match non_empty(&self.locale) {
            Some(tag) => keep(&mut problems, Locale::parse(tag)),
            None => Some(Locale::undetermined()),
        };
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
        // Read in the destination's numbering plan, so not without a country.
        let phone = match (&country, non_empty(&self.customer_phone)) {
            (Some(country), Some(raw)) => {
                keep(&mut problems, PhoneNumber::parse(raw, country)).map(Some)
            }
            _ => Some(None),
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
        let order_value = match (
            non_empty(&self.order_value),
            non_empty(&self.order_currency),
        ) {
            (Some(amount), Some(currency)) => {
                keep(&mut problems, Money::parse("order_value", amount, currency))
            }
            (Some(_), None) => {
                problems.push(InvalidField::new(
                    "order_currency",
                    "is required with order_value",
                ));
                None
            }
            (None, _) => None,
        };
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
                    phone: phone.flatten(),
                    locale,
                    time_zone,
                },
                destination_country: country,
                destination_postal_code: postal_code.ok().flatten(),
                order_reference,
                promise,
                order_value,
                signature_required: self.signature_required.unwrap_or(false),
            }),
            _ => Err(problems),
        }
    }
}

/// A change a merchant asks for to a registered shipment, raw: what is `None` stays as it is.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentChangeInput {
    pub customer_email: Option<String>,
    /// Empty removes the name.
    pub customer_name: Option<String>,
    /// Read in the destination country's numbering plan; empty removes the number.
    pub customer_phone: Option<String>,
    /// Empty: the customer's language is not known.
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    /// A date or a window; empty removes the promise.
    pub promise: Option<String>,
    /// True: no more messages to the customer about it.
    pub muted: Option<bool>,
}

/// The shipment as `input` would leave it, every field checked as at registration; `None` when
/// nothing would change.
pub fn shipment_changes(
    shipment: &Shipment,
    input: &ShipmentChangeInput,
) -> Result<Option<ShipmentChanges>, Vec<InvalidField>> {
    let mut problems = Vec::new();
    let mut customer = shipment.customer.clone();
    if let Some(email) = &input.customer_email {
        match EmailAddress::parse(email) {
            Ok(email) => customer.email = Some(email),
            Err(e) => problems.push(e),
        }
    }
    if let Some(name) = &input.customer_name {
        let name = name.trim();
        if name.chars().count() > 200 {
            problems.push(InvalidField::new(
                "customer_name",
                "longer than 200 characters",
            ));
        }
        customer.name = (!name.is_empty()).then(|| name.to_owned());
    }
    if let Some(phone) = input.customer_phone.as_deref().map(str::trim) {
        match phone {
            "" => customer.phone = None,
            raw => match PhoneNumber::parse(raw, &shipment.destination_country) {
                Ok(phone) => customer.phone = Some(phone),
                Err(e) => problems.push(e),
            },
        }
    }
    match input.locale.as_deref().map(str::trim) {
        None => {}
        Some("") => customer.locale = Locale::undetermined(),
        Some(tag) => match Locale::parse(tag) {
            Ok(locale) => customer.locale = locale,
            Err(e) => problems.push(e),
        },
    }
    if let Some(zone) = &input.time_zone {
        match TimeZoneName::parse(zone.trim()) {
            Ok(zone) => customer.time_zone = zone,
            Err(e) => problems.push(e),
        }
    }
    let promise = match input.promise.as_deref().map(str::trim) {
        None => shipment.promise,
        Some("") => None,
        Some(text) => match DeliveryWindow::parse(text) {
            Ok(window) => Some(window),
            Err(reason) => {
                problems.push(InvalidField::new("promise", reason));
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let changes = ShipmentChanges {
        customer,
        promise,
        muted: input.muted.unwrap_or(shipment.muted),
    };
    let unchanged = changes.customer == shipment.customer
        && changes.promise == shipment.promise
        && changes.muted == shipment.muted;
    Ok((!unchanged).then_some(changes))
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
    pub order_value: Option<Money>,
    pub signature_required: bool,
}

impl ValidShipment {
    /// The shipment to store on the account with id `carrier_account_id`.
    fn on_account(self, carrier_account_id: uuid::Uuid) -> NewShipment {
        NewShipment {
            carrier_account_id,
            carrier: self.carrier,
            tracking_number: self.tracking_number,
            customer: self.customer,
            destination_country: self.destination_country,
            destination_postal_code: self.destination_postal_code,
            order_reference: self.order_reference,
            promise: self.promise,
            order_value: self.order_value,
            signature_required: self.signature_required,
        }
    }

    /// The refusal when the account it names does not exist.
    fn unknown_account(&self) -> IntakeError {
        IntakeError::Invalid(vec![InvalidField::new(
            "account",
            format!("no {} account named `{}`", self.carrier, self.account),
        )])
    }
}

/// A store's refusal of one shipment as the merchant is told it; `Err` for a store failure.
fn refusal(error: StoreError) -> Result<IntakeError, StoreError> {
    match error {
        StoreError::Duplicate { field, detail } => {
            Ok(IntakeError::Invalid(vec![InvalidField::new(field, detail)]))
        }
        other => Err(other),
    }
}

/// Validate and store one shipment.
pub async fn register(
    store: &dyn Store,
    carriers: &CarrierRegistry,
    merchant: MerchantId,
    input: &ShipmentInput,
    now: Timestamp,
) -> Result<Shipment, IntakeError> {
    let valid = input.validate(carriers).map_err(IntakeError::Invalid)?;
    let Some(account) = store
        .carrier_account_by_name(merchant, &valid.carrier, &valid.account)
        .await
        .map_err(IntakeError::Store)?
    else {
        return Err(valid.unknown_account());
    };
    let new = valid.on_account(account.id);
    store
        .insert_shipment(&new, now)
        .await
        .map_err(|e| refusal(e).unwrap_or_else(IntakeError::Store))
}

/// Rows a CSV import stores per write transaction: enough that the commit's cost is spread thin,
/// few enough that a running daemon's own writes wait only a moment behind one (about half a
/// second at a million shipments). A commit writes every index page its rows touched, some at
/// random places (the public tracking-page token): on a million-shipment file, 100,000 rows took
/// twice as long in 2,000-row transactions as in one.
pub const IMPORT_BATCH: usize = 10_000;

/// Refused rows an [`ImportReport`] keeps word for word; later ones are only counted (an
/// [`ImportObserver`] is told every one), so a file of bad rows does not fill memory.
pub const KEPT_REFUSALS: usize = 1_000;

/// Distinct (carrier, account) names an import remembers the account of. Real files name a
/// few; a file naming more only costs more lookups, never more memory.
const REMEMBERED_ACCOUNTS: usize = 1_000;

/// The outcome of a CSV import: how many rows went in and which were refused.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows stored.
    pub imported: u64,
    /// Rows refused, every one counted.
    pub refused: u64,
    /// The first [`KEPT_REFUSALS`] refused rows, in file order: (line number in the file, why).
    pub refusals: Vec<(u64, String)>,
}

/// What a CSV import tells its caller while it runs.
pub trait ImportObserver {
    /// A row was refused. Refusals come in file order, each once, every one of them.
    fn refused(&mut self, line: u64, why: &str);
    /// A batch was stored; `report` counts every row read so far.
    fn stored(&mut self, report: &ImportReport);
}

/// An observer that is told nothing: the report is all the caller wants.
impl ImportObserver for () {
    fn refused(&mut self, _line: u64, _why: &str) {}
    fn stored(&mut self, _report: &ImportReport) {}
}

/// Import shipments from CSV with a header row naming `ShipmentInput`'s fields. Good rows go
/// in; bad rows are reported by line and refused; a store failure stops the import (the batches
/// stored before it stay).
pub async fn import_csv(
    store: &dyn Store,
    carriers: &CarrierRegistry,
    merchant: MerchantId,
    input: impl Read,
    now: Timestamp,
) -> Result<ImportReport, StoreError> {
    import_csv_with(store, carriers, merchant, input, now, &mut ()).await
}

/// [`import_csv`], telling `observer` of every refused row and every stored batch as it goes.
///
/// The file is read as a stream and stored [`IMPORT_BATCH`] rows per transaction, so memory
/// stays flat however long the file is. Each row is checked exactly as [`register`] checks one
/// shipment; a number already on the account, or on an earlier row of the file, is refused for
/// that row alone.
pub async fn import_csv_with(
    store: &dyn Store,
    carriers: &CarrierRegistry,
    merchant: MerchantId,
    input: impl Read,
    now: Timestamp,
    observer: &mut impl ImportObserver,
) -> Result<ImportReport, StoreError> {
    let mut import = Import {
        store,
        merchant,
        observer,
        now,
        report: ImportReport::default(),
        accounts: HashMap::new(),
        remembered: 0,
        batch: Vec::with_capacity(IMPORT_BATCH),
        batch_lines: Vec::with_capacity(IMPORT_BATCH),
        pending: Vec::new(),
    };
    for (line, row) in csv_rows(input) {
        let valid = match row {
            Err(why) => Err(why),
            Ok(input) => input
                .validate(carriers)
                .map_err(|problems| IntakeError::Invalid(problems).to_string()),
        };
        match valid {
            Err(why) => import.pending.push((line, why)),
            Ok(valid) => match import.account(&valid).await? {
                Some(account) => {
                    import.batch.push(valid.on_account(account));
                    import.batch_lines.push(line);
                }
                None => import
                    .pending
                    .push((line, valid.unknown_account().to_string())),
            },
        }
        // Refusals wait for their batch so the caller hears of rows in file order; they count
        // towards its size, so a file of nothing but bad rows is no exception to flat memory.
        if import.batch.len() + import.pending.len() >= IMPORT_BATCH {
            import.flush().await?;
        }
    }
    import.flush().await?;
    Ok(import.report)
}

/// A CSV import under way: the rows read but not yet stored, and what it has learnt.
struct Import<'a, O> {
    store: &'a dyn Store,
    /// Whose accounts the rows name.
    merchant: MerchantId,
    observer: &'a mut O,
    now: Timestamp,
    report: ImportReport,
    /// The id of each (carrier, account name) asked about, `None` for one that does not exist.
    accounts: HashMap<CarrierCode, HashMap<String, Option<uuid::Uuid>>>,
    remembered: usize,
    batch: Vec<NewShipment>,
    /// The line in the file of each shipment in `batch`.
    batch_lines: Vec<u64>,
    /// Rows refused since the last batch was stored: (line, why).
    pending: Vec<(u64, String)>,
}

impl<O: ImportObserver> Import<'_, O> {
    /// The id of the account `valid` names, looked up once per import.
    async fn account(&mut self, valid: &ValidShipment) -> Result<Option<uuid::Uuid>, StoreError> {
        if let Some(known) = self
            .accounts
            .get(&valid.carrier)
            .and_then(|names| names.get(&valid.account))
        {
            return Ok(*known);
        }
        let id = self
            .store
            .carrier_account_by_name(self.merchant, &valid.carrier, &valid.account)
            .await?
            .map(|account| account.id);
        if self.remembered >= REMEMBERED_ACCOUNTS {
            self.accounts.clear();
            self.remembered = 0;
        }
        self.accounts
            .entry(valid.carrier.clone())
            .or_default()
            .insert(valid.account.clone(), id);
        self.remembered += 1;
        Ok(id)
    }

    /// Store the batch, then tell the observer of its refused rows in file order.
    async fn flush(&mut self) -> Result<(), StoreError> {
        if !self.batch.is_empty() {
            let results = self.store.insert_shipments(&self.batch, self.now).await?;
            for (line, result) in self.batch_lines.iter().zip(results) {
                match result {
                    Ok(_) => self.report.imported += 1,
                    Err(error) => self.pending.push((*line, refusal(error)?.to_string())),
                }
            }
            self.batch.clear();
            self.batch_lines.clear();
        }
        self.pending.sort_by_key(|(line, _)| *line);
        for (line, why) in self.pending.drain(..) {
            self.observer.refused(line, &why);
            self.report.refused += 1;
            if self.report.refusals.len() < KEPT_REFUSALS {
                self.report.refusals.push((line, why));
            }
        }
        self.observer.stored(&self.report);
        Ok(())
    }
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

//! Reading rows back into Waymark's types, shared by every store: each value is checked on the
//! way in, and one Waymark cannot understand is a `StoreError::Corrupt` naming the table, the
//! row and the column. The row structs derive `FromRow` for any database's rows; the column
//! types are the same on all of them (text, BIGINT milliseconds, booleans).

use jiff::Timestamp;
use jiff::civil::Date;
use sqlx::{FromRow, Row};
use std::fmt::Display;
use std::str::FromStr;
use uuid::Uuid;

use secrecy::ExposeSecret;

use super::StoreError;
use crate::carriers::CarrierAccount;
use crate::domain::{
    ApiKey, CarrierCode, ChangeRequest, Channel, CountryCode, Customer, DeliveryWindow,
    EmailAddress, EstimateChange, EstimateSource, EventKey, EventTime, Facts, FetchCount,
    JourneyState, KeyedEvent, Locale, Merchant, MerchantEmail, MerchantEmailState, MerchantId,
    MerchantSlug, Notification, NotificationState, PhoneNumber, PostalCode, Shipment, TimeZoneName,
    TrackingEvent, TrackingNumber, Trigger,
};
use crate::secret::Credentials;
use crate::vault::{self, Vault};

/// Milliseconds since the epoch, the column format of every time.
pub(super) fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

/// What the `public_token` column holds for a shipment registered now. Its links carry their
/// own proof (see [`crate::links`]); the column's random tokens are those of shipments
/// registered before, whose emails still link with them.
pub(super) fn public_token(id: Uuid) -> String {
    format!("v2:{id}")
}

pub(super) fn corrupt(table: &'static str, detail: impl Display) -> StoreError {
    StoreError::Corrupt {
        table,
        detail: detail.to_string(),
    }
}

/// The refusal of a tracking number the account already has, as a single registration words
/// it.
pub(super) fn taken_number(number: &TrackingNumber) -> StoreError {
    StoreError::Duplicate {
        field: "tracking_number",
        detail: format!("`{number}` is already registered on this carrier account"),
    }
}

/// Reads the columns of one row, naming the table, row and column in every error.
pub(super) struct Cols<'a> {
    table: &'static str,
    row: &'a str,
}

impl<'a> Cols<'a> {
    pub(super) fn new(table: &'static str, row: &'a str) -> Self {
        Cols { table, row }
    }

    pub(super) fn err(&self, column: &str, detail: impl Display) -> StoreError {
        corrupt(self.table, format!("row {}: {column}: {detail}", self.row))
    }

    pub(super) fn get<'r, R, T>(&self, row: &'r R, index: usize) -> Result<T, StoreError>
    where
        R: Row,
        usize: sqlx::ColumnIndex<R>,
        T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        row.try_get(index)
            .map_err(|e| self.err(&format!("column {index}"), e))
    }

    pub(super) fn uuid(&self, column: &str, text: &str) -> Result<Uuid, StoreError> {
        Uuid::parse_str(text).map_err(|e| self.err(column, format!("`{text}`: {e}")))
    }

    /// A value with a `parse` constructor; the error names the value.
    pub(super) fn parse<T, E: Display>(
        &self,
        column: &str,
        text: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        parse(text).map_err(|e| self.err(column, e))
    }

    /// A name from one of the domain's fixed lists (status, reason, trigger, ...).
    pub(super) fn name<T>(&self, column: &str, text: &str) -> Result<T, StoreError>
    where
        T: FromStr,
        T::Err: Display,
    {
        text.parse().map_err(|e| self.err(column, e))
    }

    pub(super) fn opt_name<T>(
        &self,
        column: &str,
        text: Option<&str>,
    ) -> Result<Option<T>, StoreError>
    where
        T: FromStr,
        T::Err: Display,
    {
        text.map(|t| self.name(column, t)).transpose()
    }

    pub(super) fn time(&self, column: &str, ms: i64) -> Result<Timestamp, StoreError> {
        Timestamp::from_millisecond(ms).map_err(|e| self.err(column, format!("{ms}: {e}")))
    }

    pub(super) fn opt_time(
        &self,
        column: &str,
        ms: Option<i64>,
    ) -> Result<Option<Timestamp>, StoreError> {
        ms.map(|ms| self.time(column, ms)).transpose()
    }

    pub(super) fn count(&self, column: &str, value: i64) -> Result<u32, StoreError> {
        u32::try_from(value).map_err(|_| self.err(column, format!("{value} is out of range")))
    }

    pub(super) fn date(&self, column: &str, text: &str) -> Result<Date, StoreError> {
        text.parse()
            .map_err(|e| self.err(column, format!("`{text}`: {e}")))
    }

    /// A window stored as two date columns `{prefix}_earliest` and `{prefix}_latest`.
    pub(super) fn window(
        &self,
        prefix: &str,
        earliest: Option<&str>,
        latest: Option<&str>,
    ) -> Result<Option<DeliveryWindow>, StoreError> {
        match (earliest, latest) {
            (None, None) => Ok(None),
            (Some(earliest), Some(latest)) => {
                let earliest = self.date(&format!("{prefix}_earliest"), earliest)?;
                let latest = self.date(&format!("{prefix}_latest"), latest)?;
                DeliveryWindow::between(earliest, latest)
                    .map(Some)
                    .map_err(|e| self.err(prefix, e))
            }
            _ => Err(self.err(prefix, "only one end of the window is set")),
        }
    }
}

/// A `shipments` row as the database holds it, before its values are checked.
#[derive(FromRow)]
pub(super) struct ShipmentRow {
    pub(super) id: String,
    merchant_id: String,
    carrier_account_id: String,
    carrier: String,
    tracking_number: String,
    customer_email: String,
    customer_name: Option<String>,
    customer_phone: Option<String>,
    locale: String,
    time_zone: String,
    destination_country: String,
    destination_postal_code: Option<String>,
    order_reference: Option<String>,
    order_value_minor: Option<i64>,
    order_currency: Option<String>,
    signature_required: bool,
    promise_earliest: Option<String>,
    promise_latest: Option<String>,
    created_at: i64,
    public_token: String,
    muted: bool,
    status: String,
    reason: Option<String>,
    estimate_earliest: Option<String>,
    estimate_latest: Option<String>,
    last_event_at: Option<i64>,
    active: bool,
    pub(super) next_poll_at: Option<i64>,
    pub(super) poll_priority: i64,
    poll_failures: i64,
    last_error: Option<String>,
    fetch_day: Option<String>,
    fetches_on_day: i64,
    erased_at: Option<i64>,
}

impl ShipmentRow {
    pub(super) fn decode<'r, R: Row>(row: &'r R) -> Result<Self, StoreError>
    where
        Self: FromRow<'r, R>,
    {
        ShipmentRow::from_row(row).map_err(|e| corrupt("shipments", e))
    }

    pub(super) fn into_shipment(self) -> Result<Shipment, StoreError> {
        let c = Cols::new("shipments", &self.id);
        let customer = Customer {
            // The address itself stays out of the error: it is customer data. An erased
            // customer's is empty.
            email: match self.customer_email.as_str() {
                "" if self.erased_at.is_some() => None,
                address => Some(
                    EmailAddress::parse(address)
                        .map_err(|_| c.err("customer_email", "not a valid address"))?,
                ),
            },
            name: self.customer_name,
            // Like the address, the number stays out of the error: it is customer data.
            phone: self
                .customer_phone
                .map(PhoneNumber::try_from)
                .transpose()
                .map_err(|_| c.err("customer_phone", "not an E.164 number"))?,
            locale: c.parse("locale", &self.locale, Locale::parse)?,
            time_zone: c.parse("time_zone", &self.time_zone, TimeZoneName::parse)?,
        };
        Ok(Shipment {
            id: c.uuid("id", &self.id)?,
            merchant_id: MerchantId(c.uuid("merchant_id", &self.merchant_id)?),
            carrier_account_id: c.uuid("carrier_account_id", &self.carrier_account_id)?,
            carrier: c.parse("carrier", &self.carrier, CarrierCode::parse)?,
            tracking_number: c.parse(
                "tracking_number",
                &self.tracking_number,
                TrackingNumber::parse,
            )?,
            customer,
            destination_country: c.parse(
                "destination_country",
                &self.destination_country,
                CountryCode::parse,
            )?,
            destination_postal_code: self
                .destination_postal_code
                .map(PostalCode::try_from)
                .transpose()
                // Like the address, the code stays out of the error: it is customer data.
                .map_err(|_| c.err("destination_postal_code", "not a postal code"))?,
            order_reference: self.order_reference,
            order_value: match (self.order_value_minor, self.order_currency) {
                (Some(amount_minor), Some(currency)) => Some(crate::domain::Money {
                    amount_minor,
                    currency,
                }),
                _ => None,
            },
            signature_required: self.signature_required,
            promise: c.window(
                "promise",
                self.promise_earliest.as_deref(),
                self.promise_latest.as_deref(),
            )?,
            created_at: c.time("created_at", self.created_at)?,
            public_token: self.public_token,
            muted: self.muted,
            journey: JourneyState {
                status: c.name("status", &self.status)?,
                reason: c.opt_name("reason", self.reason.as_deref())?,
                carrier_estimate: c.window(
                    "estimate",
                    self.estimate_earliest.as_deref(),
                    self.estimate_latest.as_deref(),
                )?,
                last_event_at: c.opt_time("last_event_at", self.last_event_at)?,
                active: self.active,
            },
            poll_failures: c.count("poll_failures", self.poll_failures)?,
            last_error: self.last_error,
            fetched: match self.fetch_day {
                Some(day) => Some(FetchCount {
                    day,
                    count: c.count("fetches_on_day", self.fetches_on_day)?,
                }),
                None => None,
            },
            erased_at: c.opt_time("erased_at", self.erased_at)?,
        })
    }
}

/// An `events` row as the database holds it.
#[derive(FromRow)]
pub(super) struct EventRow {
    event_key: String,
    occurred_at: i64,
    utc_offset_seconds: Option<i32>,
    status: String,
    reason: Option<String>,
    raw_code: String,
    raw_text: String,
    location: Option<String>,
}

pub(super) fn decode_event<'r, R: Row>(row: &'r R) -> Result<KeyedEvent, StoreError>
where
    EventRow: FromRow<'r, R>,
{
    let r = EventRow::from_row(row).map_err(|e| corrupt("events", e))?;
    let c = Cols::new("events", &r.event_key);
    Ok(KeyedEvent {
        event: TrackingEvent {
            time: EventTime {
                at: c.time("occurred_at", r.occurred_at)?,
                offset_seconds: r.utc_offset_seconds,
            },
            status: c.name("status", &r.status)?,
            reason: c.opt_name("reason", r.reason.as_deref())?,
            raw_code: r.raw_code,
            raw_text: r.raw_text,
            location: r.location,
        },
        key: EventKey::from_stored(r.event_key),
    })
}

/// An `estimate_changes` row as the database holds it.
#[derive(FromRow)]
pub(super) struct EstimateChangeRow {
    id: String,
    source: String,
    previous_earliest: Option<String>,
    previous_latest: Option<String>,
    current_earliest: Option<String>,
    current_latest: Option<String>,
    reason: String,
    recorded_at: i64,
}

pub(super) fn decode_estimate_change<'r, R: Row>(
    row: &'r R,
) -> Result<(Timestamp, EstimateChange), StoreError>
where
    EstimateChangeRow: FromRow<'r, R>,
{
    let r = EstimateChangeRow::from_row(row).map_err(|e| corrupt("estimate_changes", e))?;
    let c = Cols::new("estimate_changes", &r.id);
    let source = match r.source.as_str() {
        "carrier" => EstimateSource::Carrier,
        "promise" => EstimateSource::Promise,
        other => return Err(c.err("source", format!("unknown source `{other}`"))),
    };
    let change = EstimateChange {
        source,
        previous: c.window(
            "previous",
            r.previous_earliest.as_deref(),
            r.previous_latest.as_deref(),
        )?,
        current: c.window(
            "current",
            r.current_earliest.as_deref(),
            r.current_latest.as_deref(),
        )?,
        reason: r.reason,
    };
    Ok((c.time("recorded_at", r.recorded_at)?, change))
}

/// A `notifications` row as the database holds it.
#[derive(FromRow)]
pub(super) struct NotificationRow {
    id: String,
    shipment_id: String,
    seq: i64,
    trigger: String,
    dedupe_key: String,
    channel: String,
    recipient: String,
    locale: String,
    reason: String,
    facts: String,
    state: String,
    attempts: i64,
    available_at: i64,
    message_id: Option<String>,
    provider_response: Option<String>,
    last_error: Option<String>,
    created_at: i64,
    sent_at: Option<i64>,
}

pub(super) fn decode_notification<'r, R: Row>(row: &'r R) -> Result<Notification, StoreError>
where
    NotificationRow: FromRow<'r, R>,
{
    let r = NotificationRow::from_row(row).map_err(|e| corrupt("notifications", e))?;
    let c = Cols::new("notifications", &r.id);
    Ok(Notification {
        id: c.uuid("id", &r.id)?,
        shipment_id: c.uuid("shipment_id", &r.shipment_id)?,
        seq: r.seq,
        trigger: c.name::<Trigger>("trigger", &r.trigger)?,
        dedupe_key: r.dedupe_key,
        channel: c.name::<Channel>("channel", &r.channel)?,
        recipient: r.recipient,
        locale: c.parse("locale", &r.locale, Locale::parse)?,
        reason: r.reason,
        facts: serde_json::from_str::<Facts>(&r.facts).map_err(|e| c.err("facts", e))?,
        state: c.name::<NotificationState>("state", &r.state)?,
        attempts: c.count("attempts", r.attempts)?,
        available_at: c.time("available_at", r.available_at)?,
        message_id: r.message_id,
        provider_response: r.provider_response,
        last_error: r.last_error,
        created_at: c.time("created_at", r.created_at)?,
        sent_at: c.opt_time("sent_at", r.sent_at)?,
    })
}

/// A `delivery_changes` row as the database holds it.
#[derive(FromRow)]
pub(super) struct ChangeRow {
    id: String,
    shipment_id: String,
    merchant_id: String,
    details: String,
    state: String,
    code_hash: Option<String>,
    code_sent_to: Option<String>,
    code_expires_at: i64,
    wrong_codes: i64,
    client_hash: Option<String>,
    approval_reason: Option<String>,
    outcome_note: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl ChangeRow {
    pub(super) fn into_request(self) -> Result<ChangeRequest, StoreError> {
        let c = Cols::new("delivery_changes", &self.id);
        Ok(ChangeRequest {
            id: c.uuid("id", &self.id)?,
            shipment_id: c.uuid("shipment_id", &self.shipment_id)?,
            merchant_id: MerchantId(c.uuid("merchant_id", &self.merchant_id)?),
            details: serde_json::from_str(&self.details).map_err(|e| c.err("details", e))?,
            state: c.name("state", &self.state)?,
            code_hash: self.code_hash,
            code_sent_to: self.code_sent_to,
            code_expires_at: c.time("code_expires_at", self.code_expires_at)?,
            wrong_codes: c.count("wrong_codes", self.wrong_codes)?,
            client_hash: self.client_hash,
            approval_reason: self.approval_reason,
            outcome_note: self.outcome_note,
            created_at: c.time("created_at", self.created_at)?,
            updated_at: c.time("updated_at", self.updated_at)?,
        })
    }
}

/// A `merchant_emails` row as the database holds it.
#[derive(FromRow)]
pub(super) struct EmailRow {
    id: String,
    merchant_id: String,
    shipment_id: Option<String>,
    change_id: Option<String>,
    state: String,
    sender: String,
    recipient: String,
    subject: String,
    body: String,
    attempts: i64,
    due_at: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    sent_at: Option<i64>,
}

impl EmailRow {
    pub(super) fn into_email(self) -> Result<MerchantEmail, StoreError> {
        let c = Cols::new("merchant_emails", &self.id);
        let optional_uuid = |column, value: &Option<String>| {
            value.as_deref().map(|v| c.uuid(column, v)).transpose()
        };
        let optional_time =
            |column, value: Option<i64>| value.map(|v| c.time(column, v)).transpose();
        Ok(MerchantEmail {
            id: c.uuid("id", &self.id)?,
            merchant_id: MerchantId(c.uuid("merchant_id", &self.merchant_id)?),
            shipment_id: optional_uuid("shipment_id", &self.shipment_id)?,
            change_id: optional_uuid("change_id", &self.change_id)?,
            state: MerchantEmailState::parse(&self.state)
                .ok_or_else(|| c.err("state", format!("unknown state `{}`", self.state)))?,
            sender: self.sender,
            recipient: self.recipient,
            subject: self.subject,
            body: self.body,
            attempts: c.count("attempts", self.attempts)?,
            due_at: optional_time("due_at", self.due_at)?,
            last_error: self.last_error,
            created_at: c.time("created_at", self.created_at)?,
            sent_at: optional_time("sent_at", self.sent_at)?,
        })
    }
}

/// A `merchants` row as the database holds it.
#[derive(FromRow)]
pub(super) struct MerchantRow {
    id: String,
    slug: String,
    name: String,
    created_at: i64,
}

pub(super) fn decode_merchant<'r, R: Row>(row: &'r R) -> Result<Merchant, StoreError>
where
    MerchantRow: FromRow<'r, R>,
{
    let r = MerchantRow::from_row(row).map_err(|e| corrupt("merchants", e))?;
    let c = Cols::new("merchants", &r.id);
    Ok(Merchant {
        id: MerchantId(c.uuid("id", &r.id)?),
        slug: c.parse("slug", &r.slug, MerchantSlug::parse)?,
        name: r.name,
        created_at: c.time("created_at", r.created_at)?,
    })
}

/// An `api_keys` row as the database holds it.
#[derive(FromRow)]
pub(super) struct ApiKeyRow {
    id: String,
    merchant_id: String,
    name: String,
    prefix: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

pub(super) fn decode_api_key<'r, R: Row>(row: &'r R) -> Result<ApiKey, StoreError>
where
    ApiKeyRow: FromRow<'r, R>,
{
    let r = ApiKeyRow::from_row(row).map_err(|e| corrupt("api_keys", e))?;
    let c = Cols::new("api_keys", &r.id);
    Ok(ApiKey {
        id: c.uuid("id", &r.id)?,
        merchant_id: MerchantId(c.uuid("merchant_id", &r.merchant_id)?),
        name: r.name,
        prefix: r.prefix,
        created_at: c.time("created_at", r.created_at)?,
        last_used_at: c.opt_time("last_used_at", r.last_used_at)?,
        revoked_at: c.opt_time("revoked_at", r.revoked_at)?,
    })
}

/// What an account's sealed credentials are bound to: they open for this account's row only.
pub(super) fn credentials_context(account: Uuid) -> String {
    format!("carrier_account:{account}")
}

/// What the `credentials` column holds for an account's credentials: their JSON, sealed
/// for this account under the current master key.
pub(super) fn seal_credentials(vault: &Vault, account: Uuid, credentials: &Credentials) -> String {
    vault.seal(
        &credentials_context(account),
        credentials.expose_json().to_string().as_bytes(),
    )
}

/// The credentials an account's `credentials` column holds. A value stored before Waymark
/// sealed them is plain JSON; [`super::Store::reseal_secrets`] seals those at start.
pub(super) fn open_credentials(
    vault: &Vault,
    c: &Cols<'_>,
    account: Uuid,
    text: &str,
) -> Result<Credentials, StoreError> {
    let json = if vault::sealed_key_id(text).is_some() {
        let opened = vault
            .open(&credentials_context(account), text)
            .map_err(|e| c.err("credentials", e))?;
        // serde_json's message gives a position, never the secret itself.
        serde_json::from_slice(opened.expose_secret())
    } else {
        serde_json::from_str(text)
    };
    json.map_err(|e| c.err("credentials", e))
}

pub(super) fn decode_account<'r, R: Row>(
    vault: &Vault,
    row: &'r R,
) -> Result<CarrierAccount, StoreError>
where
    AccountRow: FromRow<'r, R>,
{
    let r = AccountRow::from_row(row).map_err(|e| corrupt("carrier_accounts", e))?;
    let c = Cols::new("carrier_accounts", &r.id);
    let id = c.uuid("id", &r.id)?;
    Ok(CarrierAccount {
        id,
        merchant_id: MerchantId(c.uuid("merchant_id", &r.merchant_id)?),
        carrier: c.parse("carrier", &r.carrier, CarrierCode::parse)?,
        name: r.name,
        credentials: open_credentials(vault, &c, id, &r.credentials)?,
        base_url: r.base_url,
        daily_quota: r
            .daily_quota
            .map(|q| c.count("daily_quota", q))
            .transpose()?,
        requests_per_second: r.requests_per_second,
    })
}

/// A `carrier_accounts` row as the database holds it.
#[derive(FromRow)]
pub(super) struct AccountRow {
    id: String,
    merchant_id: String,
    carrier: String,
    name: String,
    credentials: String,
    base_url: Option<String>,
    daily_quota: Option<i64>,
    requests_per_second: Option<f64>,
}

//! `/api/v1/shipments`: register, list, read, change and erase the merchant's shipments.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::problem::ProblemDetails;
use super::{ApiJson, ApiState, Caller, Problem, json_response, parse_json};
use crate::domain::{
    InvalidField, KeyedEvent, MerchantId, Notification, Reason, Shipment, Status, TrackingNumber,
};
use crate::intake::{self, IntakeError, ShipmentChangeInput, ShipmentInput};
use crate::links::LinkPurpose;
use crate::notify::dispatcher::Sender;
use crate::store::{ShipmentChanges, ShipmentFilter, StoreError};

/// Shipments a page lists when the request does not say.
const DEFAULT_PAGE: u32 = 50;
/// The most a page lists.
const MAX_PAGE: u32 = 200;
/// The longest `Idempotency-Key` taken.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// A delivery date or window, in the destination's calendar.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WindowView {
    #[schema(value_type = String, format = Date)]
    pub earliest: String,
    #[schema(value_type = String, format = Date)]
    pub latest: String,
}

/// A shipment as the merchant sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShipmentView {
    pub id: Uuid,
    pub carrier: String,
    pub carrier_account_id: Uuid,
    pub tracking_number: String,
    pub status: Status,
    pub reason: Option<Reason>,
    /// False once the journey is over: Waymark polls it no more.
    pub active: bool,
    /// The customer asked for no more messages.
    pub muted: bool,
    /// Empty once the customer's data was erased.
    pub customer_email: Option<String>,
    pub customer_name: Option<String>,
    /// E.164.
    pub customer_phone: Option<String>,
    /// `und` when the merchant did not give it.
    pub locale: String,
    pub time_zone: String,
    pub destination_country: String,
    pub destination_postal_code: Option<String>,
    pub order_reference: Option<String>,
    pub promise: Option<WindowView>,
    /// The carrier's latest estimate.
    pub estimate: Option<WindowView>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_event_at: Option<Timestamp>,
    /// The customer's tracking page; none once erased.
    pub tracking_url: Option<String>,
    /// Why the latest poll failed, if it did.
    pub last_error: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub erased_at: Option<Timestamp>,
}

impl ShipmentView {
    pub fn of(shipment: &Shipment, sender: &Sender) -> Self {
        let window = |w: &crate::domain::DeliveryWindow| WindowView {
            earliest: w.earliest.to_string(),
            latest: w.latest.to_string(),
        };
        ShipmentView {
            id: shipment.id,
            carrier: shipment.carrier.to_string(),
            carrier_account_id: shipment.carrier_account_id,
            tracking_number: shipment.tracking_number.to_string(),
            status: shipment.journey.status,
            reason: shipment.journey.reason,
            active: shipment.journey.active,
            muted: shipment.muted,
            customer_email: shipment
                .customer
                .email
                .as_ref()
                .map(|e| e.as_str().to_owned()),
            customer_name: shipment.customer.name.clone(),
            customer_phone: shipment
                .customer
                .phone
                .as_ref()
                .map(|p| p.as_str().to_owned()),
            locale: shipment.customer.locale.as_str().to_owned(),
            time_zone: shipment.customer.time_zone.as_str().to_owned(),
            destination_country: shipment.destination_country.as_str().to_owned(),
            destination_postal_code: shipment
                .destination_postal_code
                .as_ref()
                .map(|p| p.as_str().to_owned()),
            order_reference: shipment.order_reference.clone(),
            promise: shipment.promise.as_ref().map(window),
            estimate: shipment.journey.carrier_estimate.as_ref().map(window),
            created_at: shipment.created_at,
            last_event_at: shipment.journey.last_event_at,
            tracking_url: shipment.erased_at.is_none().then(|| {
                format!(
                    "{}/t/{}",
                    sender.public_url.trim_end_matches('/'),
                    sender.links.token(LinkPurpose::Tracking, shipment.id)
                )
            }),
            last_error: shipment.last_error.clone(),
            erased_at: shipment.erased_at,
        }
    }
}

/// One scan, normalised.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub status: Status,
    pub reason: Option<Reason>,
    /// The carrier's code and words for it.
    pub carrier_code: String,
    pub carrier_text: String,
    pub location: Option<String>,
}

impl From<&KeyedEvent> for EventView {
    fn from(e: &KeyedEvent) -> Self {
        EventView {
            at: e.event.time.at,
            status: e.event.status,
            reason: e.event.reason,
            carrier_code: e.event.raw_code.clone(),
            carrier_text: e.event.raw_text.clone(),
            location: e.event.location.clone(),
        }
    }
}

/// A change of the expected delivery, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EstimateChangeView {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// `carrier` or `promise`.
    pub source: String,
    pub previous: Option<WindowView>,
    pub current: Option<WindowView>,
    pub reason: String,
}

/// A message to the customer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageView {
    pub id: Uuid,
    /// What it is about (`delayed`, `out_for_delivery`, ...).
    pub trigger: String,
    pub channel: String,
    /// `pending`, `sending`, `sent`, `failed`, `superseded` or `suppressed`.
    pub state: String,
    pub attempts: u32,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

impl From<&Notification> for MessageView {
    fn from(n: &Notification) -> Self {
        MessageView {
            id: n.id,
            trigger: n.trigger.as_str().to_owned(),
            channel: n.channel.as_str().to_owned(),
            state: n.state.as_str().to_owned(),
            attempts: n.attempts,
            created_at: n.created_at,
            sent_at: n.sent_at,
            last_error: n.last_error.clone(),
        }
    }
}

/// A shipment with its journey: the scans, the estimate's history, the messages.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShipmentDetail {
    #[serde(flatten)]
    pub shipment: ShipmentView,
    pub timeline: Vec<EventView>,
    pub estimate_history: Vec<EstimateChangeView>,
    pub messages: Vec<MessageView>,
}

/// A page of shipments, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShipmentPage {
    pub shipments: Vec<ShipmentView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Which shipments to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub status: Option<Status>,
    pub reason: Option<Reason>,
    /// Late against the promise, or told so.
    pub delayed: Option<bool>,
    /// Told it stopped moving, with no scan since.
    pub stalled: Option<bool>,
    pub carrier: Option<String>,
    /// Registered at or after (RFC 3339).
    pub created_from: Option<String>,
    /// Registered before (RFC 3339).
    pub created_until: Option<String>,
    pub order_reference: Option<String>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 200; 50 by default.
    pub limit: Option<u32>,
}

/// Register a shipment.
///
/// With an `Idempotency-Key` header, repeating the request (same key, same body) answers
/// what the first answered; the same key with another body is refused. A tracking number the
/// account already has answers 409 with the existing shipment.
#[utoipa::path(
    post, path = "/shipments", operation_id = "create_shipment", tag = "shipments",
    request_body = ShipmentInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    responses(
        (status = 201, body = ShipmentView, description = "Registered"),
        (status = 400, body = ProblemDetails), (status = 401, body = ProblemDetails),
        (status = 409, body = ProblemDetails, description = "Already registered: `existing` holds it"),
        (status = 413, body = ProblemDetails), (status = 415, body = ProblemDetails),
        (status = 422, body = ProblemDetails), (status = 429, body = ProblemDetails),
    )
)]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    body: super::JsonBody,
) -> Result<Response, Problem> {
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value.to_str().ok().map(str::trim).unwrap_or_default();
            if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
                return Err(Problem::bad_request(
                    "Idempotency-Key",
                    format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible characters"),
                ));
            }
            Some(key.to_owned())
        }
    };
    let request_hash = hex::encode(Sha256::digest(&body.0));
    if let Some(key) = &idempotency_key {
        if let Some(stored) = state
            .store
            .idempotent_response(caller.merchant, key)
            .await?
        {
            if stored.request_hash != request_hash {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with another request",
                ));
            }
            let status = StatusCode::from_u16(stored.status).map_err(Problem::internal)?;
            let body: serde_json::Value =
                serde_json::from_str(&stored.body).map_err(Problem::internal)?;
            return Ok(json_response(status, body));
        }
    }
    let request: ShipmentInput = parse_json(&body.0)?;
    let (status, answer) = match register(&state, caller.merchant, request).await {
        Ok(view) => (
            StatusCode::CREATED,
            serde_json::to_value(view).map_err(Problem::internal)?,
        ),
        Err(problem) if problem.status().is_client_error() => (
            problem.status(),
            serde_json::to_value(&problem).map_err(Problem::internal)?,
        ),
        Err(problem) => return Err(problem),
    };
    let answer_text = answer.to_string();
    if let Some(key) = &idempotency_key {
        // A second request with the key that raced this one stored its answer first: both
        // answer what was stored.
        let stored = state
            .store
            .save_idempotent_response(
                caller.merchant,
                key,
                &request_hash,
                status.as_u16(),
                &answer_text,
                state.clock.now(),
            )
            .await?;
        if stored.request_hash == request_hash && stored.body != answer_text {
            let status = StatusCode::from_u16(stored.status).map_err(Problem::internal)?;
            let body: serde_json::Value =
                serde_json::from_str(&stored.body).map_err(Problem::internal)?;
            return Ok(problem_or_json(status, body));
        }
    }
    Ok(problem_or_json(status, answer))
}

/// A stored answer sent again: errors keep their problem+json type.
fn problem_or_json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = json_response(status, body);
    if status.is_client_error() {
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(super::problem::PROBLEM_JSON),
        );
    }
    response
}

async fn register(
    state: &ApiState,
    merchant: MerchantId,
    input: ShipmentInput,
) -> Result<ShipmentView, Problem> {
    match intake::register(
        state.store.as_ref(),
        &state.carriers,
        merchant,
        &input,
        state.clock.now(),
    )
    .await
    {
        Ok(shipment) => Ok(ShipmentView::of(&shipment, state.brands.defaults())),
        Err(IntakeError::Invalid(fields)) => {
            if let [field] = fields.as_slice()
                && field.field == "tracking_number"
                && field.reason.contains("already registered")
            {
                let existing = existing_shipment(state, merchant, &input).await?;
                let problem = Problem::duplicate("tracking_number", field.reason.clone());
                return Err(match existing {
                    Some(shipment) => {
                        problem.with_existing(ShipmentView::of(&shipment, state.brands.defaults()))
                    }
                    None => problem,
                });
            }
            Err(Problem::invalid(&fields))
        }
        Err(IntakeError::Store(e)) => Err(e.into()),
    }
}

/// The merchant's shipment a refused registration collided with.
async fn existing_shipment(
    state: &ApiState,
    merchant: MerchantId,
    input: &ShipmentInput,
) -> Result<Option<Shipment>, Problem> {
    let Ok(valid) = input.validate(&state.carriers) else {
        return Ok(None);
    };
    let Some(account) = state
        .store
        .carrier_account_by_name(merchant, &valid.carrier, &valid.account)
        .await?
    else {
        return Ok(None);
    };
    let number = TrackingNumber::parse(&input.tracking_number)
        .map_err(|e| Problem::invalid(&[InvalidField::new(e.field, e.reason)]))?;
    Ok(state
        .store
        .shipments_by_number(&number)
        .await?
        .into_iter()
        .find(|s| s.carrier_account_id == account.id))
}

/// List the merchant's shipments, newest first, a page at a time.
#[utoipa::path(
    get, path = "/shipments", operation_id = "list_shipments", tag = "shipments",
    params(ListQuery),
    responses(
        (status = 200, body = ShipmentPage),
        (status = 400, body = ProblemDetails), (status = 401, body = ProblemDetails),
        (status = 422, body = ProblemDetails), (status = 429, body = ProblemDetails),
    )
)]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request("query", e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::invalid_field(
            "limit".into(),
            format!("must be 1 to {MAX_PAGE}"),
        ));
    }
    let time = |field: &str, value: &Option<String>| -> Result<Option<Timestamp>, Problem> {
        value
            .as_deref()
            .map(|v| {
                v.parse::<Timestamp>().map_err(|_| {
                    Problem::invalid_field(field.into(), "not an RFC 3339 time".into())
                })
            })
            .transpose()
    };
    let filter = ShipmentFilter {
        status: query.status,
        reason: query.reason,
        delayed: query.delayed,
        stalled: query.stalled,
        carrier: query
            .carrier
            .as_deref()
            .map(|c| {
                state
                    .carriers
                    .known(c)
                    .map_err(|e| Problem::invalid_field("carrier".into(), e.to_string()))
            })
            .transpose()?,
        created_from: time("created_from", &query.created_from)?,
        created_until: time("created_until", &query.created_until)?,
        order_reference: query.order_reference.clone(),
        after: query
            .cursor
            .as_deref()
            .map(|c| {
                Uuid::parse_str(c)
                    .map_err(|_| Problem::invalid_field("cursor".into(), "not a cursor".into()))
            })
            .transpose()?,
    };
    // One more than the page, to know whether another follows.
    let mut shipments = state
        .store
        .merchant_shipments(caller.merchant, &filter, limit + 1)
        .await?;
    let more = shipments.len() > limit as usize;
    shipments.truncate(limit as usize);
    let next_cursor = more
        .then(|| shipments.last().map(|s| s.id.to_string()))
        .flatten();
    Ok(json_response(
        StatusCode::OK,
        ShipmentPage {
            shipments: shipments
                .iter()
                .map(|s| ShipmentView::of(s, state.brands.defaults()))
                .collect(),
            next_cursor,
        },
    ))
}

/// The merchant's shipment, or 404 (for another merchant's too).
async fn own_shipment(state: &ApiState, caller: &Caller, id: &str) -> Result<Shipment, Problem> {
    let id = Uuid::parse_str(id).map_err(|_| Problem::not_found("shipment"))?;
    state
        .store
        .merchant_shipment(caller.merchant, id)
        .await?
        .ok_or_else(|| Problem::not_found("shipment"))
}

/// A shipment with its timeline, estimate history and messages.
#[utoipa::path(
    get, path = "/shipments/{id}", operation_id = "get_shipment", tag = "shipments",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = ShipmentDetail),
        (status = 401, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 429, body = ProblemDetails),
    )
)]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let shipment = own_shipment(&state, &caller, &id).await?;
    Ok(json_response(
        StatusCode::OK,
        detail(&state, &shipment).await?,
    ))
}

async fn detail(state: &ApiState, shipment: &Shipment) -> Result<ShipmentDetail, Problem> {
    let window = |w: &crate::domain::DeliveryWindow| WindowView {
        earliest: w.earliest.to_string(),
        latest: w.latest.to_string(),
    };
    let timeline = state.store.timeline(shipment.id).await?;
    let estimates = state.store.estimate_changes(shipment.id).await?;
    let messages = state.store.notifications(shipment.id).await?;
    Ok(ShipmentDetail {
        shipment: ShipmentView::of(shipment, state.brands.defaults()),
        timeline: timeline.iter().map(EventView::from).collect(),
        estimate_history: estimates
            .iter()
            .map(|(at, change)| EstimateChangeView {
                at: *at,
                source: change.source.as_str().to_owned(),
                previous: change.previous.as_ref().map(window),
                current: change.current.as_ref().map(window),
                reason: change.reason.clone(),
            })
            .collect(),
        messages: messages.iter().map(MessageView::from).collect(),
    })
}

/// Change the promise, the customer's contact details, or mute the shipment.
#[utoipa::path(
    patch, path = "/shipments/{id}", operation_id = "update_shipment", tag = "shipments",
    params(("id" = Uuid, Path)),
    request_body = ShipmentChangeInput,
    responses(
        (status = 200, body = ShipmentView),
        (status = 400, body = ProblemDetails), (status = 401, body = ProblemDetails), (status = 404, body = ProblemDetails),
        (status = 409, body = ProblemDetails, description = "The customer's data was erased"),
        (status = 415, body = ProblemDetails), (status = 422, body = ProblemDetails), (status = 429, body = ProblemDetails),
    )
)]
pub async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(update): ApiJson<ShipmentChangeInput>,
) -> Result<Response, Problem> {
    let shipment = own_shipment(&state, &caller, &id).await?;
    if shipment.erased_at.is_some() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "erased",
            "this shipment's personal data was erased; it cannot be changed",
        ));
    }
    let changes =
        intake::shipment_changes(&shipment, &update).map_err(|fields| Problem::invalid(&fields))?;
    let updated = match changes {
        None => shipment,
        Some(changes) => apply(&state, caller.merchant, shipment.id, &changes).await?,
    };
    Ok(json_response(
        StatusCode::OK,
        ShipmentView::of(&updated, state.brands.defaults()),
    ))
}

async fn apply(
    state: &ApiState,
    merchant: MerchantId,
    id: Uuid,
    changes: &ShipmentChanges,
) -> Result<Shipment, Problem> {
    match state
        .store
        .update_shipment(merchant, id, changes, state.clock.now())
        .await
    {
        Ok(Some(shipment)) => Ok(shipment),
        Ok(None) => Err(Problem::not_found("shipment")),
        Err(StoreError::Duplicate { field, detail }) => Err(Problem::duplicate(field, detail)),
        Err(e) => Err(e.into()),
    }
}

/// Erase the customer's personal data (name, address, postal code, order reference, what the
/// carrier said about who took the parcel, message recipients) and stop following it; what is
/// left is anonymous delivery statistics.
#[utoipa::path(
    delete, path = "/shipments/{id}", operation_id = "erase_shipment", tag = "shipments",
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Erased"),
        (status = 401, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 429, body = ProblemDetails),
    )
)]
pub async fn erase(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let shipment = own_shipment(&state, &caller, &id).await?;
    if shipment.erased_at.is_none() {
        state
            .store
            .erase_shipment(shipment.id, state.clock.now())
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_with_an_unknown_field_is_refused_naming_it() {
        let body = br#"{"tracking_number":"X","customer_email":"a@b.c","locale":"en",
                       "destination_country":"DE","colour":"red"}"#;
        let problem = parse_json::<ShipmentInput>(body).unwrap_err();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.field.as_deref(), Some("colour"));
    }

    #[test]
    fn a_missing_field_is_named() {
        let problem = parse_json::<ShipmentInput>(br#"{"tracking_number":"X"}"#).unwrap_err();
        assert_eq!(problem.field.as_deref(), Some("customer_email"));
    }

    #[test]
    fn a_wrong_type_is_named_by_its_path() {
        let problem = parse_json::<ShipmentChangeInput>(br#"{"muted":"yes"}"#).unwrap_err();
        assert_eq!(problem.field.as_deref(), Some("muted"));
        let problem = parse_json::<ShipmentChangeInput>(b"{not json").unwrap_err();
        assert_eq!(problem.status, 400);
    }
}

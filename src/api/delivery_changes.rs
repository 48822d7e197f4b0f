//! `/api/v1/delivery-changes`: what customers asked to change about their deliveries, with each
//! request's audit trail; the merchant approves or rejects those its risk rules hold back.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::problem::ProblemDetails;
use super::{ApiJson, ApiState, Caller, Problem, json_response};
use crate::delivery_changes::ChangeError;
use crate::domain::{ChangeDetails, ChangeEvent, ChangeRequest, ChangeState};

/// A delivery change as the merchant sees it: never the code, nor the client's address.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangeView {
    pub id: Uuid,
    pub shipment_id: Uuid,
    pub details: ChangeDetails,
    pub state: ChangeState,
    /// Where the one-time code went, masked.
    pub code_sent_to: Option<String>,
    pub wrong_codes: u32,
    /// Why it waits for the merchant's approval.
    pub approval_reason: Option<String>,
    /// The merchant's reason for a rejection, or why it could not be made.
    pub outcome_note: Option<String>,
    #[schema(value_type = String)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = String)]
    pub updated_at: jiff::Timestamp,
    /// Every step, oldest first (in the single request's answer only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<Vec<ChangeEvent>>,
}

impl ChangeView {
    fn of(change: ChangeRequest, audit: Option<Vec<ChangeEvent>>) -> ChangeView {
        ChangeView {
            id: change.id,
            shipment_id: change.shipment_id,
            details: change.details,
            state: change.state,
            code_sent_to: change.code_sent_to,
            wrong_codes: change.wrong_codes,
            approval_reason: change.approval_reason,
            outcome_note: change.outcome_note,
            created_at: change.created_at,
            updated_at: change.updated_at,
            audit,
        }
    }
}

/// Which requests to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChangeQuery {
    /// Only requests in this state (`awaiting_approval` for those to decide).
    pub state: Option<String>,
    /// At most this many, newest first (1 to 500; 100 when not given).
    pub limit: Option<u32>,
}

/// Why a request is rejected.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    /// Told to the customer in the email about it.
    pub reason: Option<String>,
}

fn problem(error: ChangeError) -> Problem {
    match error {
        ChangeError::NotFound => Problem::not_found("delivery change"),
        ChangeError::Conflict { .. } => {
            Problem::new(StatusCode::CONFLICT, "wrong_state", error.to_string())
        }
        ChangeError::Store(e) => e.into(),
        other => Problem::internal(other),
    }
}

/// The merchant's delivery changes, newest first.
#[utoipa::path(
    get, path = "/delivery-changes", operation_id = "list_delivery_changes", tag = "delivery changes",
    params(ChangeQuery),
    responses(
        (status = 200, body = Vec<ChangeView>),
        (status = 401, body = ProblemDetails), (status = 422, body = ProblemDetails), (status = 429, body = ProblemDetails),
    )
)]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    query: Result<Query<ChangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request("query", e.body_text()))?;
    let wanted = query
        .state
        .as_deref()
        .map(str::parse::<ChangeState>)
        .transpose()
        .map_err(|e| Problem::invalid_field("state".into(), e.to_string()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid_field(
            "limit".into(),
            "must be 1 to 500".into(),
        ));
    }
    let changes = state
        .store
        .merchant_delivery_changes(caller.merchant, wanted, limit)
        .await?;
    let views: Vec<ChangeView> = changes
        .into_iter()
        .map(|c| ChangeView::of(c, None))
        .collect();
    Ok(json_response(StatusCode::OK, views))
}

async fn own_change(state: &ApiState, caller: &Caller, id: &str) -> Result<ChangeRequest, Problem> {
    let id = Uuid::parse_str(id).map_err(|_| Problem::not_found("delivery change"))?;
    state
        .store
        .delivery_change(id)
        .await?
        .filter(|c| c.merchant_id == caller.merchant)
        .ok_or_else(|| Problem::not_found("delivery change"))
}

async fn with_audit(state: &ApiState, change: ChangeRequest) -> Result<ChangeView, Problem> {
    let audit = state.store.delivery_change_events(change.id).await?;
    Ok(ChangeView::of(change, Some(audit)))
}

/// One delivery change with its audit trail.
#[utoipa::path(
    get, path = "/delivery-changes/{id}", operation_id = "get_delivery_change", tag = "delivery changes",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ChangeView), (status = 401, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 429, body = ProblemDetails))
)]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let change = own_change(&state, &caller, &id).await?;
    Ok(json_response(
        StatusCode::OK,
        with_audit(&state, change).await?,
    ))
}

/// Approve a change waiting for the merchant: it is carried out now, or refused when the parcel
/// has moved on meanwhile.
#[utoipa::path(
    post, path = "/delivery-changes/{id}/approve", operation_id = "approve_delivery_change", tag = "delivery changes",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = ChangeView),
        (status = 401, body = ProblemDetails), (status = 404, body = ProblemDetails),
        (status = 409, body = ProblemDetails, description = "The change is not waiting for approval"),
        (status = 429, body = ProblemDetails),
    )
)]
pub async fn approve(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let change = own_change(&state, &caller, &id).await?;
    let done = state
        .changes
        .approve(caller.merchant, change.id)
        .await
        .map_err(problem)?;
    Ok(json_response(
        StatusCode::OK,
        with_audit(&state, done).await?,
    ))
}

/// Reject a change waiting for the merchant; the customer is told by email, with the reason.
#[utoipa::path(
    post, path = "/delivery-changes/{id}/reject", operation_id = "reject_delivery_change", tag = "delivery changes",
    params(("id" = Uuid, Path)),
    request_body = Rejection,
    responses(
        (status = 200, body = ChangeView),
        (status = 401, body = ProblemDetails), (status = 404, body = ProblemDetails),
        (status = 409, body = ProblemDetails, description = "The change is not waiting for approval"),
        (status = 415, body = ProblemDetails), (status = 422, body = ProblemDetails), (status = 429, body = ProblemDetails),
    )
)]
pub async fn reject(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(rejection): ApiJson<Rejection>,
) -> Result<Response, Problem> {
    let reason = rejection
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 500 || r.contains(['\r', '\n']))
    {
        return Err(Problem::invalid_field(
            "reason".into(),
            "must be at most 500 characters on one line".into(),
        ));
    }
    let change = own_change(&state, &caller, &id).await?;
    let done = state
        .changes
        .reject(caller.merchant, change.id, reason)
        .await
        .map_err(problem)?;
    Ok(json_response(
        StatusCode::OK,
        with_audit(&state, done).await?,
    ))
}

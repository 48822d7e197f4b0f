//! `/api/v1/settings` and `/api/v1/previews`: the merchant's branding and notification
//! settings, and its messages rendered as its customers would get them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::problem::ProblemDetails;
use super::{ApiJson, ApiState, Caller, Problem, json_response};
use crate::domain::{Locale, MerchantSettings, Trigger};
use crate::notify::preview;

/// The merchant's settings.
#[utoipa::path(
    get, path = "/settings", operation_id = "get_settings", tag = "settings",
    responses((status = 200, body = MerchantSettings), (status = 401, body = ProblemDetails), (status = 429, body = ProblemDetails))
)]
pub async fn show(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    let settings = state
        .store
        .merchant_settings(caller.merchant)
        .await?
        .unwrap_or_default();
    Ok(json_response(StatusCode::OK, settings))
}

/// Replace the merchant's settings; what is left out comes from the configuration. Messages
/// use them within seconds.
#[utoipa::path(
    put, path = "/settings", operation_id = "replace_settings", tag = "settings",
    request_body = MerchantSettings,
    responses(
        (status = 200, body = MerchantSettings),
        (status = 400, body = ProblemDetails), (status = 401, body = ProblemDetails),
        (status = 415, body = ProblemDetails), (status = 422, body = ProblemDetails),
        (status = 429, body = ProblemDetails),
    )
)]
pub async fn replace(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(settings): ApiJson<MerchantSettings>,
) -> Result<Response, Problem> {
    let problems = settings.check();
    if !problems.is_empty() {
        return Err(Problem::invalid(&problems));
    }
    if !state
        .store
        .save_merchant_settings(caller.merchant, &settings)
        .await?
    {
        return Err(Problem::internal(format!(
            "merchant {} of a live key is gone",
            caller.merchant
        )));
    }
    // This process's messages use them at once; other processes' within seconds.
    state.brands.forget(caller.merchant);
    Ok(json_response(StatusCode::OK, settings))
}

/// Which message to preview.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub trigger: Trigger,
    /// The language to render in; by default the shipment's customer's, else the merchant's.
    pub locale: Option<String>,
    /// One of the merchant's shipments, to see what its customer would get; a sample one when
    /// left out.
    pub shipment_id: Option<Uuid>,
}

/// A rendered email.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewResponse {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Render a trigger's email in a language, for a sample shipment or one of the merchant's, with
/// the merchant's current branding. Nothing is sent or stored.
#[utoipa::path(
    post, path = "/previews", operation_id = "preview_message", tag = "settings",
    request_body = PreviewRequest,
    responses(
        (status = 200, body = PreviewResponse),
        (status = 400, body = ProblemDetails), (status = 401, body = ProblemDetails),
        (status = 404, body = ProblemDetails, description = "No such shipment of the merchant's"),
        (status = 415, body = ProblemDetails), (status = 422, body = ProblemDetails),
        (status = 429, body = ProblemDetails),
    )
)]
pub async fn preview(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(request): ApiJson<PreviewRequest>,
) -> Result<Response, Problem> {
    let now = state.clock.now();
    let locale = request
        .locale
        .as_deref()
        .map(Locale::parse)
        .transpose()
        .map_err(|e| Problem::invalid(&[e]))?;
    let brand = state.brands.of(caller.merchant).await?;
    let (mut shipment, timeline) = match request.shipment_id {
        Some(id) => {
            let shipment = state
                .store
                .merchant_shipment(caller.merchant, id)
                .await?
                .filter(|s| s.erased_at.is_none())
                .ok_or_else(|| Problem::not_found("shipment"))?;
            let timeline = state.store.timeline(shipment.id).await?;
            (shipment, timeline)
        }
        None => {
            let merchants =
                Locale::parse(brand.language.as_str()).map_err(|e| Problem::internal(e.reason))?;
            let locale = locale.clone().unwrap_or(merchants);
            (
                preview::sample_shipment(caller.merchant, &locale, now),
                Vec::new(),
            )
        }
    };
    if let Some(locale) = locale {
        shipment.customer.locale = locale;
    }
    let previewer = preview::Previewer {
        carriers: &state.carriers,
        sender: state.brands.defaults(),
    };
    let rendered = previewer
        .render(&brand, request.trigger, &shipment, &timeline, now)
        .map_err(Problem::internal)?;
    Ok(json_response(
        StatusCode::OK,
        PreviewResponse {
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        },
    ))
}

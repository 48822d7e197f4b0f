//! `POST /api/v1/shipments/import`: a CSV file of shipments over the API, with the same rules
//! and the same per-row report as `waymark shipments import`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::ProblemDetails;
use super::{ApiState, Caller, Problem, body_problem, json_response, media_type};
use crate::intake;

/// The largest CSV file the API takes in one request; larger files go in parts, or with
/// `waymark shipments import`, which streams any size.
pub const MAX_CSV_BODY: usize = 8 * 1024 * 1024;

/// One refused row.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusedRow {
    /// The row's line in the file (the header is line 1).
    pub line: u64,
    /// Each wrong field and why, as a single registration would be told.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    pub imported: u64,
    pub refused: u64,
    /// The first thousand refused rows, in file order.
    pub refusals: Vec<RefusedRow>,
}

/// Register the shipments of a CSV file (`text/csv`, a header row naming the columns:
/// `carrier, tracking_number, customer_email, customer_name, customer_phone, locale, time_zone,
/// destination_country, destination_postal_code, order_reference, promise, account`). Good
/// rows are registered, bad ones reported by line; the answer is 200 either way.
#[utoipa::path(
    post, path = "/shipments/import", operation_id = "import_shipments", tag = "shipments",
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 200, body = ImportResult),
        (status = 400, body = ProblemDetails), (status = 401, body = ProblemDetails),
        (status = 413, body = ProblemDetails), (status = 415, body = ProblemDetails),
        (status = 429, body = ProblemDetails),
    )
)]
pub async fn upload(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, Problem> {
    if media_type(&headers).as_deref() != Some("text/csv") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as text/csv",
        ));
    }
    let body = body.map_err(|rejection| {
        body_problem(
            &rejection,
            &format!(
                "the file is larger than {} MiB; send it in parts, or use `waymark shipments import`",
                MAX_CSV_BODY / (1024 * 1024)
            ),
        )
    })?;
    let report = intake::import_csv(
        state.store.as_ref(),
        &state.carriers,
        caller.merchant,
        &body[..],
        state.clock.now(),
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        ImportResult {
            imported: report.imported,
            refused: report.refused,
            refusals: report
                .refusals
                .into_iter()
                .map(|(line, reason)| RefusedRow { line, reason })
                .collect(),
        },
    ))
}

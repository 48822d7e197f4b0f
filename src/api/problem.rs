//! Errors as `application/problem+json` (RFC 9457): the HTTP status, a stable `code` a program
//! can branch on, a message for a person, and the offending field where there is one.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::error;
use utoipa::ToSchema;

use crate::domain::InvalidField;
use crate::store::StoreError;

/// The media type of every error the API answers with.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One field that was refused, and why.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field as the request named it (`customer_email`, `promise`).
    pub field: String,
    pub reason: String,
}

/// An error answer, boxed: handlers return it on every refusal path, and most answers are not
/// refusals.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Problem(Box<ProblemDetails>);

impl std::ops::Deref for Problem {
    type Target = ProblemDetails;
    fn deref(&self) -> &ProblemDetails {
        &self.0
    }
}

impl std::ops::DerefMut for Problem {
    fn deref_mut(&mut self) -> &mut ProblemDetails {
        &mut self.0
    }
}

/// What an error answer says (RFC 9457's members, and Waymark's `code`, `field`, `errors`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemDetails {
    /// Always `about:blank`: the status and `code` say what happened.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The status's own words (`Unprocessable Content`).
    pub title: String,
    /// The HTTP status, repeated.
    pub status: u16,
    /// Stable, lowercase, for programs: `invalid_field`, `not_found`, `duplicate`, ...
    pub code: &'static str,
    /// What is wrong, for a person.
    pub detail: String,
    /// The first offending field, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every offending field, when a request had several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Seconds to wait before asking again (429), also sent as `Retry-After`.
    #[serde(skip)]
    pub retry_after: Option<u64>,
    /// The resource that is already there (409), so a client can carry on with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub existing: Option<serde_json::Value>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem(Box::new(ProblemDetails {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            code,
            detail: detail.into(),
            field: None,
            errors: Vec::new(),
            retry_after: None,
            existing: None,
        }))
    }

    /// 404, worded the same whether the resource never existed or is another merchant's: a
    /// merchant learns nothing about another's.
    pub fn not_found(what: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no such {what}"),
        )
    }

    /// 400 naming a field of the request that cannot be read at all.
    pub fn bad_request(field: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let mut problem = Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{field}: {detail}"),
        );
        problem.field = Some(field.to_owned());
        problem
    }

    /// 422: the request was understood, but these fields are wrong.
    pub fn invalid(fields: &[InvalidField]) -> Self {
        let errors: Vec<FieldError> = fields
            .iter()
            .map(|f| FieldError {
                field: f.field.to_owned(),
                reason: f.reason.clone(),
            })
            .collect();
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.reason))
            .collect::<Vec<_>>()
            .join("; ");
        let mut problem = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", detail);
        problem.field = errors.first().map(|e| e.field.clone());
        problem.errors = errors;
        problem
    }

    /// 422 for one field, named as the request named it.
    pub fn invalid_field(field: String, reason: String) -> Self {
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("{field}: {reason}"),
        );
        problem.field = Some(field.clone());
        problem.errors = vec![FieldError { field, reason }];
        problem
    }

    /// 409: what the request would create exists.
    pub fn duplicate(field: &str, detail: impl Into<String>) -> Self {
        let mut problem = Problem::new(StatusCode::CONFLICT, "duplicate", detail);
        problem.field = Some(field.to_owned());
        problem
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests with this key; try again in {retry_after} s"),
        );
        problem.retry_after = Some(retry_after);
        problem
    }

    /// 500: logged with its cause, answered without it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        error!(%cause, "API request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on our side; it was logged",
        )
    }

    pub fn with_existing(mut self, existing: impl Serialize) -> Self {
        self.existing = serde_json::to_value(existing).ok();
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.retry_after;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Duplicate { field, detail } => Problem::duplicate(field, detail),
            other => Problem::internal(other),
        }
    }
}

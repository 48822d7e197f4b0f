//! `/api/v1/templates`: the merchant's own versions of the message templates. A version
//! replaces the bundled template of the same name (`email/de/delivered.html`) for the
//! merchant's customers only, and is refused unless every message of its language still renders
//! with it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::problem::ProblemDetails;
use super::{ApiJson, ApiState, Caller, Problem, json_response};
use crate::domain::{Locale, Trigger};
use crate::notify::brand::Brand;
use crate::notify::preview;

/// The longest template source taken.
const MAX_SOURCE: usize = 64 * 1024;

/// One of the merchant's templates.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    /// `email/<language>/<file>`, as the bundled template it replaces.
    pub name: String,
    pub source: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A template's new source (minijinja, as the bundled templates are written).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSource {
    pub source: String,
}

/// The merchant's templates.
#[utoipa::path(
    get, path = "/templates", operation_id = "list_templates", tag = "settings",
    responses((status = 200, body = Vec<TemplateView>), (status = 401, body = ProblemDetails), (status = 429, body = ProblemDetails))
)]
pub async fn list(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    let own = state.store.merchant_templates(caller.merchant).await?;
    let views: Vec<TemplateView> = own
        .into_iter()
        .map(|(name, source, updated_at)| TemplateView {
            name,
            source,
            updated_at,
        })
        .collect();
    Ok(json_response(StatusCode::OK, views))
}

/// The bundled template a path names, or 404.
fn template_name(state: &ApiState, language: &str, file: &str) -> Result<String, Problem> {
    let name = format!("email/{language}/{file}");
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            && !s.contains("..")
    };
    if plain(language) && plain(file) && state.brands.base_templates().has(&name) {
        Ok(name)
    } else {
        Err(Problem::not_found("template"))
    }
}

/// Use `source` instead of the bundled template for the merchant's customers. Refused (422,
/// naming `source`) when it does not compile or any message of its language fails to render
/// with it.
#[utoipa::path(
    put, path = "/templates/email/{language}/{file}", operation_id = "replace_template", tag = "settings",
    params(("language" = String, Path, example = "de"), ("file" = String, Path, example = "delivered.html")),
    request_body = TemplateSource,
    responses(
        (status = 200, body = TemplateView),
        (status = 400, body = ProblemDetails), (status = 401, body = ProblemDetails),
        (status = 404, body = ProblemDetails, description = "No bundled template of this name"),
        (status = 413, body = ProblemDetails), (status = 415, body = ProblemDetails),
        (status = 422, body = ProblemDetails), (status = 429, body = ProblemDetails),
    )
)]
pub async fn replace(
    State(state): State<ApiState>,
    caller: Caller,
    Path((language, file)): Path<(String, String)>,
    ApiJson(body): ApiJson<TemplateSource>,
) -> Result<Response, Problem> {
    let name = template_name(&state, &language, &file)?;
    if body.source.len() > MAX_SOURCE {
        return Err(Problem::invalid_field(
            "source".into(),
            format!("longer than {MAX_SOURCE} bytes"),
        ));
    }
    let mut own: Vec<(String, String)> = state
        .store
        .merchant_templates(caller.merchant)
        .await?
        .into_iter()
        .filter(|(other, _, _)| *other != name)
        .map(|(name, source, _)| (name, source))
        .collect();
    own.push((name.clone(), body.source.clone()));
    let templates = state
        .brands
        .base_templates()
        .with_overrides(&own)
        .map_err(|e| Problem::invalid_field("source".into(), e.to_string()))?;
    // Every message of the language, rendered for a sample customer with this template set.
    let brand = state.brands.of(caller.merchant).await?;
    let trial = Brand {
        templates,
        ..(*brand).clone()
    };
    let now = state.clock.now();
    let locale = Locale::parse(&language).map_err(|_| Problem::not_found("template"))?;
    let sample = preview::sample_shipment(caller.merchant, &locale, now);
    let previewer = preview::Previewer {
        carriers: &state.carriers,
        sender: state.brands.defaults(),
    };
    for trigger in Trigger::ALL {
        previewer
            .render(&trial, trigger, &sample, &[], now)
            .map_err(|e| {
                Problem::invalid_field(
                    "source".into(),
                    format!("the `{trigger}` message does not render with it: {e}"),
                )
            })?;
    }
    state
        .store
        .save_merchant_template(caller.merchant, &name, &body.source, now)
        .await?;
    state.brands.forget(caller.merchant);
    Ok(json_response(
        StatusCode::OK,
        TemplateView {
            name,
            source: body.source,
            updated_at: now,
        },
    ))
}

/// Go back to the bundled template.
#[utoipa::path(
    delete, path = "/templates/email/{language}/{file}", operation_id = "delete_template", tag = "settings",
    params(("language" = String, Path), ("file" = String, Path)),
    responses(
        (status = 204, description = "The bundled template is used again"),
        (status = 401, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 429, body = ProblemDetails),
    )
)]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path((language, file)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let name = template_name(&state, &language, &file)?;
    if !state
        .store
        .delete_merchant_template(caller.merchant, &name)
        .await?
    {
        return Err(Problem::not_found("template"));
    }
    state.brands.forget(caller.merchant);
    Ok(StatusCode::NO_CONTENT)
}

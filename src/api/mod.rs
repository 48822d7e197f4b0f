//! The merchant API, `/api/v1`: JSON over HTTP, each request authenticated by one of the
//! merchant's API keys (`Authorization: Bearer wm_…`) and scoped to that merchant. Another
//! merchant's resources answer 404, exactly as ones that never existed.
//!
//! Every route is registered with its OpenAPI documentation (utoipa-axum's `routes!`), so the
//! document at `/api/v1/openapi.json` lists exactly the routes that exist.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::de::DeserializeOwned;
use std::num::NonZeroU32;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::carriers::CarrierRegistry;
use crate::clock::Clock;
use crate::domain::{ApiKeyHash, MerchantId};
use crate::notify::brand::Brands;
use crate::store::Store;

pub mod accounts;
pub mod delivery_changes;
pub mod import;
pub mod logo;
pub mod problem;
pub mod settings;
pub mod shipments;
pub mod templates;

pub use problem::Problem;

/// The largest JSON body the API reads.
pub const MAX_JSON_BODY: usize = 256 * 1024;

/// What the API's handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub carriers: CarrierRegistry,
    pub clock: Clock,
    /// Each merchant's sender, look and templates, and the links every one shares.
    pub brands: Brands,
    /// Customers' delivery changes, which the merchant approves and rejects.
    pub changes: crate::delivery_changes::DeliveryChanges,
    limiter: Arc<DefaultKeyedRateLimiter<Uuid>>,
}

/// How fast one API key may call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests a second, sustained.
    pub per_second: NonZeroU32,
    /// Requests at once after a quiet spell.
    pub burst: NonZeroU32,
}

impl ApiState {
    pub fn new(
        store: Arc<dyn Store>,
        carriers: CarrierRegistry,
        clock: Clock,
        brands: Brands,
        changes: crate::delivery_changes::DeliveryChanges,
        limit: RateLimit,
    ) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        ApiState {
            store,
            carriers,
            clock,
            brands,
            changes,
            limiter: Arc::new(RateLimiter::keyed(quota)),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Waymark merchant API",
        description = "Register shipments, follow their journeys and manage carrier accounts. \
                       Every request carries one of the merchant's API keys as a bearer token; \
                       errors are application/problem+json (RFC 9457).",
    ),
    modifiers(&BearerAuth),
    security(("api_key" = [])),
    tags(
        (name = "shipments", description = "Parcels Waymark follows for the merchant"),
        (name = "carrier accounts", description = "The merchant's own accounts at carriers"),
        (name = "settings", description = "Branding, notification settings and message previews"),
        (name = "delivery changes", description = "Customers' changes to their deliveries, for the merchant to follow, approve or reject"),
    )
)]
struct ApiDoc;

/// Declares the bearer key scheme every operation uses.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("wm_…")
                    .build(),
            ),
        );
    }
}

/// The API's routes with their OpenAPI document, before the document is served.
pub fn documented_routes() -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    // A CSV file may be larger than any JSON body.
    let import = OpenApiRouter::new()
        .routes(routes!(import::upload))
        .layer(axum::extract::DefaultBodyLimit::max(import::MAX_CSV_BODY));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(import)
        .routes(routes!(shipments::create, shipments::list))
        .routes(routes!(
            shipments::show,
            shipments::update,
            shipments::erase
        ))
        .routes(routes!(accounts::create, accounts::list))
        .routes(routes!(accounts::show, accounts::update, accounts::delete))
        .routes(routes!(accounts::test))
        .routes(routes!(settings::show, settings::replace))
        .routes(routes!(settings::preview))
        .routes(routes!(logo::replace, logo::delete))
        .routes(routes!(templates::list))
        .routes(routes!(templates::replace, templates::delete))
        .routes(routes!(delivery_changes::list))
        .routes(routes!(delivery_changes::show))
        .routes(routes!(delivery_changes::approve))
        .routes(routes!(delivery_changes::reject))
        .split_for_parts()
}

/// `/api/v1`: the documented routes and the document itself.
pub fn router(state: ApiState) -> Router {
    let (routes, openapi) = documented_routes();
    let openapi = Arc::new(openapi);
    let v1 = routes
        .route(
            "/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .fallback(|| async { Problem::not_found("route") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(state);
    Router::new().nest("/api/v1", v1)
}

/// The merchant a request acts for, from its API key; refused with 401 (no key, or not a live
/// one) or 429 (the key is over its rate).
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub merchant: MerchantId,
    pub key_id: Uuid,
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Problem> {
        let presented = bearer_token(&parts.headers).ok_or_else(|| {
            Problem::unauthorized("send an API key as `Authorization: Bearer wm_…`")
        })?;
        let refused = || Problem::unauthorized("this API key is not valid (or was revoked)");
        let hash = ApiKeyHash::of_presented(presented).ok_or_else(refused)?;
        let key = state
            .store
            .authenticate_api_key(&hash, state.clock.now())
            .await?
            .ok_or_else(refused)?;
        if let Err(not_until) = state.limiter.check_key(&key.id) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(Problem::too_many_requests(wait.as_secs().max(1)));
        }
        Ok(Caller {
            merchant: key.merchant_id,
            key_id: key.id,
        })
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A request body declared as JSON, not yet parsed (a handler that must hash the bytes, as an
/// idempotent registration does, parses it with [`parse_json`]): 415 when it is not declared
/// JSON, 413 when it is too large.
#[derive(Debug)]
pub struct JsonBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let json = media_type(request.headers())
            .is_some_and(|t| t == "application/json" || t.ends_with("+json"));
        if !json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        axum::body::Bytes::from_request(request, state)
            .await
            .map(JsonBody)
            .map_err(|rejection| {
                body_problem(
                    &rejection,
                    &format!("the body is larger than {MAX_JSON_BODY} bytes"),
                )
            })
    }
}

/// A request's media type without its parameters, in lower case (`text/csv`).
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

/// A body that could not be read: 413 saying `too_large` when it is over the limit, else 400.
pub fn body_problem(
    rejection: &axum::extract::rejection::BytesRejection,
    too_large: &str,
) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", too_large)
    } else {
        Problem::bad_request("body", rejection.body_text())
    }
}

/// A JSON request body, refused as the API's errors say: 415 when it is not JSON, 413 when it
/// is too large, 400 when it does not parse, 422 naming the field whose value is wrong.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let JsonBody(body) = JsonBody::from_request(request, state).await?;
        parse_json(&body).map(ApiJson)
    }
}

/// A body read as `T`: 400 when it is not JSON at all, 422 naming the field otherwise.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        return Err(Problem::bad_request("body", format!("not JSON: {error}")));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        // A missing or unknown field is named in serde's message, not in the path.
        let field = match path.as_str() {
            "." | "" => quoted_field(&inner).unwrap_or_else(|| "body".to_owned()),
            path => path.to_owned(),
        };
        let reason = inner.split(" at line ").next().unwrap_or(&inner).to_owned();
        Problem::invalid_field(field, reason)
    })
}

/// The field a serde message names in backquotes (`missing field `tracking_number``).
fn quoted_field(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

/// Answers `status` with `body` as JSON.
pub fn json_response(status: StatusCode, body: impl serde::Serialize) -> Response {
    (status, Json(body)).into_response()
}

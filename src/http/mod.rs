//! Waymark's public HTTP side: the customer's tracking page, one-click unsubscribe (RFC 8058),
//! a health check, and the merchant API (`/api/v1`, see [`crate::api`]). Pages show the parcel, never the customer's personal data.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use tower_http::set_header::SetResponseHeaderLayer;

mod changes;
mod gate;
mod language;

pub use gate::Attempts;
use language::BrowserLanguage;

use crate::carriers::CarrierRegistry;
use crate::domain::{Channel, Shipment, Status};
use crate::links::LinkPurpose;
use crate::notify::render::Templates;
use crate::store::Store;

/// What every handler needs.
#[derive(Clone)]
pub struct HttpState {
    pub store: Arc<dyn Store>,
    /// Wrong postal codes at the tracking page's gate, counted.
    pub attempts: gate::Attempts,
    /// Links stop working this long after the journey's last scan, once it is over.
    pub links_expire_after: jiff::SignedDuration,
    pub carriers: CarrierRegistry,
    pub templates: Templates,
    /// The merchant API under `/api/v1`, and what the pages share with it (brands, delivery
    /// changes).
    pub api: crate::api::ApiState,
}

/// The routes, ready to serve or to call in tests.
pub fn router(state: HttpState) -> Router {
    let api = crate::api::router(state.api.clone());
    Router::new()
        .route("/health", get(health))
        .route("/assets/page.css", get(stylesheet))
        .route("/assets/brand/{merchant}", get(brand_stylesheet))
        .route("/assets/logo/{merchant}", get(logo))
        .route("/t/{token}", get(tracking_page).post(unlock))
        .route("/t/{token}/changes", axum::routing::post(changes::request))
        .route(
            "/t/{token}/changes/{id}",
            get(changes::page).post(changes::verify),
        )
        .route("/u/{token}", get(unsubscribe_page).post(unsubscribe))
        .with_state(state)
        .merge(api)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
        .layer(header_layer(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(header_layer(header::REFERRER_POLICY, "no-referrer"))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Pages about a parcel are the customer's: no cache keeps them (the style sheet says
        // otherwise for itself).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// What a page may load and who may frame it: only Waymark's own style sheet and images, no
/// script at all, no inline style, forms posting back to Waymark only, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The customer pages' style sheet, built in.
const STYLESHEET: &str = include_str!("../../assets/page.css");

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// `/assets/brand/<merchant id>.css`: the merchant's colour for the pages, as `--brand`.
async fn brand_stylesheet(
    State(state): State<HttpState>,
    Path(file): Path<String>,
) -> Result<Response, AppError> {
    let merchant = file
        .strip_suffix(".css")
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .map(crate::domain::MerchantId)
        .ok_or(AppError::NotFound)?;
    let brand = state.api.brands.of(merchant).await?;
    // Checked as #rrggbb when saved: nothing else can reach the sheet.
    let colour = brand
        .context
        .primary_colour
        .as_deref()
        .filter(|c| {
            c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|h| h.is_ascii_hexdigit())
        })
        .ok_or(AppError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        format!(":root {{ --brand: {colour}; }}\n"),
    )
        .into_response())
}

/// `/assets/logo/<merchant id>`: the logo the merchant uploaded.
async fn logo(
    State(state): State<HttpState>,
    Path(merchant): Path<String>,
) -> Result<Response, AppError> {
    let merchant = uuid::Uuid::parse_str(&merchant)
        .map(crate::domain::MerchantId)
        .map_err(|_| AppError::NotFound)?;
    let logo = state
        .store
        .merchant_logo(merchant)
        .await?
        .ok_or(AppError::NotFound)?;
    let content_type =
        HeaderValue::from_str(&logo.content_type).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        logo.bytes,
    )
        .into_response())
}

impl HttpState {
    fn links(&self) -> &crate::links::Links {
        &self.api.brands.defaults().links
    }

    /// The simulated instant `real` (a person's time: a form, an unlocked page) from now,
    /// however fast the clock runs.
    fn after_real(&self, real: jiff::SignedDuration) -> jiff::Timestamp {
        let clock = &self.api.clock;
        clock.now() + clock.simulated_duration(real.unsigned_abs())
    }

    /// The stamp a page's forms carry (CSRF), good for [`gate::FORM_VALID_FOR`].
    fn form_stamp(&self, shipment: uuid::Uuid) -> String {
        self.links().stamp(
            LinkPurpose::Form,
            shipment,
            self.after_real(gate::FORM_VALID_FOR),
        )
    }
}

/// Serve until `shutdown` is cancelled, letting requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: HttpState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    info!(address = %listener.local_addr()?, "http listening");
    // The client's address, for the gate's count of wrong postal codes per client.
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

/// An error page: 4xx say what is wrong, 5xx are logged and say nothing more.
enum AppError {
    NotFound,
    /// A form that did not come from Waymark's own page (or too long ago).
    Forbidden,
    /// Too many tries: wait this many seconds.
    TooMany(u64),
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::NotFound => (
                StatusCode::NOT_FOUND,
                Html("<!doctype html><title>Not found</title><p>This link is not valid (any more).</p>"),
            )
                .into_response(),
            AppError::Forbidden => (
                StatusCode::FORBIDDEN,
                Html("<!doctype html><title>Expired</title><p>This form has expired; please reload the page and try again.</p>"),
            )
                .into_response(),
            AppError::TooMany(seconds) => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, seconds.to_string())],
                Html(format!("<!doctype html><title>Too many tries</title><p>Too many tries; please wait {} minutes.</p>", seconds.div_ceil(60))),
            )
                .into_response(),
            AppError::Internal(cause) => {
                error!(%cause, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Html("<!doctype html><title>Error</title><p>Something went wrong; please try again later.</p>"),
                )
                    .into_response()
            }
        }
    }
}

impl<E: std::fmt::Display> From<E> for AppError {
    fn from(e: E) -> Self {
        AppError::Internal(e.to_string())
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    active_shipments: u64,
    unsent_notifications: u64,
}

async fn health(State(state): State<HttpState>) -> Response {
    match state.store.backlog().await {
        Ok(backlog) => Json(Health {
            status: "ok",
            active_shipments: backlog.active_shipments,
            unsent_notifications: backlog.unsent_notifications,
        })
        .into_response(),
        Err(e) => {
            error!(error = %e, "health check cannot reach the store");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
        }
    }
}

/// The length of the random tokens of links sent before links carried their own proof.
const LEGACY_TOKEN_LEN: usize = 32;

/// The shipment a link's token opens for `purpose`: unknown, forged, erased and expired ones
/// all look the same, not found.
async fn shipment(
    state: &HttpState,
    token: &str,
    purpose: LinkPurpose,
) -> Result<Shipment, AppError> {
    let links = state.links();
    let found = if let Some(id) = links.shipment(purpose, token) {
        state.store.shipment(id).await?
    } else if token.len() == LEGACY_TOKEN_LEN && token.chars().all(|c| c.is_ascii_alphanumeric()) {
        // A link in an email sent before: its one token opened both pages.
        state.store.shipment_by_token(token).await?
    } else {
        None
    };
    let shipment = found
        .filter(|s| s.erased_at.is_none())
        .ok_or(AppError::NotFound)?;
    let ended = shipment
        .journey
        .last_event_at
        .unwrap_or(shipment.created_at);
    let expired = !shipment.journey.active
        && ended
            .checked_add(state.links_expire_after)
            .is_ok_and(|until| until < state.api.clock.now());
    if expired {
        return Err(AppError::NotFound);
    }
    Ok(shipment)
}

#[derive(Serialize)]
struct PageEvent {
    at: String,
    status: Status,
    reason: Option<String>,
    text: String,
    location: Option<String>,
}

async fn tracking_page(
    State(state): State<HttpState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    browser: BrowserLanguage,
) -> Result<Response, AppError> {
    let shipment = shipment(&state, &token, LinkPurpose::Tracking).await?;
    let unlocked = gate::unlocked(&headers, state.links(), shipment.id, state.api.clock.now());
    let page = render_tracking(&state, &shipment, browser, unlocked, false, None).await?;
    Ok(page.into_response())
}

/// The postal-code form of a locked tracking page.
#[derive(Deserialize)]
struct UnlockForm {
    postal_code: String,
    /// The page's stamp (CSRF).
    form: String,
}

/// The gate's form: the right postal code unlocks the page for an hour (a cookie for this page
/// only), a wrong one says so; too many tries wait.
async fn unlock(
    State(state): State<HttpState>,
    Path(token): Path<String>,
    client: Option<axum::extract::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    browser: BrowserLanguage,
    form: Result<axum::Form<UnlockForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, AppError> {
    let shipment = shipment(&state, &token, LinkPurpose::Tracking).await?;
    let now = state.api.clock.now();
    let Ok(axum::Form(form)) = form else {
        return Err(AppError::Forbidden);
    };
    if !state
        .links()
        .check_stamp(LinkPurpose::Form, shipment.id, &form.form, now)
    {
        return Err(AppError::Forbidden);
    }
    let ip = client.map(|c| c.0.0.ip());
    if let Err(seconds) = state.attempts.try_one(shipment.id, ip) {
        return Err(AppError::TooMany(seconds));
    }
    if !gate::postal_code_matches(&shipment, &form.postal_code) {
        info!(shipment = %shipment.id, "wrong postal code on the tracking page");
        let page = render_tracking(&state, &shipment, browser, false, true, None).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let path = format!("/t/{token}");
    let secure = state.api.brands.defaults().public_url.starts_with("https:");
    let until = state.after_real(gate::UNLOCKED_FOR);
    let cookie = gate::unlock_cookie(state.links(), shipment.id, &path, until, secure);
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, path), (header::SET_COOKIE, cookie)],
    )
        .into_response())
}

/// Why a delivery change sent from the page was not taken, as the page words it: the key of
/// its label, and the label of the field to check.
#[derive(Debug, Clone, Serialize)]
struct ChangeRefusal {
    key: String,
    field: Option<&'static str>,
}

/// The tracking page; `change_error` says why the delivery change just sent was not taken.
async fn render_tracking(
    state: &HttpState,
    shipment: &Shipment,
    browser: BrowserLanguage,
    unlocked: bool,
    wrong_code: bool,
    change_error: Option<ChangeRefusal>,
) -> Result<Html<String>, AppError> {
    let brand = state.api.brands.of(shipment.merchant_id).await?;
    let tz = shipment.customer.time_zone.time_zone();
    let mut events: Vec<PageEvent> = state
        .store
        .timeline(shipment.id)
        .await?
        .into_iter()
        .map(|e| PageEvent {
            at: e
                .event
                .time
                .at
                .to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string(),
            status: e.event.status,
            reason: e.event.reason.map(|r| r.as_str().to_owned()),
            text: e.event.raw_text,
            location: e.event.location,
        })
        .collect();
    events.reverse();
    let profile = state.carriers.get(&shipment.carrier).map(|c| c.profile());
    let links = state.links();
    let token = links.token(LinkPurpose::Tracking, shipment.id);
    // What the customer can change, and what they asked for: behind the gate.
    let (offer, changes) = if unlocked {
        let offer = state.api.changes.offer(shipment).await?;
        let changes: Vec<_> = state
            .store
            .shipment_delivery_changes(shipment.id)
            .await?
            .into_iter()
            .take(5)
            .map(|c| {
                minijinja::context! {
                    details => c.details,
                    state => c.state,
                    url => format!("/t/{token}/changes/{}", c.id),
                }
            })
            .collect();
        (offer, changes)
    } else {
        (crate::delivery_changes::Offer::default(), Vec::new())
    };
    // What only the customer sees: behind the postal code.
    let personal = |value| if unlocked { value } else { None };
    // What helps now: the duties the carrier asks for, where the parcel waits, a broken promise.
    let journey = &shipment.journey;
    let duties_text = (journey.reason == Some(crate::domain::Reason::DutiesDue))
        .then(|| {
            events
                .iter()
                .find(|e| e.reason.as_deref() == Some("duties_due"))
                .map(|e| e.text.clone())
        })
        .flatten();
    let pickup = if journey.status == Status::AvailableForPickup {
        state
            .store
            .notifications(shipment.id)
            .await?
            .into_iter()
            .rev()
            .find_map(|n| n.facts.pickup_point)
    } else {
        None
    };
    // When the carrier moved its estimate, where from (the why is the reason explained below).
    let moved_from = state
        .store
        .estimate_changes(shipment.id)
        .await?
        .into_iter()
        .rev()
        .find(|(_, c)| c.source == crate::domain::EstimateSource::Carrier)
        .and_then(|(_, c)| c.previous.filter(|p| Some(*p) != c.current));
    let late = matches!(
        (journey.carrier_estimate, shipment.promise),
        (Some(estimate), Some(promise)) if estimate.earliest > promise.latest
    );
    let context = minijinja::context! {
        // The page's explanation: of the reason where it has one, else of the status.
        explain_reason => journey.reason.map_or_else(String::new, |r| format!("ex_{}", r.as_str())),
        explain_status => format!("ex_{}", journey.status.as_str()),
        moved_from => moved_from,
        duties_text => duties_text,
        pickup => pickup,
        late => late,
        order_reference => &shipment.order_reference,
        carrier_tracking_url => profile.map(|p| p.tracking_url(&shipment.tracking_number)),
        offer => offer,
        changes => changes,
        changes_url => format!("/t/{token}/changes"),
        change_error => change_error,
        delivery_changes => profile
            .filter(|_| shipment.journey.active && unlocked)
            .map(|p| p.delivery_change_links(&shipment.tracking_number))
            .unwrap_or_default(),
        status => shipment.journey.status,
        reason => shipment.journey.reason.map(|r| r.as_str()),
        active => shipment.journey.active,
        estimate => shipment.journey.carrier_estimate,
        promise => shipment.promise,
        muted => shipment.muted,
        events => events,
        unlocked => unlocked,
        can_unlock => shipment.destination_postal_code.is_some(),
        wrong_code => wrong_code,
        form => state.form_stamp(shipment.id),
        customer_name => personal(shipment.customer.name.clone()),
        postal_code => personal(shipment.destination_postal_code.as_ref().map(|p| p.as_str().to_owned())),
        // Only behind the gate: whoever the customer forwards the link to must not be able to
        // mute them.
        preferences_url => personal(Some(format!(
            "/u/{}",
            links.token(LinkPurpose::Preferences, shipment.id)
        ))),
        ..page_context(state, shipment, &brand, browser)
    };
    Ok(Html(
        state.templates.render_page("page/tracking.html", context)?,
    ))
}

/// What every customer page about `shipment` shows: its language (for a visitor whose browser
/// prefers `browser`), the shop as `brand` presents
/// it, the parcel and its carrier.
fn page_context(
    state: &HttpState,
    shipment: &Shipment,
    brand: &crate::notify::brand::Brand,
    browser: BrowserLanguage,
) -> minijinja::Value {
    let profile = state.carriers.get(&shipment.carrier).map(|c| c.profile());
    minijinja::context! {
        lang => language::page_language(shipment, brand, browser).as_str(),
        merchant_id => shipment.merchant_id.to_string(),
        merchant_name => &brand.merchant_name,
        brand => &brand.context,
        tracking_number => shipment.tracking_number.as_str(),
        carrier_name => profile.map_or_else(|| shipment.carrier.to_string(), |p| p.name.clone()),
    }
}

async fn unsubscribe_page(
    State(state): State<HttpState>,
    Path(token): Path<String>,
    browser: BrowserLanguage,
) -> Result<Html<String>, AppError> {
    let shipment = shipment(&state, &token, LinkPurpose::Preferences).await?;
    preferences(&state, &shipment, browser, None).await
}

/// The preferences page; `done` names what was just switched off.
async fn preferences(
    state: &HttpState,
    shipment: &Shipment,
    browser: BrowserLanguage,
    done: Option<&str>,
) -> Result<Html<String>, AppError> {
    let brand = state.api.brands.of(shipment.merchant_id).await?;
    let recipient = shipment
        .customer
        .email
        .as_ref()
        .map(|e| e.as_str().to_owned());
    let opted_out = match &recipient {
        Some(address) => {
            state
                .store
                .is_suppressed(shipment.merchant_id, Channel::Email, address)
                .await?
        }
        None => false,
    };
    let context = minijinja::context! {
        muted => shipment.muted,
        opted_out => opted_out,
        done => done,
        form => state.form_stamp(shipment.id),
        ..page_context(state, shipment, &brand, browser)
    };
    Ok(Html(
        state
            .templates
            .render_page("page/unsubscribe.html", context)?,
    ))
}

/// What the preferences page posts. A mail client's RFC 8058 one-click sends
/// `List-Unsubscribe=One-Click` and nothing else.
#[derive(Deserialize, Default)]
struct PreferencesForm {
    /// `shipment` (the default) or `merchant`: every message of the merchant.
    scope: Option<String>,
    /// The page's stamp; needed for `merchant`, which a one-click POST never asks for.
    form: Option<String>,
}

/// RFC 8058 one-click: a POST, no cookies, no confirmation, mutes this shipment. The page's
/// second button opts out of all of the merchant's emails, with the page's stamp.
async fn unsubscribe(
    State(state): State<HttpState>,
    Path(token): Path<String>,
    browser: BrowserLanguage,
    form: Result<axum::Form<PreferencesForm>, axum::extract::rejection::FormRejection>,
) -> Result<Html<String>, AppError> {
    let mut shipment = shipment(&state, &token, LinkPurpose::Preferences).await?;
    // One-click bodies and bare posts alike mean this shipment.
    let form = form.map(|f| f.0).unwrap_or_default();
    if form.scope.as_deref() == Some("merchant") {
        let now = state.api.clock.now();
        let stamped = form.form.as_deref().is_some_and(|f| {
            state
                .links()
                .check_stamp(LinkPurpose::Form, shipment.id, f, now)
        });
        if !stamped {
            return Err(AppError::Forbidden);
        }
        if let Some(address) = &shipment.customer.email {
            state
                .store
                .suppress_recipient(shipment.merchant_id, Channel::Email, address.as_str(), now)
                .await?;
        }
        info!(shipment = %shipment.id, merchant = %shipment.merchant_id,
            "customer opted out of all of the merchant's emails");
        return preferences(&state, &shipment, browser, Some("merchant")).await;
    }
    state.store.set_muted(shipment.id, true).await?;
    shipment.muted = true;
    info!(shipment = %shipment.id, "customer unsubscribed from this shipment");
    preferences(&state, &shipment, browser, Some("shipment")).await
}

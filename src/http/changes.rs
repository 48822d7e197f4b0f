//! The tracking page's delivery changes: choosing one (a code goes to the email on file), and
//! the page of one request, where the code is entered and its outcome shown. Only an unlocked
//! page (the postal code given) can do either, and every form carries the page's stamp (CSRF).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::{AppError, BrowserLanguage, ChangeRefusal, HttpState, gate, render_tracking, shipment};
use crate::delivery_changes::{ChangeError, ChangeForm};
use crate::domain::{ChangeRequest, Shipment};
use crate::links::LinkPurpose;

/// The client's address, for the per-client limits.
type Client = Option<axum::extract::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

/// What a change form posts.
#[derive(Deserialize)]
pub(super) struct RequestForm {
    kind: String,
    date: Option<String>,
    neighbour_name: Option<String>,
    house_number: Option<String>,
    pickup_point: Option<String>,
    safe_place: Option<String>,
    /// The page's stamp (CSRF).
    form: String,
}

/// What the code form posts.
#[derive(Deserialize)]
pub(super) struct CodeForm {
    code: String,
    /// The page's stamp (CSRF).
    form: String,
}

fn see_other(location: String) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// The shipment of an unlocked page whose form carries a valid stamp.
async fn unlocked_form(
    state: &HttpState,
    token: &str,
    headers: &HeaderMap,
    stamp: Option<&str>,
) -> Result<Shipment, AppError> {
    let shipment = shipment(state, token, LinkPurpose::Tracking).await?;
    let now = state.api.clock.now();
    if !gate::unlocked(headers, state.links(), shipment.id, now) {
        return Err(AppError::Forbidden);
    }
    if let Some(stamp) = stamp
        && !state
            .links()
            .check_stamp(LinkPurpose::Form, shipment.id, stamp, now)
    {
        return Err(AppError::Forbidden);
    }
    Ok(shipment)
}

/// `POST /t/{token}/changes`: start a change; its page asks for the code.
pub(super) async fn request(
    State(state): State<HttpState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    client: Client,
    browser: BrowserLanguage,
    form: Result<axum::Form<RequestForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, AppError> {
    let Ok(axum::Form(form)) = form else {
        return Err(AppError::Forbidden);
    };
    let shipment = unlocked_form(&state, &token, &headers, Some(&form.form)).await?;
    let change = ChangeForm {
        kind: form.kind,
        date: form.date,
        neighbour_name: form.neighbour_name,
        house_number: form.house_number,
        pickup_point: form.pickup_point,
        safe_place: form.safe_place,
    };
    let ip = client.map(|c| c.0.0.ip());
    match state.api.changes.request(&shipment, &change, ip).await {
        Ok(request) => Ok(see_other(format!("/t/{token}/changes/{}", request.id))),
        Err(ChangeError::TooMany(seconds)) => Err(AppError::TooMany(seconds)),
        Err(ChangeError::Store(e)) => Err(AppError::Internal(e.to_string())),
        Err(refused) => {
            let page = render_tracking(
                &state,
                &shipment,
                browser,
                true,
                false,
                Some(refusal(&refused)),
            )
            .await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// How the page words `error`.
fn refusal(error: &ChangeError) -> ChangeRefusal {
    let (key, field) = match error {
        ChangeError::NotPossible(why) => (
            format!(
                "why_{}",
                serde_json::to_value(why)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            None,
        ),
        ChangeError::Invalid(invalid) => (
            "bad_field".to_owned(),
            Some(match invalid.field {
                "neighbour_name" => "neighbour_name",
                "house_number" => "house_number",
                "date" => "day",
                "pickup_point" => "point",
                "safe_place" => "place",
                _ => "change",
            }),
        ),
        ChangeError::NotSent(_) => ("code_not_sent".to_owned(), None),
        _ => ("change_failed".to_owned(), None),
    };
    ChangeRefusal { key, field }
}

/// The request `id` of `shipment`, or not found.
async fn change_of(
    state: &HttpState,
    shipment: &Shipment,
    id: &str,
) -> Result<ChangeRequest, AppError> {
    let id = Uuid::parse_str(id).map_err(|_| AppError::NotFound)?;
    state
        .store
        .delivery_change(id)
        .await?
        .filter(|c| c.shipment_id == shipment.id)
        .ok_or(AppError::NotFound)
}

/// `GET /t/{token}/changes/{id}`: the request's state, and the code form while it waits for one.
pub(super) async fn page(
    State(state): State<HttpState>,
    Path((token, id)): Path<(String, String)>,
    headers: HeaderMap,
    browser: BrowserLanguage,
) -> Result<Response, AppError> {
    let shipment = shipment(&state, &token, LinkPurpose::Tracking).await?;
    if !gate::unlocked(&headers, state.links(), shipment.id, state.api.clock.now()) {
        // Unlock first; the request is listed there.
        return Ok(see_other(format!("/t/{token}")));
    }
    let change = change_of(&state, &shipment, &id).await?;
    Ok(
        render_change(&state, &shipment, browser, &change, &token, None)
            .await?
            .into_response(),
    )
}

/// `POST /t/{token}/changes/{id}`: check the code.
pub(super) async fn verify(
    State(state): State<HttpState>,
    Path((token, id)): Path<(String, String)>,
    headers: HeaderMap,
    client: Client,
    browser: BrowserLanguage,
    form: Result<axum::Form<CodeForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, AppError> {
    let Ok(axum::Form(form)) = form else {
        return Err(AppError::Forbidden);
    };
    let shipment = unlocked_form(&state, &token, &headers, Some(&form.form)).await?;
    let change = change_of(&state, &shipment, &id).await?;
    let ip = client.map(|c| c.0.0.ip());
    let here = format!("/t/{token}/changes/{id}");
    match state
        .api
        .changes
        .verify(&shipment, change.id, &form.code, ip)
        .await
    {
        Ok(_) | Err(ChangeError::Locked | ChangeError::Expired | ChangeError::Conflict { .. }) => {
            Ok(see_other(here))
        }
        Err(ChangeError::WrongCode(left)) => {
            let change = change_of(&state, &shipment, &id).await?;
            let page =
                render_change(&state, &shipment, browser, &change, &token, Some(left)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(ChangeError::TooMany(seconds)) => Err(AppError::TooMany(seconds)),
        Err(ChangeError::NotFound) => Err(AppError::NotFound),
        Err(other) => Err(AppError::Internal(other.to_string())),
    }
}

async fn render_change(
    state: &HttpState,
    shipment: &Shipment,
    browser: BrowserLanguage,
    change: &ChangeRequest,
    token: &str,
    tries_left: Option<u32>,
) -> Result<Html<String>, AppError> {
    let brand = state.api.brands.of(shipment.merchant_id).await?;
    let context = minijinja::context! {
        change => minijinja::context! {
            details => &change.details,
            state => change.state,
            code_sent_to => &change.code_sent_to,
        },
        tries_left => tries_left,
        form => state.form_stamp(shipment.id),
        tracking_url => format!("/t/{token}"),
        ..super::page_context(state, shipment, &brand, browser)
    };
    Ok(Html(
        state.templates.render_page("page/change.html", context)?,
    ))
}

//! `/api/v1/carrier-accounts`: the merchant's own accounts at carriers. Credentials go in and
//! are sealed at rest; they never come out, only their names.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

use super::problem::ProblemDetails;
use super::{ApiJson, ApiState, Caller, Problem, json_response};
use crate::carriers::{CarrierAccount, CarrierError, Credentials, ParcelError, TrackRequest};
use crate::domain::{InvalidField, Status, TrackingNumber};
use crate::scheduler::quota::quota_day;
use crate::store::StoreError;

/// A carrier account as the merchant sees it: never the credentials' values.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountView {
    pub id: Uuid,
    pub carrier: String,
    pub name: String,
    /// Which credentials it holds (`api_key`, `client_id`, ...), not their values.
    pub credential_names: Vec<String>,
    pub base_url: Option<String>,
    pub daily_quota: Option<u32>,
    pub requests_per_second: Option<f64>,
}

impl From<&CarrierAccount> for AccountView {
    fn from(a: &CarrierAccount) -> Self {
        AccountView {
            id: a.id,
            carrier: a.carrier.to_string(),
            name: a.name.clone(),
            credential_names: a.credentials.names().map(str::to_owned).collect(),
            base_url: a.base_url.clone(),
            daily_quota: a.daily_quota,
            requests_per_second: a.requests_per_second,
        }
    }
}

/// A new carrier account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRequest {
    /// The carrier's code (`dhl`, `ups`, `fedex`, `sandbox`, ...).
    pub carrier: String,
    /// The merchant's name for it; `default` is the one shipments use when they name none.
    pub name: Option<String>,
    /// The carrier's credentials by name (`api_key`, `client_id`, `client_secret`, ...).
    #[serde(default)]
    pub credentials: BTreeMap<String, String>,
    /// The carrier's API base URL for this account (a sandbox, a test server).
    pub base_url: Option<String>,
    pub daily_quota: Option<u32>,
    pub requests_per_second: Option<f64>,
}

/// A change of an account; what is left out stays. `credentials`, when given, replaces them all.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountUpdate {
    pub name: Option<String>,
    pub credentials: Option<BTreeMap<String, String>>,
    pub base_url: Option<String>,
    pub daily_quota: Option<u32>,
    pub requests_per_second: Option<f64>,
}

/// Which number a test asks the carrier about.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountTestRequest {
    /// A real tracking number of the carrier's; an unknown one still tests the credentials.
    pub tracking_number: String,
}

/// What the carrier answered to a test call.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountTestResult {
    /// `ok` (the carrier accepted the credentials), `auth_failed`, `rate_limited`,
    /// `unavailable`, `refused`, `unreadable` or `quota_exhausted` (no call was made).
    pub outcome: &'static str,
    /// `found`, `not_found`, `rejected` or `unreadable` when the call went through.
    pub parcel: Option<&'static str>,
    /// The parcel's normalised status when it was found.
    pub status: Option<Status>,
    /// In words.
    pub detail: String,
}

fn checked_name(name: Option<&str>) -> Result<String, InvalidField> {
    let name = name
        .map(str::trim)
        .unwrap_or(crate::intake::DEFAULT_ACCOUNT);
    if name.is_empty() || name.chars().count() > 100 {
        return Err(InvalidField::new("name", "must be 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

fn checked_base_url(url: Option<&str>) -> Result<Option<String>, InvalidField> {
    url.map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| match reqwest::Url::parse(u) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(u.to_owned()),
            _ => Err(InvalidField::new("base_url", "not an http(s) URL")),
        })
        .transpose()
}

fn checked_rate(rate: Option<f64>) -> Result<Option<f64>, InvalidField> {
    match rate {
        Some(r) if !(r.is_finite() && r > 0.0) => Err(InvalidField::new(
            "requests_per_second",
            "must be a number above 0",
        )),
        other => Ok(other),
    }
}

fn credentials(map: BTreeMap<String, String>) -> Result<Credentials, InvalidField> {
    if let Some(name) = map.keys().find(|k| {
        k.is_empty() || k.len() > 64 || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }) {
        return Err(InvalidField::new(
            "credentials",
            format!(
                "`{}` is not a credential name: use letters, digits and _",
                name.chars().take(64).collect::<String>()
            ),
        ));
    }
    Ok(map.into_iter().collect())
}

fn store_problem(error: StoreError) -> Problem {
    match error {
        StoreError::InUse { detail } => Problem::new(StatusCode::CONFLICT, "in_use", detail),
        other => other.into(),
    }
}

/// Add a carrier account.
#[utoipa::path(
    post, path = "/carrier-accounts", operation_id = "create_carrier_account", tag = "carrier accounts",
    request_body = NewAccountRequest,
    responses(
        (status = 201, body = AccountView),
        (status = 400, body = ProblemDetails), (status = 401, body = ProblemDetails),
        (status = 409, body = ProblemDetails, description = "The merchant has an account of this carrier with this name"),
        (status = 415, body = ProblemDetails), (status = 422, body = ProblemDetails), (status = 429, body = ProblemDetails),
    )
)]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewAccountRequest>,
) -> Result<Response, Problem> {
    let mut problems = Vec::new();
    let carrier = state
        .carriers
        .known(&request.carrier)
        .map_err(|e| problems.push(e))
        .ok();
    let name = checked_name(request.name.as_deref())
        .map_err(|e| problems.push(e))
        .ok();
    let base_url = checked_base_url(request.base_url.as_deref())
        .map_err(|e| problems.push(e))
        .ok();
    let rate = checked_rate(request.requests_per_second)
        .map_err(|e| problems.push(e))
        .ok();
    let secrets = credentials(request.credentials)
        .map_err(|e| problems.push(e))
        .ok();
    let (Some(carrier), Some(name), Some(base_url), Some(rate), Some(secrets)) =
        (carrier, name, base_url, rate, secrets)
    else {
        return Err(Problem::invalid(&problems));
    };
    let account = CarrierAccount {
        id: Uuid::now_v7(),
        merchant_id: caller.merchant,
        carrier,
        name,
        credentials: secrets,
        base_url,
        daily_quota: request.daily_quota,
        requests_per_second: rate,
    };
    state.store.create_carrier_account(&account).await?;
    Ok(json_response(
        StatusCode::CREATED,
        AccountView::from(&account),
    ))
}

/// The merchant's carrier accounts.
#[utoipa::path(
    get, path = "/carrier-accounts", operation_id = "list_carrier_accounts", tag = "carrier accounts",
    responses((status = 200, body = Vec<AccountView>), (status = 401, body = ProblemDetails), (status = 429, body = ProblemDetails))
)]
pub async fn list(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    let accounts = state
        .store
        .merchant_carrier_accounts(caller.merchant)
        .await?;
    let views: Vec<AccountView> = accounts.iter().map(AccountView::from).collect();
    Ok(json_response(StatusCode::OK, views))
}

async fn own_account(
    state: &ApiState,
    caller: &Caller,
    id: &str,
) -> Result<CarrierAccount, Problem> {
    let id = Uuid::parse_str(id).map_err(|_| Problem::not_found("carrier account"))?;
    match state.store.carrier_account(id).await? {
        Some(account) if account.merchant_id == caller.merchant => Ok(account),
        _ => Err(Problem::not_found("carrier account")),
    }
}

/// One carrier account.
#[utoipa::path(
    get, path = "/carrier-accounts/{id}", operation_id = "get_carrier_account", tag = "carrier accounts",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = AccountView), (status = 401, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 429, body = ProblemDetails))
)]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let account = own_account(&state, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, AccountView::from(&account)))
}

/// Change a carrier account's name, credentials, base URL or limits.
#[utoipa::path(
    patch, path = "/carrier-accounts/{id}", operation_id = "update_carrier_account", tag = "carrier accounts",
    params(("id" = Uuid, Path)),
    request_body = AccountUpdate,
    responses(
        (status = 200, body = AccountView),
        (status = 400, body = ProblemDetails), (status = 401, body = ProblemDetails), (status = 404, body = ProblemDetails),
        (status = 409, body = ProblemDetails), (status = 415, body = ProblemDetails), (status = 422, body = ProblemDetails),
        (status = 429, body = ProblemDetails),
    )
)]
pub async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(update): ApiJson<AccountUpdate>,
) -> Result<Response, Problem> {
    let mut account = own_account(&state, &caller, &id).await?;
    let mut problems = Vec::new();
    if let Some(name) = update.name.as_deref() {
        match checked_name(Some(name)) {
            Ok(name) => account.name = name,
            Err(e) => problems.push(e),
        }
    }
    if let Some(map) = update.credentials {
        match credentials(map) {
            Ok(secrets) => account.credentials = secrets,
            Err(e) => problems.push(e),
        }
    }
    if let Some(url) = update.base_url.as_deref() {
        match checked_base_url(Some(url)) {
            Ok(url) => account.base_url = url,
            Err(e) => problems.push(e),
        }
    }
    if update.daily_quota.is_some() {
        account.daily_quota = update.daily_quota;
    }
    if update.requests_per_second.is_some() {
        match checked_rate(update.requests_per_second) {
            Ok(rate) => account.requests_per_second = rate,
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        return Err(Problem::invalid(&problems));
    }
    if !state.store.update_carrier_account(&account).await? {
        return Err(Problem::not_found("carrier account"));
    }
    Ok(json_response(StatusCode::OK, AccountView::from(&account)))
}

/// Delete a carrier account no shipment is registered on.
#[utoipa::path(
    delete, path = "/carrier-accounts/{id}", operation_id = "delete_carrier_account", tag = "carrier accounts",
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ProblemDetails), (status = 404, body = ProblemDetails),
        (status = 409, body = ProblemDetails, description = "Shipments are registered on it"),
        (status = 429, body = ProblemDetails),
    )
)]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let account = own_account(&state, &caller, &id).await?;
    match state
        .store
        .delete_carrier_account(caller.merchant, account.id)
        .await
    {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(Problem::not_found("carrier account")),
        Err(e) => Err(store_problem(e)),
    }
}

/// Ask the carrier about one number with this account, once, and say what it answered. The
/// call counts against the account's daily quota like any other.
#[utoipa::path(
    post, path = "/carrier-accounts/{id}/test", operation_id = "test_carrier_account", tag = "carrier accounts",
    params(("id" = Uuid, Path)),
    request_body = AccountTestRequest,
    responses(
        (status = 200, body = AccountTestResult),
        (status = 400, body = ProblemDetails), (status = 401, body = ProblemDetails), (status = 404, body = ProblemDetails),
        (status = 415, body = ProblemDetails), (status = 422, body = ProblemDetails), (status = 429, body = ProblemDetails),
    )
)]
pub async fn test(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<AccountTestRequest>,
) -> Result<Response, Problem> {
    let account = own_account(&state, &caller, &id).await?;
    let number =
        TrackingNumber::parse(&request.tracking_number).map_err(|e| Problem::invalid(&[e]))?;
    let Some(carrier) = state.carriers.get(&account.carrier) else {
        return Err(Problem::internal(format!(
            "carrier {} is not loaded",
            account.carrier
        )));
    };
    let profile = carrier.profile();
    if let Some(quota) = account.daily_quota.or(profile.limits.daily_quota) {
        let day = quota_day(&profile.limits, state.clock.now());
        if !state
            .store
            .reserve_carrier_calls(account.id, &day.day, 1, Some(quota))
            .await?
        {
            return Ok(json_response(
                StatusCode::OK,
                AccountTestResult {
                    outcome: "quota_exhausted",
                    parcel: None,
                    status: None,
                    detail: format!("the account's {quota} calls of {} are spent", day.day),
                },
            ));
        }
    }
    let request = TrackRequest {
        tracking_number: number.clone(),
        registered_at: None,
    };
    let result = match carrier.track(&account, &[request]).await {
        Ok(results) => match results.into_iter().find(|r| r.tracking_number == number) {
            Some(parcel) => match parcel.outcome {
                Ok(report) => AccountTestResult {
                    outcome: "ok",
                    parcel: Some("found"),
                    status: report
                        .events
                        .iter()
                        .max_by_key(|e| e.time.at)
                        .map(|e| e.status),
                    detail: format!(
                        "{} knows {number}: {} scans",
                        profile.name,
                        report.events.len()
                    ),
                },
                Err(ParcelError::NotFound) => AccountTestResult {
                    outcome: "ok",
                    parcel: Some("not_found"),
                    status: None,
                    detail: format!(
                        "{} accepted the credentials but does not know {number}",
                        profile.name
                    ),
                },
                Err(e @ ParcelError::Rejected(_)) => AccountTestResult {
                    outcome: "ok",
                    parcel: Some("rejected"),
                    status: None,
                    detail: e.to_string(),
                },
                Err(e @ ParcelError::Malformed { .. }) => AccountTestResult {
                    outcome: "ok",
                    parcel: Some("unreadable"),
                    status: None,
                    detail: e.to_string(),
                },
            },
            None => AccountTestResult {
                outcome: "unreadable",
                parcel: None,
                status: None,
                detail: "the carrier's answer does not mention the number".into(),
            },
        },
        Err(error) => AccountTestResult {
            outcome: match error {
                CarrierError::Auth(_) => "auth_failed",
                CarrierError::RateLimited { .. } => "rate_limited",
                CarrierError::Transient(_) => "unavailable",
                CarrierError::Permanent(_) => "refused",
                CarrierError::Malformed { .. } => "unreadable",
            },
            parcel: None,
            status: None,
            detail: error.to_string(),
        },
    };
    Ok(json_response(StatusCode::OK, result))
}

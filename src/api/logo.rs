//! `/api/v1/settings/logo`: the merchant's logo, uploaded as the image itself and served by
//! Waymark at `/assets/logo/<merchant id>`, so its pages load nothing from elsewhere.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::problem::ProblemDetails;
use super::{ApiState, Caller, Problem, media_type};
use crate::store::MerchantLogo;

/// The largest logo taken.
pub const MAX_LOGO_BYTES: usize = 256 * 1024;

/// The image types taken, with how each file starts.
const IMAGE_TYPES: [(&str, &[u8]); 3] = [
    ("image/png", b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", b"\xff\xd8\xff"),
    ("image/webp", b"RIFF"),
];

/// Upload the merchant's logo: the image as the body (PNG, JPEG or WebP, up to 256 KiB).
#[utoipa::path(
    put, path = "/settings/logo", operation_id = "replace_logo", tag = "settings",
    request_body(content = Vec<u8>, content_type = "image/png", description = "The image: image/png, image/jpeg or image/webp"),
    responses(
        (status = 204, description = "Kept; pages show it at once"),
        (status = 401, body = ProblemDetails), (status = 413, body = ProblemDetails),
        (status = 415, body = ProblemDetails), (status = 422, body = ProblemDetails),
        (status = 429, body = ProblemDetails),
    )
)]
pub async fn replace(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, Problem> {
    let declared = media_type(&headers).unwrap_or_default();
    let Some((content_type, magic)) = IMAGE_TYPES.iter().find(|(t, _)| *t == declared) else {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the logo as image/png, image/jpeg or image/webp",
        ));
    };
    let bytes = body.map_err(|r| {
        super::body_problem(
            &r,
            &format!("a logo may be at most {} KiB", MAX_LOGO_BYTES / 1024),
        )
    })?;
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a logo may be at most {} KiB", MAX_LOGO_BYTES / 1024),
        ));
    }
    let webp = *content_type != "image/webp" || bytes.get(8..12) == Some(b"WEBP");
    if !bytes.starts_with(magic) || !webp {
        return Err(Problem::invalid_field(
            "body".into(),
            format!("is not a {content_type} image"),
        ));
    }
    let logo = MerchantLogo {
        content_type: (*content_type).to_owned(),
        bytes: bytes.to_vec(),
        updated_at: state.clock.now(),
    };
    state
        .store
        .save_merchant_logo(caller.merchant, Some(&logo))
        .await?;
    state.brands.forget(caller.merchant);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Remove the merchant's logo.
#[utoipa::path(
    delete, path = "/settings/logo", operation_id = "delete_logo", tag = "settings",
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 429, body = ProblemDetails),
    )
)]
pub async fn delete(State(state): State<ApiState>, caller: Caller) -> Result<Response, Problem> {
    if !state
        .store
        .save_merchant_logo(caller.merchant, None)
        .await?
    {
        return Err(Problem::not_found("logo"));
    }
    state.brands.forget(caller.merchant);
    Ok(StatusCode::NO_CONTENT.into_response())
}

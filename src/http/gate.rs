//! The tracking page's privacy gate. Until the visitor gives the destination's postal code,
//! the page shows what is not personal: the status, the dates and the carrier's places. Given
//! the right code, a cookie (a stamp of [`crate::links`], for this shipment, an hour long, sent
//! back to this page only) unlocks the rest. Wrong codes are limited per shipment and per
//! client, so the code cannot be guessed by trying them all.

use axum::http::HeaderMap;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jiff::{SignedDuration, Timestamp};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use uuid::Uuid;

use crate::domain::Shipment;
use crate::links::{LinkPurpose, Links};

/// The cookie that says a page was unlocked.
pub const COOKIE: &str = "waymark_unlocked";
/// How long an unlocked page stays unlocked.
pub const UNLOCKED_FOR: SignedDuration = SignedDuration::from_hours(1);
/// How long a page's form may be sent after the page was shown.
pub const FORM_VALID_FOR: SignedDuration = SignedDuration::from_hours(2);

/// Postal codes tried, per shipment and per client, before more have to wait.
#[derive(Clone)]
pub struct Attempts {
    per_shipment: Arc<DefaultKeyedRateLimiter<Uuid>>,
    per_client: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Default for Attempts {
    /// Five tries a shipment, then one every ten minutes; twenty a client, then one a minute.
    fn default() -> Self {
        let shipment = Quota::with_period(std::time::Duration::from_secs(600))
            .unwrap_or_else(|| unreachable!("the period is not zero"))
            .allow_burst(NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN));
        let client = Quota::per_minute(NonZeroU32::MIN)
            .allow_burst(NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN));
        Attempts {
            per_shipment: Arc::new(RateLimiter::keyed(shipment)),
            per_client: Arc::new(RateLimiter::keyed(client)),
        }
    }
}

impl Attempts {
    /// Count a try; `Err(seconds)` to wait when the shipment or the client is over its
    /// allowance. Every try counts, before the code is compared: a guesser who hits the right
    /// code has still used up a try.
    pub fn try_one(&self, shipment: Uuid, client: Option<IpAddr>) -> Result<(), u64> {
        let now = DefaultClock::default().now();
        let wait =
            |not_until: governor::NotUntil<_>| not_until.wait_time_from(now).as_secs().max(1);
        if let Some(ip) = client {
            self.per_client.check_key(&ip).map_err(wait)?;
        }
        self.per_shipment.check_key(&shipment).map_err(wait)
    }
}

/// Whether the request carries this shipment's unlock cookie, still valid at `now`.
pub fn unlocked(headers: &HeaderMap, links: &Links, shipment: Uuid, now: Timestamp) -> bool {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| {
            name == COOKIE && links.check_stamp(LinkPurpose::Unlocked, shipment, value, now)
        })
}

/// The `Set-Cookie` that unlocks the page at `path` (`/t/{token}`) for an hour, its stamp good
/// until `until` (an hour on, on Waymark's clock).
pub fn unlock_cookie(
    links: &Links,
    shipment: Uuid,
    path: &str,
    until: Timestamp,
    secure: bool,
) -> String {
    let value = links.stamp(LinkPurpose::Unlocked, shipment, until);
    format!(
        "{COOKIE}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict{}",
        UNLOCKED_FOR.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// Whether `given` is the shipment's destination postal code, compared as the country writes
/// it (case, spaces and dashes aside) and in constant time. A shipment registered without one
/// cannot be unlocked.
pub fn postal_code_matches(shipment: &Shipment, given: &str) -> bool {
    let Some(code) = &shipment.destination_postal_code else {
        return false;
    };
    let plain = |s: &str| -> Vec<u8> {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_uppercase() as u8)
            .collect()
    };
    let (want, got) = (plain(code.as_str()), plain(given));
    // Lengths differ for most wrong codes; only the comparison of equal lengths must not leak.
    want.len() == got.len()
        && want
            .iter()
            .zip(&got)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

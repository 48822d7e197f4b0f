//! Helpers shared by the carrier adapters' tests: parsing test inputs, a fast transport, a test
//! account and the carriers' published material in `tests/fixtures/carriers/`.

use std::time::Duration;

use jiff::Timestamp;

use super::transport::Transport;
use super::{CarrierAccount, TrackRequest};
use crate::domain::{CarrierCode, TrackingNumber};

/// A tracking number, or the test fails.
pub(crate) fn number(text: &str) -> TrackingNumber {
    TrackingNumber::parse(text).expect("a tracking number")
}

/// A request for `text`, not registered with Waymark.
pub(crate) fn request(text: &str) -> TrackRequest {
    TrackRequest {
        tracking_number: number(text),
        registered_at: None,
    }
}

/// A timestamp, or the test fails.
pub(crate) fn ts(text: &str) -> Timestamp {
    text.parse().expect("a timestamp")
}

/// A transport that retries twice, a millisecond apart, so failing calls fail fast.
pub(crate) fn fast_transport() -> Transport {
    Transport::default().with_retries(2, Duration::from_millis(1))
}

/// A test account at `carrier` (a carrier code) with these credentials and base URL.
pub(crate) fn account(
    carrier: &str,
    credentials: serde_json::Value,
    base_url: Option<&str>,
) -> CarrierAccount {
    CarrierAccount {
        id: uuid::Uuid::now_v7(),
        merchant_id: crate::domain::MerchantId::DEFAULT,
        carrier: CarrierCode::parse(carrier).expect("a carrier code"),
        name: format!("{carrier} test"),
        credentials: credentials.into(),
        base_url: base_url.map(str::to_owned),
        daily_quota: None,
        requests_per_second: None,
    }
}

/// A file of `carrier`'s published material in `tests/fixtures/carriers/<carrier>/`; panics with
/// the path if it cannot be read.
pub(crate) fn published(carrier: &str, file: &str) -> String {
    let path = format!(
        "{}{carrier}/{file}",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/carriers/")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

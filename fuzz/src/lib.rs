//! What Waymark's fuzz targets share: turning the fuzzer's bytes into what the transport hands an
//! adapter, the numbers each target asks about, and the promises every answer reader keeps
//! whatever the body says.
#![forbid(unsafe_code)]

use std::borrow::Cow;

use waymark::carriers::profile::CarrierProfile;
use waymark::carriers::transport::Transport;
use waymark::carriers::{CarrierError, ParcelError, ParcelResult};
use waymark::domain::TrackingNumber;

/// Most characters an excerpt of a carrier's answer keeps, its ellipsis included.
const EXCERPT_MAX_CHARS: usize = 501;

/// The body the transport would hand an adapter for these bytes: invalid UTF-8 replaced.
pub fn body(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Tracking numbers from known-good texts (the numbers in a carrier's published examples, so
/// that the seeds reach past the matching of answers to numbers).
pub fn numbers(texts: &[&str]) -> Vec<TrackingNumber> {
    texts
        .iter()
        .map(|text| TrackingNumber::parse(text).expect("a valid tracking number"))
        .collect()
}

/// A carrier's bundled data file, as the catalogue loads it.
pub fn profile(code: &str, bundled: &str) -> CarrierProfile {
    CarrierProfile::from_toml(&format!("carriers/{code}.toml (bundled)"), bundled)
        .expect("the bundled data file is valid")
}

/// A transport that is never used: the targets read bodies, they do not call carriers.
pub fn transport() -> Transport {
    Transport::default()
}

/// Whatever the body, an answer reader gives one result per number asked about, in order, or
/// one classified error; and what it keeps of the body for diagnosis stays an excerpt.
pub fn check(numbers: &[TrackingNumber], read: Result<Vec<ParcelResult>, CarrierError>) {
    match read {
        Ok(results) => {
            assert_eq!(results.len(), numbers.len(), "one result per number");
            for (result, number) in results.iter().zip(numbers) {
                assert_eq!(&result.tracking_number, number, "results in request order");
                if let Err(ParcelError::Malformed { excerpt, .. }) = &result.outcome {
                    check_excerpt(excerpt);
                }
            }
        }
        Err(CarrierError::Malformed { excerpt, .. }) => check_excerpt(&excerpt),
        Err(_) => {}
    }
}

fn check_excerpt(excerpt: &str) {
    assert!(
        excerpt.chars().count() <= EXCERPT_MAX_CHARS,
        "an excerpt of {} characters",
        excerpt.chars().count()
    );
}

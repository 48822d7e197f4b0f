//! The carriers Waymark ships with, each loaded with its data file (from the configured
//! carriers directory when it has one, else the bundled copy).

use std::path::Path;
use std::sync::Arc;

use super::profile::{CarrierProfile, ProfileError};
use super::transport::{SharedTokens, Transport};
use super::{
    CarrierRegistry, auspost, canadapost, dhl, dpd, fedex, gls, inpost, postnl, royalmail, sandbox,
    ups, usps,
};
use crate::clock::Clock;

/// Every adapter, ready to poll; their OAuth2 tokens are shared through `tokens` when given
/// (the database, so replicas fetch one token per account between them).
pub fn load(
    dir: Option<&Path>,
    clock: Clock,
    tokens: Option<Arc<dyn SharedTokens>>,
) -> Result<CarrierRegistry, ProfileError> {
    let transport = match tokens {
        Some(shared) => Transport::default().sharing_tokens(shared),
        None => Transport::default(),
    };
    let profile = |code: &str, bundled: &str| CarrierProfile::load(dir, code, bundled);
    let mut carriers = CarrierRegistry::new();
    carriers.register(Arc::new(sandbox::Sandbox::new(
        profile("sandbox", sandbox::BUNDLED_PROFILE)?,
        clock,
    )));
    carriers.register(Arc::new(dhl::Dhl::new(
        profile("dhl", dhl::BUNDLED_PROFILE)?,
        transport.clone(),
    )));
    carriers.register(Arc::new(ups::Ups::new(
        profile("ups", ups::BUNDLED_PROFILE)?,
        transport.clone(),
    )));
    carriers.register(Arc::new(fedex::Fedex::new(
        profile("fedex", fedex::BUNDLED_PROFILE)?,
        transport.clone(),
    )));
    carriers.register(Arc::new(usps::Usps::new(
        profile("usps", usps::BUNDLED_PROFILE)?,
        transport.clone(),
    )));
    carriers.register(Arc::new(gls::Gls::new(
        profile("gls", gls::BUNDLED_PROFILE)?,
        transport.clone(),
    )));
    carriers.register(Arc::new(postnl::PostNl::new(
        profile("postnl", postnl::BUNDLED_PROFILE)?,
        transport.clone(),
    )));
    carriers.register(Arc::new(dpd::Dpd::new(
        profile("dpd", dpd::BUNDLED_PROFILE)?,
        transport.clone(),
    )));
    carriers.register(Arc::new(inpost::InPost::new(
        profile("inpost", inpost::BUNDLED_PROFILE)?,
        transport.clone(),
    )));
    carriers.register(Arc::new(royalmail::RoyalMail::new(
        profile("royalmail", royalmail::BUNDLED_PROFILE)?,
        transport.clone(),
    )));
    carriers.register(Arc::new(canadapost::CanadaPost::new(
        profile("canadapost", canadapost::BUNDLED_PROFILE)?,
        transport.clone(),
    )));
    carriers.register(Arc::new(auspost::AusPost::new(
        profile("auspost", auspost::BUNDLED_PROFILE)?,
        transport,
    )));
    Ok(carriers.with_recogniser(super::recognise::Recogniser::load(dir)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_data_file_loads() {
        let carriers = load(None, Clock::system(), None).expect("bundled profiles are valid");
        let codes: Vec<&str> = carriers.codes().map(|c| c.as_str()).collect();
        for code in [
            "sandbox",
            "dhl",
            "ups",
            "fedex",
            "usps",
            "gls",
            "postnl",
            "dpd",
            "inpost",
            "royalmail",
            "canadapost",
            "auspost",
        ] {
            assert!(codes.contains(&code), "{code} missing from {codes:?}");
        }
        // Only carriers Waymark can poll are offered when a shipment names none.
        match carriers.recognise("1Z5R89390357567127") {
            crate::carriers::recognise::Recognition::Recognised(c) => {
                assert_eq!(c.carrier.as_str(), "ups")
            }
            other => panic!("{other}"),
        }
    }
}

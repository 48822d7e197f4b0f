//! Carrier adapters behind one trait: a batch of tracking numbers in, normalised results or a
//! classified error out. Each adapter owns its carrier's auth, batching and parsing; what can
//! change without a recompile (code mappings, cadence, quotas, links) lives in `carriers/`.

pub mod auspost;
pub mod canadapost;
pub mod catalogue;
pub mod dhl;
pub mod dpd;
pub mod fedex;
pub mod gls;
pub mod inpost;
pub mod postnl;
pub mod profile;
pub mod recognise;
pub mod royalmail;
pub mod sandbox;
#[cfg(test)]
pub(crate) mod test_support;
pub mod timestamps;
pub mod tokens;
pub mod transport;
pub mod ups;
pub mod usps;
pub mod xml;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub use crate::domain::PickupPoint;
use crate::domain::timeline::is_final;
use crate::domain::{
    CarrierCode, DeliveryWindow, MerchantId, Reason, Status, TrackingEvent, TrackingNumber,
};
pub use crate::secret::Credentials;
pub use profile::{CarrierProfile, ProfileError};

/// A merchant's account at a carrier: the credentials Waymark polls with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CarrierAccount {
    pub id: Uuid,
    /// The merchant whose account it is.
    #[serde(default)]
    pub merchant_id: MerchantId,
    pub carrier: CarrierCode,
    /// The merchant's name for the account ("DHL main").
    pub name: String,
    /// Adapter-specific secrets (API key, OAuth client id and secret), by name: `Debug` shows
    /// the names only, and they are never serialised.
    #[serde(skip_serializing, default)]
    pub credentials: Credentials,
    /// Overrides the carrier's API base URL (sandbox and test environments).
    pub base_url: Option<String>,
    /// Overrides the carrier's default daily call quota for this account.
    pub daily_quota: Option<u32>,
    /// Overrides the carrier's default request rate for this account.
    pub requests_per_second: Option<f64>,
}

/// One number to track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRequest {
    pub tracking_number: TrackingNumber,
    /// When the shipment was registered with Waymark, if it is.
    pub registered_at: Option<Timestamp>,
}

/// What a carrier says about one parcel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackReport {
    /// Every scan the carrier returned, in any order.
    pub events: Vec<TrackingEvent>,
    /// The carrier's estimated delivery date or window.
    pub estimate: Option<DeliveryWindow>,
    /// Who signed for the parcel (proof of delivery).
    pub signed_by: Option<String>,
    pub pickup_point: Option<PickupPoint>,
    /// The carrier's own link for the customer to change the delivery.
    pub change_delivery_url: Option<String>,
    /// Further parcels the tracked number also stands for (a GLS reference shared by the
    /// parcels of one order): the report is about one parcel, and each of these is its own
    /// parcel with its own journey, to be followed as a shipment of its own.
    #[serde(default)]
    pub other_parcels: Vec<TrackingNumber>,
}

/// Whether the customer can still change the delivery after a scan with this meaning: the parcel
/// is neither delivered, nor at the end of its journey otherwise, nor on its way back.
pub fn delivery_to_come(status: Status, reason: Option<Reason>) -> bool {
    status != Status::Delivered
        && !is_final(status, reason)
        && !reason.is_some_and(Reason::is_return)
}

/// Why one parcel in a batch could not be tracked while the call itself worked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParcelError {
    /// The carrier does not know the number (yet: fresh labels are often unknown for hours).
    #[error("the carrier does not know this tracking number yet")]
    NotFound,
    /// The carrier's answer for this parcel is not what its spec says.
    #[error("unreadable answer: {detail}")]
    Malformed {
        detail: String,
        /// The start of what the carrier sent, kept for diagnosis.
        excerpt: String,
    },
    /// The carrier refused this number (wrong format, not this account's).
    #[error("refused by the carrier: {0}")]
    Rejected(String),
}

/// The answer for one number of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParcelResult {
    pub tracking_number: TrackingNumber,
    pub outcome: Result<TrackReport, ParcelError>,
}

/// The results for `numbers` from an answer that is about one parcel (the carriers that track
/// one number per call): `read` reads it for the one number asked about. Asking about none reads
/// nothing; asking about more is refused, since one parcel's answer says nothing about another.
pub(crate) fn one_parcel_answer(
    carrier: &str,
    numbers: &[TrackingNumber],
    read: impl FnOnce(&TrackingNumber) -> Result<Result<TrackReport, ParcelError>, CarrierError>,
) -> Result<Vec<ParcelResult>, CarrierError> {
    match numbers {
        [] => Ok(Vec::new()),
        [number] => Ok(vec![ParcelResult {
            tracking_number: number.clone(),
            outcome: read(number)?,
        }]),
        more => Err(CarrierError::Permanent(format!(
            "{carrier} answers about one parcel at a time, not the {} numbers asked about",
            more.len()
        ))),
    }
}

/// `numbers` as requests of shipments not registered with Waymark, for the carriers that read a
/// batch's answer against its requests.
pub(crate) fn unregistered(numbers: &[TrackingNumber]) -> Vec<TrackRequest> {
    numbers
        .iter()
        .map(|number| TrackRequest {
            tracking_number: number.clone(),
            registered_at: None,
        })
        .collect()
}

/// Why a whole call to a carrier failed, classified so the scheduler knows what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierError {
    /// Credentials were refused (after one re-authentication).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// Too many calls: wait at least `retry_after` before calling again.
    #[error("rate limited by the carrier{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// Worth retrying soon: timeouts, 5xx, connection resets.
    #[error("temporary carrier failure: {0}")]
    Transient(String),
    /// Retrying will not help until something changes (bad request, account disabled).
    #[error("carrier refused the request: {0}")]
    Permanent(String),
    /// The answer is not what the carrier's spec says (an HTML error page, truncated JSON).
    #[error("unreadable carrier answer: {detail}")]
    Malformed { detail: String, excerpt: String },
}

/// A carrier's tracking API.
#[async_trait]
pub trait Carrier: Send + Sync {
    /// The carrier's data file: mappings, limits, cadence, links.
    fn profile(&self) -> &CarrierProfile;

    /// Track up to `profile().limits.batch_size` numbers in one call.
    async fn track(
        &self,
        account: &CarrierAccount,
        batch: &[TrackRequest],
    ) -> Result<Vec<ParcelResult>, CarrierError>;

    /// Whether the carrier takes delivery changes through its API ([`Carrier::change_delivery`]);
    /// when not, an accepted change is handed to the merchant to make with the carrier.
    fn takes_delivery_changes(&self) -> bool {
        false
    }

    /// The pickup points the carrier's API lists near a parcel's destination; none where it has
    /// no such list.
    async fn pickup_points(
        &self,
        _account: &CarrierAccount,
        _parcel: &TrackRequest,
    ) -> Result<Vec<PickupPointChoice>, CarrierError> {
        Ok(Vec::new())
    }

    /// Give the carrier the customer's new instruction for a parcel.
    async fn change_delivery(
        &self,
        _account: &CarrierAccount,
        order: &DeliveryOrder,
    ) -> Result<(), CarrierError> {
        Err(CarrierError::Permanent(format!(
            "{} takes no delivery changes through its API ({})",
            self.profile().name,
            order.details.kind()
        )))
    }

    /// Remember a change the carrier was given before this process started, for carriers that
    /// keep no record of their own (the sandbox); real carriers have it already.
    fn restore_delivery_change(&self, _order: &DeliveryOrder) {}
}

/// A pickup point a customer can send a parcel to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickupPointChoice {
    /// The carrier's id of the point.
    pub id: String,
    pub name: String,
    pub address: String,
}

/// A customer's new instruction for one parcel, as a carrier is given it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOrder {
    pub parcel: TrackRequest,
    pub details: crate::domain::ChangeDetails,
    /// When the customer's change was accepted.
    pub at: Timestamp,
}

/// The carriers this Waymark knows, by code, and how to tell them from a tracking number.
#[derive(Clone, Default)]
pub struct CarrierRegistry {
    carriers: BTreeMap<CarrierCode, Arc<dyn Carrier>>,
    recogniser: Option<Arc<recognise::Recogniser>>,
}

impl CarrierRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, carrier: Arc<dyn Carrier>) {
        self.carriers
            .insert(carrier.profile().code.clone(), carrier);
    }

    /// Recognise carriers from tracking numbers with these formats.
    pub fn with_recogniser(mut self, recogniser: recognise::Recogniser) -> Self {
        self.recogniser = Some(Arc::new(recogniser));
        self
    }

    /// Which of the carriers Waymark can poll issued `number`, from the number formats in
    /// `carriers/`. Without formats loaded, nothing is recognised.
    pub fn recognise(&self, number: &str) -> recognise::Recognition {
        match &self.recogniser {
            Some(recogniser) => recogniser
                .recognise(number)
                .restricted_to(|c| !c.detection_only && self.carriers.contains_key(&c.carrier)),
            None => recognise::Recognition::NotRecognised,
        }
    }

    pub fn get(&self, code: &CarrierCode) -> Option<&Arc<dyn Carrier>> {
        self.carriers.get(code)
    }

    /// The codes of every known carrier, sorted.
    pub fn codes(&self) -> impl Iterator<Item = &CarrierCode> {
        self.carriers.keys()
    }

    /// Check a carrier code given at the door, naming the known ones when it is unknown.
    pub fn known(&self, raw: &str) -> Result<CarrierCode, crate::domain::InvalidField> {
        let code = CarrierCode::parse(raw)?;
        if self.carriers.contains_key(&code) {
            Ok(code)
        } else {
            let known: Vec<&str> = self.codes().map(|c| c.as_str()).collect();
            Err(crate::domain::InvalidField::new(
                "carrier",
                format!("unknown carrier `{raw}`; known: {}", known.join(", ")),
            ))
        }
    }
}

impl std::fmt::Debug for CarrierRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.carriers.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{fast_transport, number, published};
    use super::*;

    #[test]
    fn an_account_shows_its_credential_names_but_never_their_values() {
        let account = super::test_support::account(
            "ups",
            serde_json::json!({"client_id": "waymark-app-4711", "client_secret": "s3cr3t-4711"}),
            None,
        );
        let shown = format!("{account:?} {account:#?}");
        assert!(
            shown.contains("client_id") && shown.contains("client_secret"),
            "{shown}"
        );
        assert!(
            !shown.contains("waymark-app-4711") && !shown.contains("s3cr3t-4711"),
            "{shown}"
        );
        assert_eq!(
            transport::credential(&account, "client_secret"),
            Ok("s3cr3t-4711")
        );
    }

    #[test]
    fn a_one_parcel_answer_is_read_for_the_one_number_asked_about() {
        let royalmail = royalmail::RoyalMail::bundled(fast_transport());
        let body = published("royalmail", "example_response_events.karrio-community.json");
        let one = [number("FQ087430672GB")];
        let results = royalmail.read_answer_body(&one, &body).expect("readable");
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].tracking_number, one[0]);
        assert!(
            results[0]
                .outcome
                .as_ref()
                .is_ok_and(|r| !r.events.is_empty())
        );
        assert_eq!(royalmail.read_answer_body(&[], &body), Ok(Vec::new()));
        let two = [number("FQ087430672GB"), number("FQ087430673GB")];
        match royalmail.read_answer_body(&two, &body) {
            Err(CarrierError::Permanent(said)) => assert!(said.contains("one parcel"), "{said}"),
            other => panic!("{other:?}"),
        }
    }
}

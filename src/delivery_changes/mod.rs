//! Customers changing their deliveries: what is offered, the one-time code that proves the
//! parcel is theirs, the merchant's approval where its risk rules ask for it, and carrying the
//! change out through the carrier or handing it to the merchant.
//!
//! A request moves through [`ChangeState`]: it is created `code_sent` (the code goes straight to
//! the email on file, never to an address typed on the page), then a right code within
//! [`CODE_VALID_FOR`] either carries it out or leaves it `awaiting_approval`; wrong codes lock it
//! after [`MAX_WRONG_CODES`]. Every step is written with its audit note, and the customer's
//! confirmation goes into the outbox in the same transaction, so it is never lost.

mod carry_out;
pub mod offer;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use tracing::{info, warn};
use uuid::Uuid;

use crate::carriers::{CarrierRegistry, TrackRequest};
use crate::clock::Clock;
use crate::domain::delivery_change::{
    CODE_VALID_FOR, DeliveryChangePolicy, MAX_WRONG_CODES, Refusal, next_delivery_days,
};
use crate::domain::detect::DeliveryChangeFacts;
use crate::domain::{
    ChangeRequest, ChangeState, Channel, Facts, HolidayCalendar, InvalidField, MerchantId,
    NewNotification, Notification, NotificationState, Shipment, Trigger,
};
use crate::notify::brand::Brands;
use crate::notify::email::EmailSender;
use crate::store::{Store, StoreError};
pub use offer::{ChangeForm, Offer};

/// Codes a shipment's customer may ask for in an hour.
pub const CODES_PER_SHIPMENT_PER_HOUR: u64 = 3;

/// Why a customer's step did not go through.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The change is not possible for this parcel (any more).
    #[error("{}", .0.describe())]
    NotPossible(Refusal),
    /// A field of the form is wrong.
    #[error("{0}")]
    Invalid(InvalidField),
    /// Too many codes asked for or tried: wait this many seconds.
    #[error("too many tries; wait {0} seconds")]
    TooMany(u64),
    /// The code could not be sent; nothing was changed.
    #[error("the code could not be sent: {0}")]
    NotSent(String),
    /// The code is wrong; this many tries are left.
    #[error("wrong code; {0} tries left")]
    WrongCode(u32),
    /// Too many wrong codes: the request is dead.
    #[error("too many wrong codes; the request is locked")]
    Locked,
    /// The code was not given in time.
    #[error("the code has expired")]
    Expired,
    /// No such request for this shipment (or merchant).
    #[error("no such delivery change")]
    NotFound,
    /// The request is not in a state where this step applies.
    #[error("the delivery change is {} and cannot be {action}", .state.as_str())]
    Conflict {
        state: ChangeState,
        action: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Customers' delivery changes, for the tracking page and the merchant API.
#[derive(Clone)]
pub struct DeliveryChanges {
    store: Arc<dyn Store>,
    carriers: CarrierRegistry,
    calendar: Arc<HolidayCalendar>,
    clock: Clock,
    brands: Brands,
    email: Arc<dyn EmailSender>,
    /// Rung when a change handed to the merchant left an email for the merchant's mailer.
    merchant_mail: Arc<tokio::sync::Notify>,
    /// Codes sent per client, so one visitor cannot mail-bomb many customers.
    codes_per_client: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// Codes tried per client, across requests.
    tries_per_client: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl DeliveryChanges {
    pub fn new(
        store: Arc<dyn Store>,
        carriers: CarrierRegistry,
        calendar: Arc<HolidayCalendar>,
        clock: Clock,
        brands: Brands,
        email: Arc<dyn EmailSender>,
        merchant_mail: Arc<tokio::sync::Notify>,
    ) -> Self {
        // Ten codes a client, then one every six minutes; thirty tries, then one a minute.
        let codes = Quota::with_period(std::time::Duration::from_secs(360))
            .unwrap_or_else(|| unreachable!("the period is not zero"))
            .allow_burst(NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN));
        let tries = Quota::per_minute(NonZeroU32::MIN)
            .allow_burst(NonZeroU32::new(30).unwrap_or(NonZeroU32::MIN));
        DeliveryChanges {
            store,
            carriers,
            calendar,
            clock,
            brands,
            email,
            merchant_mail,
            codes_per_client: Arc::new(RateLimiter::keyed(codes)),
            tries_per_client: Arc::new(RateLimiter::keyed(tries)),
        }
    }

    async fn policy(&self, merchant: MerchantId) -> Result<DeliveryChangePolicy, StoreError> {
        Ok(self
            .brands
            .of(merchant)
            .await?
            .settings
            .delivery_changes
            .clone())
    }

    /// What `shipment`'s customer can change right now.
    pub async fn offer(&self, shipment: &Shipment) -> Result<Offer, StoreError> {
        let Some(carrier) = self.carriers.get(&shipment.carrier) else {
            return Ok(Offer {
                refusal: Some(Refusal::NotOffered),
                ..Offer::default()
            });
        };
        let rules = carrier.profile().change_rules();
        let policy = self.policy(shipment.merchant_id).await?;
        let tz = shipment.customer.time_zone.time_zone();
        // Another day is a later one: after the day the carrier expects to deliver.
        let today = self.clock.now().to_zoned(tz).date();
        let after = shipment
            .journey
            .carrier_estimate
            .map(|window| window.earliest)
            .filter(|day| *day > today)
            .unwrap_or(today);
        let days = next_delivery_days(
            &self.calendar,
            &shipment.destination_country,
            after,
            rules.another_day_choices,
        );
        let points = if rules
            .kinds
            .contains(&crate::domain::ChangeKind::PickupPoint)
        {
            self.pickup_points(shipment).await
        } else {
            Vec::new()
        };
        Ok(Offer::new(shipment, &rules, &policy, days, points))
    }

    async fn pickup_points(&self, shipment: &Shipment) -> Vec<crate::carriers::PickupPointChoice> {
        let Some(carrier) = self.carriers.get(&shipment.carrier) else {
            return Vec::new();
        };
        let account = match self
            .store
            .carrier_account(shipment.carrier_account_id)
            .await
        {
            Ok(Some(account)) => account,
            _ => return Vec::new(),
        };
        match carrier.pickup_points(&account, &parcel(shipment)).await {
            Ok(points) => points,
            Err(error) => {
                // The other changes stay on offer; only the points are missing.
                warn!(shipment = %shipment.id, %error, "the carrier's pickup points are unavailable");
                Vec::new()
            }
        }
    }

    /// Start a change the customer chose on the page: check it is on offer, send the one-time
    /// code to the email on file, and keep the request waiting for it.
    pub async fn request(
        &self,
        shipment: &Shipment,
        form: &ChangeForm,
        client: Option<IpAddr>,
    ) -> Result<ChangeRequest, ChangeError> {
        let offer = self.offer(shipment).await?;
        if let Some(refusal) = offer.refusal {
            return Err(ChangeError::NotPossible(refusal));
        }
        let details = offer.read(form).map_err(ChangeError::Invalid)?;
        let now = self.clock.now();
        let hour_ago = now
            - self
                .clock
                .simulated_duration(std::time::Duration::from_secs(3600));
        let recent = self
            .store
            .delivery_changes_since(shipment.id, hour_ago)
            .await?;
        if recent >= CODES_PER_SHIPMENT_PER_HOUR {
            return Err(ChangeError::TooMany(3600));
        }
        if let Some(ip) = client {
            check(&self.codes_per_client, &ip)?;
        }
        let Some(email) = shipment.customer.email.clone() else {
            return Err(ChangeError::NotPossible(Refusal::NoContact));
        };
        let id = Uuid::now_v7();
        let code = one_time_code();
        let links = &self.brands.defaults().links;
        let request = ChangeRequest {
            id,
            shipment_id: shipment.id,
            merchant_id: shipment.merchant_id,
            details: details.clone(),
            state: ChangeState::CodeSent,
            code_hash: Some(links.code_hash(id, &code)),
            code_sent_to: Some(masked(email.as_str())),
            // The code is for a person: ten real minutes, however fast the clock runs.
            code_expires_at: now + self.clock.simulated_duration(CODE_VALID_FOR.unsigned_abs()),
            wrong_codes: 0,
            client_hash: client.map(|ip| crate::store::recipient_hash(&ip.to_string())),
            approval_reason: None,
            outcome_note: None,
            created_at: now,
            updated_at: now,
        };
        self.store
            .create_delivery_change(
                &request,
                &format!("{}; code sent by email", details.describe()),
            )
            .await?;
        if let Err(error) = self
            .send_code(shipment, &request, &code, email.as_str())
            .await
        {
            let after = ChangeRequest {
                state: ChangeState::Expired,
                code_hash: None,
                updated_at: self.clock.now(),
                outcome_note: Some("the code could not be sent".into()),
                ..request.clone()
            };
            self.store
                .update_delivery_change(
                    &request,
                    &after,
                    &format!("code not sent: {error}"),
                    None,
                    None,
                )
                .await?;
            return Err(ChangeError::NotSent(error));
        }
        info!(shipment = %shipment.id, change = %id, kind = %details.kind(), "delivery change code sent");
        Ok(request)
    }

    /// Email the code now, branded and in the customer's language, outside the outbox.
    async fn send_code(
        &self,
        shipment: &Shipment,
        request: &ChangeRequest,
        code: &str,
        to: &str,
    ) -> Result<(), String> {
        let brand = self
            .brands
            .of(shipment.merchant_id)
            .await
            .map_err(|e| e.to_string())?;
        let facts = DeliveryChangeFacts {
            details: request.details.clone(),
            state: request.state,
            code: Some(code.to_owned()),
            code_valid_minutes: Some(CODE_VALID_FOR.as_mins()),
            note: None,
        };
        let message = Notification {
            id: request.id,
            shipment_id: shipment.id,
            seq: 0,
            trigger: Trigger::DeliveryCode,
            dedupe_key: format!("delivery_code:{}", request.id),
            channel: Channel::Email,
            recipient: to.to_owned(),
            locale: shipment.customer.locale.clone(),
            reason: "the customer asked to change the delivery".into(),
            facts: journey_facts(shipment, facts),
            state: NotificationState::Sending,
            attempts: 0,
            available_at: request.created_at,
            message_id: None,
            sent_at: None,
            last_error: None,
            provider_response: None,
            created_at: request.created_at,
        };
        let (email, _) = crate::notify::dispatcher::compose_email(
            &self.carriers,
            self.brands.defaults(),
            &brand,
            &message,
            shipment,
            Vec::new(),
            self.clock.now(),
        )?;
        self.email
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Check the code the customer typed for `request_id` of `shipment`; a right one carries
    /// the change out or leaves it for the merchant's approval.
    pub async fn verify(
        &self,
        shipment: &Shipment,
        request_id: Uuid,
        code: &str,
        client: Option<IpAddr>,
    ) -> Result<ChangeRequest, ChangeError> {
        let request = self
            .store
            .delivery_change(request_id)
            .await?
            .filter(|r| r.shipment_id == shipment.id)
            .ok_or(ChangeError::NotFound)?;
        match request.state {
            ChangeState::CodeSent => {}
            ChangeState::Locked => return Err(ChangeError::Locked),
            ChangeState::Expired => return Err(ChangeError::Expired),
            state => {
                return Err(ChangeError::Conflict {
                    state,
                    action: "verified again",
                });
            }
        }
        if let Some(ip) = client {
            check(&self.tries_per_client, &ip)?;
        }
        let now = self.clock.now();
        if now > request.code_expires_at {
            let after = ChangeRequest {
                state: ChangeState::Expired,
                code_hash: None,
                updated_at: now,
                ..request.clone()
            };
            self.store
                .update_delivery_change(
                    &request,
                    &after,
                    "the code was not given in time",
                    None,
                    None,
                )
                .await?;
            return Err(ChangeError::Expired);
        }
        let links = &self.brands.defaults().links;
        let code = code.trim();
        let right = request
            .code_hash
            .as_deref()
            .is_some_and(|stored| links.check_code(request.id, code, stored));
        if !right {
            let wrong_codes = request.wrong_codes + 1;
            let locked = wrong_codes >= MAX_WRONG_CODES;
            let after = ChangeRequest {
                state: if locked {
                    ChangeState::Locked
                } else {
                    ChangeState::CodeSent
                },
                wrong_codes,
                code_hash: if locked {
                    None
                } else {
                    request.code_hash.clone()
                },
                updated_at: now,
                ..request.clone()
            };
            let note = if locked {
                format!("wrong code ({wrong_codes} of {MAX_WRONG_CODES}): locked")
            } else {
                format!("wrong code ({wrong_codes} of {MAX_WRONG_CODES})")
            };
            if !self
                .store
                .update_delivery_change(&request, &after, &note, None, None)
                .await?
            {
                // Another try was counted at the same moment: count this one against it.
                return Err(ChangeError::WrongCode(0));
            }
            warn!(shipment = %shipment.id, change = %request.id, wrong_codes, "wrong delivery change code");
            return Err(if locked {
                ChangeError::Locked
            } else {
                ChangeError::WrongCode(MAX_WRONG_CODES - wrong_codes)
            });
        }
        let verified = ChangeRequest {
            code_hash: None,
            updated_at: now,
            ..request.clone()
        };
        let policy = self.policy(shipment.merchant_id).await?;
        let earlier = self
            .store
            .shipment_delivery_changes(shipment.id)
            .await?
            .iter()
            .filter(|r| {
                r.id != request.id
                    && (r.state.is_accepted() || r.state == ChangeState::AwaitingApproval)
            })
            .count();
        if let Some(reason) = policy.needs_approval(request.details.kind(), shipment, earlier) {
            let after = ChangeRequest {
                state: ChangeState::AwaitingApproval,
                approval_reason: Some(reason.clone()),
                ..verified
            };
            if !self
                .store
                .update_delivery_change(
                    &request,
                    &after,
                    &format!("code verified by email; waits for the merchant: {reason}"),
                    None,
                    None,
                )
                .await?
            {
                return Err(ChangeError::Conflict {
                    state: request.state,
                    action: "verified twice at once",
                });
            }
            info!(shipment = %shipment.id, change = %request.id, %reason, "delivery change awaits approval");
            return Ok(after);
        }
        self.carry_out(&request, verified, shipment, "code verified by email")
            .await
    }

    /// The merchant approves a request waiting for it: it is carried out now, unless the parcel
    /// moved on meanwhile.
    pub async fn approve(
        &self,
        merchant: MerchantId,
        id: Uuid,
    ) -> Result<ChangeRequest, ChangeError> {
        let (request, shipment) = self.waiting(merchant, id, "approved").await?;
        let approved = ChangeRequest {
            state: ChangeState::Approved,
            updated_at: self.clock.now(),
            ..request.clone()
        };
        if !self
            .store
            .update_delivery_change(&request, &approved, "approved by the merchant", None, None)
            .await?
        {
            return Err(ChangeError::Conflict {
                state: request.state,
                action: "approved twice at once",
            });
        }
        self.carry_out(
            &approved,
            approved.clone(),
            &shipment,
            "approved by the merchant",
        )
        .await
    }

    /// The merchant rejects a request waiting for it; the customer is told, with `reason`.
    pub async fn reject(
        &self,
        merchant: MerchantId,
        id: Uuid,
        reason: Option<String>,
    ) -> Result<ChangeRequest, ChangeError> {
        let (request, shipment) = self.waiting(merchant, id, "rejected").await?;
        let after = ChangeRequest {
            state: ChangeState::Rejected,
            outcome_note: reason.clone(),
            updated_at: self.clock.now(),
            ..request.clone()
        };
        let note = match &reason {
            Some(reason) => format!("rejected by the merchant: {reason}"),
            None => "rejected by the merchant".to_owned(),
        };
        let told = self.confirmation(&shipment, &after);
        if !self
            .store
            .update_delivery_change(&request, &after, &note, told.as_ref(), None)
            .await?
        {
            return Err(ChangeError::Conflict {
                state: request.state,
                action: "rejected twice at once",
            });
        }
        info!(shipment = %shipment.id, change = %id, "delivery change rejected by the merchant");
        Ok(after)
    }

    /// `merchant`'s request `id` with its shipment, when it waits for the merchant.
    async fn waiting(
        &self,
        merchant: MerchantId,
        id: Uuid,
        action: &'static str,
    ) -> Result<(ChangeRequest, Shipment), ChangeError> {
        let request = self
            .store
            .delivery_change(id)
            .await?
            .filter(|r| r.merchant_id == merchant)
            .ok_or(ChangeError::NotFound)?;
        if request.state != ChangeState::AwaitingApproval {
            return Err(ChangeError::Conflict {
                state: request.state,
                action,
            });
        }
        let shipment = self
            .store
            .shipment(request.shipment_id)
            .await?
            .ok_or(ChangeError::NotFound)?;
        Ok((request, shipment))
    }

    /// The customer's message about what became of `request`, for the outbox; none when there
    /// is nowhere to send it.
    fn confirmation(
        &self,
        shipment: &Shipment,
        request: &ChangeRequest,
    ) -> Option<NewNotification> {
        let email = shipment.customer.email.as_ref()?;
        let facts = DeliveryChangeFacts {
            details: request.details.clone(),
            state: request.state,
            code: None,
            code_valid_minutes: None,
            note: request.outcome_note.clone(),
        };
        Some(NewNotification {
            id: Uuid::now_v7(),
            trigger: Trigger::DeliveryChanged,
            dedupe_key: format!("delivery_changed:{}:{}", request.id, request.state.as_str()),
            channel: Channel::Email,
            recipient: email.as_str().to_owned(),
            locale: shipment.customer.locale.clone(),
            reason: format!(
                "the customer's delivery change ({}) is {}",
                request.details.describe(),
                request.state.as_str().replace('_', " ")
            ),
            facts: journey_facts(shipment, facts),
        })
    }
}

/// The number as a carrier is asked about it.
fn parcel(shipment: &Shipment) -> TrackRequest {
    TrackRequest {
        tracking_number: shipment.tracking_number.clone(),
        registered_at: Some(shipment.created_at),
    }
}

/// A message's facts: where the journey is, and the change.
fn journey_facts(shipment: &Shipment, change: DeliveryChangeFacts) -> Facts {
    Facts {
        estimate: shipment.journey.carrier_estimate,
        promise: shipment.promise,
        delivery_change: Some(change),
        ..Facts::bare(shipment.journey.status, shipment.journey.reason)
    }
}

/// Six random digits.
fn one_time_code() -> String {
    use rand::Rng;
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// An address as the page may show it: `a…@example.com`.
fn masked(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}…@{domain}")
        }
        None => "…".into(),
    }
}

/// Count one against `key`'s allowance in `limiter`.
fn check(limiter: &DefaultKeyedRateLimiter<IpAddr>, key: &IpAddr) -> Result<(), ChangeError> {
    let now = DefaultClock::default().now();
    limiter
        .check_key(key)
        .map_err(|not_until| ChangeError::TooMany(not_until.wait_time_from(now).as_secs().max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_addresses_are_masked() {
        for _ in 0..100 {
            let code = one_time_code();
            assert_eq!(code.len(), 6);
            assert!(code.chars().all(|c| c.is_ascii_digit()));
        }
        assert_eq!(masked("anna.nowak@example.pl"), "a…@example.pl");
    }
}

//! Carrying out a verified (and, where needed, approved) change: through the carrier's API
//! where it takes changes, else handed to the merchant with the carrier's own change link.

use tracing::{info, warn};

use super::{ChangeError, DeliveryChanges, parcel};
use crate::carriers::{CarrierError, DeliveryOrder};
use crate::domain::delivery_change;
use crate::domain::{ChangeRequest, ChangeState, MerchantEmail, Shipment};

impl DeliveryChanges {
    /// Carry out `request` (read as `before`, about to become `after`), `how` it got here for
    /// the audit trail; the customer's confirmation goes into the outbox with the new state.
    pub(super) async fn carry_out(
        &self,
        before: &ChangeRequest,
        after: ChangeRequest,
        shipment: &Shipment,
        how: &str,
    ) -> Result<ChangeRequest, ChangeError> {
        let now = self.clock.now();
        let kind = after.details.kind();
        let carrier = self.carriers.get(&shipment.carrier).cloned();
        let policy = self.policy(shipment.merchant_id).await?;
        let refusal = match &carrier {
            Some(c) => {
                delivery_change::refuses(kind, shipment, &c.profile().change_rules(), &policy)
            }
            None => Some(delivery_change::Refusal::NotOffered),
        };
        let (state, note) = if let Some(refusal) = refusal {
            (
                ChangeState::Refused,
                format!("{how}; too late: {}", refusal.describe()),
            )
        } else if let Some(carrier) = carrier.filter(|c| c.takes_delivery_changes()) {
            let order = DeliveryOrder {
                parcel: parcel(shipment),
                details: after.details.clone(),
                at: now,
            };
            let account = self
                .store
                .carrier_account(shipment.carrier_account_id)
                .await?;
            let outcome = match &account {
                Some(account) => carrier.change_delivery(account, &order).await,
                None => Err(CarrierError::Permanent(
                    "the carrier account is gone".into(),
                )),
            };
            match outcome {
                Ok(()) => (
                    ChangeState::Executed,
                    format!("{how}; carried out through {}", carrier.profile().name),
                ),
                Err(CarrierError::Permanent(why)) => (
                    ChangeState::Refused,
                    format!("{how}; the carrier refused it: {why}"),
                ),
                Err(other) => {
                    // The customer's change is not lost for a carrier's bad minute: the merchant
                    // makes it instead.
                    warn!(shipment = %shipment.id, change = %after.id, error = %other,
                        "the carrier did not take the delivery change; handing it to the merchant");
                    (
                        ChangeState::HandedToMerchant,
                        format!("{how}; the carrier could not be reached ({other})"),
                    )
                }
            }
        } else {
            (ChangeState::HandedToMerchant, how.to_owned())
        };
        // Handed over: the merchant's support inbox is told, through its own outbox.
        let (note, merchant_email) = if state == ChangeState::HandedToMerchant {
            match self.merchant_email(shipment, &after).await {
                Ok(email) => (
                    format!(
                        "{note}; handed to the merchant, emailing {}",
                        email.recipient
                    ),
                    Some(email),
                ),
                Err(why) => (format!("{note}; handed to the merchant ({why})"), None),
            }
        } else {
            (note, None)
        };
        let done = ChangeRequest {
            state,
            outcome_note: (state == ChangeState::Refused).then(|| note.clone()),
            updated_at: now,
            ..after
        };
        let told = self.confirmation(shipment, &done);
        if !self
            .store
            .update_delivery_change(before, &done, &note, told.as_ref(), merchant_email.as_ref())
            .await?
        {
            return Err(ChangeError::Conflict {
                state: before.state,
                action: "carried out twice at once",
            });
        }
        if merchant_email.is_some() {
            self.merchant_mail.notify_one();
        }
        info!(shipment = %shipment.id, change = %done.id, state = done.state.as_str(), "delivery change settled");
        Ok(done)
    }

    /// The email asking the merchant's support address to make the change with the carrier,
    /// with the carrier's own change link; or why there is none to send, for the audit trail.
    async fn merchant_email(
        &self,
        shipment: &Shipment,
        request: &ChangeRequest,
    ) -> Result<MerchantEmail, String> {
        let brand = self
            .brands
            .of(shipment.merchant_id)
            .await
            .map_err(|error| format!("the merchant could not be emailed: {error}"))?;
        let Some(support) = brand.settings.branding.support_email.clone() else {
            return Err("no support address to email; listed in the API".into());
        };
        let profile = self.carriers.get(&shipment.carrier).map(|c| c.profile());
        let link = profile
            .and_then(|p| {
                p.delivery_change_links(&shipment.tracking_number)
                    .into_iter()
                    .find(|(kind, _)| kind == request.details.kind().as_str())
            })
            .map(|(_, url)| url)
            .unwrap_or_else(|| {
                profile.map_or_else(String::new, |p| p.tracking_url(&shipment.tracking_number))
            });
        let body = format!(
            "A customer changed the delivery of a parcel on Waymark's tracking page and verified \
             it with a one-time code sent to the email address on file.\n\n\
             Carrier: {carrier}\nTracking number: {number}\nOrder: {order}\n\
             Change: {change}\nRequest: {id}\n\n\
             {carrier} takes no changes through its API here: please make the change with \
             {carrier}:\n{link}\n",
            carrier = profile.map_or_else(|| shipment.carrier.to_string(), |p| p.name.clone()),
            number = shipment.tracking_number,
            order = shipment.order_reference.as_deref().unwrap_or("-"),
            change = request.details.describe(),
            id = request.id,
        );
        let mut email = MerchantEmail::new(
            shipment.merchant_id,
            brand.from.to_string(),
            support,
            format!(
                "Delivery change to make: {} ({})",
                shipment.tracking_number,
                request.details.kind()
            ),
            body,
            self.clock.now(),
        );
        email.shipment_id = Some(shipment.id);
        email.change_id = Some(request.id);
        Ok(email)
    }
}

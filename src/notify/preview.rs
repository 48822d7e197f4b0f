//! A message as it would go out, without sending it: for a real shipment (what its customer
//! would get now for a trigger) or for a sample one (what any customer would get).

use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

use super::brand::Brand;
use super::dispatcher::message_context;
use super::render::{RenderError, RenderedEmail};
use crate::carriers::CarrierRegistry;
use crate::domain::detect::EventFacts;
use crate::domain::{
    CarrierCode, Channel, CountryCode, Customer, EmailAddress, Facts, JourneyState, KeyedEvent,
    Locale, MerchantId, Notification, NotificationState, PickupPoint, PostalCode, Reason, Shipment,
    Status, TimeZoneName, TrackingNumber, Trigger,
};

/// A shipment with made-up customer and parcel, in `locale`, for previews of a merchant's
/// messages before it has any.
pub fn sample_shipment(merchant: MerchantId, locale: &Locale, now: Timestamp) -> Shipment {
    let (name, zone, country, postal) = match locale.language_or(crate::domain::Language::FALLBACK)
    {
        crate::domain::Language::De => ("Anna Schmidt", "Europe/Berlin", "DE", "10115"),
        crate::domain::Language::Pl => ("Anna Kowalska", "Europe/Warsaw", "PL", "00-950"),
        crate::domain::Language::En => ("Anna Smith", "Europe/London", "GB", "SW1A 1AA"),
    };
    let country = CountryCode::parse(country).unwrap_or_else(|_| unreachable!("a valid code"));
    Shipment {
        id: Uuid::nil(),
        merchant_id: merchant,
        carrier_account_id: Uuid::nil(),
        carrier: CarrierCode::parse("sandbox").unwrap_or_else(|_| unreachable!("a valid code")),
        tracking_number: TrackingNumber::parse("SBX-ONTIME-000001")
            .unwrap_or_else(|_| unreachable!("a valid number")),
        customer: Customer {
            email: EmailAddress::parse("anna@example.com").ok(),
            name: Some(name.into()),
            phone: None,
            locale: locale.clone(),
            time_zone: TimeZoneName::parse(zone).unwrap_or_else(|_| unreachable!("a valid zone")),
        },
        destination_postal_code: PostalCode::parse(&country, postal).ok(),
        destination_country: country,
        order_reference: Some("1001".into()),
        promise: None,
        order_value: None,
        signature_required: false,
        created_at: now - SignedDuration::from_hours(48),
        public_token: "preview".into(),
        muted: false,
        journey: JourneyState::new_shipment(),
        poll_failures: 0,
        last_error: None,
        fetched: None,
        erased_at: None,
    }
}

/// What the message for `trigger` would say about `shipment` now, with its `timeline`; the
/// facts a detection would bring are filled with plausible ones where the journey has none.
pub fn preview_notification(
    trigger: Trigger,
    shipment: &Shipment,
    timeline: &[KeyedEvent],
    now: Timestamp,
) -> Notification {
    let latest = timeline.iter().max_by_key(|e| e.event.time.at);
    let (status, reason) = match trigger {
        Trigger::Shipped | Trigger::Delayed | Trigger::Stalled => (Status::InTransit, None),
        Trigger::CustomsHold => (Status::Exception, Some(Reason::CustomsHeld)),
        Trigger::DutiesDue => (Status::Exception, Some(Reason::DutiesDue)),
        Trigger::OutForDelivery => (Status::OutForDelivery, None),
        Trigger::AttemptFailed => (Status::AttemptFailed, Some(Reason::RecipientUnavailable)),
        Trigger::AvailableForPickup | Trigger::PickupReminder => (Status::AvailableForPickup, None),
        Trigger::Delivered => (Status::Delivered, None),
        Trigger::Exception => (Status::Exception, Some(Reason::Damaged)),
        Trigger::ReturningToSender => (Status::Exception, Some(Reason::ReturningToSender)),
        Trigger::DeliveryCode | Trigger::DeliveryChanged => (Status::InTransit, None),
    };
    let today = now.to_zoned(shipment.customer.time_zone.time_zone()).date();
    let window = |days: i64| {
        today
            .checked_add(jiff::Span::new().days(days))
            .ok()
            .and_then(|d| crate::domain::DeliveryWindow::between(d, d).ok())
    };
    let pickup = matches!(
        trigger,
        Trigger::AvailableForPickup | Trigger::PickupReminder
    );
    let facts = Facts {
        status,
        reason,
        event: Some(latest.map(EventFacts::from).unwrap_or(EventFacts {
            at: now - SignedDuration::from_hours(2),
            offset_seconds: None,
            location: Some("Berlin".into()),
            text: "The parcel is on its way".into(),
        })),
        estimate: shipment.journey.carrier_estimate.or_else(|| window(2)),
        previous_estimate: (trigger == Trigger::Delayed).then(|| window(1)).flatten(),
        promise: shipment.promise,
        delay_cause: None,
        quiet_business_hours: (trigger == Trigger::Stalled).then_some(48),
        waiting_since: pickup.then(|| now - SignedDuration::from_hours(20)),
        pickup_point: pickup.then(|| PickupPoint {
            name: "Kiosk am Markt".into(),
            address: Some("Marktplatz 1, 10115 Berlin".into()),
            hold_until: today.checked_add(jiff::Span::new().days(7)).ok(),
        }),
        signed_by: None,
        change_delivery_url: None,
        delivery_change: matches!(trigger, Trigger::DeliveryCode | Trigger::DeliveryChanged).then(
            || crate::domain::detect::DeliveryChangeFacts {
                details: crate::domain::ChangeDetails::Neighbour {
                    name: "Jan Kowalski".into(),
                    house_number: "14".into(),
                },
                state: if trigger == Trigger::DeliveryCode {
                    crate::domain::ChangeState::CodeSent
                } else {
                    crate::domain::ChangeState::Executed
                },
                code: (trigger == Trigger::DeliveryCode).then(|| "123456".into()),
                code_valid_minutes: (trigger == Trigger::DeliveryCode).then_some(10),
                note: None,
            },
        ),
    };
    Notification {
        id: Uuid::nil(),
        shipment_id: shipment.id,
        seq: 0,
        trigger,
        dedupe_key: format!("preview:{trigger}"),
        channel: Channel::Email,
        recipient: shipment
            .customer
            .email
            .as_ref()
            .map_or_else(String::new, |e| e.as_str().to_owned()),
        locale: shipment.customer.locale.clone(),
        reason: format!("a preview of the `{trigger}` message"),
        facts,
        state: NotificationState::Pending,
        attempts: 0,
        available_at: now,
        message_id: None,
        provider_response: None,
        last_error: None,
        created_at: now,
        sent_at: None,
    }
}

/// Where previews render: the carriers and the links (the templates are the brand's).
pub struct Previewer<'a> {
    pub carriers: &'a CarrierRegistry,
    pub sender: &'a super::dispatcher::Sender,
}

impl Previewer<'_> {
    /// The email for `trigger` about `shipment`, as `brand`'s customer would get it now.
    pub fn render(
        &self,
        brand: &Brand,
        trigger: Trigger,
        shipment: &Shipment,
        timeline: &[KeyedEvent],
        now: Timestamp,
    ) -> Result<RenderedEmail, RenderError> {
        let notification = preview_notification(trigger, shipment, timeline, now);
        let context = message_context(self.carriers, self.sender, brand, &notification, shipment);
        brand.templates.render_email(&context)
    }
}

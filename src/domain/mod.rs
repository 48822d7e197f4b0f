//! The pure heart of Waymark: statuses, events, estimates, business days and the detectors that
//! decide what a customer is told. Nothing in here does I/O.

pub mod calendar;
pub mod delivery_change;
pub mod detect;
pub mod estimate;
pub mod event;
pub mod merchant;
pub mod merchant_email;
pub mod merchant_settings;
pub mod outbox;
pub mod shipment;
pub mod status;
pub mod timeline;
pub mod zones;

pub use calendar::HolidayCalendar;
pub use delivery_change::{
    ChangeDetails, ChangeEvent, ChangeKind, ChangeRequest, ChangeState, DeliveryChangePolicy, Money,
};
pub use detect::{Detection, DetectionPolicy, Facts, Situation, Trigger, detect};
pub use estimate::{DeliveryWindow, EstimateChange, EstimateSource};
pub use event::{EventKey, EventTime, KeyedEvent, TrackingEvent};
pub use merchant::{ApiKey, ApiKeyHash, Merchant, MerchantId, MerchantSlug, NewApiKey};
pub use merchant_email::{
    MAX_MERCHANT_EMAIL_ATTEMPTS, MerchantEmail, MerchantEmailOutcome, MerchantEmailState,
    merchant_email_retry_after,
};
pub use merchant_settings::{Branding, MerchantSettings, NotificationSettings, QuietHoursSetting};
pub use outbox::{Channel, NewNotification, Notification, NotificationState};
pub use shipment::{
    CarrierCode, CountryCode, Customer, EmailAddress, FetchCount, InvalidField, JourneyState,
    Language, Locale, NewShipment, PhoneNumber, PickupPoint, PostalCode, Shipment, TimeZoneName,
    TrackingNumber,
};
pub use status::{Reason, Status};
pub use timeline::Timeline;
pub use zones::ZoneTable;

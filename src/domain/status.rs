//! The one status taxonomy every carrier is normalised into.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a parcel is in its journey, whatever carrier moves it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Registered with Waymark; the carrier has told us nothing yet.
    Pending,
    /// The carrier has the label data but not the parcel.
    InfoReceived,
    /// The carrier has the parcel and is moving it.
    InTransit,
    /// On the vehicle that delivers it today.
    OutForDelivery,
    /// Waiting at a pickup point or locker for the customer.
    AvailableForPickup,
    /// A delivery attempt failed; the carrier will try again or redirect.
    AttemptFailed,
    /// Delivered (to the customer, a neighbour, a safe place, or picked up).
    Delivered,
    /// Something went wrong: customs, damage, loss, return.
    Exception,
    /// The carrier stopped reporting and Waymark gave up on the shipment.
    Expired,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Pending,
        Status::InfoReceived,
        Status::InTransit,
        Status::OutForDelivery,
        Status::AvailableForPickup,
        Status::AttemptFailed,
        Status::Delivered,
        Status::Exception,
        Status::Expired,
    ];

    /// The stable name used in the database, templates and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::InfoReceived => "info_received",
            Status::InTransit => "in_transit",
            Status::OutForDelivery => "out_for_delivery",
            Status::AvailableForPickup => "available_for_pickup",
            Status::AttemptFailed => "attempt_failed",
            Status::Delivered => "delivered",
            Status::Exception => "exception",
            Status::Expired => "expired",
        }
    }

    /// Whether the carrier has physically taken the parcel.
    pub fn carrier_has_parcel(self) -> bool {
        !matches!(
            self,
            Status::Pending | Status::InfoReceived | Status::Expired
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not part of the taxonomy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownName {
    pub kind: &'static str,
    pub value: String,
}

impl FromStr for Status {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "status",
                value: s.to_owned(),
            })
    }
}

/// Why a parcel is in its status: the detail a customer needs to understand it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    CustomsClearanceStarted,
    CustomsHeld,
    DutiesDue,
    CustomsReleased,
    ArrivedDestinationCountry,
    AddressIssue,
    RecipientUnavailable,
    Refused,
    Damaged,
    Lost,
    ReturningToSender,
    ReturnedToSender,
    DeliveredToNeighbour,
    DeliveredToSafePlace,
    PickedUpByCustomer,
    WeatherDelay,
    CarrierDelay,
    HeldForPayment,
}

impl Reason {
    pub const ALL: [Reason; 18] = [
        Reason::CustomsClearanceStarted,
        Reason::CustomsHeld,
        Reason::DutiesDue,
        Reason::CustomsReleased,
        Reason::ArrivedDestinationCountry,
        Reason::AddressIssue,
        Reason::RecipientUnavailable,
        Reason::Refused,
        Reason::Damaged,
        Reason::Lost,
        Reason::ReturningToSender,
        Reason::ReturnedToSender,
        Reason::DeliveredToNeighbour,
        Reason::DeliveredToSafePlace,
        Reason::PickedUpByCustomer,
        Reason::WeatherDelay,
        Reason::CarrierDelay,
        Reason::HeldForPayment,
    ];

    /// The stable name used in the database, templates and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::CustomsClearanceStarted => "customs_clearance_started",
            Reason::CustomsHeld => "customs_held",
            Reason::DutiesDue => "duties_due",
            Reason::CustomsReleased => "customs_released",
            Reason::ArrivedDestinationCountry => "arrived_destination_country",
            Reason::AddressIssue => "address_issue",
            Reason::RecipientUnavailable => "recipient_unavailable",
            Reason::Refused => "refused",
            Reason::Damaged => "damaged",
            Reason::Lost => "lost",
            Reason::ReturningToSender => "returning_to_sender",
            Reason::ReturnedToSender => "returned_to_sender",
            Reason::DeliveredToNeighbour => "delivered_to_neighbour",
            Reason::DeliveredToSafePlace => "delivered_to_safe_place",
            Reason::PickedUpByCustomer => "picked_up_by_customer",
            Reason::WeatherDelay => "weather_delay",
            Reason::CarrierDelay => "carrier_delay",
            Reason::HeldForPayment => "held_for_payment",
        }
    }

    /// The parcel is on its way back to the merchant (or already there).
    pub fn is_return(self) -> bool {
        matches!(self, Reason::ReturningToSender | Reason::ReturnedToSender)
    }

    /// Customs or a payment stands between the parcel and the customer.
    pub fn is_customs(self) -> bool {
        matches!(
            self,
            Reason::CustomsClearanceStarted
                | Reason::CustomsHeld
                | Reason::DutiesDue
                | Reason::CustomsReleased
                | Reason::HeldForPayment
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "reason",
                value: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::String(status.as_str().into())
            );
        }
        for reason in Reason::ALL {
            assert_eq!(reason.as_str().parse::<Reason>().unwrap(), reason);
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::Value::String(reason.as_str().into())
            );
        }
        assert_eq!(
            "shipped".parse::<Status>().unwrap_err().to_string(),
            "unknown status `shipped`"
        );
    }
}

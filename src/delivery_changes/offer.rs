//! What a customer is offered for one parcel, and whether what they sent is one of those
//! offers.

use jiff::civil::Date;
use serde::Serialize;

use crate::carriers::PickupPointChoice;
use crate::domain::delivery_change::{
    self, CarrierChangeRules, DeliveryChangePolicy, Refusal, neighbour_text,
};
use crate::domain::{ChangeDetails, ChangeKind, InvalidField, Shipment};

/// The changes open for a parcel right now.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Offer {
    /// Why nothing can be changed, when nothing can.
    pub refusal: Option<Refusal>,
    pub another_day: Vec<Date>,
    pub neighbour: bool,
    pub pickup_points: Vec<PickupPointChoice>,
    pub safe_places: Vec<String>,
}

impl Offer {
    /// What is open for `shipment` by `rules` and `policy`, with the `days` and `points` the
    /// destination and the carrier have.
    pub fn new(
        shipment: &Shipment,
        rules: &CarrierChangeRules,
        policy: &DeliveryChangePolicy,
        days: Vec<Date>,
        points: Vec<PickupPointChoice>,
    ) -> Offer {
        if let Some(refusal) = delivery_change::parcel_refuses(shipment, rules) {
            return Offer {
                refusal: Some(refusal),
                ..Offer::default()
            };
        }
        let open = |kind| delivery_change::refuses(kind, shipment, rules, policy).is_none();
        let offer = Offer {
            refusal: None,
            another_day: if open(ChangeKind::AnotherDay) {
                days
            } else {
                Vec::new()
            },
            neighbour: open(ChangeKind::Neighbour),
            pickup_points: if open(ChangeKind::PickupPoint) {
                points
            } else {
                Vec::new()
            },
            safe_places: if open(ChangeKind::SafePlace) {
                rules.safe_places.clone()
            } else {
                Vec::new()
            },
        };
        if offer.is_empty() {
            // The policy may say why (an order above the shop's limit); else nothing is offered.
            let refusal = ChangeKind::ALL
                .into_iter()
                .filter(|k| rules.kinds.contains(k))
                .find_map(|kind| policy.refuses(kind, shipment))
                .unwrap_or(Refusal::NotOffered);
            return Offer {
                refusal: Some(refusal),
                ..Offer::default()
            };
        }
        offer
    }

    /// Whether nothing at all is open.
    pub fn is_empty(&self) -> bool {
        self.another_day.is_empty()
            && !self.neighbour
            && self.pickup_points.is_empty()
            && self.safe_places.is_empty()
    }

    /// The change `form` asks for, when it is one of these offers; else what is wrong, naming
    /// the field.
    pub fn read(&self, form: &ChangeForm) -> Result<ChangeDetails, InvalidField> {
        let kind: ChangeKind = form.kind.parse().map_err(|_| {
            InvalidField::new(
                "kind",
                "must be another_day, neighbour, pickup_point or safe_place",
            )
        })?;
        let not_offered = || InvalidField::new("kind", format!("{kind} is not offered"));
        match kind {
            ChangeKind::AnotherDay => {
                let raw = form.date.as_deref().unwrap_or_default();
                let date: Date = raw
                    .parse()
                    .map_err(|_| InvalidField::new("date", "must be a date like 2026-12-07"))?;
                if self.another_day.is_empty() {
                    return Err(not_offered());
                }
                if !self.another_day.contains(&date) {
                    return Err(InvalidField::new(
                        "date",
                        "is not one of the delivery days offered",
                    ));
                }
                Ok(ChangeDetails::AnotherDay { date })
            }
            ChangeKind::Neighbour => {
                if !self.neighbour {
                    return Err(not_offered());
                }
                Ok(ChangeDetails::Neighbour {
                    name: neighbour_text(
                        "neighbour_name",
                        form.neighbour_name.as_deref().unwrap_or(""),
                    )?,
                    house_number: neighbour_text(
                        "house_number",
                        form.house_number.as_deref().unwrap_or(""),
                    )?,
                })
            }
            ChangeKind::PickupPoint => {
                if self.pickup_points.is_empty() {
                    return Err(not_offered());
                }
                let id = form.pickup_point.as_deref().unwrap_or_default();
                let point = self
                    .pickup_points
                    .iter()
                    .find(|p| p.id == id)
                    .ok_or_else(|| {
                        InvalidField::new("pickup_point", "is not one of the points offered")
                    })?;
                Ok(ChangeDetails::PickupPoint {
                    point_id: point.id.clone(),
                    name: point.name.clone(),
                    address: Some(point.address.clone()),
                })
            }
            ChangeKind::SafePlace => {
                if self.safe_places.is_empty() {
                    return Err(not_offered());
                }
                let place = form.safe_place.as_deref().unwrap_or_default();
                if !self.safe_places.iter().any(|p| p == place) {
                    return Err(InvalidField::new(
                        "safe_place",
                        "is not one of the safe places offered",
                    ));
                }
                Ok(ChangeDetails::SafePlace {
                    place: place.to_owned(),
                })
            }
        }
    }
}

/// What the page's change forms post: the kind, and the fields of that kind.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ChangeForm {
    pub kind: String,
    pub date: Option<String>,
    pub neighbour_name: Option<String>,
    pub house_number: Option<String>,
    pub pickup_point: Option<String>,
    pub safe_place: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CountryCode, Money, Status};

    fn shipment() -> Shipment {
        let mut s = crate::notify::preview::sample_shipment(
            crate::domain::MerchantId::DEFAULT,
            &crate::domain::Locale::parse("de").unwrap(),
            "2026-12-04T10:00:00Z".parse().unwrap(),
        );
        s.journey.status = Status::InTransit;
        s.journey.active = true;
        s
    }

    fn rules() -> CarrierChangeRules {
        CarrierChangeRules {
            kinds: ChangeKind::ALL.to_vec(),
            while_out_for_delivery: false,
            safe_places: vec!["garage".into()],
            another_day_choices: 3,
        }
    }

    fn days() -> Vec<Date> {
        vec!["2026-12-07".parse().unwrap()]
    }

    fn points() -> Vec<PickupPointChoice> {
        vec![PickupPointChoice {
            id: "P1".into(),
            name: "Kiosk".into(),
            address: "Markt 1".into(),
        }]
    }

    fn offer(shipment: &Shipment, policy: &DeliveryChangePolicy) -> Offer {
        Offer::new(shipment, &rules(), policy, days(), points())
    }

    #[test]
    fn a_moving_parcel_is_offered_every_change_the_carrier_takes() {
        let offer = offer(&shipment(), &DeliveryChangePolicy::default());
        assert_eq!(offer.refusal, None);
        assert_eq!(offer.another_day, days());
        assert!(offer.neighbour);
        assert_eq!(offer.pickup_points.len(), 1);
        assert_eq!(offer.safe_places, ["garage"]);
    }

    #[test]
    fn nothing_is_offered_once_out_for_delivery_delivered_or_signed_for() {
        let policy = DeliveryChangePolicy::default();
        let mut on_the_van = shipment();
        on_the_van.journey.status = Status::OutForDelivery;
        assert_eq!(
            offer(&on_the_van, &policy).refusal,
            Some(Refusal::OutForDelivery)
        );
        let mut allowed = rules();
        allowed.while_out_for_delivery = true;
        let late = Offer::new(&on_the_van, &allowed, &policy, days(), points());
        assert_eq!(late.refusal, None, "the carrier takes changes on the van");

        let mut delivered = shipment();
        delivered.journey.status = Status::Delivered;
        delivered.journey.active = false;
        assert_eq!(
            offer(&delivered, &policy).refusal,
            Some(Refusal::JourneyOver)
        );

        let mut signature = shipment();
        signature.signature_required = true;
        assert_eq!(
            offer(&signature, &policy).refusal,
            Some(Refusal::SignatureRequired)
        );
    }

    #[test]
    fn the_merchants_policy_narrows_the_offer() {
        let only_days = DeliveryChangePolicy {
            kinds: vec![ChangeKind::AnotherDay],
            ..DeliveryChangePolicy::default()
        };
        let o = offer(&shipment(), &only_days);
        assert!(!o.neighbour && o.pickup_points.is_empty() && o.safe_places.is_empty());
        assert_eq!(o.another_day, days());

        let elsewhere = DeliveryChangePolicy {
            countries: vec![CountryCode::parse("FR").unwrap()],
            ..DeliveryChangePolicy::default()
        };
        assert_eq!(
            offer(&shipment(), &elsewhere).refusal,
            Some(Refusal::NotOffered)
        );

        let cheap_only = DeliveryChangePolicy {
            max_order_value: Some(Money::parse("m", "50", "EUR").unwrap()),
            ..DeliveryChangePolicy::default()
        };
        let mut dear = shipment();
        dear.order_value = Some(Money::parse("v", "80", "EUR").unwrap());
        assert_eq!(offer(&dear, &cheap_only).refusal, Some(Refusal::OrderValue));
    }

    #[test]
    fn a_form_is_read_only_as_one_of_the_offers_and_names_the_wrong_field() {
        let offer = offer(&shipment(), &DeliveryChangePolicy::default());
        let form = |kind: &str| ChangeForm {
            kind: kind.into(),
            ..ChangeForm::default()
        };
        assert_eq!(
            offer
                .read(&ChangeForm {
                    date: Some("2026-12-07".into()),
                    ..form("another_day")
                })
                .unwrap(),
            ChangeDetails::AnotherDay {
                date: "2026-12-07".parse().unwrap()
            }
        );
        let wrong_day = ChangeForm {
            date: Some("2026-12-25".into()),
            ..form("another_day")
        };
        assert_eq!(offer.read(&wrong_day).unwrap_err().field, "date");
        assert_eq!(
            offer.read(&form("neighbour")).unwrap_err().field,
            "neighbour_name"
        );
        let garden = ChangeForm {
            safe_place: Some("roof".into()),
            ..form("safe_place")
        };
        assert_eq!(offer.read(&garden).unwrap_err().field, "safe_place");
        assert_eq!(offer.read(&form("teleport")).unwrap_err().field, "kind");
        let point = ChangeForm {
            pickup_point: Some("P1".into()),
            ..form("pickup_point")
        };
        assert!(matches!(
            offer.read(&point).unwrap(),
            ChangeDetails::PickupPoint { point_id, .. } if point_id == "P1"
        ));
    }
}

//! How the sandbox's journeys follow a customer's delivery change.
//!
//! The change is acknowledged with a scan of its own when it is made (`CA`). From then on, the
//! parcel's next delivery outcome (delivered, a failed attempt, waiting at a shop) is replaced by
//! what the customer asked for, at the same time the script had it: a neighbour takes it (`DN`,
//! signed for by the neighbour), it is left at the safe place (`DS`), it goes to the pickup point
//! (`PS`, collected two days later), or it is delivered on the chosen day (`OD`, `DL`).

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::{DELIVERED, OUT_FOR_DELIVERY, Played};
use crate::carriers::PickupPointChoice;
use crate::domain::{ChangeDetails, DeliveryWindow, EventTime, PickupPoint};

/// A change the sandbox accepted.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    pub at: Timestamp,
    pub details: ChangeDetails,
}

/// The codes a change brings into a journey.
#[cfg(test)]
pub(crate) const CODES: [&str; 3] = ["CA", "DN", "DS"];

/// The script's codes that end a delivery round, which a change replaces.
const OUTCOMES: [&str; 5] = ["DL", "AF", "AA", "PS", "PC"];

/// The parcel shops near a destination city.
pub(crate) fn pickup_points(city: &str) -> Vec<PickupPointChoice> {
    [
        "Kiosk am Markt",
        "Paketshop Hauptbahnhof",
        "Packstation 112",
    ]
    .iter()
    .enumerate()
    .map(|(i, name)| PickupPointChoice {
        id: format!("SBX-PS-{}", i + 1),
        name: (*name).to_owned(),
        address: format!("{}. Hauptstraße {}, {city}", i + 1, 10 + 7 * i),
    })
    .collect()
}

/// A scan at `at` in `zone`, without a script step behind it.
fn scan(at: Timestamp, zone: &TimeZone, code: &'static str, text: String, like: &Played) -> Played {
    Played {
        at,
        time: EventTime::with_offset(at, zone.to_offset(at)),
        code,
        text,
        place: like.place,
        estimate: None,
        pickup: None,
        signed_by: None,
    }
}

/// Rewrite `played` (a whole journey, in order) for `change`, in the destination's `zone`.
pub(crate) fn apply(played: &mut Vec<Played>, change: &Accepted, zone: TimeZone) {
    let at = Timestamp::from_second(change.at.as_second()).unwrap_or(change.at);
    let Some(before) = played.iter().rposition(|p| p.at <= at) else {
        return;
    };
    // The instruction comes from the recipient, not from a scan at a place.
    let mut acknowledged = scan(
        at,
        &zone,
        "CA",
        "Delivery instructions changed at the recipient's request".into(),
        &played[before],
    );
    acknowledged.place = None;
    let cut = played
        .iter()
        .position(|p| p.at > at && OUTCOMES.contains(&p.code));
    let Some(cut) = cut else {
        // Nothing left to deliver (lost, or already over): the carrier only notes the request.
        played.insert(before + 1, acknowledged);
        return;
    };
    let outcome = played[cut].clone();
    let mut ending = Vec::new();
    let mut keep = cut;
    match &change.details {
        ChangeDetails::Neighbour { name, house_number } => {
            let mut delivered = scan(
                outcome.at,
                &zone,
                "DN",
                format!("Delivered to a neighbour at no. {house_number}"),
                &outcome,
            );
            delivered.signed_by = Some(format!("{name} (neighbour, no. {house_number})"));
            ending.push(delivered);
        }
        ChangeDetails::SafePlace { place } => ending.push(scan(
            outcome.at,
            &zone,
            "DS",
            format!(
                "Delivered to the agreed safe place: {}",
                place.replace('_', " ")
            ),
            &outcome,
        )),
        ChangeDetails::PickupPoint { name, address, .. } => {
            let mut waiting = scan(
                outcome.at,
                &zone,
                "PS",
                format!("Ready for collection at {name}"),
                &outcome,
            );
            let hold_until = outcome
                .at
                .to_zoned(zone.clone())
                .date()
                .checked_add(jiff::ToSpan::days(7))
                .ok();
            waiting.pickup = Some(PickupPoint {
                name: name.clone(),
                address: address.clone(),
                hold_until,
            });
            let collected_at = outcome.at + jiff::SignedDuration::from_hours(48);
            ending.push(waiting);
            ending.push(scan(
                collected_at,
                &zone,
                "PC",
                "Collected at the parcel shop".into(),
                &outcome,
            ));
        }
        ChangeDetails::AnotherDay { date } => {
            // The van of the day the customer chose, not the one of the script.
            if let Some(van) = played[..cut]
                .iter()
                .rposition(|p| p.at > at && p.code == "OD")
            {
                keep = van;
            }
            let at_time = |hour, minute| {
                date.at(hour, minute, 0, 0)
                    .to_zoned(zone.clone())
                    .map(|z| z.timestamp())
                    .ok()
            };
            if let (Some(out), Some(delivered)) = (at_time(8, 40), at_time(14, 10)) {
                ending.push(scan(out, &zone, "OD", OUT_FOR_DELIVERY.into(), &outcome));
                let mut done = scan(delivered, &zone, "DL", DELIVERED.into(), &outcome);
                done.signed_by = outcome.signed_by.clone();
                ending.push(done);
            }
        }
    }
    if let ChangeDetails::AnotherDay { date } = &change.details {
        acknowledged.estimate = DeliveryWindow::between(*date, *date).ok();
    }
    played.truncate(keep);
    played.insert(before + 1, acknowledged);
    played.extend(ending);
}

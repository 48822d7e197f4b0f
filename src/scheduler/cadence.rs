//! When to poll a shipment next: rarely while nothing is expected, often around the expected
//! delivery and while out for delivery, never once the journey is over.

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, ToSpan};
use rand::Rng;

use crate::carriers::profile::{Cadence, Limits};
use crate::domain::{JourneyState, Reason, Status};

/// Minutes until the next poll for a journey in this state, before jitter; `None` when the
/// journey is over.
pub fn interval_minutes(
    cadence: &Cadence,
    limits: &Limits,
    journey: &JourneyState,
    today: Date,
) -> Option<u32> {
    if !journey.active {
        return None;
    }
    let minutes = match journey.status {
        Status::Pending | Status::InfoReceived => cadence.before_handover,
        Status::OutForDelivery | Status::AttemptFailed => cadence.out_for_delivery,
        Status::AvailableForPickup => cadence.waiting,
        _ if journey.reason.is_some_and(Reason::is_customs) => cadence.waiting,
        _ if near_estimate(journey, today) => cadence.near_estimate,
        _ => cadence.in_transit,
    };
    // Some carriers allow only so many fetches of one shipment per day.
    let floor = limits
        .max_fetches_per_shipment_per_day
        .filter(|n| *n > 0)
        .map_or(0, |n| (24 * 60_u32).div_ceil(n));
    Some(minutes.max(floor))
}

/// Within a day of the carrier's estimate (or past it).
fn near_estimate(journey: &JourneyState, today: Date) -> bool {
    journey.carrier_estimate.is_some_and(|window| {
        window
            .earliest
            .checked_sub(1.day())
            .is_ok_and(|eve| today >= eve)
    })
}

/// How urgently a shipment should be polled when the daily quota cannot cover every due one:
/// 0 is the most urgent.
pub fn priority(journey: &JourneyState, today: Date) -> i32 {
    match journey.status {
        Status::OutForDelivery | Status::AttemptFailed => 0,
        _ if near_estimate(journey, today) => 1,
        Status::InTransit | Status::Exception | Status::AvailableForPickup => 2,
        _ => 3,
    }
}

/// `minutes` with up to `jitter_percent` added or removed at random, so polls spread out.
pub fn jittered(minutes: u32, jitter_percent: u32, rng: &mut impl Rng) -> SignedDuration {
    let base = f64::from(minutes) * 60.0;
    let spread = base * f64::from(jitter_percent.min(90)) / 100.0;
    let offset = if spread > 0.0 {
        rng.random_range(-spread..=spread)
    } else {
        0.0
    };
    SignedDuration::from_secs_f64((base + offset).max(1.0))
}

/// Delay after `failures` consecutive failed polls: doubling from five minutes up to the
/// carrier's `max_backoff`.
pub fn backoff(cadence: &Cadence, failures: u32) -> SignedDuration {
    let minutes = 5u64
        .saturating_mul(1u64 << failures.min(16))
        .min(u64::from(cadence.max_backoff.max(5)));
    SignedDuration::from_mins(minutes as i64)
}

/// The next poll time, or `None` when the journey is over.
pub fn next_poll_at(
    cadence: &Cadence,
    limits: &Limits,
    journey: &JourneyState,
    now: Timestamp,
    today: Date,
    rng: &mut impl Rng,
) -> Option<Timestamp> {
    let minutes = interval_minutes(cadence, limits, journey, today)?;
    now.checked_add(jittered(minutes, cadence.jitter_percent, rng))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DeliveryWindow;
    use jiff::civil::date;
    use rand::SeedableRng;

    fn cadence() -> Cadence {
        Cadence {
            before_handover: 480,
            in_transit: 240,
            near_estimate: 60,
            out_for_delivery: 30,
            waiting: 360,
            not_found: 120,
            max_backoff: 360,
            jitter_percent: 10,
        }
    }

    fn limits(max_per_day: Option<u32>) -> Limits {
        Limits {
            batch_size: 1,
            requests_per_second: 1.0,
            daily_quota: Some(250),
            max_fetches_per_shipment_per_day: max_per_day,
            quota_resets_at: "00:00".into(),
            quota_time_zone: "UTC".into(),
        }
    }

    fn journey(status: Status, estimate: Option<Date>) -> JourneyState {
        JourneyState {
            status,
            reason: None,
            carrier_estimate: estimate.map(DeliveryWindow::on),
            last_event_at: None,
            active: true,
        }
    }

    #[test]
    fn cadence_follows_the_journey() {
        let today = date(2026, 3, 2);
        let c = cadence();
        let l = limits(None);
        let at = |j: &JourneyState| interval_minutes(&c, &l, j, today);
        assert_eq!(at(&journey(Status::InfoReceived, None)), Some(480));
        assert_eq!(
            at(&journey(Status::InTransit, Some(date(2026, 3, 6)))),
            Some(240)
        );
        assert_eq!(
            at(&journey(Status::InTransit, Some(date(2026, 3, 3)))),
            Some(60)
        );
        assert_eq!(at(&journey(Status::OutForDelivery, None)), Some(30));
        let mut done = journey(Status::Delivered, None);
        done.active = false;
        assert_eq!(at(&done), None);
    }

    #[test]
    fn a_per_shipment_daily_cap_slows_polling_down() {
        let today = date(2026, 3, 2);
        // Ten fetches a day at most: never more often than every 144 minutes.
        assert_eq!(
            interval_minutes(
                &cadence(),
                &limits(Some(10)),
                &journey(Status::OutForDelivery, None),
                today
            ),
            Some(144)
        );
    }

    #[test]
    fn jitter_stays_within_its_percentage() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let d = jittered(100, 10, &mut rng).as_secs_f64();
            assert!((5400.0..=6600.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = cadence();
        assert_eq!(backoff(&c, 0), SignedDuration::from_mins(5));
        assert_eq!(backoff(&c, 3), SignedDuration::from_mins(40));
        assert_eq!(backoff(&c, 30), SignedDuration::from_mins(360));
    }

    #[test]
    fn nearest_delivery_is_most_urgent() {
        let today = date(2026, 3, 2);
        assert!(
            priority(&journey(Status::OutForDelivery, None), today)
                < priority(&journey(Status::InTransit, Some(date(2026, 3, 3))), today)
        );
        assert!(
            priority(&journey(Status::InTransit, Some(date(2026, 3, 3))), today)
                < priority(&journey(Status::InTransit, Some(date(2026, 3, 9))), today)
        );
        assert!(
            priority(&journey(Status::InTransit, None), today)
                < priority(&journey(Status::InfoReceived, None), today)
        );
    }
}

//! When to poll a shipment next. Carrier calls are spent where news is likely: around an expected
//! delivery day's out-for-delivery time and while the van is out, rarely while the parcel moves
//! between hubs, never once the journey is over. Every path (a poll, a parcel the carrier does not
//! know, a failed call) keeps to the carrier's per-shipment daily cap.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use rand::Rng;

use super::quota::QuotaDay;
use crate::carriers::profile::{Cadence, Limits};
use crate::domain::{DeliveryWindow, JourneyState, Reason, Status};

/// How far ahead a next delivery day is looked for (a fortnight of holidays is none).
const DELIVERY_DAY_HORIZON: i64 = 14;

/// What the cadence needs to know about one shipment at one moment.
pub struct Moment<'a> {
    pub journey: &'a JourneyState,
    /// The delivery expected: the carrier's estimate, else the merchant's promise.
    pub expected: Option<DeliveryWindow>,
    /// The destination's zone: a delivery day's hours are counted there.
    pub zone: &'a TimeZone,
    /// Whether vans deliver at the destination on a date (not on Sundays and public holidays).
    pub delivery_day: &'a dyn Fn(Date) -> bool,
    /// When the customer is due a reminder to collect the parcel from its pickup point (the
    /// detector fires it at a poll).
    pub pickup_reminder_at: Option<Timestamp>,
    /// The latest scan was in another country than the destination: a border (and customs,
    /// with news the customer may have to act on) lies ahead.
    pub abroad: bool,
    pub now: Timestamp,
}

/// Where a journey stands, as far as polling goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Label created, the carrier does not have the parcel yet.
    BeforeHandover,
    /// Moving, the delivery not due before a later delivery day (or not known).
    InTransit,
    /// Today is an expected delivery day and the parcel is not on a van (yet).
    DeliveryDay,
    /// On the van: delivered or attempted within hours.
    OnTheVan,
    /// A delivery attempt failed: the next one, or a pickup point, comes on a later day.
    AfterFailedAttempt,
    /// At a pickup point: waiting for the customer to collect it.
    AtPickupPoint,
    /// Held by customs: waiting for the authorities (or for duties to be paid).
    Waiting,
    /// The expected delivery has passed and the parcel has not come.
    Overdue,
    /// The journey is over: never polled again.
    Over,
}

impl Moment<'_> {
    fn local_date(&self) -> Date {
        self.now.to_zoned(self.zone.clone()).date()
    }

    /// Where the journey stands now.
    pub fn phase(&self) -> Phase {
        let journey = self.journey;
        if !journey.active {
            return Phase::Over;
        }
        let today = self.local_date();
        match journey.status {
            Status::Pending | Status::InfoReceived => Phase::BeforeHandover,
            Status::OutForDelivery => Phase::OnTheVan,
            Status::AttemptFailed => Phase::AfterFailedAttempt,
            Status::AvailableForPickup => Phase::AtPickupPoint,
            // Released by customs, the parcel travels on like any other.
            _ if journey
                .reason
                .is_some_and(|r| r.is_customs() && r != Reason::CustomsReleased) =>
            {
                Phase::Waiting
            }
            _ => match self.expected {
                Some(window) if today > window.latest => Phase::Overdue,
                Some(window) if today >= window.earliest && (self.delivery_day)(today) => {
                    Phase::DeliveryDay
                }
                _ => Phase::InTransit,
            },
        }
    }

    /// When the first out-for-delivery scans of `date` come, in the destination's zone.
    fn vans_leave(&self, cadence: &Cadence, date: Date) -> Timestamp {
        local_instant(self.zone, date, cadence.out_for_delivery_from, self.now)
    }

    /// The first delivery day on or after `from` whose vans have not left yet.
    fn next_delivery_day(&self, cadence: &Cadence, from: Date) -> Option<Date> {
        (0..DELIVERY_DAY_HORIZON)
            .filter_map(|offset| from.checked_add(offset.days()).ok())
            .find(|date| (self.delivery_day)(*date) && self.vans_leave(cadence, *date) > self.now)
    }
}

/// `time` on `date` in `zone` (the later instant in a repeated hour, the next one in a gap).
fn local_instant(
    zone: &TimeZone,
    date: Date,
    time: jiff::civil::Time,
    fallback: Timestamp,
) -> Timestamp {
    date.to_datetime(time)
        .to_zoned(zone.clone())
        .map(|z| z.timestamp())
        .unwrap_or(fallback)
}

/// The next poll time, or `None` when the journey is over. The daily cap is applied separately
/// ([`within_daily_cap`]).
pub fn next_poll_at(
    cadence: &Cadence,
    moment: &Moment<'_>,
    rng: &mut impl Rng,
) -> Option<Timestamp> {
    let now = moment.now;
    let local = now.to_zoned(moment.zone.clone());
    let today = local.date();
    let tomorrow = today.tomorrow().unwrap_or(today);
    let after = |minutes: u32, rng: &mut dyn rand::RngCore| {
        now.checked_add(jittered(minutes, cadence.jitter_percent, rng))
            .unwrap_or(Timestamp::MAX)
    };
    // The first look of a delivery day falls anywhere in the first morning interval after the
    // vans start leaving: shipments (and accounts) do not all ask at the same minute, and the
    // morning's polls meet the scans at every phase.
    let morning = |date: Date, rng: &mut dyn rand::RngCore| {
        let at = moment.vans_leave(cadence, date);
        let spread = i64::from(cadence.near_estimate) * 60;
        let jitter = if spread > 0 {
            rng.random_range(0..spread)
        } else {
            0
        };
        at.checked_add(SignedDuration::from_secs(jitter))
            .unwrap_or(at)
    };
    let next = match moment.phase() {
        Phase::Over => return None,
        Phase::BeforeHandover => after(cadence.before_handover, rng),
        Phase::Waiting => after(cadence.waiting, rng),
        Phase::AtPickupPoint => {
            let later = after(cadence.at_pickup_point, rng);
            match moment.pickup_reminder_at.filter(|at| *at > now) {
                Some(reminder) => later.min(reminder),
                None => later,
            }
        }
        Phase::Overdue => after(cadence.in_transit, rng),
        Phase::OnTheVan => {
            if local.time() < cadence.deliveries_until {
                after(cadence.out_for_delivery, rng)
            } else {
                // Still on the van after the last deliveries: the news comes tomorrow.
                match moment.next_delivery_day(cadence, tomorrow) {
                    Some(date) => morning(date, rng),
                    None => after(cadence.waiting, rng),
                }
            }
        }
        Phase::AfterFailedAttempt => {
            // Not the van's rate for days: a pickup point is announced within hours, the next
            // attempt comes on the next delivery day.
            let waiting = after(cadence.waiting, rng);
            match moment.next_delivery_day(cadence, tomorrow) {
                Some(date) => waiting.min(morning(date, rng)),
                None => waiting,
            }
        }
        Phase::DeliveryDay => {
            let time = local.time();
            let latest = moment.expected.map_or(today, |w| w.latest);
            if time < cadence.out_for_delivery_from {
                morning(today, rng)
            } else if time < cadence.out_for_delivery_until {
                after(cadence.near_estimate, rng)
            } else {
                // No van this morning: one more look in the afternoon (some parcels come
                // without an out-for-delivery scan), then the next expected day's morning.
                let afternoon = after(cadence.waiting, rng);
                let last_delivery =
                    local_instant(moment.zone, today, cadence.deliveries_until, now);
                let next_day = moment
                    .next_delivery_day(cadence, tomorrow)
                    .filter(|date| *date <= latest);
                if time < cadence.deliveries_until && afternoon <= last_delivery {
                    afternoon
                } else {
                    match next_day {
                        Some(date) => morning(date, rng),
                        None => after(cadence.in_transit, rng),
                    }
                }
            }
        }
        Phase::InTransit => {
            // Between hubs little happens; on the way into the destination country, customs
            // may hold the parcel or ask for duties any hour.
            let minutes = if moment.abroad {
                cadence.waiting.min(cadence.in_transit)
            } else {
                cadence.in_transit
            };
            let between_hubs = after(minutes, rng);
            let first_day = moment
                .expected
                .and_then(|w| moment.next_delivery_day(cadence, w.earliest.max(today)));
            match first_day {
                Some(date) => between_hubs.min(morning(date, rng)),
                None => between_hubs,
            }
        }
    };
    Some(next.max(now + SignedDuration::from_mins(1)))
}

/// How urgently a shipment should be polled when the daily quota cannot cover every due one:
/// 0 is the most urgent.
pub fn priority(moment: &Moment<'_>) -> i32 {
    let tomorrow = moment.local_date().tomorrow().ok();
    match moment.phase() {
        Phase::OnTheVan | Phase::AfterFailedAttempt => 0,
        Phase::DeliveryDay => 1,
        Phase::InTransit
            if moment
                .expected
                .zip(tomorrow)
                .is_some_and(|(w, tomorrow)| w.earliest <= tomorrow) =>
        {
            1
        }
        Phase::InTransit | Phase::Waiting | Phase::AtPickupPoint | Phase::Overdue => 2,
        Phase::BeforeHandover | Phase::Over => 3,
    }
}

/// Whether the carrier's vans deliver on a date: one of its delivery days, and not a public
/// holiday by `is_holiday` when it stays home on those.
pub fn is_delivery_day(cadence: &Cadence, date: Date, is_holiday: impl Fn(Date) -> bool) -> bool {
    cadence.delivery_days.contains(&date.weekday())
        && !(cadence.no_deliveries_on_holidays && is_holiday(date))
}

/// How many times a shipment has been fetched in the carrier's current day, this fetch
/// included, given what the shipment recorded (`day`, `count`).
pub fn fetches_today(day: &QuotaDay, recorded_day: Option<&str>, recorded_count: u32) -> u32 {
    if recorded_day == Some(day.day.as_str()) {
        recorded_count.saturating_add(1)
    } else {
        1
    }
}

/// `next`, or the start of the carrier's next day when the shipment has had every fetch the
/// carrier allows one shipment today (`fetched` includes the one just made), with a little
/// jitter so capped shipments do not all come due at the same second.
pub fn within_daily_cap(
    limits: &Limits,
    fetched: u32,
    day: &QuotaDay,
    next: Timestamp,
    rng: &mut impl Rng,
) -> Timestamp {
    match limits.max_fetches_per_shipment_per_day {
        Some(cap) if cap > 0 && fetched >= cap => {
            let spread = rng.random_range(0..=15 * 60);
            let reset = day
                .resets_at
                .checked_add(SignedDuration::from_secs(spread))
                .unwrap_or(day.resets_at);
            next.max(reset)
        }
        _ => next,
    }
}

/// `minutes` with up to `jitter_percent` added or removed at random, so polls spread out.
pub fn jittered(
    minutes: u32,
    jitter_percent: u32,
    rng: &mut (impl Rng + ?Sized),
) -> SignedDuration {
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
/// carrier's `max_backoff`, jittered so that shipments failing together are not retried
/// together.
pub fn backoff(cadence: &Cadence, failures: u32, rng: &mut impl Rng) -> SignedDuration {
    let minutes = 5u64
        .saturating_mul(1u64 << failures.min(16))
        .min(u64::from(cadence.max_backoff.max(5)));
    jittered(
        u32::try_from(minutes).unwrap_or(u32::MAX),
        cadence.jitter_percent.max(10),
        rng,
    )
}

#[cfg(test)]
#[path = "cadence_tests.rs"]
mod tests;

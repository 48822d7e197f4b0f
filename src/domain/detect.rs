//! Detectors: given a shipment after a poll, decide which messages the customer should get.
//!
//! Every detection carries a stable dedupe key, so a trigger fires once per episode however
//! often the same situation is polled, and a human-readable reason that says why it fired.
//! Detectors look at the *current* situation: a first poll that returns a whole finished
//! journey announces the delivery, not every step that led to it.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use super::calendar::HolidayCalendar;
use super::estimate::DeliveryWindow;
use super::event::KeyedEvent;
use super::shipment::CountryCode;
use super::status::{Reason, Status, UnknownName};
use super::timeline::Timeline;

/// What a customer is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The carrier has the parcel and is moving it.
    Shipped,
    /// Customs is holding the parcel.
    CustomsHold,
    /// Duties or taxes must be paid before the parcel is released.
    DutiesDue,
    /// The parcel will arrive later than promised or than last estimated.
    Delayed,
    /// No scan for longer than the carrier usually takes, in business hours.
    Stalled,
    /// The parcel is on the vehicle that delivers it today.
    OutForDelivery,
    /// A delivery attempt failed.
    AttemptFailed,
    /// The parcel waits at a pickup point.
    AvailableForPickup,
    /// The parcel has waited at the pickup point for a while and will go back if not collected.
    PickupReminder,
    /// The parcel was delivered.
    Delivered,
    /// Something went wrong: lost, damaged, address problem.
    Exception,
    /// The parcel is going back to the merchant.
    ReturningToSender,
}

impl Trigger {
    pub const ALL: [Trigger; 12] = [
        Trigger::Shipped,
        Trigger::CustomsHold,
        Trigger::DutiesDue,
        Trigger::Delayed,
        Trigger::Stalled,
        Trigger::OutForDelivery,
        Trigger::AttemptFailed,
        Trigger::AvailableForPickup,
        Trigger::PickupReminder,
        Trigger::Delivered,
        Trigger::Exception,
        Trigger::ReturningToSender,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Shipped => "shipped",
            Trigger::CustomsHold => "customs_hold",
            Trigger::DutiesDue => "duties_due",
            Trigger::Delayed => "delayed",
            Trigger::Stalled => "stalled",
            Trigger::OutForDelivery => "out_for_delivery",
            Trigger::AttemptFailed => "attempt_failed",
            Trigger::AvailableForPickup => "available_for_pickup",
            Trigger::PickupReminder => "pickup_reminder",
            Trigger::Delivered => "delivered",
            Trigger::Exception => "exception",
            Trigger::ReturningToSender => "returning_to_sender",
        }
    }

    /// Whether a pending (unsent) message for `older` is moot once `self` has fired.
    pub fn supersedes(self, older: Trigger) -> bool {
        use Trigger::*;
        match self {
            // The journey is over (or reversed): anything unsent about the way there is stale.
            Delivered | ReturningToSender => older != self,
            // News came, so the parcel is no longer stuck.
            _ if older == Stalled => true,
            OutForDelivery => matches!(older, Delayed | AttemptFailed),
            DutiesDue => older == CustomsHold,
            _ => false,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Trigger {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Trigger::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "trigger",
                value: s.to_owned(),
            })
    }
}

/// Why a `delayed` message was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelayCause {
    /// The carrier moved its estimate later than it said before.
    EstimateSlipped,
    /// The carrier's estimate lies after the date the merchant promised.
    EstimatePastPromise,
    /// The promised date passed and the parcel has not arrived.
    PromiseMissed,
}

/// The facts behind a detection, kept with the message so templates can explain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub status: Status,
    pub reason: Option<Reason>,
    /// The scan that caused the message (or the latest one).
    pub event: Option<EventFacts>,
    pub estimate: Option<DeliveryWindow>,
    pub previous_estimate: Option<DeliveryWindow>,
    pub promise: Option<DeliveryWindow>,
    pub delay_cause: Option<DelayCause>,
    /// For `stalled`: business hours since the last scan.
    pub quiet_business_hours: Option<i64>,
    /// For pickups: since when the parcel has been waiting.
    pub waiting_since: Option<Timestamp>,
}

/// The scan a message is about, as a customer would read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFacts {
    pub at: Timestamp,
    /// Offset of the scan's location in seconds, when the carrier gave one.
    pub offset_seconds: Option<i32>,
    pub location: Option<String>,
    /// The carrier's own words for the scan.
    pub text: String,
}

impl From<&KeyedEvent> for EventFacts {
    fn from(e: &KeyedEvent) -> Self {
        EventFacts {
            at: e.event.time.at,
            offset_seconds: e.event.time.offset_seconds,
            location: e.event.location.clone(),
            text: e.event.raw_text.clone(),
        }
    }
}

/// A trigger that fired: what to tell, why, and the key that makes it fire only once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detection {
    pub trigger: Trigger,
    pub dedupe_key: String,
    /// Why the message is sent, in plain English, for the merchant and the logs.
    pub reason: String,
    pub facts: Facts,
}

/// Per-carrier and per-merchant thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectionPolicy {
    /// Business hours without a scan after which an in-transit parcel counts as stalled.
    pub stall_after_business_hours: f64,
    /// Hours a parcel may wait at a pickup point before the customer is reminded.
    pub pickup_reminder_after_hours: i64,
}

impl Default for DetectionPolicy {
    fn default() -> Self {
        DetectionPolicy {
            stall_after_business_hours: 48.0,
            pickup_reminder_after_hours: 72,
        }
    }
}

/// Everything the detectors look at.
pub struct Situation<'a> {
    pub timeline: &'a Timeline,
    pub destination_country: &'a CountryCode,
    /// The customer's zone: dates and business days are reckoned in it.
    pub time_zone: &'a TimeZone,
    pub promise: Option<DeliveryWindow>,
    /// The carrier's estimate before this poll.
    pub previous_estimate: Option<DeliveryWindow>,
    /// The carrier's estimate after this poll.
    pub estimate: Option<DeliveryWindow>,
    pub now: Timestamp,
    pub policy: DetectionPolicy,
    pub calendar: &'a HolidayCalendar,
    /// Dedupe keys of every message already written for this shipment, sent or not.
    pub already_fired: &'a HashSet<String>,
}

impl Situation<'_> {
    fn facts(&self, event: Option<&KeyedEvent>) -> Facts {
        let latest = self.timeline.latest();
        Facts {
            status: latest.map_or(Status::Pending, |e| e.event.status),
            reason: latest.and_then(|e| e.event.reason),
            event: event.or(latest).map(EventFacts::from),
            estimate: self.estimate,
            previous_estimate: self.previous_estimate,
            promise: self.promise,
            delay_cause: None,
            quiet_business_hours: None,
            waiting_since: None,
        }
    }

    fn fired(&self, key: &str) -> bool {
        self.already_fired.contains(key)
    }
}

/// Run every detector and return the triggers that fire now, in the order to send them.
pub fn detect(s: &Situation<'_>) -> Vec<Detection> {
    let mut out = Vec::new();
    let Some(latest) = s.timeline.latest() else {
        return out;
    };

    // Once a parcel is going back, the customer hears that once and nothing more about delivery.
    if s.timeline.has_return() || s.fired(Trigger::ReturningToSender.as_str()) {
        if !s.fired(Trigger::ReturningToSender.as_str()) {
            let start = s
                .timeline
                .events()
                .iter()
                .find(|e| e.event.reason.is_some_and(Reason::is_return));
            let facts = s.facts(start);
            out.push(Detection {
                trigger: Trigger::ReturningToSender,
                dedupe_key: Trigger::ReturningToSender.as_str().into(),
                reason: format!(
                    "the carrier is sending the parcel back to the merchant ({})",
                    describe(start.unwrap_or(latest))
                ),
                facts,
            });
        }
        return out;
    }

    let status = latest.event.status;
    let reason = latest.event.reason;

    // shipped: the carrier has the parcel and it is simply moving.
    if status == Status::InTransit
        && !reason.is_some_and(Reason::is_customs)
        && !s.fired(Trigger::Shipped.as_str())
    {
        let first_scan = s
            .timeline
            .events()
            .iter()
            .find(|e| e.event.status.carrier_has_parcel());
        out.push(Detection {
            trigger: Trigger::Shipped,
            dedupe_key: Trigger::Shipped.as_str().into(),
            reason: format!(
                "the carrier has the parcel ({})",
                describe(first_scan.unwrap_or(latest))
            ),
            facts: s.facts(first_scan),
        });
    }

    episode(s, &mut out, Trigger::CustomsHold, |e| {
        e.reason == Some(Reason::CustomsHeld)
    }, "customs is holding the parcel");
    episode(s, &mut out, Trigger::DutiesDue, |e| {
        matches!(e.reason, Some(Reason::DutiesDue | Reason::HeldForPayment))
    }, "duties or taxes must be paid before customs releases the parcel");
    episode(s, &mut out, Trigger::OutForDelivery, |e| {
        e.status == Status::OutForDelivery
    }, "the parcel is out for delivery");
    episode(s, &mut out, Trigger::AttemptFailed, |e| {
        e.status == Status::AttemptFailed
    }, "the carrier could not deliver the parcel");
    episode(s, &mut out, Trigger::AvailableForPickup, |e| {
        e.status == Status::AvailableForPickup
    }, "the parcel is waiting at a pickup point");
    episode(s, &mut out, Trigger::Exception, |e| {
        e.status == Status::Exception && !e.reason.is_some_and(Reason::is_customs)
    }, "the carrier reported a problem");

    pickup_reminder(s, &mut out);

    if status == Status::Delivered && !s.fired(Trigger::Delivered.as_str()) {
        out.push(Detection {
            trigger: Trigger::Delivered,
            dedupe_key: Trigger::Delivered.as_str().into(),
            reason: format!("the carrier delivered the parcel ({})", describe(latest)),
            facts: s.facts(Some(latest)),
        });
    }

    if super::timeline::is_final(status, reason) {
        return out;
    }
    delayed(s, &mut out);
    stalled(s, &mut out);
    out
}

/// Fire `trigger` when the latest scans form an episode it has not announced yet.
fn episode(
    s: &Situation<'_>,
    out: &mut Vec<Detection>,
    trigger: Trigger,
    in_episode: impl Fn(&super::event::TrackingEvent) -> bool,
    what: &str,
) {
    let Some(start) = s.timeline.episode_start(in_episode) else {
        return;
    };
    let key = format!("{}:{}", trigger.as_str(), start.key);
    if s.fired(&key) {
        return;
    }
    out.push(Detection {
        trigger,
        dedupe_key: key,
        reason: format!("{what} ({})", describe(start)),
        facts: s.facts(Some(start)),
    });
}

fn pickup_reminder(s: &Situation<'_>, out: &mut Vec<Detection>) {
    let Some(start) = s
        .timeline
        .episode_start(|e| e.status == Status::AvailableForPickup)
    else {
        return;
    };
    let waited = s.now.duration_since(start.event.time.at).as_hours();
    if waited < s.policy.pickup_reminder_after_hours {
        return;
    }
    let key = format!("{}:{}", Trigger::PickupReminder.as_str(), start.key);
    if s.fired(&key) {
        return;
    }
    let mut facts = s.facts(Some(start));
    facts.waiting_since = Some(start.event.time.at);
    out.push(Detection {
        trigger: Trigger::PickupReminder,
        dedupe_key: key,
        reason: format!(
            "the parcel has waited {waited} hours at the pickup point ({})",
            describe(start)
        ),
        facts,
    });
}

fn delayed(s: &Situation<'_>, out: &mut Vec<Detection>) {
    let latest = s.timeline.latest();
    if let Some(estimate) = s.estimate {
        let slipped = s
            .previous_estimate
            .filter(|before| estimate.latest > before.latest);
        let past_promise = s.promise.filter(|p| estimate.latest > p.latest);
        let cause = match (slipped, past_promise) {
            (_, Some(_)) => Some(DelayCause::EstimatePastPromise),
            (Some(_), None) => Some(DelayCause::EstimateSlipped),
            (None, None) => None,
        };
        if let Some(cause) = cause {
            let key = format!("{}:estimate:{}", Trigger::Delayed.as_str(), estimate.latest);
            if !s.fired(&key) {
                let reason = match (cause, s.previous_estimate, s.promise) {
                    (DelayCause::EstimatePastPromise, _, Some(promise)) => format!(
                        "the carrier now expects delivery {estimate}, after the promised {promise}"
                    ),
                    (_, Some(before), _) => format!(
                        "the carrier moved the expected delivery from {before} to {estimate}"
                    ),
                    _ => format!("the carrier now expects delivery {estimate}"),
                };
                let mut facts = s.facts(latest);
                facts.delay_cause = Some(cause);
                out.push(Detection {
                    trigger: Trigger::Delayed,
                    dedupe_key: key,
                    reason,
                    facts,
                });
                return;
            }
        }
    }

    // The promised day is over in the customer's zone and the parcel is not there.
    let Some(promise) = s.promise else { return };
    let promise_over = promise
        .latest
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(s.time_zone.clone()).ok())
        .is_some_and(|end| s.now >= end.timestamp());
    if !promise_over {
        return;
    }
    let key = format!("{}:promise_missed", Trigger::Delayed.as_str());
    let already_told_late = s.already_fired.iter().any(|k| {
        k.strip_prefix("delayed:estimate:")
            .and_then(|d| d.parse::<jiff::civil::Date>().ok())
            .is_some_and(|d| d > promise.latest)
    });
    if s.fired(&key) || already_told_late || out.iter().any(|d| d.trigger == Trigger::Delayed) {
        return;
    }
    let mut facts = s.facts(latest);
    facts.delay_cause = Some(DelayCause::PromiseMissed);
    out.push(Detection {
        trigger: Trigger::Delayed,
        dedupe_key: key,
        reason: format!("the promised delivery {promise} has passed and the parcel has not arrived"),
        facts,
    });
}

fn stalled(s: &Situation<'_>, out: &mut Vec<Detection>) {
    let Some(latest) = s.timeline.latest() else {
        return;
    };
    let moving = matches!(
        latest.event.status,
        Status::InTransit | Status::OutForDelivery
    ) && !latest.event.reason.is_some_and(Reason::is_customs);
    if !moving {
        return;
    }
    let quiet = s.calendar.business_hours_between(
        s.destination_country,
        s.time_zone,
        latest.event.time.at,
        s.now,
    );
    if quiet < s.policy.stall_after_business_hours {
        return;
    }
    let key = format!("{}:{}", Trigger::Stalled.as_str(), latest.key);
    if s.fired(&key) || !out.is_empty() {
        return;
    }
    let hours = quiet.floor() as i64;
    let mut facts = s.facts(Some(latest));
    facts.quiet_business_hours = Some(hours);
    out.push(Detection {
        trigger: Trigger::Stalled,
        dedupe_key: key,
        reason: format!(
            "no scan for {hours} business hours since the last one ({})",
            describe(latest)
        ),
        facts,
    });
}

fn describe(e: &KeyedEvent) -> String {
    let local = e.event.time.local();
    let when = local.strftime("%Y-%m-%d %H:%M");
    match &e.event.location {
        Some(place) => format!("\"{}\", {place}, {when}", e.event.raw_text),
        None => format!("\"{}\", {when}", e.event.raw_text),
    }
}

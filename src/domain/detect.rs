//! Detectors: given a shipment after a poll, decide which messages the customer should get.
//!
//! Every detection carries a stable dedupe key, so a trigger fires once per episode however
//! often the same situation is polled, and a human-readable reason that says why it fired.
//! Detectors look at the *current* situation: a first poll that returns a whole finished
//! journey announces the delivery, not every step that led to it.
//!
//! The journey is read from its scans in three steps:
//! - the **current scan** ([`Timeline::current`]): the latest one, except that nothing reopens a
//!   journey a delivery, a completed return or a loss has ended;
//! - the **stage** the parcel is in, which decides whether "late" and "stuck" make sense at all
//!   (not while it is out for delivery or waits for the customer);
//! - the **episode** of each scan-driven trigger: the run of latest scans of its kind. Its key is
//!   the identity of the run's first scan, so a new run (a second delivery day, a second customs
//!   hold) is news and the same run polled again, or grown by a late scan, is not.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use super::calendar::HolidayCalendar;
use super::estimate::DeliveryWindow;
use super::event::{KeyedEvent, TrackingEvent};
use super::shipment::{CountryCode, TimeZoneName};
use super::status::{Reason, Status, UnknownName};
use super::timeline::{Timeline, is_final};

/// What a customer is told about.
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
    /// The one-time code for a delivery change the customer asked for on the tracking page:
    /// sent at once, never through the outbox (it must not wait for quiet hours, and the code
    /// is never stored).
    DeliveryCode,
    /// What became of the customer's delivery change: carried out, passed to the shop, or not.
    DeliveryChanged,
}

impl Trigger {
    pub const ALL: [Trigger; 14] = [
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
        Trigger::DeliveryCode,
        Trigger::DeliveryChanged,
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
            Trigger::DeliveryCode => "delivery_code",
            Trigger::DeliveryChanged => "delivery_changed",
        }
    }

    /// Whether a pending (unsent) message for `older` is moot once `self` has fired.
    ///
    /// Meant for messages written by earlier polls, dropped before a poll's own are written.
    /// A scan that fires nothing also makes a pending `stalled` moot; [`superseded_by`] adds
    /// that.
    pub fn supersedes(self, older: Trigger) -> bool {
        use Trigger::*;
        if older.answers_the_customer() {
            // What the customer asked for is answered whatever the parcel does meanwhile.
            return false;
        }
        match self {
            // The journey is over (or reversed): anything unsent about the way there is stale.
            Delivered | ReturningToSender => older != self,
            // A scan came, so the parcel is no longer stuck. An estimate or a reminder is not a
            // scan: it says nothing about whether the parcel moves.
            _ if older == Stalled => self.comes_from_a_scan() || self == Stalled,
            // It comes today: an unsent "late" or "we missed you" is yesterday's news.
            OutForDelivery => matches!(older, Delayed | AttemptFailed),
            // The round is over without a delivery: "arriving today" would mislead.
            AttemptFailed => older == OutForDelivery,
            // It has arrived, at a pickup point: where to collect it is all that matters now.
            AvailableForPickup => matches!(older, Delayed | OutForDelivery | AttemptFailed),
            // The same hold, now with an amount to pay.
            DutiesDue => older == CustomsHold,
            // A newer estimate replaces an older one the customer has not read yet.
            Delayed => older == Delayed,
            _ => false,
        }
    }

    /// Whether the message answers something the customer just did (a delivery change): it goes
    /// even to a customer who muted the parcel's updates, and the merchant cannot turn it off.
    pub fn answers_the_customer(self) -> bool {
        matches!(self, Trigger::DeliveryCode | Trigger::DeliveryChanged)
    }

    /// Whether the trigger is news from a carrier scan (rather than from an estimate or a clock).
    fn comes_from_a_scan(self) -> bool {
        !matches!(
            self,
            Trigger::Delayed
                | Trigger::Stalled
                | Trigger::PickupReminder
                | Trigger::DeliveryCode
                | Trigger::DeliveryChanged
        )
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
    /// Where the parcel waits, when the carrier said (filled in from the carrier's report).
    #[serde(default)]
    pub pickup_point: Option<super::shipment::PickupPoint>,
    /// Who signed for the parcel (filled in from the carrier's report).
    #[serde(default)]
    pub signed_by: Option<String>,
    /// The carrier's own link for changing this parcel's delivery (DHL's `rerouteUrl`), when
    /// it gave one (filled in from the carrier's report).
    #[serde(default)]
    pub change_delivery_url: Option<String>,
    /// For the delivery-change messages: the change and what became of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_change: Option<DeliveryChangeFacts>,
}

impl Facts {
    /// Facts of a parcel with `status` and `reason` and nothing else known.
    pub fn bare(status: Status, reason: Option<Reason>) -> Facts {
        Facts {
            status,
            reason,
            event: None,
            estimate: None,
            previous_estimate: None,
            promise: None,
            delay_cause: None,
            quiet_business_hours: None,
            waiting_since: None,
            pickup_point: None,
            signed_by: None,
            change_delivery_url: None,
            delivery_change: None,
        }
    }
}

/// A customer's delivery change, as its messages tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryChangeFacts {
    pub details: super::ChangeDetails,
    pub state: super::ChangeState,
    /// The one-time code, only in the message that carries it (never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// How many minutes the code is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_valid_minutes: Option<i64>,
    /// The shop's reason for a rejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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
        let current = self.timeline.current();
        Facts {
            event: event.or(current).map(EventFacts::from),
            estimate: self.estimate,
            previous_estimate: self.previous_estimate,
            promise: self.promise,
            ..Facts::bare(
                current.map_or(Status::Pending, |e| e.event.status),
                current.and_then(|e| e.event.reason),
            )
        }
    }

    fn fired(&self, key: &str) -> bool {
        self.already_fired.contains(key)
    }

    /// Whether a message about this episode went out already. Any scan of the run counts, not
    /// only its first: a late scan that slots in before the first one must not make it news.
    fn told_about(&self, trigger: Trigger, run: &[&KeyedEvent]) -> bool {
        run.iter().any(|e| self.fired(&episode_key(trigger, e)))
    }
}

/// Where the parcel is, as far as "late" and "stuck" are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// No scan yet, or only label data: the merchant has not handed the parcel over.
    NotHandedOver,
    /// The carrier moves it (or should).
    Moving,
    /// Customs has it: clearance, a hold, duties to pay. Customs, not the carrier, sets the pace.
    WithCustoms,
    /// On the van today.
    OutForDelivery,
    /// A failed attempt or a pickup point: the next step is the customer's.
    AwaitingCustomer,
    /// The carrier reported a problem the customer has been (or is being) told about.
    Problem,
    /// Delivered, returned, lost or expired.
    Over,
}

impl Stage {
    /// The stage the scans up to the current one put the parcel in.
    fn of(events: &[KeyedEvent]) -> Stage {
        let Some(current) = events.last().map(|e| &e.event) else {
            return Stage::NotHandedOver;
        };
        if is_final(current.status, current.reason) {
            return Stage::Over;
        }
        if current.reason.is_some_and(is_with_customs) {
            return Stage::WithCustoms;
        }
        match current.status {
            Status::OutForDelivery => Stage::OutForDelivery,
            Status::AttemptFailed | Status::AvailableForPickup => Stage::AwaitingCustomer,
            Status::Exception => Stage::Problem,
            Status::Delivered | Status::Expired => Stage::Over,
            Status::Pending | Status::InfoReceived | Status::InTransit => {
                if current.reason.is_some_and(is_problem) {
                    return Stage::Problem;
                }
                // The depot's own scans after a failed attempt do not put the parcel back on
                // the road: it waits for the customer to rebook or collect it.
                let last_notable = events.iter().rev().find(|e| !is_plain_transit(&e.event));
                if last_notable.is_some_and(|e| e.event.status == Status::AttemptFailed) {
                    Stage::AwaitingCustomer
                } else if events.iter().any(|e| e.event.status.carrier_has_parcel()) {
                    Stage::Moving
                } else {
                    Stage::NotHandedOver
                }
            }
        }
    }

    /// Whether a later estimate or a missed promise is worth telling. Not once the parcel is
    /// on the van (it comes today), waits for the customer (it has arrived), or is over.
    fn can_be_late(self) -> bool {
        matches!(
            self,
            Stage::NotHandedOver | Stage::Moving | Stage::WithCustoms | Stage::Problem
        )
    }

    /// Whether silence means the parcel is stuck. Not before the merchant hands it over, not
    /// while customs or the customer has the next move, not after a reported problem.
    fn can_stall(self) -> bool {
        matches!(self, Stage::Moving | Stage::OutForDelivery)
    }
}

/// How a scan-driven trigger recognises its episodes.
struct EpisodeRule {
    trigger: Trigger,
    /// A scan that belongs to the episode.
    belongs: fn(&TrackingEvent) -> bool,
    /// Whether plain transit scans after the episode leave it the current news. A failed
    /// attempt or a damaged parcel is still news after the depot scanned it; a parcel that
    /// left the van or the pickup point is no longer out for delivery or waiting there.
    outlives_transit: bool,
    /// What happened, for the reason.
    what: &'static str,
}

/// The scan-driven triggers, in the order they are sent when several fire in one poll.
const EPISODES: [EpisodeRule; 6] = [
    EpisodeRule {
        trigger: Trigger::CustomsHold,
        belongs: is_customs_hold,
        outlives_transit: false,
        what: "customs is holding the parcel",
    },
    EpisodeRule {
        trigger: Trigger::DutiesDue,
        belongs: is_duties_due,
        outlives_transit: false,
        what: "duties or taxes must be paid before customs releases the parcel",
    },
    EpisodeRule {
        trigger: Trigger::Exception,
        belongs: is_exception,
        outlives_transit: true,
        what: "the carrier reported a problem",
    },
    EpisodeRule {
        trigger: Trigger::OutForDelivery,
        belongs: |e| e.status == Status::OutForDelivery,
        outlives_transit: false,
        what: "the parcel is out for delivery",
    },
    EpisodeRule {
        trigger: Trigger::AttemptFailed,
        belongs: |e| e.status == Status::AttemptFailed,
        outlives_transit: true,
        what: "the carrier could not deliver the parcel",
    },
    EpisodeRule {
        trigger: Trigger::AvailableForPickup,
        belongs: |e| e.status == Status::AvailableForPickup,
        outlives_transit: false,
        what: "the parcel is waiting at a pickup point",
    },
];

/// Run every detector and return the triggers that fire now, in the order to send them.
///
/// The result never holds the same trigger twice, nor a detection together with one that
/// supersedes it, with one exception: a parcel first seen long after its last scan gets that
/// scan's message and then `stalled`. Pending messages are dropped before this poll's are
/// written, so the stall stands.
pub fn detect(s: &Situation<'_>) -> Vec<Detection> {
    let mut out = Vec::new();

    // Once a parcel is going back, the customer hears that once and nothing more about delivery:
    // a later "out for delivery" or "delivered" is the way back to the merchant.
    if s.timeline.has_return() || s.fired(Trigger::ReturningToSender.as_str()) {
        returning_to_sender(s, &mut out);
        return out;
    }

    let events = s.timeline.until_current();
    let stage = Stage::of(events);
    if let Some(current) = events.last() {
        shipped(s, events, &mut out);
        for rule in &EPISODES {
            if rule.trigger == Trigger::AvailableForPickup {
                pickup(s, events, rule, &mut out);
            } else {
                episode(s, events, rule, &mut out);
            }
        }
        if current.event.status == Status::Delivered && !s.fired(Trigger::Delivered.as_str()) {
            out.push(Detection {
                trigger: Trigger::Delivered,
                dedupe_key: Trigger::Delivered.as_str().into(),
                reason: format!("the carrier delivered the parcel ({})", describe(current)),
                facts: s.facts(Some(current)),
            });
        }
    }
    if stage.can_be_late() {
        delayed(s, &mut out);
    }
    if stage.can_stall() {
        stalled(s, &mut out);
    }
    out
}

/// The pending messages this poll makes moot, for the outbox to drop before it writes
/// `detections`: what the detections supersede, plus `stalled` when a scan newer than the one
/// it counted from has come, even if that scan itself is not worth a message.
pub fn superseded_by(s: &Situation<'_>, detections: &[Detection]) -> Vec<Trigger> {
    // Stalls are keyed by the scan they count from: one keyed by another scan is over.
    let moved_since_stall = s.timeline.current().is_some_and(|last_scan| {
        let this_spell = episode_key(Trigger::Stalled, last_scan);
        s.already_fired
            .iter()
            .any(|k| k.starts_with("stalled:") && *k != this_spell)
    });
    Trigger::ALL
        .into_iter()
        .filter(|older| {
            detections.iter().any(|d| d.trigger.supersedes(*older))
                || (*older == Trigger::Stalled && moved_since_stall)
        })
        .collect()
}

fn returning_to_sender(s: &Situation<'_>, out: &mut Vec<Detection>) {
    if s.fired(Trigger::ReturningToSender.as_str()) {
        return;
    }
    let Some(start) = s
        .timeline
        .events()
        .iter()
        .find(|e| e.event.reason.is_some_and(Reason::is_return))
    else {
        return;
    };
    out.push(Detection {
        trigger: Trigger::ReturningToSender,
        dedupe_key: Trigger::ReturningToSender.as_str().into(),
        reason: format!(
            "the carrier is sending the parcel back to the merchant ({})",
            describe(start)
        ),
        facts: s.facts(Some(start)),
    });
}

/// `shipped`: the carrier has the parcel and simply moves it.
fn shipped(s: &Situation<'_>, events: &[KeyedEvent], out: &mut Vec<Detection>) {
    let Some(current) = events.last() else { return };
    // Customs clearance is part of the way; a hold is news of its own (customs_hold).
    let moving = current.event.status == Status::InTransit
        && !current.event.reason.is_some_and(is_customs_hold_reason);
    if !moving || s.fired(Trigger::Shipped.as_str()) {
        return;
    }
    // Once the customer has heard (or is hearing) of anything further along, "it has shipped"
    // would be news from the past: after a failed attempt the parcel is "in transit" back to the
    // depot, after a customs hold it is "in transit" again.
    if events.iter().any(|e| is_beyond_shipping(&e.event)) {
        return;
    }
    let Some(handover) = events.iter().find(|e| e.event.status.carrier_has_parcel()) else {
        return;
    };
    out.push(Detection {
        trigger: Trigger::Shipped,
        dedupe_key: Trigger::Shipped.as_str().into(),
        reason: format!("the carrier has the parcel ({})", describe(handover)),
        facts: s.facts(Some(handover)),
    });
}

fn episode(s: &Situation<'_>, events: &[KeyedEvent], rule: &EpisodeRule, out: &mut Vec<Detection>) {
    let Some(run) = current_run(events, rule, s.time_zone) else {
        return;
    };
    if s.told_about(rule.trigger, &run) {
        return;
    }
    let start = run[0];
    out.push(Detection {
        trigger: rule.trigger,
        dedupe_key: episode_key(rule.trigger, start),
        reason: format!("{} ({})", rule.what, describe(start)),
        facts: s.facts(Some(start)),
    });
}

/// `available_for_pickup` when the parcel arrives at a pickup point, `pickup_reminder` once it
/// has waited there `pickup_reminder_after_hours`.
fn pickup(s: &Situation<'_>, events: &[KeyedEvent], rule: &EpisodeRule, out: &mut Vec<Detection>) {
    let Some(run) = current_run(events, rule, s.time_zone) else {
        return;
    };
    let start = run[0];
    let since = start.event.time.at;
    let mut facts = s.facts(Some(start));
    facts.waiting_since = Some(since);
    let waited = s.now.duration_since(since).as_hours();
    let reminded = s.told_about(Trigger::PickupReminder, &run);
    if waited >= s.policy.pickup_reminder_after_hours && !reminded {
        // The reminder says where and since when too; when Waymark first sees the parcel only
        // after it has waited that long, one message is enough.
        out.push(Detection {
            trigger: Trigger::PickupReminder,
            dedupe_key: episode_key(Trigger::PickupReminder, start),
            reason: format!(
                "the parcel has waited {waited} hours at the pickup point ({})",
                describe(start)
            ),
            facts,
        });
        return;
    }
    if reminded || s.told_about(Trigger::AvailableForPickup, &run) {
        return;
    }
    out.push(Detection {
        trigger: Trigger::AvailableForPickup,
        dedupe_key: episode_key(Trigger::AvailableForPickup, start),
        reason: format!("{} ({})", rule.what, describe(start)),
        facts,
    });
}

fn delayed(s: &Situation<'_>, out: &mut Vec<Detection>) {
    let latest = s.timeline.current();
    if let Some(detection) = estimate_delay(s, latest) {
        out.push(detection);
        return;
    }
    if let Some(detection) = promise_missed(s, latest) {
        out.push(detection);
    }
}

/// The carrier's estimate moved past the promise, or later than it said before.
fn estimate_delay(s: &Situation<'_>, latest: Option<&KeyedEvent>) -> Option<Detection> {
    let estimate = s.estimate?;
    let previous = s.previous_estimate;
    // Windows compare by their first day: a window that still includes the promised day
    // (promise the 4th, estimate the 4th to the 6th) is not late yet.
    // An estimate that moved earlier is good news, however late it still is.
    if previous.is_some_and(|before| estimate.earliest < before.earliest) {
        return None;
    }
    // What the customer was last told is the yardstick: a slip held back by the cap on delay
    // messages is still news at the next poll, though the estimate no longer moved since.
    let told = last_told_estimate(s);
    let previous = match told {
        Some(date) if previous.is_none_or(|before| before.earliest != date) => {
            Some(DeliveryWindow::on(date))
        }
        _ => previous,
    };
    let cause = if s.promise.is_some_and(|p| estimate.earliest > p.latest) {
        DelayCause::EstimatePastPromise
    } else if previous.is_some_and(|before| estimate.earliest > before.earliest) {
        DelayCause::EstimateSlipped
    } else {
        return None;
    };
    // Keyed by the date announced: an estimate that flips back to a date the customer was
    // already told about is not news.
    let key = format!(
        "{}:estimate:{}",
        Trigger::Delayed.as_str(),
        estimate.earliest
    );
    if s.fired(&key) {
        return None;
    }
    let reason = match (cause, s.promise, previous) {
        (DelayCause::EstimatePastPromise, Some(promise), Some(before)) if before != estimate => {
            format!(
                "the carrier moved the expected delivery from {before} to {estimate}, \
                 after the promised {promise}"
            )
        }
        (DelayCause::EstimatePastPromise, Some(promise), _) => {
            format!("the carrier expects delivery {estimate}, after the promised {promise}")
        }
        (_, _, Some(before)) => {
            format!("the carrier moved the expected delivery from {before} to {estimate}")
        }
        _ => format!("the carrier expects delivery {estimate}"),
    };
    let mut facts = s.facts(latest);
    facts.delay_cause = Some(cause);
    Some(Detection {
        trigger: Trigger::Delayed,
        dedupe_key: key,
        reason,
        facts,
    })
}

/// The latest delivery date a delay message announced, from the dedupe keys of the messages
/// written so far (`delayed:estimate:<date>`).
fn last_told_estimate(s: &Situation<'_>) -> Option<jiff::civil::Date> {
    s.already_fired
        .iter()
        .filter_map(|k| k.strip_prefix("delayed:estimate:"))
        .filter_map(|d| d.parse::<jiff::civil::Date>().ok())
        .max()
}

/// The promised day is over in the customer's zone and the parcel is not there.
fn promise_missed(s: &Situation<'_>, latest: Option<&KeyedEvent>) -> Option<Detection> {
    let promise = s.promise?;
    let promise_over = promise
        .latest
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(s.time_zone.clone()).ok())
        .is_some_and(|end| s.now >= end.timestamp());
    let key = format!("{}:promise_missed", Trigger::Delayed.as_str());
    if !promise_over || s.fired(&key) {
        return None;
    }
    // A delay message that already named a date after the promise told the customer this.
    let already_told_late = s.already_fired.iter().any(|k| {
        k.strip_prefix("delayed:estimate:")
            .and_then(|d| d.parse::<jiff::civil::Date>().ok())
            .is_some_and(|d| d > promise.latest)
    });
    if already_told_late {
        return None;
    }
    let mut reason =
        format!("the promised delivery {promise} has passed and the parcel has not arrived");
    if let Some(estimate) = s.estimate {
        reason.push_str(&format!("; the carrier expects it {estimate}"));
    }
    let mut facts = s.facts(latest);
    facts.delay_cause = Some(DelayCause::PromiseMissed);
    Some(Detection {
        trigger: Trigger::Delayed,
        dedupe_key: key,
        reason,
        facts,
    })
}

/// No scan for longer than the carrier's policy allows, counting only the business hours of
/// the country the parcel is in: a Monday morning after a quiet weekend, or Easter, is not a
/// stall, and neither is Thanksgiving in a Memphis hub on the way to Berlin.
fn stalled(s: &Situation<'_>, out: &mut Vec<Detection>) {
    let Some(latest) = s.timeline.current() else {
        return;
    };
    let (country, zone) = where_the_parcel_waits(s, &latest.event);
    // No exception for a poll that also brings that scan's own message (a parcel Waymark first
    // sees days after its last scan): both are true, and holding the stall back to the next
    // poll would make the result depend on what was written in between.
    let quiet = s
        .calendar
        .business_hours_between(&country, &zone, latest.event.time.at, s.now);
    if quiet < s.policy.stall_after_business_hours {
        return;
    }
    // One message per quiet spell: the spell is named after the scan it started from.
    let key = episode_key(Trigger::Stalled, latest);
    if s.fired(&key) {
        return;
    }
    let hours = quiet.floor() as i64;
    let mut facts = s.facts(Some(latest));
    facts.quiet_business_hours = Some(hours);
    let mut reason = format!(
        "no scan for {hours} business hours since the last one ({})",
        describe(latest)
    );
    if &country != s.destination_country {
        reason.push_str(&format!(
            "; counted on {country} business days, where the parcel was last scanned"
        ));
    }
    out.push(Detection {
        trigger: Trigger::Stalled,
        dedupe_key: key,
        reason,
        facts,
    });
}

/// The country whose business days a silence after `last_scan` is counted in, and the zone
/// its days are reckoned in.
///
/// Scans carry no country of their own, but the adapters name a scan's place "City, CC" (or
/// "City, ST, CC") whenever the carrier gives the country, so the location's last part is the
/// country ([`TrackingEvent::country`]). It counts only when the holiday calendar knows it: a
/// last part such as "OH" or "ON" is a state or a province the carrier wrote without its
/// country. Otherwise, and while the parcel is in the destination country, the destination's
/// holidays count, in the customer's zone. Abroad, days run in the scan's own offset (or the
/// country's usual zone when the carrier gave none), since that is where the depot's day is.
fn where_the_parcel_waits(s: &Situation<'_>, last_scan: &TrackingEvent) -> (CountryCode, TimeZone) {
    let Some(country) = last_scan
        .country()
        .filter(|c| c != s.destination_country && s.calendar.knows(c))
    else {
        return (s.destination_country.clone(), s.time_zone.clone());
    };
    let zone = last_scan
        .time
        .offset()
        .map(TimeZone::fixed)
        .or_else(|| TimeZoneName::default_for(&country).and_then(|z| TimeZone::get(z).ok()))
        .unwrap_or_else(|| s.time_zone.clone());
    (country, zone)
}

/// The scans of the episode of `rule` the journey is in now, oldest first; `None` when the
/// current scan is not part of one.
///
/// A gap of plain transit scans between two scans of the same kind, reason and day (in the
/// customer's zone) does not split the episode: a van's second round the same day, or a hub
/// scan that reaches Waymark late and slots in between, is not a new delivery day.
fn current_run<'t>(
    events: &'t [KeyedEvent],
    rule: &EpisodeRule,
    tz: &TimeZone,
) -> Option<Vec<&'t KeyedEvent>> {
    let mut end = events.len();
    if rule.outlives_transit {
        while end > 0 && is_plain_transit(&events[end - 1].event) {
            end -= 1;
        }
    }
    let mut run: Vec<&KeyedEvent> = Vec::new();
    let mut i = end;
    while i > 0 {
        let e = &events[i - 1];
        if (rule.belongs)(&e.event) {
            run.push(e);
            i -= 1;
            continue;
        }
        let Some(&after) = run.last() else { break };
        let mut gap_start = i;
        while gap_start > 0 && is_plain_transit(&events[gap_start - 1].event) {
            gap_start -= 1;
        }
        if gap_start == i || gap_start == 0 {
            break;
        }
        let before = &events[gap_start - 1];
        let same_kind = (rule.belongs)(&before.event) && before.event.reason == after.event.reason;
        if !(same_kind && local_date(before, tz) == local_date(after, tz)) {
            break;
        }
        i = gap_start;
    }
    run.reverse();
    (!run.is_empty()).then_some(run)
}

fn episode_key(trigger: Trigger, start: &KeyedEvent) -> String {
    format!("{}:{}", trigger.as_str(), start.key)
}

fn local_date(e: &KeyedEvent, tz: &TimeZone) -> jiff::civil::Date {
    e.event.time.at.to_zoned(tz.clone()).date()
}

/// A scan that only says the parcel moves on: nothing the customer needs to hear about.
fn is_plain_transit(e: &TrackingEvent) -> bool {
    matches!(e.status, Status::InfoReceived | Status::InTransit)
        && matches!(
            e.reason,
            None | Some(
                Reason::ArrivedDestinationCountry | Reason::WeatherDelay | Reason::CarrierDelay
            )
        )
}

/// Customs has the parcel: clearing it, holding it, or waiting for duties.
fn is_with_customs(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::CustomsClearanceStarted
            | Reason::CustomsHeld
            | Reason::DutiesDue
            | Reason::HeldForPayment
    )
}

/// Customs stops the parcel until something happens (a check, a payment).
fn is_customs_hold_reason(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::CustomsHeld | Reason::DutiesDue | Reason::HeldForPayment
    )
}

/// A problem with the parcel itself, whatever status the carrier filed it under.
fn is_problem(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::Lost | Reason::Damaged | Reason::AddressIssue
    )
}

fn is_customs_hold(e: &TrackingEvent) -> bool {
    e.reason == Some(Reason::CustomsHeld)
}

fn is_duties_due(e: &TrackingEvent) -> bool {
    matches!(e.reason, Some(Reason::DutiesDue | Reason::HeldForPayment))
}

/// Lost, damaged, an address problem, or anything else the carrier files as an exception.
/// Customs reasons go to the customs triggers and returns to `returning_to_sender` instead.
fn is_exception(e: &TrackingEvent) -> bool {
    if e.reason.is_some_and(|r| r.is_customs() || r.is_return()) {
        return false;
    }
    e.status == Status::Exception
        || (matches!(e.status, Status::InfoReceived | Status::InTransit)
            && e.reason.is_some_and(is_problem))
}

/// A scan that a message further along than `shipped` is (or was) about.
fn is_beyond_shipping(e: &TrackingEvent) -> bool {
    e.status == Status::Delivered || EPISODES.iter().any(|rule| (rule.belongs)(e))
}

/// The scan as the merchant would quote it: the carrier's words, the place, and the local time
/// of the scan (in UTC, said so, when the carrier gave no offset).
fn describe(e: &KeyedEvent) -> String {
    let when = match e.event.time.offset() {
        Some(_) => e
            .event
            .time
            .local()
            .strftime("%Y-%m-%d %H:%M %:z")
            .to_string(),
        None => format!("{} UTC", e.event.time.at.strftime("%Y-%m-%d %H:%M")),
    };
    match &e.event.location {
        Some(place) => format!("\"{}\", {place}, {when}", e.event.raw_text),
        None => format!("\"{}\", {when}", e.event.raw_text),
    }
}

#[cfg(test)]
#[path = "detect_tests.rs"]
mod tests;

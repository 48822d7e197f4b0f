//! The detectors, told as parcel stories: a `Parcel` is polled over time, each poll brings the
//! carrier's scans (and estimate), and what the customer would be told is checked.
//!
//! Every poll also checks the rules that hold whatever the story: running the detectors again
//! on the same situation fires nothing, no poll sends a trigger twice or a message together with
//! one that supersedes it, and every message says why.

use super::*;
use crate::domain::event::EventTime;
use Trigger::*;
use jiff::tz::Offset;

const CARRIER: &str = "dhl";

// ---------------------------------------------------------------------------------------------
// Scans, as a carrier reports them
// ---------------------------------------------------------------------------------------------

/// `2026-03-02T10:30:00+01:00` keeps its offset, `2026-03-02T09:30:00Z` is a bare UTC time.
fn time(at: &str) -> EventTime {
    let instant: Timestamp = at.parse().expect("a test time");
    if at.ends_with('Z') {
        return EventTime::utc(instant);
    }
    // Whole-hour offsets are enough for these stories: `+01:00`, `-05:00`.
    let offset = &at[at.len() - 6..];
    let hours: i8 = offset[1..3].parse().expect("offset hours");
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    EventTime::with_offset(instant, Offset::constant(sign * hours))
}

fn scan(at: &str, status: Status, code: &str, text: &str, place: Option<&str>) -> TrackingEvent {
    TrackingEvent {
        time: time(at),
        status,
        reason: None,
        raw_code: code.into(),
        raw_text: text.into(),
        location: place.map(Into::into),
    }
}

fn because(mut event: TrackingEvent, reason: Reason) -> TrackingEvent {
    event.reason = Some(reason);
    event
}

fn label_created(at: &str) -> TrackingEvent {
    scan(
        at,
        Status::InfoReceived,
        "IR",
        "Shipment data received",
        None,
    )
}

fn picked_up(at: &str) -> TrackingEvent {
    scan(
        at,
        Status::InTransit,
        "PU",
        "Picked up by the carrier",
        Some("Bonn, DE"),
    )
}

fn hub(at: &str, place: &str) -> TrackingEvent {
    scan(
        at,
        Status::InTransit,
        "AR",
        "Arrived at parcel center",
        Some(place),
    )
}

fn back_at_depot(at: &str) -> TrackingEvent {
    scan(
        at,
        Status::InTransit,
        "RD",
        "Returned to delivery depot",
        Some("Berlin, DE"),
    )
}

fn clearance_started(at: &str) -> TrackingEvent {
    because(
        scan(
            at,
            Status::InTransit,
            "CC",
            "Customs clearance started",
            Some("Frankfurt, DE"),
        ),
        Reason::CustomsClearanceStarted,
    )
}

fn customs_held(at: &str) -> TrackingEvent {
    because(
        scan(
            at,
            Status::Exception,
            "CH",
            "Held by customs",
            Some("Frankfurt, DE"),
        ),
        Reason::CustomsHeld,
    )
}

fn duties_due(at: &str) -> TrackingEvent {
    because(
        scan(
            at,
            Status::Exception,
            "DD",
            "Import duties of EUR 12.40 to pay",
            Some("Frankfurt, DE"),
        ),
        Reason::DutiesDue,
    )
}

fn customs_released(at: &str) -> TrackingEvent {
    because(
        scan(
            at,
            Status::InTransit,
            "CR",
            "Released by customs",
            Some("Frankfurt, DE"),
        ),
        Reason::CustomsReleased,
    )
}

fn out_for_delivery(at: &str) -> TrackingEvent {
    scan(
        at,
        Status::OutForDelivery,
        "OD",
        "Out for delivery",
        Some("Berlin, DE"),
    )
}

fn driver_on_the_way(at: &str) -> TrackingEvent {
    scan(
        at,
        Status::OutForDelivery,
        "OW",
        "The driver is on the way",
        Some("Berlin, DE"),
    )
}

fn not_home(at: &str) -> TrackingEvent {
    because(
        scan(
            at,
            Status::AttemptFailed,
            "NA",
            "Recipient not at home",
            Some("Berlin, DE"),
        ),
        Reason::RecipientUnavailable,
    )
}

fn at_pickup_point(at: &str) -> TrackingEvent {
    scan(
        at,
        Status::AvailableForPickup,
        "PP",
        "Ready for collection at Packstation 123",
        Some("Berlin, DE"),
    )
}

fn delivered(at: &str) -> TrackingEvent {
    scan(
        at,
        Status::Delivered,
        "DL",
        "Delivered to the front door",
        Some("Berlin, DE"),
    )
}

fn collected(at: &str) -> TrackingEvent {
    because(
        scan(
            at,
            Status::Delivered,
            "CO",
            "Collected by the recipient",
            Some("Berlin, DE"),
        ),
        Reason::PickedUpByCustomer,
    )
}

fn returning(at: &str) -> TrackingEvent {
    because(
        scan(
            at,
            Status::Exception,
            "RT",
            "Not collected, returning to sender",
            Some("Berlin, DE"),
        ),
        Reason::ReturningToSender,
    )
}

fn damaged(at: &str) -> TrackingEvent {
    because(
        scan(
            at,
            Status::Exception,
            "DM",
            "Packaging damaged, repacked",
            Some("Leipzig, DE"),
        ),
        Reason::Damaged,
    )
}

fn address_issue(at: &str) -> TrackingEvent {
    because(
        scan(
            at,
            Status::Exception,
            "AI",
            "House number missing",
            Some("Berlin, DE"),
        ),
        Reason::AddressIssue,
    )
}

fn lost(at: &str) -> TrackingEvent {
    because(
        scan(
            at,
            Status::Exception,
            "LO",
            "Shipment could not be located",
            Some("Leipzig, DE"),
        ),
        Reason::Lost,
    )
}

fn window(text: &str) -> DeliveryWindow {
    DeliveryWindow::parse(text).expect("a test window")
}

// ---------------------------------------------------------------------------------------------
// A parcel, polled over time
// ---------------------------------------------------------------------------------------------

/// One shipment as the scheduler sees it: its timeline, its estimate, and every message already
/// written for it.
struct Parcel {
    timeline: Timeline,
    country: CountryCode,
    zone: TimeZone,
    promise: Option<DeliveryWindow>,
    /// The carrier's estimate as of the last poll.
    estimate: Option<DeliveryWindow>,
    /// What the carrier says about the estimate in the next poll.
    reported_estimate: Option<DeliveryWindow>,
    now: Timestamp,
    policy: DetectionPolicy,
    calendar: HolidayCalendar,
    fired: HashSet<String>,
    /// What the last poll makes moot among the messages not sent yet.
    superseded: Vec<Trigger>,
}

impl Parcel {
    /// A parcel for a customer in Berlin.
    fn to_germany() -> Self {
        Parcel::to("DE", "Europe/Berlin")
    }

    fn to(country: &str, zone: &str) -> Self {
        Parcel {
            timeline: Timeline::default(),
            country: CountryCode::parse(country).expect("a country"),
            zone: TimeZone::get(zone).expect("a zone"),
            promise: None,
            estimate: None,
            reported_estimate: None,
            now: "2026-03-02T00:00:00Z".parse().unwrap(),
            policy: DetectionPolicy::default(),
            calendar: HolidayCalendar::bundled(),
            fired: HashSet::new(),
            superseded: Vec::new(),
        }
    }

    fn promised(mut self, dates: &str) -> Self {
        self.promise = Some(window(dates));
        self
    }

    fn stalls_after_business_hours(mut self, hours: f64) -> Self {
        self.policy.stall_after_business_hours = hours;
        self
    }

    /// The time of the next poll.
    fn at(&mut self, now: &str) -> &mut Self {
        self.now = now.parse().expect("a test time");
        self
    }

    /// The carrier reports this estimate in the next poll.
    fn carrier_expects(&mut self, dates: &str) -> &mut Self {
        self.reported_estimate = Some(window(dates));
        self
    }

    fn situation(&self, previous_estimate: Option<DeliveryWindow>) -> Situation<'_> {
        Situation {
            timeline: &self.timeline,
            destination_country: &self.country,
            time_zone: &self.zone,
            promise: self.promise,
            previous_estimate,
            estimate: self.estimate,
            now: self.now,
            policy: self.policy,
            calendar: &self.calendar,
            already_fired: &self.fired,
        }
    }

    /// Merge the carrier's scans, detect, and write the messages' keys as the outbox would.
    #[track_caller]
    fn poll(&mut self, scans: impl IntoIterator<Item = TrackingEvent>) -> Vec<Detection> {
        let merge = std::mem::take(&mut self.timeline).merge(CARRIER, scans.into_iter().collect());
        self.timeline = merge.timeline;
        let previous = self.estimate;
        // A carrier that stops giving an estimate has not withdrawn it (as the scheduler does).
        self.estimate = self.reported_estimate.take().or(previous);

        let detections = detect(&self.situation(previous));
        self.superseded = superseded_by(&self.situation(previous), &detections);
        check_batch(&detections, &self.fired);
        self.fired
            .extend(detections.iter().map(|d| d.dedupe_key.clone()));

        let again = detect(&self.situation(previous));
        assert!(
            again.is_empty(),
            "the same situation fired again once its keys were written: {again:#?}"
        );
        detections
    }

    /// A poll that brings no new scan.
    #[track_caller]
    fn poll_again(&mut self) -> Vec<Detection> {
        self.poll([])
    }

    fn status(&self) -> Status {
        self.timeline.journey(self.estimate).status
    }
}

/// What holds for any poll's detections.
#[track_caller]
fn check_batch(detections: &[Detection], fired_before: &HashSet<String>) {
    for (i, d) in detections.iter().enumerate() {
        assert!(
            !fired_before.contains(&d.dedupe_key),
            "{} fired again with key {}",
            d.trigger,
            d.dedupe_key
        );
        assert!(
            d.dedupe_key.starts_with(d.trigger.as_str()),
            "key {} does not name {}",
            d.dedupe_key,
            d.trigger
        );
        assert!(!d.reason.is_empty(), "{} without a reason", d.trigger);
        for later in &detections[i + 1..] {
            assert_ne!(
                d.trigger, later.trigger,
                "one poll fired {} twice",
                d.trigger
            );
            assert!(
                !later.trigger.supersedes(d.trigger),
                "one poll fired {} and then {}, which makes it moot",
                d.trigger,
                later.trigger
            );
            // The one pair allowed: a scan's own message, then the silence since that scan.
            assert!(
                !d.trigger.supersedes(later.trigger) || later.trigger == Stalled,
                "one poll fired {} and then {}, which it makes moot",
                d.trigger,
                later.trigger
            );
        }
    }
}

fn triggers(detections: &[Detection]) -> Vec<Trigger> {
    detections.iter().map(|d| d.trigger).collect()
}

/// The one detection of a poll, which must be `trigger`.
#[track_caller]
fn only(detections: Vec<Detection>, trigger: Trigger) -> Detection {
    assert_eq!(triggers(&detections), [trigger], "{detections:#?}");
    detections.into_iter().next().unwrap()
}

#[track_caller]
fn nothing(detections: Vec<Detection>) {
    assert!(
        detections.is_empty(),
        "expected no message, got {detections:#?}"
    );
}

#[track_caller]
fn says(detection: &Detection, words: &[&str]) {
    for word in words {
        assert!(
            detection.reason.contains(word),
            "the {} reason `{}` does not mention `{word}`",
            detection.trigger,
            detection.reason
        );
    }
}

fn ts(at: &str) -> Timestamp {
    at.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// shipped
// ---------------------------------------------------------------------------------------------

#[test]
fn shipped_fires_once_when_the_carrier_first_scans_the_parcel() {
    let mut parcel = Parcel::to_germany();
    nothing(
        parcel
            .at("2026-03-02T08:00:00Z")
            .poll([label_created("2026-03-01T19:00:00+01:00")]),
    );
    let shipped = only(
        parcel.at("2026-03-02T12:00:00Z").poll([
            label_created("2026-03-01T19:00:00+01:00"),
            picked_up("2026-03-02T10:30:00+01:00"),
        ]),
        Shipped,
    );
    assert_eq!(shipped.dedupe_key, "shipped");
    says(
        &shipped,
        &[
            "Picked up by the carrier",
            "Bonn, DE",
            "2026-03-02 10:30 +01:00",
        ],
    );
    assert_eq!(shipped.facts.status, Status::InTransit);
    let event = shipped.facts.event.expect("the pickup scan");
    assert_eq!(event.location.as_deref(), Some("Bonn, DE"));
    assert_eq!(event.at, ts("2026-03-02T09:30:00Z"));

    nothing(
        parcel
            .at("2026-03-02T23:00:00Z")
            .poll([hub("2026-03-02T22:00:00+01:00", "Leipzig, DE")]),
    );
}

#[test]
fn a_first_poll_with_the_whole_journey_announces_only_the_delivery() {
    let mut parcel = Parcel::to_germany().promised("2026-03-03");
    let done = only(
        parcel
            .at("2026-03-04T18:00:00Z")
            .carrier_expects("2026-03-04")
            .poll([
                label_created("2026-03-01T19:00:00+01:00"),
                picked_up("2026-03-02T10:30:00+01:00"),
                hub("2026-03-02T22:00:00+01:00", "Leipzig, DE"),
                out_for_delivery("2026-03-04T07:10:00+01:00"),
                delivered("2026-03-04T13:02:00+01:00"),
            ]),
        Delivered,
    );
    assert_eq!(done.dedupe_key, "delivered");
    says(
        &done,
        &[
            "Delivered to the front door",
            "Berlin, DE",
            "2026-03-04 13:02 +01:00",
        ],
    );
    assert!(!parcel.timeline.journey(None).active);
    nothing(parcel.at("2026-03-10T12:00:00Z").poll_again());
}

#[test]
fn a_first_poll_at_customs_clearance_still_says_shipped() {
    let mut parcel = Parcel::to_germany();
    let shipped = only(
        parcel.at("2026-03-04T10:00:00Z").poll([
            scan(
                "2026-03-02T16:00:00+08:00",
                Status::InTransit,
                "PU",
                "Picked up",
                Some("Shenzhen, CN"),
            ),
            clearance_started("2026-03-04T08:00:00+01:00"),
        ]),
        Shipped,
    );
    says(&shipped, &["Shenzhen, CN", "2026-03-02 16:00 +08:00"]);
    assert_eq!(shipped.facts.reason, Some(Reason::CustomsClearanceStarted));
}

#[test]
fn a_first_poll_showing_a_customs_hold_never_says_shipped_afterwards() {
    let mut parcel = Parcel::to_germany();
    let hold = only(
        parcel.at("2026-03-04T10:00:00Z").poll([
            picked_up("2026-03-02T10:30:00+01:00"),
            customs_held("2026-03-04T08:00:00+01:00"),
        ]),
        CustomsHold,
    );
    says(&hold, &["Held by customs", "Frankfurt, DE"]);
    // Released and moving again: "it has shipped" would now be news from the past.
    nothing(
        parcel
            .at("2026-03-05T10:00:00Z")
            .poll([customs_released("2026-03-05T09:00:00+01:00")]),
    );
    nothing(
        parcel
            .at("2026-03-05T20:00:00Z")
            .poll([hub("2026-03-05T19:00:00+01:00", "Leipzig, DE")]),
    );
}

#[test]
fn shipped_is_not_sent_when_a_failed_attempt_takes_the_parcel_back_to_the_depot() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel
            .at("2026-03-04T08:00:00Z")
            .poll([out_for_delivery("2026-03-04T07:10:00+01:00")]),
        OutForDelivery,
    );
    // The depot scan is "in transit", but the parcel did not just ship: it was not delivered.
    let failed = only(
        parcel.at("2026-03-04T18:00:00Z").poll([
            not_home("2026-03-04T14:20:00+01:00"),
            back_at_depot("2026-03-04T17:45:00+01:00"),
        ]),
        AttemptFailed,
    );
    says(
        &failed,
        &["Recipient not at home", "2026-03-04 14:20 +01:00"],
    );
    assert_eq!(failed.facts.event.unwrap().text, "Recipient not at home");
    assert_eq!(failed.facts.status, Status::InTransit);
}

// ---------------------------------------------------------------------------------------------
// customs
// ---------------------------------------------------------------------------------------------

#[test]
fn customs_hold_fires_once_per_hold_and_again_for_a_second_hold() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel
            .at("2026-03-02T12:00:00Z")
            .poll([picked_up("2026-03-02T10:30:00+01:00")]),
        Shipped,
    );
    let first = only(
        parcel
            .at("2026-03-03T12:00:00Z")
            .poll([customs_held("2026-03-03T09:00:00+01:00")]),
        CustomsHold,
    );
    nothing(parcel.at("2026-03-03T18:00:00Z").poll_again());
    // Still held a day later: the same hold.
    nothing(parcel.at("2026-03-04T12:00:00Z").poll([because(
        scan(
            "2026-03-04T09:00:00+01:00",
            Status::Exception,
            "CH2",
            "Customs inspection ongoing",
            Some("Frankfurt, DE"),
        ),
        Reason::CustomsHeld,
    )]));
    nothing(
        parcel
            .at("2026-03-05T12:00:00Z")
            .poll([customs_released("2026-03-05T09:00:00+01:00")]),
    );
    let second = only(
        parcel
            .at("2026-03-06T12:00:00Z")
            .poll([customs_held("2026-03-06T09:00:00+01:00")]),
        CustomsHold,
    );
    assert_ne!(first.dedupe_key, second.dedupe_key);
    says(&second, &["2026-03-06 09:00 +01:00"]);
}

#[test]
fn duties_due_supersedes_the_customs_hold() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel.at("2026-03-03T12:00:00Z").poll([
            picked_up("2026-03-02T10:30:00+01:00"),
            customs_held("2026-03-03T09:00:00+01:00"),
        ]),
        CustomsHold,
    );
    let duties = only(
        parcel
            .at("2026-03-03T15:00:00Z")
            .poll([duties_due("2026-03-03T14:00:00+01:00")]),
        DutiesDue,
    );
    says(&duties, &["EUR 12.40", "Frankfurt, DE"]);
    assert_eq!(duties.facts.reason, Some(Reason::DutiesDue));
    assert!(
        parcel.superseded.contains(&CustomsHold),
        "{:?}",
        parcel.superseded
    );
}

#[test]
fn customs_reasons_go_to_the_customs_triggers_not_to_exception() {
    let mut held = Parcel::to_germany();
    let detections = held
        .at("2026-03-03T12:00:00Z")
        .poll([customs_held("2026-03-03T09:00:00+01:00")]);
    assert_eq!(triggers(&detections), [CustomsHold]);

    let mut to_pay = Parcel::to_germany();
    let detections = to_pay.at("2026-03-03T12:00:00Z").poll([because(
        scan(
            "2026-03-03T09:00:00+01:00",
            Status::Exception,
            "HP",
            "Awaiting payment of import VAT",
            Some("Frankfurt, DE"),
        ),
        Reason::HeldForPayment,
    )]);
    assert_eq!(triggers(&detections), [DutiesDue]);
}

// ---------------------------------------------------------------------------------------------
// exception
// ---------------------------------------------------------------------------------------------

#[test]
fn lost_damaged_and_address_problems_are_exceptions() {
    for (problem, words) in [
        (
            damaged("2026-03-03T09:00:00+01:00"),
            ["Packaging damaged", "Leipzig, DE"],
        ),
        (
            address_issue("2026-03-03T09:00:00+01:00"),
            ["House number missing", "Berlin, DE"],
        ),
        (
            lost("2026-03-03T09:00:00+01:00"),
            ["could not be located", "Leipzig, DE"],
        ),
    ] {
        let reason = problem.reason;
        let mut parcel = Parcel::to_germany();
        only(
            parcel
                .at("2026-03-02T12:00:00Z")
                .poll([picked_up("2026-03-02T10:30:00+01:00")]),
            Shipped,
        );
        let exception = only(parcel.at("2026-03-03T12:00:00Z").poll([problem]), Exception);
        says(&exception, &words);
        assert!(exception.dedupe_key.starts_with("exception:"));
        assert_eq!(exception.facts.reason, reason);
        nothing(parcel.at("2026-03-03T18:00:00Z").poll_again());
    }
}

#[test]
fn an_exception_is_still_told_after_the_depot_scanned_the_parcel_again() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel
            .at("2026-03-02T12:00:00Z")
            .poll([picked_up("2026-03-02T10:30:00+01:00")]),
        Shipped,
    );
    let exception = only(
        parcel.at("2026-03-03T20:00:00Z").poll([
            address_issue("2026-03-03T11:00:00+01:00"),
            back_at_depot("2026-03-03T18:00:00+01:00"),
        ]),
        Exception,
    );
    says(&exception, &["House number missing"]);
}

#[test]
fn a_lost_parcel_ends_the_journey_and_is_never_late_or_stalled() {
    let mut parcel = Parcel::to_germany().promised("2026-03-05");
    only(
        parcel
            .at("2026-03-02T12:00:00Z")
            .poll([picked_up("2026-03-02T10:30:00+01:00")]),
        Shipped,
    );
    only(
        parcel
            .at("2026-03-03T12:00:00Z")
            .poll([lost("2026-03-03T09:00:00+01:00")]),
        Exception,
    );
    assert!(!parcel.timeline.journey(None).active);
    nothing(
        parcel
            .at("2026-03-20T12:00:00Z")
            .carrier_expects("2026-03-25")
            .poll_again(),
    );
}

// ---------------------------------------------------------------------------------------------
// delayed
// ---------------------------------------------------------------------------------------------

#[test]
fn shipped_and_a_first_estimate_after_the_promise_come_in_journey_order() {
    let mut parcel = Parcel::to_germany().promised("2026-03-05");
    let detections = parcel
        .at("2026-03-02T12:00:00Z")
        .carrier_expects("2026-03-07")
        .poll([picked_up("2026-03-02T10:30:00+01:00")]);
    assert_eq!(triggers(&detections), [Shipped, Delayed]);
    let delayed = &detections[1];
    assert_eq!(delayed.dedupe_key, "delayed:estimate:2026-03-07");
    assert_eq!(
        delayed.facts.delay_cause,
        Some(DelayCause::EstimatePastPromise)
    );
    says(delayed, &["2026-03-07", "after the promised 2026-03-05"]);
    assert_eq!(delayed.facts.estimate, Some(window("2026-03-07")));
    assert_eq!(delayed.facts.previous_estimate, None);
    assert_eq!(delayed.facts.promise, Some(window("2026-03-05")));
    nothing(
        parcel
            .at("2026-03-03T12:00:00Z")
            .carrier_expects("2026-03-07")
            .poll_again(),
    );
}

#[test]
fn an_estimate_slipping_within_the_promise_is_a_slip() {
    let mut parcel = Parcel::to_germany().promised("2026-03-06");
    only(
        parcel
            .at("2026-03-02T12:00:00Z")
            .carrier_expects("2026-03-04")
            .poll([picked_up("2026-03-02T10:30:00+01:00")]),
        Shipped,
    );
    let slipped = only(
        parcel
            .at("2026-03-03T12:00:00Z")
            .carrier_expects("2026-03-05")
            .poll_again(),
        Delayed,
    );
    assert_eq!(slipped.facts.delay_cause, Some(DelayCause::EstimateSlipped));
    says(&slipped, &["from 2026-03-04 to 2026-03-05"]);
    assert_eq!(slipped.facts.previous_estimate, Some(window("2026-03-04")));
    assert_eq!(slipped.facts.estimate, Some(window("2026-03-05")));
}

#[test]
fn an_estimate_slipping_past_the_promise_says_both_dates() {
    let mut parcel = Parcel::to_germany().promised("2026-03-05");
    only(
        parcel
            .at("2026-03-02T12:00:00Z")
            .carrier_expects("2026-03-04..2026-03-05")
            .poll([picked_up("2026-03-02T10:30:00+01:00")]),
        Shipped,
    );
    let late = only(
        parcel
            .at("2026-03-03T12:00:00Z")
            .carrier_expects("2026-03-06..2026-03-07")
            .poll_again(),
        Delayed,
    );
    // A window that still includes the promised day is a slip; one wholly after it is late.
    assert_eq!(
        late.facts.delay_cause,
        Some(DelayCause::EstimatePastPromise)
    );
    says(
        &late,
        &[
            "from 2026-03-04..2026-03-05 to 2026-03-06..2026-03-07",
            "promised 2026-03-05",
        ],
    );
}

#[test]
fn an_estimate_flipping_back_to_an_announced_date_is_not_news() {
    let mut parcel = Parcel::to_germany().promised("2026-03-05");
    only(
        parcel
            .at("2026-03-02T12:00:00Z")
            .carrier_expects("2026-03-05")
            .poll([picked_up("2026-03-02T10:30:00+01:00")]),
        Shipped,
    );
    only(
        parcel
            .at("2026-03-02T18:00:00Z")
            .carrier_expects("2026-03-07")
            .poll_again(),
        Delayed,
    );
    nothing(
        parcel
            .at("2026-03-03T06:00:00Z")
            .carrier_expects("2026-03-05")
            .poll_again(),
    );
    nothing(
        parcel
            .at("2026-03-03T12:00:00Z")
            .carrier_expects("2026-03-07")
            .poll_again(),
    );
    let later = only(
        parcel
            .at("2026-03-03T18:00:00Z")
            .carrier_expects("2026-03-08")
            .poll_again(),
        Delayed,
    );
    assert_eq!(later.dedupe_key, "delayed:estimate:2026-03-08");
    says(&later, &["from 2026-03-07 to 2026-03-08"]);
}

#[test]
fn an_estimate_moving_earlier_is_not_a_delay_even_if_still_past_the_promise() {
    let mut parcel = Parcel::to_germany().promised("2026-03-05");
    let detections = parcel
        .at("2026-03-02T12:00:00Z")
        .carrier_expects("2026-03-09")
        .poll([picked_up("2026-03-02T10:30:00+01:00")]);
    assert_eq!(triggers(&detections), [Shipped, Delayed]);
    nothing(
        parcel
            .at("2026-03-03T12:00:00Z")
            .carrier_expects("2026-03-08")
            .poll_again(),
    );
}

#[test]
fn the_promise_is_missed_once_the_promised_day_has_ended_for_the_customer() {
    // The customer lives in New York: the 5th ends there at 05:00 UTC on the 6th.
    let mut parcel = Parcel::to("US", "America/New_York").promised("2026-03-05");
    only(
        parcel
            .at("2026-03-02T20:00:00Z")
            .poll([picked_up("2026-03-02T10:30:00-05:00")]),
        Shipped,
    );
    nothing(
        parcel
            .at("2026-03-05T21:00:00Z")
            .poll([hub("2026-03-05T15:00:00-05:00", "Newark, US")]),
    );
    // 22:00 on the 5th in New York, though already the 6th in UTC.
    nothing(parcel.at("2026-03-06T03:00:00Z").poll_again());
    let missed = only(parcel.at("2026-03-06T05:30:00Z").poll_again(), Delayed);
    assert_eq!(missed.dedupe_key, "delayed:promise_missed");
    assert_eq!(missed.facts.delay_cause, Some(DelayCause::PromiseMissed));
    says(&missed, &["promised delivery 2026-03-05 has passed"]);
    assert_eq!(
        missed.facts.event.unwrap().location.as_deref(),
        Some("Newark, US")
    );
    nothing(parcel.at("2026-03-06T15:00:00Z").poll_again());
    nothing(parcel.at("2026-03-07T15:00:00Z").poll_again());
}

#[test]
fn a_missed_promise_is_not_repeated_when_a_delay_already_named_a_later_date() {
    let mut parcel = Parcel::to_germany().promised("2026-03-05");
    let detections = parcel
        .at("2026-03-02T12:00:00Z")
        .carrier_expects("2026-03-07")
        .poll([picked_up("2026-03-02T10:30:00+01:00")]);
    assert_eq!(triggers(&detections), [Shipped, Delayed]);
    nothing(
        parcel
            .at("2026-03-06T00:30:00+01:00")
            .poll([hub("2026-03-05T22:00:00+01:00", "Leipzig, DE")]),
    );
}

#[test]
fn a_missed_promise_is_told_when_the_only_delay_so_far_stayed_within_it() {
    let mut parcel = Parcel::to_germany().promised("2026-03-05");
    only(
        parcel
            .at("2026-03-02T12:00:00Z")
            .carrier_expects("2026-03-04")
            .poll([picked_up("2026-03-02T10:30:00+01:00")]),
        Shipped,
    );
    only(
        parcel
            .at("2026-03-03T12:00:00Z")
            .carrier_expects("2026-03-05")
            .poll_again(),
        Delayed,
    );
    let missed = only(
        parcel
            .at("2026-03-06T00:30:00+01:00")
            .poll([hub("2026-03-05T22:00:00+01:00", "Leipzig, DE")]),
        Delayed,
    );
    assert_eq!(missed.facts.delay_cause, Some(DelayCause::PromiseMissed));
    says(
        &missed,
        &["2026-03-05 has passed", "the carrier expects it 2026-03-05"],
    );
}

#[test]
fn a_promise_missed_before_any_scan_is_still_told() {
    let mut parcel = Parcel::to_germany().promised("2026-03-05");
    nothing(parcel.at("2026-03-05T20:00:00Z").poll_again());
    let missed = only(parcel.at("2026-03-06T08:00:00Z").poll_again(), Delayed);
    assert_eq!(missed.facts.delay_cause, Some(DelayCause::PromiseMissed));
    assert_eq!(missed.facts.status, Status::Pending);
    assert_eq!(missed.facts.event, None);
}

#[test]
fn nothing_is_late_while_the_parcel_is_out_for_delivery_or_waits_at_a_pickup_point() {
    let mut on_the_van = Parcel::to_germany().promised("2026-03-05");
    only(
        on_the_van
            .at("2026-03-06T08:00:00+01:00")
            .carrier_expects("2026-03-06")
            .poll([out_for_delivery("2026-03-06T07:10:00+01:00")]),
        OutForDelivery,
    );
    nothing(on_the_van.at("2026-03-06T12:00:00+01:00").poll_again());

    let mut waiting = Parcel::to_germany().promised("2026-03-05");
    only(
        waiting
            .at("2026-03-05T12:00:00+01:00")
            .poll([at_pickup_point("2026-03-05T10:00:00+01:00")]),
        AvailableForPickup,
    );
    nothing(
        waiting
            .at("2026-03-06T12:00:00+01:00")
            .carrier_expects("2026-03-07")
            .poll_again(),
    );
}

#[test]
fn nothing_is_delayed_or_stalled_once_delivered() {
    let mut parcel = Parcel::to_germany().promised("2026-03-05");
    only(
        parcel.at("2026-03-04T14:00:00Z").poll([
            picked_up("2026-03-02T10:30:00+01:00"),
            delivered("2026-03-04T13:02:00+01:00"),
        ]),
        Delivered,
    );
    nothing(
        parcel
            .at("2026-03-20T12:00:00Z")
            .carrier_expects("2026-03-09")
            .poll_again(),
    );
}

// ---------------------------------------------------------------------------------------------
// stalled
// ---------------------------------------------------------------------------------------------

#[test]
fn a_friday_evening_scan_checked_on_monday_morning_is_not_stalled() {
    let mut parcel = Parcel::to_germany().stalls_after_business_hours(24.0);
    only(
        parcel
            .at("2026-03-06T18:30:00+01:00")
            .poll([picked_up("2026-03-06T18:00:00+01:00")]),
        Shipped,
    );
    // 63 hours on the clock, but only Friday evening and Monday morning are working time: 15.
    nothing(parcel.at("2026-03-09T09:00:00+01:00").poll_again());
    // Tuesday 10:00: 6 + 24 + 10 = 40 business hours.
    let stalled = only(parcel.at("2026-03-10T10:00:00+01:00").poll_again(), Stalled);
    assert_eq!(stalled.facts.quiet_business_hours, Some(40));
}

#[test]
fn easter_weekend_in_germany_does_not_count_towards_a_stall() {
    // Maundy Thursday noon, checked on the Tuesday after Easter at 09:00.
    let scan_at = |place| [hub("2026-04-02T12:00:00+02:00", place)];

    // In Germany Good Friday and Easter Monday are holidays: 12 + 9 = 21 business hours.
    let mut germany = Parcel::to_germany().stalls_after_business_hours(24.0);
    only(
        germany
            .at("2026-04-02T13:00:00+02:00")
            .poll(scan_at("Leipzig, DE")),
        Shipped,
    );
    nothing(germany.at("2026-04-07T09:00:00+02:00").poll_again());

    // In Poland Good Friday is a working day: 12 + 24 + 9 = 45 business hours.
    let mut poland = Parcel::to("PL", "Europe/Warsaw").stalls_after_business_hours(24.0);
    only(
        poland
            .at("2026-04-02T13:00:00+02:00")
            .poll(scan_at("Stryków, PL")),
        Shipped,
    );
    let stalled = only(poland.at("2026-04-07T09:00:00+02:00").poll_again(), Stalled);
    assert_eq!(stalled.facts.quiet_business_hours, Some(45));
}

#[test]
fn a_holiday_where_the_parcel_is_counts_not_the_destinations() {
    // Thanksgiving (Thursday 26 November 2026) is a holiday in the United States, not in
    // Germany. The parcel for Berlin was last scanned in Memphis on the Wednesday at noon.
    let in_memphis = || [hub("2026-11-25T12:00:00-06:00", "MEMPHIS, TN, US")];
    let mut parcel = Parcel::to_germany().stalls_after_business_hours(24.0);
    only(
        parcel.at("2026-11-25T13:00:00-06:00").poll(in_memphis()),
        Shipped,
    );
    // Friday 11:00 in Memphis: 12 hours of Wednesday and 11 of Friday. (On German business
    // days it would be 47.)
    nothing(parcel.at("2026-11-27T11:00:00-06:00").poll_again());
    let stalled = only(parcel.at("2026-11-27T14:00:00-06:00").poll_again(), Stalled);
    assert_eq!(stalled.facts.quiet_business_hours, Some(26));
    says(
        &stalled,
        &["26 business hours", "MEMPHIS, TN, US", "US business days"],
    );

    // The other way round: Good Friday and Easter Monday are German holidays, and the
    // parcel for Berlin waits in Stryków, where only Easter Monday is one. Maundy Thursday
    // noon to Tuesday 09:00 is 45 Polish business hours (21 German ones).
    let mut parcel = Parcel::to_germany().stalls_after_business_hours(24.0);
    only(
        parcel
            .at("2026-04-02T13:00:00+02:00")
            .poll([hub("2026-04-02T12:00:00+02:00", "Stryków, PL")]),
        Shipped,
    );
    let stalled = only(parcel.at("2026-04-07T09:00:00+02:00").poll_again(), Stalled);
    assert_eq!(stalled.facts.quiet_business_hours, Some(45));
}

#[test]
fn a_scan_that_names_no_known_country_counts_the_destinations_holidays() {
    // Ascension Day (Thursday 14 May 2026) is a German holiday. A scan without a place, or
    // one whose last part is a state ("OH") rather than a country, leaves the destination's
    // calendar: Wednesday noon to Friday 11:00 is 23 German business hours.
    for place in [None, Some("CINCINNATI HUB, OH")] {
        let mut parcel = Parcel::to_germany().stalls_after_business_hours(24.0);
        let quiet = scan(
            "2026-05-13T12:00:00+02:00",
            Status::InTransit,
            "AR",
            "Arrived at parcel center",
            place,
        );
        only(
            parcel.at("2026-05-13T13:00:00+02:00").poll([quiet]),
            Shipped,
        );
        nothing(parcel.at("2026-05-15T11:00:00+02:00").poll_again());
        let stalled = only(parcel.at("2026-05-15T14:00:00+02:00").poll_again(), Stalled);
        assert_eq!(stalled.facts.quiet_business_hours, Some(26), "{place:?}");
    }
}

#[test]
fn a_parcel_silent_for_too_long_is_stalled_once_per_quiet_spell() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel.at("2026-03-02T10:00:00+01:00").poll([
            picked_up("2026-03-02T08:00:00+01:00"),
            hub("2026-03-02T09:00:00+01:00", "Leipzig, DE"),
        ]),
        Shipped,
    );
    nothing(parcel.at("2026-03-04T08:00:00+01:00").poll_again());
    // Monday 09:00 to Thursday 10:00: 15 + 24 + 24 + 10 = 73 business hours.
    let first = only(parcel.at("2026-03-05T10:00:00+01:00").poll_again(), Stalled);
    assert_eq!(first.facts.quiet_business_hours, Some(73));
    says(
        &first,
        &[
            "73 business hours",
            "Arrived at parcel center",
            "Leipzig, DE",
        ],
    );
    assert_eq!(first.facts.event.unwrap().at, ts("2026-03-02T08:00:00Z"));
    nothing(parcel.at("2026-03-05T16:00:00+01:00").poll_again());

    nothing(
        parcel
            .at("2026-03-06T09:00:00+01:00")
            .poll([hub("2026-03-06T08:00:00+01:00", "Hannover, DE")]),
    );
    assert_eq!(
        parcel.superseded,
        [Stalled],
        "the scan makes the unsent stall moot"
    );
    // Friday 08:00 to Wednesday 12:00: 16 + 24 + 24 + 12 = 76.
    let second = only(parcel.at("2026-03-11T12:00:00+01:00").poll_again(), Stalled);
    assert_ne!(first.dedupe_key, second.dedupe_key);
    says(&second, &["76 business hours", "Hannover, DE"]);
}

#[test]
fn stalled_follows_the_carriers_own_threshold() {
    let mut patient = Parcel::to_germany().stalls_after_business_hours(96.0);
    let mut eager = Parcel::to_germany().stalls_after_business_hours(24.0);
    for parcel in [&mut patient, &mut eager] {
        only(
            parcel
                .at("2026-03-02T10:00:00+01:00")
                .poll([picked_up("2026-03-02T09:00:00+01:00")]),
            Shipped,
        );
    }
    // Monday 09:00 to Wednesday 09:00: 48 business hours.
    nothing(patient.at("2026-03-04T09:00:00+01:00").poll_again());
    only(eager.at("2026-03-04T09:00:00+01:00").poll_again(), Stalled);
}

#[test]
fn stalled_waits_for_handover_customs_the_customer_and_reported_problems() {
    let cases: [(&str, Vec<TrackingEvent>); 7] = [
        (
            "only the label exists",
            vec![label_created("2026-03-02T09:00:00+01:00")],
        ),
        (
            "held by customs",
            vec![customs_held("2026-03-02T09:00:00+01:00")],
        ),
        (
            "duties to pay",
            vec![duties_due("2026-03-02T09:00:00+01:00")],
        ),
        (
            "in customs clearance",
            vec![clearance_started("2026-03-02T09:00:00+01:00")],
        ),
        (
            "at a pickup point",
            vec![at_pickup_point("2026-03-02T09:00:00+01:00")],
        ),
        (
            "back at the depot after a failed attempt",
            vec![
                not_home("2026-03-02T09:00:00+01:00"),
                back_at_depot("2026-03-02T18:00:00+01:00"),
            ],
        ),
        ("damaged", vec![damaged("2026-03-02T09:00:00+01:00")]),
    ];
    for (story, scans) in cases {
        let mut parcel = Parcel::to_germany();
        parcel.at("2026-03-02T20:00:00+01:00").poll(scans);
        // Two working weeks later.
        let detections = parcel.at("2026-03-16T12:00:00+01:00").poll_again();
        assert!(
            !triggers(&detections).contains(&Stalled),
            "{story}: {detections:#?}"
        );
    }
}

#[test]
fn a_parcel_first_seen_long_after_its_last_scan_hears_shipped_then_stalled() {
    let mut parcel = Parcel::to_germany();
    let detections = parcel
        .at("2026-03-06T12:00:00+01:00")
        .poll([picked_up("2026-03-02T09:00:00+01:00")]);
    assert_eq!(triggers(&detections), [Shipped, Stalled]);
    says(&detections[1], &["99 business hours", "Bonn, DE"]);
    nothing(parcel.at("2026-03-06T16:00:00+01:00").poll_again());
}

#[test]
fn out_for_delivery_and_then_silence_is_a_stall() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel
            .at("2026-03-02T08:00:00+01:00")
            .poll([out_for_delivery("2026-03-02T07:10:00+01:00")]),
        OutForDelivery,
    );
    let stalled = only(parcel.at("2026-03-04T12:00:00+01:00").poll_again(), Stalled);
    says(&stalled, &["Out for delivery"]);
}

#[test]
fn an_estimate_is_not_a_scan_and_does_not_supersede_a_stall() {
    let mut parcel = Parcel::to_germany().promised("2026-03-20");
    only(
        parcel
            .at("2026-03-02T10:00:00+01:00")
            .carrier_expects("2026-03-04")
            .poll([picked_up("2026-03-02T09:00:00+01:00")]),
        Shipped,
    );
    only(parcel.at("2026-03-05T10:00:00+01:00").poll_again(), Stalled);
    let slipped = only(
        parcel
            .at("2026-03-05T12:00:00+01:00")
            .carrier_expects("2026-03-06")
            .poll_again(),
        Delayed,
    );
    assert_eq!(slipped.facts.delay_cause, Some(DelayCause::EstimateSlipped));
    assert!(
        !parcel.superseded.contains(&Stalled),
        "{:?}",
        parcel.superseded
    );
}

#[test]
fn a_late_older_scan_does_not_end_a_stall() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel
            .at("2026-03-02T10:00:00+01:00")
            .poll([hub("2026-03-02T09:00:00+01:00", "Leipzig, DE")]),
        Shipped,
    );
    only(parcel.at("2026-03-05T10:00:00+01:00").poll_again(), Stalled);
    nothing(
        parcel
            .at("2026-03-05T12:00:00+01:00")
            .poll([picked_up("2026-03-02T08:00:00+01:00")]),
    );
    assert!(parcel.superseded.is_empty(), "{:?}", parcel.superseded);
}

// ---------------------------------------------------------------------------------------------
// out for delivery, failed attempts
// ---------------------------------------------------------------------------------------------

#[test]
fn out_for_delivery_fires_once_per_delivery_round() {
    let mut parcel = Parcel::to_germany();
    let round = only(
        parcel
            .at("2026-03-04T08:00:00+01:00")
            .poll([out_for_delivery("2026-03-04T07:10:00+01:00")]),
        OutForDelivery,
    );
    says(
        &round,
        &["Out for delivery", "Berlin, DE", "2026-03-04 07:10 +01:00"],
    );
    assert!(round.dedupe_key.starts_with("out_for_delivery:"));
    nothing(
        parcel
            .at("2026-03-04T11:00:00+01:00")
            .poll([driver_on_the_way("2026-03-04T10:40:00+01:00")]),
    );
}

#[test]
fn a_second_delivery_day_after_a_failed_attempt_is_a_new_episode() {
    let mut parcel = Parcel::to_germany();
    let monday = only(
        parcel
            .at("2026-03-02T08:00:00+01:00")
            .poll([out_for_delivery("2026-03-02T07:10:00+01:00")]),
        OutForDelivery,
    );
    let failed = only(
        parcel
            .at("2026-03-02T15:00:00+01:00")
            .poll([not_home("2026-03-02T14:20:00+01:00")]),
        AttemptFailed,
    );
    says(&failed, &["Recipient not at home", "Berlin, DE"]);
    assert_eq!(failed.facts.reason, Some(Reason::RecipientUnavailable));
    assert!(parcel.superseded.contains(&OutForDelivery));

    let tuesday = only(
        parcel
            .at("2026-03-03T08:00:00+01:00")
            .poll([out_for_delivery("2026-03-03T07:05:00+01:00")]),
        OutForDelivery,
    );
    assert_ne!(monday.dedupe_key, tuesday.dedupe_key);
    says(&tuesday, &["2026-03-03 07:05 +01:00"]);
    assert!(parcel.superseded.contains(&AttemptFailed));

    let second_failure = only(
        parcel
            .at("2026-03-03T15:00:00+01:00")
            .poll([not_home("2026-03-03T14:00:00+01:00")]),
        AttemptFailed,
    );
    assert_ne!(failed.dedupe_key, second_failure.dedupe_key);
}

#[test]
fn a_depot_scan_before_the_next_round_starts_a_new_delivery_day() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel
            .at("2026-03-02T08:00:00+01:00")
            .poll([out_for_delivery("2026-03-02T07:10:00+01:00")]),
        OutForDelivery,
    );
    // No failed-attempt scan, only the van coming back; the next morning is a new round.
    nothing(
        parcel
            .at("2026-03-02T19:00:00+01:00")
            .poll([back_at_depot("2026-03-02T18:00:00+01:00")]),
    );
    only(
        parcel
            .at("2026-03-03T08:00:00+01:00")
            .poll([out_for_delivery("2026-03-03T07:10:00+01:00")]),
        OutForDelivery,
    );
}

#[test]
fn a_late_hub_scan_inside_a_delivery_round_does_not_repeat_out_for_delivery() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel.at("2026-03-04T11:00:00+01:00").poll([
            out_for_delivery("2026-03-04T07:10:00+01:00"),
            driver_on_the_way("2026-03-04T10:40:00+01:00"),
        ]),
        OutForDelivery,
    );
    // A hub scan from the morning reaches Waymark late and lands between the two.
    nothing(
        parcel
            .at("2026-03-04T11:30:00+01:00")
            .poll([hub("2026-03-04T08:00:00+01:00", "Berlin, DE")]),
    );
    assert_eq!(parcel.status(), Status::OutForDelivery);
}

#[test]
fn a_late_older_scan_of_the_same_round_does_not_repeat_out_for_delivery() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel
            .at("2026-03-04T11:00:00+01:00")
            .poll([driver_on_the_way("2026-03-04T10:40:00+01:00")]),
        OutForDelivery,
    );
    // The round's first scan arrives after a later one: it does not start the round again.
    nothing(
        parcel
            .at("2026-03-04T11:30:00+01:00")
            .poll([out_for_delivery("2026-03-04T07:10:00+01:00")]),
    );
}

#[test]
fn a_late_old_scan_after_the_delivery_changes_nothing() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel
            .at("2026-03-04T14:00:00+01:00")
            .poll([delivered("2026-03-04T13:02:00+01:00")]),
        Delivered,
    );
    nothing(
        parcel
            .at("2026-03-04T15:00:00+01:00")
            .poll([out_for_delivery("2026-03-04T07:10:00+01:00")]),
    );
    assert_eq!(parcel.status(), Status::Delivered);
    // A carrier's follow-up stamped after the delivery does not reopen the journey either.
    nothing(parcel.at("2026-03-04T20:00:00+01:00").poll([scan(
        "2026-03-04T19:00:00+01:00",
        Status::InTransit,
        "POD",
        "Proof of delivery filed",
        Some("Berlin, DE"),
    )]));
    assert_eq!(parcel.status(), Status::Delivered);
    assert!(!parcel.timeline.journey(None).active);
}

#[test]
fn delivered_arriving_before_out_for_delivery_is_sent_drops_it() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel
            .at("2026-03-04T08:00:00+01:00")
            .poll([out_for_delivery("2026-03-04T07:10:00+01:00")]),
        OutForDelivery,
    );
    only(
        parcel
            .at("2026-03-04T08:30:00+01:00")
            .poll([delivered("2026-03-04T08:20:00+01:00")]),
        Delivered,
    );
    let others: Vec<Trigger> = Trigger::ALL
        .into_iter()
        .filter(|t| *t != Delivered && !t.answers_the_customer())
        .collect();
    assert_eq!(parcel.superseded, others);
}

#[test]
fn the_same_scan_arriving_twice_is_one_episode() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel
            .at("2026-03-04T08:00:00Z")
            .poll([customs_held("2026-03-04T09:00:00+01:00")]),
        CustomsHold,
    );
    // The same scan again, from another endpoint: in UTC and with milliseconds.
    let again = customs_held("2026-03-04T08:00:00.250Z");
    assert_eq!(again.time.offset_seconds, None);
    nothing(parcel.at("2026-03-04T10:00:00Z").poll([again]));
    assert_eq!(parcel.timeline.events().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// pickup points
// ---------------------------------------------------------------------------------------------

#[test]
fn available_for_pickup_says_where_and_since_when() {
    let mut parcel = Parcel::to_germany();
    let waiting = only(
        parcel
            .at("2026-03-04T11:00:00+01:00")
            .poll([at_pickup_point("2026-03-04T10:00:00+01:00")]),
        AvailableForPickup,
    );
    says(
        &waiting,
        &["Packstation 123", "Berlin, DE", "2026-03-04 10:00 +01:00"],
    );
    assert_eq!(
        waiting.facts.waiting_since,
        Some(ts("2026-03-04T09:00:00Z"))
    );
    nothing(parcel.at("2026-03-05T11:00:00+01:00").poll_again());
}

#[test]
fn a_pickup_reminder_comes_once_after_the_policy_wait() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel
            .at("2026-03-04T11:00:00+01:00")
            .poll([at_pickup_point("2026-03-04T10:00:00+01:00")]),
        AvailableForPickup,
    );
    nothing(parcel.at("2026-03-07T09:00:00+01:00").poll_again());
    let reminder = only(
        parcel.at("2026-03-07T11:00:00+01:00").poll_again(),
        PickupReminder,
    );
    says(&reminder, &["waited 73 hours", "Packstation 123"]);
    assert_eq!(
        reminder.facts.waiting_since,
        Some(ts("2026-03-04T09:00:00Z"))
    );
    nothing(parcel.at("2026-03-09T11:00:00+01:00").poll_again());
}

#[test]
fn the_pickup_reminder_follows_the_policy() {
    let mut parcel = Parcel::to_germany();
    parcel.policy.pickup_reminder_after_hours = 24;
    only(
        parcel
            .at("2026-03-04T11:00:00+01:00")
            .poll([at_pickup_point("2026-03-04T10:00:00+01:00")]),
        AvailableForPickup,
    );
    only(
        parcel.at("2026-03-05T10:00:00+01:00").poll_again(),
        PickupReminder,
    );
}

#[test]
fn a_first_poll_long_after_arrival_at_the_pickup_point_sends_only_the_reminder() {
    let mut parcel = Parcel::to_germany();
    let reminder = only(
        parcel
            .at("2026-03-08T10:00:00+01:00")
            .poll([at_pickup_point("2026-03-04T10:00:00+01:00")]),
        PickupReminder,
    );
    says(&reminder, &["waited 96 hours", "Packstation 123"]);
    nothing(parcel.at("2026-03-08T14:00:00+01:00").poll_again());
}

#[test]
fn collecting_the_parcel_ends_the_wait_without_a_reminder() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel
            .at("2026-03-04T11:00:00+01:00")
            .poll([at_pickup_point("2026-03-04T10:00:00+01:00")]),
        AvailableForPickup,
    );
    let collected = only(
        parcel
            .at("2026-03-05T18:00:00+01:00")
            .poll([collected("2026-03-05T17:30:00+01:00")]),
        Delivered,
    );
    says(&collected, &["Collected by the recipient"]);
    assert!(parcel.superseded.contains(&AvailableForPickup));
    nothing(parcel.at("2026-03-12T11:00:00+01:00").poll_again());
}

#[test]
fn a_failed_attempt_then_a_pickup_point_tells_where_to_collect() {
    let mut parcel = Parcel::to_germany();
    only(
        parcel
            .at("2026-03-04T08:00:00+01:00")
            .poll([out_for_delivery("2026-03-04T07:10:00+01:00")]),
        OutForDelivery,
    );
    only(
        parcel.at("2026-03-04T18:00:00+01:00").poll([
            not_home("2026-03-04T14:20:00+01:00"),
            at_pickup_point("2026-03-04T17:00:00+01:00"),
        ]),
        AvailableForPickup,
    );
    assert!(parcel.superseded.contains(&OutForDelivery));
    assert!(parcel.superseded.contains(&AttemptFailed));
}

// ---------------------------------------------------------------------------------------------
// returning to sender
// ---------------------------------------------------------------------------------------------

#[test]
fn returning_to_sender_fires_once_and_silences_everything_after() {
    let mut parcel = Parcel::to_germany().promised("2026-03-10");
    only(
        parcel
            .at("2026-03-04T11:00:00+01:00")
            .poll([at_pickup_point("2026-03-04T10:00:00+01:00")]),
        AvailableForPickup,
    );
    let back = only(
        parcel
            .at("2026-03-12T09:00:00+01:00")
            .poll([returning("2026-03-12T08:00:00+01:00")]),
        ReturningToSender,
    );
    assert_eq!(back.dedupe_key, "returning_to_sender");
    says(
        &back,
        &[
            "Not collected, returning to sender",
            "2026-03-12 08:00 +01:00",
        ],
    );
    let others: Vec<Trigger> = Trigger::ALL
        .into_iter()
        .filter(|t| *t != ReturningToSender && !t.answers_the_customer())
        .collect();
    assert_eq!(parcel.superseded, others);

    // On its way back the carrier scans "out for delivery" and "delivered" (to the merchant).
    nothing(
        parcel
            .at("2026-03-16T09:00:00+01:00")
            .carrier_expects("2026-03-18")
            .poll([out_for_delivery("2026-03-16T07:00:00+01:00")]),
    );
    nothing(
        parcel
            .at("2026-03-16T15:00:00+01:00")
            .poll([delivered("2026-03-16T14:00:00+01:00")]),
    );
    nothing(parcel.at("2026-04-16T15:00:00+01:00").poll_again());
}

#[test]
fn a_first_poll_that_shows_the_return_announces_only_the_return() {
    let mut parcel = Parcel::to_germany().promised("2026-03-05");
    let back = only(
        parcel.at("2026-03-20T09:00:00+01:00").poll([
            picked_up("2026-03-02T10:30:00+01:00"),
            out_for_delivery("2026-03-04T07:10:00+01:00"),
            not_home("2026-03-04T14:20:00+01:00"),
            at_pickup_point("2026-03-04T17:00:00+01:00"),
            returning("2026-03-12T08:00:00+01:00"),
        ]),
        ReturningToSender,
    );
    says(&back, &["returning to sender"]);
}

// ---------------------------------------------------------------------------------------------
// supersession
// ---------------------------------------------------------------------------------------------

#[test]
fn supersession_follows_the_journey() {
    // Delivered and returning to sender make every other unsent message moot.
    for older in Trigger::ALL {
        // Except the answers to what the customer asked for.
        let answer = older.answers_the_customer();
        assert_eq!(
            Delivered.supersedes(older),
            older != Delivered && !answer,
            "delivered over {older}"
        );
        assert_eq!(
            ReturningToSender.supersedes(older),
            older != ReturningToSender && !answer,
            "returning over {older}"
        );
    }
    assert!(OutForDelivery.supersedes(AttemptFailed));
    assert!(OutForDelivery.supersedes(Delayed));
    assert!(AttemptFailed.supersedes(OutForDelivery));
    assert!(AvailableForPickup.supersedes(AttemptFailed));
    assert!(DutiesDue.supersedes(CustomsHold));
    assert!(!CustomsHold.supersedes(DutiesDue));
    assert!(
        Delayed.supersedes(Delayed),
        "a newer estimate replaces an unsent older one"
    );

    // Any scan-driven news ends a stall; an estimate or a reminder does not.
    for newer in Trigger::ALL {
        let from_a_scan = !matches!(
            newer,
            Delayed | Stalled | PickupReminder | DeliveryCode | DeliveryChanged
        );
        assert_eq!(
            newer.supersedes(Stalled),
            from_a_scan || newer == Stalled,
            "{newer} over stalled"
        );
    }
    // Nothing but a return makes a delivery moot, and only a delivery a return.
    for newer in Trigger::ALL {
        assert_eq!(newer.supersedes(Delivered), newer == ReturningToSender);
        assert_eq!(newer.supersedes(ReturningToSender), newer == Delivered);
    }
    assert!(!Shipped.supersedes(Delayed));
    assert!(!Delayed.supersedes(Shipped));
}

// ---------------------------------------------------------------------------------------------
// times, facts, keys
// ---------------------------------------------------------------------------------------------

#[test]
fn reasons_quote_the_scan_in_its_local_time_or_say_utc() {
    let mut tokyo = Parcel::to_germany();
    let shipped = only(
        tokyo.at("2026-03-02T12:00:00Z").poll([scan(
            "2026-03-02T18:00:00+09:00",
            Status::InTransit,
            "PU",
            "Picked up",
            Some("Tokyo, JP"),
        )]),
        Shipped,
    );
    says(&shipped, &["2026-03-02 18:00 +09:00", "Tokyo, JP"]);
    assert_eq!(shipped.facts.event.unwrap().offset_seconds, Some(9 * 3600));

    let mut bare = Parcel::to_germany();
    let shipped = only(
        bare.at("2026-03-02T12:00:00Z").poll([scan(
            "2026-03-02T09:00:00Z",
            Status::InTransit,
            "PU",
            "Picked up",
            None,
        )]),
        Shipped,
    );
    assert_eq!(
        shipped.reason,
        "the carrier has the parcel (\"Picked up\", 2026-03-02 09:00 UTC)"
    );
    assert_eq!(shipped.facts.event.unwrap().offset_seconds, None);
}

#[test]
fn facts_carry_the_scan_and_the_estimates() {
    let mut parcel = Parcel::to_germany().promised("2026-03-05");
    only(
        parcel
            .at("2026-03-02T12:00:00Z")
            .carrier_expects("2026-03-04")
            .poll([picked_up("2026-03-02T10:30:00+01:00")]),
        Shipped,
    );
    let detections = parcel
        .at("2026-03-03T12:00:00Z")
        .carrier_expects("2026-03-06")
        .poll([customs_held("2026-03-03T09:00:00+01:00")]);
    assert_eq!(triggers(&detections), [CustomsHold, Delayed]);
    let hold = &detections[0].facts;
    assert_eq!(hold.status, Status::Exception);
    assert_eq!(hold.reason, Some(Reason::CustomsHeld));
    assert_eq!(
        hold.event,
        Some(EventFacts {
            at: ts("2026-03-03T08:00:00Z"),
            offset_seconds: Some(3600),
            location: Some("Frankfurt, DE".into()),
            text: "Held by customs".into(),
        })
    );
    assert_eq!(hold.estimate, Some(window("2026-03-06")));
    assert_eq!(hold.previous_estimate, Some(window("2026-03-04")));
    assert_eq!(hold.promise, Some(window("2026-03-05")));
    assert_eq!(hold.delay_cause, None);
    let late = &detections[1].facts;
    assert_eq!(late.delay_cause, Some(DelayCause::EstimatePastPromise));
    assert_eq!(late.quiet_business_hours, None);
    assert_eq!(late.waiting_since, None);
}

#[test]
fn dedupe_keys_do_not_depend_on_the_order_scans_are_read_back() {
    let scans = [
        picked_up("2026-03-02T10:30:00+01:00"),
        out_for_delivery("2026-03-04T07:10:00+01:00"),
        not_home("2026-03-04T14:20:00+01:00"),
        back_at_depot("2026-03-04T17:45:00+01:00"),
    ];
    let keyed: Vec<KeyedEvent> = scans
        .iter()
        .map(|e| KeyedEvent {
            key: e.key(CARRIER),
            event: e.clone(),
        })
        .collect();
    let mut reversed = keyed.clone();
    reversed.reverse();
    let keys = |events: Vec<KeyedEvent>| {
        let mut parcel = Parcel::to_germany();
        parcel.timeline = Timeline::from_keyed(events);
        parcel.at("2026-03-04T18:00:00+01:00");
        detect(&parcel.situation(None))
            .into_iter()
            .map(|d| d.dedupe_key)
            .collect::<Vec<_>>()
    };
    let forward = keys(keyed.clone());
    assert_eq!(forward, keys(reversed));
    assert_eq!(forward, [format!("attempt_failed:{}", keyed[2].key)]);
}

//! A shipment's timeline: every scan once, in the order it happened.

use jiff::Timestamp;
use std::collections::HashSet;

use super::estimate::DeliveryWindow;
use super::event::{EventKey, KeyedEvent, TrackingEvent};
use super::shipment::JourneyState;
use super::status::{Reason, Status};

/// The scans of one shipment, deduplicated and sorted by when they happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    events: Vec<KeyedEvent>,
}

/// The result of merging a poll into a timeline.
#[derive(Debug, Clone)]
pub struct Merge {
    pub timeline: Timeline,
    /// Scans this poll brought that were not known before, in time order.
    pub new_events: Vec<KeyedEvent>,
}

/// Progress order used to break ties between scans stamped with the same second.
fn progress_rank(status: Status) -> u8 {
    match status {
        Status::Pending => 0,
        Status::InfoReceived => 1,
        Status::InTransit => 2,
        Status::Exception => 3,
        Status::OutForDelivery => 4,
        Status::AttemptFailed => 5,
        Status::AvailableForPickup => 6,
        Status::Delivered => 7,
        Status::Expired => 8,
    }
}

impl Timeline {
    /// A timeline of already-identified events (as read back from storage).
    ///
    /// A key seen twice is one scan, kept as first given (the stored copy, when merging). The
    /// key breaks the remaining ties, so the same scans give the same timeline in whatever
    /// order they are read back, and so the same detections.
    pub fn from_keyed(events: Vec<KeyedEvent>) -> Self {
        let mut seen = HashSet::new();
        let mut events: Vec<KeyedEvent> = events
            .into_iter()
            .filter(|e| seen.insert(e.key.clone()))
            .collect();
        events.sort_by(|a, b| {
            (a.event.time.at, progress_rank(a.event.status), &a.key).cmp(&(
                b.event.time.at,
                progress_rank(b.event.status),
                &b.key,
            ))
        });
        Timeline { events }
    }

    /// Add a poll's scans: ones already known are dropped, late arrivals slot in by time.
    pub fn merge(self, carrier: &str, incoming: Vec<TrackingEvent>) -> Merge {
        let mut known: HashSet<EventKey> = self.events.iter().map(|e| e.key.clone()).collect();
        let mut new_events = Vec::new();
        for event in incoming {
            let key = event.key(carrier);
            if known.insert(key.clone()) {
                new_events.push(KeyedEvent { key, event });
            }
        }
        let mut all = self.events;
        all.extend(new_events.iter().cloned());
        let timeline = Timeline::from_keyed(all);
        new_events.sort_by_key(|e| e.event.time.at);
        Merge {
            timeline,
            new_events,
        }
    }

    pub fn events(&self) -> &[KeyedEvent] {
        &self.events
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The most recent scan.
    pub fn latest(&self) -> Option<&KeyedEvent> {
        self.events.last()
    }

    /// The scan that says where the journey stands: the most recent one, unless an earlier
    /// scan ended the journey (delivered, returned, lost). A carrier's follow-up after that
    /// (a proof-of-delivery upload filed as "in transit", a stray depot scan) does not reopen it.
    pub fn current(&self) -> Option<&KeyedEvent> {
        self.until_current().last()
    }

    /// The scans up to and including [`Timeline::current`].
    pub fn until_current(&self) -> &[KeyedEvent] {
        let end = self
            .events
            .iter()
            .rposition(|e| is_final(e.event.status, e.event.reason))
            .map_or(self.events.len(), |last_final| last_final + 1);
        &self.events[..end]
    }

    /// The first event of the current episode: the unbroken run of latest events that all
    /// satisfy `in_episode`. `None` when the latest event is not in such an episode.
    pub fn episode_start(
        &self,
        in_episode: impl Fn(&TrackingEvent) -> bool,
    ) -> Option<&KeyedEvent> {
        let run = self
            .events
            .iter()
            .rev()
            .take_while(|e| in_episode(&e.event))
            .count();
        (run > 0).then(|| &self.events[self.events.len() - run])
    }

    /// Whether the parcel has ever been announced as going back to the merchant.
    pub fn has_return(&self) -> bool {
        self.events
            .iter()
            .any(|e| e.event.reason.is_some_and(Reason::is_return))
    }

    /// The journey state this timeline implies, with the carrier's current estimate.
    pub fn journey(&self, carrier_estimate: Option<DeliveryWindow>) -> JourneyState {
        let (Some(current), Some(latest)) = (self.current(), self.latest()) else {
            return JourneyState {
                carrier_estimate,
                ..JourneyState::new_shipment()
            };
        };
        let status = current.event.status;
        let reason = current.event.reason;
        JourneyState {
            status,
            reason,
            carrier_estimate,
            last_event_at: Some(latest.event.time.at),
            active: !is_final(status, reason),
        }
    }
}

/// A journey that is over: nothing more will happen that a poll could tell.
pub fn is_final(status: Status, reason: Option<Reason>) -> bool {
    matches!(status, Status::Delivered | Status::Expired)
        || matches!(reason, Some(Reason::Lost | Reason::ReturnedToSender))
}

/// The latest scan time of a timeline, if any.
pub fn last_scan_at(timeline: &Timeline) -> Option<Timestamp> {
    timeline.latest().map(|e| e.event.time.at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventTime;

    fn scan(at: &str, status: Status, code: &str) -> TrackingEvent {
        TrackingEvent {
            time: EventTime::utc(at.parse().unwrap()),
            status,
            reason: None,
            raw_code: code.into(),
            raw_text: code.into(),
            location: None,
        }
    }

    #[test]
    fn repeated_scans_are_kept_once_and_late_ones_slot_in() {
        let first = Timeline::default().merge(
            "sandbox",
            vec![
                scan("2026-03-02T08:00:00Z", Status::InTransit, "PU"),
                scan("2026-03-03T08:00:00Z", Status::OutForDelivery, "OD"),
            ],
        );
        assert_eq!(first.new_events.len(), 2);
        // The second poll repeats a scan and brings one that happened in between.
        let second = first.timeline.merge(
            "sandbox",
            vec![
                scan("2026-03-03T08:00:00Z", Status::OutForDelivery, "OD"),
                scan("2026-03-02T20:00:00Z", Status::InTransit, "AR"),
            ],
        );
        assert_eq!(second.new_events.len(), 1);
        assert_eq!(second.new_events[0].event.raw_code, "AR");
        let codes: Vec<_> = second
            .timeline
            .events()
            .iter()
            .map(|e| e.event.raw_code.as_str())
            .collect();
        assert_eq!(codes, ["PU", "AR", "OD"]);
        assert_eq!(second.timeline.journey(None).status, Status::OutForDelivery);
    }

    #[test]
    fn a_late_old_scan_does_not_move_the_status_back() {
        let merged = Timeline::default()
            .merge(
                "sandbox",
                vec![scan("2026-03-03T12:00:00Z", Status::Delivered, "DL")],
            )
            .timeline
            .merge(
                "sandbox",
                vec![scan("2026-03-03T07:00:00Z", Status::OutForDelivery, "OD")],
            );
        let journey = merged.timeline.journey(None);
        assert_eq!(journey.status, Status::Delivered);
        assert!(!journey.active);
    }

    #[test]
    fn the_same_scans_read_back_in_any_order_make_the_same_timeline() {
        let scans = [
            scan("2026-03-02T08:00:00Z", Status::InTransit, "PU"),
            scan("2026-03-02T08:00:00Z", Status::InTransit, "AR"),
            scan("2026-03-02T08:00:00.500Z", Status::InTransit, "DP"),
            scan("2026-03-03T08:00:00Z", Status::OutForDelivery, "OD"),
        ];
        let keyed: Vec<KeyedEvent> = scans
            .iter()
            .map(|e| KeyedEvent {
                key: e.key("sandbox"),
                event: e.clone(),
            })
            .collect();
        let mut reversed = keyed.clone();
        reversed.reverse();
        // The same scan stored twice, not next to its twin once sorted.
        reversed.push(keyed[0].clone());
        let forward = Timeline::from_keyed(keyed);
        let backward = Timeline::from_keyed(reversed);
        assert_eq!(forward, backward);
        assert_eq!(backward.events().len(), 4);
    }

    #[test]
    fn a_scan_after_the_delivery_does_not_reopen_the_journey() {
        let merged = Timeline::default().merge(
            "sandbox",
            vec![
                scan("2026-03-03T07:00:00Z", Status::OutForDelivery, "OD"),
                scan("2026-03-03T12:00:00Z", Status::Delivered, "DL"),
                scan("2026-03-03T12:30:00Z", Status::InTransit, "POD"),
            ],
        );
        let timeline = merged.timeline;
        assert_eq!(timeline.latest().unwrap().event.raw_code, "POD");
        assert_eq!(timeline.current().unwrap().event.raw_code, "DL");
        assert_eq!(timeline.until_current().len(), 2);
        let journey = timeline.journey(None);
        assert_eq!(journey.status, Status::Delivered);
        assert!(!journey.active);
        assert_eq!(
            journey.last_event_at,
            Some("2026-03-03T12:30:00Z".parse().unwrap())
        );
    }

    #[test]
    fn episodes_are_the_trailing_run() {
        let merged = Timeline::default().merge(
            "sandbox",
            vec![
                scan("2026-03-02T08:00:00Z", Status::OutForDelivery, "OD1"),
                scan("2026-03-02T18:00:00Z", Status::AttemptFailed, "NA"),
                scan("2026-03-03T07:00:00Z", Status::OutForDelivery, "OD2"),
                scan("2026-03-03T07:05:00Z", Status::OutForDelivery, "OD3"),
            ],
        );
        let start = merged
            .timeline
            .episode_start(|e| e.status == Status::OutForDelivery)
            .unwrap();
        assert_eq!(start.event.raw_code, "OD2");
        assert!(
            merged
                .timeline
                .episode_start(|e| e.status == Status::AttemptFailed)
                .is_none()
        );
    }
}

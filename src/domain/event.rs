//! One carrier scan, normalised, and its identity.

use jiff::Timestamp;
use jiff::tz::Offset;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::shipment::CountryCode;
use super::status::{Reason, Status};

/// When a scan happened: the instant, plus the local offset the carrier reported it in.
///
/// Carriers give times with an offset, in UTC, or as a bare local time. The instant is always
/// kept in UTC so events sort and compare; the offset (when known) is kept so the customer sees
/// the local time of the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTime {
    pub at: Timestamp,
    /// The UTC offset, in seconds, of the place where the scan happened, when the carrier
    /// told us (or the adapter knew the location's zone).
    pub offset_seconds: Option<i32>,
}

impl EventTime {
    pub fn utc(at: Timestamp) -> Self {
        EventTime {
            at,
            offset_seconds: None,
        }
    }

    /// A time the carrier gave with an offset.
    pub fn with_offset(at: Timestamp, offset: Offset) -> Self {
        EventTime {
            at,
            offset_seconds: Some(offset.seconds()),
        }
    }

    pub fn offset(&self) -> Option<Offset> {
        self.offset_seconds
            .and_then(|s| Offset::from_seconds(s).ok())
    }

    /// The time as the carrier reported it, local to the scan when the offset is known.
    pub fn local(&self) -> jiff::Zoned {
        let tz = self
            .offset()
            .map(jiff::tz::TimeZone::fixed)
            .unwrap_or(jiff::tz::TimeZone::UTC);
        self.at.to_zoned(tz)
    }
}

/// A normalised carrier event, with the carrier's own words kept beside the normalised ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingEvent {
    pub time: EventTime,
    pub status: Status,
    pub reason: Option<Reason>,
    /// The carrier's own status code for this scan.
    pub raw_code: String,
    /// The carrier's own description of this scan.
    pub raw_text: String,
    /// Where the scan happened, as the carrier names it ("Leipzig, DE").
    pub location: Option<String>,
}

/// The identity of a scan: the same scan returned by two polls, or by a poll and a push, has the
/// same key, so it is stored (and announced) once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventKey(String);

impl EventKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuild a key read back from storage.
    pub fn from_stored(key: String) -> Self {
        EventKey(key)
    }
}

impl std::fmt::Display for EventKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TrackingEvent {
    /// The country the location names: its last comma-separated part when that is two letters
    /// ("Leipzig, DE", "RICHMOND, VA, US", a bare "DE"), as the adapters write a place whenever
    /// the carrier gives its country. `None` for a location without one ("SYDNEY NSW"). The two
    /// letters may also be a state a carrier wrote without its country ("CINCINNATI HUB, OH"):
    /// callers check the code against the countries they know.
    pub fn country(&self) -> Option<CountryCode> {
        let last = self.location.as_deref()?.rsplit(',').next()?.trim();
        let letters = last.len() == 2 && last.chars().all(|c| c.is_ascii_alphabetic());
        letters.then(|| CountryCode::parse(last).ok()).flatten()
    }

    /// Carrier, instant (to the second, in UTC), raw code and location identify a scan.
    ///
    /// Sub-second digits and the offset are left out on purpose: carriers round differently
    /// between endpoints, and the same instant written with another offset is the same scan.
    pub fn key(&self, carrier: &str) -> EventKey {
        let mut hasher = Sha256::new();
        let location = self
            .location
            .as_deref()
            .map(|l| l.trim().to_lowercase())
            .unwrap_or_default();
        for part in [
            carrier,
            &self.time.at.as_second().to_string(),
            self.raw_code.trim(),
            &location,
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0x1f]);
        }
        let digest = hasher.finalize();
        EventKey(hex::encode(&digest[..12]))
    }
}

/// An event together with its identity, as kept on a shipment's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedEvent {
    pub key: EventKey,
    pub event: TrackingEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(at: &str, offset_hours: Option<i8>) -> TrackingEvent {
        TrackingEvent {
            time: EventTime {
                at: at.parse().unwrap(),
                offset_seconds: offset_hours.map(|h| Offset::constant(h).seconds()),
            },
            status: Status::InTransit,
            reason: None,
            raw_code: "AR".into(),
            raw_text: "Arrived at facility".into(),
            location: Some("Leipzig, DE".into()),
        }
    }

    #[test]
    fn the_same_instant_with_or_without_offset_is_the_same_scan() {
        let with_offset = scan("2026-03-02T09:15:00+01:00", Some(1));
        let in_utc = scan("2026-03-02T08:15:00Z", None);
        assert_eq!(with_offset.key("dhl"), in_utc.key("dhl"));
        assert_eq!(with_offset.time.local().hour(), 9);
    }

    #[test]
    fn sub_second_digits_and_location_case_do_not_split_a_scan() {
        let a = scan("2026-03-02T08:15:00.120Z", None);
        let mut b = scan("2026-03-02T08:15:00Z", None);
        b.location = Some(" leipzig, de ".into());
        assert_eq!(a.key("dhl"), b.key("dhl"));
    }

    #[test]
    fn the_country_is_the_locations_last_two_letters() {
        let mut event = scan("2026-03-02T08:15:00Z", None);
        let country_of = |location: Option<&str>, event: &mut TrackingEvent| {
            event.location = location.map(Into::into);
            event.country().map(|c| c.as_str().to_owned())
        };
        for (location, country) in [
            (Some("Leipzig, DE"), Some("DE")),
            (Some("RICHMOND, VA, US"), Some("US")),
            (Some("SAINTE-FOY, QC, CA"), Some("CA")),
            (Some(" nl "), Some("NL")),
            (Some("ALEXANDRIA NSW"), None),
            (Some("Kraków"), None),
            (Some("FRANKFURT, GERMANY"), None),
            (None, None),
        ] {
            assert_eq!(
                country_of(location, &mut event).as_deref(),
                country,
                "{location:?}"
            );
        }
    }

    #[test]
    fn another_code_time_location_or_carrier_is_another_scan() {
        let base = scan("2026-03-02T08:15:00Z", None);
        let mut other_code = base.clone();
        other_code.raw_code = "DP".into();
        let later = scan("2026-03-02T08:16:00Z", None);
        let mut elsewhere = base.clone();
        elsewhere.location = Some("Berlin, DE".into());
        for other in [&other_code, &later, &elsewhere] {
            assert_ne!(base.key("dhl"), other.key("dhl"));
        }
        assert_ne!(base.key("dhl"), base.key("ups"));
    }
}

//! Quiet hours: no message wakes a customer at night; it waits for the morning in their zone.

use jiff::Timestamp;
use jiff::civil::Time;
use jiff::tz::TimeZone;

use crate::config::QuietHoursConfig;

/// A daily window, local to the customer, in which nothing is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: Time,
    end: Time,
}

impl QuietHours {
    /// The configured window, or `None` when quiet hours are off (or empty).
    pub fn from_config(config: &QuietHoursConfig) -> Option<Self> {
        if !config.enabled {
            return None;
        }
        let start = Time::strptime("%H:%M", &config.start).ok()?;
        let end = Time::strptime("%H:%M", &config.end).ok()?;
        (start != end).then_some(QuietHours { start, end })
    }

    /// When a message due `now` may go out: `None` if it may go now, otherwise the end of the
    /// quiet window in the customer's zone.
    pub fn next_allowed(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = now.to_zoned(tz.clone());
        let time = local.time();
        let date = local.date();
        let end_on = |day: jiff::civil::Date| {
            day.to_datetime(self.end)
                .to_zoned(tz.clone())
                .map(|z| z.timestamp())
                .ok()
        };
        if self.start < self.end {
            // A window within one day, e.g. 13:00–15:00.
            (time >= self.start && time < self.end)
                .then(|| end_on(date))
                .flatten()
        } else if time >= self.start {
            // Overnight window, evening part: wait for tomorrow morning.
            date.tomorrow().ok().and_then(end_on)
        } else if time < self.end {
            // Overnight window, early-morning part: wait for this morning.
            end_on(date)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(start: &str, end: &str) -> QuietHours {
        QuietHours::from_config(&QuietHoursConfig {
            enabled: true,
            start: start.into(),
            end: end.into(),
        })
        .unwrap()
    }

    #[test]
    fn night_messages_wait_for_the_morning_in_the_customers_zone() {
        let q = quiet("21:00", "08:00");
        let warsaw = TimeZone::get("Europe/Warsaw").unwrap();
        // 22:30 in Warsaw: wait until 08:00 the next morning.
        let late: Timestamp = "2026-03-02T21:30:00Z".parse().unwrap();
        assert_eq!(
            q.next_allowed(late, &warsaw),
            Some("2026-03-03T07:00:00Z".parse().unwrap())
        );
        // 06:00 in Warsaw: wait until 08:00 the same morning.
        let early: Timestamp = "2026-03-03T05:00:00Z".parse().unwrap();
        assert_eq!(
            q.next_allowed(early, &warsaw),
            Some("2026-03-03T07:00:00Z".parse().unwrap())
        );
        // 12:00 in Warsaw: send now.
        let noon: Timestamp = "2026-03-03T11:00:00Z".parse().unwrap();
        assert_eq!(q.next_allowed(noon, &warsaw), None);
        // The same instant is night in New York.
        let new_york = TimeZone::get("America/New_York").unwrap();
        assert!(q.next_allowed(early, &new_york).is_some());
    }

    #[test]
    fn a_daytime_window_and_switching_off() {
        let q = quiet("13:00", "14:00");
        let utc = TimeZone::UTC;
        assert_eq!(
            q.next_allowed("2026-03-03T13:30:00Z".parse().unwrap(), &utc),
            Some("2026-03-03T14:00:00Z".parse().unwrap())
        );
        assert_eq!(
            q.next_allowed("2026-03-03T14:00:00Z".parse().unwrap(), &utc),
            None
        );
        assert!(
            QuietHours::from_config(&QuietHoursConfig {
                enabled: false,
                start: "21:00".into(),
                end: "08:00".into()
            })
            .is_none()
        );
    }
}

//! Waymark's sense of time. In production it is the wall clock; the demo and the tests run an
//! accelerated clock so that a week-long journey plays out in a minute, consistently across
//! restarts (the anchor is stored with the data).

use jiff::{SignedDuration, Timestamp};
use std::time::Duration;

/// The current time, possibly accelerated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// Simulated seconds per real second; 1.0 is the wall clock.
    acceleration: f64,
    /// Real and simulated time agree at this instant.
    anchor: Timestamp,
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Self {
        Clock {
            acceleration: 1.0,
            anchor: Timestamp::UNIX_EPOCH,
        }
    }

    /// A clock that runs `acceleration` times faster than the wall clock from `anchor` on.
    pub fn accelerated(acceleration: f64, anchor: Timestamp) -> Self {
        Clock {
            acceleration: acceleration.max(1.0),
            anchor,
        }
    }

    pub fn acceleration(&self) -> f64 {
        self.acceleration
    }

    pub fn anchor(&self) -> Timestamp {
        self.anchor
    }

    pub fn now(&self) -> Timestamp {
        let real = Timestamp::now();
        if self.acceleration == 1.0 {
            return real;
        }
        let elapsed = real.duration_since(self.anchor).as_secs_f64() * self.acceleration;
        self.anchor
            .checked_add(SignedDuration::from_secs_f64(elapsed))
            .unwrap_or(Timestamp::MAX)
    }

    /// How long to really wait for `simulated` to pass.
    pub fn real_duration(&self, simulated: SignedDuration) -> Duration {
        let secs = simulated.as_secs_f64().max(0.0) / self.acceleration;
        Duration::from_secs_f64(secs)
    }

    /// How much simulated time passes while `real` passes.
    pub fn simulated_duration(&self, real: Duration) -> SignedDuration {
        SignedDuration::from_secs_f64(real.as_secs_f64() * self.acceleration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accelerated_clock_runs_faster_from_its_anchor() {
        let anchor = Timestamp::now();
        let clock = Clock::accelerated(3600.0, anchor);
        std::thread::sleep(Duration::from_millis(20));
        let simulated = clock.now().duration_since(anchor);
        assert!(simulated >= SignedDuration::from_secs(60), "{simulated:?}");
        assert_eq!(
            clock.real_duration(SignedDuration::from_hours(1)),
            Duration::from_secs(1)
        );
    }
}

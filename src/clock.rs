//! Waymark's sense of time. In production it is the wall clock; the demo runs an accelerated
//! clock so that a week-long journey plays out in a minute, consistently across restarts (the
//! anchor is stored with the data); tests can drive a manual clock from event to event.

use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The current time: the wall clock, an accelerated one, or one a test moves by hand.
#[derive(Debug, Clone)]
pub struct Clock {
    mode: Mode,
}

#[derive(Debug, Clone)]
enum Mode {
    /// Real time.
    System,
    /// `acceleration` simulated seconds per real second, agreeing with real time at `anchor`.
    Accelerated {
        acceleration: f64,
        anchor: Timestamp,
    },
    /// Stands still until advanced (milliseconds since the epoch, shared by all clones).
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Self {
        Clock { mode: Mode::System }
    }

    /// A clock that runs `acceleration` times faster than the wall clock from `anchor` on.
    pub fn accelerated(acceleration: f64, anchor: Timestamp) -> Self {
        if acceleration <= 1.0 {
            return Clock::system();
        }
        Clock {
            mode: Mode::Accelerated {
                acceleration,
                anchor,
            },
        }
    }

    /// A clock that shows `start` until [`Clock::advance_to`] moves it; its clones move too.
    pub fn manual(start: Timestamp) -> Self {
        Clock {
            mode: Mode::Manual(Arc::new(AtomicI64::new(start.as_millisecond()))),
        }
    }

    /// Move a manual clock forward to `at` (never back); other clocks ignore it.
    pub fn advance_to(&self, at: Timestamp) {
        if let Mode::Manual(now) = &self.mode {
            now.fetch_max(at.as_millisecond(), Ordering::SeqCst);
        }
    }

    /// Simulated seconds per real second (1 for the wall clock and a manual clock).
    pub fn acceleration(&self) -> f64 {
        match &self.mode {
            Mode::Accelerated { acceleration, .. } => *acceleration,
            Mode::System | Mode::Manual(_) => 1.0,
        }
    }

    pub fn now(&self) -> Timestamp {
        match &self.mode {
            Mode::System => Timestamp::now(),
            Mode::Accelerated {
                acceleration,
                anchor,
            } => {
                let elapsed = Timestamp::now().duration_since(*anchor).as_secs_f64() * acceleration;
                anchor
                    .checked_add(SignedDuration::from_secs_f64(elapsed))
                    .unwrap_or(Timestamp::MAX)
            }
            Mode::Manual(now) => Timestamp::from_millisecond(now.load(Ordering::SeqCst))
                .unwrap_or(Timestamp::UNIX_EPOCH),
        }
    }

    /// How long to really wait for `simulated` to pass.
    pub fn real_duration(&self, simulated: SignedDuration) -> Duration {
        Duration::from_secs_f64(simulated.as_secs_f64().max(0.0) / self.acceleration())
    }

    /// How much simulated time passes while `real` passes.
    pub fn simulated_duration(&self, real: Duration) -> SignedDuration {
        SignedDuration::from_secs_f64(real.as_secs_f64() * self.acceleration())
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

    #[test]
    fn a_manual_clock_moves_only_forward_and_only_when_told() {
        let start: Timestamp = "2026-03-02T08:00:00Z".parse().unwrap();
        let clock = Clock::manual(start);
        let clone = clock.clone();
        assert_eq!(clock.now(), start);
        clock.advance_to("2026-03-02T09:00:00Z".parse().unwrap());
        assert_eq!(clone.now(), "2026-03-02T09:00:00Z".parse().unwrap());
        clock.advance_to(start);
        assert_eq!(clone.now(), "2026-03-02T09:00:00Z".parse().unwrap());
    }
}

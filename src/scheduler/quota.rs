//! Keeping each carrier account under its rate limit and daily quota.

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use jiff::Timestamp;
use jiff::civil::Time;
use jiff::tz::TimeZone;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

use crate::carriers::profile::Limits;

/// The quota period `now` falls in: its name (the day it started) and when the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDay {
    pub day: String,
    pub resets_at: Timestamp,
}

/// Which quota day `now` is in, for a carrier that resets at `limits.quota_resets_at` in
/// `limits.quota_time_zone`.
pub fn quota_day(limits: &Limits, now: Timestamp) -> QuotaDay {
    let tz = TimeZone::get(&limits.quota_time_zone).unwrap_or(TimeZone::UTC);
    let reset = Time::strptime("%H:%M", &limits.quota_resets_at).unwrap_or(Time::midnight());
    let local = now.to_zoned(tz.clone());
    let today_reset = local.date().to_datetime(reset);
    let period_start = if local.datetime() >= today_reset {
        local.date()
    } else {
        local.date().yesterday().unwrap_or(local.date())
    };
    let next = period_start
        .tomorrow()
        .unwrap_or(period_start)
        .to_datetime(reset)
        .to_zoned(tz)
        .map(|z| z.timestamp())
        .unwrap_or(now);
    QuotaDay {
        day: period_start.to_string(),
        resets_at: next,
    }
}

/// One token bucket per carrier account, in real time.
#[derive(Default)]
pub struct RateLimits {
    buckets: Mutex<HashMap<Uuid, Arc<DefaultDirectRateLimiter>>>,
}

impl RateLimits {
    /// Wait until the account may make another call.
    pub async fn acquire(&self, account: Uuid, requests_per_second: f64) {
        let bucket = {
            let mut buckets = self
                .buckets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            buckets
                .entry(account)
                .or_insert_with(|| Arc::new(limiter(requests_per_second)))
                .clone()
        };
        bucket.until_ready().await;
    }
}

fn limiter(requests_per_second: f64) -> DefaultDirectRateLimiter {
    let quota = if requests_per_second >= 1.0 {
        let per_second =
            NonZeroU32::new(requests_per_second.round() as u32).unwrap_or(NonZeroU32::MIN);
        Quota::per_second(per_second)
    } else {
        let period = std::time::Duration::from_secs_f64(1.0 / requests_per_second.max(1e-6));
        Quota::with_period(period).unwrap_or(Quota::per_second(NonZeroU32::MIN))
    };
    RateLimiter::direct(quota)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(at: &str, tz: &str) -> Limits {
        Limits {
            batch_size: 1,
            requests_per_second: 1.0,
            daily_quota: Some(250),
            max_fetches_per_shipment_per_day: None,
            quota_resets_at: at.into(),
            quota_time_zone: tz.into(),
        }
    }

    #[test]
    fn the_quota_day_turns_at_the_carriers_reset_time() {
        let l = limits("00:00", "UTC");
        let q = quota_day(&l, "2026-03-02T23:59:00Z".parse().unwrap());
        assert_eq!(q.day, "2026-03-02");
        assert_eq!(q.resets_at, "2026-03-03T00:00:00Z".parse().unwrap());

        // A carrier in Berlin resetting at 06:00 local.
        let l = limits("06:00", "Europe/Berlin");
        let before = quota_day(&l, "2026-03-02T04:30:00Z".parse().unwrap());
        assert_eq!(before.day, "2026-03-01");
        assert_eq!(before.resets_at, "2026-03-02T05:00:00Z".parse().unwrap());
        let after = quota_day(&l, "2026-03-02T05:30:00Z".parse().unwrap());
        assert_eq!(after.day, "2026-03-02");
    }
}

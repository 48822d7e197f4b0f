//! Keeping each carrier account under its rate limit and daily quota.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

use crate::carriers::profile::Limits;
use crate::store::{Store, StoreError};

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

/// The slot spacing and burst of `requests_per_second`: a rate of 5 is a call every 200 ms,
/// 5 at once after a quiet second; a rate below 1 allows no burst.
pub fn rate_slots(requests_per_second: f64) -> (SignedDuration, u32) {
    let rate = requests_per_second.max(1e-6);
    let interval = SignedDuration::from_secs_f64(1.0 / rate).max(SignedDuration::from_millis(1));
    let burst = if rate >= 1.0 { rate.round() as u32 } else { 1 };
    (interval, burst.max(1))
}

/// Wait until `account` may make its next call, by its share of the rate limit kept in `store`
/// for every replica: the limit holds for the account, however many processes poll it.
pub async fn acquire(
    store: &dyn Store,
    account: Uuid,
    requests_per_second: f64,
) -> Result<(), StoreError> {
    let (interval, burst) = rate_slots(requests_per_second);
    let now = Timestamp::now();
    let slot = store
        .reserve_carrier_slot(account, now, interval, burst)
        .await?;
    let wait = slot.duration_since(now);
    if wait.is_positive() {
        tokio::time::sleep(wait.unsigned_abs()).await;
    }
    Ok(())
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

    #[test]
    fn a_rate_is_a_slot_spacing_and_a_burst() {
        assert_eq!(rate_slots(5.0), (SignedDuration::from_millis(200), 5));
        assert_eq!(rate_slots(0.5), (SignedDuration::from_secs(2), 1));
        assert_eq!(rate_slots(2000.0), (SignedDuration::from_millis(1), 2000));
    }
}

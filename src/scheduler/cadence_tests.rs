use super::*;
use jiff::civil::{date, time};
use rand::SeedableRng;

fn cadence() -> Cadence {
    Cadence {
        before_handover: 720,
        in_transit: 1440,
        near_estimate: 30,
        out_for_delivery: 60,
        waiting: 240,
        at_pickup_point: 720,
        not_found: 120,
        max_backoff: 360,
        jitter_percent: 10,
        out_for_delivery_from: time(7, 30, 0, 0),
        out_for_delivery_until: time(10, 0, 0, 0),
        deliveries_until: time(20, 0, 0, 0),
        delivery_days: {
            use jiff::civil::Weekday::*;
            vec![Monday, Tuesday, Wednesday, Thursday, Friday, Saturday]
        },
        no_deliveries_on_holidays: true,
    }
}

fn limits(max_per_day: Option<u32>) -> Limits {
    Limits {
        batch_size: 1,
        requests_per_second: 1.0,
        daily_quota: Some(250),
        max_fetches_per_shipment_per_day: max_per_day,
        quota_resets_at: "00:00".into(),
        quota_time_zone: "UTC".into(),
    }
}

fn journey(status: Status) -> JourneyState {
    JourneyState {
        status,
        reason: None,
        carrier_estimate: None,
        last_event_at: None,
        active: true,
    }
}

fn berlin() -> TimeZone {
    TimeZone::get("Europe/Berlin").unwrap()
}

/// Berlin wall time on a date (2026-03-02 is a Monday).
fn at(day: Date, hour: i8, minute: i8) -> Timestamp {
    day.at(hour, minute, 0, 0)
        .to_zoned(berlin())
        .unwrap()
        .timestamp()
}

fn weekdays_and_saturdays(d: Date) -> bool {
    is_delivery_day(&cadence(), d, |_| false)
}

/// The next poll for `journey` expecting `expected`, at `now`, with a fixed random source.
fn next(journey: &JourneyState, expected: Option<DeliveryWindow>, now: Timestamp) -> Timestamp {
    let zone = berlin();
    let moment = Moment {
        journey,
        expected,
        zone: &zone,
        delivery_day: &weekdays_and_saturdays,
        pickup_reminder_at: None,
        abroad: false,
        now,
    };
    next_poll_at(
        &cadence(),
        &moment,
        &mut rand::rngs::StdRng::seed_from_u64(7),
    )
    .expect("an active journey is polled")
}

fn phase_and_priority(
    journey: &JourneyState,
    expected: Option<DeliveryWindow>,
    now: Timestamp,
) -> (Phase, i32) {
    let zone = berlin();
    let moment = Moment {
        journey,
        expected,
        zone: &zone,
        delivery_day: &weekdays_and_saturdays,
        pickup_reminder_at: None,
        abroad: false,
        now,
    };
    (moment.phase(), priority(&moment))
}

fn minutes_between(a: Timestamp, b: Timestamp) -> i64 {
    b.duration_since(a).as_secs() / 60
}

#[test]
fn between_hubs_a_parcel_is_polled_rarely_and_on_its_delivery_day_from_the_first_vans() {
    let monday = date(2026, 3, 2);
    let thursday = date(2026, 3, 5);
    let moving = journey(Status::InTransit);
    // Expected on Thursday: once a day (1440 minutes, jittered) while it travels ...
    let now = at(monday, 21, 0);
    let gap = minutes_between(now, next(&moving, Some(DeliveryWindow::on(thursday)), now));
    assert!((1296..=1584).contains(&gap), "{gap}");
    // ... and the evening before, the next poll is the delivery day's first vans, not later.
    let wednesday_evening = at(date(2026, 3, 4), 21, 0);
    let first = next(
        &moving,
        Some(DeliveryWindow::on(thursday)),
        wednesday_evening,
    );
    assert!(
        first >= at(thursday, 7, 30) && first < at(thursday, 8, 0),
        "{first}"
    );
}

#[test]
fn on_the_delivery_day_the_morning_is_watched_closely_and_the_afternoon_once() {
    let thursday = date(2026, 3, 5);
    let expected = Some(DeliveryWindow::on(thursday));
    let moving = journey(Status::InTransit);
    // Before the vans leave: wait for them.
    let early = next(&moving, expected, at(thursday, 5, 0));
    assert!(early >= at(thursday, 7, 30) && early < at(thursday, 8, 0));
    // While they leave: every half hour.
    let gap = minutes_between(
        at(thursday, 8, 0),
        next(&moving, expected, at(thursday, 8, 0)),
    );
    assert!((27..=33).contains(&gap), "{gap}");
    // No van by ten: one look in the afternoon, hours later.
    let gap = minutes_between(
        at(thursday, 10, 30),
        next(&moving, expected, at(thursday, 10, 30)),
    );
    assert!((216..=264).contains(&gap), "{gap}");
    // After the last deliveries, with the window over: back to between-hubs polling.
    let gap = minutes_between(
        at(thursday, 20, 30),
        next(&moving, expected, at(thursday, 20, 30)),
    );
    assert!(gap >= 1296, "{gap}");
    // A two-day window: the second day's morning.
    let window = DeliveryWindow::between(thursday, date(2026, 3, 6)).ok();
    let friday = next(&moving, window, at(thursday, 20, 30));
    assert!(friday >= at(date(2026, 3, 6), 7, 30) && friday < at(date(2026, 3, 6), 8, 0));
}

#[test]
fn on_the_van_the_parcel_is_polled_hourly_until_the_last_deliveries() {
    let thursday = date(2026, 3, 5);
    let van = journey(Status::OutForDelivery);
    let gap = minutes_between(at(thursday, 9, 0), next(&van, None, at(thursday, 9, 0)));
    assert!((54..=66).contains(&gap), "{gap}");
    // Still "on the van" at night: the next look is the next morning, not every hour.
    let late = next(&van, None, at(thursday, 21, 0));
    assert!(late >= at(date(2026, 3, 6), 7, 30), "{late}");
    assert_eq!(phase_and_priority(&van, None, at(thursday, 9, 0)).1, 0);
}

#[test]
fn after_a_failed_attempt_the_parcel_is_not_polled_at_the_vans_rate_for_days() {
    let thursday = date(2026, 3, 5);
    let failed = journey(Status::AttemptFailed);
    // In the afternoon of the attempt: a pickup point is announced within hours.
    let gap = minutes_between(
        at(thursday, 13, 30),
        next(&failed, None, at(thursday, 13, 30)),
    );
    assert!((216..=264).contains(&gap), "{gap}");
    // Two days later, still nothing new: never hourly, at most the waiting rate or the next
    // morning's vans.
    for hour in [8, 12, 16, 22] {
        let now = at(date(2026, 3, 7), hour, 0);
        let gap = minutes_between(now, next(&failed, None, now));
        assert!(gap >= 100, "{hour}:00 → {gap} minutes");
    }
    // Saturday night: the waiting rate, not the van's.
    let saturday_night = at(date(2026, 3, 7), 22, 0);
    let gap = minutes_between(saturday_night, next(&failed, None, saturday_night));
    assert!((216..=264).contains(&gap), "{gap}");
}

#[test]
fn a_parcel_past_its_estimate_falls_back_to_a_slow_cadence_and_a_lower_priority() {
    let thursday = date(2026, 3, 5);
    let expected = Some(DeliveryWindow::on(thursday));
    let moving = journey(Status::InTransit);
    let on_the_day = phase_and_priority(&moving, expected, at(thursday, 8, 0));
    assert_eq!(on_the_day, (Phase::DeliveryDay, 1));
    // Two days on, nothing moved: it is overdue, polled once a day, and healthy parcels go first.
    let later = at(date(2026, 3, 7), 8, 0);
    assert_eq!(
        phase_and_priority(&moving, expected, later),
        (Phase::Overdue, 2)
    );
    let gap = minutes_between(later, next(&moving, expected, later));
    assert!(gap >= 1296, "{gap}");
    // A parcel due tomorrow outranks it.
    let due_tomorrow = Some(DeliveryWindow::on(date(2026, 3, 8)));
    assert_eq!(phase_and_priority(&moving, due_tomorrow, later).1, 1);
}

#[test]
fn waiting_customs_and_handover_phases_use_their_own_rates() {
    let monday = date(2026, 3, 2);
    let now = at(monday, 12, 0);
    let mut customs = journey(Status::Exception);
    customs.reason = Some(Reason::CustomsHeld);
    assert_eq!(phase_and_priority(&customs, None, now).0, Phase::Waiting);
    let gap = minutes_between(now, next(&customs, None, now));
    assert!((216..=264).contains(&gap), "{gap}");
    // Released, it is in transit again: its delivery day gets the morning watch.
    customs.status = Status::InTransit;
    customs.reason = Some(Reason::CustomsReleased);
    assert_eq!(phase_and_priority(&customs, None, now).0, Phase::InTransit);
    let label = journey(Status::InfoReceived);
    assert_eq!(
        phase_and_priority(&label, None, now),
        (Phase::BeforeHandover, 3)
    );
    let mut done = journey(Status::Delivered);
    done.active = false;
    let zone = berlin();
    let moment = Moment {
        journey: &done,
        expected: None,
        zone: &zone,
        delivery_day: &weekdays_and_saturdays,
        pickup_reminder_at: None,
        abroad: false,
        now,
    };
    assert_eq!(
        next_poll_at(
            &cadence(),
            &moment,
            &mut rand::rngs::StdRng::seed_from_u64(1)
        ),
        None
    );
}

#[test]
fn the_daily_cap_holds_whatever_the_jitter() {
    let day = QuotaDay {
        day: "2026-03-05".into(),
        resets_at: "2026-03-06T00:00:00Z".parse().unwrap(),
    };
    let soon: Timestamp = "2026-03-05T14:00:00Z".parse().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    // Nine of ten fetches made: the planned time stands.
    assert_eq!(
        within_daily_cap(&limits(Some(10)), 9, &day, soon, &mut rng),
        soon
    );
    // The tenth made: nothing before the carrier's next day, however the jitter falls.
    for _ in 0..200 {
        let capped = within_daily_cap(&limits(Some(10)), 10, &day, soon, &mut rng);
        assert!(capped >= day.resets_at, "{capped}");
        assert!(capped <= day.resets_at + SignedDuration::from_mins(15));
    }
    // A carrier without a cap is not held back.
    assert_eq!(
        within_daily_cap(&limits(None), 50, &day, soon, &mut rng),
        soon
    );
}

#[test]
fn fetches_are_counted_per_carrier_day() {
    let day = QuotaDay {
        day: "2026-03-05".into(),
        resets_at: "2026-03-06T00:00:00Z".parse().unwrap(),
    };
    assert_eq!(fetches_today(&day, Some("2026-03-05"), 4), 5);
    assert_eq!(fetches_today(&day, Some("2026-03-04"), 9), 1, "a new day");
    assert_eq!(fetches_today(&day, None, 0), 1);
}

#[test]
fn jitter_stays_within_its_percentage() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..200 {
        let d = jittered(100, 10, &mut rng).as_secs_f64();
        assert!((5400.0..=6600.0).contains(&d), "{d}");
    }
}

#[test]
fn backoff_doubles_up_to_the_cap_and_spreads_out() {
    let c = cadence();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let minutes =
        |failures, rng: &mut rand::rngs::StdRng| backoff(&c, failures, rng).as_secs() / 60;
    assert!((4..=5).contains(&minutes(0, &mut rng)));
    assert!((36..=44).contains(&minutes(3, &mut rng)));
    assert!((324..=396).contains(&minutes(30, &mut rng)));
    // Shipments that failed together come back at different times.
    let spread: std::collections::HashSet<i64> = (0..20)
        .map(|_| backoff(&c, 3, &mut rng).as_secs())
        .collect();
    assert!(spread.len() > 10, "{spread:?}");
}

#[test]
fn sundays_and_holidays_are_no_delivery_days_unless_the_carrier_says_so() {
    let c = cadence();
    assert!(
        !is_delivery_day(&c, date(2026, 3, 8), |_| false),
        "a Sunday"
    );
    assert!(
        is_delivery_day(&c, date(2026, 3, 7), |_| false),
        "a Saturday"
    );
    assert!(!is_delivery_day(&c, date(2026, 3, 6), |d| d == date(2026, 3, 6)));
    // A carrier that delivers every day of the year.
    let every_day = Cadence {
        delivery_days: jiff::civil::Weekday::Monday
            .cycle_forward()
            .take(7)
            .collect(),
        no_deliveries_on_holidays: false,
        ..cadence()
    };
    assert!(is_delivery_day(&every_day, date(2026, 3, 8), |_| true));
}

#[test]
fn at_a_pickup_point_the_parcel_is_polled_rarely_but_when_the_reminder_is_due() {
    let thursday = date(2026, 3, 5);
    let waiting = journey(Status::AvailableForPickup);
    let zone = berlin();
    let now = at(thursday, 18, 0);
    let moment = |reminder| Moment {
        journey: &waiting,
        expected: None,
        zone: &zone,
        delivery_day: &weekdays_and_saturdays,
        pickup_reminder_at: reminder,
        abroad: false,
        now,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let gap = minutes_between(
        now,
        next_poll_at(&cadence(), &moment(None), &mut rng).unwrap(),
    );
    assert!((648..=792).contains(&gap), "{gap}");
    // The reminder is due in three hours: the poll comes then, so it goes out on time.
    let reminder = now + SignedDuration::from_hours(3);
    let next = next_poll_at(&cadence(), &moment(Some(reminder)), &mut rng).unwrap();
    assert_eq!(next, reminder);
    assert_eq!(moment(None).phase(), Phase::AtPickupPoint);
}

#[test]
fn a_parcel_still_abroad_is_polled_at_the_waiting_rate_for_customs_news() {
    let monday = date(2026, 3, 2);
    let zone = berlin();
    let moving = journey(Status::InTransit);
    let now = at(monday, 12, 0);
    let gap = |abroad| {
        let moment = Moment {
            journey: &moving,
            expected: Some(DeliveryWindow::on(date(2026, 3, 9))),
            zone: &zone,
            delivery_day: &weekdays_and_saturdays,
            pickup_reminder_at: None,
            abroad,
            now,
        };
        let next = next_poll_at(
            &cadence(),
            &moment,
            &mut rand::rngs::StdRng::seed_from_u64(2),
        );
        minutes_between(now, next.unwrap())
    };
    assert!((216..=264).contains(&gap(true)), "{}", gap(true));
    assert!(gap(false) >= 1296, "{}", gap(false));
}

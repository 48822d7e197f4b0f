//! Quiet hours: an email due while the customer's night (here: a window around "now" in their
//! zone) waits for the window's end; a customer in another zone is not kept waiting.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use waymark::carriers::sandbox::Scenario;
use waymark::config::QuietHoursConfig;
use waymark::domain::NotificationState;

use crate::helpers::{by_shipment, sandbox_shipment, spawn_app, spawn_app_with};

/// The next instant after `now` that the wall clock in `zone` shows `end`.
fn next_wall_clock(now: Timestamp, zone: &TimeZone, end: Time) -> anyhow::Result<Timestamp> {
    let local = now.to_zoned(zone.clone());
    let today = local
        .date()
        .to_datetime(end)
        .to_zoned(zone.clone())?
        .timestamp();
    if today > now {
        return Ok(today);
    }
    let tomorrow = local.date().tomorrow()?;
    Ok(tomorrow
        .to_datetime(end)
        .to_zoned(zone.clone())?
        .timestamp())
}

#[tokio::test]
async fn an_email_due_in_the_customers_quiet_hours_waits_for_their_end() -> anyhow::Result<()> {
    // Slower than the other tests: the quiet window must outlast a dispatcher round by far.
    let app = spawn_app_with(|config| config.clock.acceleration = 20_000.0).await?;
    let mut sleeper = sandbox_shipment(
        Scenario::OnTime,
        1,
        "jonas.becker@example.de",
        "Jonas Becker",
        "de",
        "DE",
    );
    sleeper.time_zone = Some("Europe/Berlin".into());
    let sleeper = app.register(&sleeper).await?;
    let mut awake = sandbox_shipment(
        Scenario::OnTime,
        2,
        "ava.miller@example.com",
        "Ava Miller",
        "en",
        "US",
    );
    awake.time_zone = Some("America/New_York".into());
    let awake = app.register(&awake).await?;

    // Both parcels are picked up; their "shipped" emails wait in the outbox.
    let store = app.waymark.store.clone();
    app.poll_until("both shipped emails to be queued", async |_| {
        Ok(!store.notifications(sleeper.id).await?.is_empty()
            && !store.notifications(awake.id).await?.is_empty())
    })
    .await?;

    // Quiet hours from an hour ago until eight hours from now, on Berlin's wall clock; in New
    // York (six hours behind) it is outside that window.
    let berlin = TimeZone::get("Europe/Berlin")?;
    let now = app.now();
    let local = now.to_zoned(berlin.clone()).time();
    let minute = Time::new(local.hour(), local.minute(), 0, 0)?;
    let start = minute.wrapping_sub(SignedDuration::from_hours(1));
    let end = minute.wrapping_add(SignedDuration::from_hours(8));
    let window_end = next_wall_clock(now, &berlin, end)?;
    let mut quiet = app.waymark.clone();
    quiet.config.quiet_hours = QuietHoursConfig {
        enabled: true,
        start: start.strftime("%H:%M").to_string(),
        end: end.strftime("%H:%M").to_string(),
    };
    let dispatcher = quiet.dispatcher()?;

    let round = dispatcher.run_once().await?;
    assert_eq!((round.deferred, round.sent), (1, 1), "{round:?}");
    let held = app.notifications(sleeper.id).await?.remove(0);
    assert_eq!(held.state, NotificationState::Pending, "{held:?}");
    assert_eq!(held.attempts, 0, "deferring is not an attempt: {held:?}");
    assert_eq!(
        held.available_at, window_end,
        "waits exactly until the window ends"
    );
    let emails = app.smtp.emails()?;
    let groups = by_shipment(&emails);
    assert!(
        !groups.contains_key(&sleeper.id.to_string()),
        "sent in quiet hours"
    );
    assert_eq!(
        groups[&awake.id.to_string()].len(),
        1,
        "the New York customer waited"
    );

    // Once the simulated clock passes the window's end, the email goes out.
    let id = sleeper.id;
    app.turn_until("the held email to go out", Some(&dispatcher), async |_| {
        let messages = store.notifications(id).await?;
        Ok(messages[0].state != NotificationState::Pending)
    })
    .await?;
    let sent = app.notifications(sleeper.id).await?.remove(0);
    assert_eq!(sent.state, NotificationState::Sent, "{sent:?}");
    assert_eq!(sent.attempts, 1);
    assert!(
        sent.sent_at >= Some(window_end),
        "{sent:?} before {window_end}"
    );
    let emails = app.smtp.emails()?;
    let groups = by_shipment(&emails);
    let email = &groups[&sleeper.id.to_string()][0];
    assert_eq!(email.trigger(), "shipped");
    // The Date header is the (simulated) moment it left: after the window, on Berlin's clock.
    let date = email.date().expect("a Date header");
    assert!(
        date >= Timestamp::from_second(window_end.as_second())?,
        "dated {date}, the window ended {window_end}"
    );
    Ok(())
}

#[tokio::test]
async fn a_west_coast_customer_is_not_woken_on_new_yorks_clock() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    // Neither names a time zone: their ZIP codes place them.
    let mut west = sandbox_shipment(
        Scenario::OnTime,
        3,
        "olivia.chen@example.com",
        "Olivia Chen",
        "en",
        "US",
    );
    west.destination_postal_code = Some("94105".into());
    let west = app.register(&west).await?;
    assert_eq!(west.customer.time_zone.as_str(), "America/Los_Angeles");
    let mut east = sandbox_shipment(
        Scenario::OnTime,
        4,
        "ava.miller@example.com",
        "Ava Miller",
        "en",
        "US",
    );
    east.destination_postal_code = Some("10001".into());
    let east = app.register(&east).await?;
    assert_eq!(east.customer.time_zone.as_str(), "America/New_York");

    // Poll, sending nothing, until both "shipped" emails wait in the outbox. (The driver's own
    // loop would stop the clock at the first email waiting to be sent.)
    let mut polls = 0;
    while app.notifications(west.id).await?.is_empty()
        || app.notifications(east.id).await?.is_empty()
    {
        polls += 1;
        anyhow::ensure!(polls <= 1_000, "no shipped emails after {polls} polls");
        app.scheduler.run_once().await?;
        if let Some(next) = app.store().next_poll_at().await? {
            app.waymark.clock.advance_to(next.max(app.now()));
        }
    }

    // 06:00 in San Francisco is 09:00 in New York: night for one customer, morning for the other.
    let pacific = TimeZone::get("America/Los_Angeles")?;
    let six = next_wall_clock(app.now(), &pacific, Time::new(6, 0, 0, 0)?)?;
    let eight = next_wall_clock(six, &pacific, Time::new(8, 0, 0, 0)?)?;
    app.waymark.clock.advance_to(six);
    let mut quiet = app.waymark.clone();
    quiet.config.quiet_hours = QuietHoursConfig {
        enabled: true,
        start: "21:00".into(),
        end: "08:00".into(),
    };
    let round = quiet.dispatcher()?.run_once().await?;
    assert_eq!((round.deferred, round.sent), (1, 1), "{round:?}");

    let held = app.notifications(west.id).await?.remove(0);
    assert_eq!(held.state, NotificationState::Pending, "{held:?}");
    assert_eq!(held.available_at, eight, "waits for 08:00 Pacific time");
    let emails = app.smtp.emails()?;
    let groups = by_shipment(&emails);
    assert!(
        !groups.contains_key(&west.id.to_string()),
        "emailed at 06:00 in San Francisco"
    );
    assert_eq!(groups[&east.id.to_string()].len(), 1, "New York waited");
    Ok(())
}

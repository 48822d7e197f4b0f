//! A carrier that answers garbage for one parcel: the error is recorded on that shipment, the
//! parcel keeps being asked about (backing off), the rest of the batch moves on, and once the
//! carrier recovers the journey completes as if nothing happened.

use waymark::carriers::sandbox::{BROKEN_FOR_HOURS, Scenario};
use waymark::domain::{NotificationState, Status};

use crate::helpers::{by_shipment, expected_triggers, sandbox_shipment, spawn_app, states};

#[tokio::test]
async fn an_unreadable_answer_is_recorded_retried_and_outlived() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let broken = app
        .register(&sandbox_shipment(
            Scenario::Broken,
            1,
            "emma.clarke@example.com",
            "Emma Clarke",
            "en",
            "GB",
        ))
        .await?;
    let healthy = app
        .register(&sandbox_shipment(
            Scenario::OnTime,
            2,
            "jonas.becker@example.de",
            "Jonas Becker",
            "de",
            "DE",
        ))
        .await?;

    // The first round asks about both in one batch: one answer is garbage, the other is fine.
    let round = app.scheduler.run_once().await?;
    assert_eq!((round.polled, round.failed), (1, 1), "{round:?}");
    let failing = app.shipment(broken.id).await?;
    let error = failing.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("unreadable answer") && error.contains("JSON"),
        "last_error: `{error}`"
    );
    assert_eq!(failing.poll_failures, 1);
    assert!(failing.journey.active, "a failing parcel is still tracked");
    assert_eq!(failing.journey.status, Status::Pending);
    assert!(app.store().timeline(broken.id).await?.is_empty());
    let moving = app.shipment(healthy.id).await?;
    assert_eq!(moving.last_error, None);
    assert_eq!(moving.journey.status, Status::InfoReceived);
    assert!(!app.store().timeline(healthy.id).await?.is_empty());

    let poll_errors = async || -> anyhow::Result<Vec<(String, String)>> {
        Ok(app
            .store()
            .poll_errors(broken.id)
            .await?
            .into_iter()
            .map(|e| (e.kind, e.excerpt.unwrap_or_default()))
            .collect())
    };
    let recorded = poll_errors().await?;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].0, "malformed");
    assert!(
        recorded[0].1.contains(broken.tracking_number.as_str()),
        "the carrier's words are kept: {:?}",
        recorded[0].1
    );

    // Until the carrier recovers, the parcel is asked about again and again, backing off.
    let store = app.waymark.store.clone();
    let id = broken.id;
    app.drive_until("the broken parcel's first good answer", async |_| {
        Ok(store
            .shipment(id)
            .await?
            .is_some_and(|s| s.last_error.is_none()))
    })
    .await?;
    let recorded = poll_errors().await?;
    assert!(
        recorded.len() >= 3,
        "asked only {} times while broken",
        recorded.len()
    );
    assert!(
        recorded.iter().all(|(kind, _)| kind == "malformed"),
        "{recorded:?}"
    );
    let recovered = app.shipment(broken.id).await?;
    assert_eq!(recovered.poll_failures, 0);
    assert!(
        app.now().duration_since(broken.created_at).as_hours() >= BROKEN_FOR_HOURS,
        "recovered before the sandbox did"
    );

    app.run_until_done().await?;

    let emails = app.smtp.emails()?;
    let groups = by_shipment(&emails);
    for shipment in [&broken, &healthy] {
        let got: Vec<String> = groups[&shipment.id.to_string()]
            .iter()
            .map(|e| e.trigger())
            .collect();
        assert_eq!(
            got,
            expected_triggers(Scenario::OnTime),
            "{}",
            shipment.tracking_number
        );
        let messages = app.notifications(shipment.id).await?;
        assert!(
            states(&messages)
                .iter()
                .all(|s| *s == NotificationState::Sent)
        );
        let done = app.shipment(shipment.id).await?;
        assert_eq!(done.journey.status, Status::Delivered);
        assert_eq!(done.last_error, None);
    }
    Ok(())
}

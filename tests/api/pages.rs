//! The customer's side over HTTP, on a real socket: the tracking page every email links to,
//! one-click unsubscribe (RFC 8058) and the health check.

use waymark::carriers::sandbox::Scenario;

use crate::helpers::{sandbox_shipment, spawn_app};

#[tokio::test]
async fn the_tracking_page_and_one_click_unsubscribe_work_over_http() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let shipment = app
        .register(&sandbox_shipment(
            Scenario::OnTime,
            1,
            "lena.vogel@example.de",
            "Lena Vogel",
            "de",
            "DE",
        ))
        .await?;
    app.run_until_done().await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(waymark::http::serve(
        listener,
        app.waymark.http_state(),
        stop.clone(),
    ));
    let client = reqwest::Client::new();

    let health: serde_json::Value = client
        .get(format!("{base}/health"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["active_shipments"], 0);

    // The page speaks the customer's language, shows the journey, and nothing personal.
    let page = client
        .get(format!("{base}/t/{}", shipment.public_token))
        .send()
        .await?;
    assert_eq!(page.status(), 200);
    let html = page.text().await?;
    assert!(html.contains(r#"<html lang="de">"#), "{html}");
    assert!(html.contains("Ihre Sendung"), "{html}");
    assert!(html.contains("Zugestellt"), "{html}");
    assert!(html.contains("Sendungsverlauf"), "{html}");
    assert!(html.contains(shipment.tracking_number.as_str()));
    assert!(html.contains("WM-1001"), "the order reference is shown");
    assert!(
        !html.contains("lena.vogel@example.de") && !html.contains("Lena Vogel"),
        "the page must not show who the parcel is for"
    );

    let unknown = client.get(format!("{base}/t/not-a-token")).send().await?;
    assert_eq!(unknown.status(), 404);

    // A person clicking the link gets a button; a mail client's one-click POST mutes at once.
    let confirm = client
        .get(format!("{base}/u/{}", shipment.public_token))
        .send()
        .await?
        .text()
        .await?;
    assert!(confirm.contains(r#"<form method="post">"#), "{confirm}");
    assert!(!app.shipment(shipment.id).await?.muted);
    let one_click = client
        .post(format!("{base}/u/{}", shipment.public_token))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await?;
    assert_eq!(one_click.status(), 200);
    assert!(app.shipment(shipment.id).await?.muted);
    let after = client
        .get(format!("{base}/t/{}", shipment.public_token))
        .send()
        .await?
        .text()
        .await?;
    assert!(after.contains("Sie erhalten keine E-Mails mehr"), "{after}");

    stop.cancel();
    server.await??;
    Ok(())
}

//! The customer's side end to end in a real browser: Debian's headless Chromium, driven over
//! WebDriver (chromedriver) with fantoccini. The customer opens the tracking link from an email
//! that reached the test SMTP server, unlocks the page with the postal code, asks for a neighbour
//! delivery, types the code from the second email and sees the sandbox deliver to the neighbour;
//! a second customer types five wrong codes and is locked out. Every page visited is saved as a
//! screenshot under `target/screenshots/`.

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use waymark::domain::{Reason, Status};

use crate::helpers::{Email, TestApp, code_in, serve_http_on, spawn_app_with};

/// chromedriver, started on a free port and stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> anyhow::Result<Driver> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let binary = std::env::var("WAYMARK_TEST_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("starting {binary} (Debian's chromium-driver; scripts/test.sh installs it)")
            })?;
        Ok(Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// A headless Chromium with a phone's screen, once chromedriver answers.
    async fn browser(&self) -> anyhow::Result<Client> {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": std::env::var("WAYMARK_TEST_CHROMIUM")
                    .unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=412,1400"],
            }),
        );
        let started = std::time::Instant::now();
        loop {
            // chromedriver speaks plain HTTP on the loopback: no TLS.
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&self.url)
                .await
            {
                Ok(client) => return Ok(client),
                Err(error) if started.elapsed() < Duration::from_secs(20) => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => bail!(
                    "chromedriver at {} did not start Chromium: {error}",
                    self.url
                ),
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where screenshots go: `target/screenshots/` of the build's target directory.
fn screenshot_dir() -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The browser and the name of the run, for its screenshots.
struct Visit {
    browser: Client,
    run: &'static str,
    shots: usize,
}

impl Visit {
    /// Save what the browser shows now as `<run>-<n>-<what>.png`.
    async fn shoot(&mut self, what: &str) -> anyhow::Result<()> {
        self.shots += 1;
        let png = self.browser.screenshot().await?;
        let path = screenshot_dir()?.join(format!("{}-{:02}-{what}.png", self.run, self.shots));
        std::fs::write(&path, png).with_context(|| path.display().to_string())?;
        Ok(())
    }

    async fn text(&self) -> anyhow::Result<String> {
        Ok(self
            .browser
            .find(Locator::Css("main"))
            .await?
            .text()
            .await?)
    }

    async fn fill(&self, css: &str, value: &str) -> anyhow::Result<()> {
        let field = self.browser.find(Locator::Css(css)).await?;
        field.clear().await?;
        field.send_keys(value).await?;
        Ok(())
    }

    async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.browser.find(Locator::Css(css)).await?.click().await?;
        Ok(())
    }

    /// Unlock the tracking page with the postal code and ask for a neighbour delivery.
    async fn ask_for_neighbour(&mut self) -> anyhow::Result<()> {
        self.shoot("tracking-page-locked").await?;
        let locked = self.text().await?;
        assert!(
            !locked.contains("Lena Vogel"),
            "the name is behind the gate"
        );
        self.fill("#postal_code", "10115").await?;
        self.click("#unlock button").await?;
        self.shoot("tracking-page-unlocked").await?;
        assert!(self.text().await?.contains("Change the delivery"));
        self.fill("#neighbour_name", "Jan Kowalski").await?;
        self.fill("#house_number", "14").await?;
        self.click("#change-neighbour button").await?;
        self.shoot("code-requested").await?;
        let page = self.text().await?;
        assert!(page.contains("We emailed a 6-digit code to"), "{page}");
        Ok(())
    }

    async fn enter_code(&mut self, code: &str, what: &str) -> anyhow::Result<String> {
        self.fill("#code", code).await?;
        self.click("#verify button").await?;
        self.shoot(what).await?;
        self.text().await
    }
}

/// The first link to the tracking page in an email's text part.
fn tracking_link(email: &Email) -> String {
    email
        .text()
        .split_whitespace()
        .find(|word| word.contains("/t/"))
        .map(|link| link.trim_end_matches(['.', ',', ')']).to_owned())
        .expect("the email links to the tracking page")
}

/// An app whose links point at its own HTTP side, one on-time parcel to Berlin 10115 on its way,
/// and its "shipped" email in the mailbox.
async fn parcel_on_its_way(
    seq: u32,
) -> anyhow::Result<(TestApp, waymark::domain::Shipment, String, Stop)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let public = base.clone();
    let app = spawn_app_with(move |config| config.public_url = public).await?;
    let shipment = crate::delivery_changes::moving_parcel(&app, seq).await?;
    let smtp = &app.smtp;
    app.drive_until("the shipped email", async |_| {
        Ok(smtp.emails()?.iter().any(|e| e.trigger() == "shipped"))
    })
    .await?;
    let (_, stop, server) = serve_http_on(&app, listener).await?;
    Ok((app, shipment, base, Stop(stop, server)))
}

/// Stops the HTTP side when the test is done.
struct Stop(tokio_util::sync::CancellationToken, crate::helpers::Server);

impl Stop {
    async fn now(self) -> anyhow::Result<()> {
        self.0.cancel();
        self.1.await??;
        Ok(())
    }
}

#[tokio::test]
async fn a_customer_changes_the_delivery_to_a_neighbour_in_a_real_browser() -> anyhow::Result<()> {
    let (app, shipment, base, server) = parcel_on_its_way(1).await?;
    let driver = Driver::start()?;
    let mut visit = Visit {
        browser: driver.browser().await?,
        run: "neighbour",
        shots: 0,
    };

    let emails = app.smtp.emails()?;
    let shipped = emails.iter().find(|e| e.trigger() == "shipped").unwrap();
    let link = tracking_link(shipped);
    assert!(link.starts_with(&base), "{link}");
    visit.browser.goto(&link).await?;
    visit.ask_for_neighbour().await?;

    let code = code_in(&app.smtp.emails()?);
    let done = visit.enter_code(&code, "change-confirmed").await?;
    assert!(
        done.contains("the carrier has your new instruction"),
        "{done}"
    );

    // The sandbox delivers to the neighbour; the page says so.
    app.run_until_done().await?;
    let ended = app.shipment(shipment.id).await?;
    assert_eq!(ended.journey.status, Status::Delivered);
    assert_eq!(ended.journey.reason, Some(Reason::DeliveredToNeighbour));
    visit.browser.goto(&link).await?;
    visit.shoot("delivered-to-neighbour").await?;
    let page = visit.text().await?;
    assert!(
        page.contains("Delivered to a neighbour at no. 14"),
        "{page}"
    );
    let confirmation = app
        .smtp
        .emails()?
        .into_iter()
        .find(|e| e.trigger() == "delivery_changed")
        .expect("the confirmation email");
    assert!(confirmation.text().contains("Jan Kowalski"));

    visit.browser.close().await?;
    server.now().await
}

#[tokio::test]
async fn five_wrong_codes_in_a_real_browser_lock_the_request() -> anyhow::Result<()> {
    let (app, shipment, _base, server) = parcel_on_its_way(2).await?;
    let driver = Driver::start()?;
    let mut visit = Visit {
        browser: driver.browser().await?,
        run: "locked",
        shots: 0,
    };
    let emails = app.smtp.emails()?;
    let link = tracking_link(emails.iter().find(|e| e.trigger() == "shipped").unwrap());
    visit.browser.goto(&link).await?;
    visit.ask_for_neighbour().await?;
    let code = code_in(&app.smtp.emails()?);
    let wrong = crate::delivery_changes::wrong(&code);
    for attempt in 1..=4 {
        let page = visit
            .enter_code(&wrong, &format!("wrong-code-{attempt}"))
            .await?;
        assert!(
            page.contains(&format!("Tries left: {}", 5 - attempt)),
            "{page}"
        );
    }
    let page = visit.enter_code(&wrong, "locked").await?;
    assert!(page.contains("Locked after too many wrong codes"), "{page}");
    assert!(visit.browser.find(Locator::Css("#code")).await.is_err());

    app.run_until_done().await?;
    let ended = app.shipment(shipment.id).await?;
    assert_ne!(ended.journey.reason, Some(Reason::DeliveredToNeighbour));
    visit.browser.close().await?;
    server.now().await
}

//! `waymark demo`: every sandbox journey, for customers writing in English, German and Polish,
//! played out on an accelerated clock. The emails land in `./outbox/` with an `INDEX.md` that
//! lists each customer's messages in order.

use anyhow::{Context, bail};
use clap::Args;
use jiff::ToSpan;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::app::Waymark;
use crate::carriers::sandbox::Scenario;
use crate::config::{Config, EmailTransport};
use crate::domain::{NotificationState, Shipment};
use crate::intake::{self, ShipmentInput};
use crate::store;

/// Options of `waymark demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Simulated seconds per real second (20000: a week in about half a minute).
    #[arg(long, default_value_t = 20_000.0)]
    pub acceleration: f64,
    /// Give up after this many real seconds.
    #[arg(long, default_value_t = 240)]
    pub timeout_seconds: u64,
    /// Afterwards, leave one more parcel whose delivery can still be changed, serve its
    /// tracking page on `public_url` and print the link; runs until it is delivered.
    #[arg(long)]
    pub changeable: bool,
    /// Simulated seconds per real second while the changeable parcel travels (300: its three
    /// days take about a quarter of an hour, about twelve minutes of which it can be changed).
    #[arg(long, default_value_t = 300.0, requires = "changeable")]
    pub changeable_acceleration: f64,
}

/// One of the demo's customers.
struct Customer {
    locale: &'static str,
    name: &'static str,
    email: &'static str,
    country: &'static str,
    zone: &'static str,
    /// What unlocks their tracking pages.
    postal_code: &'static str,
}

/// The demo's customers: one per language, each in their own country and zone.
const CUSTOMERS: [Customer; 3] = [
    Customer {
        locale: "en",
        name: "Emma Clarke",
        email: "emma.clarke@example.com",
        country: "GB",
        zone: "Europe/London",
        postal_code: "SW1A 1AA",
    },
    Customer {
        locale: "de",
        name: "Jonas Becker",
        email: "jonas.becker@example.de",
        country: "DE",
        zone: "Europe/Berlin",
        postal_code: "10115",
    },
    Customer {
        locale: "pl",
        name: "Zofia Nowak",
        email: "zofia.nowak@example.pl",
        country: "PL",
        zone: "Europe/Warsaw",
        postal_code: "00-950",
    },
];

/// The settings key that marks a database as the demo's own (and so safe to start afresh).
const DEMO_MARK: &str = "demo";

/// Run the demo.
pub async fn run(config_file: &Path, args: &DemoArgs) -> anyhow::Result<()> {
    let mut defaults = Config::default();
    defaults.clock.acceleration = args.acceleration;
    defaults.email.transport = EmailTransport::File;
    defaults.scheduler.max_idle_seconds = 1;
    defaults.dispatcher.max_idle_seconds = 1;
    defaults.dispatcher.retry_base_seconds = 1;
    // The demo only writes emails; `waymark serve` shows their tracking pages afterwards.
    defaults.http.enabled = false;
    let config = Config::load_over(defaults, config_file)?;
    start_afresh(&config).await?;

    let waymark = Waymark::start(config).await?;
    waymark.store.setting_or_insert(DEMO_MARK, "true").await?;
    let outbox = waymark.config.email.file_dir.clone();

    let shipments = register(&waymark).await?;
    println!(
        "Registered {} sandbox shipments ({} journeys × en/de/pl); the clock runs {}× fast.",
        shipments.len(),
        Scenario::JOURNEYS.len(),
        waymark.clock.acceleration()
    );

    let shutdown = CancellationToken::new();
    let runner = {
        let waymark = waymark.clone();
        let token = shutdown.clone();
        tokio::spawn(async move { waymark.run(token).await })
    };
    let started = Instant::now();
    let mut last_report = Instant::now();
    let finished = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let backlog = waymark.store.backlog().await?;
        if backlog.active_shipments == 0 && backlog.unsent_notifications == 0 {
            break true;
        }
        if started.elapsed() > Duration::from_secs(args.timeout_seconds) {
            break false;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            println!(
                "  simulated time {}: {} parcels still travelling, {} messages waiting",
                waymark.clock.now().strftime("%a %d %b %H:%M UTC"),
                backlog.active_shipments,
                backlog.unsent_notifications
            );
        }
    };
    shutdown.cancel();
    runner
        .await
        .context("the demo's workers stopped abnormally")??;

    let index = write_index(&waymark, &shipments, &outbox).await?;
    println!(
        "{} in {:.0?}. The emails are in {}/ — start with {}",
        if finished {
            "Every journey is complete"
        } else {
            "Stopped at the time limit"
        },
        started.elapsed(),
        outbox.display(),
        index.display()
    );
    if !finished {
        bail!("the demo did not finish within {} s", args.timeout_seconds);
    }
    if args.changeable {
        changeable(&waymark.config, args).await?;
    }
    Ok(())
}

/// Remove a previous demo's database and emails; refuse to touch a database the demo did not
/// create.
async fn start_afresh(config: &Config) -> anyhow::Result<()> {
    let url = &config.database_url;
    if store::exists(url).await? {
        let old = store::connect(url, crate::app::open_vault(config)?).await?;
        let is_demo = old.setting(DEMO_MARK).await.ok().flatten().is_some();
        drop(old);
        if !is_demo {
            bail!(
                "{url} holds data that the demo did not create; move it away or point \
                 WAYMARK_DATABASE_URL elsewhere before running the demo"
            );
        }
        store::remove_database(url)
            .await
            .with_context(|| format!("removing the previous demo's database {url}"))?;
    }
    let outbox = &config.email.file_dir;
    if outbox.is_dir() {
        for entry in std::fs::read_dir(outbox)? {
            let path = entry?.path();
            let ours = path.extension().is_some_and(|e| e == "eml")
                || path.file_name().is_some_and(|n| n == "INDEX.md");
            if ours {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    Ok(())
}

async fn register(waymark: &Waymark) -> anyhow::Result<Vec<(Scenario, Shipment)>> {
    let mut shipments = Vec::new();
    let mut seq = 0;
    for scenario in Scenario::JOURNEYS {
        for customer in &CUSTOMERS {
            seq += 1;
            let shipment = register_one(waymark, scenario, seq, customer).await?;
            shipments.push((scenario, shipment));
        }
    }
    Ok(shipments)
}

/// Register sandbox parcel `seq` playing `scenario` for `customer`, promised in four days.
async fn register_one(
    waymark: &Waymark,
    scenario: Scenario,
    seq: u32,
    customer: &Customer,
) -> anyhow::Result<Shipment> {
    let now = waymark.clock.now();
    let today = now.to_zoned(jiff::tz::TimeZone::get(customer.zone)?).date();
    let promise = today.checked_add(4.days())?;
    let input = ShipmentInput {
        carrier: "sandbox".into(),
        tracking_number: scenario.example_number(seq).to_string(),
        customer_email: customer.email.into(),
        customer_name: Some(customer.name.into()),
        locale: Some(customer.locale.into()),
        time_zone: Some(customer.zone.into()),
        destination_country: customer.country.into(),
        destination_postal_code: Some(customer.postal_code.into()),
        order_reference: Some(format!("WM-{}", 1000 + seq)),
        promise: Some(promise.to_string()),
        ..ShipmentInput::default()
    };
    Ok(intake::register(
        waymark.store.as_ref(),
        &waymark.carriers,
        crate::domain::MerchantId::DEFAULT,
        &input,
        now,
    )
    .await?)
}

/// The number of the parcel `--changeable` leaves.
const CHANGEABLE_SEQ: u32 = 900;

/// `--changeable`: one more on-time parcel, to Jonas Becker in Berlin but with English pages,
/// on a slower clock and with the tracking pages served, until it is delivered.
async fn changeable(config: &Config, args: &DemoArgs) -> anyhow::Result<()> {
    let mut config = config.clone();
    config.http.enabled = true;
    let clock =
        crate::clock::Clock::accelerated(args.changeable_acceleration, jiff::Timestamp::now());
    let waymark = Waymark::start_with_clock(config, Some(clock)).await?;
    let customer = Customer {
        locale: "en",
        ..CUSTOMERS[1]
    };
    let shipment = register_one(&waymark, Scenario::OnTime, CHANGEABLE_SEQ, &customer).await?;
    let token = waymark
        .links
        .token(crate::links::LinkPurpose::Tracking, shipment.id);
    let link = format!(
        "{}/t/{token}",
        waymark.config.public_url.trim_end_matches('/')
    );
    let shutdown = CancellationToken::new();
    let runner = {
        let waymark = waymark.clone();
        let token = shutdown.clone();
        tokio::spawn(async move { waymark.run(token).await })
    };
    println!(
        "\nOne more parcel is on its way, and its delivery can still be changed:\n\n    {link}\n\n\
         Open it, enter the postal code {postal}, and choose a change (a neighbour, a safe place, \
         another day, a pickup point).\nThe code to confirm it arrives as the newest email in {outbox}/. \
         The parcel travels {acc}× fast: it can be changed for about ten minutes,\nand the demo \
         serves its page until it is delivered (Ctrl-C stops it sooner).",
        postal = customer.postal_code,
        outbox = waymark.config.email.file_dir.display(),
        acc = args.changeable_acceleration,
    );
    let stopped = tokio::signal::ctrl_c();
    tokio::pin!(stopped);
    let mut last = None;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        let now = waymark
            .store
            .shipment(shipment.id)
            .await?
            .context("the changeable parcel is stored")?;
        let changes = waymark.store.shipment_delivery_changes(shipment.id).await?;
        let state = (
            now.journey.status,
            now.journey.reason,
            changes.first().map(|c| c.state),
        );
        if last != Some(state) {
            last = Some(state);
            let change = changes
                .first()
                .map(|c| {
                    format!(
                        "; your change ({}): {}",
                        c.details.describe(),
                        c.state.as_str()
                    )
                })
                .unwrap_or_default();
            println!(
                "  {}: {}{}{change}",
                waymark.clock.now().strftime("%a %d %b %H:%M UTC"),
                now.journey.status.as_str().replace('_', " "),
                now.journey
                    .reason
                    .map(|r| format!(" ({})", r.as_str().replace('_', " ")))
                    .unwrap_or_default(),
            );
        }
        let backlog = waymark.store.backlog().await?;
        if !now.journey.active && backlog.unsent_notifications == 0 {
            println!("The parcel's journey is complete: reload {link} to see it.");
            break;
        }
    }
    shutdown.cancel();
    runner
        .await
        .context("the demo's workers stopped abnormally")??;
    Ok(())
}

async fn write_index(
    waymark: &Waymark,
    shipments: &[(Scenario, Shipment)],
    outbox: &Path,
) -> anyhow::Result<std::path::PathBuf> {
    let mut index = String::from(
        "# What Waymark's demo customers received\n\n\
         Each sandbox parcel below followed one journey; these are the emails its customer got, \
         in order. Open the `.eml` files with any mail program (or read them as text).\n",
    );
    for (scenario, shipment) in shipments {
        let _ = writeln!(
            index,
            "\n## {} ({}) — {:?} journey — {}\n",
            shipment.customer.name.as_deref().unwrap_or("customer"),
            shipment.customer.locale,
            scenario,
            shipment.tracking_number
        );
        let tz = shipment.customer.time_zone.time_zone();
        for message in waymark.store.notifications(shipment.id).await? {
            let when = message
                .sent_at
                .map(|t| {
                    t.to_zoned(tz.clone())
                        .strftime("%a %d %b %H:%M")
                        .to_string()
                })
                .unwrap_or_else(|| "-".into());
            let file = match message.state {
                NotificationState::Sent => message
                    .provider_response
                    .as_deref()
                    .map(|f| format!("[`{f}`]({f})"))
                    .unwrap_or_default(),
                other => format!("({})", other.as_str()),
            };
            let _ = writeln!(
                index,
                "{}. **{}** — {when} — {file} — {}",
                message.seq, message.trigger, message.reason
            );
        }
    }
    std::fs::create_dir_all(outbox)?;
    let path = outbox.join("INDEX.md");
    std::fs::write(&path, index).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

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
}

/// The demo's customers: one per language, each in their own country and zone.
const CUSTOMERS: [(&str, &str, &str, &str, &str); 3] = [
    (
        "en",
        "Emma Clarke",
        "emma.clarke@example.com",
        "GB",
        "Europe/London",
    ),
    (
        "de",
        "Jonas Becker",
        "jonas.becker@example.de",
        "DE",
        "Europe/Berlin",
    ),
    (
        "pl",
        "Zofia Nowak",
        "zofia.nowak@example.pl",
        "PL",
        "Europe/Warsaw",
    ),
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
    Ok(())
}

/// Remove a previous demo's database and emails; refuse to touch a database the demo did not
/// create.
async fn start_afresh(config: &Config) -> anyhow::Result<()> {
    let Some(path) = config
        .database_url
        .strip_prefix("sqlite://")
        .or_else(|| config.database_url.strip_prefix("sqlite:"))
        .map(|p| p.split('?').next().unwrap_or(p).to_owned())
    else {
        return Ok(());
    };
    if Path::new(&path).exists() {
        let old = store::connect(&config.database_url, crate::app::open_vault(config)?).await?;
        let is_demo = old.setting(DEMO_MARK).await.ok().flatten().is_some();
        drop(old);
        if !is_demo {
            bail!(
                "{path} holds data that the demo did not create; move it away or point \
                 WAYMARK_DATABASE_URL elsewhere before running the demo"
            );
        }
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{path}{suffix}");
            if Path::new(&file).exists() {
                std::fs::remove_file(&file).with_context(|| format!("removing {file}"))?;
            }
        }
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
        for (locale, name, email, country, zone) in CUSTOMERS {
            seq += 1;
            let now = waymark.clock.now();
            let today = now.to_zoned(jiff::tz::TimeZone::get(zone)?).date();
            let promise = today.checked_add(4.days())?;
            let input = ShipmentInput {
                carrier: "sandbox".into(),
                account: None,
                tracking_number: scenario.example_number(seq).to_string(),
                customer_email: email.into(),
                customer_name: Some(name.into()),
                customer_phone: None,
                locale: locale.into(),
                time_zone: Some(zone.into()),
                destination_country: country.into(),
                destination_postal_code: None,
                order_reference: Some(format!("WM-{}", 1000 + seq)),
                promise: Some(promise.to_string()),
                ..ShipmentInput::default()
            };
            let shipment = intake::register(
                waymark.store.as_ref(),
                &waymark.carriers,
                crate::domain::MerchantId::DEFAULT,
                &input,
                now,
            )
            .await?;
            shipments.push((scenario, shipment));
        }
    }
    Ok(shipments)
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

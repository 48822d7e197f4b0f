//! Throughput of Waymark's two loops on this machine:
//!
//! 1. polling: sandbox shipments registered ten days ago (so each poll brings a whole journey),
//!    polled once each by the real scheduler into a fresh SQLite file;
//! 2. sending: the emails those polls queued, rendered and sent by the real dispatcher over SMTP
//!    to a local SMTP server process (`tests/support/smtp_server.py`, started here).
//!
//! `cargo run --release --example bench -- --shipments 5000`

use anyhow::{Context, bail};
use clap::Parser;
use jiff::{SignedDuration, Timestamp};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use waymark::app::Waymark;
use waymark::carriers::sandbox::Scenario;
use waymark::config::{Config, EmailTransport};
use waymark::intake::{self, ShipmentInput};

#[derive(Parser)]
struct Args {
    /// Shipments to register and poll.
    #[arg(long, default_value_t = 2000)]
    shipments: u32,
    /// Dispatcher concurrency (SMTP connections in use).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Python with aiosmtpd for the local SMTP server.
    #[arg(long, default_value = "/usr/bin/python3")]
    python: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let mails = dir.path().join("received");
    std::fs::create_dir_all(&mails)?;
    let mut server = Command::new(&args.python)
        .arg("tests/support/smtp_server.py")
        .arg("0")
        .arg(&mails)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting tests/support/smtp_server.py (apt-get install python3-aiosmtpd)")?;
    let mut first = String::new();
    BufReader::new(server.stdout.take().context("server stdout")?).read_line(&mut first)?;
    let port: u16 = first
        .trim()
        .strip_prefix("PORT ")
        .context("server did not print its port")?
        .parse()?;

    let mut config = Config {
        database_url: format!("sqlite://{}", dir.path().join("bench.db").display()),
        ..Config::default()
    };
    config.quiet_hours.enabled = false;
    config.email.transport = EmailTransport::Smtp;
    config.email.smtp.host = "127.0.0.1".into();
    config.email.smtp.port = port;
    config.email.smtp.pool_size = args.concurrency as u32;
    config.dispatcher.concurrency = args.concurrency;
    config.dispatcher.claim_batch = 200;
    config.scheduler.claim_batch = 500;
    config.http.enabled = false;
    let waymark = Waymark::start(config).await?;

    let registered_at = Timestamp::now() - SignedDuration::from_hours(240);
    let started = Instant::now();
    for n in 0..args.shipments {
        let scenario = Scenario::JOURNEYS[n as usize % Scenario::JOURNEYS.len()];
        let input = ShipmentInput {
            carrier: "sandbox".into(),
            tracking_number: scenario.example_number(n).to_string(),
            customer_email: format!("customer{n}@example.com"),
            customer_name: Some(format!("Customer {n}")),
            customer_phone: None,
            locale: Some(["en", "de", "pl"][n as usize % 3].into()),
            destination_country: ["GB", "DE", "PL"][n as usize % 3].into(),
            ..ShipmentInput::default()
        };
        intake::register(
            waymark.store.as_ref(),
            &waymark.carriers,
            waymark::domain::MerchantId::DEFAULT,
            &input,
            registered_at,
        )
        .await?;
    }
    let registering = started.elapsed();

    let scheduler = waymark.scheduler();
    let started = Instant::now();
    let mut polled = 0;
    loop {
        let round = scheduler.run_once().await?;
        if round.polled + round.failed == 0 {
            break;
        }
        polled += round.polled + round.failed;
        if polled >= args.shipments as usize {
            break;
        }
    }
    let polling = started.elapsed();

    let dispatcher = waymark.dispatcher()?;
    let started = Instant::now();
    let mut sent = 0;
    loop {
        let round = dispatcher.run_once().await?;
        sent += round.sent;
        if !round.did_work() {
            break;
        }
    }
    let sending = started.elapsed();
    let received = std::fs::read_dir(&mails)?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .count();
    let _ = server.kill();
    if received != sent {
        bail!("sent {sent} emails but the server holds {received}");
    }

    println!(
        "shipments registered: {} in {:.2?} ({:.0}/s)",
        args.shipments,
        registering,
        f64::from(args.shipments) / registering.as_secs_f64()
    );
    println!(
        "shipments polled:     {polled} in {polling:.2?} ({:.0}/s)",
        polled as f64 / polling.as_secs_f64()
    );
    println!(
        "emails sent (SMTP):   {sent} in {sending:.2?} ({:.0}/s)",
        sent as f64 / sending.as_secs_f64()
    );
    Ok(())
}

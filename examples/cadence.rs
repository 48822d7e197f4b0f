//! What polling costs and what it buys: carrier calls per delivered shipment, and the delay
//! between an out-for-delivery or failed-attempt scan and the customer's email.
//!
//! Two runs, each on a simulated clock that jumps from one due poll or message to the next, with
//! the real scheduler and dispatcher (quiet hours off, emails written to files):
//!
//! 1. the sandbox carrier's journey mix, on its own cadence (`carriers/sandbox.toml`);
//! 2. DHL's adapter and cadence (`carriers/dhl.toml`, ten fetches per shipment a day) against a
//!    local stand-in for DHL's Unified Tracking API whose answer grows with the simulated clock:
//!    three-day journeys, and four-day ones with a failed attempt on the third day, the vans out
//!    between 07:10 and 09:30 local time and deliveries one to six hours later.
//!
//! `cargo run --release --example cadence -- --shipments 100`

use anyhow::Context;
use clap::Parser;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use waymark::app::Waymark;
use waymark::carriers::dhl::Dhl;
use waymark::carriers::sandbox::Scenario;
use waymark::carriers::transport::Transport;
use waymark::carriers::{
    Carrier, CarrierAccount, CarrierError, CarrierProfile, CarrierRegistry, ParcelResult,
    TrackRequest,
};
use waymark::clock::Clock;
use waymark::config::{Config, EmailTransport};
use waymark::domain::{CarrierCode, Status, Trigger};
use waymark::intake::{self, ShipmentInput};

#[derive(Parser)]
struct Args {
    /// Shipments per sandbox journey, and per DHL journey kind.
    #[arg(long, default_value_t = 100)]
    shipments: u32,
    /// Seed for the DHL stand-in's scan times.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// A carrier that counts the calls made for each tracking number.
struct Counting {
    inner: Arc<dyn Carrier>,
    calls: Mutex<HashMap<String, u32>>,
}

#[async_trait::async_trait]
impl Carrier for Counting {
    fn profile(&self) -> &CarrierProfile {
        self.inner.profile()
    }

    async fn track(
        &self,
        account: &CarrierAccount,
        batch: &[TrackRequest],
    ) -> Result<Vec<ParcelResult>, CarrierError> {
        {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            for request in batch {
                *calls
                    .entry(request.tracking_number.to_string())
                    .or_default() += 1;
            }
        }
        self.inner.track(account, batch).await
    }
}

/// What one run measured, per journey kind.
#[derive(Default)]
struct Kind {
    shipments: u32,
    delivered: u32,
    /// Calls for each delivered shipment.
    calls_delivered: Vec<u32>,
    /// Calls for each shipment that did not end delivered (lost, returned, still going).
    calls_other: Vec<u32>,
    /// Minutes from the out-for-delivery scan to its email being sent.
    out_for_delivery: Vec<f64>,
    /// Minutes from the failed-attempt scan to its email being sent.
    attempt_failed: Vec<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!("# Polling cadence: calls per shipment and scan-to-email delay\n");
    println!(
        "{} shipments per journey, simulated from Tuesday 2026-03-03 08:00 Berlin time.\n",
        args.shipments
    );
    let sandbox = run_sandbox(&args).await?;
    report("Sandbox journeys, sandbox cadence", &sandbox);
    let dhl = run_dhl(&args).await?;
    report(
        "DHL stand-in, DHL cadence (10 fetches per shipment a day)",
        &dhl,
    );
    Ok(())
}

/// The instant the runs start: a Tuesday morning in Berlin, so that no sandbox journey ends on
/// a Sunday (the sandbox counts calendar days; vans do not run on Sundays).
fn start() -> Timestamp {
    "2026-03-03T08:00:00+01:00[Europe/Berlin]"
        .parse::<jiff::Zoned>()
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

fn config(dir: &std::path::Path) -> Config {
    let mut config = Config {
        database_url: format!("sqlite://{}", dir.join("cadence.db").display()),
        ..Config::default()
    };
    config.quiet_hours.enabled = false;
    config.email.transport = EmailTransport::File;
    config.email.file_dir = dir.join("outbox");
    config.http.enabled = false;
    config.scheduler.claim_batch = 1000;
    config.dispatcher.claim_batch = 1000;
    config
}

/// Register shipments (each at its own time: its first poll is due then), then turn both loops
/// from one due time to the next until every journey is over or `days` have passed.
async fn play(
    waymark: &Waymark,
    clock: &Clock,
    shipments: &[(String, ShipmentInput, Timestamp)],
    days: i64,
) -> anyhow::Result<()> {
    for (_, input, registered_at) in shipments {
        intake::register(
            waymark.store.as_ref(),
            &waymark.carriers,
            waymark::domain::MerchantId::DEFAULT,
            input,
            *registered_at,
        )
        .await
        .with_context(|| format!("registering {}", input.tracking_number))?;
    }
    let scheduler = waymark.scheduler();
    let dispatcher = waymark.dispatcher()?;
    let end = clock.now() + SignedDuration::from_hours(24 * days);
    loop {
        let polled = scheduler.run_once().await?;
        let sent = dispatcher.run_once().await?;
        if polled.did_work() || sent.did_work() {
            continue;
        }
        let next = [
            waymark.store.next_poll_at().await?,
            waymark.store.next_notification_at().await?,
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(next) if next <= end => clock.advance_to(next.max(clock.now())),
            _ => return Ok(()),
        }
    }
}

/// Read back what happened to each shipment, by kind.
async fn measure(
    waymark: &Waymark,
    counting: &Counting,
    shipments: &[(String, ShipmentInput, Timestamp)],
) -> anyhow::Result<Vec<(String, Kind)>> {
    let calls = counting
        .calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut kinds: Vec<(String, Kind)> = Vec::new();
    for (kind_name, input, _) in shipments {
        let number = waymark::domain::TrackingNumber::parse(&input.tracking_number)?;
        let shipment = waymark
            .store
            .shipments_by_number(&number)
            .await?
            .into_iter()
            .next()
            .context("registered")?;
        let index = match kinds.iter().position(|(name, _)| name == kind_name) {
            Some(index) => index,
            None => {
                kinds.push((kind_name.clone(), Kind::default()));
                kinds.len() - 1
            }
        };
        let kind = &mut kinds[index].1;
        kind.shipments += 1;
        let made = calls.get(number.as_str()).copied().unwrap_or(0);
        if shipment.journey.status == Status::Delivered {
            kind.delivered += 1;
            kind.calls_delivered.push(made);
        } else {
            kind.calls_other.push(made);
        }
        let timeline = waymark.store.timeline(shipment.id).await?;
        let messages = waymark.store.notifications(shipment.id).await?;
        for (status, trigger, delays) in [
            (
                Status::OutForDelivery,
                Trigger::OutForDelivery,
                &mut kind.out_for_delivery,
            ),
            (
                Status::AttemptFailed,
                Trigger::AttemptFailed,
                &mut kind.attempt_failed,
            ),
        ] {
            let Some(scan) = timeline.iter().find(|e| e.event.status == status) else {
                continue;
            };
            if let Some(sent) = messages
                .iter()
                .filter(|m| m.trigger == trigger)
                .find_map(|m| m.sent_at)
            {
                delays.push(sent.duration_since(scan.event.time.at).as_secs_f64() / 60.0);
            }
        }
    }
    Ok(kinds)
}

async fn run_sandbox(args: &Args) -> anyhow::Result<Vec<(String, Kind)>> {
    let dir = tempfile::tempdir()?;
    let clock = Clock::manual(start());
    let mut waymark = Waymark::start_with_clock(config(dir.path()), Some(clock.clone())).await?;
    let sandbox = waymark
        .carriers
        .get(&CarrierCode::parse("sandbox")?)
        .cloned()
        .context("the sandbox is registered")?;
    let counting = Arc::new(Counting {
        inner: sandbox,
        calls: Mutex::default(),
    });
    waymark.carriers.register(counting.clone());
    // The shop registers its parcels through the morning (the sandbox collects a parcel
    // registered before noon the same day), so scans and polls fall at every minute.
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut shipments = Vec::new();
    for scenario in Scenario::JOURNEYS {
        for n in 0..args.shipments {
            let registered_at = start() + SignedDuration::from_secs(rng.random_range(0..3 * 3600));
            let input = ShipmentInput {
                carrier: "sandbox".into(),
                tracking_number: scenario.example_number(n).to_string(),
                customer_email: format!("customer{n}@example.com"),
                locale: Some("de".into()),
                destination_country: "DE".into(),
                ..ShipmentInput::default()
            };
            shipments.push((format!("{scenario:?}"), input, registered_at));
        }
    }
    play(&waymark, &clock, &shipments, 30).await?;
    measure(&waymark, &counting, &shipments).await
}

/// One scan of the DHL stand-in's script.
#[derive(Clone)]
struct DhlScan {
    at: Timestamp,
    status_code: &'static str,
    description: &'static str,
    city: &'static str,
}

/// A parcel of the DHL stand-in: its scans and the delivery date DHL announces.
#[derive(Clone)]
struct DhlParcel {
    scans: Vec<DhlScan>,
    estimate: jiff::civil::Date,
}

/// The stand-in's journeys, by tracking number: three days, or four with a failed attempt.
fn dhl_journeys(args: &Args) -> anyhow::Result<Vec<(String, String, DhlParcel)>> {
    let berlin = TimeZone::get("Europe/Berlin")?;
    let day_zero = start().to_zoned(berlin.clone()).date();
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let local = |day: i64, minutes: i64| -> anyhow::Result<Timestamp> {
        let date = day_zero.checked_add(jiff::Span::new().days(day))?;
        Ok(date
            .at(0, 0, 0, 0)
            .to_zoned(berlin.clone())?
            .timestamp()
            .checked_add(SignedDuration::from_mins(minutes))?)
    };
    let mut parcels = Vec::new();
    for (kind, failed_attempt) in [("three days", false), ("failed attempt", true)] {
        for n in 0..args.shipments {
            let number = format!("00340434{}{:08}", u8::from(failed_attempt), n);
            let mut scans = vec![
                DhlScan {
                    at: start(),
                    status_code: "pre-transit",
                    description: "The instruction data for this shipment have been provided by the sender to DHL electronically",
                    city: "Leipzig",
                },
                DhlScan {
                    at: local(0, rng.random_range(14 * 60..18 * 60))?,
                    status_code: "transit",
                    description: "The shipment has been picked up",
                    city: "Leipzig",
                },
                DhlScan {
                    at: local(0, rng.random_range(20 * 60..23 * 60))?,
                    status_code: "transit",
                    description: "The shipment has been processed in the parcel center of origin",
                    city: "Radefeld",
                },
                DhlScan {
                    at: local(2, rng.random_range(2 * 60..6 * 60))?,
                    status_code: "transit",
                    description: "The shipment has been processed in the destination parcel center",
                    city: "Berlin",
                },
            ];
            let van = |day: i64, rng: &mut rand::rngs::StdRng| -> anyhow::Result<Timestamp> {
                local(day, rng.random_range(7 * 60 + 10..9 * 60 + 30))
            };
            let out = van(3, &mut rng)?;
            scans.push(DhlScan {
                at: out,
                status_code: "transit",
                description: "The shipment has been loaded onto the delivery vehicle",
                city: "Berlin",
            });
            let after = |at: Timestamp, rng: &mut rand::rngs::StdRng| {
                at + SignedDuration::from_mins(rng.random_range(60..360))
            };
            let delivered_day = if failed_attempt {
                scans.push(DhlScan {
                    at: after(out, &mut rng),
                    status_code: "failure",
                    description: "The recipient was not present. The shipment is being forwarded to a retail outlet",
                    city: "Berlin",
                });
                let again = van(4, &mut rng)?;
                scans.push(DhlScan {
                    at: again,
                    status_code: "transit",
                    description: "The shipment has been loaded onto the delivery vehicle",
                    city: "Berlin",
                });
                again
            } else {
                out
            };
            scans.push(DhlScan {
                at: after(delivered_day, &mut rng),
                status_code: "delivered",
                description: "The shipment has been successfully delivered",
                city: "Berlin",
            });
            let estimate = day_zero.checked_add(jiff::Span::new().days(3))?;
            parcels.push((kind.to_owned(), number, DhlParcel { scans, estimate }));
        }
    }
    Ok(parcels)
}

/// DHL's Unified Tracking API, answering each number with the scans made by the simulated
/// clock's now, newest first, as DHL does.
struct DhlStandIn {
    clock: Clock,
    parcels: HashMap<String, DhlParcel>,
}

impl Respond for DhlStandIn {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let number = request
            .url
            .query_pairs()
            .find(|(key, _)| key == "trackingNumber")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        let now = self.clock.now();
        let Some(parcel) = self.parcels.get(&number) else {
            return ResponseTemplate::new(404).set_body_json(serde_json::json!({
                "title": "No result found", "status": 404,
                "detail": "No shipment with given tracking number found."
            }));
        };
        let seen: Vec<&DhlScan> = parcel.scans.iter().filter(|s| s.at <= now).collect();
        if seen.is_empty() {
            return ResponseTemplate::new(404).set_body_json(serde_json::json!({
                "title": "No result found", "status": 404,
                "detail": "No shipment with given tracking number found."
            }));
        }
        let berlin = TimeZone::get("Europe/Berlin").unwrap_or(TimeZone::UTC);
        let event = |scan: &DhlScan| {
            serde_json::json!({
                "timestamp": scan.at.to_zoned(berlin.clone()).strftime("%Y-%m-%dT%H:%M:%S").to_string(),
                "location": {"address": {"addressLocality": scan.city, "countryCode": "DE"}},
                "statusCode": scan.status_code,
                "status": scan.description,
                "description": scan.description,
            })
        };
        let events: Vec<serde_json::Value> = seen.iter().rev().map(|s| event(s)).collect();
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "shipments": [{
                "id": number,
                "service": "parcel-de",
                "destination": {"address": {"addressLocality": "Berlin", "countryCode": "DE"}},
                "status": events[0],
                "estimatedTimeOfDelivery": parcel.estimate.to_string(),
                "events": events,
            }]
        }))
    }
}

async fn run_dhl(args: &Args) -> anyhow::Result<Vec<(String, Kind)>> {
    let dir = tempfile::tempdir()?;
    let clock = Clock::manual(start());
    let journeys = dhl_journeys(args)?;
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/track/shipments"))
        .respond_with(DhlStandIn {
            clock: clock.clone(),
            parcels: journeys
                .iter()
                .map(|(_, number, parcel)| (number.clone(), parcel.clone()))
                .collect(),
        })
        .mount(&server)
        .await;

    let mut waymark = Waymark::start_with_clock(config(dir.path()), Some(clock.clone())).await?;
    let counting = Arc::new(Counting {
        inner: Arc::new(Dhl::bundled(Transport::default())),
        calls: Mutex::default(),
    });
    let mut carriers = CarrierRegistry::new();
    carriers.register(counting.clone());
    waymark.carriers = carriers;
    // DHL's cadence and per-shipment cap, without its account-wide rate and quota (which would
    // make a hundred shipments take days of real time, not what is measured here).
    waymark
        .store
        .create_carrier_account(&CarrierAccount {
            id: uuid::Uuid::now_v7(),
            merchant_id: waymark::domain::MerchantId::DEFAULT,
            carrier: CarrierCode::parse("dhl")?,
            name: "default".into(),
            credentials: serde_json::json!({"api_key": "stand-in"}).into(),
            base_url: Some(server.uri()),
            daily_quota: Some(1_000_000),
            requests_per_second: Some(10_000.0),
        })
        .await?;
    let shipments: Vec<(String, ShipmentInput, Timestamp)> = journeys
        .iter()
        .enumerate()
        .map(|(n, (kind, number, _))| {
            (
                kind.clone(),
                ShipmentInput {
                    carrier: "dhl".into(),
                    tracking_number: number.clone(),
                    customer_email: format!("customer{n}@example.com"),
                    locale: Some("de".into()),
                    destination_country: "DE".into(),
                    ..ShipmentInput::default()
                },
                start(),
            )
        })
        .collect();
    play(&waymark, &clock, &shipments, 10).await?;
    measure(&waymark, &counting, &shipments).await
}

fn mean(values: &[u32]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    f64::from(values.iter().sum::<u32>()) / values.len() as f64
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(sorted[sorted.len() / 2])
}

fn minutes(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |m| format!("{m:.0}"))
}

fn report(title: &str, kinds: &[(String, Kind)]) {
    println!("## {title}\n");
    println!(
        "| journey | shipments | delivered | calls per delivered shipment (mean / max) | calls per other shipment (mean) | out-for-delivery email, minutes after the scan (median / max) | failed-attempt email (median / max) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut all_delivered = Vec::new();
    let (mut all_out, mut all_failed) = (Vec::new(), Vec::new());
    for (name, kind) in kinds {
        let max = |v: &[f64]| v.iter().copied().reduce(f64::max);
        println!(
            "| {name} | {} | {} | {:.1} / {} | {:.1} | {} / {} | {} / {} |",
            kind.shipments,
            kind.delivered,
            mean(&kind.calls_delivered),
            kind.calls_delivered.iter().max().copied().unwrap_or(0),
            mean(&kind.calls_other),
            minutes(median(&kind.out_for_delivery)),
            minutes(max(&kind.out_for_delivery)),
            minutes(median(&kind.attempt_failed)),
            minutes(max(&kind.attempt_failed)),
        );
        all_delivered.extend(&kind.calls_delivered);
        all_out.extend(&kind.out_for_delivery);
        all_failed.extend(&kind.attempt_failed);
    }
    println!(
        "| **all** | | {} | {:.1} / {} | | {} | {} |\n",
        all_delivered.len(),
        mean(&all_delivered),
        all_delivered.iter().max().copied().unwrap_or(0),
        minutes(median(&all_out)),
        minutes(median(&all_failed)),
    );
}

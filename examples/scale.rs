//! The queries Waymark's loops ask of a large SQLite database, timed through the store as the
//! scheduler and the dispatcher ask them: on a database `waymark shipments import` filled (see
//! `scripts/scale.sh`), with every shipment due.
//!
//! 1. the due claim, oldest first (no daily quota) and nearest delivery first (a daily quota),
//!    each leasing `--claim` shipments, `--rounds` times;
//! 2. the scheduler's and the dispatcher's next wake-up (`next_poll_at`, `next_notification_at`)
//!    with `--messages` messages pending in the outbox, written by polls as the scheduler writes
//!    them;
//!
//! then, with `--idle`, it pushes every shipment's next poll a day ahead, so a `waymark serve`
//! started on the database afterwards finds nothing to do (its resident memory is the idle
//! figure).
//!
//! `cargo run --release --example scale -- --database sqlite:///tmp/scale/waymark.db`

use anyhow::Context;
use clap::Parser;
use jiff::{SignedDuration, Timestamp};
use std::time::{Duration, Instant};
use uuid::Uuid;

use waymark::domain::{
    CarrierCode, Channel, Facts, FetchCount, JourneyState, Locale, NewNotification, Status, Trigger,
};
use waymark::store::{ClaimOrder, PollClaim, PollWrite, SqliteStore, Store};

#[derive(Parser)]
struct Args {
    /// The database `waymark shipments import` filled.
    #[arg(long)]
    database: String,
    /// The carrier and account name the shipments were imported to.
    #[arg(long, default_value = "dhl")]
    carrier: String,
    #[arg(long, default_value = "default")]
    account: String,
    /// Shipments each claim leases (the scheduler's `claim_batch`).
    #[arg(long, default_value_t = 200)]
    claim: u32,
    /// Claims of each order to time.
    #[arg(long, default_value_t = 200)]
    rounds: usize,
    /// Messages to leave pending in the outbox before timing the wake-up queries.
    #[arg(long, default_value_t = 50_000)]
    messages: usize,
    /// Push every shipment's next poll a day ahead at the end.
    #[arg(long)]
    idle: bool,
}

/// Median and 99th percentile of `times`, in milliseconds.
fn percentiles(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let at = |q: f64| {
        let index = ((times.len() as f64 - 1.0) * q).round() as usize;
        times[index].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.99))
}

fn report(what: &str, times: Vec<Duration>) {
    let n = times.len();
    let (median, p99) = percentiles(times);
    println!("| {what} | {n} | {median:.2} ms | {p99:.2} ms |");
}

/// What a poll that queues one message writes, as the scheduler writes it.
fn poll_with_message(shipment: Uuid, owner: &str, now: Timestamp) -> anyhow::Result<PollWrite> {
    let facts: Facts = serde_json::from_value(serde_json::json!({
        "status": "in_transit",
        "estimate": { "earliest": "2026-12-04", "latest": "2026-12-04" },
    }))?;
    Ok(PollWrite {
        shipment_id: shipment,
        owner: owner.into(),
        now,
        new_events: Vec::new(),
        journey: JourneyState {
            status: Status::InTransit,
            reason: None,
            carrier_estimate: None,
            last_event_at: Some(now),
            active: true,
        },
        estimate_change: None,
        notifications: vec![NewNotification {
            id: Uuid::now_v7(),
            trigger: Trigger::Shipped,
            dedupe_key: "shipped".into(),
            channel: Channel::Email,
            recipient: "customer@example.com".into(),
            locale: Locale::parse("de")?,
            reason: "the carrier has the parcel".into(),
            facts,
        }],
        supersede: Vec::new(),
        // Due again at once, so the claims below still see a million due shipments.
        next_poll_at: Some(now),
        poll_priority: 2,
        fetched: FetchCount {
            day: now.to_string()[..10].to_owned(),
            count: 1,
        },
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The key file `waymark shipments import` made beside the database.
    let (vault, _) = waymark::vault::load(
        &waymark::vault::VaultConfig::default(),
        None,
        &waymark::store::default_key_file(&args.database),
    )?;
    let store = SqliteStore::connect(&args.database, vault).await?;
    let carrier = CarrierCode::parse(&args.carrier)?;
    let account = store
        .carrier_account_by_name(
            waymark::domain::MerchantId::DEFAULT,
            &carrier,
            &args.account,
        )
        .await?
        .with_context(|| format!("no {} account named {}", args.carrier, args.account))?;
    let backlog = store.backlog().await?;
    println!("active shipments: {}", backlog.active_shipments);
    println!();
    println!("| query | runs | median | p99 |");
    println!("|---|---|---|---|");

    // The outbox first: polls queue a message each, as the scheduler's writes do.
    let now = Timestamp::now();
    let mut queued = 0;
    while queued < args.messages {
        let owner = format!("filler-{queued}");
        let claimed = store
            .claim_due_shipments(&PollClaim {
                carrier_account_id: account.id,
                owner: &owner,
                now,
                lease_until: now + SignedDuration::from_mins(5),
                limit: 1000.min((args.messages - queued) as u32),
                order: ClaimOrder::DueFirst,
            })
            .await?;
        anyhow::ensure!(!claimed.is_empty(), "fewer due shipments than --messages");
        let writes = claimed
            .iter()
            .map(|s| poll_with_message(s.id, &owner, now))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let written = futures::future::join_all(writes.iter().map(|w| store.record_poll(w))).await;
        for result in written {
            anyhow::ensure!(result?, "lease lost while filling the outbox");
        }
        queued += claimed.len();
    }

    for (order, what) in [
        (ClaimOrder::DueFirst, "claim, due first"),
        (
            ClaimOrder::NearestDeliveryFirst,
            "claim, nearest delivery first",
        ),
    ] {
        let mut times = Vec::with_capacity(args.rounds);
        for round in 0..args.rounds {
            let owner = format!("{what}-{round}");
            let now = Timestamp::now();
            let started = Instant::now();
            let claimed = store
                .claim_due_shipments(&PollClaim {
                    carrier_account_id: account.id,
                    owner: &owner,
                    now,
                    lease_until: now + SignedDuration::from_mins(5),
                    limit: args.claim,
                    order,
                })
                .await?;
            times.push(started.elapsed());
            anyhow::ensure!(
                claimed.len() == args.claim as usize,
                "too few due shipments"
            );
            // Handed back at once, so every claim sees the same due set.
            let ids: Vec<Uuid> = claimed.iter().map(|s| s.id).collect();
            store
                .release_shipments(&ids, &owner, now, SignedDuration::ZERO)
                .await?;
        }
        report(&format!("{what} ({} shipments)", args.claim), times);
    }

    let mut polls = Vec::with_capacity(args.rounds);
    let mut messages = Vec::with_capacity(args.rounds);
    for _ in 0..args.rounds {
        let started = Instant::now();
        store.next_poll_at().await?;
        polls.push(started.elapsed());
        let started = Instant::now();
        store.next_notification_at().await?;
        messages.push(started.elapsed());
    }
    report("next_poll_at", polls);
    report(
        &format!("next_notification_at ({queued} pending)"),
        messages,
    );

    if args.idle {
        let tomorrow = Timestamp::now() + SignedDuration::from_hours(24);
        let deferred = store
            .defer_due_shipments(account.id, Timestamp::now(), tomorrow, SignedDuration::ZERO)
            .await?;
        println!();
        println!("{deferred} shipments next polled tomorrow");
    }
    Ok(())
}

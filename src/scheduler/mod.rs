//! The poller: claims due shipments with a lease, asks their carrier outside any transaction,
//! runs the detectors, and writes events, journey, next poll time and outbox messages in one
//! transaction — only while it still holds the lease.

pub mod cadence;
pub mod quota;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::carriers::{
    Carrier, CarrierAccount, CarrierError, CarrierRegistry, ParcelError, TrackReport, TrackRequest,
};
use crate::clock::Clock;
use crate::config::SchedulerConfig;
use crate::domain::detect::superseded_by;
use crate::domain::estimate::carrier_estimate_change;
use crate::domain::{
    Channel, FetchCount, HolidayCalendar, NewNotification, NewShipment, Shipment, Situation,
    Timeline, TrackingNumber, Trigger, detect,
};
use crate::store::{ClaimOrder, PollClaim, PollFailure, PollWrite, Store, StoreError};
use cadence::Moment;
use quota::{QuotaDay, quota_day};

/// Shipments held back by a spent daily quota come due again spread over this long after the
/// reset (the most urgent in its first quarter), not all in the same second.
const QUOTA_RESET_SPREAD: SignedDuration = SignedDuration::from_mins(30);

/// What one round of polling did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollRound {
    /// Shipments whose carrier answered for them.
    pub polled: usize,
    /// Shipments whose poll failed (recorded on the shipment, retried later).
    pub failed: usize,
    /// Messages written to the outbox.
    pub notifications: usize,
    /// Results thrown away because another worker took the shipment over.
    pub lease_lost: usize,
    /// Shipments pushed to the next quota day.
    pub deferred: usize,
}

impl PollRound {
    fn add(&mut self, other: PollRound) {
        self.polled += other.polled;
        self.failed += other.failed;
        self.notifications += other.notifications;
        self.lease_lost += other.lease_lost;
        self.deferred += other.deferred;
    }

    /// Whether the round touched any shipment.
    pub fn did_work(&self) -> bool {
        self.polled + self.failed + self.lease_lost + self.deferred > 0
    }
}

/// Whether a claimed batch goes to its carrier.
enum Admission {
    /// Its call is allowed and counted: ask the carrier.
    Poll(Vec<Shipment>),
    /// Nothing to ask: its leases were lost, or the quota is spent (it was handed back).
    Skipped(PollRound),
}

/// Polls carriers for due shipments.
#[derive(Clone)]
pub struct Scheduler {
    store: Arc<dyn Store>,
    carriers: CarrierRegistry,
    clock: Clock,
    calendar: Arc<HolidayCalendar>,
    config: SchedulerConfig,
    owner: String,
    /// Rung when a poll queues messages, so an idle dispatcher in this process wakes at once.
    outbox_signal: Option<Arc<tokio::sync::Notify>>,
}

impl Scheduler {
    pub fn new(
        store: Arc<dyn Store>,
        carriers: CarrierRegistry,
        clock: Clock,
        calendar: Arc<HolidayCalendar>,
        config: SchedulerConfig,
    ) -> Self {
        Scheduler {
            store,
            carriers,
            clock,
            calendar,
            config,
            owner: format!("scheduler-{}", Uuid::now_v7()),
            outbox_signal: None,
        }
    }

    /// Ring `signal` whenever a poll queues messages.
    pub fn with_outbox_signal(mut self, signal: Arc<tokio::sync::Notify>) -> Self {
        self.outbox_signal = Some(signal);
        self
    }

    /// Run rounds until `shutdown` is cancelled; a round in progress is finished first.
    pub async fn run(&self, shutdown: CancellationToken) {
        info!(owner = %self.owner, "scheduler started");
        while !shutdown.is_cancelled() {
            let pause = match self.run_once().await {
                Ok(round) if round.did_work() => Duration::ZERO,
                Ok(_) => self.idle_pause().await,
                Err(error) => {
                    warn!(%error, "polling round failed; retrying shortly");
                    Duration::from_secs(1)
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
        info!(owner = %self.owner, "scheduler stopped");
    }

    /// How long to sleep when nothing was due: until the next shipment is due, within bounds.
    async fn idle_pause(&self) -> Duration {
        let max = Duration::from_secs(self.config.max_idle_seconds.max(1));
        match self.store.next_poll_at().await {
            Ok(Some(next)) => {
                let wait = next.duration_since(self.clock.now());
                self.clock
                    .real_duration(wait)
                    .clamp(Duration::from_millis(20), max)
            }
            Ok(None) => max,
            Err(error) => {
                warn!(%error, "cannot read the next poll time");
                Duration::from_secs(1)
            }
        }
    }

    /// One pass over every carrier account: claim what is due, poll it, write the results.
    pub async fn run_once(&self) -> Result<PollRound, StoreError> {
        let accounts = self.store.carrier_accounts().await?;
        // Accounts are polled side by side: a carrier with a slow rate limit must not hold up
        // the others.
        let rounds = futures::future::join_all(accounts.iter().filter_map(|account| {
            let Some(carrier) = self.carriers.get(&account.carrier).cloned() else {
                debug!(carrier = %account.carrier, "no adapter for this account's carrier");
                return None;
            };
            Some(self.poll_account(account, carrier))
        }))
        .await;
        let mut round = PollRound::default();
        for result in rounds {
            round.add(result?);
        }
        Ok(round)
    }

    async fn poll_account(
        &self,
        account: &CarrierAccount,
        carrier: Arc<dyn Carrier>,
    ) -> Result<PollRound, StoreError> {
        let profile = carrier.profile();
        let now = self.clock.now();
        let daily_quota = account.daily_quota.or(profile.limits.daily_quota);
        let lease_until = now
            .checked_add(
                self.clock
                    .simulated_duration(Duration::from_secs(self.config.lease_seconds)),
            )
            .unwrap_or(Timestamp::MAX);
        // With a daily quota, the shipments closest to delivery go first.
        let order = if daily_quota.is_some() {
            ClaimOrder::NearestDeliveryFirst
        } else {
            ClaimOrder::DueFirst
        };
        // Claim about what the rate limit lets us poll in half a lease. The leases are renewed
        // while the round runs, so none expires while it waits; but what this replica holds and
        // cannot reach soon would only sit idle here instead of going to another replica.
        let batch_size = profile.limits.batch_size.max(1);
        let rate = account
            .requests_per_second
            .unwrap_or(profile.limits.requests_per_second);
        let calls_in_time = (rate * self.config.lease_seconds as f64 / 2.0)
            .floor()
            .max(1.0);
        let limit = (calls_in_time * batch_size as f64).min(f64::from(self.config.claim_batch));
        let claimed = self
            .store
            .claim_due_shipments(&PollClaim {
                carrier_account_id: account.id,
                owner: &self.owner,
                now,
                lease_until,
                limit: (limit as u32).max(1),
                order,
            })
            .await?;
        if claimed.is_empty() {
            return Ok(PollRound::default());
        }
        let batches: Vec<Vec<Shipment>> = claimed
            .chunks(batch_size)
            .map(<[Shipment]>::to_vec)
            .collect();
        let ids: Vec<Uuid> = claimed.iter().map(|s| s.id).collect();
        let lost = std::sync::Mutex::new(HashSet::new());
        let quota = daily_quota.map(|quota| (quota, quota_day(&profile.limits, now)));

        let polling = self.poll_batches(account, &carrier, batches, &lost, quota.as_ref());
        // The claimed shipments stay ours while their turn comes and their carrier answers,
        // however slow it is: another worker must not poll them again meanwhile.
        let results = tokio::select! {
            results = polling => results,
            never = self.keep_leases(&ids, &lost) => match never {},
        };
        let mut round = PollRound::default();
        for result in results {
            round.add(result?);
        }
        if round.deferred > 0 {
            if let Some((_, day)) = &quota {
                // The quota is spent: nothing more is asked of this account until it resets.
                let deferred = self
                    .store
                    .defer_due_shipments(account.id, now, day.resets_at, QUOTA_RESET_SPREAD)
                    .await?;
                round.deferred += deferred as usize;
                info!(account = %account.name, resets_at = %day.resets_at, deferred = round.deferred,
                    "daily quota spent; shipments wait for the reset");
            }
        }
        Ok(round)
    }

    /// Renew the leases of `ids` every third of a lease, for as long as it is polled (it never
    /// returns); the ids whose lease was lost are added to `lost`, so they are not polled.
    async fn keep_leases(
        &self,
        ids: &[Uuid],
        lost: &std::sync::Mutex<HashSet<Uuid>>,
    ) -> std::convert::Infallible {
        let lease = Duration::from_secs(self.config.lease_seconds.max(1));
        loop {
            tokio::time::sleep(lease / 3).await;
            let now = self.clock.now();
            let until = now
                .checked_add(self.clock.simulated_duration(lease))
                .unwrap_or(Timestamp::MAX);
            match self
                .store
                .extend_shipment_leases(ids, &self.owner, now, until)
                .await
            {
                Ok(held) => {
                    let held: HashSet<Uuid> = held.into_iter().collect();
                    // Shipments already written were handed back, so they show up here too;
                    // only the ones still waiting for their call matter.
                    lost.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .extend(ids.iter().filter(|id| !held.contains(id)));
                }
                Err(error) => warn!(%error, "cannot renew the leases of shipments being polled"),
            }
        }
    }

    /// Poll the batches of one claim: admitted one after the other, in claim order (the rate
    /// limit, then the quota: closest to delivery first when it runs short), and then called up
    /// to `concurrency` at a time.
    async fn poll_batches(
        &self,
        account: &CarrierAccount,
        carrier: &Arc<dyn Carrier>,
        batches: Vec<Vec<Shipment>>,
        lost: &std::sync::Mutex<HashSet<Uuid>>,
        quota: Option<&(u32, QuotaDay)>,
    ) -> Vec<Result<PollRound, StoreError>> {
        let concurrency = self.config.concurrency.max(1);
        let mut waiting = batches.into_iter();
        let mut in_flight = futures::stream::FuturesUnordered::new();
        let mut results = Vec::new();
        loop {
            if in_flight.len() < concurrency {
                if let Some(batch) = waiting.next() {
                    let admit = self.admit(account, carrier.profile(), batch, lost, quota);
                    tokio::pin!(admit);
                    // Calls already made go on while the next one waits for its turn.
                    let admission = loop {
                        tokio::select! {
                            admission = &mut admit => break admission,
                            Some(done) = in_flight.next() => results.push(done),
                        }
                    };
                    match admission {
                        Ok(Admission::Poll(batch)) => {
                            in_flight.push(self.poll_batch(account, carrier.as_ref(), batch))
                        }
                        Ok(Admission::Skipped(round)) => results.push(Ok(round)),
                        Err(error) => results.push(Err(error)),
                    }
                    continue;
                }
            }
            match in_flight.next().await {
                Some(done) => results.push(done),
                None => break,
            }
        }
        results
    }

    /// Wait for the account's rate limit to allow the batch's call, then count it against the
    /// daily quota: a batch whose leases were lost meanwhile is dropped, one the quota has no
    /// room for is handed back until the quota resets.
    async fn admit(
        &self,
        account: &CarrierAccount,
        profile: &crate::carriers::CarrierProfile,
        mut batch: Vec<Shipment>,
        lost: &std::sync::Mutex<HashSet<Uuid>>,
        quota: Option<&(u32, QuotaDay)>,
    ) -> Result<Admission, StoreError> {
        let mut round = PollRound::default();
        quota::acquire(
            self.store.as_ref(),
            account.id,
            account
                .requests_per_second
                .unwrap_or(profile.limits.requests_per_second),
        )
        .await?;
        // A shipment whose lease ran out while it waited is another worker's now.
        {
            let lost = lost
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let before = batch.len();
            batch.retain(|s| !lost.contains(&s.id));
            round.lease_lost += before - batch.len();
        }
        if batch.is_empty() {
            return Ok(Admission::Skipped(round));
        }
        // The call is counted against the daily quota right before it is made, so the counter
        // is the number of calls the carrier saw.
        if let Some((limit, day)) = quota {
            if !self
                .store
                .reserve_carrier_calls(account.id, &day.day, 1, Some(*limit))
                .await?
            {
                let ids: Vec<Uuid> = batch.iter().map(|s| s.id).collect();
                self.store
                    .release_shipments(&ids, &self.owner, day.resets_at, QUOTA_RESET_SPREAD)
                    .await?;
                round.deferred += ids.len();
                return Ok(Admission::Skipped(round));
            }
        }
        Ok(Admission::Poll(batch))
    }

    /// Ask the carrier about an admitted batch and write what it said, shipment by shipment.
    async fn poll_batch(
        &self,
        account: &CarrierAccount,
        carrier: &dyn Carrier,
        batch: Vec<Shipment>,
    ) -> Result<PollRound, StoreError> {
        let profile = carrier.profile();
        let mut round = PollRound::default();
        let requests: Vec<TrackRequest> = batch
            .iter()
            .map(|s| TrackRequest {
                tracking_number: s.tracking_number.clone(),
                registered_at: Some(s.created_at),
            })
            .collect();
        let timeout = Duration::from_secs(self.config.carrier_timeout_seconds.max(1));
        let answer = match tokio::time::timeout(timeout, carrier.track(account, &requests)).await {
            Ok(answer) => answer,
            Err(_) => Err(CarrierError::Transient(format!(
                "no answer within {}s",
                timeout.as_secs()
            ))),
        };
        match answer {
            Ok(results) => {
                let mut by_number: HashMap<String, Result<TrackReport, ParcelError>> = results
                    .into_iter()
                    .map(|r| (r.tracking_number.as_str().to_owned(), r.outcome))
                    .collect();
                for shipment in batch {
                    let outcome = by_number
                        .remove(shipment.tracking_number.as_str())
                        .unwrap_or_else(|| {
                            Err(ParcelError::Malformed {
                                detail: "the carrier's answer does not mention this number".into(),
                                excerpt: String::new(),
                            })
                        });
                    match outcome {
                        Ok(report) => {
                            let (written, notifications) =
                                self.apply_report(carrier, &shipment, report).await?;
                            if written {
                                round.polled += 1;
                                round.notifications += notifications;
                            } else {
                                round.lease_lost += 1;
                            }
                        }
                        Err(error) => {
                            if self.record_parcel_error(carrier, &shipment, &error).await? {
                                round.failed += 1;
                            } else {
                                round.lease_lost += 1;
                            }
                        }
                    }
                }
            }
            Err(error) => {
                // Carriers' error pages may quote their records of a recipient.
                let said =
                    crate::redact::scrub(&error.to_string(), batch.iter().flat_map(customer_words));
                warn!(carrier = %profile.code, account = %account.name, error = %said, shipments = batch.len(),
                    "carrier call failed");
                for shipment in &batch {
                    if self.record_call_error(carrier, shipment, &error).await? {
                        round.failed += 1;
                    } else {
                        round.lease_lost += 1;
                    }
                }
            }
        }
        Ok(round)
    }

    /// Merge a carrier report into the shipment, detect, and write it all in one transaction.
    /// Returns whether the write happened (the lease was still ours) and how many messages it
    /// queued.
    async fn apply_report(
        &self,
        carrier: &dyn Carrier,
        shipment: &Shipment,
        report: TrackReport,
    ) -> Result<(bool, usize), StoreError> {
        let profile = carrier.profile();
        let now = self.clock.now();
        let stored = Timeline::from_keyed(self.store.timeline(shipment.id).await?);
        let TrackReport {
            events,
            estimate: reported_estimate,
            signed_by,
            pickup_point,
            change_delivery_url,
            other_parcels,
        } = report;
        let merge = stored.merge(profile.code.as_str(), events);
        let previous_estimate = shipment.journey.carrier_estimate;
        // A carrier that stops giving an estimate has not withdrawn it.
        let estimate = reported_estimate.or(previous_estimate);
        let journey = merge.timeline.journey(estimate);
        let estimate_change = carrier_estimate_change(
            previous_estimate,
            reported_estimate,
            merge.timeline.latest().map(|e| e.event.raw_text.as_str()),
        );
        let fired = self.store.fired_keys(shipment.id).await?;
        let tz = shipment.customer.time_zone.time_zone();
        let situation = Situation {
            timeline: &merge.timeline,
            destination_country: &shipment.destination_country,
            time_zone: &tz,
            promise: shipment.promise,
            previous_estimate,
            estimate,
            now,
            policy: profile.detection_policy(),
            calendar: &self.calendar,
            already_fired: &fired,
        };
        let mut detections = detect(&situation);
        // At most one "delayed" email per shipment per period: a slip within it waits for a
        // poll at the period's end, which tells it with the estimate of the moment.
        let mut recheck_at = None;
        let delayed = detections.iter().any(|d| d.trigger == Trigger::Delayed);
        // The merchant's own cap where it set one (read only when there is a delay to tell).
        let hours = match delayed {
            true => self
                .store
                .merchant_settings(shipment.merchant_id)
                .await?
                .and_then(|s| s.notifications.delayed_message_every_hours)
                .map_or(self.config.delayed_email_every_hours, u64::from),
            false => self.config.delayed_email_every_hours,
        };
        let cap = SignedDuration::from_hours(i64::try_from(hours).unwrap_or(i64::MAX / 3600));
        if cap.is_positive() && delayed {
            if let Some(sent) = self
                .store
                .last_sent_at(shipment.id, Trigger::Delayed)
                .await?
            {
                let until = sent.checked_add(cap).unwrap_or(Timestamp::MAX);
                if now < until {
                    detections.retain(|d| d.trigger != Trigger::Delayed);
                    recheck_at = Some(until);
                    debug!(shipment = %shipment.id, %until, "delay message held back by the cap");
                }
            }
        }
        // Includes a pending `stalled` made moot by a new scan that fired nothing itself.
        let supersede = superseded_by(&situation, &detections);
        let notifications: Vec<NewNotification> = detections
            .into_iter()
            .map(|mut d| {
                d.facts.pickup_point = pickup_point.clone();
                d.facts.signed_by = signed_by.clone();
                d.facts.change_delivery_url = change_delivery_url.clone();
                d
            })
            // Nobody to write to (the customer's data was erased): nothing is queued.
            .filter_map(|d| {
                Some(NewNotification {
                    id: Uuid::now_v7(),
                    trigger: d.trigger,
                    dedupe_key: d.dedupe_key,
                    channel: Channel::Email,
                    recipient: shipment.customer.email.as_ref()?.as_str().to_owned(),
                    locale: shipment.customer.locale.clone(),
                    reason: d.reason,
                    facts: d.facts,
                })
            })
            .collect();
        let (fetched, day) = self.count_fetch(profile, shipment, now);
        let (next_poll_at, poll_priority) = {
            let country = &shipment.destination_country;
            let delivery_day = |date| {
                cadence::is_delivery_day(&profile.cadence, date, |d| {
                    self.calendar.is_holiday(country, d)
                })
            };
            let moment = Moment {
                journey: &journey,
                expected: estimate.or(shipment.promise),
                zone: &tz,
                delivery_day: &delivery_day,
                pickup_reminder_at: (journey.status == crate::domain::Status::AvailableForPickup)
                    .then_some(journey.last_event_at)
                    .flatten()
                    .and_then(|since| {
                        since
                            .checked_add(SignedDuration::from_hours(
                                profile.detection.pickup_reminder_after_hours,
                            ))
                            .ok()
                    }),
                abroad: merge
                    .timeline
                    .current()
                    .and_then(|latest| latest.event.country())
                    .is_some_and(|c| c != *country && self.calendar.knows(&c)),
                now,
            };
            let mut rng = rand::rng();
            let next = cadence::next_poll_at(&profile.cadence, &moment, &mut rng).map(|next| {
                let next = recheck_at.map_or(next, |at| next.min(at.max(now)));
                cadence::within_daily_cap(&profile.limits, fetched.count, &day, next, &mut rng)
            });
            (next, cadence::priority(&moment))
        };
        let queued = notifications.len();
        for n in &notifications {
            // The reason quotes the carrier's scan, which may name who signed for the parcel.
            let known = customer_words(shipment)
                .into_iter()
                .chain(signed_by.as_deref());
            let reason = crate::redact::scrub(&n.reason, known);
            info!(shipment = %shipment.id, trigger = %n.trigger, %reason, "message queued");
        }
        let write = PollWrite {
            shipment_id: shipment.id,
            owner: self.owner.clone(),
            now,
            new_events: merge.new_events,
            poll_priority,
            journey,
            estimate_change,
            notifications,
            supersede,
            next_poll_at,
            fetched,
        };
        let written = self.store.record_poll(&write).await?;
        if written {
            self.follow_other_parcels(shipment, &other_parcels, now)
                .await?;
        }
        if !written {
            warn!(shipment = %shipment.id, "lease lost before the poll result was written; result dropped");
        } else if queued > 0 {
            if let Some(signal) = &self.outbox_signal {
                // Wake every idle dispatcher worker, and leave a permit for one that is about
                // to go idle.
                signal.notify_waiters();
                signal.notify_one();
            }
        }
        Ok((written, if written { queued } else { 0 }))
    }

    /// Register each further parcel the shipment's number stands for as a shipment of its own,
    /// for the same customer and order, so every parcel has its own journey and messages. One
    /// already registered on the account is left as it is.
    async fn follow_other_parcels(
        &self,
        shipment: &Shipment,
        other_parcels: &[TrackingNumber],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        for number in other_parcels {
            let sibling = NewShipment {
                carrier_account_id: shipment.carrier_account_id,
                carrier: shipment.carrier.clone(),
                tracking_number: number.clone(),
                customer: shipment.customer.clone(),
                destination_country: shipment.destination_country.clone(),
                destination_postal_code: shipment.destination_postal_code.clone(),
                order_reference: shipment.order_reference.clone(),
                promise: shipment.promise,
                order_value: shipment.order_value.clone(),
                signature_required: shipment.signature_required,
            };
            match self.store.insert_shipment(&sibling, now).await {
                Ok(registered) => info!(shipment = %shipment.id, parcel = %registered.id,
                    "the tracking number stands for a further parcel; following it as its own shipment"),
                Err(StoreError::Duplicate { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// The shipment's fetches in the carrier's current day once this one is counted, and that
    /// day.
    fn count_fetch(
        &self,
        profile: &crate::carriers::CarrierProfile,
        shipment: &Shipment,
        now: Timestamp,
    ) -> (FetchCount, QuotaDay) {
        let day = quota_day(&profile.limits, now);
        (
            FetchCount::one_more(shipment.fetched.as_ref(), &day.day),
            day,
        )
    }

    async fn record_parcel_error(
        &self,
        carrier: &dyn Carrier,
        shipment: &Shipment,
        error: &ParcelError,
    ) -> Result<bool, StoreError> {
        let cadence = &carrier.profile().cadence;
        let (kind, excerpt, count_failure, wait) = {
            let mut rng = rand::rng();
            match error {
                // A fresh label is often unknown for hours: ask again at the not-found cadence.
                ParcelError::NotFound => (
                    "not_found",
                    None,
                    false,
                    cadence::jittered(cadence.not_found, cadence.jitter_percent, &mut rng),
                ),
                ParcelError::Malformed { excerpt, .. } => (
                    "malformed",
                    Some(excerpt.clone()),
                    true,
                    cadence::backoff(cadence, shipment.poll_failures, &mut rng),
                ),
                ParcelError::Rejected(_) => (
                    "rejected",
                    None,
                    true,
                    cadence::backoff(cadence, shipment.poll_failures + 4, &mut rng),
                ),
            }
        };
        self.record_failure(
            carrier,
            shipment,
            kind,
            error.to_string(),
            excerpt,
            count_failure,
            wait,
        )
        .await
    }

    async fn record_call_error(
        &self,
        carrier: &dyn Carrier,
        shipment: &Shipment,
        error: &CarrierError,
    ) -> Result<bool, StoreError> {
        let cadence = &carrier.profile().cadence;
        let (kind, excerpt, wait) = {
            let mut rng = rand::rng();
            let max = cadence::jittered(cadence.max_backoff, cadence.jitter_percent, &mut rng);
            match error {
                CarrierError::RateLimited { retry_after } => (
                    "rate_limited",
                    None,
                    retry_after
                        .and_then(|d| SignedDuration::try_from(d).ok())
                        .unwrap_or_else(|| {
                            cadence::backoff(cadence, shipment.poll_failures, &mut rng)
                        }),
                ),
                CarrierError::Transient(_) => (
                    "transient",
                    None,
                    cadence::backoff(cadence, shipment.poll_failures, &mut rng),
                ),
                CarrierError::Malformed { excerpt, .. } => (
                    "malformed",
                    Some(excerpt.clone()),
                    cadence::backoff(cadence, shipment.poll_failures, &mut rng),
                ),
                // Nothing changes until the merchant fixes the account: check rarely.
                CarrierError::Auth(_) => ("auth", None, max),
                CarrierError::Permanent(_) => ("permanent", None, max),
            }
        };
        self.record_failure(
            carrier,
            shipment,
            kind,
            error.to_string(),
            excerpt,
            true,
            wait,
        )
        .await
    }

    /// Record a failed fetch, due again after `wait` — and never before the carrier's daily cap
    /// on fetches of one shipment allows: a failed fetch is a fetch too.
    #[allow(clippy::too_many_arguments)]
    async fn record_failure(
        &self,
        carrier: &dyn Carrier,
        shipment: &Shipment,
        kind: &'static str,
        detail: String,
        excerpt: Option<String>,
        count_failure: bool,
        wait: SignedDuration,
    ) -> Result<bool, StoreError> {
        let profile = carrier.profile();
        let now = self.clock.now();
        let (fetched, day) = self.count_fetch(profile, shipment, now);
        let next = now.checked_add(wait).unwrap_or(Timestamp::MAX);
        let next_poll_at =
            cadence::within_daily_cap(&profile.limits, fetched.count, &day, next, &mut rand::rng());
        self.store
            .record_poll_failure(&PollFailure {
                shipment_id: shipment.id,
                owner: self.owner.clone(),
                now,
                kind,
                // A carrier's words, kept for the merchant: never its records of the customer.
                detail: crate::redact::scrub(&detail, customer_words(shipment)),
                excerpt: excerpt.map(|e| crate::redact::scrub(&e, customer_words(shipment))),
                count_failure,
                next_poll_at,
                fetched,
            })
            .await
    }
}

/// What names the shipment's customer, for scrubbing out of what is logged and stored.
fn customer_words(shipment: &Shipment) -> [&str; 2] {
    crate::redact::customer_words(&shipment.customer)
}

#[cfg(test)]
mod tests;

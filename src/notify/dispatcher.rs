//! The dispatcher: claims due messages from the outbox with a lease, renders them, sends them,
//! and records what the provider said. Failures back off with jitter; permanent ones stop.

use futures::StreamExt;
use jiff::Timestamp;
use lettre::message::Mailbox;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use crate::carriers::CarrierRegistry;
use crate::clock::Clock;
use crate::config::DispatcherConfig;
use crate::links::LinkPurpose;
use crate::notify::brand::{Brand, Brands};
use crate::notify::email::{EmailSender, Envelope, SendError, build_message};
use crate::notify::quiet_hours::QuietHours;
use crate::notify::render::{DeliveryChangeLink, MessageContext, PickupPointContext, Templates};
use crate::store::{Completion, OutboxItem, Store, StoreError};

/// The ways the customer can change the delivery: the carrier's own link for this parcel when
/// it gave one (it knows the parcel's options), else the carrier's deep links by kind.
///
/// The carrier's link is taken only when it is `https` on a host its data file allows: an
/// answer from a compromised or impersonated API must not put a phishing page in an email
/// that carries the shop's name.
fn delivery_changes(
    notification: &crate::domain::Notification,
    profile: Option<&crate::carriers::CarrierProfile>,
    number: &crate::domain::TrackingNumber,
) -> Vec<DeliveryChangeLink> {
    if let Some(url) = &notification.facts.change_delivery_url {
        let checked = match profile {
            Some(profile) => profile.trusted_link(url),
            None => Err("no data file for the carrier says which hosts to allow"),
        };
        match checked {
            Ok(url) => {
                return vec![DeliveryChangeLink {
                    kind: "carrier".into(),
                    url,
                }];
            }
            // The link itself stays out of the log: it could carry anything.
            Err(why) => {
                warn!(notification = %notification.id, shipment = %notification.shipment_id, why,
                    "the carrier's change-delivery link is not used; its deep links are offered instead")
            }
        }
    }
    profile
        .map(|p| p.delivery_change_links(number))
        .unwrap_or_default()
        .into_iter()
        .map(|(kind, url)| DeliveryChangeLink { kind, url })
        .collect()
}

/// `completion` with the customer scrubbed out of what the provider said: it is logged and
/// stored, and mail servers name the address they refuse or accept.
fn without_customer(completion: Completion, item: &OutboxItem) -> Completion {
    let [email, name] = crate::redact::customer_words(&item.shipment.customer);
    let known = [item.notification.recipient.as_str(), email, name];
    let scrub = |text: String| crate::redact::scrub(&text, known);
    match completion {
        Completion::Sent {
            message_id,
            provider_response,
        } => Completion::Sent {
            message_id,
            provider_response: scrub(provider_response),
        },
        Completion::Retry {
            error,
            available_at,
        } => Completion::Retry {
            error: scrub(error),
            available_at,
        },
        Completion::Failed { error } => Completion::Failed {
            error: scrub(error),
        },
        other @ (Completion::Deferred { .. } | Completion::Suppressed { .. }) => other,
    }
}

/// Where links in messages point and who signs them.
#[derive(Debug, Clone)]
pub struct Sender {
    pub merchant_name: String,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// Base of tracking-page and unsubscribe links.
    pub public_url: String,
    /// Right-hand side of `Message-ID`s.
    pub message_id_domain: String,
    /// Makes the tokens of the tracking-page and preferences links.
    pub links: crate::links::Links,
}

/// What one round of dispatching did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchRound {
    pub sent: usize,
    /// Failed for now, will be retried.
    pub retried: usize,
    /// Given up for good.
    pub failed: usize,
    /// Waiting for the end of the customer's quiet hours.
    pub deferred: usize,
    /// Not sent: the shipment is muted.
    pub suppressed: usize,
    /// Finished by someone else (our lease ran out).
    pub lease_lost: usize,
}

impl DispatchRound {
    pub fn did_work(&self) -> bool {
        self.sent + self.retried + self.failed + self.deferred + self.suppressed + self.lease_lost
            > 0
    }
}

/// Sends what the outbox holds.
#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn Store>,
    email: Arc<dyn EmailSender>,
    carriers: CarrierRegistry,
    clock: Clock,
    config: DispatcherConfig,
    /// Each merchant's sender, look and quiet hours, over the configured ones.
    brands: Brands,
    owner: String,
    /// Rung by a scheduler in this process when it queues messages.
    wakeup: Arc<tokio::sync::Notify>,
}

impl Dispatcher {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        email: Arc<dyn EmailSender>,
        templates: Templates,
        carriers: CarrierRegistry,
        clock: Clock,
        config: DispatcherConfig,
        quiet_hours: Option<QuietHours>,
        sender: Sender,
    ) -> Self {
        Dispatcher {
            brands: Brands::new(store.clone(), sender, quiet_hours, templates),
            store,
            email,
            carriers,
            clock,
            config,
            owner: format!("dispatcher-{}", Uuid::now_v7()),
            wakeup: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Wake from an idle pause when `signal` rings (new messages were queued).
    pub fn with_wakeup(mut self, signal: Arc<tokio::sync::Notify>) -> Self {
        self.wakeup = signal;
        self
    }

    /// Send until `shutdown` is cancelled; messages in flight are finished first.
    ///
    /// `concurrency` workers each claim and send one message at a time, so a slow mail server
    /// holding one message up does not hold up the others.
    pub async fn run(&self, shutdown: CancellationToken) {
        info!(owner = %self.owner, workers = self.config.concurrency, "dispatcher started");
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..self.config.concurrency.max(1) {
            // Each worker leases in its own name: a message a sibling re-claimed after this
            // worker's lease ran out is the sibling's alone to finish.
            let mut worker = self.clone();
            worker.owner = format!("dispatcher-{}", Uuid::now_v7());
            let token = shutdown.clone();
            workers.spawn(async move { worker.work(token).await });
        }
        while workers.join_next().await.is_some() {}
        info!(owner = %self.owner, "dispatcher stopped");
    }

    async fn work(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let pause = match self.run_batch(1).await {
                Ok(round) if round.did_work() => Duration::ZERO,
                Ok(_) => self.idle_pause().await,
                Err(error) => {
                    warn!(%error, "dispatch round failed; retrying shortly");
                    Duration::from_secs(1)
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.wakeup.notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }

    async fn idle_pause(&self) -> Duration {
        let max = Duration::from_secs(self.config.max_idle_seconds.max(1));
        match self.store.next_notification_at().await {
            Ok(Some(next)) => self
                .clock
                .real_duration(next.duration_since(self.clock.now()))
                .clamp(Duration::from_millis(20), max),
            Ok(None) => max,
            Err(error) => {
                warn!(%error, "cannot read the next message time");
                Duration::from_secs(1)
            }
        }
    }

    /// Claim up to `claim_batch` due messages (at most one per shipment) and finish each of
    /// them, `concurrency` at a time. Tests drive the outbox with it.
    pub async fn run_once(&self) -> Result<DispatchRound, StoreError> {
        self.run_batch(self.config.claim_batch).await
    }

    async fn run_batch(&self, limit: u32) -> Result<DispatchRound, StoreError> {
        let now = self.clock.now();
        let items = self
            .store
            .claim_notifications(&self.owner, now, self.lease_until(), limit)
            .await?;
        let outcomes: Vec<Result<Option<Completion>, StoreError>> = futures::stream::iter(items)
            .map(|item| self.deliver(item))
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut round = DispatchRound::default();
        for outcome in outcomes {
            let Some(completion) = outcome? else {
                round.lease_lost += 1;
                continue;
            };
            match completion {
                Completion::Sent { .. } => round.sent += 1,
                Completion::Retry { .. } => round.retried += 1,
                Completion::Failed { .. } => round.failed += 1,
                Completion::Deferred { .. } => round.deferred += 1,
                Completion::Suppressed { .. } => round.suppressed += 1,
            }
        }
        Ok(round)
    }

    /// Decide, send and record one message; returns what was recorded, `None` when the lease
    /// was lost (and the message left to its new holder).
    async fn deliver(&self, item: OutboxItem) -> Result<Option<Completion>, StoreError> {
        let n = &item.notification;
        let Some(completion) = self.attempt(&item).await else {
            warn!(notification = %n.id, "lease lost before the message was finished; left to its new holder");
            return Ok(None);
        };
        let completion = without_customer(completion, &item);
        match &completion {
            Completion::Sent { message_id, .. } => {
                info!(notification = %n.id, shipment = %n.shipment_id, trigger = %n.trigger, %message_id, "email sent")
            }
            Completion::Retry {
                error,
                available_at,
            } => {
                warn!(notification = %n.id, trigger = %n.trigger, %error, %available_at, "email failed; will retry")
            }
            Completion::Failed { error } => {
                warn!(notification = %n.id, trigger = %n.trigger, %error, "email failed for good")
            }
            Completion::Deferred { available_at } => {
                info!(notification = %n.id, trigger = %n.trigger, %available_at, "quiet hours; email waits")
            }
            Completion::Suppressed { why } => {
                info!(notification = %n.id, trigger = %n.trigger, %why, "email suppressed")
            }
        }
        let recorded = self
            .store
            .complete_notification(n.id, &self.owner, self.clock.now(), &completion)
            .await?;
        if !recorded {
            warn!(notification = %n.id, "lease lost before the outcome was recorded");
            return Ok(None);
        }
        Ok(Some(completion))
    }

    /// What became of one claimed message; `None` when its lease was lost before it was sent,
    /// so it is neither sent nor finished here.
    async fn attempt(&self, item: &OutboxItem) -> Option<Completion> {
        let (n, shipment) = (&item.notification, &item.shipment);
        let now = self.clock.now();
        // What the customer just asked for (a delivery change's outcome) is not marketing: it
        // goes whether or not they muted the parcel's updates.
        let asked_for = n.trigger.answers_the_customer();
        if shipment.muted && !asked_for {
            return Some(Completion::Suppressed {
                why: "the customer muted this shipment".into(),
            });
        }
        match self
            .store
            .is_suppressed(shipment.merchant_id, n.channel, &n.recipient)
            .await
        {
            Ok(true) if !asked_for => {
                return Some(Completion::Suppressed {
                    why: "the customer opted out of all of the merchant's messages".into(),
                });
            }
            Ok(_) => {}
            Err(error) => {
                return Some(self.retry(n.attempts, format!("reading the opt-outs: {error}"), now));
            }
        }
        // Attempts count when they start: one that never finished (the process died while
        // sending) still counts, so a message that crashes every time ends here.
        if n.attempts >= self.config.max_attempts {
            return Some(Completion::Failed {
                error: format!(
                    "gave up after {} attempts; the last one never finished",
                    n.attempts
                ),
            });
        }
        let brand = match self.brands.of(shipment.merchant_id).await {
            Ok(brand) => brand,
            Err(error) => {
                return Some(self.retry(
                    n.attempts,
                    format!("reading the merchant's settings: {error}"),
                    now,
                ));
            }
        };
        if !asked_for && !brand.settings.sends(n.trigger, n.channel) {
            return Some(Completion::Suppressed {
                why: format!(
                    "the merchant turned off `{}` messages by {}",
                    n.trigger,
                    n.channel.as_str()
                ),
            });
        }
        let tz = shipment.customer.time_zone.time_zone();
        if let Some(until) = brand.quiet_hours.and_then(|q| q.next_allowed(now, &tz)) {
            return Some(Completion::Deferred {
                available_at: until,
            });
        }
        let thread = match self.store.thread_message_ids(shipment.id).await {
            Ok(thread) => thread,
            Err(error) => {
                return Some(self.retry(n.attempts, format!("reading the thread: {error}"), now));
            }
        };
        let (message, message_id) = match compose_email(
            &self.carriers,
            self.brands.defaults(),
            &brand,
            n,
            shipment,
            thread,
            now,
        ) {
            Ok(composed) => composed,
            // A broken template or address will not fix itself by retrying: say so loudly.
            Err(error) => return Some(Completion::Failed { error }),
        };
        let attempts = match self
            .store
            .start_notification_attempt(n.id, &self.owner, self.clock.now(), self.lease_until())
            .await
        {
            Ok(Some(attempts)) => attempts,
            Ok(None) => return None,
            Err(error) => {
                return Some(self.retry(n.attempts, format!("counting the attempt: {error}"), now));
            }
        };
        match self.send_holding_the_lease(n.id, message).await? {
            Ok(provider_response) => Some(Completion::Sent {
                message_id,
                provider_response,
            }),
            Err(SendError::Permanent(error)) => Some(Completion::Failed { error }),
            Err(SendError::Transient(error)) => Some(self.retry(attempts - 1, error, now)),
        }
    }

    /// When a lease taken or renewed now runs out.
    fn lease_until(&self) -> Timestamp {
        let lease = Duration::from_secs(self.config.lease_seconds.max(1));
        self.clock
            .now()
            .checked_add(self.clock.simulated_duration(lease))
            .unwrap_or(Timestamp::MAX)
    }

    /// Send, renewing the message's lease while the provider takes its time, so that no other
    /// dispatcher claims and sends it a second time meanwhile. When a renewal finds the lease
    /// lost (another dispatcher took the message over), the send is abandoned before the
    /// provider has it all, and `None` says the message is no longer ours to finish.
    async fn send_holding_the_lease(
        &self,
        id: Uuid,
        message: lettre::Message,
    ) -> Option<Result<String, SendError>> {
        let lease = Duration::from_secs(self.config.lease_seconds.max(1));
        let send = self.email.send(message);
        tokio::pin!(send);
        loop {
            tokio::select! {
                result = &mut send => return Some(result),
                _ = tokio::time::sleep(lease / 3) => {
                    let renewal = self.store.extend_notification_lease(
                        id,
                        &self.owner,
                        self.clock.now(),
                        self.lease_until(),
                    );
                    match renewal.await {
                        Ok(true) => {}
                        Ok(false) => {
                            warn!(notification = %id, "lease lost while sending; abandoning the send");
                            return None;
                        }
                        Err(error) => warn!(notification = %id, %error, "cannot renew the lease while sending"),
                    }
                }
            }
        }
    }

    /// Try again later with doubling, jittered delays, or give up after `max_attempts`.
    /// `attempts_before` is how many attempts came before the one that just failed.
    fn retry(&self, attempts_before: u32, error: String, now: Timestamp) -> Completion {
        let attempts = attempts_before + 1;
        if attempts >= self.config.max_attempts {
            return Completion::Failed {
                error: format!("gave up after {attempts} attempts: {error}"),
            };
        }
        let base = self.config.retry_base_seconds.max(1) as f64;
        let max = self.config.retry_max_seconds.max(1) as f64;
        let delay = (base * 2f64.powi(attempts_before.min(30) as i32)).min(max);
        // Full jitter on the upper half keeps retries from many messages from bunching up.
        let delay = rand::rng().random_range(delay / 2.0..=delay);
        // Retry delays are real time even under an accelerated clock.
        let simulated = self
            .clock
            .simulated_duration(Duration::from_secs_f64(delay));
        Completion::Retry {
            error,
            available_at: now.checked_add(simulated).unwrap_or(Timestamp::MAX),
        }
    }
}

/// The email for message `n` about `shipment` from `brand`'s merchant, threaded after the
/// shipment's earlier emails `thread`, with its `Message-ID`; `Err` says what is wrong with the
/// template or the address, which retrying will not fix.
pub fn compose_email(
    carriers: &CarrierRegistry,
    sender: &Sender,
    brand: &Brand,
    n: &crate::domain::Notification,
    shipment: &crate::domain::Shipment,
    thread: Vec<String>,
    now: Timestamp,
) -> Result<(lettre::Message, String), String> {
    let context = message_context(carriers, sender, brand, n, shipment);
    let rendered = brand
        .templates
        .render_email(&context)
        .map_err(|error| format!("template: {error}"))?;
    let address = n
        .recipient
        .parse::<lettre::Address>()
        .map_err(|error| format!("the recipient is not an address: {error}"))?;
    let message_id = format!("<{}@{}>", n.id, sender.message_id_domain);
    let envelope = Envelope {
        from: brand.from.clone(),
        reply_to: brand.reply_to.clone(),
        to: Mailbox::new(shipment.customer.name.clone(), address),
        message_id: message_id.clone(),
        thread,
        date: std::time::SystemTime::from(now),
        unsubscribe_url: context.unsubscribe_url.clone(),
        trigger: n.trigger.as_str().to_owned(),
        shipment_id: shipment.id.to_string(),
    };
    let message = build_message(&envelope, &rendered)
        .map_err(|error| format!("building the email: {error}"))?;
    Ok((message, message_id))
}

/// What the templates get for message `n` about `shipment`, from `brand`'s merchant.
pub fn message_context(
    carriers: &CarrierRegistry,
    sender: &Sender,
    brand: &Brand,
    n: &crate::domain::Notification,
    shipment: &crate::domain::Shipment,
) -> MessageContext {
    let profile = carriers.get(&shipment.carrier).map(|c| c.profile());
    let base = sender.public_url.trim_end_matches('/');
    let token = |purpose| sender.links.token(purpose, shipment.id);
    MessageContext {
        trigger: n.trigger,
        language: n.locale.language_or(brand.language),
        customer_name: shipment.customer.name.clone(),
        merchant_name: brand.merchant_name.clone(),
        brand: brand.context.clone(),
        tracking_number: shipment.tracking_number.as_str().to_owned(),
        carrier_name: profile.map_or_else(|| shipment.carrier.to_string(), |p| p.name.clone()),
        order_reference: shipment.order_reference.clone(),
        tracking_page_url: format!("{base}/t/{}", token(LinkPurpose::Tracking)),
        carrier_tracking_url: profile
            .map(|p| p.tracking_url(&shipment.tracking_number))
            .unwrap_or_default(),
        unsubscribe_url: format!("{base}/u/{}", token(LinkPurpose::Preferences)),
        delivery_changes: delivery_changes(n, profile, &shipment.tracking_number),
        pickup_point: n.facts.pickup_point.as_ref().map(|p| PickupPointContext {
            name: p.name.clone(),
            address: p.address.clone(),
            hold_until: p.hold_until,
        }),
        facts: n.facts.clone(),
        time_zone: shipment.customer.time_zone.clone(),
        reason: n.reason.clone(),
    }
}

#[cfg(test)]
#[path = "dispatcher_tests.rs"]
mod tests;

//! Sending the emails to merchants' staff ([`MerchantEmail`]): each is claimed for a while,
//! sent, and settled; a failure is tried again later, backing off over about a day, so a change
//! handed to the merchant is never lost to a bad minute of a mail server. Several processes on
//! one database share the work: a claim holds an email for [`HOLD`].

use lettre::Message;
use lettre::message::Mailbox;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::email::{EmailSender, SendError};
use crate::clock::Clock;
use crate::domain::{MerchantEmail, MerchantEmailOutcome, merchant_email_retry_after};
use crate::store::{Store, StoreError};

/// How long a claimed email is this sender's (simulated time): long enough for a slow SMTP
/// server, short enough that a crashed sender's emails go out soon after.
const HOLD: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// Emails claimed at once.
const BATCH: u32 = 20;

/// Longest (real) pause between two looks for due emails.
const IDLE: Duration = Duration::from_secs(30);

/// Sends merchants' emails as they fall due.
#[derive(Clone)]
pub struct MerchantMailer {
    store: Arc<dyn Store>,
    email: Arc<dyn EmailSender>,
    clock: Clock,
    wakeup: Arc<Notify>,
}

impl MerchantMailer {
    /// A mailer woken early by `wakeup` (rung when an email is written).
    pub fn new(
        store: Arc<dyn Store>,
        email: Arc<dyn EmailSender>,
        clock: Clock,
        wakeup: Arc<Notify>,
    ) -> Self {
        MerchantMailer {
            store,
            email,
            clock,
            wakeup,
        }
    }

    /// Send due emails until `shutdown` is cancelled.
    pub async fn run(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.send_due().await {
                // A full batch: there may be more at once.
                Ok(sent) if sent == BATCH as usize => continue,
                Ok(_) => {}
                Err(error) => warn!(%error, "emailing merchants failed; retrying shortly"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wakeup.notified() => {}
                () = tokio::time::sleep(IDLE) => {}
            }
        }
    }

    /// Send one batch of due emails; how many were tried.
    pub async fn send_due(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let due = self
            .store
            .claim_merchant_emails(now, now + HOLD, BATCH)
            .await?;
        for email in &due {
            let outcome = self.send(email).await;
            match &outcome {
                MerchantEmailOutcome::Sent { .. } => {
                    info!(email = %email.id, merchant = %email.merchant_id, "merchant emailed");
                }
                MerchantEmailOutcome::Retry { error, at } => {
                    warn!(email = %email.id, merchant = %email.merchant_id, %error, retry_at = %at,
                        "emailing the merchant failed; trying again later");
                }
                MerchantEmailOutcome::GaveUp { error } => {
                    warn!(email = %email.id, merchant = %email.merchant_id, %error,
                        "emailing the merchant failed for good");
                }
            }
            self.store
                .settle_merchant_email(email, &outcome, self.clock.now())
                .await?;
        }
        Ok(due.len())
    }

    async fn send(&self, email: &MerchantEmail) -> MerchantEmailOutcome {
        let message = match build(email) {
            Ok(message) => message,
            Err(error) => return MerchantEmailOutcome::GaveUp { error },
        };
        let attempts = email.attempts + 1;
        match self.email.send(message).await {
            Ok(_) => MerchantEmailOutcome::Sent {
                at: self.clock.now(),
            },
            Err(SendError::Permanent(error)) => MerchantEmailOutcome::GaveUp { error },
            Err(SendError::Transient(error)) => match merchant_email_retry_after(attempts) {
                Some(wait) => MerchantEmailOutcome::Retry {
                    at: self.clock.now() + wait,
                    error,
                },
                None => MerchantEmailOutcome::GaveUp {
                    error: format!("{error} (after {attempts} tries)"),
                },
            },
        }
    }
}

/// The email as it goes out; an address that does not parse is the reason it cannot.
fn build(email: &MerchantEmail) -> Result<Message, String> {
    let from: Mailbox = email
        .sender
        .parse()
        .map_err(|e| format!("sender `{}`: {e}", email.sender))?;
    let to: Mailbox = email
        .recipient
        .parse()
        .map_err(|e| format!("recipient `{}`: {e}", email.recipient))?;
    Message::builder()
        .from(from)
        .to(to)
        .message_id(Some(format!(
            "<merchant-{}@{}>",
            email.id,
            domain_of(&email.sender)
        )))
        .subject(&email.subject)
        .body(email.body.clone())
        .map_err(|e| format!("building the email: {e}"))
}

/// The domain of a mailbox's address, for the `Message-ID`: a retry after a crash between the
/// server's answer and the record is then recognisable as the same email.
fn domain_of(mailbox: &str) -> &str {
    mailbox
        .rsplit_once('@')
        .map_or("waymark.invalid", |(_, d)| d.trim_end_matches('>'))
}

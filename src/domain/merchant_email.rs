//! Emails to a merchant's own staff, such as a delivery change to make with the carrier by
//! hand. They are written in the same transaction as what caused them and sent with retries, so
//! a bad minute of the merchant's mail server loses nothing.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::merchant::MerchantId;

/// Tries before an email is given up: about a day of backing off.
pub const MAX_MERCHANT_EMAIL_ATTEMPTS: u32 = 15;

/// Where a email stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MerchantEmailState {
    /// Not sent yet: it is tried at its due time.
    Pending,
    /// The merchant's mail server took it.
    Sent,
    /// Every try failed, or the server refused it for good; the merchant still finds what it
    /// was about in the API.
    Failed,
}

impl MerchantEmailState {
    pub const ALL: [MerchantEmailState; 3] = [
        MerchantEmailState::Pending,
        MerchantEmailState::Sent,
        MerchantEmailState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MerchantEmailState::Pending => "pending",
            MerchantEmailState::Sent => "sent",
            MerchantEmailState::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<MerchantEmailState> {
        MerchantEmailState::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// One email to a merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantEmail {
    pub id: Uuid,
    pub merchant_id: MerchantId,
    /// The shipment it is about, when it is about one.
    pub shipment_id: Option<Uuid>,
    /// The delivery change it is about: its audit trail records the email's fate.
    pub change_id: Option<Uuid>,
    pub state: MerchantEmailState,
    /// The `From` mailbox, as the merchant's brand has it (`Shop <shop@example.com>`).
    pub sender: String,
    pub recipient: String,
    pub subject: String,
    /// Plain text.
    pub body: String,
    /// Tries made so far.
    pub attempts: u32,
    /// When a pending email is next tried.
    pub due_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

impl MerchantEmail {
    /// A pending email, to be sent at once.
    pub fn new(
        merchant_id: MerchantId,
        sender: String,
        recipient: String,
        subject: String,
        body: String,
        now: Timestamp,
    ) -> Self {
        MerchantEmail {
            id: Uuid::now_v7(),
            merchant_id,
            shipment_id: None,
            change_id: None,
            state: MerchantEmailState::Pending,
            sender,
            recipient,
            subject,
            body,
            attempts: 0,
            due_at: Some(now),
            last_error: None,
            created_at: now,
            sent_at: None,
        }
    }
}

/// What became of one try of a email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MerchantEmailOutcome {
    /// The mail server took it.
    Sent { at: Timestamp },
    /// It failed for now: try again `at`.
    Retry { at: Timestamp, error: String },
    /// It failed for good.
    GaveUp { error: String },
}

/// When to try a email again after its `attempts`-th failure: a minute, doubling, at most two
/// hours apart; `None` once [`MAX_MERCHANT_EMAIL_ATTEMPTS`] are spent.
pub fn merchant_email_retry_after(attempts: u32) -> Option<SignedDuration> {
    (attempts < MAX_MERCHANT_EMAIL_ATTEMPTS).then(|| {
        let minutes = 1i64 << attempts.saturating_sub(1).min(7);
        SignedDuration::from_mins(minutes.min(120))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_two_hours_and_stop_after_about_a_day() {
        assert_eq!(
            merchant_email_retry_after(1),
            Some(SignedDuration::from_mins(1))
        );
        assert_eq!(
            merchant_email_retry_after(2),
            Some(SignedDuration::from_mins(2))
        );
        assert_eq!(
            merchant_email_retry_after(8),
            Some(SignedDuration::from_mins(120))
        );
        assert_eq!(
            merchant_email_retry_after(14),
            Some(SignedDuration::from_mins(120))
        );
        assert_eq!(
            merchant_email_retry_after(MAX_MERCHANT_EMAIL_ATTEMPTS),
            None
        );
        let total: i64 = (1..MAX_MERCHANT_EMAIL_ATTEMPTS)
            .filter_map(merchant_email_retry_after)
            .map(|d| d.as_mins())
            .sum();
        assert!((12 * 60..=30 * 60).contains(&total), "{total} minutes");
    }

    #[test]
    fn states_read_back() {
        for state in MerchantEmailState::ALL {
            assert_eq!(MerchantEmailState::parse(state.as_str()), Some(state));
        }
        assert_eq!(MerchantEmailState::parse("lost"), None);
    }
}

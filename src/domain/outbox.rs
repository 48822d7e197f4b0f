//! Notification intents: what the detectors decided to tell, waiting in the outbox to be sent.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use uuid::Uuid;

use super::detect::{Facts, Trigger};
use super::shipment::Locale;
use super::status::UnknownName;

/// How a message reaches its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
        }
    }
}

impl FromStr for Channel {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "email" => Ok(Channel::Email),
            _ => Err(UnknownName {
                kind: "channel",
                value: s.to_owned(),
            }),
        }
    }
}

/// Where a message is in its life. A message moves
/// `pending → sending → sent`, or back to `pending` to retry, or ends `failed`, `superseded` or
/// `suppressed`; the last four are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationState {
    /// Waiting to be sent once `available_at` has come (quiet hours and back-off push it later).
    Pending,
    /// Claimed by a dispatcher, whose lease says until when; an expired lease makes it claimable
    /// again.
    Sending,
    /// Accepted by the provider; `message_id` and the provider's answer are recorded.
    Sent,
    /// Will not be sent: the provider refused it permanently or retries ran out.
    Failed,
    /// Dropped unsent because a later message made it moot (delivered before "out for delivery").
    Superseded,
    /// Dropped unsent because the customer muted the shipment or unsubscribed.
    Suppressed,
}

impl NotificationState {
    pub const ALL: [NotificationState; 6] = [
        NotificationState::Pending,
        NotificationState::Sending,
        NotificationState::Sent,
        NotificationState::Failed,
        NotificationState::Superseded,
        NotificationState::Suppressed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationState::Pending => "pending",
            NotificationState::Sending => "sending",
            NotificationState::Sent => "sent",
            NotificationState::Failed => "failed",
            NotificationState::Superseded => "superseded",
            NotificationState::Suppressed => "suppressed",
        }
    }

    /// Nothing more will happen to a message in this state.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            NotificationState::Pending | NotificationState::Sending
        )
    }
}

impl FromStr for NotificationState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NotificationState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "notification state",
                value: s.to_owned(),
            })
    }
}

/// A message to write to the outbox together with the poll result that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewNotification {
    pub id: Uuid,
    pub trigger: Trigger,
    pub dedupe_key: String,
    pub channel: Channel,
    pub recipient: String,
    pub locale: Locale,
    /// Why it is sent, in plain English.
    pub reason: String,
    pub facts: Facts,
}

/// A message in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: Uuid,
    pub shipment_id: Uuid,
    /// Position among the shipment's messages; they are sent in this order.
    pub seq: i64,
    pub trigger: Trigger,
    pub dedupe_key: String,
    pub channel: Channel,
    pub recipient: String,
    pub locale: Locale,
    pub reason: String,
    pub facts: Facts,
    pub state: NotificationState,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// Not to be sent before this time.
    pub available_at: Timestamp,
    /// The `Message-ID` the email was sent with.
    pub message_id: Option<String>,
    /// What the provider answered (an SMTP server's queue id, a file name).
    pub provider_response: Option<String>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

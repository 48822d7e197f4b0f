//! Where Waymark keeps shipments, their timelines and the outbox. One trait, one implementation
//! per database; nothing outside this module knows which database it talks to.

#[cfg(test)]
mod conformance;
pub mod copy;
pub mod inspect;
pub mod postgres;
mod rows;
mod sqlite;
mod tokens;

pub use tokens::StoreTokens;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

use crate::carriers::CarrierAccount;
use crate::carriers::tokens::SharedToken;
use crate::domain::{
    ApiKey, ApiKeyHash, CarrierCode, ChangeEvent, ChangeRequest, ChangeState, Channel,
    EstimateChange, FetchCount, JourneyState, KeyedEvent, Merchant, MerchantEmail,
    MerchantEmailOutcome, MerchantId, MerchantSettings, MerchantSlug, NewNotification, NewShipment,
    Notification, Reason, Shipment, Status, TrackingNumber, Trigger,
};
use crate::vault::Vault;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is taken (a tracking number already registered on the account).
    #[error("{field}: {detail}")]
    Duplicate { field: &'static str, detail: String },
    /// The row is still needed by others (an account that shipments are registered on).
    #[error("{detail}")]
    InUse { detail: String },
    /// A row that cannot be read back into Waymark's types.
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://USER@HOST/DATABASE")]
    UnsupportedUrl(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// In which order due shipments are claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOrder {
    /// Oldest `next_poll_at` first: the normal case.
    DueFirst,
    /// Lowest `poll_priority` first (closest to delivery), then oldest: when the quota is short.
    NearestDeliveryFirst,
}

/// A request to lease due shipments of one carrier account.
#[derive(Debug, Clone)]
pub struct PollClaim<'a> {
    pub carrier_account_id: Uuid,
    pub owner: &'a str,
    pub now: Timestamp,
    pub lease_until: Timestamp,
    pub limit: u32,
    pub order: ClaimOrder,
}

/// Everything one successful poll of one shipment changes, written in one transaction.
#[derive(Debug, Clone)]
pub struct PollWrite {
    pub shipment_id: Uuid,
    /// The lease holder; the write is refused when someone else holds the shipment now.
    pub owner: String,
    pub now: Timestamp,
    /// Scans not stored before.
    pub new_events: Vec<KeyedEvent>,
    pub journey: JourneyState,
    pub estimate_change: Option<EstimateChange>,
    /// Messages to put in the outbox (ones whose dedupe key exists are skipped).
    pub notifications: Vec<NewNotification>,
    /// Pending messages with these triggers are marked superseded.
    pub supersede: Vec<Trigger>,
    /// `None` once the journey is over.
    pub next_poll_at: Option<Timestamp>,
    pub poll_priority: i32,
    /// The shipment's fetches in the carrier's day, this one included.
    pub fetched: FetchCount,
}

/// A failed poll of one shipment.
#[derive(Debug, Clone)]
pub struct PollFailure {
    pub shipment_id: Uuid,
    pub owner: String,
    pub now: Timestamp,
    /// `not_found`, `malformed`, `rejected`, `auth`, `rate_limited`, `transient`, `permanent`.
    pub kind: &'static str,
    pub detail: String,
    /// The start of what the carrier sent, when it made no sense.
    pub excerpt: Option<String>,
    /// Whether this counts towards back-off (a fresh label unknown to the carrier does not).
    pub count_failure: bool,
    pub next_poll_at: Timestamp,
    /// The shipment's fetches in the carrier's day, this one included: a failed fetch is a
    /// fetch too.
    pub fetched: FetchCount,
}

/// How a dispatcher finished with a claimed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The provider accepted it.
    Sent {
        message_id: String,
        provider_response: String,
    },
    /// It failed for now; try again at `available_at`.
    Retry {
        error: String,
        available_at: Timestamp,
    },
    /// It will never be sent.
    Failed { error: String },
    /// Not now (quiet hours); no attempt was made.
    Deferred { available_at: Timestamp },
    /// Not at all: the customer muted the shipment.
    Suppressed { why: String },
}

/// A claimed message with the shipment it is about.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub notification: Notification,
    pub shipment: Shipment,
}

/// How much work is left, for the demo and for health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    pub active_shipments: u64,
    pub unsent_notifications: u64,
    /// Shipments a poller holds the lease of right now.
    pub leased_shipments: u64,
    /// Messages a dispatcher is sending right now (or crashed sending).
    pub sending_notifications: u64,
}

/// A poll that failed, as kept for the merchant: what went wrong and what the carrier said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollErrorRecord {
    /// `malformed`, `auth`, `rate_limited`, …
    pub kind: String,
    pub detail: String,
    /// The start of the carrier's answer, when it made no sense.
    pub excerpt: Option<String>,
    pub occurred_at: Timestamp,
}

/// Which of a merchant's shipments a list shows, newest first, one page at a time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShipmentFilter {
    pub status: Option<Status>,
    pub reason: Option<Reason>,
    /// Late against the merchant's promise (the carrier's estimate ends after it) or told so
    /// (a `delayed` message was written); `false` for the others.
    pub delayed: Option<bool>,
    /// Told it stopped moving (a `stalled` message was written) with no scan since.
    pub stalled: Option<bool>,
    pub carrier: Option<CarrierCode>,
    /// Registered at or after.
    pub created_from: Option<Timestamp>,
    /// Registered before.
    pub created_until: Option<Timestamp>,
    pub order_reference: Option<String>,
    /// The page after this shipment (the last one of the previous page): the cursor. Ids are
    /// time-ordered, so a page never repeats or skips a shipment, whatever is registered while a
    /// merchant pages through.
    pub after: Option<Uuid>,
}

/// A registered shipment as the merchant changes it: the customer's contact details, the
/// promise, whether it is muted. Everything else is the journey's.
#[derive(Debug, Clone, PartialEq)]
pub struct ShipmentChanges {
    pub customer: crate::domain::Customer,
    pub promise: Option<crate::domain::DeliveryWindow>,
    pub muted: bool,
}

/// An API answer kept for its `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The SHA-256 of the request it answered.
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

/// Storage for shipments, timelines, carrier accounts and the outbox.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Bring the schema up to date.
    async fn migrate(&self) -> Result<(), StoreError>;

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Store `value` unless the key has one; return the value that is stored.
    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError>;

    /// Register a merchant; a second one with the same slug is a `Duplicate` naming `slug`.
    async fn create_merchant(&self, merchant: &Merchant) -> Result<(), StoreError>;
    async fn merchant(&self, id: MerchantId) -> Result<Option<Merchant>, StoreError>;
    async fn merchant_by_slug(&self, slug: &MerchantSlug) -> Result<Option<Merchant>, StoreError>;
    /// Every merchant, by slug.
    async fn merchants(&self) -> Result<Vec<Merchant>, StoreError>;
    /// The merchant's branding and notification settings; `None` when there is no such
    /// merchant.
    async fn merchant_settings(
        &self,
        merchant: MerchantId,
    ) -> Result<Option<MerchantSettings>, StoreError>;
    /// Send `recipient` nothing more from the merchant over `channel` (they opted out of all of
    /// its messages). Only a hash of the address is kept.
    async fn suppress_recipient(
        &self,
        merchant: MerchantId,
        channel: Channel,
        recipient: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Whether `recipient` opted out of the merchant's messages over `channel`.
    async fn is_suppressed(
        &self,
        merchant: MerchantId,
        channel: Channel,
        recipient: &str,
    ) -> Result<bool, StoreError>;
    /// The merchant's own templates: (name, source, last changed), by name.
    async fn merchant_templates(
        &self,
        merchant: MerchantId,
    ) -> Result<Vec<(String, String, Timestamp)>, StoreError>;
    /// Keep `source` as the merchant's version of template `name`.
    async fn save_merchant_template(
        &self,
        merchant: MerchantId,
        name: &str,
        source: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Go back to the bundled template `name`; false when the merchant had no version of it.
    async fn delete_merchant_template(
        &self,
        merchant: MerchantId,
        name: &str,
    ) -> Result<bool, StoreError>;
    /// Keep `logo` as the merchant's logo, or remove it (`None`); false when there is no such
    /// merchant (or, removing, no logo).
    async fn save_merchant_logo(
        &self,
        merchant: MerchantId,
        logo: Option<&MerchantLogo>,
    ) -> Result<bool, StoreError>;
    async fn merchant_logo(&self, merchant: MerchantId)
    -> Result<Option<MerchantLogo>, StoreError>;
    /// When the merchant's logo was uploaded, without its bytes: what a brand needs to link it.
    async fn merchant_logo_updated_at(
        &self,
        merchant: MerchantId,
    ) -> Result<Option<Timestamp>, StoreError>;
    /// Replace the merchant's settings; false when there is no such merchant.
    async fn save_merchant_settings(
        &self,
        merchant: MerchantId,
        settings: &MerchantSettings,
    ) -> Result<bool, StoreError>;

    /// Keep a new API key: its listing and the hash it is recognised by (never the key).
    async fn create_api_key(&self, key: &ApiKey, hash: &ApiKeyHash) -> Result<(), StoreError>;
    /// The merchant's keys, revoked ones included, oldest first.
    async fn api_keys(&self, merchant: MerchantId) -> Result<Vec<ApiKey>, StoreError>;
    /// Revoke the merchant's key with this id or visible prefix; it stops working at once. The
    /// key as it now is, or `None` when the merchant has no such key.
    async fn revoke_api_key(
        &self,
        merchant: MerchantId,
        id_or_prefix: &str,
        now: Timestamp,
    ) -> Result<Option<ApiKey>, StoreError>;
    /// The unrevoked key with this hash, noting that it was used at `now` (at most once a
    /// minute per key).
    async fn authenticate_api_key(
        &self,
        hash: &ApiKeyHash,
        now: Timestamp,
    ) -> Result<Option<ApiKey>, StoreError>;

    /// Seal every stored secret (carrier credentials) that is not sealed under the vault's
    /// current master key: ones stored before sealing existed, or under an older key. Returns
    /// how many were sealed again. Run at every start and by `waymark keys rotate`.
    async fn reseal_secrets(&self) -> Result<u64, StoreError>;

    /// The answer kept for the merchant's `Idempotency-Key`, if any.
    async fn idempotent_response(
        &self,
        merchant: MerchantId,
        key: &str,
    ) -> Result<Option<StoredResponse>, StoreError>;
    /// Keep `status` and `body` as the answer to the request with `request_hash` under the key,
    /// unless an answer is kept already; returns the answer that is kept.
    async fn save_idempotent_response(
        &self,
        merchant: MerchantId,
        key: &str,
        request_hash: &str,
        status: u16,
        body: &str,
        now: Timestamp,
    ) -> Result<StoredResponse, StoreError>;
    /// Forget the answers kept since before `before`; returns how many.
    async fn prune_idempotent_responses(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Register an account; a second one of the merchant with the same carrier and name is a
    /// `Duplicate`.
    async fn create_carrier_account(&self, account: &CarrierAccount) -> Result<(), StoreError>;
    /// Create the account, or update the credentials, base URL and limits of the merchant's one
    /// with the same carrier and name (keeping its id); return what is stored.
    async fn save_carrier_account(
        &self,
        account: &CarrierAccount,
    ) -> Result<CarrierAccount, StoreError>;
    async fn carrier_account(&self, id: Uuid) -> Result<Option<CarrierAccount>, StoreError>;
    /// Write the name, credentials, base URL and limits of the merchant's account with
    /// `account.id`; false when the merchant has no such account. Another account of the
    /// merchant's with the new name is a `Duplicate` naming `name`.
    async fn update_carrier_account(&self, account: &CarrierAccount) -> Result<bool, StoreError>;
    /// Delete the merchant's account; false when it has none with this id, `InUse` while
    /// shipments are registered on it.
    async fn delete_carrier_account(
        &self,
        merchant: MerchantId,
        id: Uuid,
    ) -> Result<bool, StoreError>;
    async fn carrier_account_by_name(
        &self,
        merchant: MerchantId,
        carrier: &CarrierCode,
        name: &str,
    ) -> Result<Option<CarrierAccount>, StoreError>;
    /// Every merchant's accounts (the pollers work for all of them).
    async fn carrier_accounts(&self) -> Result<Vec<CarrierAccount>, StoreError>;
    /// One merchant's accounts, by carrier and name.
    async fn merchant_carrier_accounts(
        &self,
        merchant: MerchantId,
    ) -> Result<Vec<CarrierAccount>, StoreError>;

    /// Register a shipment, due for its first poll at `now`. A tracking number already on the
    /// account is a `Duplicate` naming `tracking_number`.
    async fn insert_shipment(
        &self,
        new: &NewShipment,
        now: Timestamp,
    ) -> Result<Shipment, StoreError>;
    /// Register shipments together, each as [`Store::insert_shipment`] would, all in one
    /// transaction. Returns each one's id or why it was refused, in `batch`'s order: a tracking
    /// number the account already has (or that an earlier shipment of the batch has) is a
    /// `Duplicate` naming `tracking_number` for that shipment alone, and the others still go
    /// in. Any other failure is the whole call's, and then none of the batch is stored.
    async fn insert_shipments(
        &self,
        batch: &[NewShipment],
        now: Timestamp,
    ) -> Result<Vec<Result<Uuid, StoreError>>, StoreError>;
    async fn shipment(&self, id: Uuid) -> Result<Option<Shipment>, StoreError>;
    /// The shipment, if it is the merchant's.
    async fn merchant_shipment(
        &self,
        merchant: MerchantId,
        id: Uuid,
    ) -> Result<Option<Shipment>, StoreError>;
    /// Change the merchant's shipment as `changes` says; a changed promise is also kept in the
    /// estimate history. `None` when it is not the merchant's or was erased.
    async fn update_shipment(
        &self,
        merchant: MerchantId,
        id: Uuid,
        changes: &ShipmentChanges,
        now: Timestamp,
    ) -> Result<Option<Shipment>, StoreError>;
    /// Up to `limit` of the merchant's shipments that pass `filter`, newest first.
    async fn merchant_shipments(
        &self,
        merchant: MerchantId,
        filter: &ShipmentFilter,
        limit: u32,
    ) -> Result<Vec<Shipment>, StoreError>;
    async fn shipments_by_number(
        &self,
        number: &TrackingNumber,
    ) -> Result<Vec<Shipment>, StoreError>;
    async fn shipment_by_token(&self, token: &str) -> Result<Option<Shipment>, StoreError>;
    /// Mute or unmute a shipment; false when there is no such shipment.
    async fn set_muted(&self, id: Uuid, muted: bool) -> Result<bool, StoreError>;
    /// The shipment's scans in the order they happened.
    async fn timeline(&self, shipment_id: Uuid) -> Result<Vec<KeyedEvent>, StoreError>;
    async fn estimate_changes(
        &self,
        shipment_id: Uuid,
    ) -> Result<Vec<(Timestamp, EstimateChange)>, StoreError>;
    /// Dedupe keys of every message ever written for the shipment.
    async fn fired_keys(&self, shipment_id: Uuid) -> Result<HashSet<String>, StoreError>;
    /// When the shipment's latest message with this trigger was sent, if one was.
    async fn last_sent_at(
        &self,
        shipment_id: Uuid,
        trigger: Trigger,
    ) -> Result<Option<Timestamp>, StoreError>;

    /// When the next shipment becomes claimable: the earliest `next_poll_at` of an unleased
    /// active shipment, or the earliest expiry of a lease.
    async fn next_poll_at(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Lease due shipments (due and unleased, or with an expired lease) in one statement.
    async fn claim_due_shipments(&self, claim: &PollClaim<'_>)
    -> Result<Vec<Shipment>, StoreError>;
    /// Count `calls` against the account's quota for `day`; false (and nothing counted) when it
    /// would exceed `quota`.
    async fn reserve_carrier_calls(
        &self,
        carrier_account_id: Uuid,
        day: &str,
        calls: u32,
        quota: Option<u32>,
    ) -> Result<bool, StoreError>;
    /// Take the account's next call slot under its requests-per-second limit, shared by every
    /// process on the database: one call every `interval`, up to `burst` at once. `now` is real
    /// time (rate limits are the carrier's, not the simulated clock's); the answer is when the
    /// call may be made, `now` or later.
    async fn reserve_carrier_slot(
        &self,
        carrier_account_id: Uuid,
        now: Timestamp,
        interval: SignedDuration,
        burst: u32,
    ) -> Result<Timestamp, StoreError>;
    /// The account's shared OAuth2 token (see [`crate::carriers::tokens`]), if one is kept and
    /// can still be opened under the master keys.
    async fn carrier_token(
        &self,
        carrier_account_id: Uuid,
    ) -> Result<Option<SharedToken>, StoreError>;
    /// Take the right to fetch the account's token for `owner` until `until`; false while
    /// another owner holds it (and `now` is before its `until`).
    async fn begin_carrier_token_fetch(
        &self,
        carrier_account_id: Uuid,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Keep `token` (sealed) as the account's, ending any fetch.
    async fn save_carrier_token(
        &self,
        carrier_account_id: Uuid,
        token: &SharedToken,
    ) -> Result<(), StoreError>;
    /// End `owner`'s fetch without a token.
    async fn abandon_carrier_token_fetch(
        &self,
        carrier_account_id: Uuid,
        owner: &str,
    ) -> Result<(), StoreError>;
    /// Drop the token `token_id`, if it is still the account's.
    async fn forget_carrier_token(
        &self,
        carrier_account_id: Uuid,
        token_id: Uuid,
    ) -> Result<(), StoreError>;
    /// Push every due, unleased shipment of the account past `until` (its quota is spent),
    /// each to a random moment within `spread` of it (see [`Store::release_shipments`]).
    async fn defer_due_shipments(
        &self,
        carrier_account_id: Uuid,
        now: Timestamp,
        until: Timestamp,
        spread: SignedDuration,
    ) -> Result<u64, StoreError>;
    /// Keep the shipments `owner` still holds among `ids` leased until `lease_until` (a slow
    /// carrier call must not let another worker poll them again meanwhile); returns the ids
    /// whose lease was renewed. A missing id is one whose lease was lost: taken by another
    /// worker, or run out before `now` (another may be claiming it at this very moment).
    async fn extend_shipment_leases(
        &self,
        ids: &[Uuid],
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// Give leased shipments back untouched, each due again at a random moment between
    /// `next_poll_at` and `spread` later, the most urgent (lowest `poll_priority`) in the first
    /// quarter of it: shipments held back together do not all come due at the same second.
    async fn release_shipments(
        &self,
        ids: &[Uuid],
        owner: &str,
        next_poll_at: Timestamp,
        spread: SignedDuration,
    ) -> Result<(), StoreError>;
    /// Write a poll's result; false (and nothing written) when the lease was lost.
    async fn record_poll(&self, write: &PollWrite) -> Result<bool, StoreError>;
    /// Record a failed poll on the shipment and when to try again; false when the lease was lost.
    async fn record_poll_failure(&self, failure: &PollFailure) -> Result<bool, StoreError>;

    /// Lease messages that are due, at most one per shipment and only the shipment's earliest
    /// unsent one, so a shipment's messages go out in order.
    async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError>;
    /// When the next message becomes claimable: among each shipment's first unsent message,
    /// the earliest `available_at` (pending) or lease expiry (sending). Messages queued behind
    /// an earlier one do not count, or a dispatcher would wake for work it cannot claim.
    async fn next_notification_at(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Keep a message being sent leased until `lease_until` (a slow provider must not let
    /// another dispatcher send it a second time); false when the lease was already lost (taken
    /// over, or run out before `now`).
    async fn extend_notification_lease(
        &self,
        id: Uuid,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Count an attempt to send a claimed message, right before it is made, and renew its lease
    /// until `lease_until`: counted when it starts, an attempt that crashes the process still
    /// counts towards the limit. Returns the attempts made so far, this one included; `None`
    /// (nothing counted) when the lease was lost (taken over, or run out before `now`), and the
    /// message must not be sent.
    async fn start_notification_attempt(
        &self,
        id: Uuid,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<u32>, StoreError>;
    /// `Message-ID`s of the shipment's sent emails, oldest first, for threading.
    async fn thread_message_ids(&self, shipment_id: Uuid) -> Result<Vec<String>, StoreError>;
    /// Finish a claimed message; false when the lease was lost. Attempts are counted when they
    /// start ([`Store::start_notification_attempt`]), not here.
    async fn complete_notification(
        &self,
        id: Uuid,
        owner: &str,
        now: Timestamp,
        completion: &Completion,
    ) -> Result<bool, StoreError>;
    /// The shipment's messages in order.
    async fn notifications(&self, shipment_id: Uuid) -> Result<Vec<Notification>, StoreError>;
    async fn backlog(&self) -> Result<Backlog, StoreError>;

    /// Take the periodic job `name` to run it now, if it is due (its row is created due at
    /// `first_run_at` the first time it is asked for) and nobody holds it: one worker at a time
    /// per database. False when it is not due or another worker runs it.
    async fn claim_job(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        first_run_at: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Keep running job `name`: false when the lease was lost (it ran out before `now`).
    async fn extend_job_lease(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError>;
    /// The job ran: record how (`outcome`, for the operator) and when it is due next.
    async fn finish_job(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        outcome: &str,
        next_run_at: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Stop polling the shipments the carrier never found since before `never_found_before`,
    /// and the ones with no sign of life (scan or registration) since before `silent_before`:
    /// each becomes `expired`, and the merchant is told in a notice. Leased shipments (a poll in
    /// flight) wait for the next run.
    async fn expire_shipments(
        &self,
        now: Timestamp,
        never_found_before: Timestamp,
        silent_before: Timestamp,
    ) -> Result<Vec<ExpiredShipment>, StoreError>;
    /// The notices for the merchant created since `since`, oldest first.
    async fn merchant_notices(&self, since: Timestamp) -> Result<Vec<MerchantNotice>, StoreError>;
    /// Erase the personal data of up to `limit` shipments whose journey ended before
    /// `finished_before` (see [`Store::erase_shipment`]); returns how many were erased.
    async fn erase_finished_shipments(
        &self,
        finished_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;
    /// Erase one shipment's personal data: the customer's address, name and postal code, the
    /// order reference, the carriers' words about the parcel (they name who took it), its
    /// poll errors, and its messages' recipients and details; its links stop working and it is
    /// no longer polled or written to. What is left (carrier, times, statuses, estimates) is
    /// anonymous. On disk too: nothing of it stays behind in free pages or the log. False when
    /// there is no such shipment.
    async fn erase_shipment(&self, id: Uuid, now: Timestamp) -> Result<bool, StoreError>;
    /// Delete poll errors recorded before `before`, and all but the `keep_per_shipment` latest
    /// of each shipment; returns how many went.
    async fn prune_poll_errors(
        &self,
        before: Timestamp,
        keep_per_shipment: u32,
    ) -> Result<u64, StoreError>;
    /// A shipment's failed polls still kept, oldest first.
    async fn poll_errors(&self, shipment: Uuid) -> Result<Vec<PollErrorRecord>, StoreError>;

    // Delivery changes.
    /// Store a new request, with `note` as the first step of its audit trail.
    async fn create_delivery_change(
        &self,
        request: &ChangeRequest,
        note: &str,
    ) -> Result<(), StoreError>;
    /// Move a request from `before` (its state and wrong-code count as read) to `after`, adding
    /// `note` to its audit trail, `notify` to its shipment's outbox and `email` (handing it to
    /// the merchant) to the merchant's, all or nothing; false, with nothing
    /// written, when the request has moved on since it was read.
    async fn update_delivery_change(
        &self,
        before: &ChangeRequest,
        after: &ChangeRequest,
        note: &str,
        notify: Option<&NewNotification>,
        email: Option<&MerchantEmail>,
    ) -> Result<bool, StoreError>;
    async fn delivery_change(&self, id: Uuid) -> Result<Option<ChangeRequest>, StoreError>;
    /// A shipment's requests, newest first.
    async fn shipment_delivery_changes(
        &self,
        shipment: Uuid,
    ) -> Result<Vec<ChangeRequest>, StoreError>;
    /// A merchant's requests, newest first, only those in `state` when given.
    async fn merchant_delivery_changes(
        &self,
        merchant: MerchantId,
        state: Option<ChangeState>,
        limit: u32,
    ) -> Result<Vec<ChangeRequest>, StoreError>;
    /// A request's audit trail, oldest first.
    async fn delivery_change_events(&self, id: Uuid) -> Result<Vec<ChangeEvent>, StoreError>;
    /// How many requests the shipment's customer made since `since` (each sent a code).
    async fn delivery_changes_since(
        &self,
        shipment: Uuid,
        since: Timestamp,
    ) -> Result<u64, StoreError>;
    /// The requests carried out through a carrier, of shipments still on their way: what the
    /// carriers that keep no record of their own (the sandbox) are told again at a start.
    async fn executed_delivery_changes(&self) -> Result<Vec<AcceptedChange>, StoreError>;

    // Emails to merchants.
    /// Up to `limit` pending emails to merchants due by `now`, oldest first, each held for this caller
    /// until `hold_until` (another sender takes it over only after that).
    async fn claim_merchant_emails(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<MerchantEmail>, StoreError>;
    /// Record one try of `email`, and, for one about a delivery change, note it in the
    /// change's audit trail.
    async fn settle_merchant_email(
        &self,
        email: &MerchantEmail,
        outcome: &MerchantEmailOutcome,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The emails to a merchant, oldest first.
    async fn merchant_emails(&self, merchant: MerchantId)
    -> Result<Vec<MerchantEmail>, StoreError>;
}

/// A merchant's uploaded logo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantLogo {
    /// `image/png`, `image/jpeg` or `image/webp`.
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub updated_at: Timestamp,
}

/// A delivery change a carrier carried out, with the parcel it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedChange {
    pub carrier: CarrierCode,
    pub tracking_number: TrackingNumber,
    /// When the shipment was registered with Waymark.
    pub registered_at: Timestamp,
    pub request: ChangeRequest,
}

/// A shipment Waymark stopped polling, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredShipment {
    pub shipment_id: Uuid,
    /// `never_found` or `no_news`.
    pub why: &'static str,
}

/// Something the merchant is told about a shipment outside the customer's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantNotice {
    pub id: Uuid,
    pub shipment_id: Uuid,
    /// `shipment_expired`.
    pub kind: String,
    /// In words, for the merchant.
    pub detail: String,
    pub created_at: Timestamp,
}

/// The databases Waymark can keep its data in, by the scheme of their URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }
}

/// Whether Waymark can open a database at `url` (checked with the configuration, before
/// anything starts).
pub fn check_url(url: &str) -> Result<(), StoreError> {
    Backend::of(url).map(|_| ())
}

/// Open the database a URL names: an SQLite file (`sqlite://waymark.db`, created when missing)
/// or a PostgreSQL database (`postgres://` or `postgresql://`, which must exist) that several
/// replicas may share; secrets are sealed with `vault`.
pub async fn connect(url: &str, vault: Vault) -> Result<Arc<dyn Store>, StoreError> {
    match Backend::of(url)? {
        Backend::Sqlite => Ok(Arc::new(SqliteStore::connect(url, vault).await?)),
        Backend::Postgres => Ok(Arc::new(PostgresStore::connect(url, vault).await?)),
    }
}

/// Whether a Waymark database is at `url` already: an SQLite file, or a PostgreSQL database
/// with Waymark's tables.
pub async fn exists(url: &str) -> Result<bool, StoreError> {
    match Backend::of(url)? {
        Backend::Sqlite => {
            Ok(sqlite::file_of(url).is_some_and(|p| std::path::Path::new(p).exists()))
        }
        Backend::Postgres => postgres::has_tables(url).await,
    }
}

/// Delete everything the database at `url` holds, for the demo's fresh start: an SQLite
/// database's files, or every table of a PostgreSQL database. The caller makes sure it is one
/// the demo made.
pub async fn remove_database(url: &str) -> Result<(), StoreError> {
    match Backend::of(url)? {
        Backend::Sqlite => sqlite::remove_files(url),
        Backend::Postgres => postgres::drop_everything(url).await,
    }
}

/// Where the master key file is kept when the configuration names none: beside an SQLite
/// database (`waymark.db` → `waymark.db.key`, so a second database on the machine has its own),
/// else `waymark.key` in the working directory.
pub fn default_key_file(url: &str) -> std::path::PathBuf {
    match sqlite::file_of(url) {
        Some(path) => std::path::PathBuf::from(format!("{path}.key")),
        None => std::path::PathBuf::from("waymark.key"),
    }
}

/// How a recipient is kept in the suppression list: the SHA-256 of the address in lower case.
pub fn recipient_hash(recipient: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        recipient.trim().to_lowercase().as_bytes(),
    ))
}

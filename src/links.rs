//! The customer's links: the tracking page and the preferences (unsubscribe) page of each
//! shipment, each with a token of its own.
//!
//! A token is the shipment's id and an HMAC-SHA256 of it under the Waymark's link secret, with
//! the link's purpose in the MAC: `base64url(id ‖ mac[..16])`, 43 characters. The page finds the
//! shipment by the id, and only after the MAC checks out (in constant time), so a token cannot
//! be guessed or turned into the other link: a tracking link forwarded to a friend does not
//! let them unsubscribe the customer. Nothing is stored per link, so no index has to be written
//! for it when a million shipments are imported.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// Bytes of the MAC kept in a token: 128 bits, beyond guessing.
const MAC_LEN: usize = 16;
/// The length of a token's text.
pub const TOKEN_LEN: usize = 43;

/// Which page a token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// The tracking page, `/t/{token}`.
    Tracking,
    /// The preferences page, `/u/{token}`: unsubscribe from this shipment or the merchant.
    Preferences,
    /// A tracking page unlocked with the destination's postal code (the cookie that says so).
    Unlocked,
    /// A form on a page, so that only Waymark's own page can post it (CSRF).
    Form,
    /// The one-time code of a delivery change, kept as its MAC (the id is the request's).
    OneTimeCode,
}

impl LinkPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            LinkPurpose::Tracking => b"waymark link: tracking\0",
            LinkPurpose::Preferences => b"waymark link: preferences\0",
            LinkPurpose::Unlocked => b"waymark stamp: unlocked\0",
            LinkPurpose::Form => b"waymark stamp: form\0",
            LinkPurpose::OneTimeCode => b"waymark code: delivery change\0",
        }
    }
}

/// Makes and checks link tokens under one secret. Cheap to clone.
#[derive(Clone)]
pub struct Links {
    secret: Arc<[u8; 32]>,
}

impl fmt::Debug for Links {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Links([redacted])")
    }
}

impl Links {
    /// Links under `secret` (kept with the data, so every replica makes the same links).
    pub fn new(secret: [u8; 32]) -> Self {
        Links {
            secret: Arc::new(secret),
        }
    }

    /// A new random secret, as hex, for a Waymark's first start.
    pub fn generate_secret() -> String {
        let mut bytes = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut bytes);
        hex::encode(bytes)
    }

    /// Links under a secret stored as hex by [`Links::generate_secret`].
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        Some(Links::new(bytes.try_into().ok()?))
    }

    fn mac(&self, purpose: LinkPurpose, id: Uuid) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(purpose.label());
        mac.update(id.as_bytes());
        mac
    }

    /// The token of shipment `id`'s link for `purpose`.
    pub fn token(&self, purpose: LinkPurpose, id: Uuid) -> String {
        let tag = self.mac(purpose, id).finalize().into_bytes();
        let mut bytes = Vec::with_capacity(16 + MAC_LEN);
        bytes.extend_from_slice(id.as_bytes());
        bytes.extend_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The shipment a token for `purpose` was made for, if it is one of this Waymark's.
    pub fn shipment(&self, purpose: LinkPurpose, token: &str) -> Option<Uuid> {
        if token.len() != TOKEN_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let (id, tag) = bytes.split_at_checked(16)?;
        let id = Uuid::from_slice(id).ok()?;
        // `verify_truncated_left` compares in constant time.
        self.mac(purpose, id).verify_truncated_left(tag).ok()?;
        Some(id)
    }
}

impl Links {
    /// How the one-time `code` of the delivery-change request `request` is stored: its MAC
    /// under the link secret, hex. Without the secret, a stolen database does not give the
    /// code away (a plain hash of six digits would, by trying the million of them).
    pub fn code_hash(&self, request: Uuid, code: &str) -> String {
        let mut mac = self.mac(LinkPurpose::OneTimeCode, request);
        mac.update(code.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `code` is the one whose [`Links::code_hash`] is `stored`, compared in constant
    /// time.
    pub fn check_code(&self, request: Uuid, code: &str, stored: &str) -> bool {
        let Ok(stored) = hex::decode(stored) else {
            return false;
        };
        let mut mac = self.mac(LinkPurpose::OneTimeCode, request);
        mac.update(code.as_bytes());
        mac.verify_slice(&stored).is_ok()
    }

    /// A proof for `purpose` about shipment `id` that holds until `until`:
    /// `<unix seconds>.<base64url MAC>`, for a cookie or a form field.
    pub fn stamp(&self, purpose: LinkPurpose, id: Uuid, until: jiff::Timestamp) -> String {
        let seconds = until.as_second();
        let mut mac = self.mac(purpose, id);
        mac.update(&seconds.to_be_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{seconds}.{}", URL_SAFE_NO_PAD.encode(&tag[..MAC_LEN]))
    }

    /// Whether `stamp` is this Waymark's proof for `purpose` about `id`, still valid at `now`.
    pub fn check_stamp(
        &self,
        purpose: LinkPurpose,
        id: Uuid,
        stamp: &str,
        now: jiff::Timestamp,
    ) -> bool {
        let Some((seconds, tag)) = stamp.split_once('.') else {
            return false;
        };
        let (Ok(seconds), Ok(tag)) = (seconds.parse::<i64>(), URL_SAFE_NO_PAD.decode(tag)) else {
            return false;
        };
        let mut mac = self.mac(purpose, id);
        mac.update(&seconds.to_be_bytes());
        mac.verify_truncated_left(&tag).is_ok() && now.as_second() < seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Links {
        Links::from_hex(&Links::generate_secret()).unwrap()
    }

    #[test]
    fn a_token_opens_its_own_page_of_its_own_shipment_only() {
        let links = links();
        let id = Uuid::now_v7();
        let tracking = links.token(LinkPurpose::Tracking, id);
        let preferences = links.token(LinkPurpose::Preferences, id);
        assert_eq!(tracking.len(), TOKEN_LEN);
        assert_ne!(tracking, preferences);
        assert_eq!(links.shipment(LinkPurpose::Tracking, &tracking), Some(id));
        assert_eq!(
            links.shipment(LinkPurpose::Preferences, &preferences),
            Some(id)
        );
        assert_eq!(links.shipment(LinkPurpose::Preferences, &tracking), None);
        assert_eq!(links.shipment(LinkPurpose::Tracking, &preferences), None);
        // Another Waymark's secret, or a changed character, opens nothing.
        assert_eq!(
            self::links().shipment(LinkPurpose::Tracking, &tracking),
            None
        );
        let mut forged = tracking.clone().into_bytes();
        forged[30] = if forged[30] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(links.shipment(LinkPurpose::Tracking, &forged), None);
        for junk in ["", "short", &"A".repeat(TOKEN_LEN), &"!".repeat(TOKEN_LEN)] {
            assert_eq!(
                links.shipment(LinkPurpose::Tracking, junk),
                None,
                "{junk:?}"
            );
        }
    }

    #[test]
    fn a_stamp_holds_for_its_purpose_and_shipment_until_it_runs_out() {
        let links = links();
        let id = Uuid::now_v7();
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let until = now + jiff::SignedDuration::from_hours(1);
        let stamp = links.stamp(LinkPurpose::Unlocked, id, until);
        assert!(links.check_stamp(LinkPurpose::Unlocked, id, &stamp, now));
        assert!(!links.check_stamp(LinkPurpose::Unlocked, id, &stamp, until));
        assert!(!links.check_stamp(LinkPurpose::Form, id, &stamp, now));
        assert!(!links.check_stamp(LinkPurpose::Unlocked, Uuid::now_v7(), &stamp, now));
        let later = stamp.replacen(&until.as_second().to_string(), "9999999999", 1);
        assert!(
            !links.check_stamp(LinkPurpose::Unlocked, id, &later, now),
            "{later}"
        );
        for junk in ["", ".", "x.y", "1.", ".abc"] {
            assert!(!links.check_stamp(LinkPurpose::Unlocked, id, junk, now));
        }
    }

    #[test]
    fn one_time_codes_are_kept_as_macs_and_checked_against_them() {
        let links = links();
        let request = Uuid::now_v7();
        let stored = links.code_hash(request, "042917");
        assert!(!stored.contains("042917"));
        assert!(links.check_code(request, "042917", &stored));
        assert!(!links.check_code(request, "042918", &stored));
        assert!(
            !links.check_code(Uuid::now_v7(), "042917", &stored),
            "another request's"
        );
        assert!(!links.check_code(request, "042917", "not hex"));
    }

    #[test]
    fn the_secret_never_shows() {
        let secret = Links::generate_secret();
        assert!(!format!("{:?}", Links::from_hex(&secret).unwrap()).contains(&secret[..8]));
        assert!(Links::from_hex("not hex").is_none());
        assert!(Links::from_hex("abcd").is_none());
    }
}

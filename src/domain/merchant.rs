//! Merchants: the tenants of a Waymark. A merchant owns its carrier accounts, the shipments
//! registered on them and the API keys its systems call with; nothing of one merchant is visible
//! to another. A single shop is the `default` merchant, which exists from the first start.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use uuid::Uuid;

use super::InvalidField;

/// A merchant's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MerchantId(pub Uuid);

impl MerchantId {
    /// The `default` merchant's: the shop of a single-shop Waymark, and the owner of everything
    /// registered before merchants existed (migration 0007 creates it with this id).
    pub const DEFAULT: MerchantId =
        MerchantId(Uuid::from_u128(0x00000000_0000_7000_8000_000000000001));

    /// A fresh id for a new merchant.
    pub fn new() -> Self {
        MerchantId(Uuid::now_v7())
    }
}

impl Default for MerchantId {
    /// The `default` merchant.
    fn default() -> Self {
        MerchantId::DEFAULT
    }
}

impl fmt::Display for MerchantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A merchant's handle in the CLI and in logs: 1 to 40 lowercase ASCII letters, digits and
/// dashes, starting with a letter or digit (`default`, `shop-berlin`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MerchantSlug(String);

impl MerchantSlug {
    /// The slug of the merchant a single-shop Waymark serves.
    pub const DEFAULT: &'static str = "default";

    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let field = "slug";
        let slug = raw.trim();
        if slug.is_empty() || slug.len() > 40 {
            return Err(InvalidField::new(field, "must be 1 to 40 characters"));
        }
        if let Some(bad) = slug
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(InvalidField::new(
                field,
                format!("`{bad}` is not allowed: use lowercase letters, digits and dashes"),
            ));
        }
        if slug.starts_with('-') {
            return Err(InvalidField::new(
                field,
                "must start with a letter or a digit",
            ));
        }
        Ok(MerchantSlug(slug.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MerchantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for MerchantSlug {
    type Error = InvalidField;
    fn try_from(raw: String) -> Result<Self, InvalidField> {
        MerchantSlug::parse(&raw)
    }
}

impl From<MerchantSlug> for String {
    fn from(slug: MerchantSlug) -> String {
        slug.0
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Merchant {
    pub id: MerchantId,
    pub slug: MerchantSlug,
    /// The shop's name as customers know it.
    pub name: String,
    pub created_at: Timestamp,
}

/// What the API key's holder is told once, and Waymark never again: the whole key.
const KEY_PREFIX: &str = "wm_";
/// Characters of the key after `wm_` that stay visible (and identify it in lists).
const VISIBLE_CHARS: usize = 8;
/// Random characters after the visible part: 32 of 62 symbols, about 190 bits.
const SECRET_CHARS: usize = 32;

/// A freshly made API key: `wm_`, eight visible characters, `_`, 32 secret ones. Only its
/// [`ApiKeyHash`] is stored.
#[derive(Clone)]
pub struct NewApiKey {
    /// The whole key, shown to the merchant once.
    pub key: crate::secret::Secret,
    /// `wm_` and the eight visible characters.
    pub prefix: String,
    pub hash: ApiKeyHash,
}

impl NewApiKey {
    pub fn generate() -> Self {
        use rand::Rng;
        use rand::distr::Alphanumeric;
        let mut rng = rand::rng();
        let visible: String = (&mut rng)
            .sample_iter(Alphanumeric)
            .take(VISIBLE_CHARS)
            .map(char::from)
            .collect();
        let secret: String = (&mut rng)
            .sample_iter(Alphanumeric)
            .take(SECRET_CHARS)
            .map(char::from)
            .collect();
        let prefix = format!("{KEY_PREFIX}{visible}");
        let key = format!("{prefix}_{secret}");
        NewApiKey {
            hash: ApiKeyHash::of(&key),
            key: crate::secret::Secret::from(key),
            prefix,
        }
    }
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The SHA-256 of an API key, hex: what the store keeps and looks keys up by. A key has about
/// 190 random bits, so a fast hash is enough; nothing about the key can be learnt from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyHash(String);

impl ApiKeyHash {
    pub fn of(key: &str) -> Self {
        ApiKeyHash(hex::encode(Sha256::digest(key.as_bytes())))
    }

    /// The hash of what a client presented, if it has the shape of a Waymark key at all (a
    /// request with something else is refused without a query).
    pub fn of_presented(key: &str) -> Option<Self> {
        let rest = key.strip_prefix(KEY_PREFIX)?;
        let (visible, secret) = rest.split_once('_')?;
        let shaped = visible.len() == VISIBLE_CHARS
            && secret.len() == SECRET_CHARS
            && visible
                .chars()
                .chain(secret.chars())
                .all(|c| c.is_ascii_alphanumeric());
        shaped.then(|| ApiKeyHash::of(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_stored(hex: String) -> Self {
        ApiKeyHash(hex)
    }
}

/// An API key as the merchant lists it: never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: Uuid,
    pub merchant_id: MerchantId,
    /// What the merchant called it ("ERP", "shop front").
    pub name: String,
    /// `wm_` and the key's eight visible characters.
    pub prefix: String,
    pub created_at: Timestamp,
    /// Roughly when it was last used (updated at most once a minute).
    pub last_used_at: Option<Timestamp>,
    /// When it stopped working.
    pub revoked_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_merchant_has_the_id_the_migration_gives_it() {
        assert_eq!(
            MerchantId::DEFAULT.to_string(),
            "00000000-0000-7000-8000-000000000001"
        );
    }

    #[test]
    fn slugs_are_lowercase_handles() {
        assert_eq!(
            MerchantSlug::parse(" shop-berlin ").unwrap().as_str(),
            "shop-berlin"
        );
        for bad in ["", "Shop", "shop berlin", "-shop", "ü", &"a".repeat(41)] {
            let err = MerchantSlug::parse(bad).unwrap_err();
            assert_eq!(err.field, "slug", "{bad:?}");
        }
    }

    #[test]
    fn a_new_key_is_recognised_by_its_hash_and_shows_only_its_prefix() {
        let new = NewApiKey::generate();
        let key = new.key.expose();
        assert!(key.starts_with(&new.prefix));
        assert_eq!(new.prefix.len(), 11);
        assert_eq!(key.len(), 11 + 1 + 32);
        assert_eq!(ApiKeyHash::of_presented(key), Some(new.hash.clone()));
        assert!(!format!("{new:?}").contains(&key[12..]));
        assert_ne!(NewApiKey::generate().hash, new.hash);
    }

    #[test]
    fn presented_keys_of_the_wrong_shape_are_refused_before_any_lookup() {
        for bad in [
            "",
            "Bearer x",
            "wm_short_x",
            "wm_abcdefgh",
            "wm_abcdefgh_",
            "sk_live_abc",
        ] {
            assert_eq!(ApiKeyHash::of_presented(bad), None, "{bad:?}");
        }
        let odd = format!("wm_abcdefgh_{}", "!".repeat(32));
        assert_eq!(ApiKeyHash::of_presented(&odd), None);
    }
}

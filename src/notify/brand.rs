//! Who a merchant's messages come from and how they look: its settings laid over the
//! configuration's defaults, looked up once in a while per merchant rather than once per
//! message.

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::dispatcher::Sender;
use super::quiet_hours::QuietHours;
use super::render::Templates;
use crate::config::QuietHoursConfig;
use crate::domain::{Language, Merchant, MerchantId, MerchantSettings};
use crate::store::{Store, StoreError};
use tracing::warn;

/// How long a merchant's settings are used before they are read again: a change made over the
/// API reaches messages within this.
const FRESH_FOR: Duration = Duration::from_secs(5);

/// What templates may show of the merchant's branding; unset parts are `none`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrandContext {
    /// The logo emails show: the merchant's own URL, else the one it uploaded, served by
    /// Waymark.
    pub logo_url: Option<String>,
    /// The uploaded logo as the tracking pages load it (`/assets/logo/<merchant>?v=…`): the
    /// pages load nothing from elsewhere.
    #[serde(default)]
    pub page_logo: Option<String>,
    /// `#rrggbb` for headings and buttons.
    pub primary_colour: Option<String>,
    pub support_email: Option<String>,
    pub support_url: Option<String>,
    pub legal_footer: Option<String>,
}

/// One merchant's messages, settled.
#[derive(Debug, Clone)]
pub struct Brand {
    /// The shop as customers know it.
    pub merchant_name: String,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub quiet_hours: Option<QuietHours>,
    /// The merchant's language, for customers whose own Waymark does not write.
    pub language: Language,
    pub context: BrandContext,
    pub settings: MerchantSettings,
    /// The templates with the merchant's own versions in place.
    pub templates: Templates,
}

impl Brand {
    /// `merchant`'s settings over the configured `defaults`. The `default` merchant is known by
    /// the configured shop name; another by its own. A sender address that does not parse (it
    /// was checked when saved) falls back to the configured one.
    pub fn settle(
        merchant: &Merchant,
        settings: MerchantSettings,
        defaults: &Sender,
        quiet_hours: Option<QuietHours>,
        templates: Templates,
    ) -> Brand {
        let b = &settings.branding;
        let merchant_name = b.sender_name.clone().unwrap_or_else(|| {
            if merchant.id == MerchantId::DEFAULT {
                defaults.merchant_name.clone()
            } else {
                merchant.name.clone()
            }
        });
        let address = b
            .sender_address
            .as_deref()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| defaults.from.email.clone());
        let named = b.sender_name.is_some() || merchant.id != MerchantId::DEFAULT;
        let from = Mailbox::new(
            if named {
                Some(merchant_name.clone())
            } else {
                defaults.from.name.clone()
            },
            address,
        );
        let reply_to = match b.reply_to.as_deref().and_then(|a| a.parse().ok()) {
            Some(address) => Some(Mailbox::new(Some(merchant_name.clone()), address)),
            None => defaults.reply_to.clone(),
        };
        let quiet_hours = match &settings.notifications.quiet_hours {
            Some(own) => QuietHours::from_config(&QuietHoursConfig {
                enabled: own.enabled,
                start: own.start.clone(),
                end: own.end.clone(),
            }),
            None => quiet_hours,
        };
        Brand {
            merchant_name,
            from,
            reply_to,
            quiet_hours,
            language: b.language.unwrap_or(Language::FALLBACK),
            context: BrandContext {
                logo_url: b.logo_url.clone(),
                page_logo: None,
                primary_colour: b.primary_colour.clone(),
                support_email: b.support_email.clone(),
                support_url: b.support_url.clone(),
                legal_footer: b.legal_footer.clone(),
            },
            settings,
            templates,
        }
    }
}

/// Each merchant's brand, with when it was read.
type BrandCache = HashMap<MerchantId, (Instant, Arc<Brand>)>;

/// Every merchant's [`Brand`], read from the store and kept a few seconds.
#[derive(Clone)]
pub struct Brands {
    store: Arc<dyn Store>,
    defaults: Sender,
    quiet_hours: Option<QuietHours>,
    templates: Templates,
    cache: Arc<Mutex<BrandCache>>,
}

impl Brands {
    /// Brands over the configured sender, quiet hours and templates.
    pub fn new(
        store: Arc<dyn Store>,
        defaults: Sender,
        quiet_hours: Option<QuietHours>,
        templates: Templates,
    ) -> Self {
        Brands {
            store,
            defaults,
            quiet_hours,
            templates,
            cache: Arc::default(),
        }
    }

    /// The templates every merchant starts from.
    pub fn base_templates(&self) -> &Templates {
        &self.templates
    }

    /// Forget what is kept of the merchant, so its next message reads its settings and
    /// templates afresh (after the API changed them).
    pub fn forget(&self, merchant: MerchantId) {
        self.lock().remove(&merchant);
    }

    /// The configured defaults: sender, links and `Message-ID` domain.
    pub fn defaults(&self) -> &Sender {
        &self.defaults
    }

    /// The merchant's brand; a merchant that is gone (never, while its shipments exist) gets
    /// the configured one.
    pub async fn of(&self, merchant: MerchantId) -> Result<Arc<Brand>, StoreError> {
        if let Some((at, brand)) = self.lock().get(&merchant)
            && at.elapsed() < FRESH_FOR
        {
            return Ok(brand.clone());
        }
        let record = self.store.merchant(merchant).await?;
        let settings = self
            .store
            .merchant_settings(merchant)
            .await?
            .unwrap_or_default();
        let record = record.unwrap_or_else(|| Merchant {
            id: MerchantId::DEFAULT,
            slug: crate::domain::MerchantSlug::parse(crate::domain::MerchantSlug::DEFAULT)
                .unwrap_or_else(|_| unreachable!("`default` is a valid slug")),
            name: self.defaults.merchant_name.clone(),
            created_at: jiff::Timestamp::UNIX_EPOCH,
        });
        let own: Vec<(String, String)> = self
            .store
            .merchant_templates(merchant)
            .await?
            .into_iter()
            .map(|(name, source, _)| (name, source))
            .collect();
        let templates = if own.is_empty() {
            self.templates.clone()
        } else {
            // Each was checked when saved; one that no longer compiles (after an upgrade
            // changed what templates may use) must not stop the merchant's messages.
            self.templates.with_overrides(&own).unwrap_or_else(|error| {
                warn!(%merchant, %error, "the merchant's templates do not compile; the bundled ones are used");
                self.templates.clone()
            })
        };
        let mut brand = Brand::settle(
            &record,
            settings,
            &self.defaults,
            self.quiet_hours,
            templates,
        );
        if let Some(logo) = self.store.merchant_logo(merchant).await? {
            // The version makes a new upload a new URL, past every cache.
            let path = format!("/assets/logo/{merchant}?v={}", logo.updated_at.as_second());
            if brand.context.logo_url.is_none() {
                let base = self.defaults.public_url.trim_end_matches('/');
                brand.context.logo_url = Some(format!("{base}{path}"));
            }
            brand.context.page_logo = Some(path);
        }
        let brand = Arc::new(brand);
        self.lock()
            .insert(merchant, (Instant::now(), brand.clone()));
        Ok(brand)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BrandCache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Branding, MerchantSlug, QuietHoursSetting};

    fn defaults() -> Sender {
        Sender {
            merchant_name: "Kwiaciarnia Róża".into(),
            from: "Kwiaciarnia Róża <notifications@shop.test>"
                .parse()
                .unwrap(),
            reply_to: None,
            public_url: "https://track.shop.test".into(),
            message_id_domain: "shop.test".into(),
            links: crate::links::Links::new([7; 32]),
        }
    }

    fn merchant(id: MerchantId, name: &str) -> Merchant {
        Merchant {
            id,
            slug: MerchantSlug::parse("shop").unwrap(),
            name: name.into(),
            created_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_default_merchant_without_settings_is_the_configured_shop() {
        let brand = Brand::settle(
            &merchant(MerchantId::DEFAULT, "Default"),
            MerchantSettings::default(),
            &defaults(),
            QuietHours::from_config(&QuietHoursConfig::default()),
            Templates::embedded(),
        );
        assert_eq!(brand.merchant_name, "Kwiaciarnia Róża");
        assert_eq!(brand.from, defaults().from);
        assert!(brand.quiet_hours.is_some());
    }

    #[test]
    fn another_merchant_sends_as_itself_with_its_own_quiet_hours() {
        let settings = MerchantSettings {
            branding: Branding {
                sender_address: Some("hallo@laden.example".into()),
                reply_to: Some("hilfe@laden.example".into()),
                ..Branding::default()
            },
            notifications: crate::domain::NotificationSettings {
                quiet_hours: Some(QuietHoursSetting {
                    enabled: false,
                    start: "22:00".into(),
                    end: "07:00".into(),
                }),
                ..Default::default()
            },
            ..MerchantSettings::default()
        };
        let brand = Brand::settle(
            &merchant(MerchantId::new(), "Laden Berlin"),
            settings,
            &defaults(),
            QuietHours::from_config(&QuietHoursConfig::default()),
            Templates::embedded(),
        );
        assert_eq!(brand.merchant_name, "Laden Berlin");
        assert_eq!(brand.from.to_string(), "Laden Berlin <hallo@laden.example>");
        assert_eq!(
            brand.reply_to.map(|m| m.email.to_string()).as_deref(),
            Some("hilfe@laden.example")
        );
        assert!(brand.quiet_hours.is_none());
    }
}

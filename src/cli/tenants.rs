//! `waymark merchants`, `waymark api-keys` and `waymark keys`: the tenants, the keys their
//! systems call the API with, and the master keys that seal their secrets.

use anyhow::{Context, bail};
use clap::Subcommand;
use jiff::Timestamp;
use uuid::Uuid;

use crate::app::Waymark;
use crate::domain::{ApiKey, Merchant, MerchantId, MerchantSlug, NewApiKey};

#[derive(Debug, Subcommand)]
pub enum MerchantsCommand {
    /// Add a merchant (with a sandbox account, so it can try Waymark at once).
    Create {
        /// Its handle: lowercase letters, digits and dashes (`shop-berlin`).
        slug: String,
        /// The shop's name as its customers know it.
        #[arg(long)]
        name: String,
    },
    /// List the merchants.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Make a key for the merchant's systems; it is shown once and only its hash is kept.
    Create {
        /// What the key is for ("ERP", "shop front").
        #[arg(long)]
        name: String,
    },
    /// List the merchant's keys: visible prefix, name, when made, last used, revoked.
    List,
    /// Stop a key working, at once.
    Revoke {
        /// The key's id or its visible prefix (`wm_…`).
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Seal every stored secret under a new master key. With the key file, the new key is
    /// added to it first; with WAYMARK_MASTER_KEY or `master_key`, put the new key first
    /// there (`waymark keys generate`) and run this to re-seal under it. Older keys keep
    /// opening what they sealed until you remove them.
    Rotate,
    /// Print a new master key (for WAYMARK_MASTER_KEY or `master_key`).
    Generate,
}

pub async fn merchants(waymark: &Waymark, command: MerchantsCommand) -> anyhow::Result<()> {
    match command {
        MerchantsCommand::Create { slug, name } => {
            let name = name.trim();
            if name.is_empty() {
                bail!("name: is empty");
            }
            let merchant = Merchant {
                id: MerchantId::new(),
                slug: MerchantSlug::parse(&slug)?,
                name: name.to_owned(),
                created_at: Timestamp::now(),
            };
            waymark.store.create_merchant(&merchant).await?;
            waymark.ensure_sandbox_account(merchant.id).await?;
            println!(
                "created merchant `{}` ({}, id {})",
                merchant.slug, merchant.name, merchant.id
            );
            Ok(())
        }
        MerchantsCommand::List => {
            for merchant in waymark.store.merchants().await? {
                println!(
                    "{:<24} {:<32} id {} since {}",
                    merchant.slug.as_str(),
                    merchant.name,
                    merchant.id,
                    merchant.created_at.strftime("%Y-%m-%d")
                );
            }
            Ok(())
        }
    }
}

pub async fn api_keys(
    waymark: &Waymark,
    merchant: MerchantId,
    command: ApiKeysCommand,
) -> anyhow::Result<()> {
    match command {
        ApiKeysCommand::Create { name } => {
            let name = name.trim();
            if name.is_empty() {
                bail!("name: is empty");
            }
            let new = NewApiKey::generate();
            let key = ApiKey {
                id: Uuid::now_v7(),
                merchant_id: merchant,
                name: name.to_owned(),
                prefix: new.prefix.clone(),
                created_at: Timestamp::now(),
                last_used_at: None,
                revoked_at: None,
            };
            waymark.store.create_api_key(&key, &new.hash).await?;
            eprintln!(
                "created API key `{}` ({}); it is shown this once, keep it somewhere safe:",
                key.name, key.prefix
            );
            println!("{}", new.key.expose());
            Ok(())
        }
        ApiKeysCommand::List => {
            for key in waymark.store.api_keys(merchant).await? {
                println!(
                    "{:<12} {:<24} created {}  last used {}{}",
                    key.prefix,
                    key.name,
                    key.created_at.strftime("%Y-%m-%d %H:%M"),
                    key.last_used_at.map_or_else(
                        || "never".to_owned(),
                        |t| t.strftime("%Y-%m-%d %H:%M").to_string()
                    ),
                    key.revoked_at
                        .map(|t| format!("  revoked {}", t.strftime("%Y-%m-%d %H:%M")))
                        .unwrap_or_default(),
                );
            }
            Ok(())
        }
        ApiKeysCommand::Revoke { key } => {
            let revoked = waymark
                .store
                .revoke_api_key(merchant, key.trim(), Timestamp::now())
                .await?
                .with_context(|| format!("key: this merchant has no key `{key}`"))?;
            println!("revoked API key `{}` ({})", revoked.name, revoked.prefix);
            Ok(())
        }
    }
}

pub async fn keys(waymark: &Waymark, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate => {
            println!("{}", crate::vault::generate_key_text());
            Ok(())
        }
        KeysCommand::Rotate => {
            let resealed = waymark.rotate_master_key().await?;
            println!("re-sealed {resealed} secrets under the current master key");
            Ok(())
        }
    }
}

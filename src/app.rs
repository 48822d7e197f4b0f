//! Putting Waymark together: the store, the carriers, the clock, the templates, and the two
//! loops (scheduler and dispatcher) that `waymark serve` runs until it is told to stop.

use anyhow::Context;
use jiff::Timestamp;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::info;
use uuid::Uuid;

use crate::carriers::{CarrierAccount, CarrierRegistry, Credentials};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{CarrierCode, HolidayCalendar, MerchantId};
use crate::housekeeping::Housekeeping;
use crate::intake::DEFAULT_ACCOUNT;
use crate::links::Links;
use crate::notify::brand::Brands;
use crate::notify::dispatcher::{Dispatcher, Sender};
use crate::notify::email::sender_from_config;
use crate::notify::quiet_hours::QuietHours;
use crate::notify::render::Templates;
use crate::scheduler::Scheduler;
use crate::store::{self, Store};

/// A running Waymark's parts, shared by the CLI commands and `serve`.
#[derive(Clone)]
pub struct Waymark {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub carriers: CarrierRegistry,
    pub clock: Clock,
    pub calendar: Arc<HolidayCalendar>,
    pub templates: Templates,
    /// Each merchant's sender, look and quiet hours, over the configured ones.
    pub brands: Brands,
    /// Makes and checks the tokens of customers' links.
    pub links: Links,
    /// Rung when an email to a merchant is written, so the mailer sends it at once.
    pub merchant_mail: Arc<tokio::sync::Notify>,
}

/// The master keys the configuration names (`master_key`, `WAYMARK_MASTER_KEY`, or the key
/// file, generated on the first start).
pub(crate) fn open_vault(config: &Config) -> anyhow::Result<crate::vault::Vault> {
    let env = std::env::var(crate::vault::MASTER_KEY_ENV).ok();
    let (vault, source) = crate::vault::load(
        &config.vault(),
        env.as_deref(),
        &store::default_key_file(&config.database_url),
    )
    .context("loading the master key")?;
    if let crate::vault::KeySource::File {
        path,
        created: true,
    } = &source
    {
        tracing::warn!(
            file = %path.display(),
            "generated a master key for the carrier credentials: back this file up, without it \
             they cannot be read"
        );
    }
    Ok(vault)
}

/// Who messages come from and where their links point, as configured.
fn configured_sender(config: &Config, links: Links) -> anyhow::Result<Sender> {
    Ok(Sender {
        merchant_name: config.merchant_name.clone(),
        from: config.email.from.parse().context("email.from")?,
        reply_to: config
            .email
            .reply_to
            .as_deref()
            .map(str::parse)
            .transpose()
            .context("email.reply_to")?,
        public_url: config.public_url.clone(),
        message_id_domain: config.message_id_domain(),
        links,
    })
}

/// The key file the master keys live in, or `None` when they are given directly.
fn key_source(config: &Config) -> Option<std::path::PathBuf> {
    let given = std::env::var(crate::vault::MASTER_KEY_ENV)
        .ok()
        .or_else(|| config.master_key.as_ref().map(|k| k.expose().to_owned()))
        .is_some_and(|keys| !keys.trim().is_empty());
    (!given).then(|| {
        config
            .master_key_file
            .clone()
            .unwrap_or_else(|| store::default_key_file(&config.database_url))
    })
}

/// The settings key holding the secret of customers' links.
const LINK_SECRET: &str = "link_secret";

/// The settings key holding the accelerated clock's anchor.
const CLOCK_ANCHOR: &str = "clock_anchor";

impl Waymark {
    /// Open (and migrate) the database, load carriers, calendar and templates.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        Self::start_with_clock(config, None).await
    }

    /// Like [`Waymark::start`], on `clock` instead of the configured one (tests drive a manual
    /// clock from one due time to the next).
    pub async fn start_with_clock(config: Config, clock: Option<Clock>) -> anyhow::Result<Self> {
        let vault = open_vault(&config)?;
        let store = store::connect(&config.database_url, vault)
            .await
            .with_context(|| format!("opening {}", config.database_url))?;
        store.migrate().await.context("migrating the database")?;
        let resealed = store
            .reseal_secrets()
            .await
            .context("sealing stored secrets under the master key")?;
        if resealed > 0 {
            info!(
                resealed,
                "stored secrets sealed under the current master key"
            );
        }

        let clock = if let Some(clock) = clock {
            clock
        } else if config.clock.acceleration > 1.0 {
            // The anchor is kept with the data so that simulated time carries on across restarts.
            let anchor = store
                .setting_or_insert(CLOCK_ANCHOR, &Timestamp::now().to_string())
                .await?;
            let anchor: Timestamp = anchor
                .parse()
                .with_context(|| format!("stored clock anchor `{anchor}`"))?;
            Clock::accelerated(config.clock.acceleration, anchor)
        } else {
            Clock::system()
        };

        let calendar = match config
            .carriers_dir
            .as_ref()
            .map(|d| d.join("holidays.toml"))
        {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                HolidayCalendar::from_toml(&text).with_context(|| path.display().to_string())?
            }
            _ => HolidayCalendar::bundled(),
        };

        let carriers = crate::carriers::catalogue::load(
            config.carriers_dir.as_deref(),
            clock.clone(),
            Some(Arc::new(store::StoreTokens::new(store.clone()))),
        )
        .context("loading the carriers' data files")?;

        let templates =
            Templates::load(config.templates_dir.as_deref()).context("loading templates")?;

        // The secret of the customers' links is kept with the data: every replica, and every
        // restart, makes and accepts the same links.
        let secret = store
            .setting_or_insert(LINK_SECRET, &Links::generate_secret())
            .await?;
        let links = Links::from_hex(&secret)
            .with_context(|| format!("the stored `{LINK_SECRET}` is not 32 bytes of hex"))?;
        let brands = Brands::new(
            store.clone(),
            configured_sender(&config, links.clone())?,
            QuietHours::from_config(&config.quiet_hours),
            templates.clone(),
        );
        let waymark = Waymark {
            config,
            store,
            carriers,
            clock,
            calendar: Arc::new(calendar),
            templates,
            brands,
            links,
            merchant_mail: Arc::new(tokio::sync::Notify::new()),
        };
        waymark.ensure_sandbox_account(MerchantId::DEFAULT).await?;
        waymark.save_configured_accounts().await?;
        waymark.restore_delivery_changes().await?;
        Ok(waymark)
    }

    /// Tell the carriers that keep no record of their own (the sandbox) the changes they carried
    /// out before this start, so parcels on their way go on following them.
    async fn restore_delivery_changes(&self) -> anyhow::Result<()> {
        for accepted in self.store.executed_delivery_changes().await? {
            if let Some(carrier) = self.carriers.get(&accepted.carrier) {
                carrier.restore_delivery_change(&crate::carriers::DeliveryOrder {
                    parcel: crate::carriers::TrackRequest {
                        tracking_number: accepted.tracking_number,
                        registered_at: Some(accepted.registered_at),
                    },
                    details: accepted.request.details,
                    at: accepted.request.updated_at,
                });
            }
        }
        Ok(())
    }

    /// Every merchant can track sandbox parcels without any set-up: give it a `default` sandbox
    /// account unless it has one.
    pub async fn ensure_sandbox_account(&self, merchant: MerchantId) -> anyhow::Result<()> {
        let code = CarrierCode::parse("sandbox")?;
        if self
            .store
            .carrier_account_by_name(merchant, &code, DEFAULT_ACCOUNT)
            .await?
            .is_none()
        {
            self.store
                .create_carrier_account(&CarrierAccount {
                    id: Uuid::now_v7(),
                    merchant_id: merchant,
                    carrier: code,
                    name: DEFAULT_ACCOUNT.into(),
                    credentials: Credentials::default(),
                    base_url: None,
                    daily_quota: None,
                    requests_per_second: None,
                })
                .await?;
        }
        Ok(())
    }

    /// Add a new master key to the key file (when the keys live in one), then seal every stored
    /// secret under the current key; returns how many were sealed again.
    pub async fn rotate_master_key(&self) -> anyhow::Result<u64> {
        let source = key_source(&self.config);
        let store = if let Some(path) = source {
            let id = crate::vault::rotate_key_file(&path)
                .with_context(|| format!("adding a master key to {}", path.display()))?;
            info!(key = %id, file = %path.display(), "new master key added");
            // This process's store still seals with the key it started with.
            store::connect(&self.config.database_url, open_vault(&self.config)?).await?
        } else {
            self.store.clone()
        };
        Ok(store.reseal_secrets().await?)
    }

    /// Create or update the carrier accounts named in the configuration: the `default`
    /// merchant's.
    async fn save_configured_accounts(&self) -> anyhow::Result<()> {
        for (carrier, configured) in &self.config.carrier_accounts {
            let code = self
                .carriers
                .known(carrier)
                .with_context(|| format!("carrier_accounts.{carrier}"))?;
            let account = self
                .store
                .save_carrier_account(&CarrierAccount {
                    id: Uuid::now_v7(),
                    merchant_id: MerchantId::DEFAULT,
                    carrier: code,
                    name: configured.name.clone(),
                    credentials: configured.credentials.clone(),
                    base_url: configured.base_url.clone(),
                    daily_quota: configured.daily_quota,
                    requests_per_second: configured.requests_per_second,
                })
                .await?;
            info!(carrier = %account.carrier, account = %account.name, "carrier account from configuration");
        }
        Ok(())
    }

    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(
            self.store.clone(),
            self.carriers.clone(),
            self.clock.clone(),
            self.calendar.clone(),
            self.config.scheduler.clone(),
        )
    }

    pub fn dispatcher(&self) -> anyhow::Result<Dispatcher> {
        let email = sender_from_config(&self.config.email)?;
        let sender = self.brands.defaults().clone();
        Ok(Dispatcher::new(
            self.store.clone(),
            email,
            self.templates.clone(),
            self.carriers.clone(),
            self.clock.clone(),
            self.config.dispatcher.clone(),
            QuietHours::from_config(&self.config.quiet_hours),
            sender,
        ))
    }

    /// Customers' delivery changes, sending their codes with the configured email transport.
    pub fn delivery_changes(&self) -> anyhow::Result<crate::delivery_changes::DeliveryChanges> {
        Ok(crate::delivery_changes::DeliveryChanges::new(
            self.store.clone(),
            self.carriers.clone(),
            self.calendar.clone(),
            self.clock.clone(),
            self.brands.clone(),
            sender_from_config(&self.config.email)?,
            self.merchant_mail.clone(),
        ))
    }

    /// The sender of the emails to merchants' staff, with the configured email transport.
    pub fn merchant_mailer(&self) -> anyhow::Result<crate::notify::merchant_mail::MerchantMailer> {
        Ok(crate::notify::merchant_mail::MerchantMailer::new(
            self.store.clone(),
            sender_from_config(&self.config.email)?,
            self.clock.clone(),
            self.merchant_mail.clone(),
        ))
    }

    /// What the HTTP handlers need.
    pub fn http_state(&self) -> anyhow::Result<crate::http::HttpState> {
        Ok(crate::http::HttpState {
            store: self.store.clone(),
            attempts: crate::http::Attempts::default(),
            links_expire_after: jiff::SignedDuration::from_hours(
                24 * i64::from(self.config.http.links_expire_after_days),
            ),
            carriers: self.carriers.clone(),
            templates: self.templates.clone(),
            api: self.api_state()?,
        })
    }

    /// What the merchant API's handlers need.
    pub fn api_state(&self) -> anyhow::Result<crate::api::ApiState> {
        let http = &self.config.http;
        Ok(crate::api::ApiState::new(
            self.store.clone(),
            self.carriers.clone(),
            self.clock.clone(),
            self.brands.clone(),
            self.delivery_changes()?,
            crate::api::RateLimit {
                per_second: std::num::NonZeroU32::new(http.api_requests_per_second)
                    .unwrap_or(std::num::NonZeroU32::MIN),
                burst: std::num::NonZeroU32::new(http.api_burst)
                    .unwrap_or(std::num::NonZeroU32::MIN),
            },
        ))
    }

    /// The periodic jobs (expiry, pruning) on this Waymark's store and clock.
    pub fn housekeeping(&self) -> anyhow::Result<Housekeeping> {
        Ok(Housekeeping::new(
            self.store.clone(),
            self.clock.clone(),
            self.config.housekeeping.clone(),
        )?)
    }

    /// Run the HTTP server, the scheduler, the dispatcher and the periodic jobs (as configured)
    /// until `shutdown` is cancelled, then let each finish what it is doing.
    pub async fn run(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        let outbox_signal = Arc::new(tokio::sync::Notify::new());
        if self.config.scheduler.enabled {
            let scheduler = self.scheduler().with_outbox_signal(outbox_signal.clone());
            let token = shutdown.clone();
            tasks.spawn(async move { scheduler.run(token).await });
        }
        if self.config.dispatcher.enabled {
            let dispatcher = self.dispatcher()?.with_wakeup(outbox_signal.clone());
            let token = shutdown.clone();
            tasks.spawn(async move { dispatcher.run(token).await });
            let mailer = self.merchant_mailer()?;
            let token = shutdown.clone();
            tasks.spawn(async move { mailer.run(token).await });
        }
        if self.config.housekeeping.enabled {
            let housekeeping = self.housekeeping()?;
            let token = shutdown.clone();
            tasks.spawn(async move { housekeeping.run(token).await });
        }
        if self.config.http.enabled {
            let listener = tokio::net::TcpListener::bind(&self.config.http.listen)
                .await
                .with_context(|| {
                    format!("http.listen: cannot listen on {}", self.config.http.listen)
                })?;
            let state = self.http_state()?;
            let token = shutdown.clone();
            tasks.spawn(async move {
                if let Err(error) = crate::http::serve(listener, state, token).await {
                    tracing::error!(%error, "http server stopped");
                }
            });
        }
        info!(
            http = self.config.http.enabled,
            scheduler = self.config.scheduler.enabled,
            dispatcher = self.config.dispatcher.enabled,
            housekeeping = self.config.housekeeping.enabled,
            acceleration = self.clock.acceleration(),
            "waymark running"
        );
        while let Some(joined) = tasks.join_next().await {
            joined.context("a worker panicked")?;
        }
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

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
use crate::domain::{CarrierCode, HolidayCalendar};
use crate::housekeeping::Housekeeping;
use crate::intake::DEFAULT_ACCOUNT;
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
}

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
        let store = store::connect(&config.database_url)
            .await
            .with_context(|| format!("opening {}", config.database_url))?;
        store.migrate().await.context("migrating the database")?;

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

        let carriers =
            crate::carriers::catalogue::load(config.carriers_dir.as_deref(), clock.clone())
                .context("loading the carriers' data files")?;

        let templates =
            Templates::load(config.templates_dir.as_deref()).context("loading templates")?;

        let waymark = Waymark {
            config,
            store,
            carriers,
            clock,
            calendar: Arc::new(calendar),
            templates,
        };
        waymark.ensure_sandbox_account().await?;
        waymark.save_configured_accounts().await?;
        Ok(waymark)
    }

    /// Every Waymark can track sandbox parcels without any set-up.
    async fn ensure_sandbox_account(&self) -> anyhow::Result<()> {
        let code = CarrierCode::parse("sandbox")?;
        if self
            .store
            .carrier_account_by_name(&code, DEFAULT_ACCOUNT)
            .await?
            .is_none()
        {
            self.store
                .create_carrier_account(&CarrierAccount {
                    id: Uuid::now_v7(),
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

    /// Create or update the carrier accounts named in the configuration.
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
        let sender = Sender {
            merchant_name: self.config.merchant_name.clone(),
            from: self.config.email.from.parse().context("email.from")?,
            reply_to: self
                .config
                .email
                .reply_to
                .as_deref()
                .map(str::parse)
                .transpose()
                .context("email.reply_to")?,
            public_url: self.config.public_url.clone(),
            message_id_domain: self.config.message_id_domain(),
        };
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

    /// What the HTTP handlers need.
    pub fn http_state(&self) -> crate::http::HttpState {
        crate::http::HttpState {
            store: self.store.clone(),
            carriers: self.carriers.clone(),
            templates: self.templates.clone(),
            merchant_name: self.config.merchant_name.clone(),
        }
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
            let state = self.http_state();
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

//! Configuration in layers: built-in defaults, then `waymark.toml`, then `WAYMARK_*` environment
//! variables (`WAYMARK_EMAIL__SMTP__HOST` sets `email.smtp.host`), validated at start.

use figment::Figment;
use figment::providers::{Data, Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::secret::{Credentials, Secret};

/// Everything Waymark can be told at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://waymark.db` (created when missing).
    pub database_url: String,
    /// Where customers reach Waymark: tracking-page and unsubscribe links start with it.
    pub public_url: String,
    /// The shop name customers know; it signs every message.
    pub merchant_name: String,
    /// A folder of carrier data files that replace the bundled ones (`sandbox.toml`, ...).
    pub carriers_dir: Option<PathBuf>,
    /// A folder of templates that replace the bundled ones (`email/de/delivered.html`, ...).
    pub templates_dir: Option<PathBuf>,
    pub clock: ClockConfig,
    pub scheduler: SchedulerConfig,
    pub dispatcher: DispatcherConfig,
    pub email: EmailConfig,
    pub quiet_hours: QuietHoursConfig,
    pub http: HttpConfig,
    pub housekeeping: HousekeepingConfig,
    /// The master keys that seal carrier credentials in the database, comma-separated, the
    /// current one first (`waymark keys generate` makes one). Usually given as
    /// `WAYMARK_MASTER_KEY`. Without it the keys live in `master_key_file`.
    #[serde(skip_serializing)]
    pub master_key: Option<Secret>,
    /// The master key file when no `master_key` is given; by default beside the SQLite database
    /// (`waymark.db.key`). Created with a new key, readable by its owner only, when missing.
    pub master_key_file: Option<PathBuf>,
    /// Carrier accounts kept in configuration, by carrier code:
    /// `[carrier_accounts.dhl] api_key = "…"` is the `default` DHL account. Created or updated
    /// at every start; accounts can also be managed with `waymark accounts`.
    pub carrier_accounts: BTreeMap<String, AccountConfig>,
}

/// A carrier account given in configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountConfig {
    /// The account's name; shipments name it (default: `default`).
    #[serde(default = "default_account_name")]
    pub name: String,
    /// The carrier's API base URL for this account (their sandbox, for instance).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub daily_quota: Option<u32>,
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    /// Everything else is a credential the carrier's adapter reads (`api_key`, `client_id`,
    /// `client_secret`, ...). Secrets are read, never written: see [`crate::secret`].
    #[serde(flatten, skip_serializing)]
    pub credentials: Credentials,
}

fn default_account_name() -> String {
    crate::intake::DEFAULT_ACCOUNT.to_owned()
}

/// The tracking page, unsubscribe links and health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Whether this replica serves HTTP.
    pub enabled: bool,
    /// `address:port` to listen on.
    pub listen: String,
    /// Requests a second one merchant API key may make, sustained; more answer 429.
    pub api_requests_per_second: u32,
    /// Requests one key may make at once after a quiet spell.
    pub api_burst: u32,
    /// Days after a journey's last scan, once it is over, that its tracking and preferences
    /// links keep working.
    pub links_expire_after_days: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            listen: "127.0.0.1:8080".into(),
            api_requests_per_second: 20,
            api_burst: 40,
            links_expire_after_days: 30,
        }
    }
}

/// The periodic jobs, on `cron` schedules (six fields, seconds first: `0 */10 * * * *` is every
/// ten minutes), each run by one replica at a time per database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HousekeepingConfig {
    /// Whether this replica takes part in running the jobs.
    pub enabled: bool,
    /// When to give up on shipments the carrier never finds or that stopped moving.
    pub expire_schedule: String,
    /// A shipment the carrier has not found this many days after registration expires.
    pub expire_never_found_after_days: u32,
    /// A shipment with no scan for this many days expires.
    pub expire_silent_after_days: u32,
    /// When to prune what is kept only for a while.
    pub prune_schedule: String,
    /// Poll errors older than this many days are deleted ...
    pub keep_poll_errors_days: u32,
    /// ... and of each shipment only this many of the latest are kept.
    pub keep_poll_errors_per_shipment: u32,
    /// The customer's personal data of a shipment whose journey ended this many days ago is
    /// erased (anonymous delivery statistics stay).
    pub erase_personal_data_after_days: u32,
}

impl Default for HousekeepingConfig {
    fn default() -> Self {
        HousekeepingConfig {
            enabled: true,
            expire_schedule: "0 */10 * * * *".into(),
            expire_never_found_after_days: 14,
            expire_silent_after_days: 30,
            prune_schedule: "0 17 3 * * *".into(),
            keep_poll_errors_days: 30,
            keep_poll_errors_per_shipment: 20,
            erase_personal_data_after_days: 90,
        }
    }
}

/// Time acceleration, for the demo and tests only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockConfig {
    /// Simulated seconds per real second. 1 in production.
    pub acceleration: f64,
}

/// The poller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Whether this replica polls carriers.
    pub enabled: bool,
    /// Most shipments one account's claim takes at once.
    pub claim_batch: u32,
    /// How long a claimed shipment stays this replica's, in (real) seconds.
    pub lease_seconds: u64,
    /// Longest (real) sleep between rounds when nothing is due.
    pub max_idle_seconds: u64,
    /// Carrier calls in flight at once.
    pub concurrency: usize,
    /// Longest (real) wait for one carrier call.
    pub carrier_timeout_seconds: u64,
    /// At most one "delayed" email per shipment this often, in hours (0: no cap). A slip within
    /// that time is told in the next one, with the latest estimate.
    pub delayed_email_every_hours: u64,
}

/// The sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatcherConfig {
    /// Whether this replica sends messages.
    pub enabled: bool,
    /// Most messages one claim takes.
    pub claim_batch: u32,
    /// How long a claimed message stays this replica's, in (real) seconds.
    pub lease_seconds: u64,
    /// Attempts before a message that keeps failing is given up.
    pub max_attempts: u32,
    /// First retry delay in seconds; it doubles per attempt, with jitter.
    pub retry_base_seconds: u64,
    /// Longest retry delay in seconds.
    pub retry_max_seconds: u64,
    /// Messages sent at once.
    pub concurrency: usize,
    /// Longest (real) sleep between rounds when nothing is due.
    pub max_idle_seconds: u64,
}

/// How email leaves Waymark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// `Shop <notifications@shop.example>`.
    pub from: String,
    pub reply_to: Option<String>,
    /// `smtp` or `file` (one `.eml` file per message in `file_dir`, for local use).
    pub transport: EmailTransport,
    pub file_dir: PathBuf,
    /// Right-hand side of `Message-ID`s; defaults to the public URL's host.
    pub message_id_domain: Option<String>,
    pub smtp: SmtpConfig,
}

/// Which transport sends email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    Smtp,
    File,
}

/// An SMTP relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    pub tls: SmtpTls,
    pub username: Option<String>,
    /// Secrets are read, never written: see [`crate::secret`].
    #[serde(skip_serializing)]
    pub password: Option<Secret>,
    /// Connections kept open to the relay.
    pub pool_size: u32,
    pub timeout_seconds: u64,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same machine.
    None,
    /// Upgrade with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Hours in the customer's time zone when no message is sent; messages wait for the morning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuietHoursConfig {
    pub enabled: bool,
    /// `HH:MM`, local to the customer.
    pub start: String,
    /// `HH:MM`, local to the customer; may be earlier than `start` (overnight).
    pub end: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://waymark.db".into(),
            public_url: "http://localhost:8080".into(),
            merchant_name: "Waymark Demo Shop".into(),
            carriers_dir: None,
            templates_dir: None,
            clock: ClockConfig::default(),
            scheduler: SchedulerConfig::default(),
            dispatcher: DispatcherConfig::default(),
            email: EmailConfig::default(),
            quiet_hours: QuietHoursConfig::default(),
            http: HttpConfig::default(),
            housekeeping: HousekeepingConfig::default(),
            master_key: None,
            master_key_file: None,
            carrier_accounts: BTreeMap::new(),
        }
    }
}

impl Default for ClockConfig {
    fn default() -> Self {
        ClockConfig { acceleration: 1.0 }
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            enabled: true,
            claim_batch: 200,
            lease_seconds: 120,
            max_idle_seconds: 30,
            concurrency: 4,
            carrier_timeout_seconds: 30,
            delayed_email_every_hours: 24,
        }
    }
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            enabled: true,
            claim_batch: 50,
            lease_seconds: 120,
            max_attempts: 8,
            retry_base_seconds: 60,
            retry_max_seconds: 6 * 3600,
            concurrency: 8,
            max_idle_seconds: 10,
        }
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            from: "Waymark Demo Shop <notifications@localhost>".into(),
            reply_to: None,
            transport: EmailTransport::File,
            file_dir: PathBuf::from("outbox"),
            message_id_domain: None,
            smtp: SmtpConfig::default(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: "localhost".into(),
            port: 25,
            tls: SmtpTls::None,
            username: None,
            password: None,
            pool_size: 8,
            timeout_seconds: 30,
        }
    }
}

impl Default for QuietHoursConfig {
    fn default() -> Self {
        QuietHoursConfig {
            enabled: true,
            start: "21:00".into(),
            end: "08:00".into(),
        }
    }
}

/// Configuration that cannot be used, with every problem named by its key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration is invalid:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Where the master keys come from, for [`crate::vault::load`].
    pub fn vault(&self) -> crate::vault::VaultConfig {
        crate::vault::VaultConfig {
            key_file: self.master_key_file.clone(),
            master_key: self.master_key.clone(),
        }
    }

    /// Defaults, then `file` if it exists, then `WAYMARK_*` variables.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        Self::extract(Self::figment(Config::default(), Toml::file(file)))
    }

    /// Like [`Config::load`] but starting from other defaults (the demo's).
    pub fn load_over(defaults: Config, file: &Path) -> Result<Self, ConfigError> {
        Self::extract(Self::figment(defaults, Toml::file(file)))
    }

    /// Defaults, then `text` read as the file's contents; no environment variables. What a
    /// configuration file alone says, checked the same way as at start.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::extract(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)),
        )
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        figment
            .extract::<Config>()
            .map_err(|e| ConfigError::Load(Box::new(e)))
            .and_then(Config::validated)
    }

    fn figment(defaults: Config, file: Data<Toml>) -> Figment {
        Figment::from(Serialized::defaults(defaults))
            .merge(file)
            // WAYMARK_CONFIG names the file, WAYMARK_LOG the log filter and WAYMARK_MERCHANT the
            // CLI's merchant: not settings.
            .merge(
                Env::prefixed("WAYMARK_")
                    .ignore(&["config", "log", "merchant", "test_python"])
                    .split("__"),
            )
    }

    /// Check everything that can be checked before starting.
    pub fn validated(self) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let url = &self.database_url;
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            problems.push(format!(
                "database_url `{url}`: use sqlite://PATH or postgres://USER@HOST/DATABASE"
            ));
        }
        match reqwest::Url::parse(&self.public_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => problems.push(format!(
                "public_url `{}`: must be an http(s) URL like https://track.shop.example",
                self.public_url
            )),
        }
        if self.merchant_name.trim().is_empty() {
            problems.push("merchant_name: must not be empty".into());
        }
        if !(self.clock.acceleration >= 1.0 && self.clock.acceleration.is_finite()) {
            problems.push(format!(
                "clock.acceleration `{}`: must be 1 or more",
                self.clock.acceleration
            ));
        }
        if self.email.from.parse::<lettre::message::Mailbox>().is_err() {
            problems.push(format!(
                "email.from `{}`: not an address like `Shop <notify@shop.example>`",
                self.email.from
            ));
        }
        if let Some(reply_to) = &self.email.reply_to {
            if reply_to.parse::<lettre::message::Mailbox>().is_err() {
                problems.push(format!("email.reply_to `{reply_to}`: not an address"));
            }
        }
        if self.email.transport == EmailTransport::Smtp && self.email.smtp.host.trim().is_empty() {
            problems.push("email.smtp.host: required when email.transport is smtp".into());
        }
        if self.http.api_requests_per_second == 0 || self.http.api_burst == 0 {
            problems
                .push("http.api_requests_per_second and http.api_burst: must be at least 1".into());
        }
        if self.email.smtp.username.is_some() != self.email.smtp.password.is_some() {
            problems
                .push("email.smtp.username and email.smtp.password: give both or neither".into());
        }
        for (key, value) in [
            ("quiet_hours.start", &self.quiet_hours.start),
            ("quiet_hours.end", &self.quiet_hours.end),
        ] {
            if jiff::civil::Time::strptime("%H:%M", value).is_err() {
                problems.push(format!("{key} `{value}`: must be HH:MM"));
            }
        }
        for (key, value) in [
            (
                "scheduler.claim_batch",
                u64::from(self.scheduler.claim_batch),
            ),
            ("scheduler.lease_seconds", self.scheduler.lease_seconds),
            ("scheduler.concurrency", self.scheduler.concurrency as u64),
            (
                "dispatcher.claim_batch",
                u64::from(self.dispatcher.claim_batch),
            ),
            ("dispatcher.lease_seconds", self.dispatcher.lease_seconds),
            (
                "dispatcher.max_attempts",
                u64::from(self.dispatcher.max_attempts),
            ),
            ("dispatcher.concurrency", self.dispatcher.concurrency as u64),
            ("email.smtp.pool_size", u64::from(self.email.smtp.pool_size)),
        ] {
            if value == 0 {
                problems.push(format!("{key}: must be at least 1"));
            }
        }
        for (key, schedule) in [
            (
                "housekeeping.expire_schedule",
                &self.housekeeping.expire_schedule,
            ),
            (
                "housekeeping.prune_schedule",
                &self.housekeeping.prune_schedule,
            ),
        ] {
            match schedule.parse::<cron::Schedule>() {
                Err(e) => problems.push(format!(
                    "{key} `{schedule}`: not a cron schedule (six fields, seconds first, like \
                     `0 */10 * * * *`): {e}"
                )),
                // A year gone by or a 30 February parses, but its job would silently never run
                // (personal data never erased, shipments never expired).
                Ok(parsed) if parsed.upcoming(chrono::Utc).next().is_none() => {
                    problems.push(format!("{key} `{schedule}`: never comes again"))
                }
                Ok(_) => {}
            }
        }
        for (key, value) in [
            (
                "housekeeping.expire_never_found_after_days",
                self.housekeeping.expire_never_found_after_days,
            ),
            (
                "housekeeping.expire_silent_after_days",
                self.housekeeping.expire_silent_after_days,
            ),
            (
                "housekeeping.keep_poll_errors_days",
                self.housekeeping.keep_poll_errors_days,
            ),
            (
                "housekeeping.erase_personal_data_after_days",
                self.housekeeping.erase_personal_data_after_days,
            ),
        ] {
            if value == 0 {
                problems.push(format!("{key}: must be at least 1"));
            }
        }
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "http.listen `{}`: must be address:port like 127.0.0.1:8080",
                self.http.listen
            ));
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The domain used in `Message-ID`s.
    pub fn message_id_domain(&self) -> String {
        self.email.message_id_domain.clone().unwrap_or_else(|| {
            reqwest::Url::parse(&self.public_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "waymark.localhost".into())
        })
    }
}

#[cfg(test)]
// figment's test jail returns figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Config::default().validated().is_ok());
    }

    #[test]
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "waymark.toml",
                "merchant_name = \"Kwiaciarnia Róża\"\n[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"mail.example\"\nport = 2525\n",
            )?;
            jail.set_env("WAYMARK_EMAIL__SMTP__PORT", "587");
            jail.set_env("WAYMARK_QUIET_HOURS__ENABLED", "false");
            jail.set_env("WAYMARK_LOG", "debug");
            jail.set_env("WAYMARK_CONFIG", "waymark.toml");
            let config = Config::load(Path::new("waymark.toml")).expect("valid");
            assert_eq!(config.merchant_name, "Kwiaciarnia Róża");
            assert_eq!(config.email.smtp.host, "mail.example");
            assert_eq!(config.email.smtp.port, 587);
            assert!(!config.quiet_hours.enabled);
            Ok(())
        });
    }

    #[test]
    fn every_problem_is_named_by_its_key() {
        let mut config = Config {
            public_url: "localhost".into(),
            ..Config::default()
        };
        config.email.from = "not an address".into();
        config.quiet_hours.end = "8am".into();
        config.dispatcher.max_attempts = 0;
        let message = config.validated().unwrap_err().to_string();
        for key in [
            "public_url `localhost`",
            "email.from `not an address`",
            "quiet_hours.end `8am`",
            "dispatcher.max_attempts",
        ] {
            assert!(message.contains(key), "{message}");
        }
    }

    #[test]
    fn the_text_of_a_file_alone_is_read_and_checked() {
        let config = Config::from_toml_str(
            "merchant_name = \"Kwiaciarnia Róża\"\n[email.smtp]\nport = 2525\n",
        )
        .expect("valid");
        assert_eq!(config.merchant_name, "Kwiaciarnia Róża");
        assert_eq!(config.email.smtp.port, 2525);
        let err = Config::from_toml_str("[http]\nlisten = \"everywhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("http.listen `everywhere`"), "{err}");
        let err = Config::from_toml_str("merchant_name = [").unwrap_err();
        assert!(matches!(err, ConfigError::Load(_)), "{err}");
    }

    #[test]
    fn secrets_are_read_but_never_shown_in_debug_output() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "waymark.toml",
                "[email.smtp]\nusername = \"waymark\"\npassword = \"smtp-pass-4711\"\n\
                 [carrier_accounts.dhl]\napi_key = \"dhl-key-4711\"\n",
            )?;
            // Environment variables arrive typed: an unquoted number is still the secret's text.
            jail.set_env("WAYMARK_CARRIER_ACCOUNTS__AUSPOST__PASSWORD", "90210");
            let config = Config::load(Path::new("waymark.toml")).expect("valid");
            let password = config.email.smtp.password.as_ref().map(Secret::expose);
            assert_eq!(password, Some("smtp-pass-4711"));
            let dhl = &config.carrier_accounts["dhl"];
            assert_eq!(dhl.credentials.expose("api_key"), Some("dhl-key-4711"));
            let auspost = &config.carrier_accounts["auspost"].credentials;
            assert_eq!(auspost.expose("password"), Some("90210"));
            let shown = format!("{config:?} {config:#?}");
            for secret in ["smtp-pass-4711", "dhl-key-4711", "90210"] {
                assert!(!shown.contains(secret), "`{secret}` shown in {shown}");
            }
            assert!(
                shown.contains("api_key") && shown.contains("[redacted]"),
                "{shown}"
            );
            Ok(())
        });
    }

    #[test]
    fn a_schedule_that_never_comes_is_refused() {
        for schedule in ["0 0 0 30 2 *", "0 0 3 * * * 1999"] {
            let text = format!("[housekeeping]\nprune_schedule = \"{schedule}\"\n");
            let err = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(
                err.contains(&format!(
                    "housekeeping.prune_schedule `{schedule}`: never comes"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn an_unknown_key_is_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("waymark.toml", "merchant_nmae = \"typo\"\n")?;
            let err = Config::load(Path::new("waymark.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("merchant_nmae"), "{err}");
            Ok(())
        });
    }
}

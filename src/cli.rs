//! The `waymark` command line.

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::app::{Waymark, shutdown_signal};
use crate::carriers::TrackRequest;
use crate::config::Config;
use crate::domain::{MerchantId, MerchantSlug, TrackingNumber};
use crate::intake::{self, DEFAULT_ACCOUNT, ImportObserver, ImportReport, ShipmentInput};

mod tenants;

/// Waymark: tells your customers where their parcel is before they have to ask.
#[derive(Debug, Parser)]
#[command(name = "waymark", version, about)]
pub struct Cli {
    /// Configuration file (missing is fine: defaults and WAYMARK_* variables apply).
    #[arg(
        long,
        global = true,
        default_value = "waymark.toml",
        env = "WAYMARK_CONFIG"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Poll carriers and send messages until SIGTERM or Ctrl-C.
    Serve,
    /// Create or update the database schema, then exit.
    Migrate,
    /// Register shipments.
    Shipments {
        #[command(flatten)]
        merchant: MerchantArg,
        #[command(subcommand)]
        command: ShipmentsCommand,
    },
    /// Manage the carrier accounts Waymark polls with.
    Accounts {
        #[command(flatten)]
        merchant: MerchantArg,
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Manage merchants: the shops a Waymark works for, each with its own accounts, shipments
    /// and API keys.
    #[command(subcommand)]
    Merchants(tenants::MerchantsCommand),
    /// Manage a merchant's API keys.
    ApiKeys {
        #[command(flatten)]
        merchant: MerchantArg,
        #[command(subcommand)]
        command: tenants::ApiKeysCommand,
    },
    /// Manage the master keys that seal carrier credentials in the database.
    #[command(subcommand)]
    Keys(tenants::KeysCommand),
    /// Ask a carrier about one number now and print the normalised timeline.
    Track {
        tracking_number: String,
        /// The carrier's code.
        #[arg(long, default_value = "sandbox")]
        carrier: String,
        /// The carrier account to ask with.
        #[arg(long, default_value = DEFAULT_ACCOUNT)]
        account: String,
        #[command(flatten)]
        merchant: MerchantArg,
    },
    /// Register sandbox shipments for every journey in English, German and Polish, play them
    /// out on an accelerated clock, and write the emails customers would get to ./outbox/.
    Demo(crate::demo::DemoArgs),
    /// Tell which carrier issued a tracking number, from its format and check digit. Exits
    /// with 1 when no known format matches.
    Detect { tracking_number: String },
    /// Copy an SQLite database into a new PostgreSQL one (shipments, timelines, messages,
    /// accounts, merchants: every table) and check the row counts; exits with 1 when a count
    /// differs. The master key stays the same: give the replicas the key this Waymark used.
    CopyData {
        /// The SQLite database to copy: `sqlite://waymark.db`.
        #[arg(long)]
        from: String,
        /// The empty PostgreSQL database to copy into: `postgres://user@host/waymark`.
        #[arg(long)]
        to: String,
    },
}

/// Whose shipments, accounts or keys a command works on.
#[derive(Debug, Clone, Args)]
pub struct MerchantArg {
    /// The merchant's slug (`waymark merchants list`); a single shop is `default`.
    #[arg(long, global = true, default_value = MerchantSlug::DEFAULT, env = "WAYMARK_MERCHANT")]
    pub merchant: String,
}

impl MerchantArg {
    /// The merchant this names, or an error saying there is none.
    pub async fn resolve(&self, waymark: &Waymark) -> anyhow::Result<MerchantId> {
        let slug = MerchantSlug::parse(&self.merchant).context("--merchant")?;
        match waymark.store.merchant_by_slug(&slug).await? {
            Some(merchant) => Ok(merchant.id),
            None => bail!("merchant: there is no merchant `{slug}` (`waymark merchants list`)"),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ShipmentsCommand {
    /// Register one shipment.
    Add(Box<AddShipment>),
    /// Register shipments from a CSV file with a header row (carrier, tracking_number,
    /// customer_email, customer_name, customer_phone, locale, time_zone, destination_country,
    /// destination_postal_code, order_reference, promise, account).
    Import { file: PathBuf },
    /// Show what Waymark knows about a registered shipment: timeline and messages.
    Show { tracking_number: String },
    /// Send the customer no more messages about a shipment (its unsent ones are dropped).
    Mute { tracking_number: String },
    /// Send messages about a muted shipment again.
    Unmute { tracking_number: String },
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Add a carrier account, or update the one with the same carrier and name.
    Add {
        /// The carrier's code (dhl, ups, fedex, ...).
        #[arg(long)]
        carrier: String,
        #[arg(long, default_value = DEFAULT_ACCOUNT)]
        name: String,
        /// A credential as KEY=VALUE (api_key=…, client_id=…, client_secret=…); repeat as needed.
        #[arg(long = "credential", value_name = "KEY=VALUE")]
        credentials: Vec<String>,
        /// The carrier's API base URL for this account (e.g. their sandbox).
        #[arg(long)]
        base_url: Option<String>,
        /// Calls per day this account may make (default: the carrier's plan).
        #[arg(long)]
        daily_quota: Option<u32>,
        #[arg(long)]
        requests_per_second: Option<f64>,
    },
    /// List the accounts (credential names only, never their values).
    List,
}

#[derive(Debug, Args)]
pub struct AddShipment {
    /// The carrier's code; recognised from the tracking number when left out.
    #[arg(long)]
    pub carrier: Option<String>,
    #[arg(long, default_value = DEFAULT_ACCOUNT)]
    pub account: String,
    #[arg(long)]
    pub tracking_number: String,
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub name: Option<String>,
    /// The customer's phone for text messages, as their country writes it or as +<country>….
    #[arg(long)]
    pub phone: Option<String>,
    /// The customer's language tag (de-AT); left out, or not one of en, de, pl: the merchant's.
    #[arg(long)]
    pub locale: Option<String>,
    /// Two-letter destination country.
    #[arg(long)]
    pub country: String,
    /// The destination's postal code. Where the country spans several time zones (US, CA, AU,
    /// ...), it places the customer in theirs, unless --time-zone is given.
    #[arg(long)]
    pub postal_code: Option<String>,
    /// The customer's IANA time zone (defaults from the country, or its postal code).
    #[arg(long)]
    pub time_zone: Option<String>,
    #[arg(long)]
    pub order: Option<String>,
    /// Promised delivery: 2026-03-04 or 2026-03-04..2026-03-06.
    #[arg(long)]
    pub promise: Option<String>,
    /// What the order is worth (129.90), in --currency: delivery-change rules go by it.
    #[arg(long, requires = "currency")]
    pub order_value: Option<String>,
    /// The order's currency (EUR).
    #[arg(long)]
    pub currency: Option<String>,
    /// The carrier must get a signature: the customer cannot redirect the delivery.
    #[arg(long)]
    pub signature_required: bool,
}

/// `waymark copy-data`: copy, then print each table's counts on both sides.
async fn copy_data(config: &Config, from: &str, to: &str) -> anyhow::Result<()> {
    // The source's key opens its secrets; the copy keeps them sealed under it.
    let mut source = config.clone();
    source.database_url = from.to_owned();
    let vault = crate::app::open_vault(&source)?;
    let report = crate::store::copy::copy_sqlite_to_postgres(from, to, vault)
        .await
        .context("copy-data")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<28} {:>12} {:>12}", "table", "from", "to")?;
    for (table, rows_from, rows_to) in &report.tables {
        let mark = if rows_from == rows_to {
            ""
        } else {
            "  <- differs"
        };
        writeln!(out, "{table:<28} {rows_from:>12} {rows_to:>12}{mark}")?;
    }
    if !report.matches() {
        bail!("the copy's row counts differ from the source's");
    }
    writeln!(
        out,
        "copied {from} to {to}; every count matches. Start the replicas with the same master key."
    )?;
    Ok(())
}

/// Run the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Demo(args) = &cli.command {
        return crate::demo::run(&cli.config, args).await;
    }
    // Detection reads only the carrier files: no database, no workers.
    if let Command::Detect { tracking_number } = &cli.command {
        return detect(&cli.config, tracking_number);
    }
    let config = Config::load(&cli.config)?;
    if let Command::CopyData { from, to } = &cli.command {
        return copy_data(&config, from, to).await;
    }
    let waymark = Waymark::start(config).await?;
    match cli.command {
        Command::Serve => {
            let shutdown = CancellationToken::new();
            let trigger = shutdown.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("stopping: finishing work in flight");
                trigger.cancel();
            });
            waymark.run(shutdown).await
        }
        Command::Migrate => {
            println!("database is up to date: {}", waymark.config.database_url);
            Ok(())
        }
        Command::Shipments { merchant, command } => {
            let merchant = merchant.resolve(&waymark).await?;
            shipments(&waymark, merchant, command).await
        }
        Command::Accounts { merchant, command } => {
            let merchant = merchant.resolve(&waymark).await?;
            accounts(&waymark, merchant, command).await
        }
        Command::Merchants(command) => tenants::merchants(&waymark, command).await,
        Command::ApiKeys { merchant, command } => {
            let merchant = merchant.resolve(&waymark).await?;
            tenants::api_keys(&waymark, merchant, command).await
        }
        Command::Keys(command) => tenants::keys(&waymark, command).await,
        Command::Track {
            tracking_number,
            carrier,
            account,
            merchant,
        } => {
            let merchant = merchant.resolve(&waymark).await?;
            track(&waymark, merchant, &carrier, &account, &tracking_number).await
        }
        Command::Demo(_) | Command::Detect { .. } | Command::CopyData { .. } => {
            unreachable!("handled above")
        }
    }
}

async fn shipments(
    waymark: &Waymark,
    merchant: MerchantId,
    command: ShipmentsCommand,
) -> anyhow::Result<()> {
    match command {
        ShipmentsCommand::Add(add) => {
            let add = *add;
            let input = ShipmentInput {
                carrier: add.carrier.unwrap_or_default(),
                account: Some(add.account),
                tracking_number: add.tracking_number,
                customer_email: add.email,
                customer_name: add.name,
                customer_phone: add.phone,
                locale: add.locale,
                time_zone: add.time_zone,
                destination_country: add.country,
                destination_postal_code: add.postal_code,
                order_reference: add.order,
                promise: add.promise,
                order_value: add.order_value,
                order_currency: add.currency,
                signature_required: Some(add.signature_required),
            };
            let shipment = intake::register(
                waymark.store.as_ref(),
                &waymark.carriers,
                merchant,
                &input,
                waymark.clock.now(),
            )
            .await
            .context("shipment refused")?;
            println!(
                "registered {} {} (id {})",
                shipment.carrier, shipment.tracking_number, shipment.id
            );
            Ok(())
        }
        ShipmentsCommand::Import { file } => {
            let report = import_file(waymark, merchant, &file, std::io::stderr()).await?;
            println!("imported {} shipments", report.imported);
            if report.refused > 0 {
                bail!("{} rows refused", report.refused);
            }
            Ok(())
        }
        ShipmentsCommand::Show { tracking_number } => {
            show(waymark, merchant, &tracking_number).await
        }
        ShipmentsCommand::Mute { tracking_number } => {
            set_muted(waymark, merchant, &tracking_number, true).await
        }
        ShipmentsCommand::Unmute { tracking_number } => {
            set_muted(waymark, merchant, &tracking_number, false).await
        }
    }
}

async fn accounts(
    waymark: &Waymark,
    merchant: MerchantId,
    command: AccountsCommand,
) -> anyhow::Result<()> {
    match command {
        AccountsCommand::Add {
            carrier,
            name,
            credentials,
            base_url,
            daily_quota,
            requests_per_second,
        } => {
            let carrier = waymark.carriers.known(&carrier)?;
            let mut secrets = crate::carriers::Credentials::default();
            for pair in credentials {
                let (key, value) = pair
                    .split_once('=')
                    .with_context(|| format!("credential `{pair}`: expected KEY=VALUE"))?;
                secrets.insert(key.trim(), value);
            }
            if let Some(url) = &base_url {
                reqwest::Url::parse(url).with_context(|| format!("base_url `{url}`"))?;
            }
            let account = waymark
                .store
                .save_carrier_account(&crate::carriers::CarrierAccount {
                    id: uuid::Uuid::now_v7(),
                    merchant_id: merchant,
                    carrier,
                    name,
                    credentials: secrets,
                    base_url,
                    daily_quota,
                    requests_per_second,
                })
                .await?;
            println!(
                "saved {} account `{}` (id {})",
                account.carrier, account.name, account.id
            );
            Ok(())
        }
        AccountsCommand::List => {
            for account in waymark.store.merchant_carrier_accounts(merchant).await? {
                let keys: Vec<&str> = account.credentials.names().collect();
                println!(
                    "{:<12} {:<16} credentials: [{}]{}{}",
                    account.carrier.as_str(),
                    account.name,
                    keys.join(", "),
                    account
                        .base_url
                        .as_deref()
                        .map(|u| format!(" base_url: {u}"))
                        .unwrap_or_default(),
                    account
                        .daily_quota
                        .map(|q| format!(" daily_quota: {q}"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

/// Print the carrier a number was recognised as, or the candidates best first; a number that
/// matches nothing is an error, so the exit code tells scripts apart.
fn detect(config_file: &std::path::Path, number: &str) -> anyhow::Result<()> {
    let config = Config::load(config_file)?;
    let recogniser = crate::carriers::recognise::Recogniser::load(config.carriers_dir.as_deref())
        .context("loading the carriers' number formats")?;
    let number = crate::carriers::recognise::normalise(number);
    let recognition = recogniser.recognise(&number);
    if recognition.candidates().is_empty() {
        bail!("`{number}` is {recognition}; give the carrier explicitly");
    }
    println!("{number}: {recognition}");
    Ok(())
}

async fn track(
    waymark: &Waymark,
    merchant: MerchantId,
    carrier: &str,
    account: &str,
    number: &str,
) -> anyhow::Result<()> {
    let code = waymark.carriers.known(carrier)?;
    let number = TrackingNumber::parse(number)?;
    let adapter = waymark
        .carriers
        .get(&code)
        .context("carrier not registered")?;
    let account = waymark
        .store
        .carrier_account_by_name(merchant, &code, account)
        .await?
        .with_context(|| format!("account: no {code} account named `{account}`"))?;
    // A registered shipment is tracked as of its registration, like the scheduler does.
    let registered_at = waymark
        .store
        .shipments_by_number(&number)
        .await?
        .into_iter()
        .find(|s| s.carrier_account_id == account.id)
        .map(|s| s.created_at);
    let results = adapter
        .track(
            &account,
            &[TrackRequest {
                tracking_number: number.clone(),
                registered_at,
            }],
        )
        .await
        .with_context(|| format!("asking {} about {number}", adapter.profile().name))?;
    let result = results
        .into_iter()
        .find(|r| r.tracking_number == number)
        .context("the carrier's answer does not mention this number")?;
    let report = result.outcome.with_context(|| format!("{number}"))?;
    print!("{}", crate::printout::report(&code, &number, &report));
    Ok(())
}

/// The merchant's shipments with this number (one per carrier account it is registered on).
async fn merchant_shipments_by_number(
    waymark: &Waymark,
    merchant: MerchantId,
    number: &str,
) -> anyhow::Result<Vec<crate::domain::Shipment>> {
    let number = TrackingNumber::parse(number)?;
    let mut shipments = waymark.store.shipments_by_number(&number).await?;
    shipments.retain(|s| s.merchant_id == merchant);
    if shipments.is_empty() {
        bail!("tracking_number: `{number}` is not registered");
    }
    Ok(shipments)
}

async fn set_muted(
    waymark: &Waymark,
    merchant: MerchantId,
    number: &str,
    muted: bool,
) -> anyhow::Result<()> {
    let shipments = merchant_shipments_by_number(waymark, merchant, number).await?;
    for shipment in shipments {
        waymark.store.set_muted(shipment.id, muted).await?;
        println!(
            "{} {} {}",
            shipment.carrier,
            shipment.tracking_number,
            if muted { "muted" } else { "unmuted" }
        );
    }
    Ok(())
}

async fn show(waymark: &Waymark, merchant: MerchantId, number: &str) -> anyhow::Result<()> {
    let shipments = merchant_shipments_by_number(waymark, merchant, number).await?;
    for shipment in shipments {
        let events = waymark.store.timeline(shipment.id).await?;
        let messages = waymark.store.notifications(shipment.id).await?;
        print!(
            "{}",
            crate::printout::shipment(&shipment, &events, &messages)
        );
    }
    Ok(())
}

/// Import a CSV file of shipments as `waymark shipments import` does: read as a stream, with a
/// progress bar on stderr when it is a terminal (bytes of the file read, rows a second), and
/// each refused row written to `refusals` as `FILE:LINE: why`, in file order, as its batch is
/// stored.
pub async fn import_file(
    waymark: &Waymark,
    merchant: MerchantId,
    file: &Path,
    refusals: impl Write,
) -> anyhow::Result<ImportReport> {
    let reader =
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = reader
        .metadata()
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    // Hidden when stderr is not a terminal, so logs and scripts get only the lines.
    let bar = ProgressBar::new(size).with_style(
        ProgressStyle::with_template(
            "{elapsed_precise} {wide_bar} {binary_bytes}/{binary_total_bytes} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut progress = ImportProgress {
        bar: bar.clone(),
        started: Instant::now(),
        file: file.display().to_string(),
        out: refusals,
        lines: String::new(),
        failed: None,
        stored: 0,
    };
    // csv's reader buffers what it reads, so the file is read in large chunks as it goes.
    let result = intake::import_csv_with(
        waymark.store.as_ref(),
        &waymark.carriers,
        merchant,
        bar.wrap_read(reader),
        waymark.clock.now(),
        &mut progress,
    )
    .await;
    bar.finish();
    let report = result.with_context(|| {
        format!(
            "import of {} stopped; the {} shipments imported before stay",
            file.display(),
            progress.stored
        )
    })?;
    if let Some(error) = progress.failed {
        return Err(error).context("writing the refused rows");
    }
    Ok(report)
}

/// Shows an import's progress and writes its refused rows, a batch's at a time so the bar is
/// redrawn once per batch rather than once per row.
struct ImportProgress<W> {
    bar: ProgressBar,
    started: Instant,
    file: String,
    out: W,
    /// The refused rows of the batch being read, one line each.
    lines: String,
    /// The first failure to write a refused row; the import goes on and reports it at the end.
    failed: Option<std::io::Error>,
    /// Shipments imported so far.
    stored: u64,
}

impl<W: Write> ImportObserver for ImportProgress<W> {
    fn refused(&mut self, line: u64, why: &str) {
        self.lines
            .push_str(&format!("{}:{line}: {why}\n", self.file));
    }

    fn stored(&mut self, report: &ImportReport) {
        if !self.lines.is_empty() {
            let written = self
                .bar
                .suspend(|| self.out.write_all(self.lines.as_bytes()));
            if let Err(error) = written {
                self.failed.get_or_insert(error);
            }
            self.lines.clear();
        }
        self.stored = report.imported;
        let rows = report.imported + report.refused;
        let per_second = rows as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{rows} rows ({} imported, {} refused), {per_second:.0} rows/s",
            report.imported, report.refused
        ));
    }
}

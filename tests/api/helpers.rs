//! What every integration test needs: a real SMTP server, a fresh SQLite file, Waymark's parts
//! built from a config like `waymark serve` builds them, loops driven round by round, the real
//! `waymark` binary, and the emails that arrived, parsed.

use anyhow::{Context, bail, ensure};
use jiff::Timestamp;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use std::sync::Arc;
use waymark::app::Waymark;
use waymark::carriers::sandbox::Scenario;
use waymark::clock::Clock;
use waymark::config::{Config, EmailTransport};
use waymark::domain::{MerchantId, Notification, NotificationState, Shipment};
use waymark::intake::{self, ShipmentInput};
use waymark::notify::dispatcher::{DispatchRound, Dispatcher};
use waymark::scheduler::{PollRound, Scheduler};
use waymark::store::Store;

/// Where customers reach Waymark in every test: links in emails start with it.
pub const PUBLIC_URL: &str = "https://track.shop.test";

/// Simulated seconds per real second in most tests: the longest sandbox journey (nine
/// simulated days) plays out in about fifteen real seconds.
pub const FAST: f64 = 50_000.0;

/// The longest any test waits for a journey, in real time.
pub const PATIENCE: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// The SMTP server

/// `tests/support/smtp_server.py` running on a free port of 127.0.0.1; killed on drop.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    /// Where accepted messages land as `<n>.eml`, next to `smtp.log`.
    pub maildir: PathBuf,
}

/// One line of the SMTP server's `smtp.log`.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpLogLine {
    /// Unix time, in seconds.
    pub at: f64,
    /// `RCPT-OK`, `RCPT-451`, `RCPT-550`, `STALL`, `ABANDONED`, `SAVED`.
    pub event: String,
    pub address: String,
    pub detail: String,
}

impl SmtpServer {
    pub fn start(maildir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(maildir)?;
        let python =
            std::env::var("WAYMARK_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let stderr_path = maildir.join("smtp.stderr");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg("0")
            .arg(maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path)?)
            .spawn()
            .with_context(|| format!("starting {} {}", python, script.display()))?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut first_line = String::new();
        BufReader::new(stdout).read_line(&mut first_line)?;
        let port = match first_line.trim().strip_prefix("PORT ") {
            Some(port) => port.parse::<u16>()?,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "the SMTP server did not start (is python3-aiosmtpd installed for {python}? \
                     scripts/test.sh installs it): {}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
        };
        Ok(SmtpServer {
            child,
            port,
            maildir: maildir.to_owned(),
        })
    }

    /// The accepted messages, in the order they were accepted.
    pub fn emails(&self) -> anyhow::Result<Vec<Email>> {
        let mut numbered = Vec::new();
        for entry in std::fs::read_dir(&self.maildir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(number) = name
                .strip_suffix(".eml")
                .and_then(|n| n.parse::<u64>().ok())
            {
                numbered.push((number, path));
            }
        }
        numbered.sort();
        numbered
            .into_iter()
            .map(|(number, path)| Email::read(number, &path))
            .collect()
    }

    /// How many messages were accepted so far.
    pub fn count(&self) -> usize {
        std::fs::read_dir(&self.maildir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| {
                        e.file_name()
                            .to_str()
                            .is_some_and(|n| n.ends_with(".eml") && !n.starts_with('.'))
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    pub fn log(&self) -> Vec<SmtpLogLine> {
        let text = std::fs::read_to_string(self.maildir.join("smtp.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut parts = line.splitn(4, ' ');
                Some(SmtpLogLine {
                    at: parts.next()?.parse().ok()?,
                    event: parts.next()?.to_owned(),
                    address: parts.next()?.to_owned(),
                    detail: parts.next().unwrap_or_default().to_owned(),
                })
            })
            .collect()
    }

    /// Log lines of one event for addresses starting with `prefix`.
    pub fn log_of(&self, event: &str, prefix: &str) -> Vec<SmtpLogLine> {
        self.log()
            .into_iter()
            .filter(|l| l.event == event && l.address.starts_with(prefix))
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Emails

/// A message the SMTP server accepted, parsed.
pub struct Email {
    /// Its number at the server (`<n>.eml`).
    pub number: u64,
    pub message: mail_parser::Message<'static>,
}

impl Email {
    fn read(number: u64, path: &Path) -> anyhow::Result<Self> {
        let raw = std::fs::read(path)?;
        let message = MessageParser::default()
            .parse(&raw)
            .with_context(|| format!("{} is not an email", path.display()))?
            .into_owned();
        Ok(Email { number, message })
    }

    /// A header's value as it was written, unfolded and trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        self.message
            .header_raw(name.to_owned())
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    pub fn trigger(&self) -> String {
        self.header("X-Waymark-Trigger").unwrap_or_default()
    }

    pub fn shipment_id(&self) -> String {
        self.header("X-Waymark-Shipment").unwrap_or_default()
    }

    pub fn subject(&self) -> String {
        self.message.subject().unwrap_or_default().to_owned()
    }

    /// `Message-ID` without its angle brackets.
    pub fn message_id(&self) -> Option<String> {
        self.message.message_id().map(str::to_owned)
    }

    pub fn in_reply_to(&self) -> Vec<String> {
        ids(self.message.in_reply_to())
    }

    pub fn references(&self) -> Vec<String> {
        ids(self.message.references())
    }

    /// The address the server delivered to (the SMTP envelope).
    pub fn envelope_to(&self) -> Vec<String> {
        self.message
            .header_values("X-Envelope-To".to_owned())
            .filter_map(|v| v.as_text().map(|t| t.trim().to_owned()))
            .collect()
    }

    /// The `To:` header's addresses.
    pub fn to(&self) -> Vec<String> {
        self.message
            .to()
            .map(|a| {
                a.iter()
                    .filter_map(|addr| addr.address().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `To:` header's display name.
    pub fn to_name(&self) -> Option<String> {
        self.message
            .to()
            .and_then(|a| a.first())
            .and_then(|addr| addr.name().map(str::to_owned))
    }

    /// The top part's content type and those of the leaf parts below it, like `text/plain`.
    pub fn top_and_leaf_types(&self) -> (String, Vec<String>) {
        let kind = |part: &mail_parser::MessagePart| {
            part.content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()))
                .unwrap_or_else(|| "text/plain".into())
                .to_ascii_lowercase()
        };
        let top = kind(self.message.root_part());
        let leaves = self
            .message
            .parts
            .iter()
            .skip(1)
            .filter(|p| !p.is_multipart())
            .map(kind)
            .collect();
        (top, leaves)
    }

    /// The text/plain part, decoded.
    pub fn text(&self) -> String {
        self.message
            .text_part(0)
            .filter(|p| !p.is_text_html())
            .and_then(|p| p.text_contents())
            .unwrap_or_default()
            .to_owned()
    }

    /// The text/html part, decoded, with character references resolved (a template's HTML
    /// escaping writes `/` as `&#x2f;`; a browser reads the same link).
    pub fn html(&self) -> String {
        let html = self
            .message
            .html_part(0)
            .filter(|p| p.is_text_html())
            .and_then(|p| p.text_contents())
            .unwrap_or_default();
        unescape_html(html)
    }

    /// The `Date:` header as an instant.
    pub fn date(&self) -> Option<Timestamp> {
        self.message
            .date()
            .and_then(|d| Timestamp::from_second(d.to_timestamp()).ok())
    }
}

/// The message ids in `In-Reply-To` or `References`.
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![id.to_string()],
        HeaderValue::TextList(list) => list.iter().map(|id| id.to_string()).collect(),
        _ => Vec::new(),
    }
}

fn unescape_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let Some(end) = tail.find(';').filter(|end| *end <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Emails grouped by the shipment they are about, each group in the order it arrived.
pub fn by_shipment(emails: &[Email]) -> BTreeMap<String, Vec<&Email>> {
    let mut groups: BTreeMap<String, Vec<&Email>> = BTreeMap::new();
    for email in emails {
        groups.entry(email.shipment_id()).or_default().push(email);
    }
    groups
}

// ---------------------------------------------------------------------------------------------
// Languages

/// Words that give a language away (lower case).
const WORDS: [(&str, &[&str]); 3] = [
    (
        "en",
        &[
            "the",
            "your",
            "you",
            "is",
            "are",
            "and",
            "to",
            "of",
            "on",
            "its",
            "it",
            "way",
            "has",
            "have",
            "been",
            "we",
            "out",
            "for",
            "delivery",
            "delivered",
            "parcel",
            "order",
            "today",
            "delayed",
            "customs",
            "ready",
            "pickup",
            "collect",
            "returned",
            "returning",
            "attempt",
            "failed",
            "missed",
            "stuck",
            "late",
            "lost",
            "from",
            "with",
            "please",
            "tracking",
            "follow",
            "unsubscribe",
            "hello",
        ],
    ),
    (
        "de",
        &[
            "der",
            "die",
            "das",
            "und",
            "ist",
            "ihr",
            "ihre",
            "ihres",
            "ihren",
            "ihrem",
            "sie",
            "wir",
            "nicht",
            "ein",
            "eine",
            "einen",
            "mit",
            "zu",
            "zur",
            "zum",
            "den",
            "dem",
            "paket",
            "sendung",
            "bestellung",
            "wurde",
            "wird",
            "unterwegs",
            "zugestellt",
            "zustellung",
            "heute",
            "zoll",
            "verspätet",
            "verspätung",
            "abholbereit",
            "abholung",
            "abholen",
            "zurück",
            "hallo",
            "liegt",
            "bitte",
            "auf",
            "für",
            "noch",
            "leider",
            "sendungsverfolgung",
            "abmelden",
            "guten",
            "tag",
            "zollgebühren",
            "einfuhrabgaben",
        ],
    ),
    (
        "pl",
        &[
            "i",
            "w",
            "na",
            "jest",
            "się",
            "nie",
            "do",
            "z",
            "że",
            "twoja",
            "twoje",
            "twój",
            "twoją",
            "paczka",
            "paczkę",
            "paczki",
            "przesyłka",
            "przesyłkę",
            "zamówienie",
            "została",
            "został",
            "zostało",
            "drodze",
            "dostarczona",
            "dostarczono",
            "doręczona",
            "kurier",
            "kuriera",
            "odbioru",
            "odbiór",
            "odbierz",
            "opóźniona",
            "opóźnienie",
            "cło",
            "cła",
            "zwrot",
            "wraca",
            "dziś",
            "dzisiaj",
            "dzień",
            "dobry",
            "prosimy",
            "czeka",
            "punkcie",
            "sklep",
            "śledź",
            "wypisz",
            "już",
        ],
    ),
];

/// How many of each language's give-away words `text` uses; links and addresses do not count.
pub fn language_scores(text: &str) -> BTreeMap<&'static str, usize> {
    let words: Vec<String> = text
        .split_whitespace()
        .filter(|token| !token.contains("://") && !token.contains('@'))
        .flat_map(|token| token.split(|c: char| !c.is_alphabetic()))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    WORDS
        .iter()
        .map(|(language, markers)| {
            let hits = words
                .iter()
                .filter(|w| markers.contains(&w.as_str()))
                .count();
            (*language, hits)
        })
        .collect()
}

/// Whether `text` reads as `language` (more of its words than of any other language's).
pub fn reads_as(text: &str, language: &str) -> bool {
    let scores = language_scores(text);
    let own = scores.get(language).copied().unwrap_or(0);
    own > 0 && scores.iter().all(|(l, s)| *l == language || *s < own)
}

// ---------------------------------------------------------------------------------------------
// The app, driven round by round

/// A Waymark of its own: a fresh database, its own SMTP server and outbox, and the two loops
/// that tests turn one round at a time.
pub struct TestApp {
    pub scheduler: Scheduler,
    pub dispatcher: Dispatcher,
    pub waymark: Waymark,
    pub smtp: SmtpServer,
    /// Holds the database, the outbox and the mail; removed when the test ends, after
    /// everything above is dropped.
    _dir: TempDir,
}

/// What the loops did while a test drove them.
#[derive(Debug, Default, Clone)]
pub struct Driven {
    pub rounds: usize,
    pub polls: Vec<PollRound>,
    pub dispatches: Vec<DispatchRound>,
}

/// A config like an operator's: SMTP to the test server, the test's own database and outbox,
/// an accelerated clock, quiet hours off, and retries one (real) second apart.
pub fn test_config(dir: &Path, smtp_port: u16) -> Config {
    let mut config = Config {
        database_url: format!("sqlite://{}", dir.join("waymark.db").display()),
        public_url: PUBLIC_URL.into(),
        merchant_name: "Kwiaciarnia Róża".into(),
        ..Config::default()
    };
    config.quiet_hours.enabled = false;
    config.email.from = "Kwiaciarnia Róża <notifications@shop.test>".into();
    config.email.transport = EmailTransport::Smtp;
    config.email.smtp.host = "127.0.0.1".into();
    config.email.smtp.port = smtp_port;
    config.email.smtp.timeout_seconds = 10;
    config.email.file_dir = dir.join("outbox");
    config.dispatcher.retry_base_seconds = 1;
    config.dispatcher.retry_max_seconds = 4;
    config
}

pub async fn spawn_app() -> anyhow::Result<TestApp> {
    spawn_app_with(|_| {}).await
}

/// A fresh app; `configure` changes the test config before it is validated and started.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> anyhow::Result<TestApp> {
    let dir = tempfile::Builder::new().prefix("waymark-api-").tempdir()?;
    let smtp = SmtpServer::start(&dir.path().join("mail"))?;
    let mut config = test_config(dir.path(), smtp.port);
    configure(&mut config);
    let config = config.validated().context("the test config is valid")?;
    // Unless a test asks for real (accelerated) time, simulated time moves only when the test
    // driver moves it, from one due time to the next: journeys play out the same however busy
    // the machine is.
    let clock = (config.clock.acceleration <= 1.0).then(|| Clock::manual(Timestamp::now()));
    let waymark = Waymark::start_with_clock(config, clock).await?;
    let scheduler = waymark.scheduler();
    let dispatcher = waymark.dispatcher()?;
    Ok(TestApp {
        scheduler,
        dispatcher,
        waymark,
        smtp,
        _dir: dir,
    })
}

impl TestApp {
    pub fn store(&self) -> &dyn Store {
        self.waymark.store.as_ref()
    }

    /// The test's directory: the database (and its key file), the outbox, the mail.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    pub fn now(&self) -> Timestamp {
        self.waymark.clock.now()
    }

    pub fn database_url(&self) -> &str {
        &self.waymark.config.database_url
    }

    /// Register through the same door the CLI and CSV import use.
    pub async fn register(&self, input: &ShipmentInput) -> anyhow::Result<Shipment> {
        Ok(intake::register(
            self.store(),
            &self.waymark.carriers,
            MerchantId::DEFAULT,
            input,
            self.now(),
        )
        .await?)
    }

    pub async fn shipment(&self, id: Uuid) -> anyhow::Result<Shipment> {
        self.store()
            .shipment(id)
            .await?
            .with_context(|| format!("shipment {id} is stored"))
    }

    pub async fn notifications(&self, id: Uuid) -> anyhow::Result<Vec<Notification>> {
        Ok(self.store().notifications(id).await?)
    }

    /// Nothing was due: wait (in real time) until the next poll or message is, at most a few
    /// milliseconds, so the accelerated clock moves on.
    pub async fn until_due(&self) -> anyhow::Result<()> {
        let store = self.store();
        let next = [
            store.next_poll_at().await?,
            store.next_notification_at().await?,
        ]
        .into_iter()
        .flatten()
        .min();
        if self.waymark.clock.acceleration() <= 1.0 {
            // The manual clock: jump to the next due time (or a minute on, if nothing is due).
            let next = next.unwrap_or(self.now() + jiff::SignedDuration::from_mins(1));
            self.waymark.clock.advance_to(next.max(self.now()));
            tokio::task::yield_now().await;
            return Ok(());
        }
        let wait = match next {
            Some(next) => self
                .waymark
                .clock
                .real_duration(next.duration_since(self.now()))
                .clamp(Duration::from_millis(1), Duration::from_millis(25)),
            None => Duration::from_millis(25),
        };
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Turn both loops (the app's scheduler and dispatcher) until `done` says so.
    pub async fn drive_until<F>(&self, what: &str, done: F) -> anyhow::Result<Driven>
    where
        F: AsyncFnMut(&Driven) -> anyhow::Result<bool>,
    {
        self.turn_until(what, Some(&self.dispatcher), done).await
    }

    /// Turn only the scheduler until `done` says so: messages pile up in the outbox.
    pub async fn poll_until<F>(&self, what: &str, done: F) -> anyhow::Result<Driven>
    where
        F: AsyncFnMut(&Driven) -> anyhow::Result<bool>,
    {
        self.turn_until(what, None, done).await
    }

    /// Turn the scheduler, and `dispatcher` when given, round by round until `done` says so,
    /// waiting for simulated time between idle rounds. Gives up after [`PATIENCE`] or a bound
    /// on the rounds, saying how far it got.
    pub async fn turn_until<F>(
        &self,
        what: &str,
        dispatcher: Option<&Dispatcher>,
        mut done: F,
    ) -> anyhow::Result<Driven>
    where
        F: AsyncFnMut(&Driven) -> anyhow::Result<bool>,
    {
        const MAX_ROUNDS: usize = 200_000;
        let started = Instant::now();
        let mut driven = Driven::default();
        loop {
            if done(&driven).await? {
                return Ok(driven);
            }
            if driven.rounds >= MAX_ROUNDS || started.elapsed() > PATIENCE {
                let backlog = self.store().backlog().await?;
                bail!(
                    "gave up waiting for {what} after {} rounds and {:.1?} (simulated {}): \
                     {backlog:?}",
                    driven.rounds,
                    started.elapsed(),
                    self.now()
                );
            }
            let polled = self.scheduler.run_once().await?;
            let dispatched = match dispatcher {
                Some(dispatcher) => dispatcher.run_once().await?,
                None => DispatchRound::default(),
            };
            driven.rounds += 1;
            let busy = polled.did_work() || dispatched.did_work();
            driven.polls.push(polled);
            driven.dispatches.push(dispatched);
            if !busy {
                self.until_due().await?;
            }
        }
    }

    /// Drive both loops until every journey is over and nothing is left to send.
    pub async fn run_until_done(&self) -> anyhow::Result<Driven> {
        let store = self.waymark.store.clone();
        self.drive_until("every journey to end and every message to go", async |_| {
            let backlog = store.backlog().await?;
            Ok(backlog.active_shipments == 0 && backlog.unsent_notifications == 0)
        })
        .await
    }
}

/// A sandbox shipment for `scenario` (number `seq`), for a customer writing in `locale` and
/// living in `country`.
pub fn sandbox_shipment(
    scenario: Scenario,
    seq: u32,
    email: &str,
    name: &str,
    locale: &str,
    country: &str,
) -> ShipmentInput {
    ShipmentInput {
        carrier: "sandbox".into(),
        account: None,
        tracking_number: scenario.example_number(seq).to_string(),
        customer_email: email.into(),
        customer_name: Some(name.into()),
        customer_phone: None,
        locale: Some(locale.into()),
        time_zone: None,
        destination_country: country.into(),
        destination_postal_code: None,
        order_reference: Some(format!("WM-{}", 1000 + seq)),
        ..ShipmentInput::default()
    }
}

/// The states of a shipment's messages, in order.
pub fn states(messages: &[Notification]) -> Vec<NotificationState> {
    messages.iter().map(|m| m.state).collect()
}

/// The triggers of a shipment's messages, in order.
pub fn triggers(messages: &[Notification]) -> Vec<String> {
    messages.iter().map(|m| m.trigger.to_string()).collect()
}

/// What the sandbox journeys tell a customer, trigger by trigger, when every poll result is
/// sent before the next poll (and without a promised date): the detectors' story of each
/// scenario in `src/carriers/sandbox.rs`.
pub fn expected_triggers(scenario: Scenario) -> &'static [&'static str] {
    match scenario {
        Scenario::OnTime | Scenario::NotFound | Scenario::Broken => {
            &["shipped", "out_for_delivery", "delivered"]
        }
        // The storm moves the estimate from day 3 to day 5, the depot's volume to day 6.
        Scenario::Late => &[
            "shipped",
            "delayed",
            "delayed",
            "out_for_delivery",
            "delivered",
        ],
        Scenario::Customs => &[
            "shipped",
            "customs_hold",
            "duties_due",
            "out_for_delivery",
            "delivered",
        ],
        Scenario::Pickup => &[
            "shipped",
            "out_for_delivery",
            "attempt_failed",
            "available_for_pickup",
            "pickup_reminder",
            "delivered",
        ],
        // Five silent days at Hannover, then the estimate moves from day 3 to day 7.
        Scenario::Stalled => &[
            "shipped",
            "stalled",
            "delayed",
            "out_for_delivery",
            "delivered",
        ],
        Scenario::Lost => &["shipped", "stalled", "exception"],
        Scenario::Returned => &[
            "shipped",
            "out_for_delivery",
            "attempt_failed",
            "returning_to_sender",
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// The binary

/// The real `waymark` binary, run in `dir` with a test's environment: no `WAYMARK_*` variable
/// of the environment the tests run in leaks into it.
pub fn waymark_command(dir: &Path, env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_waymark"));
    for (key, _) in std::env::vars() {
        if key.starts_with("WAYMARK_") {
            command.env_remove(key);
        }
    }
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Run the binary to the end.
pub fn run_waymark(dir: &Path, env: &[(String, String)], args: &[&str]) -> anyhow::Result<Output> {
    let output = waymark_command(dir, env)
        .args(args)
        .output()
        .with_context(|| format!("running waymark {}", args.join(" ")))?;
    Ok(Output {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// The environment that configures `waymark` for a test, and nothing else: a config file that
/// does not exist, the test's database, its SMTP server, an accelerated clock, short leases
/// (a killed daemon's work is rescued two seconds later) and short idle pauses.
pub fn daemon_env(dir: &Path, smtp_port: u16, acceleration: f64) -> Vec<(String, String)> {
    [
        (
            "WAYMARK_CONFIG",
            dir.join("absent.toml").display().to_string(),
        ),
        (
            "WAYMARK_DATABASE_URL",
            format!("sqlite://{}", dir.join("waymark.db").display()),
        ),
        ("WAYMARK_PUBLIC_URL", PUBLIC_URL.into()),
        ("WAYMARK_EMAIL__TRANSPORT", "smtp".into()),
        ("WAYMARK_EMAIL__SMTP__HOST", "127.0.0.1".into()),
        ("WAYMARK_EMAIL__SMTP__PORT", smtp_port.to_string()),
        (
            "WAYMARK_EMAIL__FILE_DIR",
            dir.join("outbox").display().to_string(),
        ),
        ("WAYMARK_CLOCK__ACCELERATION", acceleration.to_string()),
        ("WAYMARK_QUIET_HOURS__ENABLED", "false".into()),
        ("WAYMARK_SCHEDULER__MAX_IDLE_SECONDS", "1".into()),
        ("WAYMARK_DISPATCHER__MAX_IDLE_SECONDS", "1".into()),
        ("WAYMARK_SCHEDULER__LEASE_SECONDS", "2".into()),
        ("WAYMARK_DISPATCHER__LEASE_SECONDS", "2".into()),
        ("WAYMARK_DISPATCHER__RETRY_BASE_SECONDS", "1".into()),
        // Any free port: tests run side by side.
        ("WAYMARK_HTTP__LISTEN", "127.0.0.1:0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The database a daemon started with `env` uses.
pub fn database_url(env: &[(String, String)]) -> String {
    env.iter()
        .find(|(k, _)| k == "WAYMARK_DATABASE_URL")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Every value of `table.column` as the app's database keeps it at rest.
pub async fn stored_texts(app: &TestApp, table: &str, column: &str) -> anyhow::Result<Vec<String>> {
    Ok(
        waymark::store::inspect::text_column(app.database_url(), table, column)
            .await?
            .into_iter()
            .flatten()
            .collect(),
    )
}

/// `waymark serve` running in the background; killed on drop if still running.
pub struct Daemon {
    child: Option<Child>,
    pub stderr_path: PathBuf,
}

impl Daemon {
    /// Start `waymark serve`; its output goes to `<dir>/serve-<run>.{out,err}`.
    pub fn start(dir: &Path, env: &[(String, String)], run: usize) -> anyhow::Result<Self> {
        let stderr_path = dir.join(format!("serve-{run}.err"));
        let child = waymark_command(dir, env)
            .arg("serve")
            .stdout(std::fs::File::create(dir.join(format!("serve-{run}.out")))?)
            .stderr(std::fs::File::create(&stderr_path)?)
            .spawn()
            .context("starting waymark serve")?;
        Ok(Daemon {
            child: Some(child),
            stderr_path,
        })
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Fail when the daemon has exited on its own.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("waymark serve exited with {status}:\n{}", self.stderr());
            }
        }
        Ok(())
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().context("the daemon is running")?;
        child.kill()?;
        Ok(child.wait()?)
    }

    /// SIGTERM, then wait up to `within` for it to exit; returns its status and how long it took.
    pub fn terminate(&mut self, within: Duration) -> anyhow::Result<(ExitStatus, Duration)> {
        let mut child = self.child.take().context("the daemon is running")?;
        let sent = Instant::now();
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        ensure!(kill.success(), "kill -TERM failed");
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok((status, sent.elapsed()));
            }
            if sent.elapsed() > within {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "waymark serve did not stop within {within:?} of SIGTERM:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Poll `check` every few milliseconds until it holds, for at most `within`.
pub async fn wait_for<F>(what: &str, within: Duration, mut check: F) -> anyhow::Result<()>
where
    F: AsyncFnMut() -> anyhow::Result<bool>,
{
    let started = Instant::now();
    loop {
        if check().await? {
            return Ok(());
        }
        if started.elapsed() > within {
            bail!("gave up waiting for {what} after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The store of a database a `waymark` process made, opened with that process's master key (the
/// key file beside the database).
pub async fn open_store(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let (vault, _) = waymark::vault::load(
        &waymark::vault::VaultConfig::default(),
        None,
        &waymark::store::default_key_file(database_url),
    )?;
    Ok(waymark::store::connect(database_url, vault).await?)
}

/// The store at `database_url`, opened with the master key of the SQLite database at
/// `key_of` (the key file beside it): a copy made with `waymark copy-data`.
pub async fn open_store_with_key_of(
    key_of: &str,
    database_url: &str,
) -> anyhow::Result<Arc<dyn Store>> {
    let (vault, _) = waymark::vault::load(
        &waymark::vault::VaultConfig::default(),
        None,
        &waymark::store::default_key_file(key_of),
    )?;
    Ok(waymark::store::connect(database_url, vault).await?)
}

/// The app's HTTP side on a free port: its base URL, the switch that stops it, and its task.
pub async fn serve_http(app: &TestApp) -> anyhow::Result<(String, CancellationToken, Server)> {
    serve_http_on(app, tokio::net::TcpListener::bind("127.0.0.1:0").await?).await
}

/// A running HTTP side's task.
pub type Server = tokio::task::JoinHandle<std::io::Result<()>>;

/// The app's HTTP side on `listener` (bound before the app started, when its links must point
/// at it).
pub async fn serve_http_on(
    app: &TestApp,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<(String, CancellationToken, Server)> {
    let base = format!("http://{}", listener.local_addr()?);
    let stop = CancellationToken::new();
    let server = tokio::spawn(waymark::http::serve(
        listener,
        app.waymark.http_state()?,
        stop.clone(),
    ));
    Ok((base, stop, server))
}

/// A new API key of `merchant`, as its holder presents it.
pub async fn key_for(app: &TestApp, merchant: MerchantId) -> anyhow::Result<String> {
    let new = waymark::domain::NewApiKey::generate();
    app.store()
        .create_api_key(
            &waymark::domain::ApiKey {
                id: Uuid::now_v7(),
                merchant_id: merchant,
                name: "test".into(),
                prefix: new.prefix.clone(),
                created_at: Timestamp::now(),
                last_used_at: None,
                revoked_at: None,
            },
            &new.hash,
        )
        .await?;
    Ok(new.key.expose().to_owned())
}

/// The one-time code in the latest delivery-change code email: its subject carries it.
pub fn code_in(emails: &[Email]) -> String {
    let email = emails
        .iter()
        .rev()
        .find(|e| e.trigger() == "delivery_code")
        .expect("a code email arrived");
    email
        .subject()
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("the subject carries the code")
        .to_owned()
}

/// The default merchant's `default` DHL account, calling DHL at `base_url` (a wiremock server).
pub async fn dhl_account(app: &TestApp, base_url: &str) -> anyhow::Result<()> {
    app.store()
        .save_carrier_account(&waymark::carriers::CarrierAccount {
            id: Uuid::now_v7(),
            merchant_id: MerchantId::DEFAULT,
            carrier: waymark::domain::CarrierCode::parse("dhl")?,
            name: "default".into(),
            credentials: serde_json::json!({"api_key": "merchant-key"}).into(),
            base_url: Some(base_url.to_owned()),
            daily_quota: None,
            // DHL's one call per five seconds would make the test wait in real time.
            requests_per_second: Some(1000.0),
        })
        .await?;
    Ok(())
}

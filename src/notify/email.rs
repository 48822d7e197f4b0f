//! Email over SMTP (pooled, with TLS and auth) or into files for local use, with the headers
//! that make Waymark's messages thread per shipment and unsubscribe in one click.

use async_trait::async_trait;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::TlsParameters;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{EmailConfig, EmailTransport, SmtpConfig, SmtpTls};
use crate::notify::render::RenderedEmail;

// Waymark's own SMTP session pool, with TCP_NODELAY on its sockets: see the module's comment.
#[path = "smtp.rs"]
mod smtp;

/// Why an email was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Retrying will not help: the mailbox does not exist, the address is refused.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// Worth retrying: the relay is down, busy or greylisting.
    #[error("temporary failure: {0}")]
    Transient(String),
}

/// Something that delivers a finished email and says what the provider answered.
#[async_trait]
pub trait EmailSender: Send + Sync {
    /// Delivers `message` to its envelope's recipients; the provider's answer on success.
    async fn send(&self, message: Message) -> Result<String, SendError>;
}

/// An email transport that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum EmailSetupError {
    /// The SMTP relay's TLS settings are unusable.
    #[error("email.smtp: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The folder for emails as files cannot be created.
    #[error("email.file_dir `{dir}`: {source}")]
    FileDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

/// The configured transport.
pub fn sender_from_config(config: &EmailConfig) -> Result<Arc<dyn EmailSender>, EmailSetupError> {
    Ok(match config.transport {
        EmailTransport::Smtp => Arc::new(SmtpSender::new(&config.smtp)?),
        EmailTransport::File => Arc::new(FileSender::new(&config.file_dir)?),
    })
}

/// Sends through an SMTP relay over a pool of sessions whose sockets have `TCP_NODELAY` set
/// (see the `smtp` module for why Waymark pools its own): at most `pool_size` sessions wait
/// idle between sends, and one unused for a minute is closed; `timeout_seconds` bounds
/// connecting, opening a session (greeting, EHLO, STARTTLS or TLS, AUTH), checking an idle one
/// before reuse and `QUIT`.
pub struct SmtpSender {
    pool: smtp::SmtpPool,
}

impl SmtpSender {
    /// A sender for the relay `config` names: TLS as configured (verified against the relay's
    /// host name), AUTH when both a username and a password are set, EHLO with this machine's
    /// host name. Connects only when the first email is sent.
    pub fn new(config: &SmtpConfig) -> Result<Self, EmailSetupError> {
        let security = match config.tls {
            SmtpTls::None => smtp::Security::None,
            SmtpTls::Starttls => smtp::Security::Starttls(TlsParameters::new(config.host.clone())?),
            SmtpTls::Tls => smtp::Security::Implicit(TlsParameters::new(config.host.clone())?),
        };
        let credentials = match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                Some(Credentials::new(user.clone(), password.expose().to_owned()))
            }
            _ => None,
        };
        let settings = smtp::SessionSettings {
            host: config.host.clone(),
            port: config.port,
            security,
            credentials,
            hello_name: ClientId::default(),
            timeout: Duration::from_secs(config.timeout_seconds.max(1)),
        };
        Ok(SmtpSender {
            pool: smtp::SmtpPool::new(
                settings,
                config.pool_size.max(1) as usize,
                smtp::IDLE_TIMEOUT,
            ),
        })
    }
}

#[async_trait]
impl EmailSender for SmtpSender {
    async fn send(&self, message: Message) -> Result<String, SendError> {
        let response = self
            .pool
            .send(message.envelope(), &message.formatted())
            .await?;
        Ok(format!(
            "{} {}",
            response.code(),
            response.message().collect::<Vec<_>>().join(" ")
        ))
    }
}

/// Writes each email as `<id>.eml` into a folder: for trying Waymark out, and for the demo.
pub struct FileSender {
    transport: AsyncFileTransport<Tokio1Executor>,
}

impl FileSender {
    /// Writes into `dir`, which is created if missing.
    pub fn new(dir: &std::path::Path) -> Result<Self, EmailSetupError> {
        std::fs::create_dir_all(dir).map_err(|source| EmailSetupError::FileDir {
            dir: dir.display().to_string(),
            source,
        })?;
        Ok(FileSender {
            transport: AsyncFileTransport::new(dir),
        })
    }
}

#[async_trait]
impl EmailSender for FileSender {
    async fn send(&self, message: Message) -> Result<String, SendError> {
        self.transport
            .send(message)
            .await
            .map(|id| format!("{id}.eml"))
            .map_err(|e| SendError::Transient(e.to_string()))
    }
}

/// The addressing and threading of one email.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The shop, as the sender.
    pub from: Mailbox,
    /// Where the customer's replies go, when not to `from`.
    pub reply_to: Option<Mailbox>,
    /// The customer.
    pub to: Mailbox,
    /// `<id@domain>` of this email.
    pub message_id: String,
    /// `Message-ID`s of the shipment's earlier emails, oldest first.
    pub thread: Vec<String>,
    /// The `Date` header.
    pub date: SystemTime,
    /// One-click unsubscribe URL (RFC 8058).
    pub unsubscribe_url: String,
    /// Machine-readable tags for the merchant's mail tooling.
    pub trigger: String,
    /// The shipment the email is about (`X-Waymark-Shipment`).
    pub shipment_id: String,
}

/// A finished multipart email (text + HTML) that threads with the shipment's earlier emails.
pub fn build_message(envelope: &Envelope, rendered: &RenderedEmail) -> Result<Message, String> {
    let mut builder = Message::builder()
        .from(envelope.from.clone())
        .to(envelope.to.clone())
        .subject(rendered.subject.clone())
        .message_id(Some(envelope.message_id.clone()))
        .date(envelope.date);
    if let Some(reply_to) = &envelope.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    if let Some(last) = envelope.thread.last() {
        builder = builder
            .in_reply_to(last.clone())
            .references(envelope.thread.join(" "));
    }
    for (name, value) in [
        (
            "List-Unsubscribe",
            format!("<{}>", envelope.unsubscribe_url),
        ),
        (
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".to_owned(),
        ),
        // RFC 3834: an automatic message; out-of-office replies should not answer it.
        ("Auto-Submitted", "auto-generated".to_owned()),
        ("X-Waymark-Trigger", envelope.trigger.clone()),
        ("X-Waymark-Shipment", envelope.shipment_id.clone()),
    ] {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(name),
            value,
        ));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            rendered.text.clone(),
            rendered.html.clone(),
        ))
        .map_err(|e| e.to_string())
}

//! Email over SMTP (pooled, with TLS and auth) or into files for local use, with the headers
//! that make Waymark's messages thread per shipment and unsubscribe in one click.

use async_trait::async_trait;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{EmailConfig, EmailTransport, SmtpConfig, SmtpTls};
use crate::notify::render::RenderedEmail;

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
    async fn send(&self, message: Message) -> Result<String, SendError>;
}

/// An email transport that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum EmailSetupError {
    #[error("email.smtp: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
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

/// Sends through an SMTP relay over a connection pool.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpSender {
    pub fn new(config: &SmtpConfig) -> Result<Self, EmailSetupError> {
        let mut builder = match config.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
                    .tls(Tls::Required(TlsParameters::new(config.host.clone())?))
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
                .tls(Tls::Wrapper(TlsParameters::new(config.host.clone())?)),
        }
        .port(config.port)
        .timeout(Some(Duration::from_secs(config.timeout_seconds.max(1))))
        .pool_config(PoolConfig::new().max_size(config.pool_size.max(1)));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(SmtpSender {
            transport: builder.build(),
        })
    }
}

#[async_trait]
impl EmailSender for SmtpSender {
    async fn send(&self, message: Message) -> Result<String, SendError> {
        match self.transport.send(message).await {
            Ok(response) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }
}

/// Writes each email as `<id>.eml` into a folder: for trying Waymark out, and for the demo.
pub struct FileSender {
    transport: AsyncFileTransport<Tokio1Executor>,
}

impl FileSender {
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
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub to: Mailbox,
    /// `<id@domain>` of this email.
    pub message_id: String,
    /// `Message-ID`s of the shipment's earlier emails, oldest first.
    pub thread: Vec<String>,
    pub date: SystemTime,
    /// One-click unsubscribe URL (RFC 8058).
    pub unsubscribe_url: String,
    /// Machine-readable tags for the merchant's mail tooling.
    pub trigger: String,
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

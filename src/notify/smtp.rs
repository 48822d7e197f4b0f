//! Waymark's own pool of SMTP sessions, on sockets with `TCP_NODELAY` set.
//!
//! Why not lettre's pooled `AsyncSmtpTransport`: lettre opens its TCP sockets itself and leaves
//! Nagle's algorithm on (lettre 0.11 has no switch for `TCP_NODELAY`, on the transport builder
//! or anywhere else). Each message then ends like this: lettre writes the body, then the five
//! bytes of the end-of-data marker `\r\n.\r\n` in a second write. Nagle holds that small second
//! segment back until the body is acknowledged, and the relay delays its ACK (up to 40 ms on
//! Linux) because it has nothing to answer before it sees the marker. Every message waited
//! ~40 ms for nothing: against a local Postfix `smtp-sink` Waymark sent 168 messages a second
//! where `smtp-source` sends 4,600.
//!
//! So Waymark connects the socket itself ([`connect_tcp`], which sets `TCP_NODELAY`), wraps it
//! in TLS from the first byte when the relay wants that, and hands it to lettre's
//! [`AsyncSmtpConnection`], which still speaks SMTP: the greeting, EHLO, STARTTLS, AUTH and
//! the transaction. Having its own sockets, Waymark needs its own pool; [`SmtpPool`] behaves
//! like lettre's: a send takes the most recently used idle session (after a `NOOP` shows it is
//! still alive) or opens a new one, a session goes back after a successful send and is closed
//! after a failed one, at most `max_idle` wait, and one idle for longer than the idle timeout
//! is closed with `QUIT`. Nothing here logs a recipient or the relay's answers (which may name
//! one): only the relay's address and how many sessions there are.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
#[allow(deprecated)] // lettre's only way to run TLS over a stream it did not open
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tracing::debug;

use crate::notify::email::SendError;

/// How long a session may wait unused in the pool before it is closed (lettre's default).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How the session with the relay is secured.
#[derive(Clone)]
pub(crate) enum Security {
    /// Plain text throughout.
    None,
    /// Plain text until `STARTTLS`, which the relay must offer.
    Starttls(TlsParameters),
    /// TLS from the first byte (SMTPS, port 465).
    Implicit(TlsParameters),
}

/// Where and how to open a session with the relay.
#[derive(Clone)]
pub(crate) struct SessionSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// AUTH with these (PLAIN or LOGIN, whichever the relay offers) when set.
    pub credentials: Option<Credentials>,
    /// The name given in EHLO.
    pub hello_name: ClientId,
    /// The limit for connecting (each address the host resolves to), for the rest of opening
    /// a session (greeting, EHLO, TLS, AUTH), for checking an idle session and for `QUIT`.
    pub timeout: Duration,
}

/// Opens a TCP connection to `host:port` with `TCP_NODELAY` set, trying each address the host
/// resolves to in turn, each within `timeout`.
pub(crate) async fn connect_tcp(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let addresses = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "resolving the host timed out"))??;
    let mut last_error = None;
    for address in addresses {
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                // The point of this module: see its documentation.
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Ok(Err(error)) => last_error = Some(error),
            Err(_) => {
                last_error = Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection timed out",
                ));
            }
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "could not resolve to any supported address",
        )
    }))
}

/// The error the dispatcher acts on: a 5xx answer is for good, anything else may pass.
pub(crate) fn classify(error: SmtpError) -> SendError {
    if error.is_permanent() {
        SendError::Permanent(error.to_string())
    } else {
        SendError::Transient(error.to_string())
    }
}

/// A pool of SMTP sessions with one relay. Cheap to share behind an `Arc`; dropping it closes
/// the idle sessions.
pub(crate) struct SmtpPool {
    shared: Arc<Shared>,
}

struct Shared {
    settings: SessionSettings,
    max_idle: usize,
    idle_timeout: Duration,
    /// Idle sessions, the most recently used last.
    idle: Mutex<Vec<Parked>>,
    /// Whether the task that closes sessions idle for too long is running.
    reaper_started: AtomicBool,
    /// Sessions opened so far.
    opened: AtomicU64,
}

struct Parked {
    connection: AsyncSmtpConnection,
    since: Instant,
}

impl SmtpPool {
    /// A pool keeping at most `max_idle` (at least one) idle sessions, each for at most
    /// `idle_timeout`. As many sessions are open at once as sends are under way.
    pub(crate) fn new(settings: SessionSettings, max_idle: usize, idle_timeout: Duration) -> Self {
        SmtpPool {
            shared: Arc::new(Shared {
                settings,
                max_idle: max_idle.max(1),
                idle_timeout,
                idle: Mutex::new(Vec::new()),
                reaper_started: AtomicBool::new(false),
                opened: AtomicU64::new(0),
            }),
        }
    }

    /// Sends `email` to the envelope's recipients over a pooled session and returns the relay's
    /// answer to the end of data.
    pub(crate) async fn send(
        &self,
        envelope: &lettre::address::Envelope,
        email: &[u8],
    ) -> Result<Response, SendError> {
        let mut connection = self.checkout().await?;
        match connection.send(envelope, email).await {
            Ok(response) => {
                self.checkin(connection);
                Ok(response)
            }
            // lettre has already sent QUIT and closed a session an SMTP error broke; dropping
            // it closes the socket in any case.
            Err(error) => Err(classify(error)),
        }
    }

    /// Sessions opened so far.
    #[cfg(test)]
    pub(crate) fn opened(&self) -> u64 {
        self.shared.opened.load(Ordering::Relaxed)
    }

    /// Sessions waiting in the pool now.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.shared.lock_idle().len()
    }

    /// An idle session that answers `NOOP`, or else a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, SendError> {
        let timeout = self.shared.settings.timeout;
        loop {
            let parked = self.shared.lock_idle().pop();
            let Some(parked) = parked else {
                return self.shared.open().await;
            };
            if parked.since.elapsed() > self.shared.idle_timeout {
                spawn_quit(parked.connection, timeout);
                continue;
            }
            let mut connection = parked.connection;
            if let Ok(true) = tokio::time::timeout(timeout, connection.test_connected()).await {
                return Ok(connection);
            }
            // The relay closed it, or stopped answering: a new one it is.
            debug!(relay = %self.shared.relay(), "dropping a pooled SMTP session the relay no longer answers");
        }
    }

    /// Puts a session that just sent a message back into the pool, or closes it when the pool
    /// is full.
    fn checkin(&self, connection: AsyncSmtpConnection) {
        if connection.has_broken() {
            return;
        }
        let surplus = {
            let mut idle = self.shared.lock_idle();
            if idle.len() < self.shared.max_idle {
                idle.push(Parked {
                    connection,
                    since: Instant::now(),
                });
                None
            } else {
                Some(connection)
            }
        };
        match surplus {
            Some(connection) => spawn_quit(connection, self.shared.settings.timeout),
            None => self.start_reaper(),
        }
    }

    /// From the first session parked on: every half idle timeout, close the sessions idle for
    /// longer than the idle timeout. Stops when the pool is dropped.
    fn start_reaper(&self) {
        if self.shared.reaper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool: Weak<Shared> = Arc::downgrade(&self.shared);
        let period = (self.shared.idle_timeout / 2).max(Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(shared) = pool.upgrade() else {
                    return;
                };
                let expired = {
                    let mut idle = shared.lock_idle();
                    let (expired, kept) = std::mem::take(&mut *idle)
                        .into_iter()
                        .partition::<Vec<_>, _>(|p| p.since.elapsed() > shared.idle_timeout);
                    *idle = kept;
                    expired
                };
                let timeout = shared.settings.timeout;
                if !expired.is_empty() {
                    debug!(relay = %shared.relay(), sessions = expired.len(), "closing idle SMTP sessions");
                }
                drop(shared);
                for parked in expired {
                    spawn_quit(parked.connection, timeout);
                }
            }
        });
    }
}

impl Shared {
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Parked>> {
        // The list stays consistent even if a holder panicked: every change is one push or pop.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn relay(&self) -> String {
        format!("{}:{}", self.settings.host, self.settings.port)
    }

    /// A new session: connected, greeted, secured and authenticated.
    async fn open(&self) -> Result<AsyncSmtpConnection, SendError> {
        let settings = &self.settings;
        let tcp = connect_tcp(&settings.host, settings.port, settings.timeout)
            .await
            .map_err(|e| SendError::Transient(format!("Connection error: {e}")))?;
        let session = async {
            let stream: Box<dyn AsyncTokioStream> = match &settings.security {
                Security::Implicit(tls) => Box::new(TlsStream::handshake(tcp, tls.clone()).await?),
                Security::None | Security::Starttls(_) => Box::new(tcp),
            };
            let mut connection =
                AsyncSmtpConnection::connect_with_transport(stream, &settings.hello_name).await?;
            if let Security::Starttls(tls) = &settings.security {
                connection
                    .starttls(tls.clone(), &settings.hello_name)
                    .await?;
            }
            if let Some(credentials) = &settings.credentials {
                connection.auth(DEFAULT_MECHANISMS, credentials).await?;
            }
            Ok::<_, SmtpError>(connection)
        };
        match tokio::time::timeout(settings.timeout, session).await {
            Ok(Ok(connection)) => {
                let opened = self.opened.fetch_add(1, Ordering::Relaxed) + 1;
                debug!(relay = %self.relay(), opened, "opened an SMTP session");
                Ok(connection)
            }
            Ok(Err(error)) => Err(classify(error)),
            Err(_) => Err(SendError::Transient(format!(
                "Connection error: the SMTP session was not ready (greeting, EHLO, TLS, AUTH) \
                 within {} s",
                settings.timeout.as_secs_f32()
            ))),
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|e| e.into_inner()));
        if idle.is_empty() {
            return;
        }
        // Say goodbye where a runtime still runs; otherwise dropping closes the sockets.
        if tokio::runtime::Handle::try_current().is_ok() {
            for parked in idle {
                spawn_quit(parked.connection, self.settings.timeout);
            }
        }
    }
}

/// Ends a session politely (`QUIT`) in the background, giving up after `timeout`.
fn spawn_quit(mut connection: AsyncSmtpConnection, timeout: Duration) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(timeout, connection.quit()).await;
    });
}

/// TLS from the first byte over a socket Waymark opened. lettre can run TLS over a stream it
/// was handed only inside its (deprecated) `AsyncNetworkStream`, which speaks the `futures` I/O
/// traits; [`AsyncSmtpConnection::connect_with_transport`] takes tokio ones, so this adapts.
#[derive(Debug)]
#[allow(deprecated)]
struct TlsStream(AsyncNetworkStream);

impl TlsStream {
    #[allow(deprecated)]
    async fn handshake(tcp: TcpStream, tls: TlsParameters) -> Result<Self, SmtpError> {
        let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
        stream.upgrade_tls(tls).await?;
        Ok(TlsStream(stream))
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let unfilled = buf.initialize_unfilled();
        match futures::io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, unfilled) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures::io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

#[cfg(test)]
#[path = "smtp_tests.rs"]
mod tests;

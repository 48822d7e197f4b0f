//! The SMTP session pool against real SMTP servers: `tests/support/smtp_server.py` (Debian's
//! python3-aiosmtpd, as the integration tests use), behind a TCP relay in the test that counts
//! the connections and can cut them; and aiosmtpd with STARTTLS, TLS and AUTH for the secured
//! sessions, with a test certificate authority's certificates.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::{TcpListener, TcpStream};

use super::{Security, SessionSettings, SmtpPool, connect_tcp};
use crate::config::{EmailConfig, EmailTransport, SmtpConfig, SmtpTls};
use crate::notify::email::{SendError, sender_from_config};

fn python() -> String {
    std::env::var("WAYMARK_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

/// A Python SMTP server on a free port of 127.0.0.1; killed on drop.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    /// Runs `python3 <args>`, which prints `PORT <n>` once it accepts connections.
    fn spawn(dir: &Path, args: &[&str]) -> Server {
        std::fs::create_dir_all(dir).unwrap();
        let stderr = dir.join("server.stderr");
        let mut child = Command::new(python())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(port) = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the SMTP server did not start (is python3-aiosmtpd installed?): {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        };
        Server {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    /// `tests/support/smtp_server.py`, saving what it accepts into `dir`.
    fn plain(dir: &Path) -> Server {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        Server::spawn(dir, &[script.to_str().unwrap(), "0", dir.to_str().unwrap()])
    }

    /// How many messages it accepted.
    fn saved(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.ends_with(".eml") && !name.starts_with('.')
            })
            .count()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP relay in front of a server: counts the connections through it and can cut them all,
/// which the client sees as the server hanging up.
struct Relay {
    port: u16,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    acceptor: tokio::task::JoinHandle<()>,
}

/// Counts a connection as closed when its task ends or is aborted.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Relay {
    async fn start(upstream: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let acceptor = tokio::spawn({
            let (accepted, open, connections) =
                (accepted.clone(), open.clone(), connections.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    open.fetch_add(1, Ordering::SeqCst);
                    let guard = Open(open.clone());
                    let task = tokio::spawn(async move {
                        let _guard = guard;
                        if let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    connections.lock().unwrap().push(task.abort_handle());
                }
            }
        });
        Relay {
            port,
            accepted,
            open,
            connections,
            acceptor,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Closes every connection through the relay, as a server that hangs up would.
    fn cut_all(&self) {
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut_all();
    }
}

/// Waits up to five seconds for `condition`.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn plain_settings(port: u16) -> SessionSettings {
    SessionSettings {
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
        credentials: None,
        hello_name: ClientId::Domain("waymark.test".into()),
        timeout: Duration::from_secs(5),
    }
}

/// About the size and shape of a Waymark email: text and HTML, ~6 kB.
fn message(to: &str) -> Message {
    let text = "Your parcel is on its way. ".repeat(110);
    let html = format!("<p>{}</p>", "Your parcel is on its way. ".repeat(110));
    Message::builder()
        .from("Shop <notify@shop.example>".parse::<Mailbox>().unwrap())
        .to(to.parse::<Mailbox>().unwrap())
        .subject("Your parcel")
        .multipart(MultiPart::alternative_plain_html(text, html))
        .unwrap()
}

async fn send(pool: &SmtpPool, to: impl AsRef<str>) -> Result<String, SendError> {
    let message = message(to.as_ref());
    pool.send(message.envelope(), &message.formatted())
        .await
        .map(|r| r.code().to_string())
}

#[tokio::test]
async fn the_socket_to_the_relay_has_nodelay_set() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stream = connect_tcp("127.0.0.1", port, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(stream.nodelay().unwrap(), "TCP_NODELAY is off");
    // By name too (`localhost` may resolve to ::1 first, where nothing listens).
    let stream = connect_tcp("localhost", port, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(stream.nodelay().unwrap(), "TCP_NODELAY is off");
}

#[tokio::test]
async fn messages_are_delivered_over_one_reused_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::plain(dir.path());
    let relay = Relay::start(server.port).await;
    let pool = SmtpPool::new(plain_settings(relay.port), 2, Duration::from_secs(60));

    for n in 0..5 {
        assert_eq!(
            send(&pool, format!("anna{n}@example.com")).await,
            Ok("250".into())
        );
    }

    assert_eq!(server.saved(), 5);
    assert_eq!(relay.accepted(), 1, "connections the server saw");
    assert_eq!(pool.opened(), 1);
    assert_eq!(pool.idle(), 1);
}

#[tokio::test]
async fn concurrent_sends_open_more_sessions_and_keep_pool_size_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::plain(dir.path());
    let relay = Relay::start(server.port).await;
    let pool = SmtpPool::new(plain_settings(relay.port), 2, Duration::from_secs(60));

    let results =
        futures::future::join_all((0..4).map(|n| send(&pool, format!("sluggish-{n}@example.com"))))
            .await;

    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(server.saved(), 4);
    assert_eq!(
        relay.accepted(),
        4,
        "each concurrent send has its own session"
    );
    assert_eq!(pool.idle(), 2);
    eventually("the surplus sessions to be closed", || relay.open() == 2).await;

    // The next sends reuse the two kept.
    for n in 0..4 {
        send(&pool, format!("olivia{n}@example.com")).await.unwrap();
    }
    assert_eq!(relay.accepted(), 4);
}

#[tokio::test]
async fn a_connection_the_server_dropped_between_sends_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::plain(dir.path());
    let relay = Relay::start(server.port).await;
    let pool = SmtpPool::new(plain_settings(relay.port), 2, Duration::from_secs(60));

    send(&pool, "anna@example.com").await.unwrap();
    relay.cut_all();
    eventually("the relay to close the connection", || relay.open() == 0).await;

    assert_eq!(send(&pool, "olivia@example.com").await, Ok("250".into()));
    assert_eq!(server.saved(), 2);
    assert_eq!(relay.accepted(), 2);
    assert_eq!(pool.opened(), 2);
}

#[tokio::test]
async fn a_refused_mailbox_is_permanent_and_try_again_later_is_transient() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::plain(dir.path());
    let pool = SmtpPool::new(plain_settings(server.port), 2, Duration::from_secs(60));

    match send(&pool, "bounce@example.com").await {
        Err(SendError::Permanent(error)) => assert!(error.contains("550"), "{error}"),
        other => panic!("not a permanent failure: {other:?}"),
    }
    match send(&pool, "rejected@example.com").await {
        Err(SendError::Permanent(error)) => {
            assert!(error.contains("Recipient address rejected"), "{error}")
        }
        other => panic!("not a permanent failure: {other:?}"),
    }
    match send(&pool, "flaky@example.com").await {
        Err(SendError::Transient(error)) => assert!(error.contains("451"), "{error}"),
        other => panic!("not a transient failure: {other:?}"),
    }
    // A session a refusal ended is not reused; the next send has a fresh one.
    assert_eq!(pool.idle(), 0);
    assert_eq!(send(&pool, "anna@example.com").await, Ok("250".into()));
    assert_eq!(server.saved(), 1);
    assert_eq!(server.log("smtp.log").matches("RCPT-550").count(), 2);
}

#[tokio::test]
async fn a_relay_that_is_not_there_or_never_greets_is_a_transient_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let pool = SmtpPool::new(plain_settings(port), 2, Duration::from_secs(60));
    match send(&pool, "anna@example.com").await {
        Err(SendError::Transient(error)) => assert!(error.contains("Connection"), "{error}"),
        other => panic!("not a transient failure: {other:?}"),
    }

    // Accepts the connection and says nothing.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut settings = plain_settings(silent.local_addr().unwrap().port());
    settings.timeout = Duration::from_secs(1);
    let pool = SmtpPool::new(settings, 2, Duration::from_secs(60));
    let started = Instant::now();
    assert!(matches!(
        send(&pool, "anna@example.com").await,
        Err(SendError::Transient(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn idle_sessions_are_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::plain(dir.path());
    let relay = Relay::start(server.port).await;
    let pool = SmtpPool::new(plain_settings(relay.port), 2, Duration::from_millis(200));

    send(&pool, "anna@example.com").await.unwrap();
    assert_eq!(relay.open(), 1);
    eventually("the idle session to be closed", || relay.open() == 0).await;
    assert_eq!(pool.idle(), 0);

    send(&pool, "olivia@example.com").await.unwrap();
    assert_eq!(relay.accepted(), 2);
}

#[tokio::test]
async fn the_configured_sender_delivers_and_reports_the_relays_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::plain(dir.path());
    let config = EmailConfig {
        transport: EmailTransport::Smtp,
        smtp: SmtpConfig {
            host: "127.0.0.1".into(),
            port: server.port,
            tls: SmtpTls::None,
            pool_size: 1,
            timeout_seconds: 5,
            ..SmtpConfig::default()
        },
        ..EmailConfig::default()
    };
    let sender = sender_from_config(&config).unwrap();
    let answer = sender.send(message("anna@example.com")).await.unwrap();
    assert_eq!(answer, "250 2.0.0 Ok: queued as 1");
    let answer = sender.send(message("olivia@example.com")).await.unwrap();
    assert_eq!(answer, "250 2.0.0 Ok: queued as 2");
    assert!(matches!(
        sender.send(message("bounce@example.com")).await,
        Err(SendError::Permanent(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// STARTTLS, TLS and AUTH

/// aiosmtpd with TLS (`starttls`, required before MAIL and AUTH, or `tls` from the first byte)
/// and AUTH as `shop` / `hunter2`. Logs `AUTH <mechanism> <login> ok|refused` and
/// `SAVED tls=<bool> login=<login>` lines into `smtp.log`.
const TLS_SERVER: &str = r#"
import asyncio, ssl, sys
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

mode, cert, key, log_path = sys.argv[1:5]

def log(line):
    with open(log_path, "a", encoding="utf-8") as out:
        out.write(line + "\n")

class Handler:
    async def handle_DATA(self, server, session, envelope):
        tls = server.transport.get_extra_info("ssl_object") is not None
        login = (session.login_data or b"-").decode()
        log(f"SAVED tls={tls} login={login}")
        return "250 2.0.0 Ok: queued"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"shop"
          and auth_data.password == b"hunter2")
    login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?"
    log(f"AUTH {mechanism} {login} {'ok' if ok else 'refused'}")
    return AuthResult(success=ok, handled=False, auth_data=auth_data)

async def main():
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    if mode == "starttls":
        factory = lambda: SMTP(Handler(), hostname="relay.waymark.test", tls_context=context,
                               require_starttls=True, authenticator=authenticator,
                               auth_require_tls=True)
        server = await loop.create_server(factory, host="127.0.0.1", port=0)
    else:
        factory = lambda: SMTP(Handler(), hostname="relay.waymark.test",
                               authenticator=authenticator, auth_require_tls=False)
        server = await loop.create_server(factory, host="127.0.0.1", port=0, ssl=context)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"#;

// Certificates for the test relay only, valid 2020–2126 (made with `openssl ca`, P-256): a test
// CA, a certificate it signed for `localhost` with that certificate's key, and a second CA that
// signed nothing here.
const TEST_CA: &str = "\
-----BEGIN CERTIFICATE-----
MIIBZzCCAQ6gAwIBAgICEAAwCgYIKoZIzj0EAwIwGjEYMBYGA1UEAwwPV2F5bWFy
ayB0ZXN0IENBMCAXDTIwMDEwMTAwMDAwMFoYDzIxMjYwMTAxMDAwMDAwWjAaMRgw
FgYDVQQDDA9XYXltYXJrIHRlc3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AASpTO2HrOOKvg7uSSsyUNuCFg+ptCc8JFTMORKu45JJ6drB7jxjuTHNTp+dhc+F
MrMH41MNmmRlPofPet1MkMHPo0IwQDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB
/wQEAwIBBjAdBgNVHQ4EFgQUmyEXBMlvy9aI1TDmYG0X4TopGC0wCgYIKoZIzj0E
AwIDRwAwRAIgHHv4XZna2WKHSCF933F2PjdTu1n7J7X6vvSUQi0/hfQCIGwnQZNC
wQdTb7BwszRd9H+w3M0om3PcfbCMVmmrpbQc
-----END CERTIFICATE-----
";
const OTHER_CA: &str = "\
-----BEGIN CERTIFICATE-----
MIIBdTCCARqgAwIBAgICEAEwCgYIKoZIzj0EAwIwIDEeMBwGA1UEAwwVV2F5bWFy
ayBvdGhlciB0ZXN0IENBMCAXDTIwMDEwMTAwMDAwMFoYDzIxMjYwMTAxMDAwMDAw
WjAgMR4wHAYDVQQDDBVXYXltYXJrIG90aGVyIHRlc3QgQ0EwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAT4Ji0lyUx+OkobTtMiMUsRL5Cbh7EEjFzU90sDxk6J4wq7
vjtjld5Eh63Pp5Cx/UDkjT4igBjE7NzpLz+JRg8Ho0IwQDAPBgNVHRMBAf8EBTAD
AQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQU1/dj1Y2muUZ4HyumUtIIbKO7
CGgwCgYIKoZIzj0EAwIDSQAwRgIhANZXpTxHWZ2VxJ3sNyUa8ZbnRFhZCDc4VZHv
GdAaPsroAiEArg/AxevnOpzMnpOYWN/E9JGVKIBNw/LNApzOWm9Azhk=
-----END CERTIFICATE-----
";
const RELAY_CERT: &str = "\
-----BEGIN CERTIFICATE-----
MIIBrTCCAVOgAwIBAgICEAIwCgYIKoZIzj0EAwIwGjEYMBYGA1UEAwwPV2F5bWFy
ayB0ZXN0IENBMCAXDTIwMDEwMTAwMDAwMFoYDzIxMjYwMTAxMDAwMDAwWjAUMRIw
EAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQnengr
nS3NI8/MJClmPy11df0vp1Lwitr4YO0RrUx9zVWior0Gs7JeLfRjW5zGE/eGV1Ij
AwmRWWaEaDPuoWUoo4GMMIGJMBQGA1UdEQQNMAuCCWxvY2FsaG9zdDAMBgNVHRMB
Af8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAfBgNV
HSMEGDAWgBSbIRcEyW/L1ojVMOZgbRfhOikYLTAdBgNVHQ4EFgQU7KZ8tQTiq0x1
76rucvphF4mgVzMwCgYIKoZIzj0EAwIDSAAwRQIhAMZUZoyCgSumR9kzyD59fq2y
bUYNtVJSAi3DBgHaDpTXAiAdisP3B/Sn6MydH0iXPrRCEXGMYCyTg5JRIpVPh1EZ
mw==
-----END CERTIFICATE-----
";
const RELAY_KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgCKRh6mT2enbjw4hw
6eoOPT7TVD6Ggq/Qp/dLRC0plGuhRANCAAQnengrnS3NI8/MJClmPy11df0vp1Lw
itr4YO0RrUx9zVWior0Gs7JeLfRjW5zGE/eGV1IjAwmRWWaEaDPuoWUo
-----END PRIVATE KEY-----
";

fn tls_server(dir: &Path, mode: &str) -> Server {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key, log) = (
        dir.join("relay.pem"),
        dir.join("relay.key"),
        dir.join("smtp.log"),
    );
    std::fs::write(&cert, RELAY_CERT).unwrap();
    std::fs::write(&key, RELAY_KEY).unwrap();
    Server::spawn(
        dir,
        &[
            "-c",
            TLS_SERVER,
            mode,
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
            log.to_str().unwrap(),
        ],
    )
}

fn tls_settings(port: u16, ca: &str, implicit: bool, password: &str) -> SessionSettings {
    let tls = TlsParameters::builder("localhost".into())
        .add_root_certificate(Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    SessionSettings {
        host: "localhost".into(),
        port,
        security: if implicit {
            Security::Implicit(tls)
        } else {
            Security::Starttls(tls)
        },
        credentials: Some(Credentials::new("shop".into(), password.into())),
        hello_name: ClientId::Domain("waymark.test".into()),
        timeout: Duration::from_secs(5),
    }
}

async fn secured_sessions_deliver_after_auth(mode: &str, implicit: bool) {
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path(), mode);
    let pool = SmtpPool::new(
        tls_settings(server.port, TEST_CA, implicit, "hunter2"),
        2,
        Duration::from_secs(60),
    );

    for n in 0..3 {
        assert_eq!(
            send(&pool, format!("anna{n}@example.com")).await,
            Ok("250".into())
        );
    }
    let log = server.log("smtp.log");
    assert_eq!(log.matches("SAVED tls=True login=shop").count(), 3, "{log}");
    assert_eq!(
        log.matches("AUTH PLAIN shop ok").count(),
        1,
        "one session: {log}"
    );
    assert_eq!(pool.opened(), 1);

    // A refused password is the relay's 535: permanent, as it always was.
    let pool = SmtpPool::new(
        tls_settings(server.port, TEST_CA, implicit, "wrong"),
        2,
        Duration::from_secs(60),
    );
    match send(&pool, "anna@example.com").await {
        Err(SendError::Permanent(error)) => assert!(error.contains("535"), "{error}"),
        other => panic!("not a permanent failure: {other:?}"),
    }

    // A certificate no trusted authority signed is refused.
    let pool = SmtpPool::new(
        tls_settings(server.port, OTHER_CA, implicit, "hunter2"),
        2,
        Duration::from_secs(60),
    );
    match send(&pool, "anna@example.com").await {
        Err(SendError::Transient(error)) => assert!(error.contains("certificate"), "{error}"),
        other => panic!("not a transient failure: {other:?}"),
    }
    assert_eq!(server.log("smtp.log").matches("SAVED").count(), 3);
}

#[tokio::test]
async fn starttls_sessions_deliver_after_auth() {
    secured_sessions_deliver_after_auth("starttls", false).await;
}

#[tokio::test]
async fn implicit_tls_sessions_deliver_after_auth() {
    secured_sessions_deliver_after_auth("tls", true).await;
}

// ---------------------------------------------------------------------------------------------
// Measuring

/// Per-message latency and throughput against a running relay, lettre's own pooled transport
/// beside Waymark's pool:
///
/// ```sh
/// /usr/sbin/smtp-sink -u nobody 127.0.0.1:2525 1000 &
/// WAYMARK_SMTP_BENCH=127.0.0.1:2525 cargo test --lib notify::email::smtp::tests::latency \
///     -- --ignored --nocapture
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a relay: set WAYMARK_SMTP_BENCH=host:port"]
async fn latency_against_a_running_relay() {
    use lettre::transport::smtp::PoolConfig;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

    let target = std::env::var("WAYMARK_SMTP_BENCH").expect("WAYMARK_SMTP_BENCH=host:port");
    let (host, port) = target.rsplit_once(':').unwrap();
    let port: u16 = port.parse().unwrap();
    let count: usize = std::env::var("WAYMARK_SMTP_BENCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let messages: Vec<Message> = (0..count)
        .map(|n| message(&format!("customer{n}@example.com")))
        .collect();

    let lettre_transport = Arc::new(
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .pool_config(PoolConfig::new().max_size(8))
            .build(),
    );
    let pool = Arc::new(SmtpPool::new(
        SessionSettings {
            host: host.into(),
            ..plain_settings(port)
        },
        8,
        Duration::from_secs(60),
    ));

    fn report(name: &str, mut latencies: Vec<Duration>, wall: Duration) {
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        println!(
            "{name}: {} messages, median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, {:.0} messages/s",
            latencies.len(),
            at(0.5).as_secs_f64() * 1e3,
            at(0.9).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            latencies.len() as f64 / wall.as_secs_f64()
        );
    }

    for concurrency in [1, 8] {
        for waymark in [false, true] {
            let started = Instant::now();
            let latencies = futures::future::join_all((0..concurrency).map(|worker| {
                let (lettre_transport, pool) = (lettre_transport.clone(), pool.clone());
                let mine: Vec<Message> = messages
                    .iter()
                    .skip(worker)
                    .step_by(concurrency)
                    .cloned()
                    .collect();
                async move {
                    let mut latencies = Vec::new();
                    for message in mine {
                        let began = Instant::now();
                        if waymark {
                            pool.send(message.envelope(), &message.formatted())
                                .await
                                .unwrap();
                        } else {
                            lettre_transport.send(message).await.unwrap();
                        }
                        latencies.push(began.elapsed());
                    }
                    latencies
                }
            }))
            .await
            .concat();
            let name = if waymark {
                "Waymark's pool (TCP_NODELAY)"
            } else {
                "lettre's pool (Nagle on)"
            };
            report(
                &format!("{name}, {concurrency} at a time"),
                latencies,
                started.elapsed(),
            );
        }
    }
}

//! A PostgreSQL cluster of its own for tests and benchmarks: created in a fresh directory on a
//! free port, stopped and removed when it is dropped, and in any case when the process that
//! started it exits (a watchdog waits for that). Not for production.

use anyhow::{Context, bail};
use sqlx::Connection;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// The PostgreSQL programs used when `WAYMARK_PG_BIN` names no directory of them.
const DEFAULT_BIN: &str = "/usr/local/bin";
/// The account a cluster runs as when the process runs as root (PostgreSQL refuses root).
const SERVICE_USER: &str = "postgres";

/// Databases handed out so far by any cluster of this process, to name the next one.
static DATABASES: AtomicU64 = AtomicU64::new(0);

/// A running PostgreSQL cluster in a temporary directory, reachable over TCP on 127.0.0.1 as the
/// superuser `postgres` without a password. Dropping it stops the server and removes the
/// directory.
#[doc(hidden)]
pub struct ThrowawayCluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    /// Whether the PostgreSQL programs run through `runuser` as [`SERVICE_USER`].
    as_service_user: bool,
    /// Stops and removes the cluster when its stdin closes: when this is dropped, or when the
    /// process exits however it does (a cluster kept in a `static` is never dropped).
    watchdog: Option<(Child, ChildStdin)>,
}

impl std::fmt::Debug for ThrowawayCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrowawayCluster")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .finish()
    }
}

/// Where the PostgreSQL programs are: `/usr/local/bin` when `initdb` is there, else the
/// newest of Debian's `/usr/lib/postgresql/<version>/bin`.
fn default_bin() -> PathBuf {
    let local = PathBuf::from(DEFAULT_BIN);
    if local.join("initdb").exists() {
        return local;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .filter(|bin| bin.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or(local)
}

impl ThrowawayCluster {
    /// The one cluster of this process, started the first time it is asked for: every test
    /// gets a database of its own on it ([`ThrowawayCluster::fresh_database`]).
    pub fn shared() -> anyhow::Result<&'static ThrowawayCluster> {
        static CLUSTER: std::sync::OnceLock<Result<ThrowawayCluster, String>> =
            std::sync::OnceLock::new();
        CLUSTER
            .get_or_init(|| ThrowawayCluster::start().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("starting a throwaway PostgreSQL cluster: {e}"))
    }

    /// Create and start a cluster. The programs come from `WAYMARK_PG_BIN` (default
    /// `/usr/local/bin`); run as root, the cluster is created and run as the `postgres` user.
    pub fn start() -> anyhow::Result<Self> {
        let bin = std::env::var_os("WAYMARK_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(default_bin);
        let as_service_user = running_as_root()?;
        let dir = std::env::temp_dir().join(format!(
            "waymark-pg-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
        let mut cluster = ThrowawayCluster {
            dir,
            port: free_port()?,
            bin,
            as_service_user,
            watchdog: None,
        };
        if as_service_user {
            run(Command::new("chown").arg(SERVICE_USER).arg(&cluster.dir))?;
        }
        cluster.watchdog = Some(cluster.start_watchdog()?);
        let data = cluster.data_dir();
        run(cluster
            .program("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"])
            .arg("--no-sync"))?;
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            cluster.port,
            cluster.dir.display()
        );
        run(cluster
            .program("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(cluster.dir.join("log"))
            .args(["-w", "start"]))
        .with_context(|| {
            let log = std::fs::read_to_string(cluster.dir.join("log")).unwrap_or_default();
            format!("start PostgreSQL; its log:\n{log}")
        })?;
        Ok(cluster)
    }

    /// The URL of the server's `postgres` database.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Create an empty database and return its URL.
    pub async fn fresh_database(&self) -> anyhow::Result<String> {
        let name = format!(
            "waymark_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .context("connect to the throwaway cluster")?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .with_context(|| format!("create database {name}"))?;
        admin.close().await?;
        Ok(self.url(&name))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A PostgreSQL program, run as the service user when this process is root.
    fn program(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if self.as_service_user {
            let mut command = Command::new("runuser");
            command.args(["-u", SERVICE_USER, "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    /// A shell, in a session of its own (a Ctrl-C of the tests does not kill it first), that
    /// waits for its stdin to close and then stops the cluster and removes its directory.
    fn start_watchdog(&self) -> anyhow::Result<(Child, ChildStdin)> {
        let stop = self.program("pg_ctl");
        let mut words: Vec<String> = std::iter::once(stop.get_program())
            .chain(stop.get_args())
            .map(|w| shell_quote(&w.to_string_lossy()))
            .collect();
        words.extend(
            [
                "-D",
                &self.data_dir().to_string_lossy(),
                "-m",
                "immediate",
                "stop",
            ]
            .iter()
            .map(|w| shell_quote(w)),
        );
        let script = format!(
            "read _ignored; {} >/dev/null 2>&1; rm -rf {}",
            words.join(" "),
            shell_quote(&self.dir.to_string_lossy())
        );
        let mut child = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start the throwaway cluster's watchdog")?;
        let stdin = child.stdin.take().context("the watchdog's stdin")?;
        Ok((child, stdin))
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        if let Some((mut child, mut stdin)) = self.watchdog.take() {
            let _ = stdin.write_all(b"stop\n");
            drop(stdin);
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether this process runs as root, asked of `id` (no unsafe `geteuid` in Waymark).
fn running_as_root() -> anyhow::Result<bool> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .context("run `id -u`")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A TCP port nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {:?}", command.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}{}",
            Path::new(command.get_program()),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

//! Finding a PostgreSQL for the tests, or starting a throwaway one under `target/xtask-pg/`.

use std::collections::hash_map::DefaultHasher;
use std::env;
use std::fs;
use std::hash::{Hash, Hasher};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use url::{Host, Url};

use crate::{announce, capture, is_root, on_path, target_dir};

/// Used when DATABASE_URL is not set: the machine's own server (trust auth).
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Per-test databases the test suites create (`outband_t_*`), each with whether a session is
/// connected to it: one in use belongs to a test running right now (another developer's run on
/// the same server) and is left alone.
const LEFTOVER_QUERY: &str = r"SELECT d.datname, EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)
    FROM pg_database d WHERE d.datname LIKE 'outband\_t\_%' ORDER BY 1";

/// DATABASE_URL, or the default.
pub fn configured_url() -> String {
    env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// Whether a server answers at `url`: `pg_isready` when installed, else a TCP connect.
pub fn is_reachable(url: &str) -> Result<bool> {
    let (host, port) = endpoint(url)?;
    if on_path("pg_isready") {
        let mut cmd = Command::new("pg_isready");
        cmd.args(["-q", "-t", "3", "-h", &host, "-p", &port.to_string()]);
        announce(&cmd);
        return Ok(cmd.status().context("could not run pg_isready")?.success());
    }
    eprintln!("==> TCP connect to {host}:{port}");
    let answers = (host.as_str(), port)
        .to_socket_addrs()
        .is_ok_and(|mut addrs| addrs.any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok()));
    Ok(answers)
}

/// Host and port of a `postgres://` URL (defaults: localhost, 5432).
fn endpoint(url: &str) -> Result<(String, u16)> {
    let parsed = Url::parse(url).with_context(|| format!("not a PostgreSQL URL: {}", redact(url)))?;
    let host = match parsed.host() {
        Some(Host::Ipv6(addr)) => addr.to_string(),
        Some(host) => host.to_string(),
        None => "localhost".to_owned(),
    };
    Ok((host, parsed.port().unwrap_or(5432)))
}

/// `url` pointing at the database `name` on the same server.
pub fn with_database(url: &str, name: &str) -> Result<String> {
    let mut parsed = Url::parse(url).with_context(|| format!("not a PostgreSQL URL: {}", redact(url)))?;
    parsed.set_path(&format!("/{name}"));
    Ok(parsed.to_string())
}

/// `url` with its password, if any, replaced by `***` (for printing).
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only fails for URLs that cannot have a password, which this one has.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` with an `initdb`, else the directory of an
/// `initdb` on PATH.
pub fn server_bin_dir() -> Option<PathBuf> {
    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max();
    if let Some((_, bin)) = newest {
        return Some(bin);
    }
    let path = env::var_os("PATH")?;
    env::split_paths(&path).find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

/// A reachable PostgreSQL for the test run; stops the throwaway server, if any, when dropped.
pub struct Database {
    pub url: String,
    _server: Option<Throwaway>,
}

/// The configured PostgreSQL if it answers, else a throwaway one started under target/xtask-pg.
pub fn ensure_reachable(root: &Path) -> Result<Database> {
    let url = configured_url();
    if is_reachable(&url)? {
        eprintln!("==> PostgreSQL answers at {}", redact(&url));
        return Ok(Database { url, _server: None });
    }
    let source = if env::var_os("DATABASE_URL").is_some() {
        "DATABASE_URL"
    } else {
        "the default URL"
    };
    eprintln!(
        "==> no PostgreSQL answers at {} ({source}): starting a throwaway server",
        redact(&url)
    );
    let server = Throwaway::start(root)?;
    let url = server.url();
    eprintln!("==> using the throwaway PostgreSQL at {url} instead");
    Ok(Database {
        url,
        _server: Some(server),
    })
}

/// Drop the per-test databases (`outband_t_*`) left on the server at `url`, but those in use.
pub fn drop_test_databases(url: &str) -> Result<()> {
    let listing = capture(psql(url).args(["-At", "-F", " ", "-c", LEFTOVER_QUERY]))?;
    let rows: Vec<(&str, bool)> = listing
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, in_use)| (name, in_use == "t"))
        .collect();
    let in_use = rows.iter().filter(|(_, in_use)| *in_use).count();
    if in_use > 0 {
        eprintln!("==> leaving {in_use} test database(s) in use by other sessions");
    }
    let names: Vec<&str> = rows
        .iter()
        .filter(|(_, in_use)| !in_use)
        .map(|(name, _)| *name)
        .collect();
    if names.is_empty() {
        eprintln!("==> no leftover test databases");
        return Ok(());
    }
    let mut drop = psql(url);
    drop.arg("-q");
    for name in &names {
        drop.arg("-c")
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name)));
    }
    // Not announced like other commands: one `DROP` per database makes a line too long to read.
    let status = drop.status().context("could not start psql to drop test databases")?;
    if !status.success() {
        anyhow::bail!("psql could not drop the leftover test databases ({status})");
    }
    eprintln!("==> dropped {} leftover test database(s)", names.len());
    Ok(())
}

fn psql(url: &str) -> Command {
    let program = match server_bin_dir() {
        Some(bin) if !on_path("psql") && bin.join("psql").is_file() => bin.join("psql"),
        _ => PathBuf::from("psql"),
    };
    let mut cmd = Command::new(program);
    cmd.args(["-X", "-v", "ON_ERROR_STOP=1", "-d", url]);
    cmd
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A PostgreSQL server of our own, from Debian's binaries, in a fresh data directory.
/// Dropping it stops it (`pg_ctl stop -m fast`) and removes the data (the log stays).
struct Throwaway {
    bin: PathBuf,
    base: PathBuf,
    /// As root, the server runs as the `postgres` user (initdb refuses root).
    as_root: bool,
    port: u16,
}

impl Throwaway {
    fn start(root: &Path) -> Result<Self> {
        let bin = server_bin_dir()
            .context("no PostgreSQL server binaries (initdb): run `cargo xtask setup` to install `postgresql`")?;
        let as_root = is_root()?;
        if as_root {
            ensure_postgres_user()?;
        }
        let base = base_dir(root, as_root)?;
        let mut server = Self {
            bin,
            base,
            as_root,
            port: 0,
        };
        server.stop_leftover();
        server.init()?;
        server.port = free_port()?;
        let mut start = server.pg_ctl();
        start
            .arg("-o")
            .arg(server.server_options())
            .arg("-l")
            .arg(server.base.join("log"))
            .args(["-w", "start"]);
        // From here on `server` is dropped, and so stopped, whatever fails.
        crate::run(&mut start)?;
        crate::run(Command::new(server.bin.join("createdb")).args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "postgres",
            "test",
        ]))?;
        Ok(server)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/test", self.port)
    }

    fn data(&self) -> PathBuf {
        self.base.join("data")
    }

    /// A server left running by an earlier run that could not clean up (killed): stop it.
    fn stop_leftover(&self) {
        if self.data().join("postmaster.pid").exists() {
            let mut stop = self.pg_ctl();
            stop.args(["stop", "-m", "immediate"]);
            if let Err(err) = crate::run(&mut stop) {
                eprintln!("xtask: warning: could not stop a leftover server: {err:#}");
            }
        }
    }

    /// A fresh data directory, owned by the user the server runs as.
    fn init(&self) -> Result<()> {
        let data = self.data();
        if data.exists() {
            fs::remove_dir_all(&data).with_context(|| format!("cannot remove {}", data.display()))?;
        }
        fs::create_dir_all(&self.base).with_context(|| format!("cannot create {}", self.base.display()))?;
        if self.as_root {
            crate::run(Command::new("chown").args(["-R", "postgres:"]).arg(&self.base))?;
        }
        let mut initdb = self.as_postgres("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .stdout(Stdio::null());
        crate::run(&mut initdb)
    }

    /// postgres options: our port, TCP on loopback only, and no fsync (the data is thrown away).
    fn server_options(&self) -> String {
        // A Unix socket path is limited to ~107 bytes; a deep directory gets TCP only.
        let socket_dir = if self.base.as_os_str().len() <= 80 {
            self.base.display().to_string()
        } else {
            String::new()
        };
        format!(
            "-p {} -k '{socket_dir}' -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port
        )
    }

    fn pg_ctl(&self) -> Command {
        let mut cmd = self.as_postgres("pg_ctl");
        cmd.arg("-D").arg(self.data());
        cmd
    }

    /// `program` from the server's bin directory, as the `postgres` user when we are root.
    fn as_postgres(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_root {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        if !self.data().join("postmaster.pid").exists() {
            return;
        }
        let mut stop = self.pg_ctl();
        stop.args(["stop", "-m", "fast", "-w"]);
        match crate::run(&mut stop) {
            Ok(()) => {
                if let Err(err) = fs::remove_dir_all(self.data()) {
                    eprintln!("xtask: warning: cannot remove {}: {err}", self.data().display());
                }
            }
            Err(err) => eprintln!("xtask: warning: could not stop the throwaway PostgreSQL: {err:#}"),
        }
    }
}

/// As root: the `postgres` system user (Debian's package creates it; create it if absent).
fn ensure_postgres_user() -> Result<()> {
    let exists = Command::new("id")
        .args(["-u", "postgres"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if exists {
        return Ok(());
    }
    crate::run(Command::new("useradd").args([
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/var/lib/postgresql",
        "--shell",
        "/usr/sbin/nologin",
        "postgres",
    ]))
}

/// `target/xtask-pg`, unless we are root and the `postgres` user cannot reach it (say the
/// workspace is under /root): then a directory in the system temp dir, fixed per workspace.
fn base_dir(root: &Path, as_root: bool) -> Result<PathBuf> {
    let preferred = target_dir(root).join("xtask-pg");
    if !as_root {
        return Ok(preferred);
    }
    fs::create_dir_all(&preferred).with_context(|| format!("cannot create {}", preferred.display()))?;
    let mut probe = Command::new("runuser");
    probe.args(["-u", "postgres", "--", "test", "-x"]).arg(&preferred);
    announce(&probe);
    if probe.status().is_ok_and(|status| status.success()) {
        return Ok(preferred);
    }
    let mut hasher = DefaultHasher::new();
    root.hash(&mut hasher);
    let fallback = env::temp_dir().join(format!("outband-xtask-pg-{:016x}", hasher.finish()));
    eprintln!(
        "==> the postgres user cannot reach {}: using {}",
        preferred.display(),
        fallback.display()
    );
    Ok(fallback)
}

/// A TCP port free on 127.0.0.1 right now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

//! `cargo xtask peer-bench`: Outband side by side with the peer harness
//! (`../shared/bench/peer-oidc-provider`: oidc-provider 9 on Node and its load
//! driver `load.mjs`), in one run, with the same driver, the same client
//! authentication (`client_secret_basic`) and the same ID-token algorithm.
//!
//! Outband is configured the way the harness's README asks of "the other AS":
//! a poll-mode client `pos-terminal` / `pos-terminal-secret` with only the CIBA
//! grant and scope `openid`, users `user-0` … `user-999` approved in-process
//! right after the backchannel response (development test users), and users
//! `pending-0` … that nobody answers. Every start gets an empty database (a
//! deleted SQLite file, or a re-created PostgreSQL database), as the peer
//! starts with an empty memory. Results: `target/bench/peer/results.jsonl` and
//! the harness's Markdown tables in `target/bench/peer/summary.md`.

use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{capture, cargo, run, target_dir};

/// Users `user-N` the driver cycles over (`load.mjs --users`, default 1000).
const USERS: usize = 1000;
/// Pending requests in pending mode (`run.sh` `M`).
const PENDING: usize = 256;
const CLIENT_ID: &str = "pos-terminal";
const CLIENT_SECRET: &str = "pos-terminal-secret";

#[derive(clap::Args)]
pub struct PeerOpts {
    /// Rounds per mode and target (`run.sh` ROUNDS)
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// Measured seconds per run (`run.sh` D)
    #[arg(long, default_value_t = 10)]
    pub duration: u32,
    /// ID-token algorithms, each a run of both servers
    #[arg(long, value_delimiter = ',', default_value = "ES256,RS256")]
    pub algs: Vec<String>,
    /// Also run Outband on PostgreSQL (DATABASE_URL or the default), beside SQLite
    #[arg(long)]
    pub postgres: bool,
}

/// Where Outband keeps its data during one target's runs.
enum Backend {
    Sqlite,
    Postgres { admin_url: String },
}

impl Backend {
    fn label(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }
}

pub fn run_peer(root: &Path, opts: &PeerOpts) -> Result<()> {
    let harness_src = root.join("../shared/bench/peer-oidc-provider");
    if !harness_src.join("run.sh").is_file() {
        bail!(
            "the peer harness is not at {} (it ships beside the project, in ../shared/bench)",
            harness_src.display()
        );
    }
    for alg in &opts.algs {
        if !matches!(alg.as_str(), "ES256" | "RS256") {
            bail!("--algs: {alg} is neither ES256 nor RS256 (the peer signs with those two)");
        }
    }
    run(cargo().args(["build", "--release", "-p", "outband-server", "--bin", "outband-server"]))?;
    let binary = target_dir(root).join("release").join("outband-server");
    let out = target_dir(root).join("bench").join("peer");
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let harness = target_dir(root).join("bench").join("peer-oidc-provider");
    copy_harness(&harness_src, &harness)?;

    let mut backends = vec![Backend::Sqlite];
    if opts.postgres {
        let url = crate::postgres::configured_url();
        if !crate::postgres::is_reachable(&url)? {
            bail!("--postgres: no PostgreSQL answers at {}", crate::postgres::redact(&url));
        }
        backends.push(Backend::Postgres { admin_url: url });
    }
    let results = out.join("results.jsonl");
    let mut lines = String::new();
    for alg in &opts.algs {
        for (index, backend) in backends.iter().enumerate() {
            let port = free_port()?;
            let start = write_start_script(&out, &binary, backend, alg, port)?;
            let mut command = Command::new("bash");
            command
                .arg(harness.join("run.sh"))
                .env("ROUNDS", opts.rounds.to_string())
                .env("D", opts.duration.to_string())
                .env("M", PENDING.to_string())
                .env("ID_TOKEN_ALG", alg)
                .env("PORT", free_port()?.to_string())
                // The peer once per algorithm: beside the first backend only.
                .env("PEER", if index == 0 { "1" } else { "0" })
                .env("LABEL", format!("peer-oidc-provider-{alg}"))
                .env("OTHER_CMD", &start)
                .env("OTHER_BASE", format!("http://127.0.0.1:{port}"))
                .env("OTHER_LABEL", format!("outband-{}-{alg}", backend.label()))
                .env(
                    "OTHER_LOAD_ARGS",
                    format!(
                        "--client-id {CLIENT_ID} --client-secret {CLIENT_SECRET} \
                         --login-hint 'user-{{u}}' --pending-login-hint 'pending-{{i}}'"
                    ),
                );
            lines.push_str(&capture(&mut command)?);
        }
    }
    fs::write(&results, &lines).with_context(|| format!("cannot write {}", results.display()))?;
    let summary = capture(Command::new("node").arg(harness.join("summarize.mjs")).arg(&results))?;
    let summary_path = out.join("summary.md");
    fs::write(&summary_path, &summary).with_context(|| format!("cannot write {}", summary_path.display()))?;
    println!("{summary}");
    eprintln!("==> results: {} and {}", results.display(), summary_path.display());
    Ok(())
}

/// Copies the harness's files (not its `node_modules`, keys or results) to
/// `to`, so that its `npm ci`, keys and results stay under `target/`.
fn copy_harness(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Writes the configuration and a start script that empties the database and
/// `exec`s the server (so `run.sh`'s `$!` is the server's own PID); returns the script.
fn write_start_script(out: &Path, binary: &Path, backend: &Backend, alg: &str, port: u16) -> Result<PathBuf> {
    let name = format!("outband-{}-{alg}", backend.label());
    let config = out.join(format!("{name}.toml"));
    let (database_url, reset) = match backend {
        Backend::Sqlite => {
            let db = out.join(format!("{name}.db"));
            (
                format!("sqlite://{}", db.display()),
                format!("rm -f '{0}' '{0}-wal' '{0}-shm'", db.display()),
            )
        }
        Backend::Postgres { admin_url } => {
            let database = "outband_peer_bench";
            let url = crate::postgres::with_database(admin_url, database)?;
            (
                url,
                format!(
                    "psql -q '{admin_url}' -c 'DROP DATABASE IF EXISTS {database} WITH (FORCE)' \
                     -c 'CREATE DATABASE {database}'"
                ),
            )
        }
    };
    fs::write(
        &config,
        config_text(&database_url, &out.join(format!("{name}.key")), alg, port),
    )
    .with_context(|| format!("cannot write {}", config.display()))?;
    let script = out.join(format!("start-{name}.sh"));
    let text = format!(
        "#!/bin/sh\nset -e\n{reset}\nexec '{}' --config '{}' serve\n",
        binary.display(),
        config.display()
    );
    fs::write(&script, text).with_context(|| format!("cannot write {}", script.display()))?;
    // run.sh `exec`s OTHER_CMD: the script must be executable.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", script.display()))?;
    }
    Ok(script)
}

fn config_text(database_url: &str, key: &Path, alg: &str, port: u16) -> String {
    let mut text = format!(
        r#"issuer = "http://127.0.0.1:{port}"
listen = "127.0.0.1:{port}"
database_url = "{database_url}"
key_file = "{key}"
environment = "development"

[[clients]]
client_id = "{CLIENT_ID}"
client_name = "Peer benchmark terminal"
client_secret = "{CLIENT_SECRET}"
token_endpoint_auth_method = "client_secret_basic"
grant_types = ["urn:openid:params:grant-type:ciba"]
backchannel_token_delivery_mode = "poll"
scope = "openid"
id_token_signed_response_alg = "{alg}"

# The driver starts thousands of flows a second from one client: measure the
# server, not its per-client /bc-authorize limit.
[rate_limits.bc_authorize]
requests = 0
"#,
        key = key.display()
    );
    for n in 0..USERS {
        let _ = write!(
            text,
            "\n[[users]]\nusername = \"user-{n}\"\ntest_decision = \"approve\"\n"
        );
    }
    for n in 0..PENDING {
        let _ = write!(text, "\n[[users]]\nusername = \"pending-{n}\"\n");
    }
    text
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("cannot find a free port on 127.0.0.1")?
        .port())
}

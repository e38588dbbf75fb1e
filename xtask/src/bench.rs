//! `cargo xtask bench`: a load driver for a release-built `outband-server demo`
//! on a free 127.0.0.1 port (SQLite in a temporary directory). Each scenario runs
//! `--concurrency` workers until its request count or time budget is used up,
//! and reports requests/s, latency percentiles, errors and the server's CPU time
//! per operation (from /proc). Results go to `target/bench/results.json` and a
//! table; `--check` compares them with the targets in `docs/benchmarks.md`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::live::LiveServer;
use crate::{cargo, target_dir};

pub const CLIENT_ID: &str = "demo-pos";
pub const CLIENT_SECRET: &str = "demo-pos-secret";
const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";
const TARGETS_DOC: &str = "docs/benchmarks.md";

#[derive(clap::Args)]
pub struct BenchOpts {
    /// A short run (a tenth of the requests, a few seconds per scenario)
    #[arg(long)]
    pub quick: bool,
    /// Exit non-zero when a target in docs/benchmarks.md is missed
    #[arg(long)]
    pub check: bool,
    /// Concurrent requests
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

/// One measured operation: a request, or several that make one flow.
#[derive(Clone, Copy, Debug)]
enum Scenario {
    Discovery,
    Jwks,
    ClientCredentials,
    Introspection,
    CibaFlow,
    CibaPendingPoll,
}

impl Scenario {
    const ALL: [Self; 6] = [
        Self::Discovery,
        Self::Jwks,
        Self::ClientCredentials,
        Self::Introspection,
        Self::CibaFlow,
        Self::CibaPendingPoll,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            Self::Jwks => "jwks",
            Self::ClientCredentials => "client_credentials",
            Self::Introspection => "introspection",
            Self::CibaFlow => "ciba_flow",
            Self::CibaPendingPoll => "ciba_pending_poll",
        }
    }

    /// Operations in a full run.
    fn count(self) -> usize {
        match self {
            Self::Discovery | Self::Jwks => 5000,
            Self::ClientCredentials | Self::Introspection | Self::CibaPendingPoll => 2000,
            Self::CibaFlow => 1000,
        }
    }
}

/// What every worker needs.
struct Driver {
    http: reqwest::Client,
    url: String,
    /// An access token of the demo client, for introspection.
    token: String,
    /// Pending CIBA requests (for alice, who has no authenticator), one per worker.
    pending: Vec<String>,
}

pub fn run(root: &Path, opts: &BenchOpts) -> Result<()> {
    if opts.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    crate::run(cargo().args(["build", "--release", "-p", "outband-server", "--bin", "outband-server"]))?;
    let out = target_dir(root).join("bench");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let binary = target_dir(root).join("release").join("outband-server");
    let server = LiveServer::start(&binary, &out.join("server.log"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let results = runtime.block_on(measure(&server, opts))?;
    drop(server);

    let path = out.join("results.json");
    let text = serde_json::to_string_pretty(&results)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    print_table(&results);
    println!("xtask: results in {}", path.display());

    let targets_text = std::fs::read_to_string(root.join(TARGETS_DOC))
        .with_context(|| format!("cannot read the targets in {TARGETS_DOC}"))?;
    let missed = missed_targets(&results, &parse_targets(&targets_text)?);
    for miss in &missed {
        println!("xtask: target missed: {miss}");
    }
    if missed.is_empty() {
        println!("xtask: every target in {TARGETS_DOC} is met");
    } else if opts.check {
        bail!("{} benchmark target(s) missed", missed.len());
    }
    Ok(())
}

async fn measure(server: &LiveServer, opts: &BenchOpts) -> Result<Value> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(opts.concurrency)
        .no_proxy()
        .build()?;
    let url = server.url.clone();
    let token = client_credentials(&http, &url)
        .await
        .context("the demo client could not get a token")?;
    let mut pending = Vec::new();
    for _ in 0..opts.concurrency {
        pending.push(bc_authorize(&http, &url, "alice").await?);
    }
    let driver = Arc::new(Driver {
        http,
        url,
        token,
        pending,
    });
    let budget = if opts.quick {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(20)
    };
    let clock_ticks = clock_ticks();
    let mut scenarios = serde_json::Map::new();
    for scenario in Scenario::ALL {
        let count = if opts.quick {
            scenario.count() / 10
        } else {
            scenario.count()
        };
        let cpu_before = cpu_ticks(server.pid());
        let (latencies, errors, elapsed) = drive(&driver, scenario, count, budget, opts.concurrency).await;
        let cpu_ticks_used = cpu_ticks(server.pid())
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        let ops = latencies.len() + errors;
        let cpu_ms_per_op = cpu_ticks_used
            .filter(|_| ops > 0)
            .map(|ticks| ticks as f64 * 1000.0 / clock_ticks / ops as f64);
        scenarios.insert(
            scenario.name().into(),
            summarize(&latencies, errors, elapsed, cpu_ms_per_op),
        );
    }
    Ok(json!({
        "server": "outband-server demo (release, SQLite)",
        "quick": opts.quick,
        "concurrency": opts.concurrency,
        "server_rss_mb": rss_mb(server.pid()),
        "scenarios": scenarios,
    }))
}

/// Runs `scenario` on `concurrency` workers until `count` operations are started
/// or `budget` is spent; returns the successful operations' latencies, the
/// number of failed ones and the wall time.
async fn drive(
    driver: &Arc<Driver>,
    scenario: Scenario,
    count: usize,
    budget: Duration,
    concurrency: usize,
) -> (Vec<Duration>, usize, Duration) {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let driver = Arc::clone(driver);
        let next = Arc::clone(&next);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while next.fetch_add(1, Ordering::Relaxed) < count && started.elapsed() < budget {
                let op_start = Instant::now();
                match operation(&driver, scenario, worker).await {
                    Ok(()) => latencies.push(op_start.elapsed()),
                    Err(err) => {
                        if errors == 0 {
                            eprintln!("xtask: {}: {err:#}", scenario.name());
                        }
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        match worker.await {
            Ok((mut done, failed)) => {
                latencies.append(&mut done);
                errors += failed;
            }
            Err(_) => errors += 1,
        }
    }
    (latencies, errors, started.elapsed())
}

async fn operation(driver: &Driver, scenario: Scenario, worker: usize) -> Result<()> {
    let Driver { http, url, .. } = driver;
    match scenario {
        Scenario::Discovery => get_ok(http, &format!("{url}/.well-known/openid-configuration")).await,
        Scenario::Jwks => get_ok(http, &format!("{url}/jwks")).await,
        Scenario::ClientCredentials => client_credentials(http, url).await.map(drop),
        Scenario::Introspection => {
            let answer = post_form(http, &format!("{url}/introspect"), &[("token", &driver.token)]).await?;
            if answer.get("active") != Some(&Value::Bool(true)) {
                bail!("the token is not active: {answer}");
            }
            Ok(())
        }
        Scenario::CibaFlow => ciba_flow(http, url).await,
        Scenario::CibaPendingPoll => {
            let auth_req_id = driver
                .pending
                .get(worker)
                .context("no pending request for this worker")?;
            let response = http
                .post(format!("{url}/token"))
                .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
                .form(&[("grant_type", CIBA_GRANT), ("auth_req_id", auth_req_id)])
                .send()
                .await?;
            let status = response.status();
            let answer: Value = response.json().await?;
            let error = answer.get("error").and_then(Value::as_str);
            if status.as_u16() != 400 || !matches!(error, Some("authorization_pending" | "slow_down")) {
                bail!("a pending poll answered {status}: {answer}");
            }
            Ok(())
        }
    }
}

/// One full CIBA flow of the demo client for bob, a test user who approves at
/// once: backchannel authentication, then the token request, whose first poll
/// has the tokens.
pub async fn ciba_flow(http: &reqwest::Client, url: &str) -> Result<()> {
    let auth_req_id = bc_authorize(http, url, "bob").await?;
    let answer = post_form(
        http,
        &format!("{url}/token"),
        &[("grant_type", CIBA_GRANT), ("auth_req_id", &auth_req_id)],
    )
    .await?;
    if answer.get("access_token").is_none() {
        bail!("no token after the approval: {answer}");
    }
    Ok(())
}

async fn get_ok(http: &reqwest::Client, url: &str) -> Result<()> {
    let response = http.get(url).send().await?;
    let status = response.status();
    let _ = response.bytes().await?;
    if !status.is_success() {
        bail!("GET {url} answered {status}");
    }
    Ok(())
}

/// A form POST with the demo client's Basic credentials; the JSON of a 2xx answer.
async fn post_form(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Result<Value> {
    let response = http
        .post(url)
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(form)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {url} answered {status}: {body}");
    }
    Ok(body)
}

async fn client_credentials(http: &reqwest::Client, url: &str) -> Result<String> {
    let answer = post_form(
        http,
        &format!("{url}/token"),
        &[("grant_type", "client_credentials"), ("scope", "payments")],
    )
    .await?;
    answer
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("no access_token in the answer")
}

async fn bc_authorize(http: &reqwest::Client, url: &str, user: &str) -> Result<String> {
    let answer = post_form(
        http,
        &format!("{url}/bc-authorize"),
        &[("scope", "openid"), ("login_hint", user), ("binding_message", "bench")],
    )
    .await?;
    answer
        .get("auth_req_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("no auth_req_id in the answer")
}

fn summarize(latencies: &[Duration], errors: usize, elapsed: Duration, cpu_ms_per_op: Option<f64>) -> Value {
    let mut sorted: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    sorted.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted.get(rank.saturating_sub(1)).copied().map(round2)
    };
    let seconds = elapsed.as_secs_f64();
    json!({
        "ok": sorted.len(),
        "errors": errors,
        "seconds": round2(seconds),
        "rps": round2(if seconds > 0.0 { sorted.len() as f64 / seconds } else { 0.0 }),
        "p50_ms": percentile(50.0),
        "p95_ms": percentile(95.0),
        "p99_ms": percentile(99.0),
        "server_cpu_ms_per_op": cpu_ms_per_op.map(|v| (v * 1000.0).round() / 1000.0),
    })
}

pub fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// utime + stime of `pid`, in clock ticks (Linux).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when it cannot be asked).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

pub fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(round2(kb / 1024.0))
}

fn print_table(results: &Value) {
    println!(
        "{:<20} {:>7} {:>6} {:>10} {:>9} {:>9} {:>9} {:>12}",
        "scenario", "ok", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "cpu ms/op"
    );
    let Some(scenarios) = results.get("scenarios").and_then(Value::as_object) else {
        return;
    };
    let field = |row: &Value, key: &str| match row.get(key) {
        Some(Value::Null) | None => "-".to_owned(),
        Some(value) => value.to_string(),
    };
    for (name, row) in scenarios {
        println!(
            "{:<20} {:>7} {:>6} {:>10} {:>9} {:>9} {:>9} {:>12}",
            name,
            field(row, "ok"),
            field(row, "errors"),
            field(row, "rps"),
            field(row, "p50_ms"),
            field(row, "p95_ms"),
            field(row, "p99_ms"),
            field(row, "server_cpu_ms_per_op"),
        );
    }
    if let Some(rss) = results.get("server_rss_mb") {
        println!("server RSS after the run: {rss} MB");
    }
}

/// A target: `scenario`'s `metric` must be at least (`min_*`) or at most (`max_*`) `value`.
#[derive(Debug, PartialEq)]
struct Target {
    scenario: String,
    metric: String,
    value: f64,
}

/// The rows of the table between `<!-- targets:start -->` and `<!-- targets:end -->`:
/// `| scenario | min_rps or max_p99_ms or max_errors ... | number |`.
fn parse_targets(doc: &str) -> Result<Vec<Target>> {
    let start = doc
        .find("<!-- targets:start -->")
        .context("no <!-- targets:start --> marker")?;
    let end = doc
        .find("<!-- targets:end -->")
        .context("no <!-- targets:end --> marker")?;
    let table = doc.get(start..end).context("the target markers are out of order")?;
    let mut targets = Vec::new();
    for line in table.lines().filter(|line| line.trim_start().starts_with('|')) {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        let [scenario, metric, value] = cells.as_slice() else {
            bail!("a target row needs 3 cells: {line}");
        };
        let Ok(value) = value.parse::<f64>() else {
            continue; // the header and the separator
        };
        if !(metric.starts_with("min_") || metric.starts_with("max_")) {
            bail!("a target's metric starts with min_ or max_: {line}");
        }
        targets.push(Target {
            scenario: (*scenario).to_owned(),
            metric: (*metric).to_owned(),
            value,
        });
    }
    Ok(targets)
}

/// Descriptions of the targets `results` misses.
fn missed_targets(results: &Value, targets: &[Target]) -> Vec<String> {
    let scenarios: BTreeMap<&str, &Value> = results
        .get("scenarios")
        .and_then(Value::as_object)
        .map(|map| map.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default();
    let mut missed = Vec::new();
    for target in targets {
        let (bound, key) = target.metric.split_at(4);
        let measured = scenarios
            .get(target.scenario.as_str())
            .and_then(|row| row.get(key))
            .and_then(Value::as_f64);
        let met = match (bound, measured) {
            ("min_", Some(v)) => v >= target.value,
            ("max_", Some(v)) => v <= target.value,
            _ => false,
        };
        if !met {
            let shown = measured.map_or("nothing".to_owned(), |v| v.to_string());
            missed.push(format!(
                "{} {} {} (measured {shown})",
                target.scenario, target.metric, target.value
            ));
        }
    }
    missed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_read_from_the_marked_table_and_compared() {
        let doc = "x\n<!-- targets:start -->\n| scenario | metric | target |\n|---|---|---|\n\
                   | jwks | min_rps | 100 |\n| jwks | max_p99_ms | 5 |\n<!-- targets:end -->\n";
        let targets = parse_targets(doc).unwrap();
        assert_eq!(targets.len(), 2);
        let results = json!({ "scenarios": { "jwks": { "rps": 150.0, "p99_ms": 7.5 } } });
        assert_eq!(
            missed_targets(&results, &targets),
            vec!["jwks max_p99_ms 5 (measured 7.5)".to_owned()]
        );
    }

    #[test]
    fn the_documented_targets_parse() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/benchmarks.md")).unwrap();
        assert!(!parse_targets(&doc).unwrap().is_empty());
    }
}

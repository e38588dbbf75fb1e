//! `cargo xtask soak`: many complete CIBA flows against one release-built
//! server (SQLite), sampling its memory as they go, to show whether anything
//! grows with the number of flows. Short token lifetimes let housekeeping purge
//! expired tokens during the run. Samples go to `target/bench/soak.json`; the
//! verdict compares the resident memory half-way through with the last sample:
//! caches and the allocator settle in the first half, and anything that grows
//! with the number of flows keeps growing in the second.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::bench::{ciba_flow, round2, rss_mb, CLIENT_ID, CLIENT_SECRET};
use crate::live::LiveServer;
use crate::{cargo, target_dir};

/// The server: the demo's terminal client and its test user `bob`, who
/// approves at once. Tokens expire after a minute (instead of minutes and days)
/// so that the purge, which runs every minute, keeps up with the run; the one
/// client sends far more than the default `/bc-authorize` rate limit allows.
fn soak_config(listen: &str, dir: &Path) -> String {
    format!(
        r#"issuer = "http://{listen}"
listen = "{listen}"
database_url = "sqlite://{dir}/soak.db"
key_file = "{dir}/soak.key"
environment = "development"

[tokens]
access_token_lifetime = 60
id_token_lifetime = 60
refresh_token_lifetime = 60

[rate_limits.bc_authorize]
requests = 0

[[clients]]
client_id = "{CLIENT_ID}"
client_name = "Soak terminal"
client_secret = "{CLIENT_SECRET}"
token_endpoint_auth_method = "client_secret_basic"
grant_types = ["urn:openid:params:grant-type:ciba"]
backchannel_token_delivery_mode = "poll"
scope = "openid"

[[users]]
username = "bob"
test_decision = "approve"
"#,
        dir = dir.display()
    )
}

/// Resident memory may grow by this many MB between the sample half-way
/// through and the last sample before the run counts as growing.
const GROWTH_ALLOWANCE_MB: f64 = 5.0;

#[derive(clap::Args)]
pub struct SoakOpts {
    /// Complete CIBA flows to run
    #[arg(long, default_value_t = 1_000_000)]
    pub flows: usize,
    /// Concurrent flows
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Memory samples over the run
    #[arg(long, default_value_t = 20)]
    pub samples: usize,
    /// Stop after this many minutes even if fewer flows ran
    #[arg(long, default_value_t = 120)]
    pub max_minutes: u64,
    /// Exit non-zero when resident memory grew
    #[arg(long)]
    pub check: bool,
}

/// One sample, taken after a batch of flows.
struct Sample {
    flows: usize,
    errors: usize,
    seconds: f64,
    rss_mb: Option<f64>,
    peak_rss_mb: Option<f64>,
    database_mb: f64,
}

impl Sample {
    fn to_json(&self) -> Value {
        json!({
            "flows": self.flows,
            "errors": self.errors,
            "seconds": round2(self.seconds),
            "rss_mb": self.rss_mb,
            "peak_rss_mb": self.peak_rss_mb,
            "database_mb": round2(self.database_mb),
        })
    }
}

pub fn run(root: &Path, opts: &SoakOpts) -> Result<()> {
    if opts.concurrency == 0 || opts.samples < 2 || opts.flows < opts.samples {
        bail!("need --concurrency ≥ 1, --samples ≥ 2 and --flows ≥ --samples");
    }
    crate::run(cargo().args(["build", "--release", "-p", "outband-server", "--bin", "outband-server"]))?;
    let out = target_dir(root).join("bench");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let binary = target_dir(root).join("release").join("outband-server");
    let server = LiveServer::start_configured(&binary, &out.join("soak-server.log"), soak_config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let idle_rss = rss_mb(server.pid());
    let samples = runtime.block_on(soak(&server, opts))?;
    drop(server);

    let verdict = Verdict::of(&samples);
    let results = json!({
        "server": "outband-server serve (release, SQLite), token lifetimes 60 s, no /bc-authorize rate limit",
        "concurrency": opts.concurrency,
        "idle_rss_mb": idle_rss,
        "samples": samples.iter().map(Sample::to_json).collect::<Vec<_>>(),
        "rss_half_way_mb": verdict.middle,
        "rss_last_mb": verdict.last,
        "rss_growth_mb": verdict.growth().map(round2),
        "grew": verdict.grew(),
    });
    let path = out.join("soak.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    print_table(idle_rss, &samples);
    println!("xtask: samples in {}", path.display());
    match verdict.growth() {
        Some(growth) => println!(
            "xtask: resident memory {} by {growth:.2} MB over the second half of the run",
            if verdict.grew() {
                "GREW"
            } else {
                "stayed flat (within the allowance)"
            }
        ),
        None => println!("xtask: resident memory could not be read from /proc"),
    }
    if opts.check && verdict.grew() {
        bail!("resident memory grew by more than {GROWTH_ALLOWANCE_MB} MB");
    }
    Ok(())
}

/// Runs the flows in `opts.samples` batches and samples the server after each.
async fn soak(server: &LiveServer, opts: &SoakOpts) -> Result<Vec<Sample>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(opts.concurrency)
        .no_proxy()
        .build()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(opts.max_minutes.saturating_mul(60));
    let batch = opts.flows / opts.samples;
    let (mut flows, mut errors) = (0, 0);
    let mut samples = Vec::with_capacity(opts.samples);
    for _ in 0..opts.samples {
        if Instant::now() >= deadline {
            println!("xtask: --max-minutes reached after {flows} flows");
            break;
        }
        let (done, failed) = batch_of_flows(&http, &server.url, batch, opts.concurrency, deadline).await;
        flows += done;
        errors += failed;
        let sample = Sample {
            flows,
            errors,
            seconds: started.elapsed().as_secs_f64(),
            rss_mb: rss_mb(server.pid()),
            peak_rss_mb: peak_rss_mb(server.pid()),
            database_mb: directory_mb(server.dir()),
        };
        println!(
            "xtask: {flows} flows ({errors} failed), {:.0} s, RSS {} MB, database {:.1} MB",
            sample.seconds,
            sample.rss_mb.map_or("?".into(), |mb| mb.to_string()),
            sample.database_mb
        );
        samples.push(sample);
        if errors > flows / 100 + 100 {
            bail!("more than 1% of the flows failed: see target/bench/soak-server.log");
        }
    }
    Ok(samples)
}

/// Runs `count` flows on `concurrency` workers; returns (succeeded, failed).
async fn batch_of_flows(
    http: &reqwest::Client,
    url: &str,
    count: usize,
    concurrency: usize,
    deadline: Instant,
) -> (usize, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (http, url, next) = (http.clone(), url.to_owned(), Arc::clone(&next));
        workers.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0, 0);
            while next.fetch_add(1, Ordering::Relaxed) < count && Instant::now() < deadline {
                match ciba_flow(&http, &url).await {
                    Ok(()) => ok += 1,
                    Err(err) => {
                        if failed == 0 {
                            eprintln!("xtask: ciba flow: {err:#}");
                        }
                        failed += 1;
                    }
                }
            }
            (ok, failed)
        }));
    }
    let (mut ok, mut failed) = (0, 0);
    for worker in workers {
        match worker.await {
            Ok((done, lost)) => {
                ok += done;
                failed += lost;
            }
            Err(_) => failed += 1,
        }
    }
    (ok, failed)
}

/// Resident memory half-way through the run and at its end.
struct Verdict {
    middle: Option<f64>,
    last: Option<f64>,
}

impl Verdict {
    fn of(samples: &[Sample]) -> Self {
        Self {
            middle: samples.get(samples.len() / 2).and_then(|s| s.rss_mb),
            last: samples.last().and_then(|s| s.rss_mb),
        }
    }

    fn growth(&self) -> Option<f64> {
        Some(self.last? - self.middle?)
    }

    fn grew(&self) -> bool {
        self.growth().is_some_and(|growth| growth > GROWTH_ALLOWANCE_MB)
    }
}

/// The process's peak resident memory (VmHWM), in MB.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(round2(kb / 1024.0))
}

/// The size of the files directly in `dir` (the SQLite database and its WAL), in MB.
fn directory_mb(dir: &Path) -> f64 {
    let bytes: u64 = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len())
        .sum();
    bytes as f64 / (1024.0 * 1024.0)
}

fn print_table(idle_rss: Option<f64>, samples: &[Sample]) {
    let mb = |value: Option<f64>| value.map_or("-".into(), |v| format!("{v:.1}"));
    println!("idle RSS: {} MB", mb(idle_rss));
    println!(
        "{:>9} {:>7} {:>8} {:>8} {:>9} {:>11}",
        "flows", "errors", "seconds", "RSS MB", "peak MB", "database MB"
    );
    for s in samples {
        println!(
            "{:>9} {:>7} {:>8.0} {:>8} {:>9} {:>11.1}",
            s.flows,
            s.errors,
            s.seconds,
            mb(s.rss_mb),
            mb(s.peak_rss_mb),
            s.database_mb
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rss: f64) -> Sample {
        Sample {
            flows: 1,
            errors: 0,
            seconds: 1.0,
            rss_mb: Some(rss),
            peak_rss_mb: Some(rss),
            database_mb: 0.0,
        }
    }

    #[test]
    fn only_growth_in_the_second_half_counts() {
        // A step while caches fill, then flat: not growing.
        let verdict = Verdict::of(&[sample(30.0), sample(40.0), sample(41.0), sample(44.9)]);
        assert!(verdict.growth().is_some_and(|growth| (growth - 3.9).abs() < 1e-9));
        assert!(!verdict.grew());
        // Growing all along: growing.
        let verdict = Verdict::of(&[sample(30.0), sample(35.0), sample(40.0), sample(46.0)]);
        assert!(verdict.grew());
        assert_eq!(Verdict::of(&[]).growth(), None);
    }
}

//! `outband-server demo`: a development server on SQLite with a demo merchant
//! client and demo users, so a newcomer has something to call at once. The
//! merchant may use client credentials and CIBA (poll mode); the admin decision
//! endpoint is on, with its token in the data directory, so a request for
//! `alice` can be approved with curl.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::config::Config;

/// The demo merchant's client id.
pub const DEMO_CLIENT_ID: &str = "demo-pos";
/// The demo merchant's secret: fine for a local demo, never for anything real.
pub const DEMO_CLIENT_SECRET: &str = "demo-pos-secret";
/// The file in the data directory holding the admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// The demo's configuration, written into the data directory so the other
/// commands (`users invite`, `ciba list`, ...) can be pointed at it with `--config`.
pub const CONFIG_FILE: &str = "outband.toml";

/// `demo` options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps its database, key file and configuration.
    #[arg(long, default_value = "outband-data")]
    pub dir: PathBuf,
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
}

/// The demo configuration for a data directory and address (the admin token
/// file must exist before it validates: see [`write_admin_token`]).
pub fn demo_config(dir: &std::path::Path, listen: &str) -> anyhow::Result<Config> {
    Ok(Config::from_toml(&demo_config_text(dir, listen))?)
}

/// The text of [`demo_config`], as written to [`CONFIG_FILE`].
pub fn demo_config_text(dir: &std::path::Path, listen: &str) -> String {
    format!(
        r#"
issuer = "http://{listen}"
listen = "{listen}"
database_url = "sqlite://{db}"
key_file = "{key}"
environment = "development"

[admin]
token_file = "{admin}"

[[clients]]
client_id = "{DEMO_CLIENT_ID}"
client_name = "Corner Café"
client_secret = "{DEMO_CLIENT_SECRET}"
token_endpoint_auth_method = "client_secret_basic"
grant_types = ["client_credentials", "urn:openid:params:grant-type:ciba"]
backchannel_token_delivery_mode = "poll"
scope = "openid payments accounts refunds"

[[users]]
username = "alice"
email = "alice@example.com"
phone = "+4915112345678"
name = "Alice Example"

[[users]]
username = "bob"
email = "bob@example.com"
name = "Bob Tester"
test_decision = "approve"
"#,
        db = dir.join("outband.db").display(),
        key = dir.join("outband.key").display(),
        admin = dir.join(ADMIN_TOKEN_FILE).display(),
    )
}

/// Writes a random admin token into `dir` unless one is there; returns its path.
pub fn write_admin_token(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    let path = dir.join(ADMIN_TOKEN_FILE);
    if !path.exists() {
        write_private_file(&path, crate::tokens::random_token().as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(path)
}

#[cfg(unix)]
fn write_private_file(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}

#[cfg(not(unix))]
fn write_private_file(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// Runs the demo server in the foreground.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create {}", args.dir.display()))?;
    // Absolute paths, so the written configuration works from any directory.
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", args.dir.display()))?;
    let admin_token = write_admin_token(&dir)?;
    let config_file = dir.join(CONFIG_FILE);
    std::fs::write(&config_file, demo_config_text(&dir, &args.listen))
        .with_context(|| format!("cannot write {}", config_file.display()))?;
    let settings = demo_config(&dir, &args.listen)?.validate()?;
    let issuer = settings.issuer.clone();
    let store = super::open_store(&settings).await?;
    println!("Outband demo server on {issuer} (data in {})", dir.display());
    println!();
    println!("  discovery:  curl {issuer}/.well-known/openid-configuration");
    println!("  keys:       curl {issuer}/jwks");
    println!("  a token:    curl -u {DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET} -d grant_type=client_credentials -d scope=payments {issuer}/token");
    println!();
    println!("  CIBA:       curl -u {DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET} -d scope=openid -d login_hint=bob {issuer}/bc-authorize");
    println!(
        "  admin:      the admin decision endpoint's token is in {} (cat it)",
        admin_token.display()
    );
    println!();
    println!("  demo users: alice (alice@example.com), bob (auto-approves CIBA requests)");
    println!(
        "  enroll an authenticator for alice:  outband-server --config {} users invite alice",
        config_file.display()
    );
    println!("  stop with Ctrl-C");
    super::serve(settings, store).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let token = write_admin_token(dir.path()).unwrap();
        let first = std::fs::read_to_string(&token).unwrap();
        assert_eq!(write_admin_token(dir.path()).unwrap(), token);
        assert_eq!(
            std::fs::read_to_string(&token).unwrap(),
            first,
            "an existing token is kept"
        );
        let settings = demo_config(dir.path(), "127.0.0.1:8080").unwrap().validate().unwrap();
        assert!(settings.admin_token_hash.is_some());
        assert_eq!(settings.clients.len(), 1);
        let (pos, _) = &settings.clients[0];
        assert!(pos.allows_grant(outband_protocol::GrantType::Ciba));
        assert!(pos.allows_grant(outband_protocol::GrantType::ClientCredentials));
        assert_eq!(settings.users.len(), 2);
        assert!(settings.is_development());
    }
}

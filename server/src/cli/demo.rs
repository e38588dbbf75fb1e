//! `outband-server demo`: a development server on SQLite with a demo merchant
//! client and demo users, so a newcomer has something to call at once.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::config::Config;

/// The demo merchant's client id.
pub const DEMO_CLIENT_ID: &str = "demo-pos";
/// The demo merchant's secret: fine for a local demo, never for anything real.
pub const DEMO_CLIENT_SECRET: &str = "demo-pos-secret";

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

/// The demo configuration for a data directory and address.
pub fn demo_config(dir: &std::path::Path, listen: &str) -> anyhow::Result<Config> {
    let text = format!(
        r#"
issuer = "http://{listen}"
listen = "{listen}"
database_url = "sqlite://{db}"
key_file = "{key}"
environment = "development"

[[clients]]
client_id = "{DEMO_CLIENT_ID}"
client_name = "Corner Café"
client_secret = "{DEMO_CLIENT_SECRET}"
token_endpoint_auth_method = "client_secret_basic"
grant_types = ["client_credentials"]
scope = "payments accounts"

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
    );
    Ok(Config::from_toml(&text)?)
}

/// Runs the demo server in the foreground.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create {}", args.dir.display()))?;
    let settings = demo_config(&args.dir, &args.listen)?.validate()?;
    let issuer = settings.issuer.clone();
    let store = super::open_store(&settings).await?;
    println!("Outband demo server on {issuer} (data in {})", args.dir.display());
    println!();
    println!("  discovery:  curl {issuer}/.well-known/openid-configuration");
    println!("  keys:       curl {issuer}/jwks");
    println!("  a token:    curl -u {DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET} -d grant_type=client_credentials -d scope=payments {issuer}/token");
    println!();
    println!("  demo users: alice (alice@example.com), bob (auto-approves CIBA requests)");
    println!("  stop with Ctrl-C");
    super::serve(settings, store).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let settings = demo_config(dir.path(), "127.0.0.1:8080").unwrap().validate().unwrap();
        assert_eq!(settings.clients.len(), 1);
        assert_eq!(settings.users.len(), 2);
        assert!(settings.is_development());
    }
}

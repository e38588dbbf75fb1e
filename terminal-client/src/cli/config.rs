//! Settings of `outband-pos`: flags (and their environment variables), then the
//! TOML file of `--config`, then the demo server's values. Validated once into
//! [`Settings`]; a missing value names the flag and the variable that set it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use outband_protocol::jose::SigningKey;
use outband_protocol::{ClientSecret, DeliveryMode, TokenEndpointAuthMethod};
use outband_terminal::{
    load_signing_key, CibaClient, ClientAuth, ClientTls, Currency, DpopKey, Iban, Journal, NotificationListener,
};
use serde::Deserialize;

use super::ConnectionArgs;

/// The demo server (`outband-server demo`).
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";
/// The demo server's merchant client.
pub const DEMO_CLIENT_ID: &str = "demo-pos";
/// The demo merchant's secret: only ever used for [`DEMO_CLIENT_ID`].
const DEMO_CLIENT_SECRET: &str = "demo-pos-secret";
/// The demo merchant's name.
pub const DEFAULT_MERCHANT: &str = "Corner Café";
/// Where ping/push notifications are received by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// The variable holding the client secret itself.
pub const SECRET_VAR: &str = "OUTBAND_POS_CLIENT_SECRET";
/// The TUI's log file name in the data directory.
pub const LOG_FILE: &str = "outband-pos.log";

/// The `--config` file. Every key is optional; unknown keys are an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Issuer URL.
    pub issuer: Option<String>,
    /// Client id.
    pub client_id: Option<String>,
    /// File holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// Private JWK file.
    pub key_file: Option<PathBuf>,
    /// `client_secret_basic`, `private_key_jwt`, `tls_client_auth` or `self_signed_tls_client_auth`.
    pub auth_method: Option<String>,
    /// PEM client certificate (mutual TLS).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// PEM CAs trusted for the server's certificate, besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Sign CIBA requests.
    #[serde(default)]
    pub signed_requests: bool,
    /// Bind tokens to the till with DPoP (its key is kept in the data directory).
    #[serde(default)]
    pub dpop: bool,
    /// `poll`, `ping` or `push`.
    pub mode: Option<String>,
    /// Notification listener address.
    pub listen: Option<SocketAddr>,
    /// Payee name.
    pub merchant: Option<String>,
    /// Sale code prefix.
    pub prefix: Option<String>,
    /// Payee IBAN.
    pub iban: Option<String>,
    /// Default currency.
    pub currency: Option<String>,
    /// Seconds the customer has to answer.
    pub requested_expiry: Option<u64>,
    /// Where the sale journal (and the TUI's log) live.
    pub data_dir: Option<PathBuf>,
    /// An `outband://enroll?…` link (from `outband-server users invite`) the
    /// TUI's F2 panel shows as a QR code.
    pub enroll_link: Option<String>,
    /// The merchant's digital-receipt address, with `{payment_id}` and
    /// `{reference}` filled in per sale: the TUI shows it as a QR code next to
    /// the receipt of an executed payment, for the customer to scan.
    pub receipt_url: Option<String>,
}

impl FileConfig {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
    }
}

/// Validated settings.
pub struct Settings {
    /// Issuer URL.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Client authentication.
    pub auth: ClientAuth,
    /// The key that signs request objects, when `signed_requests`.
    pub request_key: Option<Arc<SigningKey>>,
    /// Sale defaults from the file.
    pub sale: SaleDefaults,
    /// The journal's directory; `None` when neither a flag, the file nor the
    /// environment names one (commands that need it then fail with a hint).
    pub data_dir: Option<PathBuf>,
    /// The TUI's log file (`--log-file`, else `outband-pos.log` in the data directory).
    pub log_file: Option<PathBuf>,
    /// The enrollment link of the F2 panel.
    pub enroll_link: Option<String>,
    /// The digital-receipt address template of the result screen's QR code.
    pub receipt_url: Option<String>,
    /// The till's DPoP key, when tokens are DPoP-bound.
    pub dpop: Option<DpopKey>,
    /// The till's client certificate and extra trusted CAs.
    pub tls: ClientTls,
}

/// What the file may say about sales (flags of `pay` override each).
#[derive(Debug)]
pub struct SaleDefaults {
    /// Delivery mode.
    pub mode: DeliveryMode,
    /// Listener address.
    pub listen: SocketAddr,
    /// Payee.
    pub merchant: String,
    /// Code prefix.
    pub prefix: Option<String>,
    /// Payee IBAN.
    pub iban: Option<Iban>,
    /// Currency.
    pub currency: Option<Currency>,
    /// Requested expiry in seconds.
    pub requested_expiry: Option<u64>,
}

impl Settings {
    /// Resolves flags (already merged with their variables by clap), the
    /// secret variable read through `env`, the config file and the defaults.
    pub fn resolve(args: &ConnectionArgs, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let issuer = non_empty(args.issuer.clone().or(file.issuer), "--issuer", "OUTBAND_POS_ISSUER")?
            .unwrap_or_else(|| DEFAULT_ISSUER.to_owned());
        let client_id = non_empty(
            args.client_id.clone().or(file.client_id),
            "--client-id",
            "OUTBAND_POS_CLIENT_ID",
        )?
        .unwrap_or_else(|| DEMO_CLIENT_ID.to_owned());
        let key = match args.key_file.as_ref().or(file.key_file.as_ref()) {
            Some(path) => Some(Arc::new(load_signing_key(path)?)),
            None => None,
        };
        let tls = ClientTls::load(
            args.client_cert.as_deref().or(file.client_cert.as_deref()),
            args.client_key.as_deref().or(file.client_key.as_deref()),
            args.ca_file.as_deref().or(file.ca_file.as_deref()),
        )
        .context("--client-cert, --client-key, --ca-file (or client_cert, client_key, ca_file)")?;
        let method_name = non_empty(args.auth_method.clone(), "--auth-method", "OUTBAND_POS_AUTH_METHOD")?;
        let method = match method_name.as_deref().or(file.auth_method.as_deref()) {
            Some(name) => name
                .parse::<TokenEndpointAuthMethod>()
                .map_err(|e| anyhow::anyhow!("auth_method: {e}"))?,
            None if key.is_some() => TokenEndpointAuthMethod::PrivateKeyJwt,
            None => TokenEndpointAuthMethod::ClientSecretBasic,
        };
        let auth = match method {
            TokenEndpointAuthMethod::PrivateKeyJwt => match &key {
                Some(key) => ClientAuth::PrivateKeyJwt(key.clone()),
                None => bail!("private_key_jwt needs a private key: set --key-file (or OUTBAND_POS_KEY_FILE)"),
            },
            TokenEndpointAuthMethod::ClientSecretBasic => {
                let secret_file = args.client_secret_file.as_ref().or(file.client_secret_file.as_ref());
                ClientAuth::ClientSecretBasic(client_secret(&client_id, secret_file, env)?)
            }
            TokenEndpointAuthMethod::TlsClientAuth | TokenEndpointAuthMethod::SelfSignedTlsClientAuth
                if !tls.has_client_certificate() =>
            {
                bail!(
                    "{method} needs a client certificate: set --client-cert and --client-key \
                     (or OUTBAND_POS_CLIENT_CERT and OUTBAND_POS_CLIENT_KEY)"
                )
            }
            TokenEndpointAuthMethod::TlsClientAuth => ClientAuth::TlsClientAuth,
            TokenEndpointAuthMethod::SelfSignedTlsClientAuth => ClientAuth::SelfSignedTlsClientAuth,
            other => bail!("auth_method {other} is not supported by outband-pos"),
        };
        let signed = args.signed_requests || file.signed_requests;
        let request_key = match (signed, &key) {
            (false, _) => None,
            (true, Some(key)) => Some(key.clone()),
            (true, None) => bail!("signed requests need a private key: set --key-file (or OUTBAND_POS_KEY_FILE)"),
        };
        let mode = match file.mode.as_deref() {
            Some(mode) => mode
                .parse::<DeliveryMode>()
                .map_err(|e| anyhow::anyhow!("config mode: {e}"))?,
            None => DeliveryMode::Poll,
        };
        let listen = match file.listen {
            Some(addr) => addr,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let sale = SaleDefaults {
            mode,
            listen,
            merchant: file.merchant.unwrap_or_else(|| DEFAULT_MERCHANT.to_owned()),
            prefix: file.prefix,
            iban: file.iban.map(|i| i.parse()).transpose().context("config iban")?,
            currency: file
                .currency
                .map(|c| c.parse())
                .transpose()
                .context("config currency")?,
            requested_expiry: file.requested_expiry,
        };
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .or_else(|| default_data_dir(env));
        let log_file = args
            .log_file
            .clone()
            .or_else(|| data_dir.as_ref().map(|dir| dir.join(LOG_FILE)));
        let enroll_link = non_empty(file.enroll_link, "enroll_link", "the config file")?;
        let receipt_url = non_empty(file.receipt_url, "receipt_url", "the config file")?;
        if let Some(template) = &receipt_url {
            check_receipt_url(template)?;
        }
        let dpop = match (args.dpop || file.dpop, &data_dir) {
            (false, _) => None,
            (true, Some(dir)) => Some(DpopKey::load_or_create(dir)?),
            (true, None) => {
                bail!("DPoP needs a data directory for the till's key: set --data-dir (or OUTBAND_POS_DATA_DIR)")
            }
        };
        Ok(Self {
            issuer,
            client_id,
            auth,
            request_key,
            sale,
            data_dir,
            log_file,
            enroll_link,
            receipt_url,
            dpop,
            tls,
        })
    }

    /// The sale journal in the data directory.
    pub fn journal(&self) -> anyhow::Result<Journal> {
        let Some(dir) = &self.data_dir else {
            bail!(
                "no data directory for the sale journal: set --data-dir (or OUTBAND_POS_DATA_DIR), \
                 data_dir in the config file, or HOME"
            );
        };
        Journal::open(dir).with_context(|| format!("cannot open the sale journal in {}", dir.display()))
    }

    /// A client in `mode`; ping and push share one listener on `addr`, bound
    /// the first time it is needed and kept in `listener`.
    pub async fn client_for(
        &self,
        mode: DeliveryMode,
        addr: SocketAddr,
        listener: &mut Option<NotificationListener>,
    ) -> anyhow::Result<CibaClient> {
        if mode == DeliveryMode::Poll {
            return self.client(None);
        }
        let bound = match listener {
            Some(bound) => bound.clone(),
            None => {
                let bound = NotificationListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen for notifications on {addr} (listen)"))?;
                tracing::info!(url = %bound.url(), "notification listener started");
                listener.insert(bound).clone()
            }
        };
        self.client(Some((mode, bound)))
    }

    /// A client for these settings; `notify` gives the mode and listener for ping/push.
    pub fn client(&self, notify: Option<(DeliveryMode, NotificationListener)>) -> anyhow::Result<CibaClient> {
        let mut builder = CibaClient::builder()
            .set_issuer(self.issuer.clone())
            .set_client_id(self.client_id.as_str())
            .set_client_auth(self.auth.clone())
            .set_request_object_key(self.request_key.clone())
            .set_dpop_key(self.dpop.clone())
            .set_tls(self.tls.clone());
        if let Some((mode, listener)) = notify {
            builder = builder.set_delivery_mode(mode).set_notification_listener(listener);
        }
        Ok(builder.build()?)
    }
}

/// `$XDG_STATE_HOME/outband-pos`, else `~/.local/state/outband-pos`.
fn default_data_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let absolute = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
    absolute("XDG_STATE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".local").join("state")))
        .map(|state| state.join("outband-pos"))
}

/// `Some("")` is a mistake, not a value.
fn non_empty(value: Option<String>, flag: &str, var: &str) -> anyhow::Result<Option<String>> {
    match value {
        Some(v) if v.trim().is_empty() => bail!("{flag} (or {var}) is empty"),
        other => Ok(other),
    }
}

/// The secret: the file of `--client-secret-file`, else `OUTBAND_POS_CLIENT_SECRET`,
/// else the demo secret for the demo client only.
fn client_secret(
    client_id: &str,
    file: Option<&PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<ClientSecret> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the client secret file {}", path.display()))?;
        let secret = text.trim();
        if secret.is_empty() {
            bail!("the client secret file {} is empty", path.display());
        }
        return Ok(ClientSecret::new(secret));
    }
    match env(SECRET_VAR) {
        Some(secret) if !secret.is_empty() => Ok(ClientSecret::new(secret)),
        _ if client_id == DEMO_CLIENT_ID => Ok(ClientSecret::new(DEMO_CLIENT_SECRET)),
        _ => bail!(
            "no client secret for client {client_id:?}: set {SECRET_VAR}, or --client-secret-file \
             (or OUTBAND_POS_CLIENT_SECRET_FILE), or use private_key_jwt with --key-file (or OUTBAND_POS_KEY_FILE)"
        ),
    }
}

/// A receipt address template must be an absolute http(s) URL once filled in
/// and name the payment (`{payment_id}`) or the reference (`{reference}`).
fn check_receipt_url(template: &str) -> anyhow::Result<()> {
    let filled = template.replace("{payment_id}", "pay_x").replace("{reference}", "REF");
    let url_ok = url::Url::parse(&filled).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if !url_ok || filled == template {
        anyhow::bail!(
            "receipt_url {template:?} must be an http(s) URL containing {{payment_id}} or {{reference}}, \
             like https://shop.example/receipts/{{payment_id}}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;

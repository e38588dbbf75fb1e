//! The CIBA client: [`CibaClient`] and its builder, discovery, the token
//! endpoint, and the HTTP plumbing the CIBA calls in [`ciba`] share.
//!
//! Every call goes to endpoints named by the issuer's discovery document, whose
//! `issuer` must equal the configured one (OpenID Connect Discovery §4.3). A till
//! that uses mutual TLS takes the document's `mtls_endpoint_aliases` where it
//! has them ([RFC 8705 §5](https://www.rfc-editor.org/rfc/rfc8705#section-5)).

pub mod auth;
pub mod cancel;
pub mod ciba;
pub mod clock;
pub mod dpop;
pub mod journal;
pub mod notify;
pub mod payments;
pub mod push;
pub mod receipt;
pub mod refunds;
pub mod sale;
pub mod settle;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use outband_protocol::jose::{parse_jwk, JoseError, Jwk, SigningKey};
use outband_protocol::{
    ClientId, DeliveryMode, ErrorCode, ErrorResponse, ProviderMetadata, Scope, SigningAlg, TokenResponse,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::OnceCell;

use self::auth::ClientAuth;
use self::clock::{system_clock, Clock};
use self::dpop::DpopKey;
use self::notify::NotificationListener;
use self::sale::ParseSaleError;
use self::tls::ClientTls;

/// Where discovery lives under the issuer.
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The scope of a sale.
pub const PAYMENT_SCOPE: &str = "openid payments";
/// How much of an unexpected response body an error keeps.
const BODY_SNIPPET: usize = 200;

/// Why a [`CibaClient`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildClientError {
    /// A required setting is missing.
    #[error("{0} is required")]
    Missing(&'static str),
    /// The issuer is not an absolute http(s) URL without query or fragment.
    #[error("issuer {0:?} must be an http(s) URL without query or fragment")]
    Issuer(String),
    /// Ping and push need a [`NotificationListener`].
    #[error("{0} mode needs a notification listener")]
    NoListener(DeliveryMode),
    /// The default HTTP client could not be made.
    #[error("cannot build the HTTP client")]
    Http(#[source] reqwest::Error),
}

/// Why a call to the authorization server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach the authorization server")]
    Transport(#[source] reqwest::Error),
    /// The server answered with an OAuth error.
    #[error("{endpoint} endpoint answered {status}: {}", describe(.error))]
    Oauth {
        /// Which endpoint (`token`, `backchannel authentication`…).
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The error body.
        error: ErrorResponse,
    },
    /// The server answered something that is not what the protocol says.
    #[error("{endpoint} endpoint answered {status} with an unexpected body: {body}")]
    UnexpectedResponse {
        /// Which endpoint.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The discovery document is unusable (wrong issuer, missing endpoint).
    #[error("discovery: {0}")]
    Discovery(String),
    /// The sale is not valid.
    #[error(transparent)]
    Sale(#[from] ParseSaleError),
    /// Signing an assertion or request object failed.
    #[error("cannot sign")]
    Sign(#[from] JoseError),
    /// The tokens do not match the sale or fail validation.
    #[error("the tokens were refused: {0}")]
    Tokens(String),
    /// The notification listener stopped.
    #[error("the notification listener stopped")]
    ListenerGone,
    /// The sale has a `user_code`, but the server's discovery does not say
    /// `backchannel_user_code_parameter_supported` (nothing was sent).
    #[error("the server does not support user_code (backchannel_user_code_parameter_supported is not true)")]
    UserCodeNotSupported,
}

impl RequestError {
    /// Whether trying again later may help (the network, or a 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Oauth { status, .. } | Self::UnexpectedResponse { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

fn describe(error: &ErrorResponse) -> String {
    match &error.error_description {
        Some(text) => format!("{} ({text})", error.error),
        None => error.error.to_string(),
    }
}

/// Builds a [`CibaClient`]: `CibaClient::builder().set_issuer(…)….build()`.
#[derive(Default)]
pub struct CibaClientBuilder {
    issuer: Option<String>,
    client_id: Option<ClientId>,
    auth: Option<ClientAuth>,
    request_key: Option<Arc<SigningKey>>,
    http: Option<reqwest::Client>,
    clock: Option<Clock>,
    mode: Option<DeliveryMode>,
    listener: Option<NotificationListener>,
    scope: Option<Scope>,
    dpop: Option<DpopKey>,
    tls: Option<ClientTls>,
}

impl CibaClientBuilder {
    /// The issuer identifier (required), like `http://127.0.0.1:8080`.
    pub fn set_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The client id (required).
    pub fn set_client_id(mut self, client_id: impl Into<ClientId>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// How the client authenticates (required).
    pub fn set_client_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Sends CIBA requests as request objects signed with `key`
    /// ([CIBA Core §7.1.1](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7.1.1)).
    pub fn set_request_object_key(mut self, key: Option<Arc<SigningKey>>) -> Self {
        self.request_key = key;
        self
    }

    /// The till's client certificate and extra trusted CAs (mutual TLS,
    /// [RFC 8705](https://www.rfc-editor.org/rfc/rfc8705)), used by the default
    /// HTTP client. With a certificate the client takes the server's
    /// `mtls_endpoint_aliases`; an HTTP client of
    /// [`set_http_client`](Self::set_http_client) must carry the same settings
    /// ([`ClientTls::apply`]).
    pub fn set_tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The HTTP client; by default rustls, 10 s to connect, 30 s per call, no redirects.
    pub fn set_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The wall clock (seconds since the epoch); the system clock by default.
    pub fn set_clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The delivery mode the client is registered for at the server; poll by default.
    pub fn set_delivery_mode(mut self, mode: DeliveryMode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Where ping and push notifications arrive (required for those modes).
    pub fn set_notification_listener(mut self, listener: NotificationListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// The scope of sales; `openid payments` by default.
    pub fn set_scope(mut self, scope: Scope) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Sends a DPoP proof made with `key` with every token request, so the
    /// access tokens are bound to this till
    /// ([RFC 9449 §5](https://www.rfc-editor.org/rfc/rfc9449#section-5)); FAPI 2
    /// clients and clients registered with `dpop_bound_access_tokens` need it.
    pub fn set_dpop_key(mut self, key: Option<DpopKey>) -> Self {
        self.dpop = key;
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<CibaClient, BuildClientError> {
        let issuer = self.issuer.ok_or(BuildClientError::Missing("issuer"))?;
        let parsed = url::Url::parse(&issuer).map_err(|_| BuildClientError::Issuer(issuer.clone()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(BuildClientError::Issuer(issuer));
        }
        let mode = self.mode.unwrap_or(DeliveryMode::Poll);
        if mode != DeliveryMode::Poll && self.listener.is_none() {
            return Err(BuildClientError::NoListener(mode));
        }
        let tls = self.tls.unwrap_or_default();
        let http = match self.http {
            Some(http) => http,
            None => http_client(&tls).map_err(BuildClientError::Http)?,
        };
        let auth = self.auth.ok_or(BuildClientError::Missing("client authentication"))?;
        let mutual_tls = tls.has_client_certificate() || auth.is_mutual_tls();
        Ok(CibaClient {
            inner: Arc::new(Inner {
                issuer,
                client_id: self.client_id.ok_or(BuildClientError::Missing("client id"))?,
                auth,
                request_key: self.request_key,
                http,
                clock: self.clock.unwrap_or_else(system_clock),
                mode,
                listener: self.listener,
                scope: self.scope.unwrap_or_else(|| Scope::new(PAYMENT_SCOPE)),
                dpop: self.dpop,
                mutual_tls,
                metadata: OnceCell::new(),
            }),
        })
    }
}

/// The HTTP client used when none is set: rustls, short timeouts, no redirects
/// (an OAuth endpoint that redirects is misconfigured or hostile).
pub fn default_http_client() -> Result<reqwest::Client, reqwest::Error> {
    http_client(&ClientTls::new())
}

/// [`default_http_client`] presenting `tls`'s client certificate and trusting its CAs.
pub fn http_client(tls: &ClientTls) -> Result<reqwest::Client, reqwest::Error> {
    tls.apply(reqwest::Client::builder())
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("outband-pos/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A UI-free CIBA client for a point-of-sale terminal. Cheap to clone: clones
/// share the HTTP connections and the discovery document.
#[derive(Clone)]
pub struct CibaClient {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    client_id: ClientId,
    auth: ClientAuth,
    request_key: Option<Arc<SigningKey>>,
    http: reqwest::Client,
    clock: Clock,
    mode: DeliveryMode,
    listener: Option<NotificationListener>,
    scope: Scope,
    dpop: Option<DpopKey>,
    /// Presents a client certificate: takes `mtls_endpoint_aliases`.
    mutual_tls: bool,
    metadata: OnceCell<Arc<ProviderMetadata>>,
}

impl std::fmt::Debug for CibaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CibaClient")
            .field("issuer", &self.inner.issuer)
            .field("client_id", &self.inner.client_id)
            .field("mode", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

impl CibaClient {
    /// A builder with nothing set.
    pub fn builder() -> CibaClientBuilder {
        CibaClientBuilder::default()
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The client id.
    pub fn client_id(&self) -> &ClientId {
        &self.inner.client_id
    }

    /// The delivery mode.
    pub fn mode(&self) -> DeliveryMode {
        self.inner.mode
    }

    /// The notification listener, in ping and push mode.
    pub fn listener(&self) -> Option<&NotificationListener> {
        self.inner.listener.as_ref()
    }

    /// The client's wall clock.
    pub fn now(&self) -> i64 {
        (self.inner.clock)()
    }

    /// Fetches the discovery document (once; later calls reuse it) and checks
    /// that its `issuer` is the configured one.
    pub async fn discover(&self) -> Result<Arc<ProviderMetadata>, RequestError> {
        self.inner
            .metadata
            .get_or_try_init(|| async {
                let url = format!("{}{DISCOVERY_PATH}", self.inner.issuer.trim_end_matches('/'));
                let response = self
                    .inner
                    .http
                    .get(&url)
                    .send()
                    .await
                    .map_err(RequestError::Transport)?;
                let metadata: ProviderMetadata = read_json("discovery", response).await?;
                if metadata.issuer != self.inner.issuer {
                    return Err(RequestError::Discovery(format!(
                        "the document names issuer {:?}, but the client is configured for {:?}",
                        metadata.issuer, self.inner.issuer
                    )));
                }
                tracing::debug!(issuer = %metadata.issuer, "discovered the authorization server");
                Ok(Arc::new(metadata))
            })
            .await
            .cloned()
    }

    /// A `client_credentials` token ([RFC 6749 §4.4](https://www.rfc-editor.org/rfc/rfc6749#section-4.4)),
    /// for scripts; the client's registered scope when `scope` is `None`.
    pub async fn client_credentials(&self, scope: Option<&Scope>) -> Result<TokenResponse, RequestError> {
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if let Some(scope) = scope {
            form.push(("scope", scope.to_string()));
        }
        self.post_token(form).await
    }

    /// Whether the server takes a CIBA `user_code` (its discovery says
    /// `backchannel_user_code_parameter_supported`): a till asks the customer
    /// for one only then.
    pub async fn supports_user_code(&self) -> Result<bool, RequestError> {
        Ok(self.discover().await?.backchannel_user_code_parameter_supported == Some(true))
    }

    /// The server's public keys (`jwks_uri`), fetched fresh.
    pub async fn server_keys(&self) -> Result<Vec<Jwk>, RequestError> {
        let metadata = self.discover().await?;
        let response = self
            .inner
            .http
            .get(&metadata.jwks_uri)
            .send()
            .await
            .map_err(RequestError::Transport)?;
        let jwks: Value = read_json("jwks", response).await?;
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| RequestError::Discovery("the jwks_uri document has no keys array".into()))?;
        // Keys of kinds we cannot read are skipped, as RFC 7517 §5 asks.
        Ok(keys.iter().filter_map(|k| parse_jwk(k).ok()).collect())
    }

    /// The ID-token algorithms the server says it uses (all we know when it says none).
    pub(crate) fn id_token_algs(metadata: &ProviderMetadata) -> Vec<SigningAlg> {
        let algs: Vec<SigningAlg> = metadata
            .id_token_signing_alg_values_supported
            .iter()
            .filter_map(|a| SigningAlg::parse(a))
            .collect();
        if algs.is_empty() {
            SigningAlg::ALL.to_vec()
        } else {
            algs
        }
    }

    /// POSTs an authenticated form and reads the JSON answer or the OAuth error.
    pub(crate) async fn post_form<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        url: &str,
        form: Vec<(&'static str, String)>,
    ) -> Result<T, RequestError> {
        self.post_form_with(endpoint, url, form, false).await
    }

    /// POSTs a token request, with a DPoP proof when the client has a key;
    /// answered `use_dpop_nonce`, it is sent once more with the server's nonce
    /// ([RFC 9449 §8](https://www.rfc-editor.org/rfc/rfc9449#section-8)). The
    /// server checks the proof before the grant, so the retry redeems nothing twice.
    pub(crate) async fn post_token<T: DeserializeOwned>(
        &self,
        form: Vec<(&'static str, String)>,
    ) -> Result<T, RequestError> {
        let metadata = self.discover().await?;
        let url = self.endpoint(&metadata, "token_endpoint", &metadata.token_endpoint);
        match self.post_form_with("token", url, form.clone(), true).await {
            Err(RequestError::Oauth { error, .. })
                if error.error == ErrorCode::UseDpopNonce && self.inner.dpop.is_some() =>
            {
                tracing::debug!("the token endpoint asked for a DPoP nonce; sending the request again");
                self.post_form_with("token", url, form, true).await
            }
            other => other,
        }
    }

    async fn post_form_with<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        url: &str,
        mut form: Vec<(&'static str, String)>,
        dpop: bool,
    ) -> Result<T, RequestError> {
        let mut request = self.inner.http.post(url);
        if let (true, Some(key)) = (dpop, &self.inner.dpop) {
            request = request.header("DPoP", key.proof("POST", url, None, self.now())?);
        }
        let request = self.inner.auth.apply(
            request,
            &mut form,
            &self.inner.client_id,
            &self.inner.issuer,
            self.now(),
        )?;
        let response = request.form(&form).send().await.map_err(RequestError::Transport)?;
        if let Some(key) = &self.inner.dpop {
            key.remember_nonce(response.headers());
        }
        read_json(endpoint, response).await
    }

    /// The till's DPoP key, when it binds its tokens.
    pub fn dpop_key(&self) -> Option<&DpopKey> {
        self.inner.dpop.as_ref()
    }

    /// Whether the client presents a TLS client certificate.
    pub fn uses_mutual_tls(&self) -> bool {
        self.inner.mutual_tls
    }

    /// Where to send a call to the endpoint that discovery calls `name`
    /// (`token_endpoint`…), whose ordinary address is `default`.
    pub(crate) fn endpoint<'a>(&self, metadata: &'a ProviderMetadata, name: &str, default: &'a str) -> &'a str {
        endpoint_for(metadata, name, default, self.inner.mutual_tls)
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn request_key(&self) -> Option<&SigningKey> {
        self.inner.request_key.as_deref()
    }

    pub(crate) fn scope(&self) -> &Scope {
        &self.inner.scope
    }
}

/// `default`, or for a mutual-TLS client the endpoint's alias in
/// `mtls_endpoint_aliases` when there is one (RFC 8705 §5).
fn endpoint_for<'a>(metadata: &'a ProviderMetadata, name: &str, default: &'a str, mutual_tls: bool) -> &'a str {
    let alias = metadata
        .mtls_endpoint_aliases
        .as_ref()
        .and_then(|aliases| aliases.get(name));
    match alias {
        Some(alias) if mutual_tls => alias,
        _ => default,
    }
}

/// Reads a 2xx JSON body as `T`, or an error body as [`RequestError::Oauth`].
async fn read_json<T: DeserializeOwned>(
    endpoint: &'static str,
    response: reqwest::Response,
) -> Result<T, RequestError> {
    let status = response.status();
    let bytes = response.bytes().await.map_err(RequestError::Transport)?;
    let unexpected = || RequestError::UnexpectedResponse {
        endpoint,
        status: status.as_u16(),
        body: String::from_utf8_lossy(&bytes).chars().take(BODY_SNIPPET).collect(),
    };
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|_| unexpected());
    }
    match serde_json::from_slice::<ErrorResponse>(&bytes) {
        Ok(error) => Err(RequestError::Oauth {
            endpoint,
            status: status.as_u16(),
            error,
        }),
        Err(_) => Err(unexpected()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutual_tls_clients_take_the_endpoint_aliases() {
        let mut metadata = ProviderMetadata {
            issuer: "https://as.example".into(),
            token_endpoint: "https://as.example/token".into(),
            mtls_endpoint_aliases: Some(
                [("token_endpoint".to_owned(), "https://mtls.as.example/token".to_owned())].into(),
            ),
            ..ProviderMetadata::default()
        };
        let token = metadata.token_endpoint.clone();
        assert_eq!(
            endpoint_for(&metadata, "token_endpoint", &token, true),
            "https://mtls.as.example/token"
        );
        assert_eq!(endpoint_for(&metadata, "token_endpoint", &token, false), token);
        assert_eq!(
            endpoint_for(
                &metadata,
                "backchannel_authentication_endpoint",
                "https://as.example/bc",
                true
            ),
            "https://as.example/bc",
            "no alias: the ordinary endpoint"
        );
        metadata.mtls_endpoint_aliases = None;
        assert_eq!(endpoint_for(&metadata, "token_endpoint", &token, true), token);
    }
}

//! Admin commands. Each prints a short human answer, or JSON with `--json`, and
//! fails with a message that says what to fix.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use outband_protocol::{
    AccessTokenFormat, ClientId, ClientMetadata, ClientSecret, DeliveryMode, GrantType, Password, Profile, Scope,
    SigningAlg, Subject, TokenEndpointAuthMethod,
};
use serde_json::json;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::keys::KeySet;
use crate::state::client_record;
use crate::store::{AuditQuery, Store, TestDecision, UserRecord};
use crate::tokens::random_token;

/// `clients ...`
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client. Secret-based clients get a generated secret, printed once.
    Add(Box<ClientAddArgs>),
    /// List clients.
    List,
    /// Show one client's metadata.
    Show {
        /// The client id.
        client_id: String,
    },
    /// Remove a client.
    Remove {
        /// The client id.
        client_id: String,
    },
}

/// `clients add`
#[derive(Debug, Args)]
pub struct ClientAddArgs {
    /// The client id.
    #[arg(long = "id")]
    pub client_id: String,
    /// A name shown to people.
    #[arg(long)]
    pub name: Option<String>,
    /// Token endpoint authentication method.
    #[arg(long, default_value = "client_secret_basic")]
    pub auth_method: TokenEndpointAuthMethod,
    /// Use this secret instead of generating one (secret-based methods).
    #[arg(long, env = "OUTBAND_CLIENT_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// File with the client's public JWKS (private_key_jwt, signed requests).
    #[arg(long)]
    pub jwks_file: Option<PathBuf>,
    /// Grant type (repeat for several).
    #[arg(long = "grant-type", default_value = "client_credentials")]
    pub grant_types: Vec<GrantType>,
    /// Allowed scopes, space separated.
    #[arg(long, default_value = "")]
    pub scope: String,
    /// Security profile.
    #[arg(long, default_value = "oidc")]
    pub profile: Profile,
    /// CIBA delivery mode.
    #[arg(long)]
    pub delivery_mode: Option<DeliveryMode>,
    /// CIBA ping/push notification endpoint.
    #[arg(long)]
    pub notification_endpoint: Option<url::Url>,
    /// Redirect URI (repeat for several).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<url::Url>,
    /// Where the browser may go after signing out (OpenID Connect RP-Initiated
    /// Logout; repeat for several).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<url::Url>,
    /// Where logout tokens are POSTed when the user's session ends (OpenID
    /// Connect Back-Channel Logout).
    #[arg(long)]
    pub backchannel_logout_uri: Option<url::Url>,
    /// Logout tokens must carry `sid`.
    #[arg(long)]
    pub backchannel_logout_session_required: bool,
    /// The page framed on the signed-out page (OpenID Connect Front-Channel Logout).
    #[arg(long)]
    pub frontchannel_logout_uri: Option<url::Url>,
    /// The framed URL gets `iss` and `sid`.
    #[arg(long)]
    pub frontchannel_logout_session_required: bool,
    /// Require signed CIBA requests with this alg.
    #[arg(long)]
    pub request_signing_alg: Option<SigningAlg>,
    /// The client sends CIBA user codes.
    #[arg(long)]
    pub user_code: bool,
    /// Access tokens must be DPoP-bound.
    #[arg(long)]
    pub dpop: bool,
    /// Access tokens are bound to the client certificate.
    #[arg(long)]
    pub tls_bound: bool,
    /// Access token format.
    #[arg(long, default_value = "jwt")]
    pub access_token_format: AccessTokenFormat,
    /// CIBA approvals need the number shown on the terminal typed on the device.
    #[arg(long)]
    pub number_matching: bool,
    /// RFC 9396 authorization details type the client may use (repeat for
    /// several; every known type when not given).
    #[arg(long = "authorization-details-type")]
    pub authorization_details_types: Vec<String>,
    /// A JSON file of client metadata; the flags above are ignored except --id and --secret.
    #[arg(long)]
    pub metadata_file: Option<PathBuf>,
}

/// `users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user.
    Add {
        /// Login name.
        username: String,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
        /// Phone number.
        #[arg(long)]
        phone: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Read a password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Answer this user's CIBA requests automatically (development only).
        #[arg(long)]
        test_decision: Option<TestDecisionArg>,
    },
    /// List users.
    List,
    /// Show a user (by username, e-mail, phone or subject).
    Show {
        /// Who.
        user: String,
    },
    /// Remove a user and revoke their tokens.
    Remove {
        /// Who.
        user: String,
    },
    /// Lock a user: no new tokens, existing ones revoked.
    Lock {
        /// Who.
        user: String,
    },
    /// Unlock a user.
    Unlock {
        /// Who.
        user: String,
    },
    /// Set (or, for an operator, reset) a user's password, read from standard input.
    #[command(alias = "reset-password")]
    SetPassword {
        /// Who.
        user: String,
    },
    /// Set the CIBA user code (at least 4 characters) clients registered with
    /// `--user-code` must send for this user; read from standard input.
    SetUserCode {
        /// Who.
        user: String,
    },
    /// Remove the user's CIBA user code.
    ClearUserCode {
        /// Who.
        user: String,
    },
    /// Answer this user's CIBA requests automatically, or stop (refused in production).
    TestDecision {
        /// Who.
        user: String,
        /// approve, deny or off.
        decision: TestDecisionArg,
    },
}

/// A test decision on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum TestDecisionArg {
    /// Approve automatically.
    Approve,
    /// Deny automatically.
    Deny,
    /// Stop answering automatically.
    Off,
}

/// `keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys.
    List,
    /// Start a new key generation; the old keys stay published for `keys.rotation_overlap`.
    Rotate,
}

/// `audit`
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events of this user (subject).
    #[arg(long)]
    pub user: Option<String>,
    /// Only events of this client.
    #[arg(long)]
    pub client: Option<String>,
    /// Only events of this request.
    #[arg(long)]
    pub request: Option<String>,
    /// From this time (RFC 3339, e.g. 2026-11-25T08:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// Until this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many events, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

pub(super) fn now() -> i64 {
    SystemClock.now()
}

pub(super) fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn read_password() -> anyhow::Result<Password> {
    read_secret("password")
}

fn read_secret(what: &str) -> anyhow::Result<Password> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read the {what} from standard input"))?;
    let secret = text.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        bail!("no {what} on standard input");
    }
    Ok(Password::new(secret))
}

/// `clients ...`
pub async fn clients(store: &Store, command: ClientsCommand, json_out: bool) -> anyhow::Result<()> {
    match command {
        ClientsCommand::Add(args) => client_add(store, *args, json_out).await,
        ClientsCommand::List => {
            let clients = store.list_clients().await?;
            if json_out {
                return print_json(&json!(clients.iter().map(|c| &c.metadata).collect::<Vec<_>>()));
            }
            if clients.is_empty() {
                println!("no clients");
            }
            for client in clients {
                let m = &client.metadata;
                let grants: Vec<&str> = m.grant_types.iter().map(|g| g.as_str()).collect();
                println!(
                    "{}\t{}\t{}\t{}",
                    m.client_id,
                    m.profile,
                    m.token_endpoint_auth_method,
                    grants.join(",")
                );
            }
            Ok(())
        }
        ClientsCommand::Show { client_id } => {
            let client = store
                .client(&ClientId::new(client_id.clone()))
                .await?
                .ok_or_else(|| anyhow!("no client {client_id}"))?;
            print_json(&serde_json::to_value(&client.metadata)?)
        }
        ClientsCommand::Remove { client_id } => {
            if !store.delete_client(&ClientId::new(client_id.clone())).await? {
                bail!("no client {client_id}");
            }
            if json_out {
                print_json(&json!({ "removed": client_id }))
            } else {
                println!("removed client {client_id}");
                Ok(())
            }
        }
    }
}

async fn client_add(store: &Store, args: ClientAddArgs, json_out: bool) -> anyhow::Result<()> {
    let mut metadata = match &args.metadata_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let mut value: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
            if let Some(map) = value.as_object_mut() {
                map.insert("client_id".into(), json!(args.client_id));
            }
            serde_json::from_value::<ClientMetadata>(value)
                .with_context(|| format!("{} is not valid client metadata", path.display()))?
        }
        None => {
            let mut m = ClientMetadata::new(ClientId::new(args.client_id.clone()));
            m.client_name = args.name.clone();
            m.token_endpoint_auth_method = args.auth_method;
            m.grant_types = args.grant_types.clone();
            m.scope = Scope::new(&args.scope);
            m.profile = args.profile;
            m.backchannel_token_delivery_mode = args.delivery_mode;
            m.backchannel_client_notification_endpoint = args.notification_endpoint.clone();
            m.redirect_uris = args.redirect_uris.clone();
            m.post_logout_redirect_uris = args.post_logout_redirect_uris.clone();
            m.backchannel_logout_uri = args.backchannel_logout_uri.clone();
            m.backchannel_logout_session_required = args.backchannel_logout_session_required;
            m.frontchannel_logout_uri = args.frontchannel_logout_uri.clone();
            m.frontchannel_logout_session_required = args.frontchannel_logout_session_required;
            m.backchannel_authentication_request_signing_alg = args.request_signing_alg;
            m.backchannel_user_code_parameter = args.user_code;
            m.dpop_bound_access_tokens = args.dpop;
            m.tls_client_certificate_bound_access_tokens = args.tls_bound;
            m.access_token_format = args.access_token_format;
            m.number_matching = args.number_matching;
            m.authorization_details_types =
                (!args.authorization_details_types.is_empty()).then(|| args.authorization_details_types.clone());
            m
        }
    };
    if let Some(path) = &args.jwks_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        metadata.jwks = Some(serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?);
    }
    let needs_secret = matches!(
        metadata.token_endpoint_auth_method,
        TokenEndpointAuthMethod::ClientSecretBasic | TokenEndpointAuthMethod::ClientSecretPost
    );
    let secret = needs_secret.then(|| ClientSecret::new(args.secret.clone().unwrap_or_else(random_token)));
    // A --secret given for a public client (`none`) is refused, not ignored.
    let has_secret = secret.is_some() || args.secret.is_some();
    crate::clients::validate(&metadata, has_secret).map_err(|e| anyhow!("invalid client: {e}"))?;
    let record = client_record(metadata, secret.as_ref(), now());
    store.insert_client(&record).await?;
    let id = record.client_id().to_string();
    if json_out {
        let mut out = serde_json::to_value(&record.metadata)?;
        if let (Some(map), Some(secret)) = (out.as_object_mut(), &secret) {
            map.insert("client_secret".into(), json!(secret.secret()));
        }
        return print_json(&out);
    }
    println!("registered client {id}");
    if let Some(secret) = secret {
        println!("client_secret: {}", secret.secret());
        println!("(shown once: only its hash is stored)");
    }
    Ok(())
}

async fn find_user(store: &Store, who: &str) -> anyhow::Result<UserRecord> {
    if let Some(user) = store.user_by_login_hint(who).await? {
        return Ok(user);
    }
    store
        .user(&Subject::new(who))
        .await?
        .ok_or_else(|| anyhow!("no user {who}"))
}

fn user_json(user: &UserRecord) -> serde_json::Value {
    json!({
        "sub": user.subject,
        "username": user.username,
        "email": user.email,
        "phone": user.phone,
        "name": user.name,
        "locked": user.locked,
        "has_password": user.password_hash.is_some(),
        "has_user_code": user.user_code_hash.is_some(),
        "test_decision": user.test_decision,
        "created_at": user.created_at,
    })
}

/// `users ...`
pub async fn users(settings: &Settings, store: &Store, command: UsersCommand, json_out: bool) -> anyhow::Result<()> {
    let done = |message: String, value: serde_json::Value| -> anyhow::Result<()> {
        if json_out {
            print_json(&value)
        } else {
            println!("{message}");
            Ok(())
        }
    };
    match command {
        UsersCommand::Add {
            username,
            email,
            phone,
            name,
            password_stdin,
            test_decision,
        } => {
            let password_hash = if password_stdin {
                Some(crate::password::hash(&read_password()?).map_err(|e| anyhow!(e))?)
            } else {
                None
            };
            let user = UserRecord {
                subject: Subject::new(uuid::Uuid::new_v4().to_string()),
                username: username.clone(),
                email: email.map(|e| e.to_lowercase()),
                phone,
                name,
                password_hash,
                user_code_hash: None,
                locked: false,
                test_decision: test_decision.and_then(to_decision),
                created_at: now(),
            };
            store.insert_user(&user).await?;
            done(
                format!("created user {username} (sub {})", user.subject),
                user_json(&user),
            )
        }
        UsersCommand::List => {
            let users = store.list_users().await?;
            if json_out {
                return print_json(&json!(users.iter().map(user_json).collect::<Vec<_>>()));
            }
            if users.is_empty() {
                println!("no users");
            }
            for u in users {
                let state = if u.locked { "locked" } else { "active" };
                println!(
                    "{}\t{}\t{}\t{state}",
                    u.username,
                    u.email.as_deref().unwrap_or("-"),
                    u.subject
                );
            }
            Ok(())
        }
        UsersCommand::Show { user } => print_json(&user_json(&find_user(store, &user).await?)),
        UsersCommand::Remove { user } => {
            let found = find_user(store, &user).await?;
            let revoked = store.revoke_tokens_of_subject(&found.subject).await?;
            store.delete_user(&found.subject).await?;
            done(
                format!("removed user {} and revoked {revoked} tokens", found.username),
                json!({ "removed": found.username, "tokens_revoked": revoked }),
            )
        }
        UsersCommand::Lock { user } => {
            let found = find_user(store, &user).await?;
            store.set_user_locked(&found.subject, true).await?;
            let revoked = store.revoke_tokens_of_subject(&found.subject).await?;
            done(
                format!("locked user {} and revoked {revoked} tokens", found.username),
                json!({ "locked": found.username, "tokens_revoked": revoked }),
            )
        }
        UsersCommand::Unlock { user } => {
            let found = find_user(store, &user).await?;
            store.set_user_locked(&found.subject, false).await?;
            done(
                format!("unlocked user {}", found.username),
                json!({ "unlocked": found.username }),
            )
        }
        UsersCommand::SetPassword { user } => {
            let found = find_user(store, &user).await?;
            let hash = crate::password::hash(&read_password()?).map_err(|e| anyhow!(e))?;
            store.set_password_hash(&found.subject, Some(&hash)).await?;
            done(
                format!("password set for {}", found.username),
                json!({ "password_set": found.username }),
            )
        }
        UsersCommand::SetUserCode { user } => {
            let found = find_user(store, &user).await?;
            let hash = crate::password::hash_user_code(&read_secret("user code")?).map_err(|e| anyhow!(e))?;
            store.set_user_code_hash(&found.subject, Some(&hash)).await?;
            done(
                format!("user code set for {}", found.username),
                json!({ "user_code_set": found.username }),
            )
        }
        UsersCommand::ClearUserCode { user } => {
            let found = find_user(store, &user).await?;
            store.set_user_code_hash(&found.subject, None).await?;
            done(
                format!("user code cleared for {}", found.username),
                json!({ "user_code_cleared": found.username }),
            )
        }
        UsersCommand::TestDecision { user, decision } => {
            if !settings.is_development() {
                bail!("automatic test decisions are refused in production (the configuration's environment is production; set environment = \"development\" on a test system)");
            }
            let found = find_user(store, &user).await?;
            let decision = to_decision(decision);
            store.set_test_decision(&found.subject, decision).await?;
            let value = decision.map_or("off", TestDecision::as_str);
            done(
                format!("test decision for {}: {value}", found.username),
                json!({ "username": found.username, "test_decision": decision }),
            )
        }
    }
}

fn to_decision(arg: TestDecisionArg) -> Option<TestDecision> {
    match arg {
        TestDecisionArg::Approve => Some(TestDecision::Approve),
        TestDecisionArg::Deny => Some(TestDecision::Deny),
        TestDecisionArg::Off => None,
    }
}

/// `keys ...`
pub async fn keys(settings: &Settings, store: &Store, command: KeysCommand, json_out: bool) -> anyhow::Result<()> {
    match command {
        KeysCommand::List => {
            let records = store.signing_keys().await?;
            if json_out {
                let list: Vec<_> = records
                    .iter()
                    .map(|k| {
                        json!({
                            "kid": k.kid, "alg": k.alg, "generation": k.generation, "created_at": k.created_at,
                            "retired_at": k.retired_at, "publish_until": k.publish_until,
                        })
                    })
                    .collect();
                return print_json(&json!(list));
            }
            if records.is_empty() {
                println!("no keys yet: they are created when the server first starts");
            }
            for k in records {
                let status = match k.retired_at {
                    None => "current".to_owned(),
                    Some(_) => format!(
                        "retired, published until {}",
                        k.publish_until.map_or("-".into(), format_time)
                    ),
                };
                println!("{}\t{}\tgeneration {}\t{status}", k.kid, k.alg, k.generation);
            }
            Ok(())
        }
        KeysCommand::Rotate => {
            let keys = KeySet::load_or_create(store, &settings.key_file, now()).await?;
            let generation = keys.rotate(store, now(), settings.rotation_overlap).await?;
            if json_out {
                return print_json(&json!({ "generation": generation }));
            }
            println!(
                "key generation {generation} is now signing; the previous keys stay published for {} seconds",
                settings.rotation_overlap
            );
            println!("running servers pick up the new keys within a minute");
            Ok(())
        }
    }
}

fn parse_time(text: &str, flag: &str) -> anyhow::Result<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .with_context(|| format!("--{flag} {text:?} is not an RFC 3339 time like 2026-11-25T08:00:00Z"))
}

pub(super) fn format_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// `audit`
pub async fn audit(store: &Store, args: AuditArgs, json_out: bool) -> anyhow::Result<()> {
    let query = AuditQuery {
        subject: args.user,
        client_id: args.client,
        request_id: args.request,
        since: args.since.as_deref().map(|t| parse_time(t, "since")).transpose()?,
        until: args.until.as_deref().map(|t| parse_time(t, "until")).transpose()?,
        limit: args.limit,
    };
    let events = store.audit(&query).await?;
    if json_out {
        return print_json(&serde_json::to_value(&events)?);
    }
    if events.is_empty() {
        println!("no matching events");
    }
    for e in events {
        println!(
            "{}\t{}\tclient={}\tuser={}\t{}",
            format_time(e.at),
            e.event,
            e.client_id.as_deref().unwrap_or("-"),
            e.subject.as_deref().unwrap_or("-"),
            e.detail
        );
    }
    Ok(())
}

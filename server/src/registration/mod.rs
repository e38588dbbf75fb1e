//! Dynamic client registration ([RFC 7591](https://www.rfc-editor.org/rfc/rfc7591))
//! and the client configuration endpoint ([RFC 7592](https://www.rfc-editor.org/rfc/rfc7592)).
//!
//! A registration request is client metadata as JSON. The server assigns the
//! `client_id` (and a `client_secret` for the secret-based methods), checks the
//! metadata with the same rules as the CLI and the configuration file
//! ([`crate::clients::validate`], which applies the client's profile), and stores
//! the same [`ClientRecord`] they would. It also issues a registration access
//! token, stored hashed, with which the client reads, replaces (rotating the
//! token) or deletes its registration at `registration_client_uri`.
//!
//! Gating (`[registration]`, [`settings`]): off unless enabled; an initial access
//! token when configured; a software statement ([`statement`]) signed by a trusted
//! directory, whose claims override the body, when configured or required.
//!
//! Metadata the server does not know is ignored and not echoed (RFC 7591 §2).
//! Start reading at [`register`]; the HTTP side is [`crate::endpoints::register`].

pub mod settings;
pub mod statement;

use axum::http::{header, HeaderMap, StatusCode};
use outband_protocol::{
    AccessToken, ClientId, ClientMetadata, ClientSecret, ErrorCode, GrantType, TokenEndpointAuthMethod,
};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

pub use settings::{RegistrationConfig, RegistrationSettings};
use statement::SoftwareStatement;

use crate::endpoints::discovery::{scopes_supported, AUTH_METHODS, GRANT_TYPES, MTLS_AUTH_METHODS, PUBLIC_AUTH_METHOD};
use crate::error::{Error, Result};
use crate::state::{client_record, AppState};
use crate::store::{AuditEvent, ClientRecord, RegistrationRecord};
use crate::tokens::random_token;

/// Members the server sets; a request's values for them are never stored.
const SERVER_MEMBERS: [&str; 7] = [
    "client_id",
    "client_secret",
    "client_id_issued_at",
    "client_secret_expires_at",
    "registration_access_token",
    "registration_client_uri",
    "software_statement",
];

/// A registration as answered to the client (RFC 7591 §3.2.1, RFC 7592 §3).
pub struct RegistrationResponse {
    /// The client's metadata and the registration members.
    pub body: Value,
}

fn metadata_error(description: String) -> Error {
    let code = if description.starts_with("redirect_uris") {
        ErrorCode::InvalidRedirectUri
    } else {
        ErrorCode::InvalidClientMetadata
    };
    Error::new(code, description)
}

/// The registration settings, or 404 when registration is off.
fn enabled(state: &AppState) -> Result<&RegistrationSettings> {
    state.settings.registration.as_ref().ok_or_else(|| {
        Error::new(ErrorCode::NotFound, "dynamic client registration is not enabled").with_status(StatusCode::NOT_FOUND)
    })
}

/// The Bearer token of the `Authorization` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// 401 `invalid_token` with a Bearer challenge ([RFC 6750 §3](https://www.rfc-editor.org/rfc/rfc6750#section-3)).
fn invalid_token(description: &'static str, presented: bool) -> Error {
    let challenge = if presented {
        "Bearer realm=\"outband\", error=\"invalid_token\""
    } else {
        // RFC 6750 §3.1: no error code when no credentials came.
        "Bearer realm=\"outband\""
    };
    Error::OAuth {
        code: ErrorCode::InvalidToken,
        description: description.into(),
        status: Some(StatusCode::UNAUTHORIZED),
        challenge: Some(challenge.into()),
    }
}

fn same_hash(token: &str, expected_hash: &str) -> bool {
    let hash = AccessToken::new(token).hash();
    bool::from(hash.as_bytes().ct_eq(expected_hash.as_bytes()))
}

/// `POST /register`: checks the gate and the metadata, stores the client,
/// answers 201's body.
pub async fn register(state: &AppState, headers: &HeaderMap, body: Map<String, Value>) -> Result<RegistrationResponse> {
    let settings = enabled(state)?;
    if let Some(expected) = &settings.initial_access_token_hash {
        match bearer(headers) {
            None => {
                return Err(invalid_token(
                    "an initial access token is required (Authorization: Bearer)",
                    false,
                ))
            }
            Some(token) if !same_hash(token, expected) => {
                return Err(invalid_token("the initial access token is not valid", true))
            }
            Some(_) => {}
        }
    }
    let client_id = ClientId::new(random_token());
    let (metadata, statement) = checked_metadata(state, settings, body, client_id, None)?;
    let secret = needs_secret(&metadata).then(|| ClientSecret::new(random_token()));
    let record = client_record(metadata, secret.as_ref(), state.now());
    let token = AccessToken::new(random_token());
    let registration = registration_record(&record, &token, statement.as_ref(), state.now())?;
    state.store.insert_registered_client(&record, &registration).await?;
    tracing::info!(client_id = %record.client_id(), profile = %record.metadata.profile, "client registered");
    audit(state, "client.registered", &record, statement.as_ref()).await;
    Ok(response(
        state,
        &record,
        secret.as_ref(),
        Some(&token),
        statement.as_ref(),
    ))
}

/// The client and registration a registration access token manages; 401
/// `invalid_token` alike for an unknown client and a wrong token (RFC 7592 §2:
/// nothing tells whether the client exists).
async fn authorized(
    state: &AppState,
    headers: &HeaderMap,
    id: &ClientId,
) -> Result<(ClientRecord, RegistrationRecord)> {
    enabled(state)?;
    let Some(token) = bearer(headers) else {
        return Err(invalid_token(
            "a registration access token is required (Authorization: Bearer)",
            false,
        ));
    };
    let refused = || invalid_token("the registration access token is not valid for this client", true);
    let registration = state.store.registration(id).await?.ok_or_else(refused)?;
    if !same_hash(token, &registration.access_token_hash) {
        return Err(refused());
    }
    let client = state.store.client(id).await?.ok_or_else(refused)?;
    Ok((client, registration))
}

/// `GET /register/{client_id}` (RFC 7592 §2.1).
pub async fn read(state: &AppState, headers: &HeaderMap, id: &ClientId) -> Result<RegistrationResponse> {
    let (client, registration) = authorized(state, headers, id).await?;
    let statement = statement::stored(
        registration.software_statement,
        registration.software_statement_claims.as_deref(),
    );
    Ok(response(state, &client, None, None, statement.as_ref()))
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): the body replaces the metadata
/// (omitted fields return to their defaults), and the registration access token
/// rotates. A secret already issued stays; a switch to a secret-based method
/// gets a new one.
pub async fn update(
    state: &AppState,
    headers: &HeaderMap,
    id: &ClientId,
    body: Map<String, Value>,
) -> Result<RegistrationResponse> {
    let (client, registration) = authorized(state, headers, id).await?;
    let settings = enabled(state)?;
    match body.get("client_id") {
        Some(Value::String(given)) if given == id.as_str() => {}
        _ => {
            return Err(metadata_error(
                "client_id: must be present and equal to the registered client_id".into(),
            ))
        }
    }
    if let Some(given) = body.get("client_secret") {
        let matches = match (given.as_str(), &client.secret_hash) {
            (Some(secret), Some(hash)) => {
                let presented = ClientSecret::new(secret).hash();
                bool::from(presented.as_bytes().ct_eq(hash.as_bytes()))
            }
            _ => false,
        };
        if !matches {
            return Err(metadata_error(
                "client_secret: does not match the issued secret; it cannot be chosen".into(),
            ));
        }
    }
    let previous = statement::stored(
        registration.software_statement.clone(),
        registration.software_statement_claims.as_deref(),
    );
    let (metadata, statement) = checked_metadata(state, settings, body, id.clone(), previous)?;
    let new_secret =
        (needs_secret(&metadata) && client.secret_hash.is_none()).then(|| ClientSecret::new(random_token()));
    let secret_hash = match &new_secret {
        Some(secret) => Some(secret.hash()),
        None if needs_secret(&metadata) => client.secret_hash.clone(),
        None => None,
    };
    let record = ClientRecord {
        metadata,
        secret_hash,
        created_at: client.created_at,
    };
    let token = AccessToken::new(random_token());
    let rotated = registration_record(&record, &token, statement.as_ref(), state.now())?;
    if !state
        .store
        .update_registered_client(&record, &registration.access_token_hash, &rotated)
        .await?
    {
        // Another update with the same token won the race.
        return Err(invalid_token(
            "the registration access token is not valid for this client",
            true,
        ));
    }
    tracing::info!(client_id = %id, "registered client updated");
    audit(state, "client.registration_updated", &record, statement.as_ref()).await;
    Ok(response(
        state,
        &record,
        new_secret.as_ref(),
        Some(&token),
        statement.as_ref(),
    ))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): the client, its registration
/// and every token issued to it are gone.
pub async fn delete(state: &AppState, headers: &HeaderMap, id: &ClientId) -> Result<()> {
    let (client, _) = authorized(state, headers, id).await?;
    state.store.delete_client(id).await?;
    tracing::info!(client_id = %id, "registered client deleted");
    audit(state, "client.registration_deleted", &client, None).await;
    Ok(())
}

/// Records a registration event (profile, auth method, the statement's issuer);
/// a failure to write it is logged, never fatal.
async fn audit(state: &AppState, event: &str, client: &ClientRecord, statement: Option<&SoftwareStatement>) {
    let entry = AuditEvent {
        id: 0,
        at: state.now(),
        event: event.to_owned(),
        client_id: Some(client.client_id().to_string()),
        subject: None,
        request_id: None,
        detail: serde_json::json!({
            "profile": client.metadata.profile,
            "token_endpoint_auth_method": client.metadata.token_endpoint_auth_method,
            "software_statement_iss": statement.and_then(|s| s.claims.get("iss")),
        }),
    };
    if let Err(err) = state.store.append_audit(&entry).await {
        tracing::warn!(error = %err, "could not write the audit log");
    }
}

fn needs_secret(metadata: &ClientMetadata) -> bool {
    matches!(
        metadata.token_endpoint_auth_method,
        TokenEndpointAuthMethod::ClientSecretBasic | TokenEndpointAuthMethod::ClientSecretPost
    )
}

/// The request body (plus the software statement's claims, which win) as
/// checked [`ClientMetadata`] for `client_id`. `previous` is the statement of
/// an existing registration, reapplied when the request brings none.
fn checked_metadata(
    state: &AppState,
    settings: &RegistrationSettings,
    mut body: Map<String, Value>,
    client_id: ClientId,
    previous: Option<SoftwareStatement>,
) -> Result<(ClientMetadata, Option<SoftwareStatement>)> {
    let given = statement::member(
        body.remove("software_statement"),
        &settings.software_statement_keys,
        state.now(),
    )?;
    let statement = given.or(previous);
    if settings.require_software_statement && statement.is_none() {
        return Err(Error::new(
            ErrorCode::InvalidSoftwareStatement,
            "software_statement: required by this server",
        ));
    }
    if let Some(statement) = &statement {
        body.extend(statement.metadata().map(|(k, v)| (k.clone(), v.clone())));
    }
    for member in SERVER_MEMBERS {
        body.remove(member);
    }
    // RFC 7591 §2: grant_types defaults to authorization_code.
    body.entry("grant_types")
        .or_insert_with(|| Value::from(vec![GrantType::AuthorizationCode.as_str()]));
    // RFC 7591 §2 leaves the default scope to the server: everything discovery
    // lists, so a client that names none (as the OpenID conformance suite's
    // dynamic clients do) can ask for any of them; the response shows it (§3.2.1).
    body.entry("scope")
        .or_insert_with(|| Value::from(scopes_supported().collect::<Vec<_>>().join(" ")));
    body.insert("client_id".into(), Value::String(client_id.to_string()));
    let metadata: ClientMetadata = serde_path_to_error::deserialize(Value::Object(body)).map_err(|err| {
        let path = err.path().to_string();
        metadata_error(format!("{path}: {}", err.into_inner()))
    })?;
    check_served(state, &metadata).map_err(metadata_error)?;
    crate::clients::validate(&metadata, needs_secret(&metadata)).map_err(metadata_error)?;
    Ok((metadata, statement))
}

/// What this server does not serve cannot be registered: grant types the
/// token endpoint has no handler for, scopes discovery does not list (so no
/// client registers itself for `introspection`, which reads every token: the
/// operator grants that one in the configuration or with the CLI),
/// authentication methods discovery does not list, and URLs the outbound
/// policy would not let the server call.
fn check_served(state: &AppState, metadata: &ClientMetadata) -> std::result::Result<(), String> {
    if let Some(grant) = metadata.grant_types.iter().find(|g| !GRANT_TYPES.contains(g)) {
        return Err(format!("grant_types: {grant} is not served by this server"));
    }
    let registrable = |scope: &str| {
        scopes_supported().any(|offered| offered == scope) || crate::consents::authorize::is_consent_scope(scope)
    };
    if let Some(scope) = metadata.scope.iter().find(|scope| !registrable(scope)) {
        return Err(format!(
            "scope: {scope} cannot be registered here; the scopes are those discovery lists in scopes_supported"
        ));
    }
    if metadata.grant_types.is_empty() {
        return Err("grant_types: at least one grant type is required".into());
    }
    // The server will call these; refuse at once what the outbound policy
    // would refuse later (plain http, private addresses: SSRF).
    let policy = &state.settings.outbound.policy;
    for (field, url) in [
        ("jwks_uri", &metadata.jwks_uri),
        (
            "backchannel_client_notification_endpoint",
            &metadata.backchannel_client_notification_endpoint,
        ),
        ("backchannel_logout_uri", &metadata.backchannel_logout_uri),
    ] {
        if let Some(url) = url {
            policy.check_url(url).map_err(|why| format!("{field}: {why}"))?;
        }
    }
    let method = metadata.token_endpoint_auth_method;
    let mtls = state.settings.tls.is_some() && MTLS_AUTH_METHODS.contains(&method);
    if !AUTH_METHODS.contains(&method) && !mtls && method != PUBLIC_AUTH_METHOD {
        return Err(format!(
            "token_endpoint_auth_method: {method} is not supported by this server"
        ));
    }
    Ok(())
}

fn registration_record(
    client: &ClientRecord,
    token: &AccessToken,
    statement: Option<&SoftwareStatement>,
    now: i64,
) -> Result<RegistrationRecord> {
    let claims = statement
        .map(|s| serde_json::to_string(&s.claims))
        .transpose()
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok(RegistrationRecord {
        client_id: client.client_id().clone(),
        access_token_hash: token.hash(),
        software_statement: statement.map(|s| s.jwt.clone()),
        software_statement_claims: claims,
        updated_at: now,
    })
}

/// The stored metadata plus the registration members.
fn response(
    state: &AppState,
    client: &ClientRecord,
    secret: Option<&ClientSecret>,
    token: Option<&AccessToken>,
    statement: Option<&SoftwareStatement>,
) -> RegistrationResponse {
    let mut body = match serde_json::to_value(&client.metadata) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let id = client.client_id().as_str();
    body.insert("client_id_issued_at".into(), Value::from(client.created_at));
    if needs_secret(&client.metadata) {
        // RFC 7591 §3.2.1: 0 means the secret does not expire.
        body.insert("client_secret_expires_at".into(), Value::from(0));
    }
    if let Some(secret) = secret {
        body.insert("client_secret".into(), Value::from(secret.secret()));
    }
    if let Some(token) = token {
        body.insert("registration_access_token".into(), Value::from(token.secret()));
    }
    body.insert(
        "registration_client_uri".into(),
        Value::from(state.settings.endpoint(&format!("/register/{id}"))),
    );
    if let Some(statement) = statement {
        body.insert("software_statement".into(), Value::from(statement.jwt.as_str()));
    }
    RegistrationResponse {
        body: Value::Object(body),
    }
}

//! [FAPI Grant Management for OAuth 2.0](https://openid.net/specs/fapi-grant-management.html):
//! grants as resources a client can name (`grant_id`), change through an
//! authorization request (`grant_management_action`) and query or revoke
//! through the grant management API (`GET`/`DELETE /grants/{grant_id}`).
//!
//! (Not to be confused with [`crate::grants`], the OAuth grant *types* of the
//! token endpoint.)
//!
//! - here: the request parameters ([`parse`], [`check`]), grant intents
//!   ([`record_intent`]) and applying them when tokens are claimed ([`settle`]);
//! - [`api`]: the grant management API's logic;
//! - [`consent`]: remembered consent (`prompt=none`) and the claims of a scope.
//!
//! ## When a grant changes
//! Spec §5.5.1: a grant becomes active when its tokens are claimed. So an
//! authorization request only records an *intent* (what it will do to which
//! grant id) beside its code or CIBA request; the token endpoint applies it
//! ([`settle`]) when it issues the tokens. Every authorization-code and CIBA
//! authorization makes or changes a grant, with or without grant management
//! parameters (without them: `create`).

pub mod api;
pub mod consent;

use outband_protocol::{ClientId, ErrorCode, Scope, Subject, TokenEndpointAuthMethod};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{ClientRecord, GrantIntentRecord, GrantRecord};
use crate::tokens::random_token;

/// The actions an authorization request may ask for (§5.2).
pub const REQUEST_ACTIONS: [&str; 3] = ["create", "merge", "replace"];
/// Everything this AS supports, for discovery (`grant_management_actions_supported`).
pub const ACTIONS_SUPPORTED: [&str; 5] = ["query", "revoke", "create", "merge", "replace"];
/// Scope of access tokens that may query grants (§6.1).
pub const SCOPE_QUERY: &str = "grant_management_query";
/// Scope of access tokens that may revoke grants (§6.1).
pub const SCOPE_REVOKE: &str = "grant_management_revoke";
/// Longest `grant_id` accepted (ours are 43 characters).
const MAX_GRANT_ID_LEN: usize = 128;
/// How long an intent outlives its code or request: a push request's tokens
/// may be issued again by the recovery sweep within the hour.
const INTENT_GRACE: i64 = 3600;
/// Attempts at a merge or replace before giving up on concurrent changes.
const UPDATE_ATTEMPTS: usize = 5;

/// `grant_management_action` (§5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantAction {
    /// A fresh grant.
    Create,
    /// Add what is approved now to the named grant.
    Merge,
    /// Make the named grant exactly what is approved now.
    Replace,
}

impl GrantAction {
    /// The wire and stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Merge => "merge",
            Self::Replace => "replace",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "create" => Some(Self::Create),
            "merge" => Some(Self::Merge),
            "replace" => Some(Self::Replace),
            _ => None,
        }
    }
}

/// What an authorization request asks of grant management.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRequest {
    /// The action.
    pub action: GrantAction,
    /// The grant to merge into or replace (`None` for `create`).
    pub grant_id: Option<String>,
}

/// Whether grant management is open to this client: §5.1 restricts it to
/// confidential clients.
pub fn is_for(client: &ClientRecord) -> bool {
    client.metadata.token_endpoint_auth_method != TokenEndpointAuthMethod::None
}

/// Reads `grant_management_action` and `grant_id` (§5.2, §5.3): `merge` and
/// `replace` need a `grant_id`, `create` takes none, a `grant_id` alone is
/// ambiguous; each of these is `invalid_request`.
pub fn parse(action: Option<&str>, grant_id: Option<&str>, client: &ClientRecord) -> Result<Option<GrantRequest>> {
    if action.is_none() && grant_id.is_none() {
        return Ok(None);
    }
    if !is_for(client) {
        return Err(Error::invalid_request(
            "grant management is only for confidential clients (FAPI Grant Management §5.1)",
        ));
    }
    let Some(action) = action else {
        return Err(Error::invalid_request(
            "grant_id needs grant_management_action merge or replace",
        ));
    };
    let action = GrantAction::parse(action).ok_or_else(|| {
        Error::invalid_request(format!(
            "grant_management_action {action:?} is not supported; use {}",
            REQUEST_ACTIONS.join(", ")
        ))
    })?;
    match (action, grant_id) {
        (GrantAction::Create, Some(_)) => Err(Error::invalid_request(
            "grant_management_action create makes a new grant and takes no grant_id",
        )),
        (GrantAction::Create, None) => Ok(Some(GrantRequest { action, grant_id: None })),
        (_, None) => Err(Error::invalid_request(format!(
            "grant_management_action {} requires grant_id",
            action.as_str()
        ))),
        (_, Some(id)) if id.len() > MAX_GRANT_ID_LEN => Err(unknown_grant()),
        (_, Some(id)) => Ok(Some(GrantRequest {
            action,
            grant_id: Some(id.to_owned()),
        })),
    }
}

fn unknown_grant() -> Error {
    Error::new(
        ErrorCode::InvalidGrantId,
        "grant_id is unknown, revoked or not a grant of this client",
    )
}

/// The live grant `grant_id` of `client` (and of `subject`, when known).
async fn owned_grant(
    state: &AppState,
    client_id: &ClientId,
    grant_id: &str,
    subject: Option<&Subject>,
) -> Result<Option<GrantRecord>> {
    Ok(state
        .store
        .grant(grant_id)
        .await?
        .filter(|g| !g.revoked && g.client_id == *client_id && subject.is_none_or(|s| *s == g.subject)))
}

/// Checks the named grant: it must be a live grant of this client (and of the
/// user, once known); else `invalid_grant_id` (§5.3).
pub async fn check(
    state: &AppState,
    client_id: &ClientId,
    request: Option<&GrantRequest>,
    subject: Option<&Subject>,
) -> Result<()> {
    let Some(grant_id) = request.and_then(|r| r.grant_id.as_deref()) else {
        return Ok(());
    };
    match owned_grant(state, client_id, grant_id, subject).await? {
        Some(_) => Ok(()),
        None => Err(unknown_grant()),
    }
}

/// Records what the authorization `request_key` (`code:<hash>`,
/// `ciba:<id>`) will do once its tokens are claimed, after checking the named
/// grant belongs to `subject`; returns the grant id it will use.
pub async fn record_intent(
    state: &AppState,
    client_id: &ClientId,
    request: Option<&GrantRequest>,
    subject: &Subject,
    request_key: &str,
    expires_at: i64,
) -> Result<String> {
    check(state, client_id, request, Some(subject)).await?;
    let (grant_id, action) = match request {
        Some(GrantRequest {
            action,
            grant_id: Some(id),
        }) => (id.clone(), *action),
        _ => (random_token(), GrantAction::Create),
    };
    state
        .store
        .insert_grant_intent(&GrantIntentRecord {
            request_key: request_key.to_owned(),
            grant_id: grant_id.clone(),
            action: action.as_str().to_owned(),
            expires_at: expires_at + INTENT_GRACE,
        })
        .await?;
    Ok(grant_id)
}

/// What was approved in one authorization, to be put into a grant.
#[derive(Clone, Copy, Debug)]
pub struct Approved<'a> {
    /// The client.
    pub client_id: &'a ClientId,
    /// The user.
    pub subject: &'a Subject,
    /// The approved scope.
    pub scope: &'a Scope,
    /// The approved authorization details (a JSON array).
    pub authorization_details: Option<&'a Value>,
    /// The UserInfo claims the authorization asked for (`claims.userinfo`,
    /// within `scope`; [`crate::claims`]): they replace the grant's on
    /// `create` and `replace`, and are added to them on `merge`.
    pub userinfo_claims: &'a [String],
}

/// Applies the intent of `request_key` as its tokens are issued; returns the
/// grant id the tokens belong to. Without an intent (rows older than grant
/// management) the tokens make a fresh grant `fallback` (or a new id).
/// A grant revoked or gone meanwhile is `invalid_grant`.
pub async fn settle(
    state: &AppState,
    request_key: &str,
    fallback: Option<&str>,
    approved: Approved<'_>,
) -> Result<String> {
    let (grant_id, action) = match state.store.grant_intent(request_key).await? {
        Some(intent) => (
            intent.grant_id,
            GrantAction::parse(&intent.action)
                .ok_or_else(|| Error::internal(format!("stored grant intent action {:?}", intent.action)))?,
        ),
        None => (fallback.map_or_else(random_token, str::to_owned), GrantAction::Create),
    };
    let now = state.now();
    if action == GrantAction::Create {
        let fresh = GrantRecord {
            grant_id: grant_id.clone(),
            client_id: approved.client_id.clone(),
            subject: approved.subject.clone(),
            scope: approved.scope.clone(),
            claims: consent::claims_of(approved.scope),
            authorization_details: approved.authorization_details.map(Value::to_string),
            created_at: now,
            updated_at: now,
            version: 0,
            revoked: false,
        };
        if state.store.insert_grant(&fresh).await? {
            state
                .store
                .set_userinfo_claims(&grant_id, approved.userinfo_claims)
                .await?;
            return Ok(grant_id);
        }
        // The same authorization issuing again (a push re-sent after a crash):
        // merging what it approved changes nothing.
    }
    for _ in 0..UPDATE_ATTEMPTS {
        let Some(current) = owned_grant(state, approved.client_id, &grant_id, Some(approved.subject)).await? else {
            return Err(Error::invalid_grant("the grant was revoked"));
        };
        let (next, userinfo) = match action {
            GrantAction::Replace => (
                GrantRecord {
                    scope: approved.scope.clone(),
                    claims: consent::claims_of(approved.scope),
                    authorization_details: approved.authorization_details.map(Value::to_string),
                    updated_at: now,
                    ..current
                },
                approved.userinfo_claims.to_vec(),
            ),
            GrantAction::Create | GrantAction::Merge => {
                // Read after `current`: if the grant changes in between, the versioned update fails and is retried.
                let mut userinfo = state.store.userinfo_claims(&grant_id).await?;
                for name in approved.userinfo_claims {
                    if !userinfo.contains(name) {
                        userinfo.push(name.clone());
                    }
                }
                (merged(current, approved, now)?, userinfo)
            }
        };
        if state.store.update_grant_with_userinfo_claims(&next, &userinfo).await? {
            if action == GrantAction::Replace {
                // Spec §3.3: the old privileges go; their tokens with them.
                let revoked = state.store.revoke_tokens_of_grant(&grant_id).await?;
                tracing::info!(revoked, "grant replaced; its earlier tokens are revoked");
            }
            return Ok(grant_id);
        }
    }
    Err(Error::new(
        ErrorCode::TemporarilyUnavailable,
        "the grant is being changed by another request; try again",
    ))
}

/// `current` with `approved` merged in: the union of the scopes, the details
/// not yet present appended.
fn merged(current: GrantRecord, approved: Approved<'_>, now: i64) -> Result<GrantRecord> {
    let mut scopes: Vec<&str> = current.scope.iter().collect();
    for scope in approved.scope.iter() {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let scope = Scope::new(scopes.join(" "));
    let mut details: Vec<Value> = match current.authorization_details.as_deref() {
        Some(text) => serde_json::from_str(text).map_err(|e| Error::internal(format!("stored grant details: {e}")))?,
        None => Vec::new(),
    };
    for detail in approved
        .authorization_details
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if !details.contains(detail) {
            details.push(detail.clone());
        }
    }
    let authorization_details = (!details.is_empty()).then(|| Value::Array(details).to_string());
    Ok(GrantRecord {
        claims: consent::claims_of(&scope),
        scope,
        authorization_details,
        updated_at: now,
        ..current
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use outband_protocol::ClientMetadata;

    fn client(method: TokenEndpointAuthMethod) -> ClientRecord {
        let mut metadata = ClientMetadata::new(ClientId::new("c"));
        metadata.token_endpoint_auth_method = method;
        ClientRecord {
            metadata,
            secret_hash: None,
            created_at: 0,
        }
    }

    #[test]
    fn parameters_combine_as_the_spec_says() {
        let c = client(TokenEndpointAuthMethod::ClientSecretBasic);
        let code = |a, g| parse(a, g, &c).map_err(|e| e.code());
        assert_eq!(code(None, None), Ok(None));
        assert_eq!(
            code(Some("create"), None),
            Ok(Some(GrantRequest {
                action: GrantAction::Create,
                grant_id: None
            }))
        );
        assert_eq!(
            code(Some("merge"), Some("g")).unwrap().unwrap().grant_id.as_deref(),
            Some("g")
        );
        for (a, g) in [
            (None, Some("g")),
            (Some("create"), Some("g")),
            (Some("merge"), None),
            (Some("replace"), None),
            (Some("update"), Some("g")),
        ] {
            assert_eq!(code(a, g), Err(ErrorCode::InvalidRequest), "{a:?} {g:?}");
        }
        let long = "g".repeat(200);
        assert_eq!(code(Some("merge"), Some(&long)), Err(ErrorCode::InvalidGrantId));
        let public = client(TokenEndpointAuthMethod::None);
        assert_eq!(
            parse(Some("create"), None, &public).map_err(|e| e.code()),
            Err(ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn merging_unites_scopes_and_details() {
        let current = GrantRecord {
            grant_id: "g".into(),
            client_id: ClientId::new("c"),
            subject: Subject::new("s"),
            scope: Scope::new("openid email"),
            claims: vec![],
            authorization_details: Some(r#"[{"type":"a"}]"#.into()),
            created_at: 1,
            updated_at: 1,
            version: 3,
            revoked: false,
        };
        let details = serde_json::json!([{"type": "a"}, {"type": "b"}]);
        let approved = Approved {
            client_id: &ClientId::new("c"),
            subject: &Subject::new("s"),
            scope: &Scope::new("openid payments"),
            authorization_details: Some(&details),
            userinfo_claims: &[],
        };
        let next = merged(current, approved, 9).unwrap();
        assert_eq!(next.scope.as_str(), "openid email payments");
        assert_eq!(
            next.authorization_details.as_deref(),
            Some(r#"[{"type":"a"},{"type":"b"}]"#)
        );
        assert_eq!((next.version, next.updated_at), (3, 9));
        assert!(next.claims.contains(&"email".to_owned()));
    }
}

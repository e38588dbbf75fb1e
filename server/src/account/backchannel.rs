//! What ending a browser session tells the clients that received an ID token
//! in it: [OpenID Connect Back-Channel Logout 1.0](https://openid.net/specs/openid-connect-backchannel-1_0.html)
//! and [Front-Channel Logout 1.0](https://openid.net/specs/openid-connect-frontchannel-1_0.html).
//!
//! - Every browser session has a `sid` (a random value, stored with the
//!   session); ID tokens issued from it carry `sid`, and issuing a code with
//!   `openid` records the client and grant in `session_clients`.
//! - When the session ends ([`end_session`]: `/logout`, the account page's
//!   Sign out, a password change ending the user's other sessions), each such
//!   client with a `backchannel_logout_uri` gets a logout token through the
//!   durable outbox (kind `backchannel_logout`). The session's client rows are
//!   read first; queuing the tokens, revoking refresh tokens, forgetting the
//!   rows that were read and deleting the session row are then one store
//!   transaction ([`crate::store::Store::end_browser_session`]), so a crash
//!   or an error leaves either all of it or none (the session stays and the
//!   user can sign out again): a logout is never lost. A client recorded by a
//!   code issued while the session ended is not forgotten unread: its row
//!   stays and is told in a second pass. The outbox worker
//!   ([`crate::ciba::delivery`]) signs the token at each attempt
//!   ([`logout_token`], short `exp`, the same `jti` every time) and POSTs it
//!   as `application/x-www-form-urlencoded` `logout_token=…`, through the
//!   outbound client (no redirects followed, timeouts, SSRF policy). A 2xx is
//!   delivered, a 4xx final, a 5xx/timeout/refused connection retried with
//!   backoff; a token that cannot be made (the client was deleted, no key for
//!   its algorithm) fails the notification at once, with the reason.
//! - Each client with a `frontchannel_logout_uri` gets an iframe on the
//!   signed-out page (with `iss` and `sid` when it registered
//!   `frontchannel_logout_session_required`).
//! - Refresh tokens of the session's grants are revoked (Back-Channel Logout
//!   §2.7: they "SHOULD be revoked") unless the grant's current scope has
//!   `offline_access` (§2.7: those "normally SHOULD NOT be revoked"). The
//!   grant, not the request, decides, because a grant (and its refresh
//!   tokens) can be shared by several sessions through Grant Management
//!   `merge`: a grant that holds `offline_access` keeps all its refresh
//!   tokens, one without loses them all. Access tokens live out their short
//!   lifetime.

use std::collections::BTreeSet;

use outband_protocol::ClientId;
use serde_json::{json, Map, Value};
use url::Url;

use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{BrowserSessionRecord, NewNotification, NotificationKind, SessionClientRecord, SessionEnd};
use crate::tokens::random_token;

/// The `events` member that makes a JWT a logout token (Back-Channel Logout §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The `typ` header of logout tokens (Back-Channel Logout §2.4, explicit typing).
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";
/// Seconds a logout token is valid ("a short period", Back-Channel Logout §2.4).
pub const LOGOUT_TOKEN_LIFETIME: i64 = 120;

/// Makes a new `sid` for a browser session.
pub fn new_sid() -> String {
    random_token()
}

/// Records that `client_id` gets an ID token of session `sid` under `grant_id`.
pub async fn record_client(
    state: &AppState,
    sid: &str,
    client_id: &ClientId,
    subject: &outband_protocol::Subject,
    grant_id: &str,
    scope: &outband_protocol::Scope,
    session_expires_at: i64,
) -> Result<()> {
    state
        .store
        .record_session_client(&SessionClientRecord {
            sid: sid.to_owned(),
            client_id: client_id.clone(),
            subject: subject.clone(),
            grant_id: grant_id.to_owned(),
            offline: scope.contains("offline_access"),
            created_at: state.now(),
            expires_at: session_expires_at,
        })
        .await?;
    Ok(())
}

/// What ending a session did ([`end_session`]).
#[derive(Debug, Default)]
pub struct Ended {
    /// Whether the session row was there (and is now gone).
    pub session_ended: bool,
    /// The front-channel logout URLs to render in iframes.
    pub frames: Vec<Url>,
}

/// Passes over clients recorded while the session ended, after the first.
const LATE_PASSES: usize = 2;

/// Ends browser session `session`: tells its clients (back-channel logout
/// tokens queued, refresh tokens of grants without `offline_access` revoked,
/// front-channel URLs returned) and deletes the session row, in one store
/// transaction. On an error nothing of it happened: the session is still
/// there and the caller should say so.
pub async fn end_session(state: &AppState, session: &BrowserSessionRecord) -> Result<Ended> {
    let mut told = Told::default();
    let Some(sid) = session.sid.as_deref() else {
        let end = SessionEnd {
            session_hash: Some(&session.session_hash),
            ..SessionEnd::default()
        };
        let session_ended = state.store.end_browser_session(&end).await?;
        return Ok(Ended {
            session_ended,
            frames: Vec::new(),
        });
    };
    let rows = state.store.session_clients(sid).await?;
    let session_ended = told.tell(state, sid, &rows, Some(&session.session_hash)).await?;
    // A code issued while the session ended may have recorded its client
    // after the read; that row is still there: tell it too.
    for _ in 0..LATE_PASSES {
        let late = state.store.session_clients(sid).await?;
        if late.is_empty() {
            break;
        }
        told.tell(state, sid, &late, None).await?;
    }
    Ok(Ended {
        session_ended,
        frames: told.frames,
    })
}

/// The clients told so far (one logout token and one frame each).
#[derive(Default)]
struct Told {
    clients: BTreeSet<String>,
    frames: Vec<Url>,
}

impl Told {
    /// Tells the clients of `rows` and forgets those rows (and deletes the
    /// session row `session_hash`) in one transaction; whether the session row was there.
    async fn tell(
        &mut self,
        state: &AppState,
        sid: &str,
        rows: &[SessionClientRecord],
        session_hash: Option<&str>,
    ) -> Result<bool> {
        let mut notifications = Vec::new();
        let mut revoke = Vec::new();
        let mut frames = Vec::new();
        for row in rows {
            if !revoke.contains(&row.grant_id) && !outlives_session(state, row).await? {
                revoke.push(row.grant_id.clone());
            }
            if self.clients.contains(row.client_id.as_str()) {
                continue;
            }
            let Some(client) = state.client(&row.client_id).await? else {
                continue;
            };
            if let Some(uri) = &client.metadata.backchannel_logout_uri {
                notifications.push(notification(state, row, uri)?);
            }
            if let Some(uri) = &client.metadata.frontchannel_logout_uri {
                let mut url = uri.clone();
                if client.metadata.frontchannel_logout_session_required {
                    url.query_pairs_mut()
                        .append_pair("iss", &state.settings.issuer)
                        .append_pair("sid", sid);
                }
                frames.push(url);
            }
            self.clients.insert(row.client_id.as_str().to_owned());
        }
        let end = SessionEnd {
            session_hash,
            notifications: &notifications,
            revoke_refresh_tokens_of: &revoke,
            told: rows,
        };
        let ended = state.store.end_browser_session(&end).await?;
        if !notifications.is_empty() {
            state.wake_delivery.notify_one();
        }
        if !revoke.is_empty() {
            tracing::info!(grants = revoke.len(), "refresh tokens revoked at logout");
        }
        self.frames.extend(frames);
        Ok(ended)
    }
}

/// Whether the refresh tokens of `row`'s grant outlive the session: the
/// grant's current scope has `offline_access` (Back-Channel Logout §2.7). A
/// grant not made yet (its code is not redeemed) goes by the authorization's scope.
async fn outlives_session(state: &AppState, row: &SessionClientRecord) -> Result<bool> {
    Ok(match state.store.grant(&row.grant_id).await? {
        Some(grant) => grant.scope.contains("offline_access"),
        None => row.offline,
    })
}

/// The queued logout token of one client (its claims, sealed; it is signed
/// when sent).
fn notification(state: &AppState, row: &SessionClientRecord, uri: &Url) -> Result<NewNotification> {
    let sealer = state.keys.sealer();
    let jti = random_token();
    let body = json!({ "sub": row.subject.as_str(), "sid": row.sid, "jti": jti });
    Ok(NewNotification {
        kind: NotificationKind::BackchannelLogout,
        client_id: row.client_id.clone(),
        // The outbox's unique key; a logout is not about a CIBA request.
        ciba_request_id: format!("logout:{jti}"),
        endpoint: uri.to_string(),
        bearer_sealed: sealer.seal(b"").map_err(Error::internal)?,
        body_sealed: sealer.seal(body.to_string().as_bytes()).map_err(Error::internal)?,
        due_at: state.now(),
    })
}

/// Signs the logout token for `client_id` from the queued claims (`sub`,
/// `sid`, `jti`): `typ: logout+jwt`, `iss`, `aud`, `iat`, a short `exp`,
/// `events`, never a `nonce` (§2.4). The algorithm is the client's ID token
/// one. `Ok(Err(why))` when no token can be made, now or on a retry (the
/// client is gone, no key for its algorithm): the notification fails.
pub async fn logout_token(
    state: &AppState,
    client_id: &ClientId,
    queued: &Value,
) -> Result<std::result::Result<String, String>> {
    let Some(client) = state.client(client_id).await? else {
        return Ok(Err(format!("the client {client_id} is gone")));
    };
    let alg = crate::id_token::id_token_alg(&client);
    let Some(key) = state.keys.signer(alg) else {
        return Ok(Err(format!("no {alg} signing key")));
    };
    let now = state.now();
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(state.settings.issuer));
    claims.insert("aud".into(), json!(client_id.as_str()));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + LOGOUT_TOKEN_LIFETIME));
    for name in ["jti", "sub", "sid"] {
        if let Some(value) = queued.get(name).filter(|v| v.is_string()) {
            claims.insert(name.into(), value.clone());
        }
    }
    claims.insert("events".into(), json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
    Ok(key
        .sign(Some(LOGOUT_TOKEN_TYP), &claims)
        .map_err(|e| format!("signing the logout token: {e}")))
}

/// Checks the logout metadata of a client: absolute `http`/`https` URIs without
/// a fragment (Back-Channel Logout §2.2, Front-Channel Logout §2), `https`
/// under the profiles that require it for redirect URIs, and a
/// `frontchannel_logout_uri` with the scheme, host and port of a registered
/// redirect URI (Front-Channel Logout §2).
pub fn check_metadata(metadata: &outband_protocol::ClientMetadata) -> std::result::Result<(), String> {
    let policy = crate::profile::Policy::of(metadata.profile);
    for (field, uri) in [
        ("backchannel_logout_uri", &metadata.backchannel_logout_uri),
        ("frontchannel_logout_uri", &metadata.frontchannel_logout_uri),
    ] {
        let Some(uri) = uri else { continue };
        if !matches!(uri.scheme(), "http" | "https") || uri.host().is_none() {
            return Err(format!("{field}: {uri} must be an absolute http or https URI"));
        }
        if uri.fragment().is_some() {
            return Err(format!("{field}: {uri} must not have a fragment"));
        }
        if uri.scheme() != "https" && policy.requires_https_redirect_uris() {
            return Err(format!(
                "{field}: {uri} must be https under the {} profile",
                metadata.profile
            ));
        }
    }
    if let Some(uri) = &metadata.frontchannel_logout_uri {
        let same_origin = metadata.redirect_uris.iter().any(|r| r.origin() == uri.origin());
        if !same_origin {
            return Err(format!(
                "frontchannel_logout_uri: {uri} must have the scheme, host and port of a registered redirect URI"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use outband_protocol::{ClientMetadata, Profile};

    fn meta(profile: Profile) -> ClientMetadata {
        let mut m = ClientMetadata::new(ClientId::new("c"));
        m.profile = profile;
        m.redirect_uris = vec![Url::parse("https://rp.example/cb").unwrap()];
        m
    }

    #[test]
    fn logout_uris_are_checked() {
        let mut m = meta(Profile::Fapi2Security);
        m.backchannel_logout_uri = Some(Url::parse("https://rp.example/bc").unwrap());
        m.frontchannel_logout_uri = Some(Url::parse("https://rp.example/fc?x=1").unwrap());
        assert_eq!(check_metadata(&m), Ok(()));
        m.backchannel_logout_uri = Some(Url::parse("https://rp.example/bc#f").unwrap());
        assert!(check_metadata(&m).unwrap_err().starts_with("backchannel_logout_uri:"));
        m.backchannel_logout_uri = Some(Url::parse("http://rp.example/bc").unwrap());
        assert!(check_metadata(&m).unwrap_err().contains("must be https"));
        m.backchannel_logout_uri = None;
        m.frontchannel_logout_uri = Some(Url::parse("https://other.example/fc").unwrap());
        assert!(check_metadata(&m).unwrap_err().starts_with("frontchannel_logout_uri:"));
        let mut plain = meta(Profile::Oidc);
        plain.backchannel_logout_uri = Some(Url::parse("urn:x:y").unwrap());
        assert!(check_metadata(&plain).unwrap_err().contains("absolute http or https"));
        plain.backchannel_logout_uri = Some(Url::parse("http://rp.example/bc").unwrap());
        assert_eq!(check_metadata(&plain), Ok(()));
    }
}

//! The CIBA grant, `urn:openid:params:grant-type:ciba`
//! ([CIBA Core §10.1–§11](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.10.1)).
//!
//! Each poll is one conditional update that also settles `slow_down`, and the
//! redemption is another, so tokens are issued exactly once however many nodes
//! a client polls at the same moment.

use outband_protocol::{AuthReqId, DeliveryMode, ErrorCode, TokenResponse};

use crate::auth::AuthenticatedClient;
use crate::ciba::lifecycle::{audit, issue_tokens};
use crate::ciba::request::delivery_mode;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{CibaState, PollOutcome};
use crate::tokens::{Confirmation, Possession};

/// Redeems `auth_req_id` for tokens, or says why not yet. The tokens are bound
/// as `possession` asks (its proof and certificate are checked before the
/// request is redeemed, so a bad proof never uses up an approval).
pub async fn exchange(
    state: &AppState,
    auth: &AuthenticatedClient,
    auth_req_id: &AuthReqId,
    narrow_to: Option<&str>,
    possession: Possession<'_>,
) -> Result<TokenResponse> {
    let client = &auth.client;
    if delivery_mode(client)? == DeliveryMode::Push {
        return Err(Error::unauthorized_client(
            "push-mode clients receive their tokens at the notification endpoint",
        ));
    }
    let now = state.now();
    let hash = auth_req_id.hash();
    let PollOutcome::Found { request, slow_down } =
        state.store.poll_ciba_request(&hash, client.client_id(), now).await?
    else {
        return Err(Error::invalid_grant("unknown auth_req_id"));
    };
    match request.state {
        CibaState::Pending if request.expires_at <= now => Err(expired()),
        CibaState::Pending if slow_down => Err(Error::new(
            ErrorCode::SlowDown,
            format!("poll at most every {} seconds", request.interval),
        )),
        CibaState::Pending => Err(Error::new(
            ErrorCode::AuthorizationPending,
            "the user has not answered yet",
        )),
        CibaState::Expired => Err(expired()),
        CibaState::Denied => Err(Error::new(ErrorCode::AccessDenied, "the user denied the request")),
        CibaState::Cancelled => Err(Error::new(ErrorCode::AccessDenied, "the request was cancelled")),
        CibaState::Redeemed => Err(Error::invalid_grant("auth_req_id was already redeemed")),
        // CIBA Core §7.3, §11: once `expires_in` has passed the auth_req_id is
        // spent, even when the user approved in time but the client came late.
        CibaState::Approved if request.expires_at <= now => Err(Error::new(
            ErrorCode::ExpiredToken,
            "the request expired before the client redeemed it",
        )),
        CibaState::Approved => {
            // A bad narrowing must not use up the approval.
            let approved: Option<serde_json::Value> = request
                .authorization_details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok());
            crate::grants::narrowing::narrow(narrow_to, approved.as_ref(), client)?;
            let Some(redeemed) = state.store.redeem_ciba_request(&hash, client.client_id(), now).await? else {
                // Another poll redeemed it first (the expiry was checked above, at the same `now`).
                return Err(Error::invalid_grant("auth_req_id was already redeemed"));
            };
            let tokens = issue_tokens(
                state,
                client,
                &redeemed,
                None,
                Confirmation::of_request(possession),
                narrow_to,
            )
            .await?;
            audit(state, "ciba.redeemed", &redeemed, serde_json::json!({})).await;
            Ok(tokens)
        }
    }
}

fn expired() -> Error {
    Error::new(ErrorCode::ExpiredToken, "the request expired before the user answered")
}

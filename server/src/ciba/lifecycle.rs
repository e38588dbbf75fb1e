//! A CIBA request from start to redemption. Every transition is one conditional
//! update in the store, so two nodes, two devices or a device and the expiry
//! worker can never both move the same request.

use outband_protocol::{
    AuthReqId, BackchannelAuthenticationResponse, ClientId, DeliveryMode, ErrorCode, PingCallback, PushCallback,
    TokenResponse,
};
use serde_json::{json, Value};

use crate::ciba::request::{delivery_mode, CibaParams};
use crate::ciba::{delivery, hints};
use crate::error::{Error, Result};
use crate::events::{DeviceEvent, DeviceEventKind};
use crate::id_token::{issue_id_token, IdTokenClaims};
use crate::observability::{self, CibaOutcome};
use crate::state::AppState;
use crate::store::{
    AuditEvent, CibaDecision, CibaRequestRecord, CibaState, ClientRecord, NotificationKind, TestDecision, UserRecord,
};
use crate::tokens::{issue_user_tokens, random_token, AccessGrant, Confirmation, UserTokens};

/// Lifetime of a request when the client asks for none, in seconds.
pub const DEFAULT_EXPIRY: i64 = 120;
/// The longest lifetime a request gets, in seconds; a longer `requested_expiry` is cut to it.
pub const MAX_EXPIRY: i64 = 600;
/// Minimum seconds between two polls (CIBA §7.3), raised by 5 with each `slow_down`.
pub const POLL_INTERVAL: i64 = 5;
/// Pending requests one client may have at once; a till stuck in a loop must
/// not fill the database or the user's screen.
pub const MAX_PENDING_PER_CLIENT: i64 = 1000;
/// The `aud` of the request JWTs devices verify.
pub const DEVICE_AUDIENCE: &str = "urn:outband:device";
/// The `typ` of the request JWTs devices verify.
pub const REQUEST_JWT_TYPE: &str = "outband-ciba-request+jwt";

/// Tells the user's devices what happened to a request.
pub fn publish(state: &AppState, request: &CibaRequestRecord, kind: DeviceEventKind) {
    state.events.publish(DeviceEvent {
        subject: request.subject.clone(),
        kind,
        id: request.id.clone(),
        request_jwt: (kind == DeviceEventKind::Request).then(|| request.request_jwt.clone()),
        expires_at: request.expires_at,
    });
}

/// Records an audit event; a failure to write it is logged, never fatal.
pub async fn audit(state: &AppState, event: &str, request: &CibaRequestRecord, detail: Value) {
    let entry = AuditEvent {
        id: 0,
        at: state.now(),
        event: event.to_owned(),
        client_id: Some(request.client_id.to_string()),
        subject: Some(request.subject.to_string()),
        request_id: Some(request.id.clone()),
        detail,
    };
    if let Err(err) = state.store.append_audit(&entry).await {
        tracing::warn!(error = %err, "could not write the audit log");
    }
}

/// Starts a request: finds the user, records it pending, and (for test users in
/// development) answers it at once.
pub async fn start(
    state: &AppState,
    client: &ClientRecord,
    params: CibaParams,
) -> Result<BackchannelAuthenticationResponse> {
    let mode = delivery_mode(client)?;
    let user = hints::resolve(state, client, &params.hint).await?;
    check_user_code(client, &user, params.user_code.as_deref())?;
    // CIBA Core §7.1: `requested_expiry` is a wish; a longer one is cut to
    // MAX_EXPIRY, and `expires_in` tells the client what it got.
    let expires_in = params
        .requested_expiry
        .map_or(DEFAULT_EXPIRY, |requested| requested.min(MAX_EXPIRY));
    let now = state.now();
    if state
        .store
        .count_pending_ciba_requests_of_client(client.client_id(), now)
        .await?
        >= MAX_PENDING_PER_CLIENT
    {
        return Err(Error::new(
            ErrorCode::TemporarilyUnavailable,
            format!("this client already has {MAX_PENDING_PER_CLIENT} pending requests; cancel or wait for some"),
        )
        .with_status(http::StatusCode::TOO_MANY_REQUESTS));
    }
    let id = random_token();
    let auth_req_id = AuthReqId::new(random_token());
    let sealer = state.keys.sealer();
    let seal = |text: &str| sealer.seal(text.as_bytes()).map_err(Error::internal);
    let request_jwt = display_jwt(state, client, &user, &id, &params, now, now + expires_in)?;
    let number_match = client
        .metadata
        .number_matching
        .then(|| format!("{}", rand::Rng::gen_range(&mut rand::thread_rng(), 10..100)));
    let record = CibaRequestRecord {
        id,
        auth_req_id_hash: auth_req_id.hash(),
        auth_req_id_sealed: matches!(mode, DeliveryMode::Ping | DeliveryMode::Push)
            .then(|| seal(auth_req_id.secret()))
            .transpose()?,
        client_id: client.client_id().clone(),
        subject: user.subject.clone(),
        scope: params.scope,
        acr_values: params.acr_values,
        binding_message: params.binding_message,
        authorization_details: params.authorization_details.as_ref().map(Value::to_string),
        delivery_mode: mode,
        notification_token_sealed: params.client_notification_token.map(|t| seal(t.secret())).transpose()?,
        number_match: number_match.clone(),
        request_jwt,
        created_at: now,
        expires_at: now + expires_in,
        interval: POLL_INTERVAL,
        last_polled_at: None,
        state: CibaState::Pending,
        decided_at: None,
        device_id: None,
        amr: None,
        acr: None,
        deny_reason: None,
        redeemed_at: None,
    };
    crate::grant_management::record_intent(
        state,
        client.client_id(),
        params.grant_management.as_ref(),
        &record.subject,
        &format!("ciba:{}", record.id),
        record.expires_at,
    )
    .await?;
    state.store.insert_ciba_request(&record).await?;
    observability::ciba_request(mode, CibaOutcome::Started);
    audit(state, "ciba.requested", &record, json!({ "mode": mode.as_str() })).await;
    publish(state, &record, DeviceEventKind::Request);
    if let (true, Some(test)) = (state.settings.is_development(), user.test_decision) {
        let decision = CibaDecision {
            approve: test == TestDecision::Approve,
            device_id: None,
            amr: Some(json!(["test"]).to_string()),
            acr: None,
            deny_reason: (test == TestDecision::Deny).then(|| "test user denies".to_owned()),
        };
        decide(state, &record.id, &decision).await?;
    }
    Ok(BackchannelAuthenticationResponse {
        auth_req_id,
        expires_in: u64::try_from(expires_in).unwrap_or_default(),
        interval: (mode != DeliveryMode::Push).then_some(POLL_INTERVAL as u64),
        number_match,
    })
}

/// `user_code` (CIBA §7.1): required when the client registered for it.
fn check_user_code(client: &ClientRecord, user: &UserRecord, code: Option<&str>) -> Result<()> {
    if !client.metadata.backchannel_user_code_parameter {
        return Ok(());
    }
    let code = code.ok_or_else(|| Error::new(ErrorCode::MissingUserCode, "user_code is required for this client"))?;
    match &user.user_code_hash {
        Some(hash) if crate::password::verify(&outband_protocol::Password::new(code), hash) => Ok(()),
        _ => Err(Error::new(ErrorCode::InvalidUserCode, "user_code does not match")),
    }
}

/// The AS-signed JWT of what the user's devices show, so a device can verify it
/// and sign a hash of exactly what it displayed.
fn display_jwt(
    state: &AppState,
    client: &ClientRecord,
    user: &UserRecord,
    id: &str,
    params: &CibaParams,
    now: i64,
    exp: i64,
) -> Result<String> {
    let key = state
        .keys
        .signer(outband_protocol::SigningAlg::ES256)
        .ok_or_else(|| Error::internal("no ES256 signing key"))?;
    let claims = json!({
        "iss": state.settings.issuer,
        "aud": DEVICE_AUDIENCE,
        "sub": user.subject,
        "jti": id,
        "iat": now,
        "exp": exp,
        "client_id": client.client_id(),
        "client_name": client.metadata.display_name(),
        "binding_message": params.binding_message,
        "scope": params.scope,
        "acr_values": params.acr_values,
        "authorization_details": params.authorization_details,
        // The device must ask for the number the terminal shows (not the number itself).
        "number_matching": client.metadata.number_matching,
    });
    let Value::Object(map) = claims else {
        return Err(Error::internal("display claims are not an object"));
    };
    key.sign(Some(REQUEST_JWT_TYPE), &map)
        .map_err(|e| Error::internal(e.to_string()))
}

/// Number matching: an approval from a device must carry the number the
/// terminal showed, when the client asked for number matching. Denials need no
/// number (refusing must always be easy).
pub fn check_number_match(request: &CibaRequestRecord, approve: bool, presented: Option<&str>) -> Result<()> {
    match (&request.number_match, approve) {
        (Some(expected), true) => {
            let matches =
                presented.is_some_and(|p| subtle::ConstantTimeEq::ct_eq(p.as_bytes(), expected.as_bytes()).into());
            if matches {
                Ok(())
            } else {
                Err(Error::invalid_request(
                    "number_match does not match the number shown on the terminal",
                ))
            }
        }
        _ => Ok(()),
    }
}

/// Why a decision was not applied.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// Unknown request.
    #[error("no such request")]
    NotFound,
    /// Already decided, expired, cancelled or redeemed.
    #[error("the request is {0} and can no longer be decided")]
    NotPending(&'static str),
    /// The store or token issuance failed.
    #[error(transparent)]
    Failed(#[from] Error),
}

impl From<DecideError> for Error {
    fn from(err: DecideError) -> Self {
        match err {
            DecideError::NotFound => Error::new(ErrorCode::NotFound, "no such request"),
            DecideError::NotPending(_) => Error::new(ErrorCode::Conflict, err.to_string()),
            DecideError::Failed(inner) => inner,
        }
    }
}

impl From<crate::store::StoreError> for DecideError {
    fn from(err: crate::store::StoreError) -> Self {
        Self::Failed(err.into())
    }
}

/// Applies a decision exactly once, then sets in motion what the delivery mode asks.
pub async fn decide(
    state: &AppState,
    id: &str,
    decision: &CibaDecision,
) -> std::result::Result<CibaRequestRecord, DecideError> {
    let Some(record) = state.store.decide_ciba_request(id, decision, state.now()).await? else {
        return Err(match state.store.ciba_request(id).await? {
            None => DecideError::NotFound,
            Some(r) if r.state == CibaState::Pending => DecideError::NotPending("expired"),
            Some(r) => DecideError::NotPending(r.state.as_str()),
        });
    };
    let (event, outcome) = if decision.approve {
        ("ciba.approved", CibaOutcome::Approved)
    } else {
        ("ciba.denied", CibaOutcome::Denied)
    };
    observability::ciba_request(record.delivery_mode, outcome);
    audit(
        state,
        event,
        &record,
        json!({ "device_id": decision.device_id, "amr": decision.amr, "reason": decision.deny_reason }),
    )
    .await;
    publish(state, &record, DeviceEventKind::Decided);
    after_decision(state, &record).await?;
    Ok(record)
}

/// Ping and push notifications for a decided or expired request.
async fn after_decision(state: &AppState, record: &CibaRequestRecord) -> Result<()> {
    match record.delivery_mode {
        DeliveryMode::Poll => Ok(()),
        DeliveryMode::Ping => notify(state, record, NotificationKind::Ping).await,
        DeliveryMode::Push => notify(state, record, NotificationKind::Push).await,
    }
}

/// Marks due requests expired and tells push/ping clients. Returns how many expired.
/// How long after a decision its notification must be queued before the
/// sweep treats it as lost (the deciding node normally queues it within
/// milliseconds; the unique outbox index makes a race harmless anyway).
const LOST_AFTER: i64 = 15;
/// How far back the sweep looks: far less than the outbox's retention, so a
/// delivered-and-purged notification is never mistaken for a lost one.
const LOST_WITHIN: i64 = 3600;
/// Requests re-queued per sweep.
const SWEEP_LIMIT: u32 = 100;

/// Queues the ping/push notifications of requests decided or expired while no
/// notification was queued for them: the deciding node stopped in between
/// (`kill -9`, a lost database connection). Returns how many were re-queued.
pub async fn requeue_lost_notifications(state: &AppState) -> Result<usize> {
    let now = state.now();
    let lost = state
        .store
        .ciba_requests_missing_notification(now - LOST_WITHIN, now - LOST_AFTER, SWEEP_LIMIT)
        .await?;
    for record in &lost {
        tracing::warn!(request = %record.id, state = record.state.as_str(), "re-queueing a lost notification");
        let mut record = record.clone();
        if record.state == CibaState::Redeemed {
            // A push whose tokens were issued but never queued: issue them again.
            record.state = CibaState::Approved;
        }
        after_decision(state, &record).await?;
    }
    Ok(lost.len())
}

pub async fn expire_due(state: &AppState) -> Result<usize> {
    let expired = state.store.expire_ciba_requests(state.now()).await?;
    for record in &expired {
        observability::ciba_request(record.delivery_mode, CibaOutcome::Expired);
        audit(state, "ciba.expired", record, json!({})).await;
        publish(state, record, DeviceEventKind::Expired);
        after_decision(state, record).await?;
    }
    Ok(expired.len())
}

/// Cancels a pending request on behalf of the client that started it.
pub async fn cancel(state: &AppState, client_id: &ClientId, auth_req_id: &AuthReqId) -> Result<()> {
    let found = state.store.ciba_request_by_hash(&auth_req_id.hash()).await?;
    let record = found
        .filter(|r| r.client_id == *client_id)
        .ok_or_else(|| Error::invalid_grant("unknown auth_req_id"))?;
    match state
        .store
        .cancel_ciba_request(&record.id, client_id, state.now())
        .await?
    {
        Some(cancelled) => {
            observability::ciba_request(cancelled.delivery_mode, CibaOutcome::Cancelled);
            audit(state, "ciba.cancelled", &cancelled, json!({})).await;
            publish(state, &cancelled, DeviceEventKind::Withdrawn);
            Ok(())
        }
        None => Err(Error::new(
            ErrorCode::Conflict,
            format!("the request is {} and cannot be cancelled", record.state.as_str()),
        )
        .with_status(http::StatusCode::CONFLICT)),
    }
}

/// Issues the tokens of an approved request for `client`, with the
/// `authorization_details` narrowed to `narrow_to` when the token request asks
/// ([`crate::grants::narrowing`]); applies the request's grant intent.
pub async fn issue_tokens(
    state: &AppState,
    client: &ClientRecord,
    record: &CibaRequestRecord,
    push_auth_req_id: Option<&AuthReqId>,
    cnf: Confirmation,
    narrow_to: Option<&str>,
) -> Result<TokenResponse> {
    let user = state.store.user(&record.subject).await?;
    if user.as_ref().is_none_or(|u| u.locked) {
        return Err(Error::new(
            ErrorCode::AccessDenied,
            "the user can no longer be issued tokens",
        ));
    }
    let details: Option<Value> = record
        .authorization_details
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok());
    let grant_id = crate::grant_management::settle(
        state,
        &format!("ciba:{}", record.id),
        None,
        crate::grant_management::Approved {
            client_id: client.client_id(),
            subject: &record.subject,
            scope: &record.scope,
            authorization_details: details.as_ref(),
            // CIBA takes no `claims` parameter.
            userinfo_claims: &[],
        },
    )
    .await?;
    let details = crate::grants::narrowing::narrow(narrow_to, details.as_ref(), client)?;
    let token_type = cnf.token_type();
    let grant = AccessGrant {
        client,
        subject: Some(&record.subject),
        scope: &record.scope,
        authorization_details: details.as_ref(),
        grant_id: Some(&grant_id),
        cnf,
    };
    let UserTokens { access, refresh } = issue_user_tokens(state, grant, Some(&grant_id)).await?;
    let amr: Option<Value> = record.amr.as_deref().and_then(|a| serde_json::from_str(a).ok());
    let id_token = issue_id_token(
        state,
        IdTokenClaims {
            client,
            subject: &record.subject,
            auth_time: record.decided_at.unwrap_or(record.created_at),
            acr: record.acr.as_deref(),
            amr: amr.as_ref(),
            access_token: Some(&access.token),
            refresh_token: refresh.as_ref(),
            auth_req_id: push_auth_req_id,
            nonce: None,
        },
    )?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type,
        expires_in: u64::try_from(access.expires_in).ok(),
        refresh_token: refresh,
        scope: Some(record.scope.clone()),
        id_token: Some(id_token),
        authorization_details: details,
        grant_id: crate::grant_management::is_for(client).then_some(grant_id),
    })
}

/// Queues the ping or push notification for a request that left `pending`.
async fn notify(state: &AppState, record: &CibaRequestRecord, kind: NotificationKind) -> Result<()> {
    let sealer = state.keys.sealer();
    let open = |sealed: &Option<String>, what: &str| -> Result<String> {
        let sealed = sealed
            .as_deref()
            .ok_or_else(|| Error::internal(format!("{what} missing for a notification")))?;
        sealer.open_text(sealed).map_err(Error::internal)
    };
    let auth_req_id = AuthReqId::new(open(&record.auth_req_id_sealed, "auth_req_id")?);
    let client = state
        .client(&record.client_id)
        .await?
        .ok_or_else(|| Error::internal("the client of a CIBA request is gone"))?;
    let endpoint = client
        .metadata
        .backchannel_client_notification_endpoint
        .clone()
        .ok_or_else(|| Error::internal("ping/push client has no notification endpoint"))?;
    let body = match (kind, record.state) {
        (NotificationKind::Ping, _) => {
            serde_json::to_value(PingCallback { auth_req_id }).map_err(|e| Error::internal(e.to_string()))?
        }
        (NotificationKind::Push, CibaState::Approved) => {
            let tokens = match issue_tokens(
                state,
                &client,
                record,
                Some(&auth_req_id),
                Confirmation::default(),
                None,
            )
            .await
            {
                Ok(tokens) => PushCallback::Tokens {
                    auth_req_id: auth_req_id.clone(),
                    tokens,
                },
                Err(err) => PushCallback::Error {
                    auth_req_id: auth_req_id.clone(),
                    error: ErrorCode::TransactionFailed,
                    error_description: Some(err.to_string()),
                },
            };
            state.store.mark_redeemed(&record.id, state.now()).await?;
            serde_json::to_value(tokens).map_err(|e| Error::internal(e.to_string()))?
        }
        (NotificationKind::BackchannelLogout, _) => {
            return Err(Error::internal(
                "a CIBA request has no back-channel logout notification",
            ))
        }
        (NotificationKind::Push, other) => {
            let error = if other == CibaState::Expired {
                ErrorCode::ExpiredToken
            } else {
                ErrorCode::AccessDenied
            };
            serde_json::to_value(PushCallback::Error {
                auth_req_id,
                error,
                error_description: None,
            })
            .map_err(|e| Error::internal(e.to_string()))?
        }
    };
    delivery::enqueue(
        state,
        record,
        kind,
        endpoint.as_str(),
        &open(&record.notification_token_sealed, "client_notification_token")?,
        &body,
    )
    .await
}

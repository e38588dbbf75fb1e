//! The steps of the authorization code flow in the browser:
//! `/authorize` → login page → consent page → redirect with `code`, `state`
//! and `iss` ([RFC 9207](https://www.rfc-editor.org/rfc/rfc9207)).
//!
//! The validated request lives in an interaction row between the pages; its id
//! and CSRF token travel in the forms, and it only works from the browser that
//! started it (`outband_browser` cookie). The decision ends the interaction in
//! one statement, so a double click issues one code.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use outband_protocol::{ErrorCode, Password};

use crate::acr::Level;
use crate::authorize::browser::{self, LoginOutcome, INTERACTION_LIFETIME};
use crate::authorize::hybrid;
use crate::authorize::pages::{self, ClientInfo, ConsentForm, LoginForm};
use crate::authorize::request::{self, AuthorizationRequest, Params, Rejection, REQUEST_URI_PREFIX};
use crate::authorize::request_object;
use crate::authorize::response::{self, ResponseTarget};
use crate::claims::CodeClaims;
use crate::error::{Error, Result};
use crate::profile::Policy;
use crate::state::AppState;
use crate::store::{AuthorizationCodeRecord, ClientRecord, InteractionRecord};
use crate::tokens::random_token;

/// How long an authorization code lives, in seconds.
pub const CODE_LIFETIME: i64 = 60;

/// An error response to the client at its redirect URI.
fn redirect_error(state: &AppState, redirect_uri: &str, client_state: Option<&str>, error: &Error) -> Response {
    response::error(state, &ResponseTarget::query(redirect_uri), client_state, error)
}

/// The response for a refused request.
pub fn reject(state: &AppState, rejection: Rejection) -> Response {
    match rejection {
        Rejection::Page(message) => pages::error(StatusCode::BAD_REQUEST, &message),
        Rejection::Redirect {
            redirect_uri,
            state: client_state,
            error,
        } => redirect_error(state, &redirect_uri, client_state.as_deref(), &error),
        Rejection::Respond {
            target,
            state: client_state,
            error,
        } => response::error(state, &target, client_state.as_deref(), &error),
        Rejection::Internal(error) => (*error).into_response(),
    }
}

/// The parameters to work on: those pushed to `/par` when `request_uri` is sent
/// (used up here, RFC 9126 §4), else those of the signed `request` object, else
/// the request's own; the client or its profile may require them pushed.
async fn effective_params(state: &AppState, client: &ClientRecord, params: Params) -> Result<Params, Rejection> {
    if let Some(uri) = params.get("request_uri") {
        // Errors about the request_uri go to the client like other request
        // object errors (RFC 9101 §6.2, OpenID Connect Core §6.2), when the
        // redirect_uri beside it is registered.
        let Some(random) = uri.strip_prefix(REQUEST_URI_PREFIX) else {
            // Discovery says `request_uri_parameter_supported: false`: only pushed requests are accepted.
            let error = Error::new(
                ErrorCode::RequestUriNotSupported,
                "this server does not fetch request objects by reference; push the request to /par instead",
            );
            return Err(outer_rejection(&params, client, error));
        };
        let stored = state
            .store
            .take_pushed_request(&browser::hash(random), client.client_id(), state.now())
            .await
            .map_err(Error::from)?;
        let Some(stored) = stored else {
            // RFC 9126 §4: an expired request_uri is rejected as invalid; so is
            // an unknown one, one of another client, or one already used (§7.3).
            let error = Error::new(
                ErrorCode::InvalidRequestUri,
                "the request_uri is unknown, expired, already used or was issued to another client",
            );
            return Err(outer_rejection(&params, client, error));
        };
        return serde_json::from_str(&stored).map_err(|e| Rejection::from(Error::internal(e.to_string())));
    }
    let signed = params.contains_key("request");
    let params = match params.get("request") {
        Some(jwt) => match request_object::parameters(state, client, jwt).await {
            Ok(inner) => inner,
            Err(error) => return Err(outer_rejection(&params, client, error)),
        },
        None => params,
    };
    let policy = Policy::of(client.metadata.profile);
    if client.metadata.require_pushed_authorization_requests || policy.requires_par() {
        // Validated first, so the error goes only to a registered redirect URI.
        let checked = request::validate(&params, client, false)?;
        return Err(checked.refuse(
            client,
            Error::invalid_request(
                "this client must push its authorization requests to the pushed_authorization_request_endpoint first",
            ),
        ));
    }
    if !signed && policy.requires_signed_request_object() {
        let checked = request::validate(&params, client, false)?;
        return Err(checked.refuse(
            client,
            Error::invalid_request(
                "this client must send its authorization request as a signed request object (request)",
            ),
        ));
    }
    Ok(params)
}

/// A bad request object or `request_uri`: reported at the redirect URI beside
/// it when that is registered, else on a page (the object's own cannot be trusted).
fn outer_rejection(params: &Params, client: &ClientRecord, error: Error) -> Rejection {
    match params.get("redirect_uri") {
        Some(uri) if request::registered_redirect_uri(client, uri) => Rejection::Respond {
            target: Box::new(ResponseTarget::new(client, uri, response::error_mode(params))),
            state: params.get("state").cloned(),
            error: Box::new(error),
        },
        _ => match error {
            Error::OAuth { description, .. } => Rejection::Page(description),
            other => Rejection::from(other),
        },
    }
}

/// `GET`/`POST /authorize`: validates the request, then shows the login page,
/// or the consent page when the browser has a login session that satisfies
/// `prompt` and `max_age`.
pub async fn start(state: &AppState, headers: &HeaderMap, params: Params) -> Result<Response, Rejection> {
    let Some(client_id) = params.get("client_id") else {
        return Err(Rejection::Page("The application sent no client_id.".into()));
    };
    let client = state
        .client(&outband_protocol::ClientId::new(client_id.as_str()))
        .await
        .map_err(Error::from)?
        .ok_or(Rejection::Page("The application is not registered here.".into()))?;
    // `effective_params` accepts a `request_uri` only when it names a pushed request.
    let pushed = params.contains_key("request_uri");
    let params = effective_params(state, &client, params).await?;
    let mut request = request::validate(&params, &client, pushed)?;
    // The browser signs users in with a password only: an essential acr it
    // cannot reach fails at once (OpenID Connect Core §5.5.1.1), not after the login.
    if let Err(error) = browser_acr(&request) {
        return Err(request.refuse(&client, error));
    }
    if let Err(error) =
        crate::grant_management::check(state, client.client_id(), request.grant_management.as_ref(), None).await
    {
        return Err(request.refuse(&client, error));
    }
    match crate::consents::authorize::check(state, &client, &params, &request.scope).await {
        Ok(consent) => request.consent = consent,
        Err(error @ Error::OAuth { .. }) => return Err(request.refuse(&client, error)),
        Err(error) => return Err(error.into()),
    }
    if request.consent.is_some() && request.grant_management.as_ref().is_some_and(|g| g.grant_id.is_some()) {
        // A consent binds the grant it creates; merging it into (or replacing)
        // a grant that may carry another consent would make one grant answer
        // for two consents.
        let error = Error::invalid_request("a request naming a consent must create a new grant (no grant_id)");
        return Err(request.refuse(&client, error));
    }
    if let Some(hint) = params.get("id_token_hint") {
        match crate::account::logout::verify_hint(state, hint) {
            Ok((subject, audiences)) if audiences.iter().any(|a| a == client.client_id().as_str()) => {
                request.hinted_subject = Some(subject);
            }
            _ => {
                let error =
                    Error::invalid_request("id_token_hint is not an ID token this server issued to this client");
                return Err(request.refuse(&client, error));
            }
        }
    }
    // OpenID Connect Core §5.5.1: a requested `sub` value, like a hint, names the only user to answer for.
    if let Some(sub) = request.claims.as_ref().and_then(|c| c.sub_value()) {
        let sub = outband_protocol::Subject::new(sub);
        if request.hinted_subject.as_ref().is_some_and(|hinted| hinted != &sub) {
            let error = Error::invalid_request("claims.id_token.sub.value names another user than the id_token_hint");
            return Err(request.refuse(&client, error));
        }
        request.hinted_subject = Some(sub);
    }
    let now = state.now();
    let session = browser::current_session(state, headers).await?;
    // A session of another user than the hinted one does not count: that user must sign in.
    let session = session.filter(|(s, _)| {
        !request.prompt.login
            && request.max_age.is_none_or(|max| now - s.auth_time <= max)
            && request
                .hinted_subject
                .as_ref()
                .is_none_or(|hinted| hinted == &s.subject)
    });
    if request.prompt.none {
        // Remembered consent: a grant of this user already covers the request.
        // Never for what the user must approve each time: a lodging-intent
        // consent, or a payment (a new grant would let it be executed again).
        let one_off = request.consent.is_some() || request.authorization_details.as_ref().is_some_and(has_payment);
        if let Some((session, _)) = session.as_ref().filter(|_| !one_off) {
            let remembered = crate::grant_management::consent::is_remembered(
                state,
                client.client_id(),
                &session.subject,
                &request.scope,
                request.authorization_details.as_ref(),
                request.grant_management.as_ref(),
            )
            .await?;
            if remembered {
                let target = request.response_target(&client);
                return Ok(issue_code(
                    state,
                    &client,
                    &request,
                    &target,
                    session.subject.clone(),
                    session.auth_time,
                    Some(session),
                )
                .await?);
            }
        }
        let (code, description) = if session.is_none() {
            (ErrorCode::LoginRequired, "the user is not logged in")
        } else {
            (ErrorCode::ConsentRequired, "the user has not yet approved this request")
        };
        return Err(request.refuse(&client, Error::new(code, description)));
    }
    let (browser_id, set_browser) = browser::browser_id(state, headers)?;
    let (id, csrf) = (random_token(), random_token());
    let request_json = serde_json::to_string(&request).map_err(|e| Error::internal(e.to_string()))?;
    state
        .store
        .insert_interaction(&InteractionRecord {
            id_hash: browser::hash(&id),
            browser_hash: browser::hash(&browser_id),
            csrf_hash: browser::hash(&csrf),
            client_id: client.client_id().clone(),
            request: request_json,
            subject: session.as_ref().map(|(s, _)| s.subject.clone()),
            auth_time: session.as_ref().map(|(s, _)| s.auth_time),
            created_at: now,
            expires_at: now + INTERACTION_LIFETIME,
        })
        .await
        .map_err(Error::from)?;
    let mut response = match &session {
        Some((_, user)) => consent_response(&client, &request, &user.username, &id, &csrf),
        None => pages::login(
            StatusCode::OK,
            &LoginForm {
                client: ClientInfo::of(&client.metadata),
                interaction: &id,
                csrf: &csrf,
                username: request.login_hint.as_deref(),
                error: None,
            },
        ),
    };
    if let Some(cookie) = set_browser {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

fn consent_response(
    client: &ClientRecord,
    request: &AuthorizationRequest,
    username: &str,
    id: &str,
    csrf: &str,
) -> Response {
    let mut response = pages::consent(&ConsentForm {
        client: ClientInfo::of(&client.metadata),
        username,
        scopes: request.scope.iter().collect(),
        authorization_details: request.authorization_details.as_ref(),
        consent: request.consent.as_ref().map(|c| c.shown.as_str()),
        interaction: id,
        csrf,
    });
    // The decision's POST is answered with a redirect to the client.
    pages::allow_form_target(&mut response, &request.redirect_uri);
    response
}

/// The interaction a form or link names, when it is live and this browser's
/// (and, for forms, the CSRF token matches).
async fn interaction(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    csrf_required: bool,
) -> Result<Option<InteractionRecord>> {
    let Some(id) = params.get("interaction") else {
        return Ok(None);
    };
    let Some(record) = state.store.interaction(&browser::hash(id), state.now()).await? else {
        return Ok(None);
    };
    let same_browser =
        browser::cookie(headers, browser::BROWSER_COOKIE).is_some_and(|b| browser::matches(&b, &record.browser_hash));
    let csrf_ok = !csrf_required
        || params
            .get("csrf")
            .is_some_and(|c| browser::matches(c, &record.csrf_hash));
    Ok((same_browser && csrf_ok).then_some(record))
}

fn stale_form() -> Response {
    pages::error(
        StatusCode::BAD_REQUEST,
        "This page has expired or was not opened in this browser.",
    )
}

fn stored_request(record: &InteractionRecord) -> Result<AuthorizationRequest> {
    serde_json::from_str(&record.request).map_err(|e| Error::internal(format!("stored interaction: {e}")))
}

/// `POST /authorize/login`: checks the password; on success starts a login
/// session and sends the browser on to the consent page.
pub async fn login(state: &AppState, headers: &HeaderMap, address: &str, form: Params) -> Result<Response> {
    let Some(record) = interaction(state, headers, &form, true).await? else {
        return Ok(stale_form());
    };
    let client = state.client(&record.client_id).await?;
    let client_info = client
        .as_ref()
        .map_or(ClientInfo::named(record.client_id.as_str()), |c| {
            ClientInfo::of(&c.metadata)
        });
    let (Some(id), Some(csrf)) = (form.get("interaction"), form.get("csrf")) else {
        return Ok(stale_form());
    };
    let username = form.get("username").map(String::as_str);
    let page = |status, error| {
        pages::login(
            status,
            &LoginForm {
                client: client_info,
                interaction: id,
                csrf,
                username,
                error: Some(error),
            },
        )
    };
    let (Some(username), Some(password)) = (username, form.get("password")) else {
        return Ok(page(StatusCode::OK, "Enter your username and password."));
    };
    let user = match browser::check_login(state, username, Password::new(password.as_str()), address).await? {
        LoginOutcome::Success(user) => user,
        LoginOutcome::Failed => return Ok(page(StatusCode::OK, "Wrong username or password.")),
        LoginOutcome::Throttled => {
            return Ok(page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed attempts. Wait 15 minutes and try again.",
            ))
        }
    };
    let now = state.now();
    let session_cookie = browser::start_session(state, headers, &user.subject, now).await?;
    if !state
        .store
        .set_interaction_user(&record.id_hash, &user.subject, now)
        .await?
    {
        return Ok(stale_form());
    }
    let location = HeaderValue::from_str(&format!("/authorize/consent?interaction={id}"))
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location), (header::SET_COOKIE, session_cookie)],
    )
        .into_response())
}

/// `GET /authorize/consent`: the consent page of a logged-in interaction.
pub async fn consent_page(state: &AppState, headers: &HeaderMap, query: Params) -> Result<Response> {
    let Some(record) = interaction(state, headers, &query, false).await? else {
        return Ok(stale_form());
    };
    let (Some(subject), Some(id)) = (record.subject.as_ref(), query.get("interaction")) else {
        return Ok(stale_form());
    };
    let (Some(client), Some(user)) = (state.client(&record.client_id).await?, state.store.user(subject).await?) else {
        return Ok(stale_form());
    };
    // Only the CSRF token's hash is kept, so this page gets a fresh one.
    let request = stored_request(&record)?;
    let csrf = random_token();
    if !state
        .store
        .set_interaction_csrf(&record.id_hash, &browser::hash(&csrf))
        .await?
    {
        return Ok(stale_form());
    }
    Ok(consent_response(&client, &request, &user.username, id, &csrf))
}

/// `POST /authorize/consent`: the user's decision; redirects to the client with
/// a code or `access_denied`.
pub async fn decide(state: &AppState, headers: &HeaderMap, form: Params) -> Result<Response> {
    let Some(record) = interaction(state, headers, &form, true).await? else {
        return Ok(stale_form());
    };
    let (Some(subject), Some(auth_time)) = (record.subject.clone(), record.auth_time) else {
        return Ok(stale_form());
    };
    if !state.store.finish_interaction(&record.id_hash).await? {
        return Ok(stale_form());
    }
    let request = stored_request(&record)?;
    let Some(client) = state.client(&request.client_id).await? else {
        return Ok(stale_form());
    };
    let target = request.response_target(&client);
    let approved = form.get("decision").map(String::as_str) == Some("approve");
    let user_ok = state.store.user(&subject).await?.is_some_and(|u| !u.locked);
    if !approved || !user_ok {
        if let Some(consent) = &request.consent {
            crate::consents::authorize::decide(state, consent, &subject, "", false).await?;
        }
        let error = Error::new(ErrorCode::AccessDenied, "the user denied the request");
        return Ok(response::error(state, &target, request.state.as_deref(), &error));
    }
    // The browser session the user signed in with (its `sid` goes in the ID token).
    let session = browser::current_session(state, headers)
        .await?
        .map(|(session, _)| session)
        .filter(|session| session.subject == subject);
    issue_code(state, &client, &request, &target, subject, auth_time, session.as_ref()).await
}

/// Issues the code of an approved request (after the consent page, or at once
/// when a grant already covers it) and sends it to the client.
async fn issue_code(
    state: &AppState,
    client: &ClientRecord,
    request: &AuthorizationRequest,
    target: &ResponseTarget,
    subject: outband_protocol::Subject,
    auth_time: i64,
    session: Option<&crate::store::BrowserSessionRecord>,
) -> Result<Response> {
    if request.hinted_subject.as_ref().is_some_and(|hinted| hinted != &subject) {
        // OpenID Connect Core §3.1.2.1, §5.5.1: the hinted user is not the one who signed in.
        let error = Error::new(
            ErrorCode::LoginRequired,
            "the user who signed in is not the one the id_token_hint or claims.id_token.sub names",
        );
        return Ok(response::error(state, target, request.state.as_deref(), &error));
    }
    let acr = match browser_acr(request) {
        Ok(acr) => acr,
        Err(error) => return Ok(response::error(state, target, request.state.as_deref(), &error)),
    };
    let claims = CodeClaims {
        acr,
        request: request.claims.clone().unwrap_or_default(),
    };
    let code = random_token();
    let code_hash = browser::hash(&code);
    let expires_at = state.now() + CODE_LIFETIME;
    let grant_id = match crate::grant_management::record_intent(
        state,
        &request.client_id,
        request.grant_management.as_ref(),
        &subject,
        &format!("code:{code_hash}"),
        expires_at,
    )
    .await
    {
        Ok(grant_id) => grant_id,
        Err(error @ (Error::OAuth { .. } | Error::Detailed { .. })) => {
            return Ok(response::error(state, target, request.state.as_deref(), &error))
        }
        Err(other) => return Err(other),
    };
    if let Some(consent) = &request.consent {
        if !crate::consents::authorize::decide(state, consent, &subject, &grant_id, true).await? {
            let error = Error::new(
                ErrorCode::AccessDenied,
                "the consent can no longer be authorised: it expired or was withdrawn",
            );
            return Ok(response::error(state, target, request.state.as_deref(), &error));
        }
    }
    // OpenID Connect Back-/Front-Channel Logout: the session's clients.
    let sid = session.and_then(|s| s.sid.as_deref());
    if let (Some(session), Some(sid)) = (session, sid) {
        if request.scope.contains("openid") {
            crate::account::backchannel::record_client(
                state,
                sid,
                &request.client_id,
                &subject,
                &grant_id,
                &request.scope,
                session.expires_at,
            )
            .await?;
        }
    }
    state
        .store
        .insert_authorization_code(&AuthorizationCodeRecord {
            code_hash,
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            subject: subject.clone(),
            scope: request.scope.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.as_ref().map(|(c, _)| c.clone()),
            code_challenge_method: request.code_challenge.as_ref().map(|(_, m)| m.as_str().to_owned()),
            authorization_details: request.authorization_details.as_ref().map(ToString::to_string),
            auth_time,
            grant_id,
            expires_at,
            used: false,
            dpop_jkt: request.dpop_jkt.clone(),
            sid: sid.map(str::to_owned),
            claims: claims.to_stored(),
        })
        .await?;
    let mut params = vec![("code", code.clone())];
    if request.response_type.has_id_token() {
        let id_token = hybrid::front_channel_id_token(
            state,
            client,
            request,
            &code,
            &subject,
            auth_time,
            claims.acr.as_deref(),
            sid,
        )?;
        params.push(("id_token", id_token));
    }
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(response::deliver(state, target, &params, request.state.as_deref()))
}

/// The `acr` of a browser sign-in (a password, [`Level::Password`]) for
/// `request`: `None` when it asks for none; `access_denied` when it insists on
/// one a password cannot reach ([`crate::claims::acr_for`]).
fn browser_acr(request: &AuthorizationRequest) -> Result<Option<String>> {
    crate::claims::acr_for(Level::Password, request.acr_values.as_deref(), request.claims.as_ref())
}

/// Whether `details` carry a `payment_initiation` (a one-off approval).
fn has_payment(details: &serde_json::Value) -> bool {
    details.as_array().is_some_and(|list| {
        list.iter()
            .any(|d| d.get("type").and_then(serde_json::Value::as_str) == Some("payment_initiation"))
    })
}

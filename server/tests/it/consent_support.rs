//! Test support for the consent API (lodging intent): a web client that may
//! also use client credentials with scope `consents`, and calls of the API.

use axum::body::Body;
use axum::http::{header, Request};
use outband_protocol::{GrantType, Profile, Scope};
use serde_json::{json, Value};

use crate::browser_support::WEB;
use crate::support::{Reply, TestServer};

/// The consent API.
pub const CONSENTS: &str = "/open-banking/consents";

/// A payment consent's body.
pub fn payment_body(amount: &str) -> Value {
    json!({"data": {"payment": {
        "instructedAmount": {"currency": "EUR", "amount": amount},
        "creditorName": "Demo Shop",
        "creditorAccount": {"iban": "DE89370400440532013000"},
        "remittanceInformationUnstructured": "REF-C1",
    }}})
}

/// The payment a consent of [`payment_body`] allows, as `POST /api/payments` takes it.
pub fn payment(amount: &str) -> Value {
    payment_body(amount)["data"]["payment"].clone()
}

/// An accounts consent's body.
pub fn accounts_body(permissions: &[&str]) -> Value {
    json!({"data": {"permissions": permissions, "loggedUser": {"document": {"identification": "11111111111", "rel": "CPF"}}}})
}

impl TestServer {
    /// Registers `id` (secret `{id}-secret`) as [`WEB`] is, plus client credentials
    /// and the scopes `consents` and `accounts`.
    pub async fn add_consent_client(&self, id: &str) {
        self.add_web_client(id, Profile::Oidc, |meta| {
            meta.scope = Scope::new("openid profile payments accounts consents");
            meta.grant_types.push(GrantType::ClientCredentials);
        })
        .await;
    }

    /// A client-credentials token of `id` with `scope`.
    pub async fn client_token(&self, id: &str, scope: &str) -> String {
        let secret = format!("{id}-secret");
        let reply = self
            .post_form(
                "/token",
                &format!("grant_type=client_credentials&scope={scope}"),
                Some((id, &secret)),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json["access_token"].as_str().unwrap().to_owned()
    }

    /// `method path` with a Bearer token and an optional JSON body.
    pub async fn bearer(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    /// Creates a consent of [`WEB`]-like client `id`; returns its id.
    pub async fn create_consent(&self, id: &str, body: &Value) -> String {
        let token = self.client_token(id, "consents").await;
        let reply = self.bearer("POST", CONSENTS, &token, Some(body), &[]).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.json["data"]["consentId"].as_str().unwrap().to_owned()
    }

    /// The consent `consent_id` as its client `id` reads it.
    pub async fn read_consent(&self, id: &str, consent_id: &str) -> Value {
        let token = self.client_token(id, "consents").await;
        let reply = self.bearer("GET", &consent_path(consent_id), &token, None, &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json["data"].clone()
    }
}

/// The path of one consent.
pub fn consent_path(consent_id: &str) -> String {
    format!("{CONSENTS}/{consent_id}")
}

/// The UK Open Banking `claims` parameter naming `consent_id`.
pub fn intent_claims(consent_id: &str) -> String {
    json!({"id_token": {"openbanking_intent_id": {"value": consent_id, "essential": true}}}).to_string()
}

/// The default web client, for tests that need only one.
pub const CLIENT: &str = WEB;

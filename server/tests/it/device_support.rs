//! Test support for the device channel: an authenticator in a struct (its key,
//! credential, token and the last server nonce), DPoP proofs and decision JWTs,
//! and a reader for Server-Sent Events.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request};
use http_body_util::BodyExt;
use josekit::jws::JwsHeader;
use outband_protocol::jose::{sha256_b64url, SigningKey};
use outband_protocol::SigningAlg;
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use crate::support::{Reply, TestServer, ISSUER};

/// A fresh device key.
pub fn device_key(alg: SigningAlg) -> SigningKey {
    SigningKey::from_private_jwk(&alg.generate_private_jwk().unwrap(), alg).unwrap()
}

/// `key`'s public JWK as JSON.
pub fn public_jwk(key: &SigningKey) -> Value {
    Value::Object(key.public_jwk().as_ref().clone())
}

/// Claims with `overrides` applied (a `null` removes the claim).
pub fn with_overrides(mut claims: Value, overrides: &Value) -> Map<String, Value> {
    if let Some(map) = overrides.as_object() {
        for (k, v) in map {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
    }
    claims.as_object().unwrap().clone()
}

/// A DPoP proof for `method` on `path` of the test issuer.
pub fn proof(
    key: &SigningKey,
    now: i64,
    method: &str,
    path: &str,
    token: Option<&str>,
    nonce: Option<&str>,
    overrides: &Value,
) -> String {
    let mut claims = json!({
        "htm": method,
        "htu": format!("{ISSUER}{path}"),
        "iat": now,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    if let Some(token) = token {
        claims["ath"] = json!(sha256_b64url(token.as_bytes()));
    }
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    let mut header = JwsHeader::new();
    header.set_token_type("dpop+jwt");
    header.set_jwk(key.public_jwk().clone());
    key.sign_with_header(header, &with_overrides(claims, overrides))
        .unwrap()
}

/// An enrolled device.
pub struct Device {
    pub key: SigningKey,
    pub id: String,
    pub credential: String,
    pub subject: String,
    pub token: Option<String>,
    pub nonce: Option<String>,
}

impl TestServer {
    /// Makes an activation code for `username` (as `users invite` does); returns the code.
    pub async fn invite(&self, username: &str, ttl: i64) -> String {
        let user = self.state.store.user_by_login_hint(username).await.unwrap().unwrap();
        let invitation = outband_server::device::enroll::invite(
            &self.state.store,
            &self.state.keys,
            ISSUER,
            &user.subject,
            ttl,
            self.state.now(),
        )
        .await
        .unwrap();
        invitation.code.secret().to_owned()
    }

    /// `POST /device/v1/enroll`.
    pub async fn enroll(&self, code: &str, jwk: Value, name: &str) -> Reply {
        let body = json!({ "activation_code": code, "public_jwk": jwk, "name": name });
        self.send(
            Request::post("/device/v1/enroll")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    /// Enrolls a fresh ES256 device for `username` and gets it a token.
    pub async fn enrolled_device(&self, username: &str) -> Device {
        let code = self.invite(username, 600).await;
        let key = device_key(SigningAlg::ES256);
        let reply = self
            .enroll(&code, public_jwk(&key), &format!("{username}'s laptop"))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let mut device = Device {
            key,
            id: reply.json["device_id"].as_str().unwrap().to_owned(),
            credential: reply.json["device_credential"].as_str().unwrap().to_owned(),
            subject: reply.json["subject"].as_str().unwrap().to_owned(),
            token: None,
            nonce: nonce_of(&reply),
        };
        let reply = device.fetch_token(self).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        device
    }
}

/// The `DPoP-Nonce` of a reply.
pub fn nonce_of(reply: &Reply) -> Option<String> {
    reply.headers.get("dpop-nonce").map(|v| v.to_str().unwrap().to_owned())
}

/// `POST /device/v1/token` with a JSON body and the given proof (or none).
pub async fn token_request(server: &TestServer, credential: &str, proof: Option<&str>) -> Reply {
    let mut request = Request::post("/device/v1/token").header(header::CONTENT_TYPE, "application/json");
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let body = json!({ "device_credential": credential }).to_string();
    server.send(request.body(Body::from(body)).unwrap()).await
}

impl Device {
    /// A proof by this device's key with its last nonce.
    pub fn proof(&self, server: &TestServer, method: &str, path: &str, overrides: &Value) -> String {
        proof(
            &self.key,
            server.state.now(),
            method,
            path,
            self.token.as_deref(),
            self.nonce.as_deref(),
            overrides,
        )
    }

    fn remember_nonce(&mut self, reply: &Reply) {
        if let Some(nonce) = nonce_of(reply) {
            self.nonce = Some(nonce);
        }
    }

    /// Gets a new access token (keeps it and the nonce).
    pub async fn fetch_token(&mut self, server: &TestServer) -> Reply {
        let proof = proof(
            &self.key,
            server.state.now(),
            "POST",
            "/device/v1/token",
            None,
            self.nonce.as_deref(),
            &json!({}),
        );
        let reply = token_request(server, &self.credential, Some(&proof)).await;
        self.remember_nonce(&reply);
        if reply.status == 200 {
            self.token = Some(reply.json["access_token"].as_str().unwrap().to_owned());
        }
        reply
    }

    /// A device API request with `Authorization: DPoP` and a fresh proof.
    pub fn request(&self, server: &TestServer, method: Method, path: &str, body: Option<Value>) -> Request<Body> {
        let htu_path = path.split('?').next().unwrap();
        let proof = self.proof(server, method.as_str(), htu_path, &json!({}));
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(
                header::AUTHORIZATION,
                format!("DPoP {}", self.token.as_deref().unwrap()),
            )
            .header("DPoP", proof);
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        request.body(body).unwrap()
    }

    /// Sends a device API request and keeps the nonce it answers with.
    pub async fn call(&mut self, server: &TestServer, method: Method, path: &str, body: Option<Value>) -> Reply {
        let reply = server.send(self.request(server, method, path, body)).await;
        self.remember_nonce(&reply);
        reply
    }

    /// The pending list.
    pub async fn pending(&mut self, server: &TestServer) -> Vec<Value> {
        let reply = self
            .call(server, Method::GET, "/device/v1/requests?state=pending", None)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json["requests"].as_array().unwrap().clone()
    }

    /// A decision JWT signed by this device, with claims overridable.
    pub fn decision_jwt(&self, now: i64, decision: &str, id: &str, request_jwt: &str, overrides: &Value) -> String {
        let claims = json!({
            "decision": decision,
            "request_id": id,
            "request_hash": sha256_b64url(request_jwt.as_bytes()),
            "amr": ["hwk", "pin"],
            "iat": now,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        self.key
            .sign(Some("outband-decision+jwt"), &with_overrides(claims, overrides))
            .unwrap()
    }

    /// Posts a decision JWT for request `id`.
    pub async fn post_decision(&mut self, server: &TestServer, id: &str, decision_jwt: &str) -> Reply {
        let path = format!("/device/v1/requests/{id}/decision");
        self.call(
            server,
            Method::POST,
            &path,
            Some(json!({ "decision_jwt": decision_jwt })),
        )
        .await
    }

    /// Signs and posts a decision on a request as the device showed it.
    pub async fn decide(&mut self, server: &TestServer, id: &str, request_jwt: &str, decision: &str) -> Reply {
        let jwt = self.decision_jwt(server.state.now(), decision, id, request_jwt, &json!({}));
        self.post_decision(server, id, &jwt).await
    }

    /// Opens `GET /device/v1/events`; returns the status and, on 200, a reader.
    pub async fn events(&mut self, server: &TestServer) -> (u16, Option<SseReader>) {
        let request = self.request(server, Method::GET, "/device/v1/events", None);
        let response = outband_server::app(server.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        if let Some(nonce) = response.headers().get("dpop-nonce") {
            self.nonce = Some(nonce.to_str().unwrap().to_owned());
        }
        let status = response.status().as_u16();
        if status != 200 {
            return (status, None);
        }
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
        (
            status,
            Some(SseReader {
                body: response.into_body(),
                buffer: String::new(),
            }),
        )
    }
}

/// Reads Server-Sent Events from a response body.
pub struct SseReader {
    body: Body,
    buffer: String,
}

/// One event: its name and data.
#[derive(Debug)]
pub struct SseEvent {
    pub event: String,
    pub data: Value,
}

impl SseReader {
    /// The next event (comments skipped); panics after 5 s or at the end of the stream.
    pub async fn next(&mut self) -> SseEvent {
        self.try_next(Duration::from_secs(5))
            .await
            .expect("an event within 5 s")
            .expect("the stream is still open")
    }

    /// `Err` on timeout, `Ok(None)` at the end of the stream.
    pub async fn try_next(&mut self, wait: Duration) -> Result<Option<SseEvent>, ()> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = name.trim().to_owned();
                    } else if let Some(text) = line.strip_prefix("data:") {
                        data.push_str(text.trim_start());
                    }
                }
                if data.is_empty() && event == "message" {
                    continue; // a comment (keep-alive)
                }
                return Ok(Some(SseEvent {
                    event,
                    data: serde_json::from_str(&data).unwrap_or(Value::Null),
                }));
            }
            match tokio::time::timeout(wait, self.body.frame()).await {
                Err(_) => return Err(()),
                Ok(None) => return Ok(None),
                Ok(Some(frame)) => {
                    if let Ok(data) = frame.unwrap().into_data() {
                        self.buffer.push_str(&String::from_utf8_lossy(&data));
                    }
                }
            }
        }
    }
}

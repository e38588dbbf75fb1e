//! A CIBA client made of plain HTTP calls: what `outband-pos` does, with the
//! tokens in the test's hands (the POS never shows them), and DPoP proofs
//! ([RFC 9449](https://www.rfc-editor.org/rfc/rfc9449)) by keys the test
//! chooses, so it can play the thief with a stolen token.

use std::time::SystemTime;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use josekit::jwk::alg::ec::EcKeyPair;
use josekit::jwk::Jwk;
use josekit::jws::{JwsHeader, ES256};
use josekit::jwt::JwtPayload;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{CLIENT_SECRET, CUSTOMER_EMAIL};

/// The payee of every [`Till`] sale.
const PAYEE: &str = "Corner Café";
const IBAN: &str = "DE89370400440532013000";

/// An ES256 DPoP key.
pub struct DpopKey {
    pair: EcKeyPair,
}

impl DpopKey {
    /// A fresh key.
    pub fn generate() -> Self {
        Self {
            pair: ES256.generate_key_pair().expect("an ES256 key pair"),
        }
    }

    fn public(&self) -> Jwk {
        self.pair.to_jwk_public_key()
    }

    /// The RFC 7638 thumbprint: what a bound token's `cnf.jkt` names.
    pub fn thumbprint(&self) -> String {
        let public = self.public();
        let member = |name: &str| {
            public
                .parameter(name)
                .and_then(Value::as_str)
                .expect("an EC JWK member")
                .to_owned()
        };
        // Required members only, in lexicographic order, no whitespace.
        let canonical = json!({"crv": member("crv"), "kty": "EC", "x": member("x"), "y": member("y")}).to_string();
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// A proof for `method url`, with `ath` when it goes with an access token.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> String {
        let mut header = JwsHeader::new();
        header.set_token_type("dpop+jwt");
        header.set_jwk(self.public());
        let mut claims = JwtPayload::new();
        claims.set_jwt_id(uuid::Uuid::new_v4().to_string());
        claims.set_issued_at(&now());
        let mut set = |name: &str, value: Value| claims.set_claim(name, Some(value)).expect("a DPoP claim");
        set("htm", json!(method));
        set("htu", json!(url));
        if let Some(token) = access_token {
            set("ath", json!(URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))));
        }
        let signer = ES256
            .signer_from_jwk(&self.pair.to_jwk_private_key())
            .expect("an ES256 signer");
        josekit::jwt::encode_with_signer(&claims, &header, &signer).expect("signing a DPoP proof")
    }
}

/// The one reading of the system clock here: a DPoP proof's `iat` is the
/// real time, since the server checks it against its own clock.
#[allow(clippy::disallowed_methods)]
fn now() -> SystemTime {
    SystemTime::now()
}

/// How an access token is presented at `/api`.
pub enum Present<'a> {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: DPoP <token>` with a proof by this key.
    Dpop(&'a DpopKey),
}

/// A CIBA client (`client_secret_basic`, [`CLIENT_SECRET`]) at `issuer`.
pub struct Till {
    http: reqwest::Client,
    pub issuer: String,
    pub client_id: String,
}

impl Till {
    pub fn new(issuer: &str, client_id: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
        }
    }

    /// Starts `count` ping/push requests one after another (amounts
    /// `<n>.00`, with `digit` in front of the sale number, references
    /// `<prefix>-<n>`, each with its own notification token); returns their
    /// `auth_req_id`s.
    pub async fn start_notified(&self, count: usize, digit: u8, prefix: &str) -> Vec<String> {
        let mut ids = Vec::with_capacity(count);
        for n in 0..count {
            let amount = format!("{digit}{n}.00");
            let token = format!("bearer-{n}-0123456789");
            ids.push(self.start(&amount, &format!("{prefix}-{n}"), Some(&token)).await);
        }
        ids
    }

    /// `POST /bc-authorize` for a payment of `amount` EUR to [`CUSTOMER_EMAIL`]
    /// with merchant reference `reference`; returns the `auth_req_id`.
    pub async fn start(&self, amount: &str, reference: &str, notification_token: Option<&str>) -> String {
        let details = json!([{
            "type": "payment_initiation",
            "instructedAmount": {"currency": "EUR", "amount": amount},
            "creditorName": PAYEE,
            "creditorAccount": {"iban": IBAN},
            "remittanceInformationUnstructured": reference,
        }]);
        let binding_message = format!("{reference} {amount} EUR");
        let mut form = vec![
            ("scope", "openid payments".to_owned()),
            ("login_hint", CUSTOMER_EMAIL.to_owned()),
            ("binding_message", binding_message),
            ("authorization_details", details.to_string()),
        ];
        if let Some(token) = notification_token {
            form.push(("client_notification_token", token.to_owned()));
        }
        let (status, body) = self.post_form("/bc-authorize", &form, None).await;
        assert_eq!(status, 200, "bc-authorize: {body}");
        body["auth_req_id"].as_str().expect("an auth_req_id").to_owned()
    }

    /// One CIBA token request: the status and the JSON body.
    pub async fn token(&self, auth_req_id: &str, dpop: Option<&DpopKey>) -> (u16, Value) {
        let form = [
            ("grant_type", "urn:openid:params:grant-type:ciba".to_owned()),
            ("auth_req_id", auth_req_id.to_owned()),
        ];
        self.post_form("/token", &form, dpop).await
    }

    async fn post_form(&self, path: &str, form: &[(&str, String)], dpop: Option<&DpopKey>) -> (u16, Value) {
        let url = format!("{}{path}", self.issuer);
        let mut request = self
            .http
            .post(&url)
            .basic_auth(&self.client_id, Some(CLIENT_SECRET))
            .form(form);
        if let Some(key) = dpop {
            request = request.header("DPoP", key.proof("POST", &url, None));
        }
        read(request).await
    }

    /// `POST /api/payments` for the payment [`Till::start`] asked for.
    pub async fn pay(&self, access_token: &str, present: Present<'_>, amount: &str, reference: &str) -> (u16, Value) {
        let url = format!("{}/api/payments", self.issuer);
        let body = json!({
            "instructedAmount": {"currency": "EUR", "amount": amount},
            "creditorName": PAYEE,
            "creditorAccount": {"iban": IBAN},
            "remittanceInformationUnstructured": reference,
        });
        let mut request = self
            .http
            .post(&url)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(&body);
        request = match present {
            Present::Bearer => request.bearer_auth(access_token),
            Present::Dpop(key) => request
                .header("Authorization", format!("DPoP {access_token}"))
                .header("DPoP", key.proof("POST", &url, Some(access_token))),
        };
        read(request).await
    }
}

/// Sends `request`; the status and the body as JSON (or as a JSON string).
async fn read(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("an HTTP answer");
    let status = response.status().as_u16();
    let text = response.text().await.expect("the answer's body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The claims of a JWT, unverified (the test only reads what it was given).
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON claims")
}

//! Deciding: the user's answer as a JWT signed by the device key
//! (`typ: outband-decision+jwt`), bound to the exact request JWT that was shown
//! through `request_hash` (`docs/device-api.md` §6).

use outband_protocol::jose::sha256_b64url;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

use crate::api::random_id;
use crate::{keystore, Error, HistoryEntry, Pin, Session, VerifiedRequest};

/// The `typ` of decision JWTs.
const DECISION_JWT_TYPE: &str = "outband-decision+jwt";

/// What the user chose.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Yes, that is me.
    Approve,
    /// No.
    Deny,
    /// Not me: deny and report fraud.
    DenyFraud,
}

impl Decision {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
            Self::DenyFraud => "deny_fraud",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Decision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "approve" => Ok(Self::Approve),
            "deny" => Ok(Self::Deny),
            "deny_fraud" => Ok(Self::DenyFraud),
            other => Err(format!("unknown decision {other:?}: use approve, deny or deny_fraud")),
        }
    }
}

/// The server's answer to a decision.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DecisionOutcome {
    /// The request.
    pub id: String,
    /// `approved` or `denied`.
    pub state: String,
}

impl Session {
    /// Sign and post the decision. Approve needs `pin` (re-verified against the sealed key; amr ["hwk","pin"]) and,
    /// when request.number_matching, `number_match`; deny/deny_fraud take pin optionally (amr ["hwk"] without).
    /// Checks expiry locally first (Error::RequestExpired). Appends a HistoryEntry (also for 409 outcomes).
    pub async fn decide(
        &self,
        request: &VerifiedRequest,
        decision: Decision,
        pin: Option<&Pin>,
        number_match: Option<&str>,
    ) -> Result<DecisionOutcome, Error> {
        if request.account != self.account().id {
            return Err(Error::UnknownAccount(format!(
                "request {} is for account {}, not {}",
                request.id,
                request.account,
                self.account().id
            )));
        }
        if self.account().revoked {
            return Err(Error::Revoked);
        }
        if request.expires_at <= self.now() {
            return Err(Error::RequestExpired);
        }
        let number_match = number_match.map(str::trim).filter(|n| !n.is_empty());
        if decision == Decision::Approve {
            if pin.is_none() {
                return Err(Error::PinRequired);
            }
            if request.number_matching && number_match.is_none() {
                return Err(Error::NumberMatchRequired);
            }
        }
        if let Some(pin) = pin {
            let (sealed, pin, id) = (self.sealed().to_owned(), pin.clone(), self.account().id.clone());
            tokio::task::spawn_blocking(move || keystore::unseal(&sealed, &pin, &id))
                .await
                .map_err(|e| Error::storage("checking the PIN", e))??;
        }
        let amr = if pin.is_some() {
            json!(["hwk", "pin"])
        } else {
            json!(["hwk"])
        };
        let mut claims = Map::new();
        claims.insert("decision".into(), json!(decision.as_str()));
        claims.insert("request_id".into(), json!(request.id));
        claims.insert(
            "request_hash".into(),
            json!(sha256_b64url(request.request_jwt.as_bytes())),
        );
        claims.insert("amr".into(), amr);
        claims.insert("iat".into(), json!(self.now()));
        claims.insert("jti".into(), json!(random_id()));
        if let (Some(number), true) = (number_match, request.number_matching) {
            claims.insert("number_match".into(), json!(number));
        }
        let jwt = self
            .api()
            .key()
            .sign(Some(DECISION_JWT_TYPE), &claims)
            .map_err(|e| Error::Storage(format!("cannot sign the decision: {e}")))?;
        let path = format!("/device/v1/requests/{}/decision", request.id);
        let body = json!({ "decision_jwt": jwt });
        let posted = async {
            let response = self.api().call(Method::POST, &path, None, Some(&body)).await?;
            response
                .json::<DecisionOutcome>()
                .await
                .map_err(|e| Error::Network(format!("the decision answer is unreadable ({})", e.without_url())))
        }
        .await;
        let posted = self.note(posted);
        let outcome = match &posted {
            Ok(outcome) => Some(outcome.state.clone()),
            Err(Error::RequestGone(why)) => Some(format!("conflict: {why}")),
            Err(_) => None,
        };
        if let Some(outcome) = outcome {
            let entry = HistoryEntry {
                at: self.now(),
                account: self.account().id.clone(),
                request_id: request.id.clone(),
                client_name: request.client_name.clone(),
                binding_message: request.binding_message.clone(),
                payment: request.payment.clone(),
                decision,
                outcome,
            };
            if let Err(err) = self.authenticator().record(&entry) {
                tracing::warn!(error = %err, "could not write the history");
            }
        }
        posted
    }
}

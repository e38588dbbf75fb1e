//! The bank's payments resource API (`docs/payments-api.md` on the server side):
//! executing an approved payment (`POST /api/payments`, with an
//! `Idempotency-Key`), reading payments back, finding them by merchant
//! reference, and refunds.
//!
//! The customer's access token pays; the merchant's own `client_credentials`
//! token looks payments up (scope `payments`) and refunds them (scope
//! `refunds`). DPoP-bound tokens go with a proof carrying `ath`
//! ([RFC 9449 §7](https://www.rfc-editor.org/rfc/rfc9449#section-7)); a
//! `use_dpop_nonce` challenge is answered once with the server's nonce.

use outband_protocol::{Scope, TokenResponse, TokenType};
use reqwest::header::{HeaderMap, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::auth::random_token;
use super::sale::{Amount, SaleRequest};
use super::{CibaClient, RequestError};

/// Where the payments live, under the issuer.
pub const PAYMENTS_PATH: &str = "/api/payments";
/// How much of an unexpected body an error keeps.
const BODY_SNIPPET: usize = 200;

/// `instructedAmount`: an amount as the API writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstructedAmount {
    /// ISO 4217 code.
    pub currency: String,
    /// A decimal, `12.50`.
    pub amount: String,
}

/// A payment as the bank holds it: the receipt of `POST /api/payments`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// `pay_…`.
    pub payment_id: String,
    /// `executed`, `partially_refunded` or `refunded`.
    pub status: String,
    /// How much.
    #[serde(rename = "instructedAmount")]
    pub instructed_amount: InstructedAmount,
    /// The payee.
    #[serde(rename = "creditorName")]
    pub creditor_name: String,
    /// The payee's account.
    #[serde(rename = "creditorAccount", default, skip_serializing_if = "Option::is_none")]
    pub creditor_account: Option<Value>,
    /// The merchant reference.
    #[serde(
        rename = "remittanceInformationUnstructured",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub remittance_information_unstructured: Option<String>,
    /// The paying customer's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debtor: Option<String>,
    /// The client that took the payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// When it was executed (RFC 3339).
    pub created_at: String,
    /// How much was refunded so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_amount: Option<String>,
}

/// A refund: `POST /api/payments/{id}/refunds`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// `ref_…`.
    pub refund_id: String,
    /// The payment refunded.
    pub payment_id: String,
    /// How much, `5.00`.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// The payment afterwards.
    pub payment: Payment,
}

/// Why a payments API call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    /// The server could not be reached, or the answer was lost: whether the
    /// call took effect is unknown (send it again with the same key).
    #[error("cannot reach the payments API")]
    Transport(#[source] reqwest::Error),
    /// The server has no payments API (`404` without an API error body).
    #[error("the server has no payments API ({PAYMENTS_PATH} answered 404)")]
    NotAvailable,
    /// The API refused.
    #[error("the payments API answered {status}: {error}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Api {
        /// The HTTP status.
        status: u16,
        /// `payment_mismatch`, `invalid_token`…
        error: String,
        /// `error_description`.
        description: Option<String>,
        /// The payment a `payment_already_executed` names.
        payment_id: Option<String>,
    },
    /// The answer is not what the API contract says.
    #[error("the payments API answered {status} with an unexpected body: {body}")]
    Unexpected {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The access token is DPoP-bound but this till has no DPoP key.
    #[error("the access token is DPoP-bound, but this till has no DPoP key")]
    NoDpopKey,
    /// Getting the merchant's token (or signing a proof) failed.
    #[error(transparent)]
    Request(#[from] RequestError),
}

impl PaymentError {
    /// Whether the outcome is unknown and the same call may be repeated (with
    /// the same idempotency key): the network, or a 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Api { status, .. } | Self::Unexpected { status, .. } => *status >= 500,
            Self::Request(err) => err.is_transient(),
            _ => false,
        }
    }

    /// The API error code, when the API answered one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The error body of the API (RFC 6750 style, plus `payment_id` on 409).
#[derive(Deserialize)]
struct ApiError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    payment_id: Option<String>,
}

#[derive(Deserialize)]
struct PaymentList {
    payments: Vec<Payment>,
}

/// The body of `POST /api/payments` for `sale`: its `payment_initiation`
/// detail without `type`, exactly as the customer approved it.
pub fn payment_body(sale: &SaleRequest, reference: &str) -> Value {
    let mut details = sale.authorization_details(reference);
    let mut entry = details
        .as_array_mut()
        .and_then(|list| list.pop())
        .unwrap_or_else(|| json!({}));
    if let Some(map) = entry.as_object_mut() {
        map.remove("type");
    }
    entry
}

impl CibaClient {
    /// Executes the approved payment of `sale` with the customer's `tokens`.
    /// The same `idempotency_key` and body always give the same payment, so a
    /// till that does not know whether its first call went through sends it
    /// again. When the grant already paid (under another key), that payment
    /// is read back and returned.
    pub async fn execute_payment(
        &self,
        tokens: &TokenResponse,
        sale: &SaleRequest,
        reference: &str,
        idempotency_key: &str,
    ) -> Result<Payment, PaymentError> {
        let body = payment_body(sale, reference);
        let token = tokens.access_token.secret();
        let dpop = tokens.token_type == TokenType::DPoP;
        match self
            .api_call(
                Method::POST,
                PAYMENTS_PATH,
                token,
                dpop,
                Some(&body),
                Some(idempotency_key),
            )
            .await
        {
            Err(PaymentError::Api {
                status: 409,
                payment_id: Some(id),
                ..
            }) => {
                tracing::info!(payment_id = %id, "the grant had already paid; reading that payment");
                let path = format!("{PAYMENTS_PATH}/{}", encode(&id));
                self.api_call(Method::GET, &path, token, dpop, None, None).await
            }
            other => other,
        }
    }

    /// A payment of this merchant, read with its `client_credentials` token.
    pub async fn payment(&self, payment_id: &str) -> Result<Payment, PaymentError> {
        let (token, dpop) = self.merchant_token("payments").await?;
        let path = format!("{PAYMENTS_PATH}/{}", encode(payment_id));
        self.api_call(Method::GET, &path, &token, dpop, None, None).await
    }

    /// This merchant's payments with `reference` (`remittanceInformationUnstructured`).
    pub async fn payments_by_reference(&self, reference: &str) -> Result<Vec<Payment>, PaymentError> {
        let (token, dpop) = self.merchant_token("payments").await?;
        let path = format!("{PAYMENTS_PATH}?reference={}", encode(reference));
        let list: PaymentList = self.api_call(Method::GET, &path, &token, dpop, None, None).await?;
        Ok(list.payments)
    }

    /// Refunds `amount` (the rest when `None`) of a payment.
    pub async fn refund(
        &self,
        payment_id: &str,
        amount: Option<Amount>,
        idempotency_key: &str,
    ) -> Result<Refund, PaymentError> {
        let (token, dpop) = self.merchant_token("refunds").await?;
        let path = format!("{PAYMENTS_PATH}/{}/refunds", encode(payment_id));
        let body = match amount {
            Some(amount) => json!({ "amount": amount.to_string() }),
            None => json!({}),
        };
        self.api_call(Method::POST, &path, &token, dpop, Some(&body), Some(idempotency_key))
            .await
    }

    /// The merchant's own access token for `scope`, and whether it is DPoP-bound.
    async fn merchant_token(&self, scope: &str) -> Result<(String, bool), PaymentError> {
        let tokens = self.client_credentials(Some(&Scope::new(scope))).await?;
        Ok((
            tokens.access_token.secret().to_owned(),
            tokens.token_type == TokenType::DPoP,
        ))
    }

    /// One API call; sent once more when the server asks for a DPoP nonce.
    async fn api_call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: &str,
        dpop: bool,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<T, PaymentError> {
        let url = format!("{}{path}", self.issuer().trim_end_matches('/'));
        let key = match (dpop, self.dpop_key()) {
            (false, _) => None,
            (true, Some(key)) => Some(key),
            (true, None) => return Err(PaymentError::NoDpopKey),
        };
        let mut nonce_retried = false;
        loop {
            let mut request = self.http().request(method.clone(), &url);
            request = match key {
                Some(key) => {
                    let proof = key
                        .proof(method.as_str(), &url, Some(token), self.now())
                        .map_err(|e| PaymentError::Request(RequestError::Sign(e)))?;
                    request
                        .header(AUTHORIZATION, format!("DPoP {token}"))
                        .header("DPoP", proof)
                }
                None => request.bearer_auth(token),
            };
            if let Some(idempotency_key) = idempotency_key {
                request = request.header("Idempotency-Key", idempotency_key);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(PaymentError::Transport)?;
            let status = response.status();
            let headers = response.headers().clone();
            let fresh_nonce = key.is_some_and(|key| key.remember_nonce(&headers));
            let bytes = response.bytes().await.map_err(PaymentError::Transport)?;
            if status.is_success() {
                return serde_json::from_slice(&bytes).map_err(|_| unexpected(status.as_u16(), &bytes));
            }
            if status.as_u16() == 401 && fresh_nonce && !nonce_retried && challenge_is_nonce(&headers) {
                nonce_retried = true;
                tracing::debug!("the payments API asked for a DPoP nonce; sending the call again");
                continue;
            }
            return Err(match serde_json::from_slice::<ApiError>(&bytes) {
                Ok(error) => PaymentError::Api {
                    status: status.as_u16(),
                    error: error.error,
                    description: error.error_description,
                    payment_id: error.payment_id,
                },
                Err(_) if status.as_u16() == 404 && path.starts_with(PAYMENTS_PATH) => PaymentError::NotAvailable,
                Err(_) => match challenge_error(&headers) {
                    Some((error, description)) => PaymentError::Api {
                        status: status.as_u16(),
                        error,
                        description,
                        payment_id: None,
                    },
                    None => unexpected(status.as_u16(), &bytes),
                },
            });
        }
    }
}

/// A fresh `Idempotency-Key`.
pub fn new_idempotency_key() -> String {
    random_token()
}

fn unexpected(status: u16, bytes: &[u8]) -> PaymentError {
    PaymentError::Unexpected {
        status,
        body: String::from_utf8_lossy(bytes).chars().take(BODY_SNIPPET).collect(),
    }
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn challenge_is_nonce(headers: &HeaderMap) -> bool {
    challenge_error(headers).is_some_and(|(error, _)| error == "use_dpop_nonce")
}

/// `error` and `error_description` of a `WWW-Authenticate` challenge.
fn challenge_error(headers: &HeaderMap) -> Option<(String, Option<String>)> {
    let value = headers.get(WWW_AUTHENTICATE)?.to_str().ok()?;
    let param = |name: &str| {
        let start = value.find(&format!("{name}=\""))? + name.len() + 2;
        let rest = value.get(start..)?;
        Some(rest.get(..rest.find('"')?)?.to_owned())
    };
    Some((param("error")?, param("error_description")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_approved_detail_without_its_type() {
        let mut sale = SaleRequest::new("12.5".parse().unwrap(), "EUR".parse().unwrap(), "alice", "Demo Shop");
        sale.iban = Some("DE89370400440532013000".parse().unwrap());
        assert_eq!(
            payment_body(&sale, "REF-1"),
            json!({
                "instructedAmount": {"currency": "EUR", "amount": "12.50"},
                "creditorName": "Demo Shop",
                "creditorAccount": {"iban": "DE89370400440532013000"},
                "remittanceInformationUnstructured": "REF-1",
            })
        );
    }

    #[test]
    fn challenges_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert(
            WWW_AUTHENTICATE,
            "DPoP error=\"use_dpop_nonce\", error_description=\"a server nonce is required\", algs=\"ES256\""
                .parse()
                .unwrap(),
        );
        assert!(challenge_is_nonce(&headers));
        assert_eq!(
            challenge_error(&headers).unwrap().1.as_deref(),
            Some("a server nonce is required")
        );
        assert!(challenge_error(&HeaderMap::new()).is_none());
    }

    #[test]
    fn receipts_parse_as_the_contract_writes_them() {
        let payment: Payment = serde_json::from_value(json!({
            "payment_id": "pay_1", "status": "executed",
            "instructedAmount": {"currency": "EUR", "amount": "12.50"},
            "creditorName": "Demo Shop", "remittanceInformationUnstructured": "REF-1",
            "debtor": "sub-alice", "client_id": "demo-pos", "created_at": "2027-01-15T08:00:00Z",
            "refunded_amount": "0.00"
        }))
        .unwrap();
        assert_eq!(payment.payment_id, "pay_1");
        assert_eq!(payment.creditor_account, None);
    }
}

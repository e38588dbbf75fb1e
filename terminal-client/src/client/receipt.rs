//! The receipt of an approved sale: the payment the bank executed
//! ([`Receipt::payment`], from `POST /api/payments`) and what the bank
//! granted: the access token's claims (`sub`, `scope`,
//! `authorization_details`, `exp`), read from the JWT without verifying it
//! (the till got it straight from the token endpoint or checked the push's
//! ID token; the resource server is the one that verifies access tokens).
//! On a server without the payments API the grant is all there is.
//!
//! A receipt is refused when the granted `payment_initiation` is not the sale's
//! amount: a till must never print a receipt for a payment it did not ring up.

use outband_protocol::jose::UnverifiedJwt;
use outband_protocol::{DeliveryMode, TokenResponse, TokenType};
use serde::Serialize;
use serde_json::Value;

use super::ciba::Started;
use super::payments::Payment;
use super::sale::{SaleRequest, PAYMENT_INITIATION};

/// Why tokens do not make a receipt.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadReceiptError {
    /// The grant carries no `payment_initiation` details.
    #[error("the grant carries no payment_initiation details")]
    NoPaymentDetails,
    /// The granted amount, currency or payee differs from the sale.
    #[error("the granted payment ({0}) is not the sale's")]
    DetailsMismatch(String),
}

/// What the till prints (and `outband-pos pay --json` writes).
#[derive(Clone, Debug, Serialize)]
pub struct Receipt {
    /// `paid` (the payment was executed) or `approved` (the server has no
    /// payments API: the grant is all there is).
    pub status: &'static str,
    /// `12.50`.
    pub amount: String,
    /// `EUR`.
    pub currency: String,
    /// The payee's name.
    pub payee: String,
    /// The payee's IBAN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
    /// The merchant reference.
    pub reference: String,
    /// The binding message both screens showed.
    pub binding_message: String,
    /// Who paid (the login hint).
    pub customer: String,
    /// When the till saw the approval, seconds since the epoch.
    pub approved_at: i64,
    /// The delivery mode.
    pub mode: DeliveryMode,
    /// The grant.
    pub token: TokenSummary,
    /// The executed payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment>,
}

/// The granted token, without the token itself.
#[derive(Clone, Debug, Serialize)]
pub struct TokenSummary {
    /// `Bearer` or `DPoP`.
    pub token_type: TokenType,
    /// Seconds the access token lives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// The customer's subject at the bank.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Granted scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the access token expires, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Granted RFC 9396 details.
    pub authorization_details: Value,
    /// Whether a refresh token came too.
    pub refresh_token: bool,
    /// Whether an ID token came too.
    pub id_token: bool,
}

impl Receipt {
    /// The receipt of `started`, approved with `tokens`, at `now`.
    pub fn new(started: &Started, tokens: &TokenResponse, now: i64) -> Result<Self, ReadReceiptError> {
        let claims = UnverifiedJwt::decode(tokens.access_token.secret())
            .ok()
            .map(|jwt| jwt.claims)
            .unwrap_or_default();
        let details = claims
            .get("authorization_details")
            .cloned()
            .or_else(|| tokens.authorization_details.clone())
            .ok_or(ReadReceiptError::NoPaymentDetails)?;
        check_payment(&details, &started.sale, &started.reference)?;
        let sale = &started.sale;
        Ok(Self {
            status: "approved",
            amount: sale.amount.to_string(),
            currency: sale.currency.to_string(),
            payee: sale.merchant.clone(),
            iban: sale.iban.as_ref().map(ToString::to_string),
            reference: started.reference.clone(),
            binding_message: started.binding_message.to_string(),
            customer: sale.customer.to_string(),
            approved_at: now,
            mode: started.mode,
            token: TokenSummary {
                token_type: tokens.token_type,
                expires_in: tokens.expires_in,
                sub: claims.get("sub").and_then(Value::as_str).map(str::to_owned),
                scope: claims
                    .get("scope")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| tokens.scope.as_ref().map(ToString::to_string)),
                exp: claims.get("exp").and_then(Value::as_i64),
                authorization_details: details,
                refresh_token: tokens.refresh_token.is_some(),
                id_token: tokens.id_token.is_some(),
            },
            payment: None,
        })
    }

    /// The receipt with its executed payment.
    pub fn with_payment(mut self, payment: Payment) -> Self {
        self.status = "paid";
        self.payment = Some(payment);
        self
    }
}

/// The granted `payment_initiation` must have the sale's amount, currency and payee.
fn check_payment(details: &Value, sale: &SaleRequest, reference: &str) -> Result<(), ReadReceiptError> {
    let payment = details
        .as_array()
        .and_then(|list| {
            list.iter()
                .find(|d| d.get("type").and_then(Value::as_str) == Some(PAYMENT_INITIATION))
        })
        .ok_or(ReadReceiptError::NoPaymentDetails)?;
    let expected = sale.authorization_details(reference);
    let wanted = expected.get(0).unwrap_or(&Value::Null);
    for field in ["instructedAmount", "creditorName", "creditorAccount"] {
        if payment.get(field) != wanted.get(field) {
            return Err(ReadReceiptError::DetailsMismatch(format!(
                "{field} is {}",
                payment.get(field).unwrap_or(&Value::Null)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_granted_payment_must_be_the_sale() {
        let mut sale = SaleRequest::new("12.50".parse().unwrap(), "EUR".parse().unwrap(), "alice", "Corner Café");
        sale.iban = Some("DE89370400440532013000".parse().unwrap());
        let granted = sale.authorization_details("R-1");
        assert_eq!(check_payment(&granted, &sale, "R-1"), Ok(()));
        assert_eq!(
            check_payment(&granted, &sale, "another reference"),
            Ok(()),
            "the reference is the merchant's own"
        );

        let mut more = granted.clone();
        more[0]["instructedAmount"]["amount"] = json!("125.00");
        assert!(matches!(
            check_payment(&more, &sale, "R-1"),
            Err(ReadReceiptError::DetailsMismatch(why)) if why.contains("instructedAmount")
        ));
        let mut elsewhere = granted.clone();
        elsewhere[0]["creditorAccount"]["iban"] = json!("GB82WEST12345698765432");
        assert!(matches!(
            check_payment(&elsewhere, &sale, "R-1"),
            Err(ReadReceiptError::DetailsMismatch(_))
        ));
        assert_eq!(
            check_payment(&json!([{"type": "account_information"}]), &sale, "R-1"),
            Err(ReadReceiptError::NoPaymentDetails)
        );
        assert_eq!(
            check_payment(&json!({}), &sale, "R-1"),
            Err(ReadReceiptError::NoPaymentDetails)
        );
    }
}

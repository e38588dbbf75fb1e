//! Demo account information for the `accounts` scope: every user has a current
//! and a savings account, derived from their subject (same user, same IBANs and
//! starting balances on every node and after every restart, with nothing
//! stored). The current account's available balance goes down with the
//! payments the user made through the API (net of refunds), so a demo shows a
//! payment land.

use outband_protocol::jose::sha256_b64url;
use outband_protocol::Subject;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::amount;
use crate::error::Result;
use crate::state::AppState;

/// The demo accounts' currency.
pub const CURRENCY: &str = "EUR";
/// A demo bank code (BLZ) for the generated German IBANs.
const BANK_CODE: &str = "10010010";

/// An account (`GET /api/accounts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Stable id, `acc_<hash>`.
    pub account_id: String,
    /// A valid (check digits) German IBAN.
    pub iban: String,
    /// Display name.
    pub name: String,
    /// ISO 4217.
    pub currency: String,
}

/// A balance of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// `available`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A decimal.
    pub amount: String,
    /// ISO 4217.
    pub currency: String,
}

/// The balances of an account (`GET /api/accounts/{id}/balances`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Balances {
    /// The account.
    pub account_id: String,
    /// Its balances.
    pub balances: Vec<Balance>,
}

/// The kinds of demo account: (key, display name, largest starting balance in cents).
const KINDS: [(&str, &str, u64); 2] = [
    ("current", "Current account", 500_000),
    ("savings", "Savings", 2_500_000),
];

fn seed(subject: &Subject, kind: &str) -> [u8; 32] {
    Sha256::digest(format!("outband-demo-account:{subject}:{kind}").as_bytes()).into()
}

fn number(seed: &[u8; 32]) -> u64 {
    let [a, b, c, d, e, f, g, h, ..] = *seed;
    u64::from_be_bytes([a, b, c, d, e, f, g, h])
}

/// A German IBAN for a 10-digit account number, with its ISO 7064 check digits.
fn iban(bank_code: &str, account_number: u64) -> String {
    let bban = format!("{bank_code}{:010}", account_number % 10_000_000_000);
    // Check digits: the BBAN, then "DE" as digits (D=13, E=14), then "00", mod 97.
    let remainder = format!("{bban}131400")
        .bytes()
        .fold(0u32, |acc, digit| (acc * 10 + u32::from(digit - b'0')) % 97);
    format!("DE{:02}{bban}", 98 - remainder)
}

/// The demo accounts of `subject`.
pub fn accounts_of(subject: &Subject) -> Vec<Account> {
    KINDS
        .iter()
        .map(|(kind, name, _)| {
            let seed = seed(subject, kind);
            Account {
                account_id: format!("acc_{}", sha256_b64url(&seed).chars().take(16).collect::<String>()),
                iban: iban(BANK_CODE, number(&seed)),
                name: (*name).to_owned(),
                currency: CURRENCY.to_owned(),
            }
        })
        .collect()
}

/// The balances of `subject`'s account `account_id`; `None` for an account
/// that is not theirs.
pub async fn balances_of(state: &AppState, subject: &Subject, account_id: &str) -> Result<Option<Balances>> {
    let Some(index) = accounts_of(subject).iter().position(|a| a.account_id == account_id) else {
        return Ok(None);
    };
    let Some((kind, _, max)) = KINDS.get(index) else {
        return Ok(None);
    };
    let seed = seed(subject, kind);
    // From 100.00 up to the kind's maximum.
    let start = i64::try_from(10_000 + number(&seed).rotate_left(32) % max).unwrap_or(10_000);
    let paid = if index == 0 {
        state.store.net_paid_by_debtor(subject, CURRENCY).await?
    } else {
        0
    };
    Ok(Some(Balances {
        account_id: account_id.to_owned(),
        balances: vec![Balance {
            kind: "available",
            amount: amount::format_minor(start - paid, CURRENCY),
            currency: CURRENCY.to_owned(),
        }],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_stable_per_user_with_valid_ibans() {
        let alice = accounts_of(&Subject::new("alice"));
        assert_eq!(alice, accounts_of(&Subject::new("alice")));
        assert_ne!(alice, accounts_of(&Subject::new("bob")));
        assert_eq!(alice.len(), 2);
        for account in &alice {
            assert_eq!(account.iban.len(), 22);
            // ISO 13616: moving the first four characters to the end and
            // reading letters as numbers leaves remainder 1 mod 97.
            let moved = format!("{}{}", &account.iban[4..], &account.iban[..4]);
            let digits: String = moved.chars().map(|c| c.to_digit(36).unwrap().to_string()).collect();
            let remainder = digits
                .bytes()
                .fold(0u32, |acc, d| (acc * 10 + u32::from(d - b'0')) % 97);
            assert_eq!(remainder, 1, "{}", account.iban);
        }
        // The well-known example IBAN comes out right.
        assert_eq!(iban("37040044", 532_013_000), "DE89370400440532013000");
    }
}

//! How requests, accounts and decisions look on screen (the text output; the
//! `--json` output is the library's serialisation).

use std::fmt::Write;

use crate::{Account, Grant, HistoryEntry, KeyStorage, Removal, VerifiedRequest};

/// A unix time as `2027-01-15T08:00:00Z`.
pub(super) fn time(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| at.to_string())
}

/// `1m58s`, `45s`.
fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The request card: who asks, the binding message, amount and payee, scope, time left.
pub(super) fn request(request: &VerifiedRequest, account: Option<&Account>, now: i64) -> String {
    let mut out = String::new();
    let whose = account.map_or_else(
        || format!("account {}", request.account),
        |a| format!("{} at {}", a.username, a.issuer.as_str().trim_end_matches('/')),
    );
    let _ = writeln!(out, "request {} for {whose}", request.id);
    let mut line = |label: &str, value: &str| {
        let _ = writeln!(out, "  {label:<9} {value}");
    };
    let client = match &request.client_name {
        Some(name) => format!("{name} ({})", request.client_id),
        None => request.client_id.clone(),
    };
    line("from", &client);
    if let Some(message) = &request.binding_message {
        line("code", message);
    }
    if let Some(payment) = &request.payment {
        line("amount", &payment.display_amount());
        let payee = match (&payment.creditor_name, &payment.creditor_iban) {
            (Some(name), Some(iban)) => Some(format!("{name}, IBAN {iban}")),
            (Some(name), None) => Some(name.clone()),
            (None, Some(iban)) => Some(format!("IBAN {iban}")),
            (None, None) => None,
        };
        if let Some(payee) = payee {
            line("payee", &payee);
        }
        if let Some(reference) = &payment.remittance {
            line("reference", reference);
        }
    } else if let Some(details) = &request.authorization_details {
        line("details", &details.to_string());
    }
    if let Some(scope) = &request.scope {
        line("scope", scope);
    }
    if let Some(acr) = &request.acr_values {
        line("acr", acr);
    }
    let left = (request.expires_at - now).max(0);
    line(
        "expires",
        &format!("in {} ({})", duration(left), time(request.expires_at)),
    );
    if request.number_matching {
        line("note", "approving needs the number the terminal shows");
    }
    out
}

/// Why a card went away, in words.
pub(super) fn removal(reason: Removal) -> &'static str {
    match reason {
        Removal::Decided => "was decided",
        Removal::Withdrawn => "was withdrawn by the client",
        Removal::Expired => "expired",
        Removal::NoLongerPending => "is no longer pending",
    }
}

/// One account per line.
pub(super) fn account(account: &Account) -> String {
    let status = if account.revoked {
        "REVOKED".to_owned()
    } else {
        format!("enrolled {}", time(account.enrolled_at))
    };
    let key = match account.key_storage {
        KeyStorage::OsKeyring => "key in OS keyring",
        KeyStorage::File => "key in file",
    };
    format!(
        "{}\t{}\t{}\t{}\t{}\t{key}\t{status}",
        account.id,
        account.username,
        account.issuer.as_str().trim_end_matches('/'),
        account.device_name,
        account.alg
    )
}

/// Where the account's sealed key is, in words.
pub(super) fn key_storage(authenticator: &crate::Authenticator, account: &Account) -> String {
    match account.key_storage {
        KeyStorage::OsKeyring => "key sealed under the PIN in the OS keyring (service outband-device)".to_owned(),
        KeyStorage::File => format!(
            "key sealed under the PIN in {} (no OS keyring answered, or --key-store file)",
            authenticator.key_file(&account.id).display()
        ),
    }
}

/// One decision per line.
pub(super) fn history(entry: &HistoryEntry) -> String {
    let mut what = entry.client_name.clone().unwrap_or_default();
    if let Some(message) = &entry.binding_message {
        let _ = write!(what, " [{message}]");
    }
    if let Some(payment) = &entry.payment {
        let _ = write!(what, " {}", payment.display_amount());
    }
    format!(
        "{}\t{}\t{}\t{}\t{}",
        time(entry.at),
        entry.decision,
        entry.outcome,
        entry.request_id,
        what.trim()
    )
}

/// A grant: which application, what it may do (in words), since when.
pub(super) fn grant(grant: &Grant, account: Option<&Account>) -> String {
    let mut out = String::new();
    let whose = account.map_or_else(
        || format!("account {}", grant.account),
        |a| format!("{} at {}", a.username, a.issuer.as_str().trim_end_matches('/')),
    );
    let _ = writeln!(out, "grant {} for {whose}", grant.grant_id);
    let app = if grant.client_name == grant.client_id {
        grant.client_id.clone()
    } else {
        format!("{} ({})", grant.client_name, grant.client_id)
    };
    let _ = writeln!(out, "  {:<9} {app}", "app");
    let allowed: Vec<&str> = if grant.description.is_empty() {
        grant.scopes.iter().map(String::as_str).collect()
    } else {
        grant.description.iter().map(String::as_str).collect()
    };
    for (i, line) in allowed.iter().enumerate() {
        let label = if i == 0 { "may" } else { "" };
        let _ = writeln!(out, "  {label:<9} {line}");
    }
    let _ = writeln!(out, "  {:<9} {}", "given", time(grant.created_at));
    if grant.updated_at != grant.created_at {
        let _ = writeln!(out, "  {:<9} {}", "changed", time(grant.updated_at));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccountId, PaymentSummary};

    #[test]
    fn cards_show_what_is_asked() {
        let request = VerifiedRequest {
            id: "r1".into(),
            account: AccountId("d1".into()),
            request_jwt: String::new(),
            issued_at: 1_800_000_000,
            expires_at: 1_800_000_120,
            client_id: "pos".into(),
            client_name: Some("Corner Café".into()),
            binding_message: Some("CAFE-7Q2K".into()),
            scope: Some("openid payments".into()),
            acr_values: None,
            number_matching: false,
            authorization_details: None,
            payment: Some(PaymentSummary {
                amount: "12.50".into(),
                currency: "EUR".into(),
                creditor_name: Some("Corner Café".into()),
                creditor_iban: Some("DE89370400440532013000".into()),
                remittance: None,
            }),
        };
        let card = request_card(&request);
        for expected in [
            "request r1 for account d1",
            "from      Corner Café (pos)",
            "code      CAFE-7Q2K",
            "amount    EUR 12.50",
            "payee     Corner Café, IBAN DE89370400440532013000",
            "scope     openid payments",
            "expires   in 1m58s (2027-01-15T08:02:00Z)",
        ] {
            assert!(card.contains(expected), "{expected:?} in\n{card}");
        }
    }

    fn request_card(r: &VerifiedRequest) -> String {
        request(r, None, 1_800_000_002)
    }

    #[test]
    fn grants_say_who_may_do_what_since_when() {
        let grant = Grant {
            grant_id: "g1".into(),
            account: AccountId("d1".into()),
            client_id: "pos".into(),
            client_name: "Corner Café".into(),
            scopes: vec!["openid".into(), "payments".into()],
            authorization_details: None,
            created_at: 1_800_000_000,
            updated_at: 1_800_000_060,
            description: vec![
                "know who you are (your user id)".into(),
                "make payments you approve".into(),
            ],
        };
        let card = super::grant(&grant, None);
        for expected in [
            "grant g1 for account d1",
            "app       Corner Café (pos)",
            "may       know who you are (your user id)\n            make payments you approve",
            "given     2027-01-15T08:00:00Z",
            "changed   2027-01-15T08:01:00Z",
        ] {
            assert!(card.contains(expected), "{expected:?} in\n{card}");
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(118), "1m58s");
        assert_eq!(duration(7260), "2h01m");
    }
}

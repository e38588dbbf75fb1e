//! The CIBA records: backchannel requests and their decisions, enrolled
//! authentication devices with their activation codes and access tokens, and
//! the ping/push notification outbox.

use outband_protocol::{ClientId, DeliveryMode, Scope, Subject};

use super::UnixTime;

/// Where a backchannel authentication request stands. `Pending` moves to
/// `Approved`, `Denied`, `Expired` or `Cancelled`; `Approved` moves on to
/// `Redeemed` once tokens were issued. Nothing else ever changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CibaState {
    /// Waiting for the user.
    Pending,
    /// The user approved; tokens not issued yet.
    Approved,
    /// The user (or an operator) denied.
    Denied,
    /// Nobody decided in time.
    Expired,
    /// The client cancelled it.
    Cancelled,
    /// Tokens were issued (polled, pinged-then-polled or pushed).
    Redeemed,
}

impl CibaState {
    /// Every state, in lifecycle order.
    pub const ALL: &'static [CibaState] = &[
        Self::Pending,
        Self::Approved,
        Self::Denied,
        Self::Expired,
        Self::Cancelled,
        Self::Redeemed,
    ];

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Redeemed => "redeemed",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|state| state.as_str() == value)
    }
}

impl std::fmt::Display for CibaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backchannel authentication request.
#[derive(Clone, Debug, PartialEq)]
pub struct CibaRequestRecord {
    /// Public request id (random): used in device API URLs and by the admin
    /// CLI. Not a credential.
    pub id: String,
    /// SHA-256 (base64url) of the `auth_req_id`; unique.
    pub auth_req_id_hash: String,
    /// The client that asked.
    pub client_id: ClientId,
    /// The user asked.
    pub subject: Subject,
    /// Requested scope.
    pub scope: Scope,
    /// Requested ACR values, space separated.
    pub acr_values: Option<String>,
    /// Shown on both devices.
    pub binding_message: Option<String>,
    /// RAR details (JSON text).
    pub authorization_details: Option<String>,
    /// Poll, ping or push.
    pub delivery_mode: DeliveryMode,
    /// The `auth_req_id` sealed by the server (ping and push only): their
    /// notification bodies carry it, while only its hash identifies the request.
    pub auth_req_id_sealed: Option<String>,
    /// The `client_notification_token`, sealed by the server (opaque here).
    pub notification_token_sealed: Option<String>,
    /// Number matching: what the terminal shows and the user must type on the device.
    pub number_match: Option<String>,
    /// AS-signed JWT of what devices show.
    pub request_jwt: String,
    /// When it was made.
    pub created_at: UnixTime,
    /// When the `auth_req_id` expires.
    pub expires_at: UnixTime,
    /// The current minimum poll interval in seconds (grows by 5 with each `slow_down`).
    pub interval: i64,
    /// When the client last polled.
    pub last_polled_at: Option<UnixTime>,
    /// Where it stands.
    pub state: CibaState,
    /// When it left `Pending` (decided, cancelled or expired); `None` while pending.
    pub decided_at: Option<UnixTime>,
    /// The device that decided; `None` for admin and test decisions.
    pub device_id: Option<String>,
    /// Authentication methods of the decision (JSON array text, e.g. `["hwk","pin"]`).
    pub amr: Option<String>,
    /// Authentication context class of the decision.
    pub acr: Option<String>,
    /// Why it was denied: `denied`, `fraud`, or free text from an operator.
    pub deny_reason: Option<String>,
    /// When tokens were issued.
    pub redeemed_at: Option<UnixTime>,
}

/// The user's (or an operator's) answer to a pending request.
#[derive(Clone, Debug, PartialEq)]
pub struct CibaDecision {
    /// Approve (`true`) or deny.
    pub approve: bool,
    /// The device that decided; `None` for admin and test decisions.
    pub device_id: Option<String>,
    /// Authentication methods (JSON array text).
    pub amr: Option<String>,
    /// Authentication context class.
    pub acr: Option<String>,
    /// Why it was denied.
    pub deny_reason: Option<String>,
}

/// What a token-endpoint poll found.
// `Unknown` is small and `Found` is not; one value per poll, so boxing the
// record would only make matching on it clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum PollOutcome {
    /// No request with this `auth_req_id` for this client (answer `invalid_grant`).
    Unknown,
    /// The request, as it is after the poll was recorded.
    Found {
        /// The request.
        request: CibaRequestRecord,
        /// The poll came before the interval was up (answer `slow_down`); the
        /// request's interval has already grown by 5 seconds.
        slow_down: bool,
    },
}

/// An enrolled authentication device.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceRecord {
    /// Device id (random).
    pub id: String,
    /// The user it belongs to.
    pub subject: Subject,
    /// Display name.
    pub name: String,
    /// Signing algorithm of its key (`ES256`, `EdDSA`).
    pub alg: String,
    /// Its public JWK (JSON text).
    pub public_jwk: String,
    /// JWK thumbprint of its key; unique.
    pub jkt: String,
    /// SHA-256 (base64url) of its long-lived device credential; unique.
    pub credential_hash: String,
    /// When it was enrolled.
    pub created_at: UnixTime,
    /// When it last called the device API.
    pub last_seen_at: Option<UnixTime>,
    /// When it was revoked; a revoked device never authenticates again.
    pub revoked_at: Option<UnixTime>,
}

/// A one-time enrollment code.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationCodeRecord {
    /// SHA-256 (base64url) of the code.
    pub code_hash: String,
    /// The user a device enrolled with it belongs to.
    pub subject: Subject,
    /// When it was made.
    pub created_at: UnixTime,
    /// When it stops working.
    pub expires_at: UnixTime,
    /// When it was used; a code works once.
    pub used_at: Option<UnixTime>,
}

/// A device access token, bound to the device key by DPoP.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceTokenRecord {
    /// SHA-256 (base64url) of the token.
    pub token_hash: String,
    /// The device it was issued to.
    pub device_id: String,
    /// The key thumbprint it is bound to.
    pub jkt: String,
    /// When it expires.
    pub expires_at: UnixTime,
}

/// Ping (`{auth_req_id}`) or push (the tokens themselves).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    /// Ping mode: tells the client to call the token endpoint.
    Ping,
    /// Push mode: carries the token response (or the error).
    Push,
    /// Not CIBA: an OpenID Connect Back-Channel Logout token for the client's
    /// `backchannel_logout_uri` (`crate::account::backchannel`); its
    /// `ciba_request_id` is `logout:{jti}`.
    BackchannelLogout,
}

impl NotificationKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Push => "push",
            Self::BackchannelLogout => "backchannel_logout",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "ping" => Some(Self::Ping),
            "push" => Some(Self::Push),
            "backchannel_logout" => Some(Self::BackchannelLogout),
            _ => None,
        }
    }
}

/// A notification to deliver.
#[derive(Clone, PartialEq)]
pub struct NewNotification {
    /// Ping or push.
    pub kind: NotificationKind,
    /// The client notified.
    pub client_id: ClientId,
    /// The request it is about.
    pub ciba_request_id: String,
    /// The client's notification endpoint.
    pub endpoint: String,
    /// The `client_notification_token`, sealed.
    pub bearer_sealed: String,
    /// The JSON body, sealed (push bodies carry tokens).
    pub body_sealed: String,
    /// When to try first; also recorded as its creation time.
    pub due_at: UnixTime,
}

impl std::fmt::Debug for NewNotification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewNotification")
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A notification in the outbox.
#[derive(Clone, PartialEq)]
pub struct NotificationRecord {
    /// Sequence number.
    pub id: i64,
    /// Ping or push.
    pub kind: NotificationKind,
    /// The client notified.
    pub client_id: ClientId,
    /// The request it is about.
    pub ciba_request_id: String,
    /// The client's notification endpoint.
    pub endpoint: String,
    /// The `client_notification_token`, sealed.
    pub bearer_sealed: String,
    /// The JSON body, sealed.
    pub body_sealed: String,
    /// How many times it was claimed for delivery.
    pub attempts: i64,
    /// Not tried again before this.
    pub next_attempt_at: UnixTime,
    /// The lease of the node delivering it ends then (0: not leased).
    pub locked_until: UnixTime,
    /// When it was enqueued.
    pub created_at: UnixTime,
    /// When the client accepted it.
    pub delivered_at: Option<UnixTime>,
    /// When delivery was given up.
    pub failed_at: Option<UnixTime>,
    /// The last delivery error.
    pub last_error: Option<String>,
}

impl std::fmt::Debug for NotificationRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationRecord")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_forms_round_trip() {
        for state in CibaState::ALL {
            assert_eq!(CibaState::parse(state.as_str()), Some(*state));
            assert_eq!(state.to_string(), state.as_str());
        }
        assert_eq!(CibaState::parse("Pending"), None);
        for kind in [
            NotificationKind::Ping,
            NotificationKind::Push,
            NotificationKind::BackchannelLogout,
        ] {
            assert_eq!(NotificationKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(NotificationKind::parse("poll"), None);
    }

    #[test]
    fn notifications_do_not_print_sealed_values() {
        let new = NewNotification {
            kind: NotificationKind::Push,
            client_id: ClientId::new("pos-1"),
            ciba_request_id: "req-1".into(),
            endpoint: "https://pos.example/cb".into(),
            bearer_sealed: "SEALED-BEARER".into(),
            body_sealed: "SEALED-BODY".into(),
            due_at: 5,
        };
        let record = NotificationRecord {
            id: 7,
            kind: new.kind,
            client_id: new.client_id.clone(),
            ciba_request_id: new.ciba_request_id.clone(),
            endpoint: new.endpoint.clone(),
            bearer_sealed: new.bearer_sealed.clone(),
            body_sealed: new.body_sealed.clone(),
            attempts: 2,
            next_attempt_at: 5,
            locked_until: 0,
            created_at: 5,
            delivered_at: None,
            failed_at: None,
            last_error: None,
        };
        for printed in [format!("{new:?}"), format!("{record:?}")] {
            assert!(printed.contains("pos-1") && printed.contains("Push"), "{printed}");
            assert!(!printed.contains("SEALED"), "{printed}");
        }
        assert!(format!("{record:?}").contains("attempts: 2"));
    }
}

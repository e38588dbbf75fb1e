//! What each client profile requires and forbids (DESIGN "Profiles"). Endpoints
//! ask a [`Policy`]; they never test the profile name themselves. Rows are added
//! here as the features they govern land.

use outband_protocol::{Profile, SigningAlg, TokenEndpointAuthMethod};

/// The security policy of one profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    profile: Profile,
}

impl Policy {
    /// The policy of `profile`.
    pub fn of(profile: Profile) -> Self {
        Self { profile }
    }

    fn is_fapi(self) -> bool {
        !matches!(self.profile, Profile::Oidc)
    }

    /// Algorithms accepted for anything the client signs (client assertions,
    /// request objects): never `none`; RS256 only for plain OIDC clients; PS256 only
    /// under Open Finance Brasil; EdDSA also under FAPI 2.
    pub fn signing_algs(self) -> &'static [SigningAlg] {
        match self.profile {
            Profile::Oidc => &[
                SigningAlg::ES256,
                SigningAlg::PS256,
                SigningAlg::EdDSA,
                SigningAlg::RS256,
            ],
            Profile::Fapi2Security | Profile::Fapi2MessageSigning => {
                &[SigningAlg::ES256, SigningAlg::PS256, SigningAlg::EdDSA]
            }
            Profile::OpenbankingBr => &[SigningAlg::PS256],
            Profile::Fapi1Baseline | Profile::Fapi1Advanced | Profile::FapiCiba => {
                &[SigningAlg::ES256, SigningAlg::PS256]
            }
        }
    }

    /// Client authentication methods the profile allows at the token endpoint.
    /// Under FAPI 1.0 Part 1 (`fapi1-baseline`) §5.2.2 item 4 a confidential client
    /// authenticates with mutual TLS or `private_key_jwt` (`client_secret_jwt` is
    /// not offered here), and public clients (`none`, item 2 "should support public
    /// clients") are allowed, held to PKCE with `S256` ([`Self::requires_pkce`],
    /// [`Self::allows_plain_pkce`]).
    pub fn allows_auth_method(self, method: TokenEndpointAuthMethod) -> bool {
        use TokenEndpointAuthMethod as M;
        match method {
            M::PrivateKeyJwt | M::TlsClientAuth => true,
            M::SelfSignedTlsClientAuth => self.profile != Profile::OpenbankingBr,
            M::ClientSecretBasic | M::ClientSecretPost => !self.is_fapi(),
            // Public clients: plain OIDC, and native apps under FAPI 1 baseline (with PKCE).
            M::None => matches!(self.profile, Profile::Oidc | Profile::Fapi1Baseline),
        }
    }

    /// The ID token algorithm when the client registered none: RS256 is the
    /// OpenID Connect default; FAPI profiles never use it.
    pub fn default_id_token_alg(self) -> SigningAlg {
        if self.is_fapi() {
            SigningAlg::PS256
        } else {
            SigningAlg::RS256
        }
    }

    /// Whether every redirect URI must be `https` (FAPI 1 Part 1 §5.2.2, FAPI 2
    /// Security Profile §5.3.2.2): every FAPI profile. Plain OIDC clients may use http.
    pub fn requires_https_redirect_uris(self) -> bool {
        self.is_fapi()
    }

    /// Whether native apps may use loopback `http` redirect URIs
    /// ([RFC 8252 §7.3](https://www.rfc-editor.org/rfc/rfc8252#section-7.3)) even
    /// though [`Self::requires_https_redirect_uris`]: FAPI 1 baseline only.
    pub fn allows_loopback_redirect_uris(self) -> bool {
        matches!(self.profile, Profile::Oidc | Profile::Fapi1Baseline)
    }

    /// Whether a *public* client (a native app, `token_endpoint_auth_method:
    /// none`) may register the redirect URIs of
    /// [RFC 8252 §7](https://www.rfc-editor.org/rfc/rfc8252#section-7) besides
    /// `https` ones: loopback `http://127.0.0.1:{port}` / `http://[::1]:{port}`
    /// (§7.3) and private-use schemes in reverse-domain form (§7.1). FAPI 1.0
    /// Part 1 §5.2.2 item 20 asks for `https` redirect URIs; we read it, with
    /// BCP 212 which Part 1 points native apps to, as applying to confidential
    /// clients, so only public native clients of `oidc` and `fapi1-baseline` get
    /// these. Confidential `fapi1-baseline` clients stay `https` only.
    pub fn allows_native_redirect_uris(self, public: bool) -> bool {
        match self.profile {
            Profile::Oidc => true,
            Profile::Fapi1Baseline => public,
            _ => false,
        }
    }

    /// Whether CIBA authentication requests must be signed request objects
    /// (FAPI-CIBA §5.2.2).
    pub fn requires_signed_ciba_request(self) -> bool {
        matches!(self.profile, Profile::FapiCiba)
    }

    /// Whether a CIBA request without `authorization_details` (a unique context
    /// of its own) must carry a `binding_message` (FAPI-CIBA §5.2.2).
    pub fn requires_ciba_binding_message(self) -> bool {
        matches!(self.profile, Profile::FapiCiba)
    }

    /// Whether the CIBA push mode is allowed (FAPI-CIBA forbids it).
    pub fn allows_ciba_push(self) -> bool {
        !matches!(self.profile, Profile::FapiCiba)
    }

    fn is_fapi2(self) -> bool {
        matches!(self.profile, Profile::Fapi2Security | Profile::Fapi2MessageSigning)
    }

    /// Whether every access token of the client must be sender-constrained by
    /// the client's choice of method: FAPI 2.0 Security Profile §5.3.2.1 "shall
    /// only issue sender-constrained access tokens" using mutual TLS
    /// ([RFC 8705](https://www.rfc-editor.org/rfc/rfc8705)) or DPoP
    /// ([RFC 9449](https://www.rfc-editor.org/rfc/rfc9449)). A client registered
    /// with `tls_client_certificate_bound_access_tokens` (RFC 8705 §3.4) gets
    /// certificate-bound tokens and must send its certificate; any other client
    /// must send a DPoP proof, else `invalid_dpop_proof`. A client that does both
    /// gets tokens bound to both. FAPI 1 Advanced, FAPI-CIBA and Open Finance
    /// Brasil bind every token to the certificate instead
    /// ([`Self::requires_certificate_bound_tokens`]).
    pub fn requires_sender_constrained_tokens(self) -> bool {
        self.is_fapi2()
    }

    /// Whether every access token of the client is bound to its client
    /// certificate ([RFC 8705 §3](https://www.rfc-editor.org/rfc/rfc8705#section-3)),
    /// whatever it registered: FAPI 1 Advanced §5.2.2 "shall only issue
    /// sender-constrained access tokens" with mutual TLS, and FAPI-CIBA and Open
    /// Finance Brasil build on it.
    pub fn requires_certificate_bound_tokens(self) -> bool {
        matches!(
            self.profile,
            Profile::Fapi1Advanced | Profile::FapiCiba | Profile::OpenbankingBr
        )
    }

    /// Whether the client's DPoP proofs must carry a server nonce
    /// ([RFC 9449 §8](https://www.rfc-editor.org/rfc/rfc9449#section-8)), whatever
    /// `[tokens] dpop_nonce` and `[resource] dpop_nonce` say. The FAPI 2.0 Security
    /// Profile lets an authorization server use server nonces ("may use the server
    /// provided nonce mechanism") and requires every FAPI 2 client that uses DPoP
    /// to support them ("shall support the server provided nonce mechanism"), so
    /// asking for one never breaks a conformant client, and it closes the window
    /// in which a proof made in advance could be used.
    pub fn requires_dpop_nonce(self) -> bool {
        self.is_fapi2()
    }

    /// The longest `exp − nbf` of a signed request object, in seconds (FAPI: 60 minutes).
    pub fn max_request_object_lifetime(self) -> i64 {
        3600
    }

    /// The longest lifetime (`exp` − now) we accept for a client assertion, in seconds.
    pub fn max_assertion_lifetime(self) -> i64 {
        // FAPI 2 asks for short-lived assertions; 10 minutes covers clock skew and
        // every client library we know while keeping replay windows small.
        600
    }

    /// Whether the client's authorization requests must be pushed to `/par`
    /// first ([RFC 9126](https://www.rfc-editor.org/rfc/rfc9126)): FAPI 2.0
    /// Security Profile §5.3.2.2 "shall require pushed authorization requests",
    /// and Open Finance Brasil.
    pub fn requires_par(self) -> bool {
        self.is_fapi2() || matches!(self.profile, Profile::OpenbankingBr)
    }

    /// Whether every authorization request must name a consent resource in the
    /// dynamic scope `consent:{consentId}` (Open Finance Brasil: the consent is
    /// created by API first and the authorization only authorises it; see
    /// [`crate::consents::authorize`]). A request without it is `invalid_scope`.
    pub fn requires_consent_scope(self) -> bool {
        matches!(self.profile, Profile::OpenbankingBr)
    }

    /// Whether calls to the resource APIs (`/api/*`, `/open-banking/*`) must
    /// send an `x-fapi-interaction-id` that is a UUID (RFC 4122). Open Finance
    /// Brasil's APIs make it mandatory for the client: "Caso não seja recebido ou
    /// se for recebido um valor inválido, a transmissora deve gerar um
    /// x-fapi-interaction-id e retorná-lo na resposta com o HTTP Status Code 400".
    /// Every other profile follows FAPI 1 Baseline §6.2.1 (echo it, or make one).
    pub fn requires_fapi_interaction_id(self) -> bool {
        matches!(self.profile, Profile::OpenbankingBr)
    }

    /// Whether an authorization request must carry a PKCE `code_challenge`
    /// ([RFC 7636](https://www.rfc-editor.org/rfc/rfc7636)); `pushed` says whether
    /// it came through `/par`.
    ///
    /// - FAPI 1.0 Part 1 (`fapi1-baseline`) §5.2.2 item 7, the FAPI 2.0 Security
    ///   Profile §5.3.2.2 (and Message Signing on it), and Open Finance Brasil
    ///   (which requires PAR anyway): every request.
    /// - FAPI 1.0 Part 2 (`fapi1-advanced`, and `fapi-ciba` in the browser)
    ///   §5.2.2 item 18: "shall require PAR requests, if supported, to use PKCE
    ///   (RFC7636) with S256"; a request object sent to `/authorize` directly
    ///   needs none (the OpenID conformance suite's FAPI1-Advanced-Final plans
    ///   add PKCE only with PAR).
    /// - Plain OIDC: never by profile.
    ///
    /// Public clients need PKCE under every profile (the endpoint checks that);
    /// `plain` is refused under FAPI ([`Self::allows_plain_pkce`]).
    pub fn requires_pkce(self, pushed: bool) -> bool {
        match self.profile {
            Profile::Oidc => false,
            Profile::Fapi1Advanced | Profile::FapiCiba => pushed,
            Profile::Fapi1Baseline | Profile::Fapi2Security | Profile::Fapi2MessageSigning | Profile::OpenbankingBr => {
                true
            }
        }
    }

    /// Whether the PKCE method `plain` is accepted: only for plain OIDC clients;
    /// every FAPI profile requires `S256`.
    pub fn allows_plain_pkce(self) -> bool {
        !self.is_fapi()
    }

    /// FAPI 1 Advanced and the profiles built on it for the browser (FAPI-CIBA,
    /// Open Finance Brasil).
    fn is_fapi1_advanced_family(self) -> bool {
        matches!(
            self.profile,
            Profile::Fapi1Advanced | Profile::FapiCiba | Profile::OpenbankingBr
        )
    }

    /// Whether the authorization response itself must be signed: FAPI 1.0 Part 2
    /// (Advanced) §5.2.2 item 2, "shall require the `response_type` value
    /// `code id_token`, or the `response_type` value `code` in conjunction with the
    /// `response_mode` value `jwt`" (the ID token as detached signature, §5.2.2.2,
    /// or JARM, §5.2.2.3). Plain `code` answered in the query is refused with
    /// `unsupported_response_type`.
    pub fn requires_signed_authorization_response(self) -> bool {
        self.is_fapi1_advanced_family()
    }

    /// Whether authorization requests must be signed request objects (JAR,
    /// RFC 9101): FAPI 1.0 Part 2 §5.2.2 item 1 "shall require the `request` or
    /// `request_uri` parameter to be passed as a JWS signed JWT"; FAPI 2.0 Message
    /// Signing §5.3 (signed request objects at the PAR endpoint); Open Finance
    /// Brasil (signed request objects at PAR). A pushed request must then carry a
    /// `request` object at `/par`, and a request sent to `/authorize` directly must
    /// be a `request` object (else `invalid_request`).
    pub fn requires_signed_request_object(self) -> bool {
        self.is_fapi1_advanced_family() || matches!(self.profile, Profile::Fapi2MessageSigning)
    }

    /// Whether a request object must carry `exp` and `nbf`: FAPI 1.0 Part 2
    /// §5.2.2 item 13 ("shall require the request object to contain an `exp`
    /// claim that has a lifetime of no longer than 60 minutes after the `nbf`
    /// claim") and item 17 ("shall require the request object to contain an `nbf`
    /// claim that is no longer than 60 minutes in the past"), FAPI 2.0 Message
    /// Signing §5.3.2, and the profiles on them: where signed request objects are
    /// required ([`Self::requires_signed_request_object`]). RFC 9101 and OpenID
    /// Connect Core §6.1 require neither; elsewhere they are checked when present.
    pub fn requires_request_object_exp_and_nbf(self) -> bool {
        self.requires_signed_request_object()
    }

    /// Whether the hybrid flow (`response_type=code id_token`, OpenID Connect
    /// Core §3.3) is served: not under FAPI 2.0, whose Security Profile
    /// (§5.3.2.2) requires `response_type` `code` and has the authorization
    /// server "reject requests using ... the hybrid flow as described in [OIDC]"
    /// (no tokens from the authorization endpoint). Such a request is
    /// `unsupported_response_type`.
    pub fn allows_hybrid_flow(self) -> bool {
        !self.is_fapi2()
    }

    /// Whether a client assertion's `aud` must be the issuer identifier, and
    /// only it, as a JSON string: FAPI 2.0 Security Profile §5.3.2.1 "shall only
    /// accept its issuer identifier value (as defined in [RFC8414]) as a string
    /// in the `aud` claim received in client authentication assertions" (the
    /// audience injection attack on `private_key_jwt`). Other profiles also
    /// accept the token endpoint URL, the URL of the endpoint called (RFC 9126
    /// §2, CIBA Core §7.1) and arrays holding one of these.
    pub fn requires_issuer_assertion_audience(self) -> bool {
        self.is_fapi2()
    }

    /// Whether a request with the `openid` scope must carry a `nonce`: FAPI 1.0
    /// Part 1 §5.2.2.2 ("If the client requests the openid scope, the authorization
    /// server shall require the nonce parameter"), which Part 2 §5.2.2 inherits.
    /// (The hybrid flow needs a `nonce` under every profile: OpenID Connect Core
    /// §3.3.2.11.)
    pub fn requires_nonce_with_openid(self) -> bool {
        self.is_fapi1_advanced_family() || matches!(self.profile, Profile::Fapi1Baseline)
    }

    /// Whether a request without the `openid` scope must carry a `state`: FAPI
    /// 1.0 Part 1 §5.2.2.3 ("Clients not requesting openid scope ... shall require
    /// the state parameter"), which Part 2 §5.2.2 inherits.
    pub fn requires_state_without_openid(self) -> bool {
        self.is_fapi1_advanced_family() || matches!(self.profile, Profile::Fapi1Baseline)
    }

    /// The algorithm of signed authorization responses (JARM §3
    /// `authorization_signed_response_alg`) when the client registered none: JARM's
    /// default RS256 for plain OIDC clients; PS256 under FAPI, which never uses RS256.
    pub fn default_authorization_response_alg(self) -> SigningAlg {
        self.default_id_token_alg()
    }

    /// Whether the server may sign `alg` for this client (ID tokens, JARM
    /// responses, UserInfo responses): an algorithm the profile allows.
    pub fn allows_response_signing_alg(self, alg: SigningAlg) -> bool {
        self.signing_algs().contains(&alg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fapi_profiles_refuse_secrets_rs256_and_none() {
        for profile in [
            Profile::Fapi1Advanced,
            Profile::Fapi2Security,
            Profile::FapiCiba,
            Profile::OpenbankingBr,
        ] {
            let policy = Policy::of(profile);
            assert!(
                !policy.allows_auth_method(TokenEndpointAuthMethod::ClientSecretBasic),
                "{profile}"
            );
            assert!(
                !policy.allows_auth_method(TokenEndpointAuthMethod::ClientSecretPost),
                "{profile}"
            );
            assert!(!policy.allows_auth_method(TokenEndpointAuthMethod::None), "{profile}");
            assert!(!policy.signing_algs().contains(&SigningAlg::RS256), "{profile}");
            assert!(
                policy.allows_auth_method(TokenEndpointAuthMethod::PrivateKeyJwt),
                "{profile}"
            );
        }
    }

    #[test]
    fn fapi2_requires_sender_constrained_tokens_and_dpop_nonces() {
        for profile in [Profile::Fapi2Security, Profile::Fapi2MessageSigning] {
            assert!(Policy::of(profile).requires_sender_constrained_tokens(), "{profile}");
            assert!(Policy::of(profile).requires_dpop_nonce(), "{profile}");
        }
        for profile in [Profile::Oidc, Profile::FapiCiba, Profile::Fapi1Advanced] {
            assert!(!Policy::of(profile).requires_sender_constrained_tokens(), "{profile}");
            assert!(!Policy::of(profile).requires_dpop_nonce(), "{profile}");
        }
        for profile in [Profile::FapiCiba, Profile::Fapi1Advanced, Profile::OpenbankingBr] {
            assert!(Policy::of(profile).requires_certificate_bound_tokens(), "{profile}");
        }
        for profile in [Profile::Oidc, Profile::Fapi1Baseline, Profile::Fapi2Security] {
            assert!(!Policy::of(profile).requires_certificate_bound_tokens(), "{profile}");
        }
    }

    #[test]
    fn browser_flow_rules() {
        for profile in [
            Profile::Fapi2Security,
            Profile::Fapi2MessageSigning,
            Profile::OpenbankingBr,
        ] {
            assert!(Policy::of(profile).requires_par(), "{profile}");
        }
        for profile in [Profile::Oidc, Profile::Fapi1Advanced, Profile::FapiCiba] {
            assert!(!Policy::of(profile).requires_par(), "{profile}");
        }
        let oidc = Policy::of(Profile::Oidc);
        assert!(oidc.allows_plain_pkce() && !oidc.requires_pkce(false) && !oidc.requires_pkce(true));
        for profile in [
            Profile::Fapi1Baseline,
            Profile::Fapi2Security,
            Profile::Fapi2MessageSigning,
            Profile::OpenbankingBr,
        ] {
            let policy = Policy::of(profile);
            assert!(
                policy.requires_pkce(false) && policy.requires_pkce(true) && !policy.allows_plain_pkce(),
                "{profile}"
            );
        }
        // FAPI 1.0 Part 2 §5.2.2 item 18: PKCE for pushed requests only.
        for profile in [Profile::Fapi1Advanced, Profile::FapiCiba] {
            let policy = Policy::of(profile);
            assert!(
                !policy.requires_pkce(false) && policy.requires_pkce(true) && !policy.allows_plain_pkce(),
                "{profile}"
            );
        }
    }

    #[test]
    fn only_brazil_requires_consents_and_interaction_ids() {
        for profile in [
            Profile::Oidc,
            Profile::Fapi1Advanced,
            Profile::Fapi2Security,
            Profile::FapiCiba,
        ] {
            assert!(!Policy::of(profile).requires_consent_scope(), "{profile}");
            assert!(!Policy::of(profile).requires_fapi_interaction_id(), "{profile}");
        }
        let brazil = Policy::of(Profile::OpenbankingBr);
        assert!(brazil.requires_consent_scope() && brazil.requires_fapi_interaction_id());
        assert!(!brazil.allows_auth_method(TokenEndpointAuthMethod::SelfSignedTlsClientAuth));
        assert!(brazil.allows_auth_method(TokenEndpointAuthMethod::TlsClientAuth));
    }

    #[test]
    fn signed_requests_and_responses() {
        for profile in [Profile::Fapi1Advanced, Profile::FapiCiba, Profile::OpenbankingBr] {
            let policy = Policy::of(profile);
            assert!(policy.requires_signed_authorization_response(), "{profile}");
            assert!(policy.requires_signed_request_object(), "{profile}");
            assert!(policy.requires_request_object_exp_and_nbf(), "{profile}");
            assert!(policy.requires_nonce_with_openid(), "{profile}");
            assert_eq!(policy.default_authorization_response_alg(), SigningAlg::PS256);
        }
        let ms = Policy::of(Profile::Fapi2MessageSigning);
        assert!(ms.requires_signed_request_object() && !ms.requires_signed_authorization_response());
        assert!(ms.requires_request_object_exp_and_nbf());
        for profile in [Profile::Oidc, Profile::Fapi1Baseline, Profile::Fapi2Security] {
            let policy = Policy::of(profile);
            assert!(!policy.requires_signed_request_object(), "{profile}");
            assert!(!policy.requires_request_object_exp_and_nbf(), "{profile}");
            assert!(!policy.requires_signed_authorization_response(), "{profile}");
        }
        let oidc = Policy::of(Profile::Oidc);
        assert_eq!(oidc.default_authorization_response_alg(), SigningAlg::RS256);
        assert!(!Policy::of(Profile::Fapi1Advanced).allows_response_signing_alg(SigningAlg::RS256));
    }

    #[test]
    fn fapi2_refuses_the_hybrid_flow_and_wants_the_issuer_as_audience() {
        for profile in [Profile::Fapi2Security, Profile::Fapi2MessageSigning] {
            assert!(!Policy::of(profile).allows_hybrid_flow(), "{profile}");
            assert!(Policy::of(profile).requires_issuer_assertion_audience(), "{profile}");
        }
        for profile in [
            Profile::Oidc,
            Profile::Fapi1Advanced,
            Profile::FapiCiba,
            Profile::OpenbankingBr,
        ] {
            assert!(Policy::of(profile).allows_hybrid_flow(), "{profile}");
            assert!(!Policy::of(profile).requires_issuer_assertion_audience(), "{profile}");
        }
    }

    #[test]
    fn brazil_is_ps256_only() {
        assert_eq!(Policy::of(Profile::OpenbankingBr).signing_algs(), &[SigningAlg::PS256]);
    }

    #[test]
    fn oidc_allows_everything_but_none_alg() {
        let policy = Policy::of(Profile::Oidc);
        assert!(policy.signing_algs().contains(&SigningAlg::RS256));
        assert!(policy.allows_auth_method(TokenEndpointAuthMethod::ClientSecretBasic));
    }
}

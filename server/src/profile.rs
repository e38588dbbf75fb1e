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

    /// Whether every access token of the client must be sender-constrained, so a
    /// token request without a DPoP proof is refused. FAPI 2.0 Security Profile,
    /// "Requirements for authorization servers": "shall only issue
    /// sender-constrained access tokens" (mutual TLS or DPoP). We hold FAPI 2
    /// clients to DPoP; FAPI 1 Advanced, FAPI-CIBA and Open Finance Brasil ask for
    /// certificate-bound tokens instead ([`Self::requires_certificate_bound_tokens`]).
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

    /// Whether an authorization request must carry a PKCE `code_challenge`
    /// ([RFC 7636](https://www.rfc-editor.org/rfc/rfc7636)): under every FAPI
    /// profile. Plain OIDC asks it of public clients only (the endpoint checks that).
    pub fn requires_pkce(self) -> bool {
        self.is_fapi()
    }

    /// Whether the PKCE method `plain` is accepted: only for plain OIDC clients;
    /// every FAPI profile requires `S256`.
    pub fn allows_plain_pkce(self) -> bool {
        !self.is_fapi()
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
    fn fapi2_requires_dpop_with_nonces() {
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
        assert!(Policy::of(Profile::Oidc).allows_plain_pkce() && !Policy::of(Profile::Oidc).requires_pkce());
        for profile in [Profile::Fapi1Advanced, Profile::Fapi2Security, Profile::Fapi1Baseline] {
            assert!(
                Policy::of(profile).requires_pkce() && !Policy::of(profile).allows_plain_pkce(),
                "{profile}"
            );
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

//! JOSE helpers over `josekit`: signing and verifying JWTs with the algorithms
//! Outband allows, JWK thumbprints ([RFC 7638](https://www.rfc-editor.org/rfc/rfc7638))
//! and the hashes OpenID Connect puts in ID tokens.
//!
//! Verification never trusts the token's header to choose the algorithm: the
//! caller passes the algorithms it accepts, and `none` is never one of them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use josekit::jwk::alg::ec::EcCurve;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{EdDSA, JwsHeader, JwsSigner, JwsVerifier, ES256, PS256, RS256};
use josekit::jwt::JwtPayload;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use josekit::jwk::Jwk;

/// Errors from signing or verifying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoseError {
    /// The input is not a compact JWS, or a part is not valid base64url/JSON.
    #[error("malformed JWT: {0}")]
    Malformed(String),
    /// The header names an algorithm the caller does not accept (including `none`).
    #[error("algorithm {0:?} is not allowed")]
    AlgorithmNotAllowed(String),
    /// No key of the given set can verify the signature.
    #[error("signature is not valid for any known key")]
    BadSignature,
    /// A key is unusable for the requested operation.
    #[error("unusable key: {0}")]
    BadKey(String),
}

/// A JWS algorithm Outband signs or verifies with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: plain OpenID Connect clients only, never under FAPI.
    RS256,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl SigningAlg {
    /// All algorithms, strongest-preferred first.
    pub const ALL: [SigningAlg; 4] = [Self::ES256, Self::PS256, Self::EdDSA, Self::RS256];

    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    /// Parses an `alg` value; `none` and unknown names give `None`.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == value)
    }

    /// Whether a JWK of this key type and curve can carry this algorithm.
    fn fits(self, jwk: &Jwk) -> bool {
        match self {
            Self::RS256 | Self::PS256 => jwk.key_type() == "RSA",
            Self::ES256 => jwk.key_type() == "EC" && jwk.curve() == Some("P-256"),
            Self::EdDSA => jwk.key_type() == "OKP" && jwk.curve() == Some("Ed25519"),
        }
    }

    fn signer(self, jwk: &Jwk) -> Result<Box<dyn JwsSigner>, JoseError> {
        let bad = |e: josekit::JoseError| JoseError::BadKey(e.to_string());
        Ok(match self {
            Self::RS256 => Box::new(RS256.signer_from_jwk(jwk).map_err(bad)?),
            Self::PS256 => Box::new(PS256.signer_from_jwk(jwk).map_err(bad)?),
            Self::ES256 => Box::new(ES256.signer_from_jwk(jwk).map_err(bad)?),
            Self::EdDSA => Box::new(EdDSA.signer_from_jwk(jwk).map_err(bad)?),
        })
    }

    fn verifier(self, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, JoseError> {
        let bad = |e: josekit::JoseError| JoseError::BadKey(e.to_string());
        Ok(match self {
            Self::RS256 => Box::new(RS256.verifier_from_jwk(jwk).map_err(bad)?),
            Self::PS256 => Box::new(PS256.verifier_from_jwk(jwk).map_err(bad)?),
            Self::ES256 => Box::new(ES256.verifier_from_jwk(jwk).map_err(bad)?),
            Self::EdDSA => Box::new(EdDSA.verifier_from_jwk(jwk).map_err(bad)?),
        })
    }

    /// Generates a fresh private key for this algorithm, as a JWK with `alg` set.
    pub fn generate_private_jwk(self) -> Result<Jwk, JoseError> {
        let bad = |e: josekit::JoseError| JoseError::BadKey(e.to_string());
        let mut jwk = match self {
            Self::RS256 => RS256.generate_key_pair(2048).map_err(bad)?.to_jwk_key_pair(),
            Self::PS256 => PS256.generate_key_pair(2048).map_err(bad)?.to_jwk_key_pair(),
            Self::ES256 => ES256.generate_key_pair().map_err(bad)?.to_jwk_key_pair(),
            Self::EdDSA => EdDSA
                .generate_key_pair(EdCurve::Ed25519)
                .map_err(bad)?
                .to_jwk_key_pair(),
        };
        jwk.set_algorithm(self.as_str());
        jwk.set_key_use("sig");
        Ok(jwk)
    }
}

impl std::str::FromStr for SigningAlg {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        Self::parse(value)
            .ok_or_else(|| format!("unknown algorithm {value:?}; expected one of ES256, PS256, EdDSA, RS256"))
    }
}

impl std::fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A private signing key with its `kid` and algorithm.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    signer: Box<dyn JwsSigner>,
    public: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Builds a signing key from a private JWK. The JWK's `kid` is used when it has
    /// one; otherwise its RFC 7638 thumbprint becomes the `kid`.
    pub fn from_private_jwk(jwk: &Jwk, alg: SigningAlg) -> Result<Self, JoseError> {
        if !alg.fits(jwk) {
            return Err(JoseError::BadKey(format!("{} key cannot sign {alg}", jwk.key_type())));
        }
        let mut public = public_jwk(jwk)?;
        let kid = match jwk.key_id() {
            Some(kid) => kid.to_owned(),
            None => jwk_thumbprint(&public)?,
        };
        public.set_key_id(kid.clone());
        public.set_algorithm(alg.as_str());
        public.set_key_use("sig");
        let signer = alg.signer(jwk)?;
        Ok(Self {
            kid,
            alg,
            signer,
            public,
        })
    }

    /// The key identifier put in every JWT this key signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The public half, with `kid`, `alg` and `use` set: safe to publish.
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// Signs `claims` as a compact JWS with `kid`, `alg` and the given `typ`.
    pub fn sign(&self, typ: Option<&str>, claims: &Map<String, Value>) -> Result<String, JoseError> {
        let mut header = JwsHeader::new();
        header.set_key_id(self.kid.clone());
        if let Some(typ) = typ {
            header.set_token_type(typ);
        }
        self.sign_with_header(header, claims)
    }

    /// Signs `claims` with a caller-built header (`kid` is set by this key).
    pub fn sign_with_header(&self, mut header: JwsHeader, claims: &Map<String, Value>) -> Result<String, JoseError> {
        header.set_key_id(self.kid.clone());
        let payload = JwtPayload::from_map(claims.clone()).map_err(|e| JoseError::Malformed(e.to_string()))?;
        josekit::jwt::encode_with_signer(&payload, &header, &*self.signer).map_err(|e| JoseError::BadKey(e.to_string()))
    }
}

/// The public part of a JWK (private members removed).
pub fn public_jwk(jwk: &Jwk) -> Result<Jwk, JoseError> {
    let mut map = jwk.as_ref().clone();
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        map.remove(private);
    }
    if jwk.key_type() == "oct" {
        return Err(JoseError::BadKey("symmetric keys have no public part".into()));
    }
    Jwk::from_map(map).map_err(|e| JoseError::BadKey(e.to_string()))
}

/// Whether a JWK carries private key material.
pub fn is_private_jwk(jwk: &Jwk) -> bool {
    ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
        .iter()
        .any(|m| jwk.parameter(m).is_some())
}

/// The decoded, not yet verified, parts of a compact JWS.
#[derive(Clone, Debug)]
pub struct UnverifiedJwt {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
}

impl UnverifiedJwt {
    /// Splits and decodes a compact JWS without checking its signature: only for
    /// reading `kid`, `iss` or `typ` to pick the verification keys.
    pub fn decode(token: &str) -> Result<Self, JoseError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(_sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(JoseError::Malformed("a JWT has three dot-separated parts".into()));
        };
        let decode_part = |part: &str, what: &str| -> Result<Map<String, Value>, JoseError> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| JoseError::Malformed(format!("{what} is not base64url")))?;
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(JoseError::Malformed(format!("{what} is not a JSON object"))),
            }
        };
        Ok(Self {
            header: decode_part(h, "header")?,
            claims: decode_part(c, "payload")?,
        })
    }

    /// The header's `alg`.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// The header's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// The header's `typ`.
    pub fn typ(&self) -> Option<&str> {
        self.header.get("typ").and_then(Value::as_str)
    }

    /// A string claim.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

/// A JWT whose signature has been verified.
#[derive(Clone, Debug)]
pub struct VerifiedJwt {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
    /// The algorithm that verified it.
    pub alg: SigningAlg,
}

/// Verifies a compact JWS against a set of public keys, accepting only `allowed` algorithms.
///
/// Keys are chosen by `kid` when the header has one, otherwise every key whose type
/// fits the algorithm is tried. The `kid` is a hint ([RFC 7515
/// §4.1.4](https://www.rfc-editor.org/rfc/rfc7515#section-4.1.4)): when no key
/// carries it, the keys without a `kid` that fit the algorithm are tried (a key
/// with another `kid` never is). A key whose own `alg` differs is never used.
pub fn verify_jwt(token: &str, keys: &[Jwk], allowed: &[SigningAlg]) -> Result<VerifiedJwt, JoseError> {
    let unverified = UnverifiedJwt::decode(token)?;
    let alg_name = unverified
        .alg()
        .ok_or_else(|| JoseError::Malformed("header has no alg".into()))?;
    let alg = SigningAlg::parse(alg_name)
        .filter(|alg| allowed.contains(alg))
        .ok_or_else(|| JoseError::AlgorithmNotAllowed(alg_name.to_owned()))?;
    let usable = |jwk: &&Jwk| {
        alg.fits(jwk) && jwk.algorithm().is_none_or(|a| a == alg.as_str()) && jwk.key_use().is_none_or(|u| u == "sig")
    };
    let kid = unverified.kid();
    let named = |jwk: &&Jwk| kid.is_none_or(|kid| jwk.key_id() == Some(kid));
    let kid_known = kid.is_some_and(|kid| keys.iter().any(|jwk| jwk.key_id() == Some(kid)));
    let unnamed = |jwk: &&Jwk| !kid_known && jwk.key_id().is_none();
    let candidates = keys.iter().filter(usable).filter(|jwk| named(jwk) || unnamed(jwk));
    for jwk in candidates {
        let Ok(verifier) = alg.verifier(jwk) else { continue };
        if let Ok((payload, header)) = josekit::jwt::decode_with_verifier(token, &*verifier) {
            return Ok(VerifiedJwt {
                header: header.claims_set().clone(),
                claims: payload.claims_set().clone(),
                alg,
            });
        }
    }
    Err(JoseError::BadSignature)
}

/// The RFC 7638 JWK thumbprint (SHA-256, base64url), as used in DPoP `jkt` and as a `kid`.
pub fn jwk_thumbprint(jwk: &Jwk) -> Result<String, JoseError> {
    // Required members only, in lexicographic order (RFC 7638 §3.2).
    let members: &[&str] = match jwk.key_type() {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        "oct" => &["k", "kty"],
        other => return Err(JoseError::BadKey(format!("unknown key type {other}"))),
    };
    let mut canonical = Map::new();
    for member in members {
        let value = jwk
            .parameter(member)
            .ok_or_else(|| JoseError::BadKey(format!("JWK has no {member}")))?;
        canonical.insert((*member).to_owned(), value.clone());
    }
    // serde_json's Map keeps keys sorted (no preserve_order feature), which is the
    // order RFC 7638 asks for, and writes no white space.
    let json = serde_json::to_vec(&canonical).map_err(|e| JoseError::BadKey(e.to_string()))?;
    Ok(sha256_b64url(&json))
}

/// SHA-256 of `bytes`, base64url without padding.
pub fn sha256_b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(bytes))
}

/// The left-most half of the SHA-256 of `value`, base64url: `at_hash`, `c_hash`,
/// `s_hash` and `urn:openid:params:jwt:claim:rt_hash` for every algorithm we sign
/// with ([OpenID Connect Core §3.1.3.6](https://openid.net/specs/openid-connect-core-1_0.html#CodeIDToken);
/// Ed25519 uses SHA-512 per the spec's errata, see [`half_hash_for`]).
pub fn half_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let half = digest.len() / 2;
    URL_SAFE_NO_PAD.encode(digest.get(..half).unwrap_or_default())
}

/// The left-most half hash for the algorithm that signed the ID token. For EdDSA
/// (Ed25519) the hash is SHA-512, as the OpenID Foundation's errata say.
pub fn half_hash_for(alg: SigningAlg, value: &str) -> String {
    match alg {
        SigningAlg::EdDSA => {
            let digest = sha2::Sha512::digest(value.as_bytes());
            let half = digest.len() / 2;
            URL_SAFE_NO_PAD.encode(digest.get(..half).unwrap_or_default())
        }
        _ => half_hash(value),
    }
}

/// Parses a JWK from JSON.
pub fn parse_jwk(value: &Value) -> Result<Jwk, JoseError> {
    match value {
        Value::Object(map) => Jwk::from_map(map.clone()).map_err(|e| JoseError::BadKey(e.to_string())),
        _ => Err(JoseError::BadKey("a JWK is a JSON object".into())),
    }
}

/// EC curve P-256, re-exported for key generation in tests and clients.
pub const P256: EcCurve = EcCurve::P256;

#[cfg(test)]
mod tests;

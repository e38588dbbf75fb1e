//! Any string as a JWT: what every endpoint does first with a client assertion,
//! a request object, a DPoP proof or a device decision (decode without
//! verifying, read the header, then verify against a key set). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outband_protocol::jose::{parse_jwk, verify_jwt, SigningAlg, UnverifiedJwt};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(jwt) = UnverifiedJwt::decode(token) {
        let _ = (jwt.alg(), jwt.kid(), jwt.typ(), jwt.claim_str("iss"));
    }
    let key = serde_json::json!({
        "kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tw8ebt5NX0fg",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    });
    if let Ok(jwk) = parse_jwk(&key) {
        let _ = verify_jwt(token, &[jwk], &[SigningAlg::ES256, SigningAlg::PS256, SigningAlg::EdDSA]);
    }
});

//! The cargo-fuzz targets of `fuzz/` as stable property tests, run by every
//! `cargo xtask test`: the same entry points (the JWT decoder and verifier, the
//! form parsers, the `authorization_details` parser and checker), fed arbitrary
//! bytes and strings and structured-but-hostile values. None may panic, and
//! every refusal is the error the spec names: a malformed JWT is
//! [`JoseError::Malformed`], a repeated form parameter is `invalid_request`, bad
//! `authorization_details` are `invalid_authorization_details`.
//!
//! Case counts are bounded ([`CASES`]) so the whole file runs in a few seconds;
//! proptest prints the failing input, shrunk, when a property breaks.

// The helpers return the server's own error type, which is what is checked.
#![allow(clippy::result_large_err)]

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use outband_protocol::jose::{parse_jwk, verify_jwt, JoseError, Jwk, SigningAlg, SigningKey, UnverifiedJwt};
use outband_protocol::ErrorCode;
use outband_server::authorize::request::parse_params;
use outband_server::error::Error;
use outband_server::extract::FormParams;
use outband_server::rar;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Cases per property: enough to reach the branches, few enough for seconds.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------- JWT

/// The public key the `jwt` fuzz target verifies against (RFC 7515 A.3's P-256 key).
fn fuzz_target_key() -> Jwk {
    parse_jwk(&json!({
        "kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tw8ebt5NX0fg",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }))
    .unwrap()
}

/// A real ES256 key, to sign tokens that hostile edits then break.
fn signer() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let private = SigningAlg::ES256.generate_private_jwk().unwrap();
        SigningKey::from_private_jwk(&private, SigningAlg::ES256).unwrap()
    })
}

const ALLOWED: [SigningAlg; 3] = [SigningAlg::ES256, SigningAlg::PS256, SigningAlg::EdDSA];

/// What the `jwt` target does with a string: decode, read, verify.
fn jwt_entry_points(token: &str) -> Result<(), JoseError> {
    if let Ok(jwt) = UnverifiedJwt::decode(token) {
        let _ = (jwt.alg(), jwt.kid(), jwt.typ(), jwt.claim_str("iss"));
    }
    verify_jwt(token, &[fuzz_target_key()], &ALLOWED).map(|_| ())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JWS header that looks right but may lie: any `alg` (`none`, HMAC, unknown,
/// not a string), any `kid`, `crit`, `jwk`, `typ`.
fn hostile_header() -> impl Strategy<Value = Map<String, Value>> {
    let alg = prop_oneof![
        Just(json!("none")),
        Just(json!("None")),
        Just(json!("HS256")),
        Just(json!("ES256")),
        Just(json!("PS256")),
        Just(json!("EdDSA")),
        Just(json!("RS256")),
        Just(json!(["ES256"])),
        Just(json!(null)),
        ".{0,10}".prop_map(Value::String),
    ];
    let kid = prop_oneof![
        Just(None),
        ".{0,20}".prop_map(|k| Some(json!(k))),
        json_value().prop_map(Some)
    ];
    let extra = prop::collection::btree_map(
        prop_oneof![
            Just("crit".to_owned()),
            Just("jwk".to_owned()),
            Just("typ".to_owned()),
            ".{0,6}"
        ],
        json_value(),
        0..3,
    );
    (prop::option::of(alg), kid, extra).prop_map(|(alg, kid, extra)| {
        let mut header: Map<String, Value> = extra.into_iter().collect();
        if let Some(alg) = alg {
            header.insert("alg".into(), alg);
        }
        if let Some(kid) = kid {
            header.insert("kid".into(), kid);
        }
        header
    })
}

proptest! {
    #![proptest_config(config())]

    /// Any string: never a panic, never a verified token.
    #[test]
    fn jwt_any_string_is_refused(token in prop_oneof![any::<String>(), "[A-Za-z0-9_.=+/-]{0,200}"]) {
        prop_assert!(jwt_entry_points(&token).is_err());
    }

    /// Any bytes read as UTF-8 (lossily), as the fuzz target does with valid UTF-8.
    #[test]
    fn jwt_any_bytes_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        prop_assert!(jwt_entry_points(&String::from_utf8_lossy(&bytes)).is_err());
    }

    /// Not three dot-separated parts: `Malformed`.
    #[test]
    fn jwt_wrong_part_count_is_malformed(parts in prop::collection::vec("[A-Za-z0-9_-]{0,20}", 0..7)) {
        prop_assume!(parts.len() != 3);
        let token = parts.join(".");
        prop_assert!(matches!(UnverifiedJwt::decode(&token), Err(JoseError::Malformed(_))));
        prop_assert!(matches!(jwt_entry_points(&token), Err(JoseError::Malformed(_))));
    }

    /// Well-formed parts whose header or payload is JSON but not an object: `Malformed`.
    #[test]
    fn jwt_non_object_parts_are_malformed(value in json_value(), in_header in any::<bool>()) {
        prop_assume!(!value.is_object());
        let text = serde_json::to_vec(&value).unwrap();
        let object = b64(b"{\"alg\":\"ES256\"}");
        let token = if in_header {
            format!("{}.{object}.c2ln", b64(&text))
        } else {
            format!("{object}.{}.c2ln", b64(&text))
        };
        prop_assert!(matches!(UnverifiedJwt::decode(&token), Err(JoseError::Malformed(_))));
    }

    /// A hostile header over any claims and any signature bytes: decoding reads
    /// the header as sent; verifying refuses it: `none`, HMAC and unknown
    /// algorithms as not allowed, an allowed one with a signature that is not the key's.
    #[test]
    fn jwt_hostile_headers_never_verify(
        header in hostile_header(),
        claims in prop::collection::btree_map(".{0,8}", json_value(), 0..5),
        signature in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let claims: Map<String, Value> = claims.into_iter().collect();
        let token = format!(
            "{}.{}.{}",
            b64(&serde_json::to_vec(&header).unwrap()),
            b64(&serde_json::to_vec(&claims).unwrap()),
            b64(&signature),
        );
        let decoded = UnverifiedJwt::decode(&token).unwrap();
        prop_assert_eq!(decoded.alg(), header.get("alg").and_then(Value::as_str));
        let result = verify_jwt(&token, &[fuzz_target_key(), signer().public_jwk().clone()], &ALLOWED);
        let alg = header.get("alg").and_then(Value::as_str);
        match alg.and_then(SigningAlg::parse).filter(|a| ALLOWED.contains(a)) {
            None if alg.is_none() => prop_assert!(matches!(result, Err(JoseError::Malformed(_))), "{:?}", result),
            None => prop_assert!(matches!(result, Err(JoseError::AlgorithmNotAllowed(_))), "{:?}", result),
            Some(_) => prop_assert!(matches!(result, Err(JoseError::BadSignature)), "{:?}", result),
        }
    }

    /// A token signed by a real key, then one character of it replaced: never
    /// verifies (and never panics), whichever part was hit.
    #[test]
    fn jwt_tampered_tokens_never_verify(
        // Names that no registered claim has (`sub`, `exp`, ...): josekit refuses
        // to sign those with a value of the wrong type, which is not what this tests.
        claims in prop::collection::btree_map("x[a-z]{0,7}", json_value(), 0..4),
        position in any::<prop::sample::Index>(),
        replacement in prop_oneof![Just('.'), Just('='), Just('+'), Just('/'), Just('A'), Just('_'), any::<char>()],
    ) {
        let claims: Map<String, Value> = claims.into_iter().collect();
        let key = signer();
        let token = key.sign(None, &claims).unwrap();
        let keys = [key.public_jwk().clone()];
        prop_assert!(verify_jwt(&token, &keys, &ALLOWED).is_ok());
        let chars: Vec<char> = token.chars().collect();
        let at = position.index(chars.len());
        prop_assume!(chars[at] != replacement);
        let mut tampered = chars;
        tampered[at] = replacement;
        let tampered: String = tampered.into_iter().collect();
        // Base64url's last character may carry unused bits: a change there can
        // decode to the same bytes, which is then the same, valid token.
        let same_bytes = tampered.split('.').map(|p| URL_SAFE_NO_PAD.decode(p).ok()).collect::<Vec<_>>()
            == token.split('.').map(|p| URL_SAFE_NO_PAD.decode(p).ok()).collect::<Vec<_>>();
        prop_assume!(!same_bytes);
        prop_assert!(verify_jwt(&tampered, &keys, &ALLOWED).is_err());
    }
}

// ---------------------------------------------------------------- forms

/// What the `form` target does with bytes; the two parsers must agree.
fn form_entry_points(bytes: &[u8]) -> Result<(), Error> {
    let strict = FormParams::parse(bytes.to_vec().into());
    let authorize = parse_params(bytes);
    assert_eq!(strict.is_ok(), authorize.is_ok(), "the two form parsers disagree");
    if let Ok(form) = &strict {
        let _ = (form.get("grant_type"), form.contains("client_id"));
    }
    strict.map(|_| ())
}

/// Names and values with what breaks naive parsers: separators, escapes, NUL,
/// invalid percent-encoding, non-ASCII.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("&".to_owned()),
        Just("=".to_owned()),
        Just("%".to_owned()),
        Just("%zz".to_owned()),
        Just("%00".to_owned()),
        Just("%C3%28".to_owned()),
        Just("+".to_owned()),
        Just("\0".to_owned()),
        "[a-z_]{1,12}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes: never a panic; a refusal is `invalid_request` (400).
    #[test]
    fn form_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Err(err) = form_entry_points(&bytes) {
            prop_assert_eq!(err.code(), ErrorCode::InvalidRequest);
        }
    }

    /// Any pairs, encoded as a browser would: every name sent once comes back
    /// with its value; a name sent twice with values is refused, naming it.
    #[test]
    fn form_encoded_pairs_round_trip(pairs in prop::collection::vec((hostile_text(), hostile_text()), 0..8)) {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        let result = form_entry_points(body.as_bytes());
        let sent: Vec<&(String, String)> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
        let repeated = sent.iter().enumerate().find(|(i, (name, _))| sent[..*i].iter().any(|(n, _)| n == name));
        match repeated {
            Some((_, (name, _))) => {
                let err = result.unwrap_err();
                prop_assert_eq!(err.code(), ErrorCode::InvalidRequest);
                prop_assert!(err.to_string().contains(&format!("parameter {name} is repeated")), "{}", err);
            }
            None => {
                prop_assert!(result.is_ok());
                let form = FormParams::parse(body.clone().into_bytes().into()).unwrap();
                for (name, value) in sent {
                    prop_assert_eq!(form.get(name), Some(value.as_str()));
                }
            }
        }
    }

    /// Raw (unencoded) hostile pieces glued with `&` and `=`: never a panic.
    #[test]
    fn form_raw_pieces(pieces in prop::collection::vec(hostile_text(), 0..10)) {
        let body = pieces.join("&");
        if let Err(err) = form_entry_points(body.as_bytes()) {
            prop_assert_eq!(err.code(), ErrorCode::InvalidRequest);
        }
    }
}

// ---------------------------------------------------------------- authorization_details

/// What the `authorization_details` target does with a JSON value.
fn details_entry_points(value: Value) -> Result<(), Error> {
    let details = rar::parse(value)?;
    rar::check(&details, None)?;
    rar::check(&details, Some(&["payment_initiation".to_owned()]))?;
    Ok(())
}

fn assert_details_error(result: Result<(), Error>) -> Result<(), TestCaseError> {
    if let Err(err) = result {
        prop_assert_eq!(err.code(), ErrorCode::InvalidAuthorizationDetails, "{}", err);
    }
    Ok(())
}

/// A payment entry, each field either valid or hostile.
fn payment_entry() -> impl Strategy<Value = Value> {
    let amount = prop_oneof![
        Just(json!("12.50")),
        Just(json!("0")),
        Just(json!("-1")),
        Just(json!("1e3")),
        Just(json!("99999999999999999999999999")),
        Just(json!(" 1")),
        Just(json!("1.")),
        Just(json!(12.5)),
        "[0-9.,-]{0,12}".prop_map(Value::String),
        json_value(),
    ];
    let currency = prop_oneof![
        Just(json!("EUR")),
        Just(json!("JPY")),
        Just(json!("eur")),
        "[A-Z]{0,4}".prop_map(Value::String),
        json_value()
    ];
    let name = prop_oneof![
        Just(json!("Merchant A")),
        ".{0,200}".prop_map(Value::String),
        json_value()
    ];
    let extra = prop::option::of((".{0,12}", json_value()));
    (amount, currency, name, extra).prop_map(|(amount, currency, name, extra)| {
        let mut entry = json!({
            "type": "payment_initiation",
            "instructedAmount": {"currency": currency, "amount": amount},
            "creditorName": name,
        });
        if let (Some((key, value)), Some(map)) = (extra, entry.as_object_mut()) {
            map.insert(key, value);
        }
        entry
    })
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes that are JSON (as text, or as the form's JSON string): never a
    /// panic; a refusal is `invalid_authorization_details`.
    #[test]
    fn details_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
            assert_details_error(details_entry_points(value))?;
        }
        assert_details_error(details_entry_points(Value::String(String::from_utf8_lossy(&bytes).into_owned())))?;
    }

    /// Any JSON value: refused unless it is a non-empty array of at most
    /// `MAX_DETAILS` entries of a known type.
    #[test]
    fn details_any_json(value in json_value()) {
        let acceptable_shape = value.as_array().is_some_and(|l| !l.is_empty() && l.len() <= rar::MAX_DETAILS);
        let result = details_entry_points(value);
        if !acceptable_shape {
            prop_assert!(result.is_err());
        }
        assert_details_error(result)?;
    }

    /// Payment entries with hostile amounts, currencies, names and extra
    /// fields: refused with the spec error naming the entry, or accepted only
    /// when every field is as RFC 9396 and our types say.
    #[test]
    fn details_hostile_payments(entries in prop::collection::vec(payment_entry(), 1..(rar::MAX_DETAILS + 3))) {
        let too_many = entries.len() > rar::MAX_DETAILS;
        let result = details_entry_points(Value::Array(entries.clone()));
        match &result {
            Ok(()) => {
                prop_assert!(!too_many);
                for entry in &entries {
                    let amount = &entry["instructedAmount"]["amount"];
                    prop_assert!(amount.as_str().is_some_and(|a| a.parse::<f64>().is_ok_and(|v| v > 0.0)), "{}", amount);
                    let name = entry["creditorName"].as_str().unwrap_or_default();
                    prop_assert!(
                        !name.trim().is_empty() && name.chars().count() <= 140 && !name.chars().any(char::is_control),
                        "{:?}",
                        name
                    );
                }
            }
            Err(err) => prop_assert!(err.to_string().contains("authorization_details"), "{}", err),
        }
        assert_details_error(result)?;
        // The same list as the form parameter's JSON text gives the same answer.
        let text = Value::String(serde_json::to_string(&entries).unwrap());
        prop_assert_eq!(details_entry_points(text).is_ok(), details_entry_points(Value::Array(entries)).is_ok());
    }

    /// Deeply nested JSON is refused by the JSON reader or by the checker, never a stack overflow.
    #[test]
    fn details_deep_nesting(depth in 1usize..2000, open in prop_oneof![Just('['), Just('{')]) {
        let text = match open {
            '[' => format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
            _ => format!("[{}1{}]", "{\"a\":".repeat(depth), "}".repeat(depth)),
        };
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            assert_details_error(details_entry_points(value))?;
        }
        assert_details_error(details_entry_points(Value::String(text)))?;
    }
}

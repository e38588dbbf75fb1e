//! A client's public keys: registered by value (`jwks`), or fetched from its
//! `jwks_uri` through the [`OutboundClient`](crate::outbound::OutboundClient) and
//! cached ([RFC 7591 §2](https://www.rfc-editor.org/rfc/rfc7591#section-2)).
//!
//! A fetched set is kept for [`CACHE_SECONDS`]. When a JWT names a `kid` the
//! cached set lacks (the client rotated its key), the set is fetched again, but
//! at most once per [`REFETCH_SECONDS`], so a rotated key is picked up quickly
//! and a stream of unknown `kid`s cannot turn the server into a request
//! amplifier against the client. A failed fetch is remembered for the same
//! time. Time comes from `AppState.clock`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use outband_protocol::jose::{is_private_jwk, parse_jwk, Jwk};
use serde_json::Value;

use crate::auth::client_auth::client_jwks;
use crate::state::AppState;
use crate::store::{ClientRecord, UnixTime};

/// How long a fetched key set is used without asking again.
pub const CACHE_SECONDS: i64 = 300;
/// The shortest time between two fetches of one `jwks_uri`.
pub const REFETCH_SECONDS: i64 = 30;

/// Key sets fetched from `jwks_uri`s, by URI.
///
/// A `std::sync::Mutex`: it is held only to read or replace an entry, never
/// across the fetch (CONVENTIONS 20).
#[derive(Debug, Default)]
pub struct JwksCache {
    entries: Mutex<HashMap<String, CachedJwks>>,
}

#[derive(Clone, Debug)]
struct CachedJwks {
    /// The last key set fetched, and when.
    keys: Option<(UnixTime, Vec<Jwk>)>,
    /// When the last fetch was tried.
    attempted_at: UnixTime,
    /// Why the last fetch failed, if it did.
    error: Option<String>,
}

/// What to do with the cache entry of a `jwks_uri`.
enum Lookup {
    Keys(Vec<Jwk>),
    Failed(String),
    Fetch,
}

impl JwksCache {
    fn lookup(&self, uri: &str, kid: Option<&str>, now: UnixTime) -> Lookup {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = entries.get(uri) else {
            return Lookup::Fetch;
        };
        let fresh = entry
            .keys
            .as_ref()
            .filter(|(fetched_at, _)| now - fetched_at < CACHE_SECONDS)
            .map(|(_, keys)| keys);
        if let Some(keys) = fresh {
            if kid.is_none_or(|kid| keys.iter().any(|k| k.key_id() == Some(kid))) {
                return Lookup::Keys(keys.clone());
            }
        }
        if now - entry.attempted_at < REFETCH_SECONDS {
            if let Some(error) = &entry.error {
                return Lookup::Failed(error.clone());
            }
            if let Some(keys) = fresh {
                // The kid is unknown, but the set was fetched moments ago.
                return Lookup::Keys(keys.clone());
            }
        }
        Lookup::Fetch
    }

    fn store(&self, uri: &str, now: UnixTime, result: &Result<Vec<Jwk>, String>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.entry(uri.to_owned()).or_insert(CachedJwks {
            keys: None,
            attempted_at: now,
            error: None,
        });
        entry.attempted_at = now;
        match result {
            Ok(keys) => {
                entry.keys = Some((now, keys.clone()));
                entry.error = None;
            }
            // Keys fetched earlier stay usable until they expire.
            Err(error) => entry.error = Some(error.clone()),
        }
    }
}

/// The public keys that verify JWTs signed by `client`: its `jwks` when
/// registered by value, else the set at its `jwks_uri` (cached). `kid` is the
/// key the JWT names, if any: an unknown `kid` triggers a refetch (rate-limited).
///
/// Errors are descriptions for an `invalid_client` response.
pub async fn client_public_keys(
    state: &AppState,
    client: &ClientRecord,
    kid: Option<&str>,
) -> Result<Vec<Jwk>, String> {
    if client.metadata.jwks.is_some() {
        return client_jwks(client);
    }
    let Some(uri) = &client.metadata.jwks_uri else {
        return Err("client has no registered jwks or jwks_uri".into());
    };
    match state.jwks_cache.lookup(uri.as_str(), kid, state.now()) {
        Lookup::Keys(keys) => return Ok(keys),
        Lookup::Failed(error) => return Err(error),
        Lookup::Fetch => {}
    }
    let result = match state.outbound.get_json(uri).await {
        Ok(document) => keys_of(&document),
        Err(e) => Err(format!("jwks_uri: {e}")),
    };
    if let Err(error) = &result {
        tracing::info!(client_id = %client.client_id(), error = %error, "could not fetch the client's jwks_uri");
    }
    state.jwks_cache.store(uri.as_str(), state.now(), &result);
    result
}

/// The usable public keys of a JWK Set document.
fn keys_of(document: &Value) -> Result<Vec<Jwk>, String> {
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("jwks_uri: the document has no keys array")?;
    let keys: Vec<Jwk> = keys
        .iter()
        .filter_map(|k| parse_jwk(k).ok())
        .filter(|k| !is_private_jwk(k))
        .collect();
    if keys.is_empty() {
        return Err("jwks_uri: the document has no usable public key".into());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use outband_protocol::SigningAlg;

    fn key(kid: &str) -> Jwk {
        let mut jwk = outband_protocol::jose::public_jwk(&SigningAlg::ES256.generate_private_jwk().unwrap()).unwrap();
        jwk.set_key_id(kid);
        jwk
    }

    const URI: &str = "https://client.example/jwks";

    #[test]
    fn fresh_keys_are_served_and_expire() {
        let cache = JwksCache::default();
        assert!(matches!(cache.lookup(URI, None, 0), Lookup::Fetch));
        cache.store(URI, 0, &Ok(vec![key("a")]));
        assert!(matches!(cache.lookup(URI, Some("a"), 10), Lookup::Keys(k) if k.len() == 1));
        assert!(matches!(cache.lookup(URI, None, CACHE_SECONDS - 1), Lookup::Keys(_)));
        assert!(matches!(cache.lookup(URI, None, CACHE_SECONDS), Lookup::Fetch));
    }

    #[test]
    fn an_unknown_kid_refetches_at_most_every_30_seconds() {
        let cache = JwksCache::default();
        cache.store(URI, 0, &Ok(vec![key("a")]));
        assert!(matches!(cache.lookup(URI, Some("b"), 5), Lookup::Keys(_)), "too soon");
        assert!(matches!(cache.lookup(URI, Some("b"), REFETCH_SECONDS), Lookup::Fetch));
        cache.store(URI, REFETCH_SECONDS, &Ok(vec![key("b")]));
        assert!(matches!(
            cache.lookup(URI, Some("b"), REFETCH_SECONDS + 1),
            Lookup::Keys(_)
        ));
    }

    #[test]
    fn failures_are_remembered_and_old_keys_kept() {
        let cache = JwksCache::default();
        cache.store(URI, 0, &Err("jwks_uri: timed out".into()));
        assert!(matches!(cache.lookup(URI, None, 1), Lookup::Failed(e) if e.contains("timed out")));
        assert!(matches!(cache.lookup(URI, None, REFETCH_SECONDS), Lookup::Fetch));
        cache.store(URI, 100, &Ok(vec![key("a")]));
        cache.store(URI, 140, &Err("jwks_uri: unexpected HTTP status 503".into()));
        assert!(
            matches!(cache.lookup(URI, Some("a"), 141), Lookup::Keys(_)),
            "known kid still verifies"
        );
        assert!(matches!(cache.lookup(URI, Some("b"), 141), Lookup::Failed(_)));
    }

    #[test]
    fn documents_without_public_keys_are_refused() {
        assert!(keys_of(&serde_json::json!({})).is_err());
        assert!(keys_of(&serde_json::json!({ "keys": [] })).is_err());
        let private = SigningAlg::ES256.generate_private_jwk().unwrap();
        let doc = serde_json::json!({ "keys": [Value::Object(private.as_ref().clone())] });
        assert!(keys_of(&doc).unwrap_err().contains("no usable public key"));
        let doc = serde_json::json!({ "keys": [Value::Object(key("a").as_ref().clone()), 5] });
        assert_eq!(keys_of(&doc).unwrap().len(), 1);
    }
}

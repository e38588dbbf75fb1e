//! The `claims` request parameter ([OpenID Connect Core §5.5](https://openid.net/specs/openid-connect-core-1_0.html#ClaimsParameter))
//! and the user claims the server holds.
//!
//! A request may name claims for the ID token (`id_token`) and for the UserInfo
//! response (`userinfo`), each `null` or `{"essential": bool, "value": .., "values": [..]}`.
//! They only *select* among the user claims the approved scope releases
//! ([`claims_of`]: §5.4): the consent page shows the scope, and the user
//! approves that, so `claims` can move e.g. `email` (scope `email`) into the ID
//! token but never add a claim the scope does not release. Claims the user has no value
//! for are left out, essential or not (§5.5.1: no error). Two are special:
//! `acr` with `essential: true` and `value`/`values` must be met, or the
//! authorization fails with `access_denied` (§5.5.1.1, [`acr_for`]); and
//! `id_token.sub` with a `value` names the only user who may be signed in
//! for the request, like an `id_token_hint` (§5.5.1, [`ClaimsRequest::sub_value`]).
//!
//! The request is parsed at `/authorize` and `/par` (and in request objects);
//! with the code it travels to the token endpoint as [`CodeClaims`], and the
//! `userinfo` names are kept with the grant for `/userinfo`
//! (`Store::set_userinfo_claims`; a `merge` adds to them, `create` and `replace` set them).

use outband_protocol::Scope;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::acr::{self, Level};
use crate::error::{Error, Result};
use crate::grant_management::consent::claims_of;
use crate::store::UserRecord;

/// Longest `claims` parameter accepted, in bytes.
const MAX_CLAIMS_LEN: usize = 8192;

/// The user claims the server holds, by name (what the ID token and UserInfo can carry about the user).
pub const USER_CLAIMS: [&str; 5] = ["sub", "name", "preferred_username", "email", "phone_number"];

/// A parsed `claims` parameter: requested claim name → `null` or its request object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    /// Claims for the ID token.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub id_token: Map<String, Value>,
    /// Claims for the UserInfo response.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub userinfo: Map<String, Value>,
}

fn invalid(why: impl std::fmt::Display) -> Error {
    Error::invalid_request(format!("claims: {why}"))
}

/// Parses the `claims` parameter; anything that is not the §5.5 shape is
/// `invalid_request`. Top-level members other than `id_token` and `userinfo`
/// are ignored (§5.5: members not understood are ignored).
pub fn parse(text: &str) -> Result<ClaimsRequest> {
    if text.len() > MAX_CLAIMS_LEN {
        return Err(invalid(format!("longer than {MAX_CLAIMS_LEN} bytes")));
    }
    let value: Value = serde_json::from_str(text).map_err(|_| invalid("not JSON"))?;
    let Value::Object(top) = value else {
        return Err(invalid("not a JSON object"));
    };
    let member = |name: &str| -> Result<Map<String, Value>> {
        match top.get(name) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(requests)) => {
                for (claim, request) in requests {
                    check_request(name, claim, request)?;
                }
                Ok(requests.clone())
            }
            Some(_) => Err(invalid(format!("{name} must be a JSON object"))),
        }
    };
    Ok(ClaimsRequest {
        id_token: member("id_token")?,
        userinfo: member("userinfo")?,
    })
}

/// One individual claim request (§5.5.1): `null`, or an object whose
/// `essential` is a boolean and `values` an array.
fn check_request(member: &str, claim: &str, request: &Value) -> Result<()> {
    let Some(object) = request.as_object() else {
        return if request.is_null() {
            Ok(())
        } else {
            Err(invalid(format!("{member}.{claim} must be null or a JSON object")))
        };
    };
    if object.get("essential").is_some_and(|e| !e.is_boolean()) {
        return Err(invalid(format!("{member}.{claim}.essential must be a boolean")));
    }
    if object.get("values").is_some_and(|v| !v.is_array()) {
        return Err(invalid(format!("{member}.{claim}.values must be an array")));
    }
    if member == "id_token" && claim == "sub" && object.get("value").is_some_and(|v| !v.is_string()) {
        return Err(invalid("id_token.sub.value must be a string"));
    }
    if claim == "acr" {
        let strings = |v: &Value| v.is_string() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        if [object.get("value"), object.get("values")]
            .into_iter()
            .flatten()
            .any(|v| !strings(v))
        {
            return Err(invalid(format!("{member}.acr values must be strings")));
        }
    }
    Ok(())
}

impl ClaimsRequest {
    /// Whether it asks for nothing.
    pub fn is_empty(&self) -> bool {
        self.id_token.is_empty() && self.userinfo.is_empty()
    }

    /// `claims.id_token.acr`: whether it is essential, and the values it asks for, in order.
    fn acr(&self) -> Option<(bool, Vec<&str>)> {
        let request = self.id_token.get("acr")?;
        let essential = request.get("essential").and_then(Value::as_bool).unwrap_or(false);
        let mut values: Vec<&str> = request.get("value").and_then(Value::as_str).into_iter().collect();
        let listed = request.get("values").and_then(Value::as_array).into_iter().flatten();
        values.extend(listed.filter_map(Value::as_str));
        Some((essential, values))
    }

    /// The names of the UserInfo claims asked for among those `scope` releases.
    pub fn userinfo_names(&self, scope: &Scope) -> Vec<String> {
        within(&self.userinfo, scope)
    }

    /// The names of the ID token claims asked for among those `scope` releases.
    pub fn id_token_names(&self, scope: &Scope) -> Vec<String> {
        within(&self.id_token, scope)
    }

    /// `claims.id_token.sub.value`: the only user the request may be answered for (§5.5.1).
    pub fn sub_value(&self) -> Option<&str> {
        self.id_token.get("sub")?.get("value")?.as_str()
    }
}

/// The claims of `requests` that `scope` releases (the user approved the scope, not the claims).
fn within(requests: &Map<String, Value>, scope: &Scope) -> Vec<String> {
    let released = claims_of(scope);
    requests
        .keys()
        .filter(|name| released.contains(name))
        .cloned()
        .collect()
}

/// The `acr` an authentication at `level` puts in the ID token of a request
/// with `acr_values` and `claims`: `None` when neither asks for `acr`; the
/// first requested value the level satisfies (`claims.id_token.acr` values
/// first, then `acr_values`), else the level's own. An essential
/// `claims.id_token.acr` with values none of which the level satisfies is
/// `access_denied` (OpenID Connect Core §5.5.1.1: a failed authentication).
pub fn acr_for(level: Level, acr_values: Option<&str>, claims: Option<&ClaimsRequest>) -> Result<Option<String>> {
    let claimed = claims.and_then(ClaimsRequest::acr);
    if let Some((true, values)) = claimed.as_ref().filter(|(_, values)| !values.is_empty()) {
        return match values.iter().find(|v| level.satisfies(v)) {
            Some(value) => Ok(Some((*value).to_owned())),
            None => Err(Error::new(
                outband_protocol::ErrorCode::AccessDenied,
                format!("the essential acr {} cannot be met", values.join(" or ")),
            )),
        };
    }
    if claimed.is_none() && acr_values.is_none() {
        return Ok(None);
    }
    let from_claims = claimed.iter().flat_map(|(_, values)| values.iter().copied());
    Ok(Some(level.choose(from_claims.chain(acr::split(acr_values))).to_owned()))
}

/// The value of the user claim `name`, when the user has one.
pub fn user_claim(user: &UserRecord, name: &str) -> Option<Value> {
    match name {
        "sub" => Some(json!(user.subject.as_str())),
        "name" => user.name.as_ref().map(|v| json!(v)),
        "preferred_username" => Some(json!(user.username)),
        "email" => user.email.as_ref().map(|v| json!(v)),
        "phone_number" => user.phone.as_ref().map(|v| json!(v)),
        _ => None,
    }
}

/// The claims `names` of `user` it has values for.
pub fn user_claims<'a>(user: &UserRecord, names: impl IntoIterator<Item = &'a str>) -> Map<String, Value> {
    names
        .into_iter()
        .filter_map(|name| user_claim(user, name).map(|value| (name.to_owned(), value)))
        .collect()
}

/// What a code carries to the token endpoint about claims: the `acr` its ID
/// token reports, and the `claims` request. Stored as JSON with the code.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeClaims {
    /// The ID token's `acr`, when the request asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The `claims` request parameter.
    #[serde(default, skip_serializing_if = "ClaimsRequest::is_empty")]
    pub request: ClaimsRequest,
}

impl CodeClaims {
    /// The stored form; `None` when there is nothing to carry.
    pub fn to_stored(&self) -> Option<String> {
        (self.acr.is_some() || !self.request.is_empty()).then(|| json!(self).to_string())
    }

    /// Reads the stored form (`None`: nothing was asked).
    pub fn from_stored(text: Option<&str>) -> Result<Self> {
        text.map_or(Ok(Self::default()), |t| {
            serde_json::from_str(t).map_err(|e| Error::internal(format!("stored code claims: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_is_checked() {
        assert!(parse("not json").is_err());
        assert!(parse("[]").is_err());
        assert!(parse(r#"{"id_token": []}"#).is_err());
        assert!(parse(r#"{"userinfo": {"email": true}}"#).is_err());
        assert!(parse(r#"{"id_token": {"acr": {"essential": "yes"}}}"#).is_err());
        assert!(parse(r#"{"id_token": {"acr": {"values": "urn:x"}}}"#).is_err());
        assert!(parse(r#"{"id_token": {"acr": {"value": 3}}}"#).is_err());
        let parsed =
            parse(r#"{"id_token": {"email": null}, "userinfo": {"name": {"essential": true}}, "x": 1}"#).unwrap();
        assert!(parsed.id_token.contains_key("email"));
        assert_eq!(parsed.userinfo_names(&Scope::new("openid profile")), ["name"]);
        assert!(parse(r#"{"id_token": {"sub": {"value": 7}}}"#).is_err());
        let sub = parse(r#"{"id_token": {"sub": {"value": "sub-bob"}}, "userinfo": {"sub": {"value": 1}}}"#).unwrap();
        assert_eq!(sub.sub_value(), Some("sub-bob"));
    }

    #[test]
    fn requested_claims_only_select_within_the_scope() {
        let parsed =
            parse(r#"{"id_token": {"email": null, "phone_number": null, "name": null, "acr": null}}"#).unwrap();
        assert!(parsed.id_token_names(&Scope::new("openid")).is_empty());
        assert_eq!(parsed.id_token_names(&Scope::new("openid email")), ["email"]);
        let all = parsed.id_token_names(&Scope::new("openid email phone profile"));
        assert_eq!(all, ["email", "phone_number", "name"], "in the request's order");
    }

    #[test]
    fn acr_follows_the_request() {
        assert_eq!(acr_for(Level::Password, None, None).unwrap(), None);
        let asked = Some("urn:brasil:openbanking:loa3 urn:brasil:openbanking:loa2");
        assert_eq!(
            acr_for(Level::Password, asked, None).unwrap().as_deref(),
            Some(acr::BR_LOA2)
        );
        assert_eq!(
            acr_for(Level::Device, asked, None).unwrap().as_deref(),
            Some(acr::BR_LOA3)
        );
        let essential =
            parse(r#"{"id_token": {"acr": {"essential": true, "values": ["urn:outband:acr:device"]}}}"#).unwrap();
        assert!(acr_for(Level::Password, None, Some(&essential)).is_err());
        assert_eq!(
            acr_for(Level::Device, None, Some(&essential)).unwrap().as_deref(),
            Some(acr::DEVICE)
        );
        let voluntary = parse(r#"{"id_token": {"acr": {"values": ["urn:outband:acr:device"]}}}"#).unwrap();
        assert_eq!(
            acr_for(Level::Password, None, Some(&voluntary)).unwrap().as_deref(),
            Some(acr::PASSWORD)
        );
        let bare = parse(r#"{"id_token": {"acr": null}}"#).unwrap();
        assert_eq!(
            acr_for(Level::Password, None, Some(&bare)).unwrap().as_deref(),
            Some(acr::PASSWORD)
        );
    }
}

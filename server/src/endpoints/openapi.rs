//! `GET /openapi.json`: the OpenAPI 3.1 description of every endpoint.
//!
//! The YAML files in `docs/openapi/` are the one source: `openapi.yaml` (OAuth,
//! discovery, operations, admin) with `device.yaml`, `payments.yaml` and `consents.yaml` merged
//! into it, compiled in and converted once. A part's component whose name the
//! document already uses for a different definition is renamed with the part's
//! prefix (`Device`, `Payments`), and the part's references follow; a part's
//! top-level `security` moves onto its operations. `servers` is set to the
//! issuer, so tools pointed at the document call this server.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::state::AppState;

const BASE: &str = include_str!("../../../docs/openapi/openapi.yaml");
const PARTS: [(&str, &str); 3] = [
    ("Device", include_str!("../../../docs/openapi/device.yaml")),
    ("Payments", include_str!("../../../docs/openapi/payments.yaml")),
    ("Consents", include_str!("../../../docs/openapi/consents.yaml")),
];
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// `GET /openapi.json`.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_get))
}

async fn openapi_get(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let mut doc = document()
        .map_err(|err| Error::internal(format!("the OpenAPI document: {err}")))?
        .clone();
    if let Some(doc) = doc.as_object_mut() {
        doc.insert("servers".into(), json!([{ "url": state.settings.issuer }]));
    }
    Ok(([(header::CACHE_CONTROL, "public, max-age=300")], Json(doc)))
}

/// The combined document (without the issuer), built on first use.
pub fn document() -> std::result::Result<&'static Value, &'static str> {
    static DOCUMENT: OnceLock<std::result::Result<Value, String>> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| combine(BASE, &PARTS))
        .as_ref()
        .map_err(String::as_str)
}

/// `base` with every `(prefix, part)` merged in.
fn combine(base: &str, parts: &[(&str, &str)]) -> std::result::Result<Value, String> {
    let mut doc = parse("openapi.yaml", base)?;
    for (prefix, text) in parts {
        merge(&mut doc, prefix, parse(prefix, text)?)?;
    }
    Ok(doc)
}

fn parse(name: &str, text: &str) -> std::result::Result<Value, String> {
    serde_norway::from_str(text).map_err(|err| format!("{name}: {err}"))
}

fn merge(doc: &mut Value, prefix: &str, mut part: Value) -> std::result::Result<(), String> {
    let renames = renames(doc, prefix, &part)?;
    rewrite(&mut part, &renames);
    let security = part.get("security").cloned();
    let target = doc.as_object_mut().ok_or("the document is not an object")?;

    let paths = object(target, "paths")?;
    for (path, mut item) in take_object(&mut part, "paths") {
        if let (Some(security), Some(item)) = (&security, item.as_object_mut()) {
            for method in METHODS {
                if let Some(operation) = item.get_mut(method).and_then(Value::as_object_mut) {
                    operation.entry("security").or_insert_with(|| security.clone());
                }
            }
        }
        if paths.insert(path.clone(), item).is_some() {
            return Err(format!("{prefix}: path {path} is described twice"));
        }
    }

    let components = object(target, "components")?;
    for (kind, entries) in take_object(&mut part, "components") {
        let Value::Object(entries) = entries else { continue };
        let target = object(components, &kind)?;
        for (name, value) in entries {
            // Same name and definition: already there. A clash was renamed.
            let key = (kind.clone(), name);
            let name = renames.get(&key).cloned().unwrap_or(key.1);
            target.entry(name).or_insert(value);
        }
    }

    let tags = target
        .entry("tags")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or("tags is not a list")?;
    for tag in take_array(&mut part, "tags") {
        if !tags.iter().any(|known| known.get("name") == tag.get("name")) {
            tags.push(tag);
        }
    }
    Ok(())
}

/// `(kind, old name) → new name` for the part's components that clash with the document's.
type Renames = BTreeMap<(String, String), String>;

fn renames(doc: &Value, prefix: &str, part: &Value) -> std::result::Result<Renames, String> {
    let mut renames = Renames::new();
    let Some(kinds) = part.get("components").and_then(Value::as_object) else {
        return Ok(renames);
    };
    for (kind, entries) in kinds {
        let known = doc.get("components").and_then(|c| c.get(kind));
        for (name, value) in entries.as_object().into_iter().flatten() {
            match known.and_then(|known| known.get(name)) {
                Some(existing) if existing != value => {
                    let new = format!("{prefix}{name}");
                    if known.and_then(|known| known.get(&new)).is_some() {
                        return Err(format!("{prefix}: components/{kind}/{new} already exists"));
                    }
                    renames.insert((kind.clone(), name.clone()), new);
                }
                _ => {}
            }
        }
    }
    Ok(renames)
}

/// Points the part's `$ref`s and security requirements at the renamed components.
fn rewrite(value: &mut Value, renames: &Renames) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match (key.as_str(), child) {
                    ("$ref", Value::String(reference)) => {
                        let renamed = reference
                            .strip_prefix("#/components/")
                            .and_then(|rest| rest.split_once('/'))
                            .and_then(|(kind, name)| {
                                let new = renames.get(&(kind.to_owned(), name.to_owned()))?;
                                Some(format!("#/components/{kind}/{new}"))
                            });
                        if let Some(renamed) = renamed {
                            *reference = renamed;
                        }
                    }
                    ("security", Value::Array(requirements)) => {
                        for requirement in requirements.iter_mut().filter_map(Value::as_object_mut) {
                            let renamed: Map<String, Value> = std::mem::take(requirement)
                                .into_iter()
                                .map(|(scheme, scopes)| {
                                    let key = ("securitySchemes".to_owned(), scheme);
                                    let new = renames.get(&key).cloned().unwrap_or(key.1);
                                    (new, scopes)
                                })
                                .collect();
                            *requirement = renamed;
                        }
                    }
                    (_, child) => rewrite(child, renames),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite(item, renames)),
        _ => {}
    }
}

/// The object under `key`, created when absent.
fn object<'a>(map: &'a mut Map<String, Value>, key: &str) -> std::result::Result<&'a mut Map<String, Value>, String> {
    map.entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| format!("{key} is not an object"))
}

fn take_object(value: &mut Value, key: &str) -> Map<String, Value> {
    match value.get_mut(key).map(Value::take) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn take_array(value: &mut Value, key: &str) -> Vec<Value> {
    match value.get_mut(key).map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clashing_components_are_renamed_and_referenced() {
        let base = "openapi: 3.1.0\npaths: {}\ncomponents:\n  schemas:\n    Error: {type: object}\n";
        let part = r##"
security: [{dpop: []}]
paths:
  /x:
    get:
      responses:
        "200": {content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}}
components:
  securitySchemes:
    dpop: {type: http, scheme: DPoP}
  schemas:
    Error: {type: string}
"##;
        let doc = combine(base, &[("Part", part)]).unwrap();
        assert_eq!(doc["components"]["schemas"]["Error"]["type"], "object");
        assert_eq!(doc["components"]["schemas"]["PartError"]["type"], "string");
        let get = &doc["paths"]["/x"]["get"];
        assert_eq!(
            get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/PartError"
        );
        assert_eq!(get["security"], json!([{ "dpop": [] }]));
        assert!(
            combine(base, &[("Part", part), ("Again", part)]).is_err(),
            "a path described twice"
        );
    }

    #[test]
    fn the_served_sources_combine() {
        let doc = document().unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
        assert!(doc["paths"].get("/device/v1/enroll").is_some());
        assert!(doc["paths"].get("/api/payments").is_some());
    }
}

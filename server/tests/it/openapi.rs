//! `GET /openapi.json` against the router: every route the endpoint modules
//! declare is described, every described operation is answered (neither the
//! fallback's 404 nor a 405), and the document is OpenAPI 3.1 whose references
//! all resolve.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::Value;

use crate::support::{TestServer, ISSUER};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// Path (parameters written `{}`) → methods (`any` for every method).
type Routes = BTreeMap<String, BTreeSet<String>>;

/// A server with the optional endpoints on (admin decisions, registration, metrics).
async fn server() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin-token");
    std::fs::write(&token, "test-admin-token-0123456789abcdefghijklmnop\n").unwrap();
    let config = format!(
        "[admin]\ntoken_file = {token:?}\n[registration]\nenabled = true\n[metrics]\nenabled = true\ntoken_file = {token:?}\n",
        token = token.display().to_string()
    );
    (TestServer::with_config(&config).await, dir)
}

async fn document(server: &TestServer) -> Value {
    let reply = server.get("/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    reply.json
}

fn normalize(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

fn documented(doc: &Value) -> Routes {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (*m).to_owned())
                .collect();
            (normalize(path), methods)
        })
        .collect()
}

/// The text inside the parentheses that open just before `text`.
fn balanced(text: &str) -> &str {
    let mut depth = 1;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in {text}")
}

/// The routes the endpoint modules declare, read from their source
/// (`.route(PATH, get(..).post(..))`, PATH a literal or a `const` of the file).
/// Catch-all routes (`{*rest}`, the "no such resource" answers) are left out.
fn declared() -> Routes {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/endpoints");
    let mut routes = Routes::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().path();
        let text = std::fs::read_to_string(&file).unwrap();
        for (start, _) in text.match_indices(".route(") {
            let args = balanced(&text[start + ".route(".len()..]);
            let (path, handlers) = args.split_once(',').unwrap();
            let path = path.trim();
            let path = match path.strip_prefix('"') {
                Some(literal) => literal.trim_end_matches('"').to_owned(),
                None => {
                    let decl = format!("const {path}: &str = \"");
                    let at = text
                        .find(&decl)
                        .unwrap_or_else(|| panic!("{}: no {decl}", file.display()));
                    let value = &text[at + decl.len()..];
                    value[..value.find('"').unwrap()].to_owned()
                }
            };
            if path.contains("{*") {
                continue;
            }
            let methods: BTreeSet<String> = ["get", "post", "put", "delete", "patch", "any"]
                .into_iter()
                .filter(|m| {
                    handlers.match_indices(&format!("{m}(")).any(|(i, _)| {
                        let before = handlers[..i].chars().next_back();
                        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    })
                })
                .map(str::to_owned)
                .collect();
            assert!(!methods.is_empty(), "{}: no method found for {path}", file.display());
            routes.entry(normalize(&path)).or_default().extend(methods);
        }
    }
    assert!(routes.len() > 10, "the source scan found too few routes: {routes:?}");
    routes
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_issuer_and_resolvable_references() {
    let (server, _dir) = server().await;
    let doc = document(&server).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["servers"][0]["url"], ISSUER);
    assert!(doc["info"]["title"].is_string());

    let mut missing = Vec::new();
    let mut stack = vec![&doc];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    let pointer = reference.strip_prefix('#').unwrap_or(reference);
                    if doc.pointer(pointer).is_none() {
                        missing.push(reference.clone());
                    }
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    assert!(missing.is_empty(), "unresolved references: {missing:?}");

    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            for requirement in item[method]["security"].as_array().into_iter().flatten() {
                for scheme in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(scheme), "{method} {path}: unknown scheme {scheme}");
                }
            }
        }
    }
}

#[tokio::test]
async fn every_declared_route_is_described_and_every_described_path_is_declared() {
    let (server, _dir) = server().await;
    let documented = documented(&document(&server).await);
    let declared = declared();
    let mut problems = Vec::new();
    for (path, methods) in &declared {
        let Some(described) = documented.get(path) else {
            problems.push(format!("{path} is served but not described"));
            continue;
        };
        for method in methods {
            if method == "any" {
                if described.is_empty() {
                    problems.push(format!("{path}: no method described"));
                }
            } else if !described.contains(method) {
                problems.push(format!("{} {path} is served but not described", method.to_uppercase()));
            }
        }
    }
    for (path, methods) in &documented {
        match declared.get(path) {
            None => problems.push(format!("{path} is described but no endpoint module declares it")),
            Some(served) if !served.contains("any") => {
                for method in methods.difference(served) {
                    problems.push(format!("{} {path} is described but not served", method.to_uppercase()));
                }
            }
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn every_described_operation_is_answered_by_the_router() {
    let (server, _dir) = server().await;
    let doc = document(&server).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = normalize(path).replace("{}", "x");
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let request = Request::builder()
                .method(method.clone())
                .uri(&concrete)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::empty())
                .unwrap();
            let reply = server.send(request).await;
            assert_ne!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {concrete}: {}",
                reply.text
            );
            assert_ne!(
                reply.json["error_description"], "no such endpoint",
                "{method} {concrete}: the router's fallback answered"
            );
            assert!(
                reply.status.as_u16() < 500,
                "{method} {concrete}: {} {}",
                reply.status,
                reply.text
            );
        }
    }
}

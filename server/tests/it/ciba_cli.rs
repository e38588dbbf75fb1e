//! The CIBA operator commands of the real binary: `ciba list|show|cancel`,
//! `notifications list|redeliver`, and the user-code and test-decision `users`
//! commands. Requests are started through the real endpoints of an in-process
//! server on the same SQLite file the binary uses.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request};
use http_body_util::BodyExt;
use outband_protocol::ClientId;
use outband_server::clock::SystemClock;
use outband_server::config::Config;
use outband_server::state::AppState;
use outband_server::store::{NewNotification, NotificationKind, Store};
use serde_json::Value;
use tower::ServiceExt;

use crate::support::basic_header;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn db_url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("cli.db").display())
    }

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("cli.key")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_outband-server"));
        cmd.args(args)
            .env_remove("OUTBAND_CONFIG")
            .env_remove("OUTBAND_ENVIRONMENT")
            .env("OUTBAND_DATABASE_URL", self.db_url())
            .env("OUTBAND_ISSUER", "https://as.example.test")
            .env("OUTBAND_KEY_FILE", self.key_file())
            .env("RUST_LOG", "warn");
        cmd
    }

    fn output(&self, mut cmd: Command, stdin: Option<&str>) -> Output {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        ok_output(args, self.output(self.command(args), None))
    }

    fn ok_with_stdin(&self, args: &[&str], stdin: &str) -> String {
        ok_output(args, self.output(self.command(args), Some(stdin)))
    }

    fn fails(&self, args: &[&str]) -> String {
        fails_output(args, self.output(self.command(args), None))
    }

    fn fails_with_stdin(&self, args: &[&str], stdin: &str) -> String {
        fails_output(args, self.output(self.command(args), Some(stdin)))
    }

    /// A server state on the binary's database (same key file), running on the real clock.
    async fn state(&self) -> AppState {
        let text = format!(
            "issuer = \"https://as.example.test\"\nenvironment = \"development\"\ndatabase_url = {:?}\nkey_file = {:?}\n",
            self.db_url(),
            self.key_file().display().to_string()
        );
        let settings = Config::from_toml(&text).unwrap().validate().unwrap();
        let store = Store::connect(&settings.database_url).await.unwrap();
        store.migrate().await.unwrap();
        AppState::build(settings, store, Arc::new(SystemClock)).await.unwrap()
    }
}

fn ok_output(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails_output(args: &[&str], out: Output) -> String {
    assert!(
        !out.status.success(),
        "{args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn is_rfc3339(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok())
}

/// `POST path` as the till, through the real router; returns the JSON body.
async fn till_post(state: &AppState, path: &str, body: &str) -> Value {
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, basic_header("till", "till-secret"))
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = outband_server::app(state.clone()).oneshot(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

async fn bc_authorize(state: &AppState, binding_message: &str) -> String {
    let body = format!("scope=openid%20payments&login_hint=alice&binding_message={binding_message}");
    let reply = till_post(state, "/bc-authorize", &body).await;
    reply["auth_req_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no auth_req_id: {reply}"))
        .to_owned()
}

fn add_till_and_alice(env: &Env) {
    env.ok(&[
        "clients",
        "add",
        "--id",
        "till",
        "--secret",
        "till-secret",
        "--grant-type",
        "urn:openid:params:grant-type:ciba",
        "--delivery-mode",
        "poll",
        "--scope",
        "openid payments",
    ]);
    env.ok(&["users", "add", "alice", "--email", "alice@example.com"]);
}

#[tokio::test]
async fn ciba_list_show_and_cancel() {
    let env = Env::new();
    add_till_and_alice(&env);
    assert!(env.ok(&["ciba", "list"]).contains("no CIBA requests"));
    let state = env.state().await;
    let first = bc_authorize(&state, "CAFE-0001").await;
    let second = bc_authorize(&state, "CAFE-0002").await;

    let human = env.ok(&["ciba", "list"]);
    assert_eq!(human.lines().count(), 2, "{human}");
    for expected in ["till", "alice", "pending", "CAFE-0001", "CAFE-0002"] {
        assert!(human.contains(expected), "{expected} missing: {human}");
    }
    let listed_text = env.ok(&["ciba", "list", "--state", "pending", "--json"]);
    for secret in [&first, &second] {
        assert!(!listed_text.contains(secret.as_str()), "never the auth_req_id");
        assert!(!human.contains(secret.as_str()), "never the auth_req_id");
    }
    assert!(!listed_text.contains("auth_req_id"), "{listed_text}");
    let listed = json(&listed_text);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    // Both were made in the same second: the order between them is by id.
    let by_message = |m: &str| listed.iter().find(|r| r["binding_message"] == m).unwrap();
    let request = by_message("CAFE-0001");
    assert_eq!(request["client_id"], "till");
    assert_eq!(request["username"], "alice");
    assert_eq!(request["state"], "pending");
    assert!(
        is_rfc3339(&request["created_at"]) && is_rfc3339(&request["expires_at"]),
        "{request}"
    );
    let id = request["id"].as_str().unwrap().to_owned();
    assert_eq!(
        json(&env.ok(&["ciba", "list", "--limit", "1", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let shown = json(&env.ok(&["ciba", "show", &id]));
    assert_eq!(shown["binding_message"], "CAFE-0001");
    assert_eq!(shown["scope"], "openid payments");
    assert!(shown["audit"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "ciba.requested"));

    let cancelled = env.ok(&["ciba", "cancel", &id]);
    assert!(
        cancelled.contains(&format!("cancelled request {id} of client till")),
        "{cancelled}"
    );
    let poll = till_post(
        &state,
        "/token",
        &format!("grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id={first}"),
    )
    .await;
    assert_eq!(poll["error"], "access_denied", "{poll}");
    let err = env.fails(&["ciba", "cancel", &id]);
    assert!(err.contains("is cancelled and cannot be cancelled"), "{err}");
    let by_state = json(&env.ok(&["--json", "ciba", "list", "--state", "cancelled"]));
    assert_eq!(by_state.as_array().unwrap().len(), 1);
    assert_eq!(by_state[0]["id"], id.as_str());
    assert!(is_rfc3339(&by_state[0]["decided_at"]));
    let audit = env.ok(&["audit", "--request", &id]);
    assert!(
        audit.contains("ciba.cancelled") && audit.contains("operator"),
        "{audit}"
    );
    assert_eq!(
        json(&env.ok(&[
            "ciba",
            "cancel",
            "--json",
            by_message("CAFE-0002")["id"].as_str().unwrap()
        ]))["state"],
        "cancelled"
    );

    assert!(env.fails(&["ciba", "show", "nope"]).contains("no CIBA request nope"));
    // Ids are base64url and may start with '-'.
    assert!(env.fails(&["ciba", "show", "-nope"]).contains("no CIBA request -nope"));
    assert!(env.fails(&["ciba", "cancel", "nope"]).contains("no CIBA request nope"));
    let err = env.fails(&["ciba", "list", "--state", "bogus"]);
    assert!(err.contains("pending") && err.contains("redeemed"), "{err}");
    state.store.close().await;
}

#[tokio::test]
async fn notifications_list_and_redeliver() {
    let env = Env::new();
    assert!(env
        .ok(&["notifications", "list"])
        .contains("no notifications to deliver"));
    assert!(env
        .ok(&["notifications", "list", "--failed"])
        .contains("no failed notifications"));
    let store = Store::connect(&env.db_url()).await.unwrap();
    store.migrate().await.unwrap();
    let now = outband_server::clock::Clock::now(&SystemClock);
    let id = store
        .enqueue_notification(&NewNotification {
            kind: NotificationKind::Ping,
            client_id: ClientId::new("till"),
            ciba_request_id: "req-42".into(),
            endpoint: "https://till.example/cb".into(),
            bearer_sealed: "sealed-bearer".into(),
            body_sealed: "sealed-body".into(),
            due_at: now - 60,
        })
        .await
        .unwrap()
        .unwrap();
    let claimed = store.claim_due_notification(now - 30, 30).await.unwrap().unwrap();
    assert_eq!(claimed.id, id);
    assert!(store
        .mark_notification_failed(id, now - 20, "the client answered 404")
        .await
        .unwrap());

    assert!(env
        .ok(&["notifications", "list"])
        .contains("no notifications to deliver"));
    let failed_human = env.ok(&["notifications", "list", "--failed"]);
    for expected in [
        &id.to_string(),
        "ping",
        "till",
        "req-42",
        "1 attempts",
        "the client answered 404",
    ] {
        assert!(failed_human.contains(expected), "{expected} missing: {failed_human}");
    }
    assert!(!failed_human.contains("sealed"), "{failed_human}");
    let failed = json(&env.ok(&["notifications", "list", "--failed", "--json"]));
    assert_eq!(failed[0]["id"], id);
    assert_eq!(failed[0]["attempts"], 1);
    assert_eq!(failed[0]["last_error"], "the client answered 404");
    assert!(is_rfc3339(&failed[0]["failed_at"]));

    let out = env.ok(&["notifications", "redeliver", &id.to_string()]);
    assert!(out.contains("due again"), "{out}");
    assert!(json(&env.ok(&["notifications", "list", "--failed", "--json"]))
        .as_array()
        .unwrap()
        .is_empty());
    let pending = json(&env.ok(&["notifications", "list", "--json"]));
    assert_eq!(pending[0]["id"], id);
    assert_eq!(pending[0]["attempts"], 0);
    assert!(pending[0]["failed_at"].is_null());
    assert!(is_rfc3339(&pending[0]["next_attempt_at"]));
    let again = store.pending_notifications(0).await.unwrap();
    assert!(again[0].next_attempt_at >= now && again[0].failed_at.is_none());

    let err = env.fails(&["notifications", "redeliver", &id.to_string()]);
    assert!(err.contains("is not a failed one"), "{err}");
    assert!(env
        .fails(&["notifications", "redeliver", "999"])
        .contains("is not a failed one"));
    assert!(env
        .fails(&["notifications", "redeliver", "seven"])
        .contains("invalid value"));
    store.close().await;
}

#[test]
fn user_codes_and_test_decisions() {
    let env = Env::new();
    env.ok(&["users", "add", "alice"]);
    assert_eq!(json(&env.ok(&["users", "show", "alice"]))["has_user_code"], false);
    let err = env.fails_with_stdin(&["users", "set-user-code", "alice"], "123\n");
    assert!(err.contains("at least 4"), "{err}");
    let err = env.fails_with_stdin(&["users", "set-user-code", "alice"], "");
    assert!(err.contains("no user code on standard input"), "{err}");
    let err = env.fails_with_stdin(&["users", "set-user-code", "mallory"], "4711\n");
    assert!(err.contains("no user mallory"), "{err}");
    let out = env.ok_with_stdin(&["users", "set-user-code", "alice"], "4711\n");
    assert!(out.contains("user code set for alice"), "{out}");
    let shown = env.ok(&["users", "show", "alice"]);
    assert_eq!(json(&shown)["has_user_code"], true);
    assert!(!shown.contains("argon2"), "the hash is not shown");
    assert!(env.ok(&["users", "clear-user-code", "alice"]).contains("cleared"));
    assert_eq!(json(&env.ok(&["users", "show", "alice"]))["has_user_code"], false);

    let err = env.fails(&["users", "test-decision", "alice", "approve"]);
    assert!(err.contains("refused in production"), "{err}");
    assert!(json(&env.ok(&["users", "show", "alice"]))["test_decision"].is_null());
    let development = |args: &[&str]| {
        let mut cmd = env.command(args);
        cmd.env("OUTBAND_ENVIRONMENT", "development");
        ok_output(args, env.output(cmd, None))
    };
    let out = development(&["users", "test-decision", "alice", "approve"]);
    assert!(out.contains("test decision for alice: approve"), "{out}");
    assert_eq!(json(&env.ok(&["users", "show", "alice"]))["test_decision"], "approve");
    let out = development(&["--json", "users", "test-decision", "alice", "off"]);
    assert!(json(&out)["test_decision"].is_null(), "{out}");
    assert!(json(&env.ok(&["users", "show", "alice"]))["test_decision"].is_null());
    let err = env.fails(&["users", "test-decision", "alice", "maybe"]);
    assert!(err.contains("approve"), "{err}");
}

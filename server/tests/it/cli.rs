//! The `outband-server` binary as an operator uses it: admin commands with human
//! and JSON output, clear errors, and `serve` stopping cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::cli_support::{json, CliEnv as Env};

#[test]
fn clients_lifecycle() {
    let env = Env::new();
    let out = env.ok(&[
        "clients", "add", "--id", "pos-1", "--name", "Till 1", "--scope", "payments",
    ]);
    assert!(out.contains("client_secret: "), "{out}");
    let list = json(&env.ok(&["clients", "list", "--json"]));
    assert_eq!(list[0]["client_id"], "pos-1");
    assert_eq!(list[0]["scope"], "payments");
    let shown = json(&env.ok(&["clients", "show", "pos-1"]));
    assert_eq!(shown["client_name"], "Till 1");
    assert!(env
        .fails(&["clients", "add", "--id", "pos-1"])
        .contains("already exists"));
    env.ok(&["clients", "remove", "pos-1"]);
    assert!(env.fails(&["clients", "remove", "pos-1"]).contains("no client pos-1"));
    assert!(env.ok(&["clients", "list"]).contains("no clients"));
}

#[test]
fn clients_add_json_shows_the_secret_once_and_validates_profiles() {
    let env = Env::new();
    let added = json(&env.ok(&["--json", "clients", "add", "--id", "m", "--secret", "given-secret"]));
    assert_eq!(added["client_secret"], "given-secret");
    assert!(
        !env.ok(&["clients", "show", "m"]).contains("given-secret"),
        "only the hash is stored"
    );
    let err = env.fails(&["clients", "add", "--id", "f", "--profile", "fapi2-security"]);
    assert!(err.contains("not allowed under the fapi2-security profile"), "{err}");
    let err = env.fails(&["clients", "add", "--id", "f", "--profile", "fapi3"]);
    assert!(err.contains("fapi2-security"), "clap lists the choices: {err}");
    let err = env.fails(&["clients", "add", "--id", "k", "--auth-method", "private_key_jwt"]);
    assert!(err.contains("jwks"), "{err}");
}

#[test]
fn users_lifecycle() {
    let env = Env::new();
    env.ok(&[
        "users",
        "add",
        "alice",
        "--email",
        "Alice@Example.com",
        "--phone",
        "+4915112345678",
    ]);
    let shown = json(&env.ok(&["users", "show", "alice@example.com"]));
    assert_eq!(shown["username"], "alice");
    assert_eq!(shown["locked"], false);
    assert_eq!(json(&env.ok(&["users", "show", "+4915112345678"]))["username"], "alice");
    env.ok(&["users", "lock", "alice"]);
    assert_eq!(json(&env.ok(&["users", "show", "alice"]))["locked"], true);
    env.ok(&["users", "unlock", "alice"]);
    assert_eq!(json(&env.ok(&["users", "show", "alice"]))["locked"], false);

    let short = env.run_with_stdin(&["users", "set-password", "alice"], "short\n");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8"));
    let good = env.run_with_stdin(&["users", "set-password", "alice"], "correct horse battery\n");
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    assert_eq!(json(&env.ok(&["users", "show", "alice"]))["has_password"], true);
    // Operators reset a forgotten password under its own name too.
    let reset = env.run_with_stdin(&["users", "reset-password", "alice"], "another horse battery\n");
    assert!(reset.status.success(), "{}", String::from_utf8_lossy(&reset.stderr));

    assert!(env
        .fails(&["users", "add", "alice2", "--email", "alice@example.com"])
        .contains("already exists"));
    assert!(env.fails(&["users", "show", "mallory"]).contains("no user mallory"));
    let list = json(&env.ok(&["users", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 1);
    env.ok(&["users", "remove", "alice"]);
    assert!(env.ok(&["users", "list"]).contains("no users"));
}

#[test]
fn keys_and_audit() {
    let env = Env::new();
    assert!(env.ok(&["keys", "list"]).contains("no keys yet"));
    assert!(env.ok(&["keys", "rotate"]).contains("generation 2"));
    let keys = json(&env.ok(&["keys", "list", "--json"]));
    assert_eq!(keys.as_array().unwrap().len(), 8);
    assert!(Path::new(&env.dir.path().join("cli.key")).exists());
    assert!(env.ok(&["audit"]).contains("no matching events"));
    let err = env.fails(&["audit", "--since", "yesterday"]);
    assert!(err.contains("RFC 3339"), "{err}");
}

#[test]
fn configuration_errors_name_the_key() {
    let env = Env::new();
    let file = env.dir.path().join("bad.toml");
    std::fs::write(&file, "issuer = \"https://as.example\"\nlisten_addr = \"x\"\n").unwrap();
    let err = env.fails(&["--config", file.to_str().unwrap(), "clients", "list"]);
    assert!(err.contains("listen_addr"), "{err}");
    let err = env.fails(&["--config", "/does/not/exist.toml", "clients", "list"]);
    assert!(err.contains("does not exist"), "{err}");
    let mut cmd = env.command(&["clients", "list"]);
    let out = cmd.env("OUTBAND_ISSUER", "ftp://as.example").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("`issuer`"));
}

#[test]
fn serve_answers_then_stops_on_sigterm() {
    let env = Env::new();
    let mut child = env
        .command(&["serve"])
        .env("OUTBAND_LISTEN", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listen=").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
            }
        }
    });
    let Ok(addr) = rx.recv_timeout(std::time::Duration::from_secs(30)) else {
        child.kill().unwrap();
        panic!("the server did not log its address within 30 s");
    };
    let body = reqwest::blocking_get(&format!("http://{addr}/.well-known/openid-configuration"));
    assert_eq!(json(&body)["issuer"], "https://as.example.test");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");
}

mod reqwest {
    /// A tiny blocking GET over a fresh runtime (the test itself is synchronous).
    pub fn blocking_get(url: &str) -> String {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async { ::reqwest::get(url).await.unwrap().text().await.unwrap() })
    }
}

#[test]
fn an_invalid_configured_client_stops_the_start_with_its_name() {
    let env = Env::new();
    let file = env.dir.path().join("clients.toml");
    std::fs::write(
        &file,
        "[[clients]]\nclient_id = \"till\"\nprofile = \"fapi2-security\"\nclient_secret = \"x\"\n",
    )
    .unwrap();
    let out = env
        .command(&["--config", file.to_str().unwrap(), "serve"])
        .env("OUTBAND_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("configuration client till") && err.contains("fapi2-security"),
        "{err}"
    );
}

//! Where `outband-device` keeps the sealed key, as a user meets it. Each test
//! starts a session bus of its own (`dbus-run-session`) and runs the real
//! binary on it with the default key store (`--key-store auto`):
//!
//! - with GNOME Keyring running and unlocked, the key is in the keyring (read
//!   from outside with `secret-tool`, sealed) and in no file; a new process
//!   approves with it; `remove` deletes the entry;
//! - with no session bus, and with a Secret Service that has no unlocked
//!   keyring, the key lands in the 0600 file without a word of failure, and a
//!   new process approves with it.
//!
//! Needs `dbus-run-session` (dbus-daemon), `gnome-keyring-daemon` (gnome-keyring)
//! and `secret-tool` (libsecret-tools); `cargo xtask setup` installs them. Runs
//! once, on SQLite (the keyring never sees the server's storage).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use outband_server::store::CibaState;
use outband_server::test_server::TestServer;
use serde_json::Value;
use tokio::process::Command;

use crate::cli::{real_time_server, Device};
use crate::support::{payment, request_id, WAIT};

/// A private session bus; with GNOME Keyring on it when asked. Killed on drop.
struct Bus {
    _group: Group,
    address: String,
    /// HOME, XDG_DATA_HOME (the keyring files) and XDG_RUNTIME_DIR of the session.
    home: tempfile::TempDir,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Keyring {
    /// `gnome-keyring-daemon --unlock` with a password: the `login` collection is the default.
    Unlocked,
    /// `gnome-keyring-daemon` without a password: a Secret Service with no default collection.
    NoCollection,
}

impl Bus {
    async fn start(keyring: Keyring) -> Bus {
        let home = tempfile::tempdir().unwrap();
        let runtime = home.path().join("run");
        std::fs::create_dir(&runtime).unwrap();
        let address_file = home.path().join("bus-address");
        let start_keyring = match keyring {
            Keyring::Unlocked => {
                "printf %s any-password | gnome-keyring-daemon --unlock --components=secrets --daemonize"
            }
            Keyring::NoCollection => "gnome-keyring-daemon --components=secrets --daemonize </dev/null",
        };
        let script = format!(
            "{start_keyring} >/dev/null || exit 1\nprintf %s \"$DBUS_SESSION_BUS_ADDRESS\" > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"\nexec sleep 600"
        );
        let mut command = std::process::Command::new("dbus-run-session");
        command
            .args(["--", "sh", "-c", &script, "sh"])
            .arg(&address_file)
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dbus-run-session ({e}): {}", PACKAGES));
        let group = Group(child.id());
        let deadline = tokio::time::Instant::now() + WAIT;
        let address = loop {
            if let Ok(address) = std::fs::read_to_string(&address_file) {
                break address;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the D-Bus session with GNOME Keyring ended at start ({status}): {PACKAGES}");
            }
            assert!(tokio::time::Instant::now() < deadline, "no D-Bus session in time");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert!(address.starts_with("unix:"), "bus address {address:?}");
        // The process is reaped when the group is killed; nobody waits for it.
        drop(child);
        Bus {
            _group: group,
            address,
            home,
        }
    }

    /// The keyring entry of `account`, looked up from outside with `secret-tool`.
    async fn entry(&self, account: &str) -> Option<String> {
        let output = tokio::time::timeout(
            WAIT,
            Command::new("secret-tool")
                .args(["lookup", "service", "outband-device", "username", account])
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .stdin(Stdio::null())
                .output(),
        )
        .await
        .expect("secret-tool did not answer in time")
        .unwrap_or_else(|e| panic!("cannot run secret-tool ({e}): {PACKAGES}"));
        output
            .status
            .success()
            .then(|| String::from_utf8(output.stdout).unwrap())
    }
}

/// The `dbus-run-session` process group, killed on drop (also when a test fails).
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        // GNOME Keyring (daemonized: its own session) exits when its bus goes away.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(Stdio::null())
            .status();
    }
}

const PACKAGES: &str =
    "this test needs dbus-run-session, gnome-keyring-daemon and secret-tool (Debian: dbus-daemon gnome-keyring \
     libsecret-tools; `cargo xtask setup` installs them)";

/// Runs on SQLite only; says so otherwise.
fn skipped() -> bool {
    if std::env::var("OUTBAND_TEST_BACKEND").as_deref() == Ok("postgres") {
        eprintln!("skipped with PostgreSQL: the keyring tests run once, on SQLite");
        return true;
    }
    false
}

/// `outband-device` with the default key store, on `bus` (None: no session bus at all).
async fn device(device: &Device, bus: Option<&Bus>, args: &[&str]) -> String {
    let mut command = device.command(args);
    command.env_remove("OUTBAND_DEVICE_KEY_STORE");
    match bus {
        Some(bus) => {
            command
                .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
                .env("XDG_RUNTIME_DIR", bus.home.path().join("run"));
        }
        None => {
            // No session bus: zbus would also try $XDG_RUNTIME_DIR/bus.
            command
                .env_remove("DBUS_SESSION_BUS_ADDRESS")
                .env("XDG_RUNTIME_DIR", &device.data);
        }
    }
    let output = tokio::time::timeout(WAIT, command.output())
        .await
        .expect("outband-device did not finish in time")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {}\n{stderr}", output.status);
    // No user-visible failure when the keyring is not there (RUST_LOG=warn).
    assert!(stderr.is_empty(), "{args:?} said on stderr: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// Enrolls with `--json`; returns the account id and where the key went.
async fn enroll(server: &TestServer, dev: &Device, bus: Option<&Bus>) -> (String, String) {
    let (_, link) = server.invite("alice").await;
    let out: Value = serde_json::from_str(&device(dev, bus, &["--json", "enroll", &link]).await).unwrap();
    let account = out["account"].as_str().unwrap().to_owned();
    let listed: Value = serde_json::from_str(&device(dev, bus, &["--json", "accounts"]).await).unwrap();
    assert_eq!(listed[0]["id"], account.as_str());
    assert_eq!(
        listed[0]["key_storage"], out["key_storage"],
        "accounts says where the key is"
    );
    (account, out["key_storage"].as_str().unwrap().to_owned())
}

/// Approves a new payment request in a new process; the client's request is approved.
async fn approve_after_restart(server: &TestServer, dev: &Device, bus: Option<&Bus>, binding: &str) {
    let auth_req_id = server
        .bc_authorize("pos", "alice", Some(binding), Some(&payment()))
        .await;
    let id = request_id(server, &auth_req_id).await;
    let out = device(dev, bus, &["approve", &id]).await;
    assert!(out.contains("approved"), "{out}");
    assert_eq!(server.request(&auth_req_id).await.state, CibaState::Approved);
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn the_sealed_key_lives_in_the_os_keyring_and_goes_with_the_account() {
    if skipped() {
        return;
    }
    let bus = Bus::start(Keyring::Unlocked).await;
    let server = real_time_server().await;
    let dev = Device::new();
    let (account, storage) = enroll(&server, &dev, Some(&bus)).await;
    assert_eq!(storage, "os_keyring");

    // The keyring holds the sealed blob (Argon2id, AES-256-GCM), and only that.
    let sealed = bus.entry(&account).await.expect("the key is in the keyring");
    let blob: Value = serde_json::from_str(&sealed).unwrap();
    assert_eq!(blob["kdf"]["alg"], "argon2id");
    assert_eq!(blob["cipher"], "A256GCM");
    assert!(
        !sealed.contains("\"d\"") && !sealed.contains("\"kty\""),
        "nothing unsealed: {sealed}"
    );
    // ... and no file on disk does.
    let ciphertext = blob["ciphertext"].as_str().unwrap();
    for file in files(&dev.data) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            !text.contains(ciphertext),
            "the sealed key is also in {}",
            file.display()
        );
        assert!(!file.to_string_lossy().ends_with(".sealed"), "{}", file.display());
    }
    let text = device(&dev, Some(&bus), &["accounts"]).await;
    assert!(text.contains("key in OS keyring"), "{text}");

    // A new process unlocks the key from the keyring and approves.
    approve_after_restart(&server, &dev, Some(&bus), "KEYR-0001").await;

    // Removing the account deletes the keyring entry.
    device(&dev, Some(&bus), &["remove", &account]).await;
    assert_eq!(bus.entry(&account).await, None, "the keyring entry is gone");
}

#[tokio::test]
async fn without_a_secret_service_the_key_goes_to_a_private_file_and_still_works() {
    if skipped() {
        return;
    }
    let server = real_time_server().await;
    // No session bus at all, then a Secret Service with no unlocked keyring.
    let no_keyring = Bus::start(Keyring::NoCollection).await;
    for bus in [None, Some(&no_keyring)] {
        let dev = Device::new();
        let (account, storage) = enroll(&server, &dev, bus).await;
        assert_eq!(storage, "file");
        let file = dev.data.join("keys").join(format!("{account}.sealed"));
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        let blob: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(blob["kdf"]["alg"], "argon2id");
        let text = device(&dev, bus, &["accounts"]).await;
        assert!(text.contains("key in file"), "{text}");
        approve_after_restart(
            &server,
            &dev,
            bus,
            if bus.is_some() { "FILE-0002" } else { "FILE-0001" },
        )
        .await;
        if bus.is_some() {
            assert_eq!(
                no_keyring.entry(&account).await,
                None,
                "nothing half-stored in the keyring"
            );
        }
        device(&dev, bus, &["remove", &account]).await;
        assert!(!file.exists(), "remove deletes the key file");
    }
}

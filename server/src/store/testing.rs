//! Test support: a fresh, migrated, isolated [`Store`] per test, on the backend
//! named by `OUTBAND_TEST_BACKEND` (`sqlite`, the default, or `postgres`). The
//! same tests thus run against both databases, as CI does.
//!
//! This module is compiled into the library (not only under `cfg(test)`) so the
//! integration tests in `server/tests/it/` can use it too. It panics instead of
//! returning errors: a test that cannot get a database should stop right there.

#![allow(clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::{AnyConnection, Connection, Row};

use super::{Store, StoreError};

/// Names the backend the tests run on: `sqlite` (default) or `postgres`.
pub const BACKEND_VAR: &str = "OUTBAND_TEST_BACKEND";
/// The PostgreSQL server the tests create their databases on.
pub const DATABASE_URL_VAR: &str = "DATABASE_URL";
/// Used when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Every test database on PostgreSQL is called this plus a UUID.
pub const TEST_DATABASE_PREFIX: &str = "outband_t_";

/// SQLite test files older than this are left over from earlier runs.
const STALE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// A new, empty, migrated store that no other test shares.
pub async fn fresh_store() -> Store {
    let store = match std::env::var(BACKEND_VAR).as_deref() {
        Err(_) | Ok("" | "sqlite") => sqlite_store().await,
        Ok("postgres") => postgres_store().await,
        Ok(other) => panic!("{BACKEND_VAR}={other:?}: expected sqlite or postgres"),
    };
    store.migrate().await.expect("migrating the test database");
    store
}

/// A new SQLite file. Not `:memory:`: an in-memory database is one connection,
/// which would serialise every test of concurrent calls (first key generation,
/// jti replay) and so prove nothing about how the store behaves when several
/// connections race, as they do in production. Files live in a shared temp
/// directory that is swept of day-old leftovers, since no destructor runs for
/// a test process's statics.
async fn sqlite_store() -> Store {
    let path = sqlite_dir().join(format!("{}.db", uuid::Uuid::new_v4().simple()));
    let path = path.to_str().expect("the temp directory path is UTF-8");
    Store::connect(path)
        .await
        .unwrap_or_else(|err| panic!("opening test database {path}: {err}"))
}

fn sqlite_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join("outband-tests");
        std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("creating {}: {err}", dir.display()));
        sweep(&dir);
        dir
    })
}

/// Deletes files of earlier runs; best effort.
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `DATABASE_URL`, or the default.
fn admin_url() -> String {
    std::env::var(DATABASE_URL_VAR).unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

async fn admin_connection(admin_url: &str) -> Result<AnyConnection, sqlx::Error> {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(admin_url).await
}

/// A new database `outband_t_<uuid>` on the server of `DATABASE_URL`, so tests
/// run in parallel without seeing each other's rows.
async fn postgres_store() -> Store {
    let url = postgres_database().await;
    Store::connect(&url)
        .await
        .unwrap_or_else(|err| panic!("connecting to test database {}: {err}", redacted(&url)))
}

/// The URL of a new, empty database on the backend `OUTBAND_TEST_BACKEND`
/// names, for tests that run the server as a separate process (it migrates
/// the database itself): a new SQLite file, or a new PostgreSQL database.
pub async fn fresh_database_url() -> String {
    match std::env::var(BACKEND_VAR).as_deref() {
        Err(_) | Ok("" | "sqlite") => {
            let path = sqlite_dir().join(format!("{}.db", uuid::Uuid::new_v4().simple()));
            format!("sqlite://{}", path.display())
        }
        Ok("postgres") => postgres_database().await,
        Ok(other) => panic!("{BACKEND_VAR}={other:?}: expected sqlite or postgres"),
    }
}

/// Creates `outband_t_<uuid>` on the server of `DATABASE_URL`; returns its URL.
async fn postgres_database() -> String {
    let admin_url = admin_url();
    let mut admin = admin_connection(&admin_url).await.unwrap_or_else(|err| {
        panic!(
            "cannot reach PostgreSQL at {DATABASE_URL_VAR}={} ({err}); start it (cargo xtask setup) \
             or point {DATABASE_URL_VAR} at a server where this user may CREATE DATABASE",
            redacted(&admin_url)
        )
    });
    let name = format!("{TEST_DATABASE_PREFIX}{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|err| panic!("creating test database {name} via {DATABASE_URL_VAR}: {err}"));
    let _ = admin.close().await;
    let mut url = url::Url::parse(&admin_url)
        .unwrap_or_else(|err| panic!("{DATABASE_URL_VAR}={} is not a URL: {err}", redacted(&admin_url)));
    url.set_path(&name);
    url.to_string()
}

/// Drops every `outband_t_%` database on the server of `admin_url`, even with
/// sessions still connected; returns how many. Run it before a test run, not
/// during one.
pub async fn drop_test_databases(admin_url: &str) -> Result<u64, StoreError> {
    let mut admin = admin_connection(admin_url).await?;
    let rows = sqlx::query("SELECT datname::text AS datname FROM pg_database WHERE datname LIKE $1")
        .bind(format!("{}%", TEST_DATABASE_PREFIX.replace('_', "\\_")))
        .fetch_all(&mut admin)
        .await?;
    let mut dropped = 0;
    for row in rows {
        let name: String = row.try_get("datname")?;
        let quoted = name.replace('"', "\"\"");
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{quoted}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
        dropped += 1;
    }
    let _ = admin.close().await;
    Ok(dropped)
}

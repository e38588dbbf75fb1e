//! # Storage
//!
//! Everything Outband keeps lives behind [`Store`]: clients, users, signing keys,
//! the JWT replay cache, issued tokens and the audit log. Every SQL statement of
//! the server is in this module; migrations are in `server/migrations/{sqlite,postgres}/`.
//!
//! ## Layout
//!
//! - `mod.rs` (here): [`Store`], [`Backend`], connecting, migrations, health.
//! - `records.rs`: the domain records the rest of the server sees ([`ClientRecord`],
//!   [`UserRecord`], [`KeyRecord`], [`TokenRecord`], [`AuditEvent`]);
//!   `ciba_records.rs`: those of CIBA ([`CibaRequestRecord`], [`DeviceRecord`],
//!   [`ActivationCodeRecord`], [`DeviceTokenRecord`], [`NotificationRecord`]).
//! - `error.rs`: [`StoreError`].
//! - one file per concept, each an `impl Store { .. }` block: `clients.rs`,
//!   `users.rs`, `keys.rs`, `jtis.rs`, `tokens.rs`, `audit.rs`, and for CIBA
//!   `ciba.rs` (backchannel requests), `devices.rs` (authentication devices,
//!   activation codes, device tokens) and `outbox.rs` (ping/push deliveries);
//!   `payments.rs`: payments and refunds of the resource API;
//!   `registrations.rs`: dynamically registered clients' registration access tokens;
//!   `consents.rs`: lodging-intent consent resources ([`ConsentRecord`]).
//! - `grants.rs`: grants (FAPI Grant Management) and the grant intents of authorizations in progress.
//! - `requested_claims.rs`: the UserInfo claims a grant's authorization asked for (`claims` parameter).
//! - [`testing`]: `fresh_store()` for tests (SQLite by default, PostgreSQL with
//!   `OUTBAND_TEST_BACKEND=postgres`), and `conformance.rs`, the one suite every
//!   backend must pass.
//!
//! ## One SQL text for both databases
//!
//! SQLite is the embedded default; PostgreSQL is for several nodes sharing one
//! database. Both go through sqlx's `Any` driver with runtime queries, so each
//! statement is written once, in the dialect both accept: `$1`-style parameters
//! (SQLite reads `$N` as "parameter N"), `INSERT .. ON CONFLICT DO NOTHING`,
//! `UPDATE .. WHERE .. RETURNING`, `BIGINT` for unix times and for 0/1 flags (the
//! `Any` driver cannot decode a SQLite integer as `bool`) and `TEXT` for strings
//! and JSON. The backend is picked once, from the URL, in [`Store::connect`]; the
//! only other place the two differ is the migration files (auto-increment ids).
//! No method branches on the backend.
//!
//! ## Races
//!
//! Several nodes (or two clicks) may do the same thing at once, so nothing here
//! reads a row, decides in Rust and writes it back. A decision is one statement
//! whose outcome the database settles: a conditional `UPDATE .. WHERE revoked = 0`
//! (did *this* call revoke it?), an `INSERT .. ON CONFLICT DO NOTHING` whose
//! `rows_affected` says who was first (JWT ids, key generations). The
//! conformance suite checks these under real concurrency.

mod audit;
mod browser;
mod ciba;
mod ciba_records;
mod clients;
#[cfg(test)]
mod conformance;
mod consents;
mod devices;
mod error;
mod grants;
mod jtis;
mod keys;
mod notify;
mod outbox;
mod payments;
mod records;
mod refresh_rotation;
mod registrations;
mod requested_claims;
mod session_clients;
#[doc(hidden)]
pub mod testing;
mod tokens;
mod users;

use std::time::Duration;

use futures::future::BoxFuture;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{Any, AnyPool, Executor, Row};

pub use audit::{DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT};
pub use browser::{AuthorizationCodeRecord, BrowserSessionRecord, InteractionRecord};
pub use ciba::{DEFAULT_CIBA_LIST_LIMIT, MAX_CIBA_LIST_LIMIT, SLOW_DOWN_INCREMENT};
pub use ciba_records::*;
pub use consents::{ConsentRecord, Rejection as ConsentRejection};
pub use error::StoreError;
pub use grants::{GrantIntentRecord, GrantRecord};
pub use outbox::{DEFAULT_NOTIFICATION_LIST_LIMIT, MAX_NOTIFICATION_LIST_LIMIT};
pub use payments::{PaymentRecord, RefundOutcome, RefundRecord, MAX_REFERENCE_MATCHES};
pub use records::*;
pub use registrations::RegistrationRecord;
pub use session_clients::{SessionClientRecord, SessionEnd};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Set on every SQLite connection. `Any` cannot carry SQLite-specific connect
/// options, so they are PRAGMAs run right after connecting. `busy_timeout` comes
/// first so that switching to WAL waits for other connections instead of failing.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                              PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// Connections in a file-backed SQLite pool: SQLite has one writer at a time,
/// so a few readers beside it are all that helps.
const SQLITE_POOL_SIZE: u32 = 4;
/// Connections per node in a PostgreSQL pool.
const POSTGRES_POOL_SIZE: u32 = 10;
/// How long a query waits for a free connection before the store reports
/// [`StoreError::Unavailable`].
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file, or `:memory:`.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    fn migrator(self) -> &'static Migrator {
        match self {
            Self::Sqlite => &SQLITE_MIGRATIONS,
            Self::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

/// The storage handle. Cloning is cheap: clones share one connection pool.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// PostgreSQL only: where `LISTEN` connections go (see `notify.rs`).
    postgres_url: Option<std::sync::Arc<str>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password, so it is not kept, let alone printed.
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Where to connect, worked out from the configured URL.
struct Target {
    backend: Backend,
    url: String,
    in_memory: bool,
}

impl Target {
    /// `postgres://` and `postgresql://` URLs go to PostgreSQL. Everything else is
    /// SQLite: `:memory:`, `sqlite:` URLs (created when missing unless a `mode`
    /// says otherwise) and plain file paths.
    fn parse(url: &str) -> Self {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self {
                backend: Backend::Postgres,
                url: url.to_owned(),
                in_memory: false,
            };
        }
        let memory = Self {
            backend: Backend::Sqlite,
            url: "sqlite::memory:".to_owned(),
            in_memory: true,
        };
        if matches!(url, ":memory:" | "sqlite::memory:" | "sqlite://:memory:") {
            return memory;
        }
        let url = match url.strip_prefix("sqlite:") {
            Some(rest) if rest.contains(":memory:") || rest.contains("mode=memory") => {
                return Self {
                    url: url.to_owned(),
                    ..memory
                };
            }
            Some(rest) if rest.contains("mode=") => url.to_owned(),
            Some(rest) if rest.contains('?') => format!("{url}&mode=rwc"),
            Some(_) => format!("{url}?mode=rwc"),
            None => format!("sqlite://{}?mode=rwc", escape_path(url)),
        };
        Self {
            backend: Backend::Sqlite,
            url,
            in_memory: false,
        }
    }

    fn pool_options(&self) -> AnyPoolOptions {
        let options = AnyPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        match self.backend {
            Backend::Postgres => options.max_connections(POSTGRES_POOL_SIZE),
            // Every connection to `:memory:` is a database of its own, so the pool
            // holds exactly one connection and never lets it go.
            Backend::Sqlite if self.in_memory => options
                .min_connections(1)
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .after_connect(|conn, _| sqlite_pragmas(conn)),
            Backend::Sqlite => options
                .min_connections(1)
                .max_connections(SQLITE_POOL_SIZE)
                .after_connect(|conn, _| sqlite_pragmas(conn)),
        }
    }
}

/// A file path inside a URL: only the characters that would end the path early
/// (or start an escape) need escaping; sqlx decodes them again.
fn escape_path(path: &str) -> String {
    path.replace('%', "%25").replace('?', "%3F").replace('#', "%23")
}

fn sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    // `Executor::execute` returns a boxed future, which keeps this closure's
    // future `Send` for every connection lifetime (`raw_sql(..).execute` does not).
    Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(drop) })
}

impl Store {
    /// Connects to `url`: `postgres://…`/`postgresql://…`, or for SQLite a
    /// `sqlite:` URL, a file path (created when missing) or `:memory:`.
    /// Does not run migrations; call [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let target = Target::parse(url);
        let pool = target.pool_options().connect(&target.url).await?;
        tracing::debug!(backend = ?target.backend, "store connected");
        let postgres_url = (target.backend == Backend::Postgres).then(|| std::sync::Arc::from(target.url.as_str()));
        Ok(Self {
            pool,
            backend: target.backend,
            postgres_url,
        })
    }

    /// Brings the schema up to date. Safe to run from several nodes at once: on
    /// PostgreSQL sqlx holds an advisory lock while migrating.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.backend.migrator().run(&self.pool).await.map_err(|err| match err {
            MigrateError::Execute(err) => StoreError::from(err),
            other => StoreError::Database(sqlx::Error::from(other)),
        })
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A new, separate pool on the same PostgreSQL database, as a second
    /// server node would have (tests of several nodes); `None` on SQLite.
    pub async fn connect_another_node(&self) -> Option<Result<Self, StoreError>> {
        let url = self.postgres_url.as_deref()?;
        Some(Self::connect(url).await)
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection; later calls fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool, for the test helpers that write rows no API would write.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Flags are stored as BIGINT 0/1 on both backends.
fn flag(value: bool) -> i64 {
    i64::from(value)
}

/// Reads a column; a value of the wrong type is [`StoreError::Corrupt`].
fn column<'r, T>(row: &'r AnyRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(name)
        .map_err(|err| StoreError::Corrupt(format!("column {name}: {err}")))
}

/// Whether a statement touched exactly one row (the conditional updates).
fn one_row(result: &sqlx::any::AnyQueryResult) -> bool {
    result.rows_affected() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        let pg = Target::parse("postgres://u@h/db");
        assert_eq!((pg.backend, pg.url.as_str()), (Backend::Postgres, "postgres://u@h/db"));
        assert_eq!(Target::parse("postgresql://h/db").backend, Backend::Postgres);
        for memory in [":memory:", "sqlite::memory:", "sqlite://:memory:"] {
            let target = Target::parse(memory);
            assert!(target.in_memory, "{memory}");
            assert_eq!(target.url, "sqlite::memory:");
        }
        assert!(Target::parse("sqlite:file:x?mode=memory&cache=shared").in_memory);
        let file = Target::parse("/var/lib/outband/db.sqlite");
        assert_eq!((file.backend, file.in_memory), (Backend::Sqlite, false));
        assert_eq!(file.url, "sqlite:///var/lib/outband/db.sqlite?mode=rwc");
        assert_eq!(
            Target::parse("data/a?b#c.db").url,
            "sqlite://data/a%3Fb%23c.db?mode=rwc"
        );
        assert_eq!(Target::parse("sqlite://x.db").url, "sqlite://x.db?mode=rwc");
        assert_eq!(
            Target::parse("sqlite://x.db?cache=private").url,
            "sqlite://x.db?cache=private&mode=rwc"
        );
        assert_eq!(Target::parse("sqlite://x.db?mode=ro").url, "sqlite://x.db?mode=ro");
    }

    /// SQLite must read `$N` as "parameter N" (not as a named parameter bound in
    /// order of appearance), or sharing SQL texts with PostgreSQL would silently
    /// bind the wrong values.
    #[tokio::test]
    async fn sqlite_binds_dollar_n_by_number() {
        let store = Store::connect(":memory:").await.unwrap();
        let row = sqlx::query("SELECT $2 AS b, $1 AS a, $2 AS b2")
            .bind("one")
            .bind("two")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        let got: (String, String, String) = (
            column(&row, "a").unwrap(),
            column(&row, "b").unwrap(),
            column(&row, "b2").unwrap(),
        );
        assert_eq!(got, ("one".to_owned(), "two".to_owned(), "two".to_owned()));
    }

    #[tokio::test]
    async fn memory_store_keeps_its_data_across_queries() {
        let store = Store::connect(":memory:").await.unwrap();
        store.migrate().await.unwrap();
        store.ping().await.unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        // A second connection would be a second, empty database without the table.
        for _ in 0..3 {
            assert!(store.list_clients().await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn closed_store_is_unavailable() {
        let store = Store::connect(":memory:").await.unwrap();
        store.close().await;
        assert!(matches!(store.ping().await, Err(StoreError::Unavailable(_))));
    }

    #[tokio::test]
    async fn file_store_is_created_and_uses_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outband.db");
        let store = Store::connect(path.to_str().unwrap()).await.unwrap();
        store.migrate().await.unwrap();
        assert!(path.exists());
        let row = sqlx::query("PRAGMA journal_mode").fetch_one(&store.pool).await.unwrap();
        assert_eq!(column::<String>(&row, "journal_mode").unwrap(), "wal");
        let row = sqlx::query("PRAGMA foreign_keys").fetch_one(&store.pool).await.unwrap();
        assert_eq!(column::<i64>(&row, "foreign_keys").unwrap(), 1);
        store.close().await;
    }

    /// Nothing important lives only in memory: what one process wrote, the next
    /// one (after a restart) reads.
    #[tokio::test]
    async fn file_store_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("restart.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        assert!(store.use_jti("ns", "j", 100).await.unwrap());
        store.close().await;

        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        assert!(!store.use_jti("ns", "j", 100).await.unwrap());
        store.close().await;
    }
}

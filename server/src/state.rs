//! What every handler can reach: settings, the store, the keys and the clock.
//! Cloned per request (every field is a cheap handle).

use std::sync::Arc;

use outband_protocol::{ClientId, ClientMetadata, ClientSecret, Subject};

use crate::auth::client_keys::JwksCache;
use crate::clock::Clock;
use crate::config::Settings;
use crate::events::EventBus;
use crate::keys::{KeySet, LoadKeysError};
use crate::outbound::{BuildOutboundClientError, OutboundClient};
use crate::rate_limit::RateLimits;
use crate::store::{ClientRecord, Store, StoreError, UserRecord};

/// Shared state of the server.
#[derive(Clone)]
pub struct AppState {
    /// Validated configuration.
    pub settings: Arc<Settings>,
    /// The database.
    pub store: Store,
    /// Signing keys.
    pub keys: Arc<KeySet>,
    /// The only source of time.
    pub clock: Arc<dyn Clock>,
    /// The one HTTP client for outbound calls (jwks_uri, notifications).
    pub outbound: OutboundClient,
    /// Key sets fetched from clients' `jwks_uri`.
    pub jwks_cache: Arc<JwksCache>,
    /// Live events for authentication devices.
    pub events: EventBus,
    /// Wakes the notification worker when a ping/push is queued.
    pub wake_delivery: Arc<tokio::sync::Notify>,
    /// Per-client rate limits of this node (in memory).
    pub rate_limits: RateLimits,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A client of the configuration file is not valid.
    #[error("configuration client {client_id}: {reason}")]
    InvalidClient {
        /// The client.
        client_id: String,
        /// What is wrong, naming the metadata field.
        reason: String,
    },
    /// Keys could not be loaded or made.
    #[error(transparent)]
    Keys(#[from] LoadKeysError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The outbound HTTP client could not be built.
    #[error(transparent)]
    Outbound(#[from] BuildOutboundClientError),
}

impl AppState {
    /// Loads (or creates) the signing keys and applies the clients and users of the
    /// configuration file, then returns the state.
    pub async fn build(settings: Settings, store: Store, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let keys = KeySet::load_or_create(&store, &settings.key_file, clock.now()).await?;
        let outbound = OutboundClient::new(&settings.outbound)?;
        let store_for_events = store.clone();
        let rate_limits = RateLimits::new(&settings.rate_limits, &clock);
        let state = Self {
            settings: Arc::new(settings),
            store,
            keys: Arc::new(keys),
            clock,
            outbound,
            jwks_cache: Arc::new(JwksCache::default()),
            events: EventBus::new(&store_for_events),
            wake_delivery: Arc::new(tokio::sync::Notify::new()),
            rate_limits,
        };
        state.apply_configured_clients().await?;
        state.apply_configured_users().await?;
        Ok(state)
    }

    /// The current time.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    async fn apply_configured_clients(&self) -> Result<(), StartError> {
        for (metadata, secret) in &self.settings.clients {
            crate::clients::validate(metadata, secret.is_some()).map_err(|reason| StartError::InvalidClient {
                client_id: metadata.client_id.to_string(),
                reason,
            })?;
            let record = ClientRecord {
                metadata: metadata.clone(),
                secret_hash: secret.as_ref().map(|s| ClientSecret::new(s.clone()).hash()),
                created_at: self.now(),
            };
            if !self.store.update_client(&record).await? {
                self.store.insert_client(&record).await?;
            }
        }
        Ok(())
    }

    async fn apply_configured_users(&self) -> Result<(), StoreError> {
        for user in &self.settings.users {
            if self.store.user_by_login_hint(&user.username).await?.is_some() {
                continue;
            }
            let record = UserRecord {
                subject: Subject::new(uuid::Uuid::new_v4().to_string()),
                username: user.username.clone(),
                email: user.email.clone(),
                phone: user.phone.clone(),
                name: user.name.clone(),
                password_hash: None,
                user_code_hash: None,
                locked: false,
                test_decision: user.test_decision,
                created_at: self.now(),
            };
            self.store.insert_user(&record).await?;
        }
        Ok(())
    }

    /// Looks up a client.
    pub async fn client(&self, id: &ClientId) -> Result<Option<ClientRecord>, StoreError> {
        self.store.client(id).await
    }
}

/// Registers a client from metadata, hashing the secret: the one way the CLI,
/// the configuration file and (later) dynamic registration create clients.
pub fn client_record(metadata: ClientMetadata, secret: Option<&ClientSecret>, now: i64) -> ClientRecord {
    ClientRecord {
        metadata,
        secret_hash: secret.map(ClientSecret::hash),
        created_at: now,
    }
}

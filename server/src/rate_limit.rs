//! Per-client rate limits over a time window (`[rate_limits]`).
//!
//! Today one endpoint has one: `POST /bc-authorize`, keyed by the authenticated
//! `client_id` (never by an unauthenticated value, so no one can use up another
//! client's allowance). Each limit is a GCRA bucket from the `governor` crate:
//! a burst of up to `requests`, refilled at `requests` per `window_seconds`, so
//! a client that stays under `requests / window_seconds` on average is never
//! refused, and one that goes over is refused until enough of its bucket has
//! refilled; [`RateLimited::retry_after`] says how long that is.
//!
//! The buckets live in memory, per server node: behind a load balancer that
//! spreads a client's requests over `n` nodes, the client may send up to `n`
//! times the configured rate in all (docs/OPERATIONS.md).
//!
//! Time comes from the server's [`Clock`] ([`Clock::elapsed`]: a monotonic
//! clock in production, the manual clock in tests).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::LoadConfigError;

/// The default `[rate_limits.bc_authorize] requests`: a burst of 6000, then
/// 100 requests a second per client, far above what a till fleet sends and
/// above what `cargo xtask bench` and the end-to-end tests send.
pub const DEFAULT_BC_AUTHORIZE_REQUESTS: u32 = 6000;
/// The default `[rate_limits.bc_authorize] window_seconds`.
pub const DEFAULT_BC_AUTHORIZE_WINDOW_SECONDS: u32 = 60;
/// Keys kept before buckets that are full again are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// `[rate_limits]` as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// `POST /bc-authorize`, per authenticated client.
    pub bc_authorize: WindowLimitConfig,
}

/// One limit: `requests` per `window_seconds`, per key.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowLimitConfig {
    /// Requests allowed per window (also the largest burst); `0` switches the limit off.
    pub requests: u32,
    /// The window, in seconds (at least 1).
    pub window_seconds: u32,
}

impl Default for WindowLimitConfig {
    fn default() -> Self {
        Self {
            requests: DEFAULT_BC_AUTHORIZE_REQUESTS,
            window_seconds: DEFAULT_BC_AUTHORIZE_WINDOW_SECONDS,
        }
    }
}

/// A validated limit; `None` in [`RateLimitSettings`] when switched off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowLimit {
    /// Requests per window, and the largest burst.
    pub requests: NonZeroU32,
    /// The window.
    pub window: Duration,
}

/// The validated `[rate_limits]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// `POST /bc-authorize`; `None`: no limit.
    pub bc_authorize: Option<WindowLimit>,
}

impl RateLimitConfig {
    /// Checks every limit, naming the key at fault.
    pub fn validate(&self) -> Result<RateLimitSettings, LoadConfigError> {
        Ok(RateLimitSettings {
            bc_authorize: self.bc_authorize.validate("rate_limits.bc_authorize")?,
        })
    }
}

impl WindowLimitConfig {
    fn validate(&self, key: &str) -> Result<Option<WindowLimit>, LoadConfigError> {
        let Some(requests) = NonZeroU32::new(self.requests) else {
            return Ok(None);
        };
        if self.window_seconds == 0 {
            return Err(LoadConfigError::Invalid {
                key: format!("{key}.window_seconds"),
                reason: "must be at least 1 second".into(),
            });
        }
        Ok(Some(WindowLimit {
            requests,
            window: Duration::from_secs(u64::from(self.window_seconds)),
        }))
    }
}

/// Why a request was refused: the key's bucket is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimited {
    /// Whole seconds until the next request would be accepted (at least 1): the `Retry-After`.
    pub retry_after: u64,
    /// The limit that was hit.
    pub limit: WindowLimit,
}

/// [`Clock::elapsed`] as governor's clock.
#[derive(Clone)]
struct ServerClock(Arc<dyn Clock>);

impl governor::clock::Clock for ServerClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.0.elapsed())
    }
}

type Buckets = RateLimiter<String, HashMapStateStore<String>, ServerClock, NoOpMiddleware<Nanos>>;

/// One limit applied per key (a client id).
pub struct KeyedLimit {
    limit: WindowLimit,
    buckets: Buckets,
    clock: ServerClock,
}

impl KeyedLimit {
    /// Buckets for `limit`, reading time from `clock`.
    pub fn new(limit: WindowLimit, clock: Arc<dyn Clock>) -> Self {
        let clock = ServerClock(clock);
        // `window / requests` is never zero: the window is at least 1 s and requests at most u32::MAX.
        let period = (limit.window / limit.requests.get()).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(limit.requests))
            .allow_burst(limit.requests);
        Self {
            limit,
            buckets: RateLimiter::new(quota, HashMapStateStore::default(), clock.clone()),
            clock,
        }
    }

    /// Takes one request from `key`'s bucket, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<(), RateLimited> {
        if self.buckets.len() > PRUNE_ABOVE {
            self.buckets.retain_recent();
        }
        self.buckets.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&self.clock));
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            RateLimited {
                retry_after: seconds.max(1),
                limit: self.limit,
            }
        })
    }
}

/// Every configured limit of one server node.
#[derive(Clone, Default)]
pub struct RateLimits {
    /// `POST /bc-authorize`, per client; `None`: no limit.
    pub bc_authorize: Option<Arc<KeyedLimit>>,
}

impl RateLimits {
    /// Fresh (full) buckets for `settings`.
    pub fn new(settings: &RateLimitSettings, clock: &Arc<dyn Clock>) -> Self {
        Self {
            bc_authorize: settings
                .bc_authorize
                .map(|limit| Arc::new(KeyedLimit::new(limit, clock.clone()))),
        }
    }

    /// Takes one `/bc-authorize` request from `client_id`'s allowance.
    pub fn check_bc_authorize(&self, client_id: &str) -> Result<(), RateLimited> {
        self.bc_authorize
            .as_ref()
            .map_or(Ok(()), |limit| limit.check(client_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn limit(requests: u32, window_seconds: u64) -> WindowLimit {
        WindowLimit {
            requests: NonZeroU32::new(requests).unwrap(),
            window: Duration::from_secs(window_seconds),
        }
    }

    #[test]
    fn a_burst_then_a_refill_per_window_and_keys_apart() {
        let clock = Arc::new(ManualClock::new(1_000));
        let limits = KeyedLimit::new(limit(3, 30), clock.clone());
        for _ in 0..3 {
            limits.check("a").unwrap();
        }
        let refused = limits.check("a").unwrap_err();
        assert_eq!(refused.retry_after, 10, "one request refills every 30 s / 3");
        limits.check("b").unwrap();
        clock.advance(9);
        assert!(limits.check("a").is_err());
        clock.advance(1);
        limits.check("a").unwrap();
        assert!(limits.check("a").is_err());
        clock.advance(30);
        for _ in 0..3 {
            limits.check("a").unwrap();
        }
        assert!(limits.check("a").is_err(), "the burst never exceeds `requests`");
    }

    #[test]
    fn config_defaults_off_and_errors() {
        let settings = RateLimitConfig::default().validate().unwrap();
        assert_eq!(settings.bc_authorize, Some(limit(6000, 60)));
        let off = WindowLimitConfig {
            requests: 0,
            window_seconds: 0,
        };
        assert_eq!(off.validate("k").unwrap(), None);
        let err = WindowLimitConfig {
            requests: 5,
            window_seconds: 0,
        }
        .validate("rate_limits.bc_authorize")
        .unwrap_err();
        assert!(
            err.to_string().contains("rate_limits.bc_authorize.window_seconds"),
            "{err}"
        );
    }

    #[test]
    fn the_configuration_file_sets_the_limit() {
        let text = "environment = \"development\"\n[rate_limits.bc_authorize]\nrequests = 5\nwindow_seconds = 2";
        let settings = crate::config::Config::from_toml(text).unwrap().validate().unwrap();
        assert_eq!(settings.rate_limits.bc_authorize, Some(limit(5, 2)));
        let err = crate::config::Config::from_toml("[rate_limits.bc_authorize]\nper_minute = 5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("per_minute"), "{err}");
    }
}

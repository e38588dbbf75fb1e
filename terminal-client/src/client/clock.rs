//! Time is a parameter (CONVENTIONS 9): the client reads the wall clock through
//! a [`Clock`], so tests can fix it. Waiting uses `tokio::time`, so tests can
//! pause it.

use std::sync::Arc;

/// Seconds since the Unix epoch, as the client sees them.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The real clock.
pub fn system_clock() -> Clock {
    Arc::new(system_now)
}

/// The only reading of the system clock in this crate.
#[allow(clippy::disallowed_methods)] // the one permitted call to SystemTime::now (CONVENTIONS 9)
fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

//! Time is a parameter: everything reads the time from a [`Clock`], so tests
//! can move it. This file holds the only call to the system clock.

/// Unix seconds, from wherever the caller wants.
pub type Clock = std::sync::Arc<dyn Fn() -> i64 + Send + Sync>;

/// The real clock.
pub fn system_clock() -> Clock {
    std::sync::Arc::new(now)
}

#[allow(clippy::disallowed_methods)] // the one permitted reading of the system clock
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

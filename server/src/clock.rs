//! Time is a parameter (CONVENTIONS 9): every component reads the time from the
//! [`Clock`] in `AppState`, so tests can move it by hand. This file holds the only
//! call to the system clock (and, in [`Clock::elapsed`], the one reading of the
//! monotonic clock that decisions use: rate-limit windows).

use std::sync::atomic::{AtomicI64, Ordering};

use crate::store::UnixTime;

/// Where the server reads the time from.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn now(&self) -> UnixTime;

    /// A reading that never goes back, for measuring intervals (rate limits):
    /// only differences between two readings mean anything. The real clock
    /// reads a monotonic clock, so a step of the wall clock moves no window;
    /// by default (the manual clock) it is [`Clock::now`] in seconds.
    fn elapsed(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::try_from(self.now()).unwrap_or(0))
    }
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one permitted reading of the system clock
    fn now(&self) -> UnixTime {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// Time since the first reading in this process (the one reading of the monotonic clock for decisions).
    fn elapsed(&self) -> std::time::Duration {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
}

/// A clock that only moves when told to: for tests.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock stopped at `now`.
    pub fn new(now: UnixTime) -> Self {
        Self(AtomicI64::new(now))
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set(&self, now: UnixTime) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
}

/// A monotonic stopwatch for measured durations (request latency metrics) only:
/// never a source of "now" for any decision, which is the [`Clock`]'s job.
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(tokio::time::Instant);

impl Stopwatch {
    /// Starts measuring.
    pub fn start() -> Self {
        Self(tokio::time::Instant::now())
    }

    /// The time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

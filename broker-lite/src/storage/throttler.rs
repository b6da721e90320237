//! The log cleaner's I/O throttle: Kafka's `Throttler` (`org.apache.kafka.storage.internals.
//! utils.Throttler`, formerly `kafka.utils.Throttler`) as the log cleaner uses it for the
//! broker config `log.cleaner.io.max.bytes.per.second` (the sum of the cleaner's reads and
//! writes, averaged over check intervals of 300 ms).
//!
//! The decision is pure: [`Throttler::maybe_throttle`] takes the bytes just read or written
//! and `now`, and returns how long the caller should sleep. The log cleaner
//! (`compaction.rs`) does the sleeping, outside the partition's lock and in slices that
//! notice when the pass is aborted. As in Kafka, the bytes observed accumulate until a check
//! interval has passed; then, if the rate over the period is above the desired rate, the
//! caller sleeps `observed × 1000 / desired − elapsed` milliseconds (rounded), and a new
//! period starts after the sleep.
//!
//! Kafka's throttler also takes `throttleDown` (sleep when the rate is *below* the desired
//! one when false); the log cleaner always throttles down, as Kafka's newer `Throttler` does
//! unconditionally, so this one has no such switch.

use std::time::{Duration, Instant};

/// Kafka's `LogCleaner` checks the rate every 300 ms (`checkIntervalMs = 300`).
pub const CLEANER_CHECK_INTERVAL: Duration = Duration::from_millis(300);

/// Rate limiter of an I/O stream (Kafka's `Throttler`): accumulates observed bytes and, once
/// per check interval, says how long to sleep to bring the average rate of the period down
/// to the desired one.
#[derive(Clone, Debug)]
pub struct Throttler {
    desired_rate_per_sec: f64,
    check_interval: Duration,
    period_start: Instant,
    observed_so_far: f64,
    observed_total: u64,
    slept_total: Duration,
}

impl Throttler {
    /// A throttler limiting to `desired_rate_per_sec` bytes per second, checking the rate
    /// every [`CLEANER_CHECK_INTERVAL`], its first period starting at `now`.
    pub fn new(desired_rate_per_sec: f64, now: Instant) -> Throttler {
        Throttler::with_check_interval(desired_rate_per_sec, CLEANER_CHECK_INTERVAL, now)
    }

    /// A throttler with another check interval (Kafka's `checkIntervalMs`).
    pub fn with_check_interval(
        desired_rate_per_sec: f64,
        check_interval: Duration,
        now: Instant,
    ) -> Throttler {
        Throttler {
            desired_rate_per_sec,
            check_interval,
            period_start: now,
            observed_so_far: 0.0,
            observed_total: 0,
            slept_total: Duration::ZERO,
        }
    }

    /// The desired rate, in bytes per second.
    pub fn desired_rate_per_sec(&self) -> f64 {
        self.desired_rate_per_sec
    }

    /// Kafka's `maybeThrottle`: records `observed` bytes at `now` and returns how long to
    /// sleep, if at all. Nothing is decided before a check interval has passed since the
    /// period started (strictly more than the interval, as Kafka compares) or while nothing
    /// was observed. Once it has, the period's rate is `observed × 10⁹ / elapsed ns`; above
    /// the desired rate, the sleep is `round(observed / (desired / 1000) − elapsed ms)`
    /// milliseconds (`elapsed ms` truncated, as Kafka's `NANOSECONDS.toMillis`), `None` when
    /// that is not positive. Either way a new period starts: after the sleep (`now` + the
    /// sleep, Kafka reading the clock again after sleeping), with nothing observed.
    pub fn maybe_throttle(&mut self, observed: u64, now: Instant) -> Option<Duration> {
        self.observed_so_far += observed as f64;
        self.observed_total = self.observed_total.saturating_add(observed);
        let elapsed = now.saturating_duration_since(self.period_start);
        if elapsed <= self.check_interval || self.observed_so_far <= 0.0 {
            return None;
        }
        let rate_per_sec = self.observed_so_far * 1e9 / elapsed.as_nanos() as f64;
        let mut sleep = None;
        if rate_per_sec > self.desired_rate_per_sec {
            let desired_rate_ms = self.desired_rate_per_sec / 1000.0;
            let elapsed_ms = elapsed.as_millis() as f64;
            // `as` saturates: a rate near 0 asks for the longest sleep, as Kafka's
            // `Math.round` of a huge double gives `Long.MAX_VALUE`.
            let ms = (self.observed_so_far / desired_rate_ms - elapsed_ms).round();
            if ms > 0.0 {
                sleep = Some(Duration::from_millis(ms as u64));
            }
        }
        let slept = sleep.unwrap_or(Duration::ZERO);
        self.slept_total = self.slept_total.saturating_add(slept);
        self.period_start = now.checked_add(slept).unwrap_or(now);
        self.observed_so_far = 0.0;
        sleep
    }

    /// Every byte observed since the throttler was made.
    pub fn observed_total(&self) -> u64 {
        self.observed_total
    }

    /// The sum of the sleeps [`maybe_throttle`](Self::maybe_throttle) asked for.
    pub fn slept_total(&self) -> Duration {
        self.slept_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn nothing_is_decided_within_the_check_interval() {
        let t0 = Instant::now();
        let mut t = Throttler::new(1000.0, t0);
        // 1 MB in 300 ms is far above 1000 B/s, yet the interval has not passed (Kafka
        // requires strictly more than the interval).
        assert_eq!(t.maybe_throttle(1_000_000, t0 + 100 * MS), None);
        assert_eq!(t.maybe_throttle(0, t0 + 300 * MS), None);
        // Past it, the whole period's bytes count: 1,000,000 B at 1 B/ms = 1,000,000 ms,
        // minus the 301 ms elapsed.
        assert_eq!(
            t.maybe_throttle(0, t0 + 301 * MS),
            Some(Duration::from_millis(1_000_000 - 301))
        );
        assert_eq!(t.observed_total(), 1_000_000);
        assert_eq!(t.slept_total(), Duration::from_millis(999_699));
    }

    #[test]
    fn below_the_desired_rate_nothing_sleeps_and_a_new_period_starts() {
        let t0 = Instant::now();
        let mut t = Throttler::new(1_000_000.0, t0);
        // 100 KB in 400 ms = 250 KB/s < 1 MB/s.
        assert_eq!(t.maybe_throttle(100_000, t0 + 400 * MS), None);
        // The period restarted at t0 + 400 ms with nothing observed: 300 KB over the next
        // 350 ms (857 KB/s) is still below the rate...
        assert_eq!(t.maybe_throttle(300_000, t0 + 750 * MS), None);
        // ...while 400 KB over 301 ms (1.33 MB/s) is above: 400 ms of work at 1 KB/ms,
        // minus 301 ms elapsed.
        assert_eq!(
            t.maybe_throttle(400_000, t0 + 1051 * MS),
            Some(Duration::from_millis(99))
        );
        assert_eq!(t.observed_total(), 800_000);
    }

    #[test]
    fn above_the_desired_rate_the_sleep_brings_the_period_to_it() {
        let t0 = Instant::now();
        let mut t = Throttler::new(10_000.0, t0);
        // 10 KB at 10 B/ms should take 1000 ms; 500 ms passed: sleep 500 ms.
        assert_eq!(t.maybe_throttle(4_000, t0 + 200 * MS), None);
        assert_eq!(
            t.maybe_throttle(6_000, t0 + 500 * MS),
            Some(Duration::from_millis(500))
        );
        // The next period starts after the sleep (t0 + 1000 ms): 3 KB at t0 + 1200 ms is
        // within the interval, 3 KB more at t0 + 1400 ms (400 ms, 15 KB/s) sleeps
        // 600 − 400 = 200 ms.
        assert_eq!(t.maybe_throttle(3_000, t0 + 1200 * MS), None);
        assert_eq!(
            t.maybe_throttle(3_000, t0 + 1400 * MS),
            Some(Duration::from_millis(200))
        );
        assert_eq!(t.slept_total(), Duration::from_millis(700));
        // Elapsed milliseconds are truncated, as in Kafka: 3,010 B (301 ms of work at
        // 10 B/ms) after 300.9 ms, counted as 300 ms, sleeps 1 ms (0.1 ms, rounded to
        // nothing, without the truncation).
        let start = t0 + 1600 * MS;
        assert_eq!(
            t.maybe_throttle(3_010, start + Duration::from_micros(300_900)),
            Some(MS)
        );
    }

    #[test]
    fn a_sleep_that_would_not_be_positive_is_not_asked_for() {
        let t0 = Instant::now();
        let mut t = Throttler::new(1_000_000.0, t0);
        // 999,200 B in 999.1 ms is above 1,000 B/ms, but by 0.2 ms of work over the 999 ms
        // counted: the sleep rounds to nothing.
        let t1 = t0 + Duration::from_micros(999_100);
        assert_eq!(t.maybe_throttle(999_200, t1), None);
        // The next period starts at once; exactly the desired rate is not above it.
        assert_eq!(t.maybe_throttle(1_000_000, t1 + 1000 * MS), None);
        assert_eq!(t.slept_total(), Duration::ZERO);
        assert_eq!(t.observed_total(), 1_999_200);
    }

    #[test]
    fn nothing_observed_never_sleeps_and_tiny_rates_saturate() {
        let t0 = Instant::now();
        let mut t = Throttler::new(1.0, t0);
        assert_eq!(t.maybe_throttle(0, t0 + 10_000 * MS), None);
        // A rate of almost nothing asks for the longest sleep rather than overflowing.
        let mut t = Throttler::new(f64::MIN_POSITIVE, t0);
        assert_eq!(
            t.maybe_throttle(u64::MAX, t0 + 301 * MS),
            Some(Duration::from_millis(u64::MAX))
        );
        // The unthrottled default never sleeps.
        let mut t = Throttler::new(f64::MAX, t0);
        assert_eq!(t.maybe_throttle(u64::MAX, t0 + 301 * MS), None);
        assert_eq!(t.observed_total(), u64::MAX);
    }
}

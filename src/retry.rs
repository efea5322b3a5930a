//! How long to wait before trying again: exponential backoff with "equal jitter", the one
//! policy the publisher, the claims, the archive's uploads, the webhook outbox and the edge
//! seeder's origin polls share.
//!
//! A leaf: pure (the jitter is an input).

use std::time::Duration;

/// How hard to try before holding objects in the spool.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per object before the origin is considered down.
    pub attempts: u32,
    /// Delay after the first failure; doubles per attempt, up to `cap`.
    pub base: Duration,
    pub cap: Duration,
    /// While the origin is down, one object is tried this often.
    pub probe_every: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(4),
            probe_every: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt `attempt` (1-based), with "equal jitter":
    /// half the exponential step plus a random share (`jitter` in 0..=1) of the other half.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let step = self.step(attempt);
        step / 2 + step.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// The exponential step after failed attempt `attempt` (1-based), without jitter:
    /// `base` doubling up to `cap`.
    pub fn step(&self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.cap)
    }

    /// A policy that waits `base` doubling up to `cap` (attempts and probes unused).
    pub fn backoff(base: Duration, cap: Duration) -> RetryPolicy {
        RetryPolicy {
            base,
            cap,
            ..RetryPolicy::default()
        }
    }

    pub(crate) fn probe_delay(&self, jitter: f64) -> Duration {
        self.probe_every / 2 + self.probe_every.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_double_to_the_cap_and_jitter_spans_the_upper_half() {
        let p = RetryPolicy::backoff(Duration::from_secs(1), Duration::from_secs(300));
        let secs: Vec<u64> = (1..=11).map(|a| p.step(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(p.delay(3, 0.0), Duration::from_secs(2));
        assert_eq!(p.delay(3, 1.0), Duration::from_secs(4));
    }
}

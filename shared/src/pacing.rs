//! [`Pacer`]: client-side token buckets that mirror EC2's per-action throttling buckets.
//!
//! EC2 throttles each account per region per action with a token bucket (sizes and refill
//! rates in AWS-NOTES.md). Waiting for a token before each call keeps a run at the rate
//! EC2 allows instead of bursting into `RequestLimitExceeded` and a retry storm. The SDK's
//! retries still catch throttling caused by other clients of the same account.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// EC2's throttling buckets, one per action group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// DescribeImages, DescribeLaunchTemplateVersions, other paginated Describe calls.
    Describe,
    /// DescribeInstances and DescribeSnapshots with a filter or pagination.
    DescribeFiltered,
    CreateImage,
    CopyImage,
    DeregisterImage,
    DeleteSnapshot,
    ModifyImageAttribute,
    ModifySnapshotAttribute,
    CreateTags,
    /// Any other mutating call (EnableImageDeprecation, DeleteTags…).
    Mutating,
}

impl Bucket {
    /// `(capacity, refill per second)` as published for EC2.
    pub fn limits(self) -> (f64, f64) {
        match self {
            Self::Describe | Self::DescribeFiltered => (100.0, 20.0),
            Self::CreateImage | Self::Mutating => (50.0, 5.0),
            Self::CopyImage => (100.0, 1.0),
            Self::DeregisterImage
            | Self::DeleteSnapshot
            | Self::ModifyImageAttribute
            | Self::ModifySnapshotAttribute => (100.0, 5.0),
            Self::CreateTags => (100.0, 10.0),
        }
    }
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
}

/// Token buckets for one account in one region. `scale` multiplies refill rates (a raised
/// account limit, or a time-scaled emulator); `0` disables pacing.
#[derive(Debug)]
pub struct Pacer {
    scale: f64,
    buckets: Mutex<HashMap<Bucket, State>>,
}

impl Pacer {
    pub fn new(scale: f64) -> Self {
        Self {
            scale,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// A pacer that never waits.
    pub fn unlimited() -> Self {
        Self::new(0.0)
    }

    /// How long to wait before one call of `bucket` may be sent (and takes the token if zero).
    pub fn try_take(&self, bucket: Bucket, now: Instant) -> Duration {
        if self.scale <= 0.0 {
            return Duration::ZERO;
        }
        let (capacity, refill) = bucket.limits();
        let rate = refill * self.scale;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let state = buckets.entry(bucket).or_insert(State {
            tokens: capacity,
            last: now,
        });
        let elapsed = now.saturating_duration_since(state.last).as_secs_f64();
        state.tokens = (state.tokens + elapsed * rate).min(capacity);
        state.last = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - state.tokens) / rate)
        }
    }

    /// Waits until a token of `bucket` is available and takes it.
    pub async fn take(&self, bucket: Bucket) {
        loop {
            let wait = self.try_take(bucket, Instant::now());
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_to_capacity_then_paces_at_refill_rate() {
        let pacer = Pacer::new(1.0);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(pacer.try_take(Bucket::CopyImage, t0), Duration::ZERO);
        }
        let wait = pacer.try_take(Bucket::CopyImage, t0);
        assert!(
            (wait.as_secs_f64() - 1.0).abs() < 1e-6,
            "CopyImage refills 1/s, waited {wait:?}"
        );
        // After a second one token is back.
        assert_eq!(
            pacer.try_take(Bucket::CopyImage, t0 + Duration::from_secs(1)),
            Duration::ZERO
        );
    }

    #[test]
    fn scale_multiplies_refill_and_buckets_are_independent() {
        let pacer = Pacer::new(10.0);
        let t0 = Instant::now();
        for _ in 0..100 {
            pacer.try_take(Bucket::DeregisterImage, t0);
        }
        let wait = pacer.try_take(Bucket::DeregisterImage, t0);
        assert!(
            (wait.as_secs_f64() - 0.02).abs() < 1e-6,
            "5/s × 10 = 50/s: {wait:?}"
        );
        assert_eq!(pacer.try_take(Bucket::DeleteSnapshot, t0), Duration::ZERO);
    }

    #[test]
    fn unlimited_never_waits() {
        let pacer = Pacer::unlimited();
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert_eq!(pacer.try_take(Bucket::CreateImage, t0), Duration::ZERO);
        }
    }
}

//! [`Pacer`]: client-side token buckets that mirror EC2's per-action throttling buckets.
//!
//! EC2 throttles each account per region per action with a token bucket (sizes and refill
//! rates in AWS-NOTES.md). Waiting for a token before each call keeps a run at the rate
//! EC2 allows instead of bursting into `RequestLimitExceeded` and a retry storm.
//!
//! Two rules keep the client's count of tokens from running ahead of EC2's, so that a run
//! at the full refill rate receives no throttling answer at all:
//! - every attempt takes a token: the first at the call site ([`Pacer::take`]), each
//!   retry the SDK makes in the transport ([`crate::aws::http::PacedRetries`], the bucket
//!   named by [`Bucket::for_action`]). A retry sent without one would spend a token of
//!   EC2's bucket the client never counted, and leave it a token short for the rest of
//!   the run (every later call arriving on the dot finds it empty);
//! - the client's bucket is kept [`ARRIVAL_SPREAD`]'s worth of refill under full: EC2's
//!   bucket is full when the first call of a burst *arrives*, the client's when it is
//!   *sent*; later calls of the burst arriving sooner after sending than the first would
//!   otherwise find EC2 a fraction of a token short. It costs that much time once per
//!   burst from full (a quarter of a second), not a share of the rate.
//!
//! `DescribeInstances`/`DescribeSnapshots` with a filter or pagination count against the
//! same non-mutating bucket as the other `Describe*` calls (EC2's grouping): one bucket
//! state serves both [`Bucket::Describe`] and [`Bucket::DescribeFiltered`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How much later than the call it was taken for a token may reach EC2, compared with the
/// first call of a burst: the client's bucket stays this much refill under EC2's (see the
/// module docs). A round trip's jitter on a loaded host or a long network path.
pub const ARRIVAL_SPREAD: Duration = Duration::from_millis(250);

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

    /// The bucket EC2 charges an action (by its API name) to, as the call sites of
    /// [`crate::aws`] pace it: used for the SDK's retries, which only know the action.
    pub fn for_action(action: &str) -> Self {
        match action {
            "CreateImage" => Self::CreateImage,
            "CopyImage" => Self::CopyImage,
            "DeregisterImage" => Self::DeregisterImage,
            "DeleteSnapshot" => Self::DeleteSnapshot,
            "ModifyImageAttribute" => Self::ModifyImageAttribute,
            "ModifySnapshotAttribute" => Self::ModifySnapshotAttribute,
            "CreateTags" => Self::CreateTags,
            // The suite always filters or paginates these two.
            "DescribeInstances" | "DescribeSnapshots" => Self::DescribeFiltered,
            a if a.starts_with("Describe") || a.starts_with("Get") || a.starts_with("List") => {
                Self::Describe
            }
            _ => Self::Mutating,
        }
    }

    /// The bucket whose state this one shares (EC2 counts filtered `DescribeInstances` and
    /// `DescribeSnapshots` against the non-mutating bucket).
    fn state_key(self) -> Self {
        match self {
            Self::DescribeFiltered => Self::Describe,
            b => b,
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
        // Kept ARRIVAL_SPREAD's refill under EC2's capacity (at most half of it at a very
        // large scale, so that a burst is still a burst).
        let capacity = capacity - (rate * ARRIVAL_SPREAD.as_secs_f64()).min(capacity / 2.0);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let state = buckets.entry(bucket.state_key()).or_insert(State {
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
    fn bursts_to_capacity_less_the_arrival_spread_then_paces_at_refill_rate() {
        // CopyImage: 100 tokens, 1/s; a quarter second of refill (0.25 token) held back.
        let pacer = Pacer::new(1.0);
        let t0 = Instant::now();
        for _ in 0..99 {
            assert_eq!(pacer.try_take(Bucket::CopyImage, t0), Duration::ZERO);
        }
        let wait = pacer.try_take(Bucket::CopyImage, t0);
        assert!(
            (wait - ARRIVAL_SPREAD).as_secs_f64().abs() < 1e-6,
            "0.75 token left: the 100th call waits the spread, waited {wait:?}"
        );
        let t1 = t0 + ARRIVAL_SPREAD;
        assert_eq!(pacer.try_take(Bucket::CopyImage, t1), Duration::ZERO);
        let wait = pacer.try_take(Bucket::CopyImage, t1);
        assert!(
            (wait.as_secs_f64() - 1.0).abs() < 1e-6,
            "then 1/s, waited {wait:?}"
        );
        // A quiet spell refills to the held-back capacity only, never to EC2's full 100.
        let later = t1 + Duration::from_secs(1000);
        for _ in 0..99 {
            assert_eq!(pacer.try_take(Bucket::CopyImage, later), Duration::ZERO);
        }
        assert!(pacer.try_take(Bucket::CopyImage, later) > Duration::ZERO);
    }

    #[test]
    fn scale_multiplies_refill_and_buckets_are_independent() {
        // DeregisterImage x10: 50/s, 12.5 tokens held back (a quarter second), 87.5 usable.
        let pacer = Pacer::new(10.0);
        let t0 = Instant::now();
        for _ in 0..87 {
            assert_eq!(pacer.try_take(Bucket::DeregisterImage, t0), Duration::ZERO);
        }
        let wait = pacer.try_take(Bucket::DeregisterImage, t0);
        assert!(
            (wait.as_secs_f64() - 0.01).abs() < 1e-6,
            "half a token left at 50/s: {wait:?}"
        );
        assert_eq!(pacer.try_take(Bucket::DeleteSnapshot, t0), Duration::ZERO);
    }

    #[test]
    fn filtered_describes_share_the_non_mutating_bucket() {
        // 100 tokens, 20/s, 5 held back: 95 calls of either kind, then both wait.
        let pacer = Pacer::new(1.0);
        let t0 = Instant::now();
        for n in 0..95 {
            let b = if n % 2 == 0 {
                Bucket::Describe
            } else {
                Bucket::DescribeFiltered
            };
            assert_eq!(pacer.try_take(b, t0), Duration::ZERO, "call {n}");
        }
        assert!(pacer.try_take(Bucket::DescribeFiltered, t0) > Duration::ZERO);
        assert!(pacer.try_take(Bucket::Describe, t0) > Duration::ZERO);
        assert_eq!(pacer.try_take(Bucket::CreateTags, t0), Duration::ZERO);
    }

    #[test]
    fn actions_map_to_the_buckets_their_call_sites_take() {
        for (action, bucket) in [
            ("DeregisterImage", Bucket::DeregisterImage),
            ("DeleteSnapshot", Bucket::DeleteSnapshot),
            ("CopyImage", Bucket::CopyImage),
            ("CreateImage", Bucket::CreateImage),
            ("CreateTags", Bucket::CreateTags),
            ("ModifyImageAttribute", Bucket::ModifyImageAttribute),
            ("ModifySnapshotAttribute", Bucket::ModifySnapshotAttribute),
            ("DescribeSnapshots", Bucket::DescribeFiltered),
            ("DescribeInstances", Bucket::DescribeFiltered),
            ("DescribeImages", Bucket::Describe),
            ("DescribeImageAttribute", Bucket::Describe),
            ("GetImageBlockPublicAccessState", Bucket::Describe),
            ("EnableImageDeprecation", Bucket::Mutating),
            ("DeleteTags", Bucket::Mutating),
            ("RunInstances", Bucket::Mutating),
        ] {
            assert_eq!(Bucket::for_action(action), bucket, "{action}");
        }
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

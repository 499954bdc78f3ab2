//! [`Slots`]: one destination region's concurrent-copy cap, as one run sees it.
//!
//! EC2 runs a limited number of AMI copies into a region at once and refuses more with
//! `ResourceLimitExceeded`. A run that waits ([`super::run`]: the reconcile, `amictl`)
//! learns the cap the first time it is refused — the number of our copies pending in the
//! region then — and from there requests a copy only while fewer of ours are pending,
//! polling `DescribeImages` (our copies, `state=pending`) every [`poll_interval`] until one
//! completes. So a deferred copy starts as soon as a slot frees, not at the next
//! reconcile, and the cap costs the requests in flight when it is learnt (at most
//! [`super::run::IN_FLIGHT`] refused calls per region), not one per copy. Requests in
//! flight hold a slot as much as pending copies do ([`Slots::has_room`]).
//!
//! Waiting is bounded: it stops when the deadline nears, or after [`IDLE_MAX`] without
//! any of our copies in the region completing; the copies left are reported `deferred`
//! and the next run (or the next copy's `available` event) requests them.

use std::time::{Duration, Instant};

use super::plan;
use crate::context::Context;
use crate::error::CloudError;
use crate::model::{ImageState, Region};
use crate::ports::{all_images, ImageQuery};
use crate::tags::key;

/// How often a waiting run asks whether a copy completed, at the published EC2 rates
/// (one `DescribeImages` per waiting region: a small share of its 20 calls per second).
const POLL: Duration = Duration::from_secs(2);

/// The shortest poll interval, whatever the pace scale.
const POLL_MIN: Duration = Duration::from_millis(100);

/// A run stops waiting for a region after this long without one of our copies there
/// completing (copies of large images can take hours: the next run goes on).
pub const IDLE_MAX: Duration = Duration::from_secs(30 * 60);

/// The poll interval: [`POLL`] divided by the pace scale (`AMI_LIFECYCLE_PACE_SCALE`,
/// the same scale that speeds up the client's EC2 pacing for a raised limit or a
/// time-scaled emulator), never under [`POLL_MIN`].
pub fn poll_interval() -> Duration {
    let scale =
        crate::aws::parse_pace_scale(std::env::var(crate::aws::PACE_SCALE_ENV).ok().as_deref());
    if scale <= 0.0 {
        return POLL;
    }
    POLL.div_f64(scale).max(POLL_MIN)
}

/// The cap of one destination region as this run knows it.
#[derive(Debug)]
pub(super) struct Slots {
    region: Region,
    poll: Duration,
    /// Our copies pending in the region when EC2 last refused one; `None` until refused.
    limit: Option<usize>,
    /// Our pending copies at the last poll, plus those requested since.
    in_flight: usize,
    /// Since when this run has waited without one of our copies completing.
    idle_since: Option<Instant>,
}

impl Slots {
    pub(super) fn new(region: Region, poll: Duration) -> Self {
        Self {
            region,
            poll,
            limit: None,
            in_flight: 0,
            idle_since: None,
        }
    }

    /// Whether one more copy may be requested now, `requesting` being already on their
    /// way, without EC2 refusing it as far as this run knows (always, until EC2 has
    /// refused one): ours pending plus ours being requested stay under the learned cap.
    pub(super) fn has_room(&self, requesting: usize) -> bool {
        self.limit
            .is_none_or(|limit| self.in_flight + requesting < limit)
    }

    /// A copy was requested (it holds a slot until it completes).
    pub(super) fn requested(&mut self) {
        self.in_flight += 1;
        self.idle_since = None;
    }

    /// EC2 refused a copy for the cap: the cap is what is pending of ours now (a poll
    /// that fails keeps this run's own count).
    pub(super) async fn refused(&mut self, ctx: &Context) {
        if let Ok(n) = self.pending(ctx).await {
            self.in_flight = n;
        }
        self.limit = Some(self.in_flight);
    }

    /// Waits until one of our pending copies in the region completes (or, when none of
    /// ours holds a slot, one poll interval). `Err(why)` when it stops waiting: the
    /// deadline is near, or nothing of ours completed for [`IDLE_MAX`].
    pub(super) async fn wait(&mut self, ctx: &Context) -> Result<(), String> {
        let limit = self.limit.unwrap_or(0);
        ctx.progress(&format!(
            "{} of our copies pending in {} (its concurrent-copy cap): waiting for one to complete",
            self.in_flight, self.region
        ));
        loop {
            let idle_since = *self.idle_since.get_or_insert_with(Instant::now);
            if !ctx.deadline.fits(self.poll) {
                return Err(format!(
                    "deadline near while waiting for a copy slot in {} ({limit} of our copies pending at its concurrent-copy cap, ResourceLimitExceeded)",
                    self.region
                ));
            }
            if idle_since.elapsed() >= IDLE_MAX {
                return Err(format!(
                    "none of our {limit} copies pending in {} completed in {} minutes (its concurrent-copy cap, ResourceLimitExceeded)",
                    self.region,
                    IDLE_MAX.as_secs() / 60
                ));
            }
            tokio::time::sleep(self.poll).await;
            // A poll that fails (throttled) is tried again at the next interval.
            let Ok(n) = self.pending(ctx).await else {
                continue;
            };
            if n < self.in_flight {
                self.idle_since = None;
            }
            self.in_flight = n;
            if n < limit || limit == 0 {
                return Ok(());
            }
        }
    }

    /// Our copies pending in the region (the slots this deployment holds).
    async fn pending(&self, ctx: &Context) -> Result<usize, CloudError> {
        let query = ImageQuery {
            tag_key: Some(key::SOURCE_IMAGE.to_owned()),
            state: Some(ImageState::Pending),
            ..ImageQuery::managed_by(&ctx.config.deployment)
        };
        let images = all_images(ctx.cloud.ec2(&self.region).as_ref(), &query).await?;
        Ok(images
            .iter()
            .filter(|i| i.state == ImageState::Pending && plan::copied_from(i).is_some())
            .count())
    }
}

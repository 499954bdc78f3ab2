//! [`Slots`]: one destination region's concurrent-copy cap, as one run sees it.
//!
//! EC2 runs a limited number of AMI copies into a region at once, per account, and
//! refuses more with `ResourceLimitExceeded` (each refused call still spends a CopyImage
//! token). The cap counts every copy pending in the region, whoever requested it. A run
//! that waits ([`super::run`]: the reconcile, `amictl`) learns the cap the first time it
//! is refused — the copies pending in the region then — and from there requests a copy
//! only while fewer are pending: the requests in flight hold a slot as much as pending
//! copies do ([`Slots::has_room`]). So the cap costs the requests in flight when it is
//! learnt (one refused call per region in a run with more copies there than the
//! CopyImage burst, which probes one request at a time; at most
//! [`super::run::IN_FLIGHT`] otherwise), not one per copy.
//!
//! The count ([`Slots::refresh`]) is the copies `DescribeImages` lists pending in the
//! region (`Owners=self`, `state=pending`, copies only), plus those this run requested
//! within the last poll interval that the listing does not show yet (DescribeImages is
//! eventually consistent), plus each copy requested since. Copies complete without
//! telling the run, so a count that reaches the cap is listed again before the run waits
//! ([`Slots::refresh_if_due`]: at most once per [`poll_interval`]), and the run waits
//! only while the listing itself shows the cap reached. A refusal the count did not
//! foresee (another account user's copies, a listing that lags) is still handled: the
//! run learns the cap again and waits for a slot; nothing is lost.
//!
//! Waiting is bounded: it stops when the deadline nears, or after [`IDLE_MAX`] without
//! any copy in the region completing; the copies left are reported `deferred` and the
//! next run (or the next copy's `available` event) requests them.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::plan;
use crate::context::Context;
use crate::error::CloudError;
use crate::model::{ImageId, ImageState, Region};
use crate::ports::{all_images, ImageQuery, MAX_PAGE};

/// How often a waiting run asks whether a copy completed, at the published EC2 rates
/// (one `DescribeImages` per waiting region: a small share of its 20 calls per second).
const POLL: Duration = Duration::from_secs(2);

/// The shortest poll interval, whatever the pace scale.
const POLL_MIN: Duration = Duration::from_millis(100);

/// A run stops waiting for a region after this long without a copy there completing
/// (copies of large images can take hours: the next run goes on).
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
    /// The copies pending in the region when EC2 last refused one; `None` until refused.
    limit: Option<usize>,
    /// The copies pending in the region at the last listing, plus those requested since.
    count: usize,
    /// The copies the last listing showed pending.
    listed: HashSet<ImageId>,
    /// Every copy a listing of this run showed pending: they exist ([`Slots::seen`]).
    seen: HashSet<ImageId>,
    /// The copies this run requested, and when: counted while a listing may not show
    /// them yet (one poll interval).
    recent: Vec<(ImageId, Instant)>,
    /// When the last listing was asked for (a failed one too: retried an interval later).
    polled: Option<Instant>,
    /// Refused with nothing listed pending: no request until the next listing.
    held: bool,
    /// Since when this run has waited without a copy in the region completing.
    idle_since: Option<Instant>,
}

impl Slots {
    pub(super) fn new(region: Region, poll: Duration) -> Self {
        Self {
            region,
            poll,
            limit: None,
            count: 0,
            listed: HashSet::new(),
            seen: HashSet::new(),
            recent: Vec::new(),
            polled: None,
            held: false,
            idle_since: None,
        }
    }

    /// Whether one more copy may be requested now, `requesting` being already on their
    /// way, without EC2 refusing it as far as this run knows (always, until EC2 has
    /// refused one): pending plus being requested stay under the learned cap.
    pub(super) fn has_room(&self, requesting: usize) -> bool {
        !self.held
            && self
                .limit
                .is_none_or(|limit| self.count + requesting < limit)
    }

    /// Whether EC2 has refused a copy for the cap (the cap is known).
    pub(super) fn learned(&self) -> bool {
        self.limit.is_some()
    }

    /// [`Slots::has_room`], listing the pending copies again first when the count says
    /// no and the last listing is a poll interval old: copies complete without telling
    /// the run, and a stale count would stop it at a cap it is no longer at.
    pub(super) async fn refresh_if_due(&mut self, ctx: &Context, requesting: usize) -> bool {
        if !self.has_room(requesting) && self.due().is_zero() {
            self.refresh(ctx).await;
        }
        self.has_room(requesting)
    }

    /// Copy `id` was requested (it holds a slot until it completes).
    pub(super) fn requested(&mut self, id: &ImageId) {
        if !self.listed.contains(id) {
            self.count += 1;
        }
        self.recent.push((id.clone(), Instant::now()));
        self.idle_since = None;
    }

    /// EC2 refused a copy for the cap: the cap is at most what is pending now, listed
    /// again (the count was short: copies this run cannot have foreseen, or a listing
    /// that lagged). A listing that shows nothing pending (copies that just completed, or
    /// a listing that lags) teaches nothing: the run holds until the next listing.
    pub(super) async fn refused(&mut self, ctx: &Context) {
        self.refresh(ctx).await;
        if self.count == 0 {
            self.held = true;
        } else {
            self.limit = Some(self.limit.map_or(self.count, |l| l.min(self.count)));
        }
    }

    /// Waits until the listing shows a slot free. `Err(why)` when it stops waiting: the
    /// deadline is near, or no copy in the region completed for [`IDLE_MAX`].
    pub(super) async fn wait(&mut self, ctx: &Context) -> Result<(), String> {
        let limit = self.limit.map_or_else(|| "?".to_owned(), |l| l.to_string());
        ctx.progress(&format!(
            "{} copies pending in {} (its concurrent-copy cap: {limit}): waiting for one to complete",
            self.count, self.region
        ));
        loop {
            let idle_since = *self.idle_since.get_or_insert_with(Instant::now);
            let due = self.due();
            if !ctx.deadline.fits(due) {
                return Err(format!(
                    "deadline near while waiting for a copy slot in {} ({limit} copies pending at its concurrent-copy cap, ResourceLimitExceeded)",
                    self.region
                ));
            }
            if idle_since.elapsed() >= IDLE_MAX {
                return Err(format!(
                    "none of the {limit} copies pending in {} completed in {} minutes (its concurrent-copy cap, ResourceLimitExceeded)",
                    self.region,
                    IDLE_MAX.as_secs() / 60
                ));
            }
            if !due.is_zero() {
                tokio::time::sleep(due).await;
            }
            self.refresh(ctx).await;
            if self.has_room(0) {
                return Ok(());
            }
        }
    }

    /// Whether a listing of this run showed `id` pending: the copy exists (a token that
    /// gives back a lost copy gives back a deregistered image, never a pending one).
    pub(super) fn seen(&self, id: &ImageId) -> bool {
        self.seen.contains(id)
    }

    /// How long until the next listing is due (zero: now).
    fn due(&self) -> Duration {
        self.polled
            .map_or(Duration::ZERO, |at| self.poll.saturating_sub(at.elapsed()))
    }

    /// Lists the copies pending in the region and counts them (see the module docs). A
    /// listing that fails (throttled) keeps the count; the next is due an interval later.
    pub(super) async fn refresh(&mut self, ctx: &Context) {
        let asked = Instant::now();
        self.polled = Some(asked);
        let Ok(listed) = self.pending(ctx).await else {
            return;
        };
        let grace = self.poll;
        self.recent
            .retain(|(_, at)| asked.saturating_duration_since(*at) < grace);
        let unseen = self
            .recent
            .iter()
            .filter(|(id, _)| !listed.contains(id))
            .count();
        let count = listed.len() + unseen;
        if count < self.count {
            self.idle_since = None;
        }
        self.count = count;
        self.seen.extend(listed.iter().cloned());
        self.listed = listed;
        self.held = false;
    }

    /// The copies pending in the region: this account's pending images that are copies,
    /// ours or not (the cap is the account's).
    async fn pending(&self, ctx: &Context) -> Result<HashSet<ImageId>, CloudError> {
        let query = ImageQuery {
            owned_by_self: true,
            state: Some(ImageState::Pending),
            page_size: Some(MAX_PAGE),
            ..ImageQuery::default()
        };
        let images = all_images(ctx.cloud.ec2(&self.region).as_ref(), &query).await?;
        Ok(images
            .into_iter()
            .filter(|i| i.state == ImageState::Pending && plan::copied_from(i).is_some())
            .map(|i| i.id)
            .collect())
    }
}

//! Applying cleanup: read each region's managed images, plan, check, retire, report.
//!
//! Regions run in parallel (each has its own EC2 throttling buckets and its own pacer).
//! Per region:
//! 1. stream the managed images page by page into an [`Inventory`];
//! 2. [`plan::retention`], then the images past retention that no local guard keeps
//!    ([`plan::candidates`]) are checked in batches — references in this region
//!    (instances, launch template versions, SSM parameters: an AMI can only be used in
//!    its own region, so each region's images are checked there) and launch permissions;
//! 3. each candidate's [`plan::decide`] is applied at once: one `EnableImageDeprecation`,
//!    one `DisableImage` (after setting the deprecation time: the disabled stage's clock)
//!    or one `DeregisterImage` (with `DeleteAssociatedSnapshots`) per image, a batch's
//!    deregistrations in flight together under the pacer; each batch
//!    first reads its snapshots by id (full sizes for the savings, tags for Recycle Bin
//!    coverage), so the deletions start right after the plan;
//! 4. snapshots tagged as ours that no image uses are reported (deleted with
//!    `DELETE_ORPHANS=true`); this listing, after the deletions, is short, and gives the
//!    kept images' snapshot sizes the stored GiB counts.
//!
//! EBS snapshot locks are read once per region (`DescribeLockedSnapshots`): an image due
//! for deregistration whose snapshot is locked is kept and reported with the lock's end,
//! a locked orphan is not attempted; neither is retried before the lock ends.
//!
//! The Recycle Bin retention rules are read once per region, with the first batch's seals
//! when the plan has candidates (none otherwise): each deregistered image and each deleted
//! snapshot is reported as restorable until a given time under a named rule, or as
//! deleted for good ([`super::recycle`]). A failed read stops nothing; the report says coverage is unknown.
//!
//! The deadline is checked before each batch and each mutating call; when it is near the
//! rest is reported `deferred` and `incomplete` is set. The next run re-reads everything
//! and converges. A dry run does the reads and the checks, and no mutating call.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;

use time::OffsetDateTime;

use super::inventory::{snapshot_key, ImageRecord, Inventory, LineageId};
use super::plan::{self, Decision, Facts, KeepWhy, OrphanDecision, Stage, Stages};
use super::recycle::{self, TagPrint};
use super::usage::Blocked;
use super::usage_check::UsageCheck;
use super::CleanupRequest;
use crate::context::Context;
use crate::error::{CloudError, CloudResult, ErrorKind};
use crate::lineage::{Head, Member};
use crate::model::{Image, ImageId, ImageState, KeyRef, Region, Snapshot, SnapshotId};
use crate::ports::{
    Deregistered, Ec2, ImageQuery, RecycleResource, RetentionRule, SnapshotLock, SnapshotQuery,
};
use crate::publish::history::{self, Published};
use crate::report::{Outcome, RunReport};
use crate::seal;
use crate::tags::key;

/// The function name in reports.
pub const FUNCTION: &str = "cleanup";

/// Images checked (references, launch permissions) per batch, at most ([`ramped`]); the
/// deadline is checked between batches. The EC2 adapter splits a batch's reference check into
/// DescribeImageReferences calls of at most 10 ids
/// ([`crate::aws::references::IDS_PER_REFERENCE_CALL`], the API's limit).
const CHECK_BATCH: usize = 100;

/// The first batch's size: batches double from it up to [`CHECK_BATCH`], so the first
/// deletion waits for ten images' checks, not a hundred's (EC2's deregistration bucket is
/// full at the start: time spent before the first call is lost to it).
const FIRST_CHECK_BATCH: usize = 10;

/// `items` in batches of [`FIRST_CHECK_BATCH`], then twice that, … up to [`CHECK_BATCH`].
pub(super) fn ramped<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    let mut size = FIRST_CHECK_BATCH;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (batch, after) = rest.split_at(size.min(rest.len()));
        rest = after;
        size = (size * 2).min(CHECK_BATCH);
        Some(batch)
    })
}

/// Images read again per DescribeImages (by `ImageIds`) to prove their seals.
const IDS_PER_READ: usize = 200;

/// Snapshots read per DescribeSnapshots (by `SnapshotIds`) before their images are acted on.
const SNAPSHOTS_PER_READ: usize = 500;

/// Cleans every requested region (in parallel) and returns one merged report.
/// DeregisterImage calls in flight at once per region ([`Region1::deregister_at_once`]).
const DEREGISTRATIONS_IN_FLIGHT: usize = 8;

/// Launch-permission reads in flight at once per region.
const PERMISSION_CHECKS_IN_FLIGHT: usize = 8;

pub async fn run(ctx: &Context, request: CleanupRequest, now: OffsetDateTime) -> RunReport {
    let ctx = &request.context(ctx);
    let regions = if request.regions.is_empty() {
        ctx.config.all_regions()
    } else {
        request.regions
    };
    let mut report = RunReport::new(FUNCTION, ctx.dry_run(), now);
    // One cache of cross-account use answers and spoke sessions for every region.
    let usage = Arc::new(UsageCheck::new(ctx, FUNCTION, now));
    let results = futures::future::join_all(
        regions
            .iter()
            .map(|r| run_region(ctx, r, now, usage.clone())),
    )
    .await;
    for r in results {
        report.merge(r);
    }
    report
}

/// Snapshot storage counted as AWS bills it: from `FullSnapshotSizeInBytes` where EC2
/// reports it (`full`), from the volume size otherwise (`volume`). Both in GiB.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Gib {
    full: f64,
    volume: f64,
}

const BYTES_PER_GIB: f64 = 1024.0 * 1024.0 * 1024.0;

impl Gib {
    #[allow(clippy::cast_precision_loss)]
    fn of(full_bytes: Option<u64>, volume_gib: u64) -> Self {
        match full_bytes {
            Some(b) => Self {
                full: b as f64 / BYTES_PER_GIB,
                volume: 0.0,
            },
            None => Self {
                full: 0.0,
                volume: volume_gib as f64,
            },
        }
    }

    fn of_snapshot(snap: &Snapshot) -> Self {
        Self::of(snap.full_size_bytes, snap.size_gib)
    }

    fn total(self) -> f64 {
        self.full + self.volume
    }
}

impl std::ops::AddAssign for Gib {
    fn add_assign(&mut self, other: Self) {
        self.full += other.full;
        self.volume += other.volume;
    }
}

impl std::fmt::Display for Gib {
    /// `8 GiB by volume size`, `2.41 GiB by full snapshot size`, or both bases named.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.total();
        if total.fract() == 0.0 {
            write!(f, "{total} GiB")?;
        } else {
            write!(f, "{total:.2} GiB")?;
        }
        match (self.full > 0.0, self.volume > 0.0) {
            (true, false) => f.write_str(" by full snapshot size"),
            (false, true) => f.write_str(" by volume size"),
            (true, true) => {
                f.write_str(" by full snapshot size where EC2 reports it, else volume size")
            }
            (false, false) => Ok(()),
        }
    }
}

/// Figures of one region, written into the report's metrics at the end.
#[derive(Debug, Default)]
struct Tally {
    scanned: u64,
    deleted: u64,
    deprecated: u64,
    disabled: u64,
    snapshots_deleted: u64,
    snapshots_kept: u64,
    snapshots_locked: u64,
    orphans: u64,
    orphan_gib: Gib,
    gib_freed: Gib,
    gib_planned: Gib,
    /// What the region's managed images held when the run began (each snapshot once).
    gib_stored: Gib,
    /// Deleted (or, in a dry run, to be deleted) images and snapshots a Recycle Bin rule
    /// keeps restorable.
    recycle_images: u64,
    recycle_snapshots: u64,
}

/// The retention view of an inventoried image of id `id`.
fn member_of<'a>(img: &ImageRecord, id: &'a ImageId) -> Member<'a> {
    Member {
        id,
        time: img.time(),
        state: img.state,
    }
}

/// Whether an inventoried image is proven this deployment's ([`Region1::prove`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proof {
    /// Listed with the tag, seal not checked yet: a provisional member.
    Unknown,
    Sealed,
    /// Unsealed, its seal not checkable, or no longer listed: left out and left alone.
    Not,
}

struct Region1<'a> {
    ctx: &'a Context,
    ec2: Arc<dyn Ec2>,
    region: &'a Region,
    now: OffsetDateTime,
    report: RunReport,
    tally: Tally,
    stopped: bool,
    /// The region's locked snapshots by snapshot key (read once, after the inventory).
    locks: plan::LockCheck,
    /// The region's Recycle Bin rules, read at the first deletion (`Err`: the read failed).
    recycle_rules: Option<Result<Vec<RetentionRule>, String>>,
    /// [`Region1::published`], read once.
    published: Option<Result<Arc<Published>, (String, bool)>>,
    /// The answer of [`read_published`] made with the first batch's seals, not yet looked at.
    published_read: Option<CloudResult<Published>>,
    /// The run's cross-account use checks ([`super::usage_check`]).
    usage: Arc<UsageCheck>,
}

async fn run_region(
    ctx: &Context,
    region: &Region,
    now: OffsetDateTime,
    usage: Arc<UsageCheck>,
) -> RunReport {
    let mut r = Region1 {
        ctx,
        ec2: ctx.cloud.ec2(region),
        region,
        now,
        report: RunReport::new(FUNCTION, ctx.dry_run(), now),
        tally: Tally::default(),
        stopped: false,
        locks: None,
        recycle_rules: None,
        published: None,
        published_read: None,
        usage,
    };
    match r.read_inventory().await {
        Ok(mut inventory) => {
            r.read_locks().await;
            // Deletions first, so they start once the listing and the plan are done: each
            // batch reads the sizes and tags of the snapshots it deletes. The orphan
            // listing comes after (it then lists only what is left) and gives the sizes of
            // the kept images' snapshots, which the stored GiB counts.
            let proof = r.retire(&mut inventory).await;
            r.orphans(&mut inventory).await;
            // What the region's managed images held without those proven not ours.
            r.tally.gib_stored = Region1::stored(&inventory, &proof);
        }
        Err(e) => {
            r.report.push(
                region,
                region.as_str(),
                None,
                Outcome::for_error(&e),
                format!("could not read the managed images ({e}); nothing done in this region"),
            );
        }
    }
    r.finish()
}

/// What was published in `region` ([`Region1::published`]).
async fn read_published(ctx: &Context, region: &Region) -> CloudResult<Published> {
    let config = &ctx.config;
    history::published_images(
        ctx.cloud.parameters(region).as_ref(),
        ctx.cloud.launch_templates(region).as_ref(),
        &config.deployment,
        config.published_keep,
    )
    .await
}

impl Region1<'_> {
    fn push(&mut self, subject: &str, image: Option<&ImageId>, outcome: Outcome, reason: String) {
        self.report
            .push(self.region, subject, image, outcome, reason);
    }

    /// `true` (and the run marked incomplete) once the deadline is near.
    fn out_of_time(&mut self) -> bool {
        if !self.stopped && self.ctx.deadline.near() {
            self.stopped = true;
            self.ctx.progress(&format!(
                "cleanup {}: deadline near, stopping; the next run continues",
                self.region
            ));
            self.report.incomplete = Some(format!(
                "deadline near in {}: the rest is left for the next run",
                self.region
            ));
        }
        self.stopped
    }

    /// Lists the managed images into the inventory, every one tagged `managed-by` as a
    /// provisional member: no seal is checked here. [`Region1::retire`] proves the seals the
    /// plan rests on first and each other image's just before it is acted on, so the
    /// deletions start once the listing ends instead of after one KMS call per image.
    async fn read_inventory(&mut self) -> Result<Inventory, CloudError> {
        let config = &self.ctx.config;
        let query = ImageQuery::managed_by(&config.deployment);
        let mut inventory = Inventory::new();
        let mut token = None;
        loop {
            let page = self.ec2.images_page(&query, token).await?;
            for image in &page.items {
                inventory.add(image, &config.deployment);
            }
            self.tally.scanned += page.items.len() as u64;
            self.ctx.progress(&format!(
                "cleanup {}: {} managed images read",
                self.region,
                inventory.len()
            ));
            // The page goes before the snapshot table is made at the end.
            let next = page.next;
            drop(page.items);
            match next {
                Some(t) => token = Some(t),
                None => {
                    // The records stay for the whole run: no room kept for more.
                    inventory.shrink_to_fit();
                    return Ok(inventory);
                }
            }
        }
    }

    /// Proves the seals of `indices` (one DescribeImages per [`IDS_PER_READ`] images, then
    /// one KMS check per image): each becomes
    /// [`Proof::Sealed`] or [`Proof::Not`]. Unsealed images are reported `unsealed`, those
    /// whose seal could not be checked deferred or failed, those no longer listed as ours
    /// (deregistered or untagged since the listing) kept: none of them is acted on.
    /// Returns the images read, by index, for the callers that need their tags.
    async fn prove(
        &mut self,
        inventory: &Inventory,
        indices: &[usize],
        proof: &mut [Proof],
    ) -> HashMap<usize, Image> {
        let deployment = self.ctx.config.deployment.clone();
        let mut read = HashMap::new();
        for chunk in indices.chunks(IDS_PER_READ) {
            let ids: Vec<ImageId> = chunk
                .iter()
                .map(|&i| inventory.id(&inventory.images[i]))
                .collect();
            let by_id: HashMap<&ImageId, usize> = ids.iter().zip(chunk.iter().copied()).collect();
            let images = match self.read_again(&ids).await {
                Ok(images) => images,
                Err(e) => {
                    for &i in chunk {
                        proof[i] = Proof::Not;
                        let id = inventory.id(&inventory.images[i]);
                        self.push(
                            id.as_str(),
                            Some(&id),
                            Outcome::for_error(&e),
                            format!("could not be read again to check its seal ({e}): left alone this run"),
                        );
                    }
                    continue;
                }
            };
            let listed: HashSet<ImageId> = images.iter().map(|i| i.id.clone()).collect();
            let sealed = seal::sealed_only(
                &self.ctx.sealer,
                images,
                &deployment,
                Some(&mut self.report),
            )
            .await;
            for &i in chunk {
                proof[i] = Proof::Not;
            }
            for image in sealed {
                if let Some(&i) = by_id.get(&image.id) {
                    proof[i] = Proof::Sealed;
                    read.insert(i, image);
                }
            }
            for id in &ids {
                if !listed.contains(id) {
                    self.push(
                        id.as_str(),
                        Some(id),
                        Outcome::Kept,
                        "no longer listed as this deployment's (deregistered or untagged since the listing): left alone".to_owned(),
                    );
                }
            }
        }
        read
    }

    /// This deployment's images among `ids`, as EC2 describes them now: one DescribeImages
    /// by `ImageIds` (EC2 looks them up directly; an `image-id` filter is matched against
    /// every image of the region). EC2 fails the whole call with `InvalidAMIID.NotFound`
    /// when one of them was deregistered meanwhile: then one read per image.
    async fn read_again(&self, ids: &[ImageId]) -> Result<Vec<Image>, CloudError> {
        let query = ImageQuery {
            ids: ids.to_vec(),
            ..ImageQuery::managed_by(&self.ctx.config.deployment)
        };
        match crate::ports::all_images(self.ec2.as_ref(), &query).await {
            Err(e) if e.kind == ErrorKind::NotFound => {
                let mut images = Vec::new();
                for id in ids {
                    if let Some(image) = crate::ports::own_image(self.ec2.as_ref(), id).await? {
                        if crate::tags::is_managed_by(&image.tags, &self.ctx.config.deployment) {
                            images.push(image);
                        }
                    }
                }
                Ok(images)
            }
            other => other,
        }
    }

    /// Retention over proven members: plans with every listed image as a member, proves
    /// the seals of those the plan keeps (the only members whose presence changes other
    /// members' stages: [`plan::retention_without`]), leaves out the unproven and plans
    /// again, until every kept member is proven. A lineage whose head was left out gets the
    /// best member left as its head (read again for its `retain` tags).
    async fn proven_retention(&mut self, inventory: &Inventory, proof: &mut [Proof]) -> Stages {
        let config = self.ctx.config.clone();
        let mut heads: HashMap<LineageId, Head> = HashMap::new();
        loop {
            let excluded: Vec<bool> = proof.iter().map(|p| *p == Proof::Not).collect();
            let stages = plan::retention_without(inventory, &excluded, &heads, &config, self.now);
            let unproven: Vec<usize> = (0..inventory.len())
                .filter(|&i| proof[i] == Proof::Unknown && !matches!(stages[i], Stage::Past(_)))
                .collect();
            if unproven.is_empty() {
                return stages;
            }
            self.prove(inventory, &unproven, proof).await;
            // Lineages whose head is now left out: the next best member leads, as
            // `Head` itself ranks members (offered without tags to find it, then read
            // again for its `retain` tags and proven; if it is not ours, the next one).
            let lost: HashSet<LineageId> = unproven
                .iter()
                .filter(|&&i| proof[i] == Proof::Not)
                .map(|&i| inventory.images[i].lineage)
                .collect();
            for lid in lost {
                let current = heads
                    .get(&lid)
                    .or_else(|| inventory.lineage(lid).map(|l| &l.head));
                let led_by_lost = current
                    .and_then(Head::image)
                    .and_then(|(id, _)| inventory.position(id))
                    .is_none_or(|i| proof[i] == Proof::Not);
                if !led_by_lost {
                    continue;
                }
                let mut head = Head::default();
                loop {
                    let mut ranking = Head::default();
                    for (i, img) in inventory.images.iter().enumerate() {
                        if img.lineage == lid && proof[i] != Proof::Not {
                            ranking.offer(&member_of(img, &inventory.id(img)), None);
                        }
                    }
                    let Some(i) = ranking.image().and_then(|(id, _)| inventory.position(id)) else {
                        break;
                    };
                    // A seal already proven is not asked of KMS twice: the sealer
                    // remembers it.
                    if let Some(image) = self.prove(inventory, &[i], proof).await.get(&i) {
                        head.offer_image(&member_of(&inventory.images[i], &image.id), image);
                        break;
                    }
                }
                heads.insert(lid, head);
            }
        }
    }

    /// EBS snapshot locks: an image whose snapshot is locked is kept until the lock ends
    /// (EC2 would refuse the deletion and leave an orphan behind), a locked orphan is not
    /// attempted. A failed read is reported once; no image is deregistered on doubt.
    async fn read_locks(&mut self) {
        self.locks = Some(match self.ec2.snapshot_locks().await {
            Ok(locks) => Ok(Arc::new(
                locks
                    .into_iter()
                    .map(|l| (snapshot_key(&l.snapshot), l))
                    .collect(),
            )),
            Err(e) => {
                self.push(
                    self.region.as_str(),
                    None,
                    Outcome::for_error(&e),
                    format!("snapshot lock check failed ({e}): images due for deregistration are kept this run"),
                );
                Err((format!("snapshot lock check failed: {e}"), e.is_retryable()))
            }
        });
    }

    /// What was published in the region (latest-image parameters and their last
    /// `PUBLISHED_KEEP` values, pins, tracked templates): one read per region and run,
    /// made with the first batch's seals ([`read_published`]).
    async fn published(&mut self) -> Result<Arc<Published>, (String, bool)> {
        if let Some(known) = &self.published {
            return known.clone();
        }
        {
            let read = match self.published_read.take() {
                Some(read) => read,
                None => read_published(self.ctx, self.region).await,
            };
            self.published = Some(match read {
                Ok(p) => Ok(Arc::new(p)),
                Err(e) => {
                    self.report.push(
                        self.region,
                        self.region.as_str(),
                        None,
                        Outcome::for_error(&e),
                        format!("published images could not be read ({e}): every image past retention is kept this run"),
                    );
                    Err((
                        format!("published-image check failed: {e}"),
                        e.is_retryable(),
                    ))
                }
            });
        }
        self.published
            .clone()
            .unwrap_or_else(|| Err(("not read".to_owned(), true)))
    }

    /// The region's Recycle Bin rules: one read per region and run, made with the first
    /// batch's seals (here if not).
    async fn recycle_rules(&mut self) -> &Result<Vec<RetentionRule>, String> {
        if self.recycle_rules.is_none() {
            let bin = self.ctx.cloud.recycle_bin(self.region);
            self.recycle_rules = Some(bin.retention_rules().await.map_err(|e| e.to_string()));
        }
        self.recycle_rules.get_or_insert_with(|| Ok(Vec::new()))
    }

    /// What the Recycle Bin keeps of a deregistered image and of the snapshots deleted
    /// with it (each snapshot by its own tags where the listing read them, else the
    /// image's: the suite tags both alike), counted in the tally.
    async fn image_recycle_note(
        &mut self,
        inventory: &Inventory,
        img: &ImageRecord,
        snapshots: &[u64],
    ) -> String {
        let now = self.now;
        let img_tags = inventory.image_tags(img);
        let snap_tags: Vec<TagPrint> = snapshots
            .iter()
            .map(|&k| inventory.snapshot_tags(k).unwrap_or(&img_tags).clone())
            .collect();
        let rules = self.recycle_rules().await;
        let (covered, image_note) =
            recycle::coverage(rules, RecycleResource::Image, &img_tags, now);
        let mut by_note: std::collections::BTreeMap<String, usize> = Default::default();
        let mut snaps_covered = 0;
        for tags in &snap_tags {
            let (c, note) = recycle::coverage(rules, RecycleResource::Snapshot, tags, now);
            snaps_covered += u64::from(c);
            *by_note.entry(note).or_default() += 1;
        }
        self.tally.recycle_images += u64::from(covered);
        self.tally.recycle_snapshots += snaps_covered;
        let mut out = format!("image: {image_note}");
        for (note, n) in by_note {
            out.push_str(&format!("; {n} snapshot(s): {note}"));
        }
        out
    }

    /// What the Recycle Bin keeps of a deleted orphan snapshot, counted in the tally.
    async fn snapshot_recycle_note(&mut self, tags: &TagPrint) -> String {
        let now = self.now;
        let rules = self.recycle_rules().await;
        let (covered, note) = recycle::coverage(rules, RecycleResource::Snapshot, tags, now);
        self.tally.recycle_snapshots += u64::from(covered);
        note
    }

    /// One disk of an inventoried image, by its full snapshot size if EC2 reported it.
    fn disk_gib(inventory: &Inventory, key: u64, volume_gib: u32) -> Gib {
        Gib::of(inventory.full_bytes(key), u64::from(volume_gib))
    }

    /// The GiB the region's managed images hold, each snapshot counted once (images can
    /// share snapshots), as the savings count them.
    fn stored(inventory: &Inventory, proof: &[Proof]) -> Gib {
        let mut seen = std::collections::HashSet::new();
        let mut gib = Gib::default();
        for (i, image) in inventory.images.iter().enumerate() {
            if proof.get(i) == Some(&Proof::Not) {
                continue;
            }
            for (key, size) in inventory.disks(image) {
                // Only a snapshot several images use needs remembering (once counted).
                if inventory.snapshot_key_users(key) <= 1 || seen.insert(key) {
                    gib += Self::disk_gib(inventory, key, size);
                }
            }
        }
        gib
    }

    fn lock_of(&self, snapshot: &SnapshotId) -> Option<&SnapshotLock> {
        match &self.locks {
            Some(Ok(locks)) => locks.get(&snapshot_key(snapshot)),
            _ => None,
        }
    }

    /// Plans over proven members ([`Region1::proven_retention`]), reports the kept ones,
    /// then goes through the rest in batches: each batch's seals are proven first (the
    /// unproven are reported and left alone), then the candidates' references and launch
    /// permissions are read, and each image's decision is applied at once. Candidates
    /// come first, so the deletions start after the listing and the kept members' proofs.
    async fn retire(&mut self, inventory: &mut Inventory) -> Vec<Proof> {
        let config = self.ctx.config.clone();
        let now = self.now;
        let mut proof = vec![Proof::Unknown; inventory.len()];
        let stages = self.proven_retention(inventory, &mut proof).await;
        let is_candidate: Vec<bool> = (0..inventory.len())
            .map(|i| plan::is_candidate(inventory, &stages, i, &config, now))
            .collect();
        let candidates = is_candidate.iter().filter(|&&c| c).count();
        let past = stages
            .iter()
            .filter(|s| matches!(s, Stage::Past(_)))
            .count();
        self.ctx.progress(&format!(
            "cleanup {}: {} images, {past} past retention, {} to check for references",
            self.region,
            inventory.len(),
            candidates
        ));
        let no_facts = Facts::new();
        // Proven while planning: the kept members.
        for i in (0..inventory.len()).filter(|&i| proof[i] == Proof::Sealed && !is_candidate[i]) {
            let decision = plan::decide(inventory, &stages, i, &no_facts, &config, now);
            self.apply(inventory, i, &decision).await;
        }
        // The rest, candidates first; the others only need their seals proven before
        // they are reported (kept by a guard, pending, failed, …). As `u32` indices: this
        // list is as long as the inventory (issue 19, flat memory).
        let rest: Vec<u32> = (0..inventory.len())
            .filter(|&i| is_candidate[i])
            .chain((0..inventory.len()).filter(|&i| proof[i] == Proof::Unknown && !is_candidate[i]))
            .map(|i| i as u32)
            .collect();
        let mut checked = 0;
        for (n, batch) in ramped(&rest).enumerate() {
            let batch: Vec<usize> = batch.iter().map(|&i| i as usize).collect();
            let batch = batch.as_slice();
            if self.out_of_time() {
                for &i in batch {
                    let reason = plan::explain(
                        inventory,
                        i,
                        &Decision::Keep(KeepWhy::NotChecked),
                        (config.deprecation_grace_days, config.disable_grace_days),
                    );
                    self.push(
                        inventory.id(&inventory.images[i]).as_str(),
                        None,
                        Outcome::Deferred,
                        format!("deadline near: {reason}"),
                    );
                }
                continue;
            }
            let read = if n == 0 && candidates > 0 {
                // The region's one-time reads go with the first batch's seals (each one or
                // two round trips the first deletion would otherwise wait for).
                let (ctx, region) = (self.ctx, self.region);
                let bin = ctx.cloud.recycle_bin(region);
                let (read, published, rules) = futures::join!(
                    self.prove(inventory, batch, &mut proof),
                    read_published(ctx, region),
                    bin.retention_rules(),
                );
                self.published_read = Some(published);
                self.recycle_rules = Some(rules.map_err(|e| e.to_string()));
                read
            } else {
                self.prove(inventory, batch, &mut proof).await
            };
            let (due, others): (Vec<usize>, Vec<usize>) = batch
                .iter()
                .copied()
                .filter(|&i| proof[i] == Proof::Sealed)
                .partition(|&i| is_candidate[i]);
            for i in others {
                let decision = plan::decide(inventory, &stages, i, &no_facts, &config, now);
                self.apply(inventory, i, &decision).await;
            }
            if due.is_empty() {
                continue;
            }
            self.note_snapshots(inventory, due.iter().filter_map(|i| read.get(i)))
                .await;
            let mut facts = self.facts(inventory, &due).await;
            self.use_checks(inventory, &stages, &due, &mut facts).await;
            let decisions: Vec<(usize, Decision)> = due
                .iter()
                .map(|&i| (i, plan::decide(inventory, &stages, i, &facts, &config, now)))
                .collect();
            let mut called = self.deregister_at_once(inventory, &decisions).await;
            for (i, decision) in &decisions {
                let call = called.remove(i);
                self.apply_called(inventory, *i, decision, call).await;
            }
            checked += batch.iter().filter(|&&i| is_candidate[i]).count();
            self.ctx.progress(&format!(
                "cleanup {}: {}/{} checked (batch {}), {} deregistered, {} deprecated",
                self.region,
                checked,
                candidates,
                n + 1,
                self.tally.deleted,
                self.tally.deprecated
            ));
        }
        proof
    }

    /// Reads the snapshots of `images` (about to be acted on) by id, and notes their full
    /// sizes (what the savings count) and tags (what Recycle Bin coverage reads) in the
    /// inventory. A failed read only leaves those figures to the volume sizes and the
    /// images' tags: nothing is kept or deleted on it.
    async fn note_snapshots<'i>(
        &mut self,
        inventory: &mut Inventory,
        images: impl Iterator<Item = &'i Image>,
    ) {
        let ids: Vec<SnapshotId> = images.flat_map(Image::snapshot_ids).cloned().collect();
        for chunk in ids.chunks(SNAPSHOTS_PER_READ) {
            let query = SnapshotQuery {
                ids: chunk.to_vec(),
                ..SnapshotQuery::default()
            };
            match crate::ports::all_snapshots(self.ec2.as_ref(), &query).await {
                Ok(snapshots) => {
                    for snap in &snapshots {
                        inventory.note_snapshot(
                            snapshot_key(&snap.id),
                            snap.full_size_bytes,
                            TagPrint::of(&snap.tags),
                        );
                    }
                }
                Err(e) => self.ctx.progress(&format!(
                    "cleanup {}: the sizes of {} snapshot(s) could not be read ({e}): counted by volume size",
                    self.region,
                    chunk.len()
                )),
            }
        }
    }

    /// References (one call per batch) and launch permissions (one call per image).
    async fn facts(&mut self, inventory: &Inventory, batch: &[usize]) -> Facts {
        let ids: Vec<ImageId> = batch
            .iter()
            .map(|&i| inventory.id(&inventory.images[i]))
            .collect();
        let mut facts = Facts::new();
        match &self.locks {
            Some(Ok(locks)) => facts.snapshot_locks(locks.clone()),
            Some(Err((problem, retryable))) => facts.snapshot_locks_failed(problem, *retryable),
            None => {}
        }
        match self.published().await {
            Ok(published) => facts.published(published),
            Err((problem, retryable)) => facts.published_failed(problem, retryable),
        }
        match self.ec2.references(&ids).await {
            Ok(found) => facts.references_checked(&ids, found),
            Err(e) => {
                for id in &ids {
                    facts.check_failed(
                        id,
                        format!("reference check failed: {e}"),
                        e.is_retryable(),
                    );
                }
            }
        }
        let grantees_needed =
            !self.ctx.config.cleanup_shared || super::usage::enabled(&self.ctx.config);
        if grantees_needed {
            // One read per image: run a few at once so call latency does not add up; the
            // EC2 adapter's pacer still holds them to the Describe bucket.
            let to_check: Vec<&ImageId> = ids
                .iter()
                .filter(|id| !facts.is_referenced(id) && !facts.has_failed(id))
                .collect();
            let ec2 = self.ec2.clone();
            let results: Vec<_> = futures::stream::iter(to_check)
                .map(|id| {
                    let ec2 = ec2.clone();
                    async move { (id, ec2.launch_permissions(id).await) }
                })
                .buffered(PERMISSION_CHECKS_IN_FLIGHT)
                .collect()
                .await;
            for (id, result) in results {
                match result {
                    Ok(grantees) => facts.sharing_checked(id, grantees),
                    Err(e) => facts.check_failed(
                        id,
                        format!("launch permission check failed: {e}"),
                        e.is_retryable(),
                    ),
                }
            }
        }
        facts
    }

    /// The cross-account use facts of the batch's images that would be disabled or
    /// deleted while shared ([`plan::use_check_needed`]): one check per run and region.
    async fn use_checks(
        &mut self,
        inventory: &Inventory,
        stages: &Stages,
        batch: &[usize],
        facts: &mut Facts,
    ) {
        let config = self.ctx.config.clone();
        let wanted: Vec<(ImageId, Vec<crate::model::Grantee>)> = batch
            .iter()
            .filter_map(|&i| {
                let d =
                    plan::decide_before_use_check(inventory, stages, i, facts, &config, self.now);
                match plan::use_check_needed(inventory, i, &d, facts, &config) {
                    Ok(Some(g)) => Some((inventory.id(&inventory.images[i]), g)),
                    _ => None,
                }
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        self.ctx.progress(&format!(
            "cleanup {}: asking the accounts {} shared image(s) are shared with whether they use them",
            self.region,
            wanted.len()
        ));
        facts.usage_checked(self.usage.check(self.region, &wanted).await);
    }

    /// The batch's deregistrations of images without grants to retire, made at once
    /// ([`DEREGISTRATIONS_IN_FLIGHT`] in flight, the pacer holding them to EC2's mutating
    /// bucket) rather than each one call's latency after the other: the bucket's burst is
    /// spent at once, as the bucket-limited pace assumes. Each call is made only while the
    /// deadline is not near (an image not called is left to [`Region1::apply_called`],
    /// which defers it). Nothing is called in a dry run; images with KMS grants to retire
    /// first are deregistered one by one in [`Region1::apply_called`].
    async fn deregister_at_once(
        &mut self,
        inventory: &Inventory,
        decisions: &[(usize, Decision)],
    ) -> HashMap<usize, CloudResult<Deregistered>> {
        if self.ctx.dry_run() || self.out_of_time() {
            return HashMap::new();
        }
        let calls: Vec<(usize, ImageId)> = decisions
            .iter()
            .filter(|(i, d)| {
                matches!(d, Decision::Deregister { .. })
                    && inventory.shared_keys(&inventory.images[*i]).is_empty()
            })
            .map(|(i, _)| (*i, inventory.id(&inventory.images[*i])))
            .collect();
        let ec2 = self.ec2.clone();
        let deadline = self.ctx.deadline;
        futures::stream::iter(calls)
            .map(|(i, id)| {
                let ec2 = ec2.clone();
                async move {
                    if deadline.near() {
                        return None;
                    }
                    Some((i, ec2.deregister(&id, true).await))
                }
            })
            .buffer_unordered(DEREGISTRATIONS_IN_FLIGHT)
            .filter_map(|r| async move { r })
            .collect()
            .await
    }

    async fn apply(&mut self, inventory: &Inventory, index: usize, decision: &Decision) {
        self.apply_called(inventory, index, decision, None).await;
    }

    /// Applies `decision`; `called`: the answer of the deregistration
    /// [`Region1::deregister_at_once`] already made for it.
    async fn apply_called(
        &mut self,
        inventory: &Inventory,
        index: usize,
        decision: &Decision,
        called: Option<CloudResult<Deregistered>>,
    ) {
        let img = &inventory.images[index];
        let id = &inventory.id(img);
        let graces = (
            self.ctx.config.deprecation_grace_days,
            self.ctx.config.disable_grace_days,
        );
        let reason = plan::explain(inventory, index, decision, graces);
        let dry = self.ctx.dry_run();
        match decision {
            Decision::Keep(why) => {
                let outcome = match why {
                    KeepWhy::NotChecked
                    | KeepWhy::CheckFailed {
                        retryable: true, ..
                    } => Outcome::Deferred,
                    KeepWhy::CheckFailed {
                        retryable: false, ..
                    } => Outcome::Failed,
                    KeepWhy::BadRetainTag { on, .. } if on == id => Outcome::Failed,
                    KeepWhy::UsedElsewhere(Blocked::InUse(_)) => Outcome::Kept,
                    KeepWhy::UsedElsewhere(Blocked::Failed {
                        retryable: false, ..
                    }) => Outcome::Failed,
                    KeepWhy::UsedElsewhere(_) => Outcome::Deferred,
                    KeepWhy::SnapshotLocked(_) => {
                        self.tally.snapshots_locked += 1;
                        Outcome::Kept
                    }
                    _ => Outcome::Kept,
                };
                self.push(id.as_str(), None, outcome, reason);
            }
            Decision::Deprecate(_) if dry => self.push(
                id.as_str(),
                None,
                Outcome::Planned,
                format!("would deprecate: {reason}"),
            ),
            Decision::Disable { .. } if dry => self.push(
                id.as_str(),
                None,
                Outcome::Planned,
                format!("would disable: {reason}"),
            ),
            Decision::Deregister { .. } if dry => {
                let mut gib = Gib::default();
                let mut keys = Vec::new();
                for (k, size) in inventory.exclusive_disks(img) {
                    gib += Self::disk_gib(inventory, k, size);
                    keys.push(k);
                }
                self.tally.gib_planned += gib;
                let note = self.image_recycle_note(inventory, img, &keys).await;
                self.push(
                    id.as_str(),
                    None,
                    Outcome::Planned,
                    format!("would deregister (snapshots of about {gib}): {reason}; once deleted, {note}"),
                );
            }
            Decision::Deregister { .. } if called.is_some() => {
                if let Some(result) = called {
                    self.deregistered(inventory, img, id, reason, result).await;
                }
            }
            _ if self.out_of_time() => self.push(
                id.as_str(),
                None,
                Outcome::Deferred,
                format!("deadline near, left for the next run: {reason}"),
            ),
            // EC2 refuses a deprecation time in the past: "now" is a minute ahead. The
            // grace counts from it.
            Decision::Deprecate(_) => match self
                .ec2
                .deprecate(id, self.now + plan::DEPRECATE_AHEAD)
                .await
            {
                Ok(()) => {
                    self.tally.deprecated += 1;
                    self.push(id.as_str(), None, Outcome::Deprecated, reason);
                }
                Err(e) => self.failed(id, "deprecate", &e),
            },
            Decision::Disable { restart_clock, .. } => {
                self.disable(id, img, *restart_clock, reason).await;
            }
            Decision::Deregister { .. }
                if !self.retire_grants(id, inventory.shared_keys(img)).await => {}
            Decision::Deregister { .. } => {
                let result = self.ec2.deregister(id, true).await;
                self.deregistered(inventory, img, id, reason, result).await;
            }
        }
    }

    /// Reports a deregistration's answer and counts what it freed.
    async fn deregistered(
        &mut self,
        inventory: &Inventory,
        img: &ImageRecord,
        id: &ImageId,
        reason: String,
        result: CloudResult<Deregistered>,
    ) {
        match result {
            Ok(done) => {
                let mut freed = Gib::default();
                for s in &done.snapshots_deleted {
                    let k = snapshot_key(s);
                    if let Some((_, size)) = inventory.disks(img).find(|(d, _)| *d == k) {
                        freed += Self::disk_gib(inventory, k, size);
                    }
                }
                self.tally.deleted += 1;
                self.tally.gib_freed += freed;
                self.tally.snapshots_deleted += done.snapshots_deleted.len() as u64;
                let keys: Vec<u64> = done.snapshots_deleted.iter().map(snapshot_key).collect();
                let note = self.image_recycle_note(inventory, img, &keys).await;
                self.push(
                    id.as_str(),
                    None,
                    Outcome::Deleted,
                    format!(
                        "deregistered, {} snapshot(s) deleted ({freed}): {reason}; {note}",
                        done.snapshots_deleted.len()
                    ),
                );
                for (snap, code) in &done.snapshots_kept {
                    self.tally.snapshots_kept += 1;
                    self.push(
                        snap.as_str(),
                        Some(id),
                        Outcome::Kept,
                        format!("snapshot of deregistered {id} kept by EC2 ({code}): another image still uses it; it goes with the last image that does"),
                    );
                }
            }
            Err(e) => self.failed(id, "deregister", &e),
        }
    }

    /// Before a shared image goes: retires the KMS grants the suite made for it (named
    /// after the image, found with ListGrants). First, because once the image and its
    /// record are gone nothing would name them again. `false` (image kept, reported) when
    /// they could not be retired.
    async fn retire_grants(&mut self, id: &ImageId, shared_keys: &[KeyRef]) -> bool {
        if shared_keys.is_empty() {
            return true;
        }
        let kms = self.ctx.cloud.keys(self.region);
        match crate::share::retire_image_grants(kms.as_ref(), id, shared_keys).await {
            Ok(0) => true,
            Ok(n) => {
                self.push(
                    id.as_str(),
                    Some(id),
                    Outcome::Revoked,
                    format!(
                        "{n} KMS grant(s) the suite made to share it retired before it is deleted"
                    ),
                );
                true
            }
            Err(e) => {
                let outcome = Outcome::for_error(&e);
                self.push(
                    id.as_str(),
                    None,
                    outcome,
                    format!("kept: the KMS grants made to share it could not be retired ({e}); the next run retries"),
                );
                false
            }
        }
    }

    /// The disabled stage: the deprecation time set to now (the stage's clock, EC2 records
    /// no time of disabling), then `DisableImage`. A failure of either leaves the image as
    /// it was for the next run (a clock set without the disable only delays it).
    async fn disable(
        &mut self,
        id: &ImageId,
        img: &ImageRecord,
        restart_clock: bool,
        reason: String,
    ) {
        if restart_clock {
            if let Err(e) = self
                .ec2
                .deprecate(id, self.now + plan::DEPRECATE_AHEAD)
                .await
            {
                return self.failed(id, "set the deprecation time of (before disabling)", &e);
            }
        }
        if img.state != ImageState::Disabled {
            if let Err(e) = self.ec2.disable(id).await {
                return self.failed(id, "disable", &e);
            }
        }
        self.tally.disabled += 1;
        self.push(id.as_str(), None, Outcome::Disabled, reason);
    }

    fn failed(&mut self, id: &ImageId, action: &str, e: &CloudError) {
        let (outcome, reason) = match e.kind {
            ErrorKind::NotFound => (Outcome::Unchanged, format!("already gone ({e})")),
            _ if e.is_retryable() => (
                Outcome::Deferred,
                format!("could not {action} ({e}); the next run retries"),
            ),
            ErrorKind::NotPermitted => (
                Outcome::Kept,
                format!("EC2 refused to {action} it ({e}); kept"),
            ),
            _ => (Outcome::Failed, format!("could not {action} ({e})")),
        };
        self.push(id.as_str(), None, outcome, reason);
    }

    /// Snapshots tagged as ours that no inventoried image uses.
    async fn orphans(&mut self, inventory: &mut Inventory) {
        let config = self.ctx.config.clone();
        let query = SnapshotQuery::managed_by(&config.deployment);
        let mut token = None;
        loop {
            let page = match self.ec2.snapshots_page(&query, token).await {
                Ok(p) => p,
                Err(e) => {
                    self.push(
                        self.region.as_str(),
                        None,
                        Outcome::for_error(&e),
                        format!("orphan snapshot check: {e}"),
                    );
                    return;
                }
            };
            for snap in &page.items {
                inventory.note_snapshot(
                    snapshot_key(&snap.id),
                    snap.full_size_bytes,
                    TagPrint::of(&snap.tags),
                );
                let gib = Gib::of_snapshot(snap);
                let decision = match plan::orphan(snap, inventory, &config, self.now) {
                    // Deleting needs proof the suite made the snapshot: its seal.
                    Some(OrphanDecision::Delete) if !self.snapshot_sealed(snap).await => {
                        self.push(
                            snap.id.as_str(),
                            None,
                            Outcome::Unsealed,
                            format!(
                                "orphan tagged {} without a valid seal: never deleted ({gib})",
                                key::MANAGED_BY,
                            ),
                        );
                        continue;
                    }
                    other => other,
                };
                if let (Some(d), Some(lock)) = (decision, self.lock_of(&snap.id)) {
                    let until = lock.expires.map_or_else(
                        || "with no end given".to_owned(),
                        |t| format!("until {}", crate::time_util::rfc3339(t)),
                    );
                    let reason = format!(
                        "orphan: tagged as ours, no image uses it ({gib}), locked ({} mode) {until}: {}",
                        lock.mode,
                        if d == OrphanDecision::Delete {
                            "not attempted, deleted once the lock ends"
                        } else {
                            "DELETE_ORPHANS=true deletes it once the lock ends"
                        }
                    );
                    self.tally.orphans += 1;
                    self.tally.orphan_gib += gib;
                    self.tally.snapshots_locked += 1;
                    self.push(snap.id.as_str(), None, Outcome::Kept, reason);
                    continue;
                }
                match decision {
                    None => {}
                    Some(OrphanDecision::Report) => {
                        self.tally.orphans += 1;
                        self.tally.orphan_gib += gib;
                        self.push(
                            snap.id.as_str(),
                            None,
                            Outcome::Kept,
                            format!("orphan: tagged as ours, no image uses it ({gib}); DELETE_ORPHANS=true deletes it"),
                        );
                    }
                    Some(OrphanDecision::Delete) => {
                        self.tally.orphans += 1;
                        self.tally.orphan_gib += gib;
                        self.delete_orphan(snap, gib).await;
                    }
                }
            }
            match page.next {
                Some(t) => token = Some(t),
                None => return,
            }
        }
    }

    /// Whether an orphan's seal verifies (a failed check counts as not sealed: kept).
    /// Orphans are listed `OwnerIds=self`: the snapshot is this cloud's account's.
    async fn snapshot_sealed(&self, snap: &Snapshot) -> bool {
        let Ok(owner) = self.ctx.cloud.account().await else {
            return false;
        };
        let subject =
            seal::Subject::snapshot(&self.ctx.config.deployment, &owner, self.region, &snap.tags);
        self.ctx
            .sealer
            .verify(&subject, snap.tags.get(key::SEAL).map(String::as_str))
            .await
            .unwrap_or(false)
    }

    async fn delete_orphan(&mut self, snap: &Snapshot, size: Gib) {
        let id = &snap.id;
        let tags = TagPrint::of(&snap.tags);
        if self.ctx.dry_run() {
            self.tally.gib_planned += size;
            let note = self.snapshot_recycle_note(&tags).await;
            self.push(
                id.as_str(),
                None,
                Outcome::Planned,
                format!(
                    "would delete orphan snapshot ({size}): no image uses it; once deleted, {note}"
                ),
            );
            return;
        }
        if self.out_of_time() {
            self.push(
                id.as_str(),
                None,
                Outcome::Deferred,
                "deadline near: orphan left for the next run".to_owned(),
            );
            return;
        }
        let (outcome, reason) = match self.ec2.delete_snapshot(id).await {
            Ok(()) => {
                self.tally.gib_freed += size;
                self.tally.snapshots_deleted += 1;
                let note = self.snapshot_recycle_note(&tags).await;
                (
                    Outcome::Deleted,
                    format!(
                        "orphan snapshot deleted ({size}): no image uses it (DELETE_ORPHANS=true); {note}"
                    ),
                )
            }
            Err(e) if e.kind == ErrorKind::NotFound => {
                (Outcome::Unchanged, format!("already gone ({e})"))
            }
            Err(e) if e.kind == ErrorKind::InUse => (
                Outcome::Kept,
                format!("in use by an image outside this deployment ({e}); kept"),
            ),
            Err(e) if e.is_retryable() => (
                Outcome::Deferred,
                format!("could not delete ({e}); the next run retries"),
            ),
            Err(e) => (
                Outcome::Failed,
                format!("could not delete orphan snapshot ({e})"),
            ),
        };
        self.push(id.as_str(), None, outcome, reason);
    }

    fn finish(mut self) -> RunReport {
        let t = &self.tally;
        let price = self.ctx.config.price_per_gib_month;
        // Stored: the images' snapshots and our orphan snapshots; freed counts both kinds.
        let stored_before = t.gib_stored.total() + t.orphan_gib.total();
        let stored_after = if self.ctx.dry_run() {
            stored_before
        } else {
            (stored_before - t.gib_freed.total()).max(0.0)
        };
        #[allow(clippy::cast_precision_loss)]
        let figures = [
            ("images_scanned", t.scanned as f64),
            ("images_deleted", t.deleted as f64),
            ("images_deprecated", t.deprecated as f64),
            ("images_disabled", t.disabled as f64),
            ("snapshots_deleted", t.snapshots_deleted as f64),
            ("snapshots_kept_in_use", t.snapshots_kept as f64),
            ("snapshots_locked", t.snapshots_locked as f64),
            ("orphan_snapshots", t.orphans as f64),
            ("orphan_gib", t.orphan_gib.total()),
            // Savings count what AWS bills: FullSnapshotSizeInBytes where EC2 reports it
            // (`*_full_size`), the volume size otherwise (`*_volume_size`).
            ("gib_freed", t.gib_freed.total()),
            ("gib_freed_full_size", t.gib_freed.full),
            ("gib_freed_volume_size", t.gib_freed.volume),
            ("monthly_saving_usd", t.gib_freed.total() * price),
            ("gib_planned", t.gib_planned.total()),
            ("gib_planned_full_size", t.gib_planned.full),
            ("gib_planned_volume_size", t.gib_planned.volume),
            ("monthly_saving_planned_usd", t.gib_planned.total() * price),
            // What stays stored once this run is done (a dry run changes nothing), and its
            // monthly cost: the dashboard's storage and cost rows.
            ("gib_stored", stored_after),
            ("monthly_cost_usd", stored_after * price),
            // Deleted (in a dry run: to be deleted) and restorable from the Recycle Bin.
            ("recycle_bin_images", t.recycle_images as f64),
            ("recycle_bin_snapshots", t.recycle_snapshots as f64),
        ];
        for (k, v) in figures {
            self.report.metrics.insert(k.to_owned(), v);
        }
        self.report
    }
}

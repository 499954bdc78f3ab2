//! Applies replication: list the inventory, check keys, plan, copy, remove failed copies.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use futures::stream::{FuturesUnordered, StreamExt};

use time::OffsetDateTime;

use super::lines::Lines;
use super::plan::{self, CopyKind, CopyPlan, Inventory, KeyStatus, Removal};
use super::slots::{self, Slots};
use super::{Request, FUNCTION};
use crate::context::Context;
use crate::error::{CloudError, ErrorKind};
use crate::model::{Image, ImageId, ImageState, Region};
use crate::ports::{all_images, ImageQuery};
use crate::report::{Outcome, RunReport};
use crate::seal;
use crate::tags::{self, key};

/// Runs one request and returns its report (the caller passes it to [`Context::finish`]).
pub async fn run(ctx: &Context, request: Request, now: OffsetDateTime) -> RunReport {
    run_polling(ctx, request, now, slots::poll_interval()).await
}

/// [`run`], polling for copy slots every `poll` (tests use a short one).
pub(super) async fn run_polling(
    ctx: &Context,
    request: Request,
    now: OffsetDateTime,
    poll: std::time::Duration,
) -> RunReport {
    let mut report = RunReport::new(FUNCTION, ctx.dry_run(), now);
    // An event's run never waits for a copy slot: the next copy's completion event (or
    // the reconcile) takes over. Every other run waits, bounded by the deadline.
    let wait = match &request {
        Request::Reconcile | Request::ReconcileIn(_) => true,
        Request::Image { from_event, .. } => !from_event,
        Request::FailedCopy { .. } | Request::Ignore { .. } => false,
    };
    let inventory = match &request {
        Request::Reconcile => {
            let regions = ctx.config.regions.clone();
            Some(reconcile_inventory(ctx, &regions, None, &mut report).await)
        }
        Request::ReconcileIn(region) => {
            Some(reconcile_inventory(ctx, std::slice::from_ref(region), None, &mut report).await)
        }
        Request::Image {
            image,
            region,
            from_event,
        } => image_inventory(ctx, image, region.as_ref(), *from_event, &mut report).await,
        Request::FailedCopy {
            image,
            region,
            error,
        } => failed_inventory(ctx, image, region, error.as_deref(), &mut report).await,
        Request::Ignore { image, region, why } => {
            report.push(
                region,
                image.as_str(),
                Some(image),
                Outcome::Skipped,
                why.as_str(),
            );
            None
        }
    };
    if let Some(mut inventory) = inventory {
        keep_sealed(ctx, &mut inventory, &mut report).await;
        check_keys(ctx, &mut inventory).await;
        let plan = plan::plan(&inventory, &ctx.config, now);
        apply(ctx, plan, wait.then_some(poll), &mut report).await;
    }
    report
}

/// Only sealed images are sources (an unsealed one is reported: copying it would launder
/// a forged `managed-by` into a sealed copy) or count as copies (an unsealed look-alike
/// in a destination is not our copy; its name, if taken, is reported name-squatted when
/// the copy is made). Images shared for adoption are foreign by definition: the adopted
/// copy is what gets sealed.
async fn keep_sealed(ctx: &Context, inv: &mut Inventory, report: &mut RunReport) {
    let deployment = &ctx.config.deployment;
    ctx.progress(&format!(
        "checking the seals of {} source images",
        inv.sources.len()
    ));
    let sources = std::mem::take(&mut inv.sources);
    inv.sources = seal::sealed_only(&ctx.sealer, sources, deployment, Some(report)).await;
    // Cleanup counts sealed images only: the guard judges the same lineage.
    let peers = std::mem::take(&mut inv.peers);
    inv.peers = seal::sealed_only(&ctx.sealer, peers, deployment, None).await;
    for copies in inv.copies.values_mut() {
        let all = std::mem::take(copies);
        *copies = seal::sealed_only(&ctx.sealer, all, deployment, None).await;
    }
}

/// A listing failure as a report item: deferred when retrying later can help.
fn listing_failed(report: &mut RunReport, region: &Region, subject: &str, e: &CloudError) {
    report.push(
        region,
        subject,
        None,
        Outcome::for_error(e),
        format!("could not list: {e}; the next reconcile retries"),
    );
}

fn copies_query(deployment: &str) -> ImageQuery {
    ImageQuery {
        tag_key: Some(key::SOURCE_IMAGE.to_owned()),
        ..ImageQuery::managed_by(deployment)
    }
}

/// The reconcile's inventory: the sources in `regions` (managed regions), the images
/// shared for adoption there, and the copies in every destination of those sources. With
/// `only_dest`, the reconcile of that one destination (a copy slot freed there): the
/// images shared there, the copies there, and a plan narrowed to it
/// ([`Inventory::only_region`]).
async fn reconcile_inventory(
    ctx: &Context,
    regions: &[Region],
    only_dest: Option<&Region>,
    report: &mut RunReport,
) -> Inventory {
    let config = &ctx.config;
    let mut inv = Inventory {
        only_region: only_dest.cloned(),
        ..Inventory::default()
    };
    let mut ids = BTreeSet::new();
    for region in regions {
        ctx.progress(&format!("listing source images in {region}"));
        let ec2 = ctx.cloud.ec2(region);
        // Disabled images too: retention counts them, and the guard must see what cleanup sees.
        // Only managed images: an image the suite did not make (and seal) is never copied,
        // whatever its replicate-to tag says.
        let managed = ImageQuery::managed_by(&config.deployment);
        match all_images(ec2.as_ref(), &managed).await {
            // Copies are listed too (they are managed): the planner never treats them as sources.
            Ok(images) => inv
                .sources
                .extend(images.into_iter().filter(|i| ids.insert(i.id.clone()))),
            Err(e) => listing_failed(report, region, "source images", &e),
        }
        if !config.adopt_from.is_empty() && only_dest.is_none_or(|d| d == region) {
            let q = ImageQuery {
                shared_with_me: true,
                owners: config.adopt_from.clone(),
                page_size: Some(1000),
                ..ImageQuery::default()
            };
            match all_images(ec2.as_ref(), &q).await {
                Ok(images) => inv.shared.extend(images),
                Err(e) => listing_failed(report, region, "images shared with this account", &e),
            }
        }
    }
    let mut dests: BTreeSet<Region> = BTreeSet::new();
    for s in &inv.sources {
        if plan::not_a_source(s, config).is_none() {
            dests.extend(plan::destinations(s, config).unwrap_or_default());
        }
    }
    dests.extend(inv.shared.iter().map(|i| i.region.clone()));
    if let Some(only) = only_dest {
        dests.retain(|d| d == only);
    }
    for region in dests {
        ctx.progress(&format!("listing copies in {region}"));
        list_copies(ctx, &mut inv, &region, copies_query(&config.deployment)).await;
    }
    inv
}

async fn list_copies(ctx: &Context, inv: &mut Inventory, region: &Region, query: ImageQuery) {
    match all_images(ctx.cloud.ec2(region).as_ref(), &query).await {
        Ok(images) => {
            let listed = inv.copies.entry(region.clone()).or_default();
            for image in images {
                if !listed.iter().any(|c| c.id == image.id) {
                    listed.push(image);
                }
            }
        }
        Err(e) => {
            inv.unlisted.insert(region.clone(), (e.kind, e.to_string()));
        }
    }
}

/// Finds an image by id in one region: `Ok(None)` when it does not exist there.
async fn find_image(
    ctx: &Context,
    region: &Region,
    image: &ImageId,
) -> Result<Option<Image>, CloudError> {
    let q = ImageQuery {
        ids: vec![image.clone()],
        ..ImageQuery::default()
    };
    match all_images(ctx.cloud.ec2(region).as_ref(), &q).await {
        Ok(images) => Ok(images.into_iter().find(|i| i.id == *image)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The images of `source`'s lineage in its region, for the retention guard (which judges a
/// source within its whole lineage, as cleanup does: a kept source that is not the newest
/// is still copied, a retired one is not). Only an instance's lineage has other members.
async fn lineage_peers(ctx: &Context, source: &Image) -> Result<Vec<Image>, CloudError> {
    if plan::not_a_source(source, &ctx.config).is_some() {
        return Ok(Vec::new());
    }
    let Some(instance) = source.tag(key::SOURCE_INSTANCE).map(str::trim) else {
        return Ok(Vec::new());
    };
    let q = ImageQuery {
        tag: Some((key::SOURCE_INSTANCE.to_owned(), instance.to_owned())),
        ..ImageQuery::managed_by(&ctx.config.deployment)
    };
    all_images(ctx.cloud.ec2(&source.region).as_ref(), &q).await
}

/// Adds the source's lineage to `inv.peers`; `false` (reported deferred) when it could not
/// be listed: without it the guard could copy what cleanup retires.
async fn add_peers(
    ctx: &Context,
    inv: &mut Inventory,
    source: &Image,
    report: &mut RunReport,
) -> bool {
    match lineage_peers(ctx, source).await {
        Ok(peers) => {
            inv.peers.extend(peers);
            true
        }
        Err(e) => {
            report.push(
                &source.region,
                source.id.as_str(),
                Some(&source.id),
                Outcome::for_error(&e),
                format!("could not list its lineage for the retention guard: {e}; the next reconcile copies it if retention keeps it"),
            );
            false
        }
    }
}

fn is_adoptable(ctx: &Context, image: &Image) -> bool {
    image
        .owner
        .as_ref()
        .is_some_and(|o| ctx.config.adopt_from.contains(o))
}

async fn image_inventory(
    ctx: &Context,
    image: &ImageId,
    region: Option<&Region>,
    from_event: bool,
    report: &mut RunReport,
) -> Option<Inventory> {
    let config = &ctx.config;
    let regions: Vec<Region> = region.map_or_else(|| config.regions.clone(), |r| vec![r.clone()]);
    let mut found = None;
    for r in &regions {
        match find_image(ctx, r, image).await {
            Ok(Some(img)) => {
                found = Some(img);
                break;
            }
            Ok(None) => {}
            Err(e) => {
                listing_failed(report, r, image.as_str(), &e);
                return None;
            }
        }
    }
    let names: Vec<&str> = regions.iter().map(Region::as_str).collect();
    if let Some(copy) = found.as_ref().filter(|i| i.state == ImageState::Available) {
        if let Some(source) = our_copy(ctx, copy).await {
            // One of our copies completed: a copy slot in its region is free. Fill the
            // region: the reconcile of that destination alone.
            report.push(
                &copy.region,
                image.as_str(),
                Some(image),
                Outcome::Skipped,
                format!(
                    "a copy of {source}: copies are never replicated again; a copy slot in {} is free: the copies missing there are requested",
                    copy.region
                ),
            );
            let sources = config.regions.clone();
            return Some(reconcile_inventory(ctx, &sources, Some(&copy.region), report).await);
        }
    }
    let Some(img) = found else {
        let home = regions
            .first()
            .cloned()
            .unwrap_or_else(|| Region::new("unknown"));
        if from_event {
            report.push(
                &home,
                image.as_str(),
                Some(image),
                Outcome::Skipped,
                "no longer exists: nothing to copy",
            );
        } else {
            report.push(
                &home,
                image.as_str(),
                Some(image),
                Outcome::Failed,
                format!(
                    "not found in {}; check the id, or pass --region",
                    names.join(", ")
                ),
            );
        }
        return None;
    };
    if !config.regions.contains(&img.region) && plan::copied_from(&img).is_none() {
        // The reconcile never looks there either: acting on events alone would not converge.
        report.push(
            &img.region,
            image.as_str(),
            Some(image),
            Outcome::Skipped,
            format!(
                "{} is not a managed region (AMI_LIFECYCLE_REGIONS): not replicated from there",
                img.region
            ),
        );
        return None;
    }
    let mut inv = Inventory {
        explain_skips: true,
        ..Inventory::default()
    };
    let dests = if is_adoptable(ctx, &img) {
        let d = vec![img.region.clone()];
        inv.shared.push(img);
        d
    } else {
        let d = if plan::not_a_source(&img, config).is_none() {
            plan::destinations(&img, config).unwrap_or_default()
        } else {
            Vec::new()
        };
        if !d.is_empty() && !add_peers(ctx, &mut inv, &img, report).await {
            return None;
        }
        inv.sources.push(img);
        d
    };
    let lineage = inv
        .sources
        .first()
        .and_then(|s| lineage_copies_query(s, &config.deployment));
    for region in dests {
        let q = ImageQuery {
            owned_by_self: true,
            tag: Some((key::SOURCE_IMAGE.to_owned(), image.to_string())),
            ..ImageQuery::default()
        };
        list_copies(ctx, &mut inv, &region, q).await;
        if let Some(q) = &lineage {
            list_copies(ctx, &mut inv, &region, q.clone()).await;
        }
    }
    Some(inv)
}

/// The source of `image` when it is provably one of our copies (replica or adoption) in a
/// region the deployment manages: a copy (`source-image` tag and EC2's `SourceImageId`),
/// managed by this deployment, and sealed by it (tags confer nothing).
async fn our_copy(ctx: &Context, image: &Image) -> Option<ImageId> {
    let deployment = &ctx.config.deployment;
    let source = image.tag(key::SOURCE_IMAGE).map(ImageId::new)?;
    if image.source.is_none()
        || !tags::is_managed_by(&image.tags, deployment)
        || !ctx.config.all_regions().contains(&image.region)
    {
        return None;
    }
    let sealed = seal::sealed_only(&ctx.sealer, vec![image.clone()], deployment, None).await;
    (!sealed.is_empty()).then_some(source)
}

/// The copies of `source`'s lineage in a destination (managed, carrying its instance):
/// the destination's retention is judged over them ([`plan::plan`]).
fn lineage_copies_query(source: &Image, deployment: &str) -> Option<ImageQuery> {
    let instance = source.tag(key::SOURCE_INSTANCE)?.trim();
    Some(ImageQuery {
        tag: Some((key::SOURCE_INSTANCE.to_owned(), instance.to_owned())),
        tag_key: Some(key::SOURCE_IMAGE.to_owned()),
        ..ImageQuery::managed_by(deployment)
    })
}

async fn failed_inventory(
    ctx: &Context,
    image: &ImageId,
    region: &Region,
    error: Option<&str>,
    report: &mut RunReport,
) -> Option<Inventory> {
    let config = &ctx.config;
    let copy = match find_image(ctx, region, image).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            report.push(
                region,
                image.as_str(),
                Some(image),
                Outcome::Skipped,
                "failed image no longer exists: nothing to remove",
            );
            return None;
        }
        Err(e) => {
            listing_failed(report, region, image.as_str(), &e);
            return None;
        }
    };
    let source = copy.tag(key::SOURCE_IMAGE).map(ImageId::new);
    let (true, Some(source)) = (tags::is_managed_by(&copy.tags, &config.deployment), source) else {
        report.push(
            region,
            image.as_str(),
            Some(image),
            Outcome::Skipped,
            format!(
                "failed, but not a copy made by {}: left alone",
                config.deployment
            ),
        );
        return None;
    };
    if copy.state != ImageState::Failed {
        report.push(
            region,
            source.as_str(),
            Some(image),
            Outcome::Skipped,
            format!(
                "copy {image} is {}, not failed: nothing to do",
                copy.state.as_str()
            ),
        );
        return None;
    }
    report.push(
        region,
        source.as_str(),
        Some(image),
        Outcome::Failed,
        format!(
            "copy {image} of {source} failed: {}; copied again with a fresh token while retention keeps {source}",
            error.unwrap_or("no error message")
        ),
    );
    let source_region = copy
        .tag(key::SOURCE_REGION)
        .map(Region::new)
        .or_else(|| copy.source.as_ref().map(|(_, r)| r.clone()))
        .unwrap_or_else(|| region.clone());
    let mut inv = Inventory {
        only_region: Some(region.clone()),
        explain_skips: true,
        ..Inventory::default()
    };
    match find_image(ctx, &source_region, &source).await {
        Ok(Some(src)) if copy.tag(key::SOURCE_ACCOUNT).is_some() || is_adoptable(ctx, &src) => {
            inv.shared.push(src)
        }
        Ok(Some(src)) => {
            if !add_peers(ctx, &mut inv, &src, report).await {
                return None;
            }
            inv.sources.push(src);
        }
        Ok(None) => {
            inv.gone_sources.insert(source.clone());
        }
        Err(e) => {
            listing_failed(report, &source_region, source.as_str(), &e);
            return None;
        }
    }
    let q = ImageQuery {
        owned_by_self: true,
        tag: Some((key::SOURCE_IMAGE.to_owned(), source.to_string())),
        ..ImageQuery::default()
    };
    list_copies(ctx, &mut inv, region, q).await;
    if let Some(q) = inv
        .sources
        .first()
        .and_then(|s| lineage_copies_query(s, &config.deployment))
    {
        list_copies(ctx, &mut inv, region, q).await;
    }
    Some(inv)
}

/// Checks each configured replica key this run may use, once.
async fn check_keys(ctx: &Context, inv: &mut Inventory) {
    let mut regions: BTreeSet<Region> = inv.copies.keys().cloned().collect();
    regions.extend(inv.unlisted.keys().cloned());
    for region in regions {
        let Some(key_ref) = ctx.config.replica_keys.get(&region) else {
            continue;
        };
        let status = match ctx.cloud.keys(&region).describe_key(key_ref).await {
            Ok(k) if k.enabled => KeyStatus::Usable { arn: k.arn },
            Ok(k) => KeyStatus::Unusable(format!("({}) is not enabled", k.arn)),
            Err(e) if e.is_retryable() => KeyStatus::Unknown(e.to_string()),
            Err(e) if e.kind == ErrorKind::NotFound => {
                KeyStatus::Unusable(format!("does not exist in {region}"))
            }
            Err(e) => KeyStatus::Unusable(format!("cannot be used: {e}")),
        };
        inv.keys.insert(region, status);
    }
}

/// Applies the plan: decisions and status tags, then the copies — each destination on its
/// own, all at once (each has its own CopyImage bucket and concurrent-copy cap) — then the
/// removals. `wait` (the poll interval): a copy refused for the cap waits for a slot
/// ([`Slots`]); without it, the copy and the rest of its destination's are deferred.
async fn apply(
    ctx: &Context,
    plan: plan::Plan,
    wait: Option<std::time::Duration>,
    report: &mut RunReport,
) {
    for d in plan.decisions {
        report.push(&d.region, d.subject, d.image.as_ref(), d.outcome, d.reason);
    }
    if !ctx.dry_run() {
        for (region, image, status) in &plan.statuses {
            let tags: crate::model::Tags =
                [(key::REPLICATE_STATUS.to_owned(), status.clone())].into();
            if let Err(e) = ctx.cloud.ec2(region).set_tags(image.as_str(), &tags).await {
                report.push(
                    region,
                    image.as_str(),
                    Some(image),
                    Outcome::for_error(&e),
                    format!("could not write {}: {e}", key::REPLICATE_STATUS),
                );
            }
        }
    }
    if ctx.dry_run() {
        for copy in plan.copies {
            report.push(
                &copy.dest,
                copy.request.source_image.as_str(),
                None,
                Outcome::Planned,
                describe(&copy),
            );
            for f in &copy.supersedes {
                report.push(
                    &copy.dest,
                    f.as_str(),
                    Some(f),
                    Outcome::Planned,
                    "would remove this failed copy once the new copy is requested",
                );
            }
        }
    } else {
        let mut by_dest: BTreeMap<Region, Vec<CopyPlan>> = BTreeMap::new();
        for copy in plan.copies {
            by_dest.entry(copy.dest.clone()).or_default().push(copy);
        }
        let lanes = by_dest
            .into_iter()
            .map(|(dest, copies)| copy_lane(ctx, dest, copies, wait));
        for lines in futures::future::join_all(lanes).await {
            lines.into_report(report);
        }
    }
    let mut lines = Lines::default();
    for removal in plan.removals {
        if ctx.dry_run() {
            lines.push(
                &removal.region,
                removal.image.as_str(),
                Some(&removal.image),
                Outcome::Planned,
                format!("would remove: {}", removal.reason),
            );
        } else if ctx.deadline.near() {
            defer_for_deadline(&mut lines, &removal.region, &removal.image);
        } else {
            remove(ctx, &removal, &mut lines).await;
        }
    }
    lines.into_report(report);
}

/// Copy requests one waiting run keeps in flight per destination (each seal and
/// CopyImage, the CopyImage still taking its pacer token first). At a CopyImage bucket of
/// a few tokens per second, a request's own time (KMS seal, the call's latency) is of the
/// order of a token's interval: requested one after another, that time is lost from the
/// pace; a few at once overlap it with waiting for the next token. A few, not more: before
/// the cap is learned, each request in flight may be refused for it (one call each).
pub(super) const IN_FLIGHT: usize = 4;

/// How many copy requests a waiting run with more copies for a destination than EC2's
/// CopyImage burst makes one at a time there until it learns the cap: the burst (the
/// bucket's capacity). While the bucket holds its burst a request waits for no token, so
/// one at a time costs such a run nothing (it is paced by the bucket all the same, and
/// the tokens not spent yet stay in the bucket), and a cap reached then is learned from
/// one refused call instead of [`IN_FLIGHT`] (each spends a token).
fn probe_len(copies: usize) -> usize {
    let burst = crate::pacing::Bucket::CopyImage.limits().0 as usize;
    if copies > burst {
        burst
    } else {
        0
    }
}

/// A copy EC2 accepted, not yet checked to exist: the plan, the image EC2 answered with,
/// and the earlier attempts whose token returned a copy that is gone: (attempt, image).
struct Made {
    copy: CopyPlan,
    id: ImageId,
    spent: Vec<(u32, ImageId)>,
}

/// A copy to request, with the attempts already spent on lost copies.
type Queued = (CopyPlan, Vec<(u32, ImageId)>);

/// The copies into one destination, in plan order. A waiting run keeps up to
/// [`IN_FLIGHT`] requests going at once (one at a time while it probes for the cap,
/// [`probe_len`]), never more than the learned cap allows (the copies pending in the
/// region plus ours being requested, [`Slots`]); a copy refused for the concurrent-copy
/// cap is requested again once a slot frees (bounded by the deadline). An event's run requests
/// one at a time and at the first refusal defers it and the rest without asking EC2 again:
/// the next copy to complete there starts them (its `available` event fills the region),
/// the reconcile being the safety net. Whether each accepted copy exists is checked once
/// all are requested ([`verify`]: the listings of pending copies, then at most one listing
/// of the destination, not one call per copy);
/// a token that gave back a lost copy is requested again under the next attempt.
async fn copy_lane(
    ctx: &Context,
    dest: Region,
    copies: Vec<CopyPlan>,
    wait: Option<std::time::Duration>,
) -> Lines {
    let mut out = Lines::default();
    let mut lane = Lane {
        slots: Slots::new(dest.clone(), wait.unwrap_or_default()),
        dest,
        probe: probe_len(copies.len()),
        sent: 0,
        wait: wait.is_some(),
        stopped: None,
    };
    let mut queue: VecDeque<Queued> = copies.into_iter().map(|c| (c, Vec::new())).collect();
    while !queue.is_empty() {
        let made = lane.request_all(ctx, &mut queue, &mut out).await;
        queue.extend(verify(ctx, &lane.dest, made, &mut lane.slots, &mut out).await);
    }
    out
}

/// One destination's requests as they go.
struct Lane {
    dest: Region,
    slots: Slots,
    /// Requests made one at a time until the cap is learned ([`probe_len`]).
    probe: usize,
    /// Copy requests made so far (refused ones too).
    sent: usize,
    /// Whether a copy refused for the cap waits for a slot (else it is deferred).
    wait: bool,
    /// Why the rest of this destination's copies are not requested, once that is so.
    stopped: Option<String>,
}

impl Lane {
    /// Requests in flight at most: one for an event's run, one while probing for the
    /// cap ([`probe_len`]), else [`IN_FLIGHT`].
    fn window(&self) -> usize {
        if !self.wait || (self.sent < self.probe && !self.slots.learned()) {
            1
        } else {
            IN_FLIGHT
        }
    }

    /// Requests every copy in `queue` (emptied), returning those EC2 accepted.
    async fn request_all(
        &mut self,
        ctx: &Context,
        queue: &mut VecDeque<Queued>,
        out: &mut Lines,
    ) -> Vec<Made> {
        let dest = self.dest.clone();
        let mut flying = FuturesUnordered::new();
        let mut made = Vec::new();
        loop {
            while flying.len() < self.window() {
                let Some((copy, spent)) = queue.pop_front() else {
                    break;
                };
                if let Some(why) = &self.stopped {
                    out.push(
                        &dest,
                        copy.request.source_image.as_str(),
                        None,
                        Outcome::Deferred,
                        why.clone(),
                    );
                    continue;
                }
                if ctx.deadline.near() {
                    defer_for_deadline(out, &dest, &copy.request.source_image);
                    continue;
                }
                // Requests in flight hold a slot as much as pending copies do; a count at
                // the cap is listed again (copies complete unannounced) before stopping.
                if self.wait && !self.slots.refresh_if_due(ctx, flying.len()).await {
                    queue.push_front((copy, spent));
                    break;
                }
                self.sent += 1;
                flying.push(async move {
                    let requested = request_copy(ctx, &copy).await;
                    (copy, spent, requested)
                });
            }
            let Some((copy, spent, requested)) = flying.next().await else {
                if queue.is_empty() {
                    return made;
                }
                // Nothing in flight and no room: wait for a copy there to complete.
                if let Err(why) = self.slots.wait(ctx).await {
                    if why.starts_with("deadline") {
                        out.incomplete("deadline near: the next run continues");
                    }
                    self.stopped = Some(format!("{why}: not requested; the next run copies it"));
                }
                continue;
            };
            match requested {
                Requested::Made(id) => {
                    self.slots.requested(&id);
                    made.push(Made { copy, id, spent });
                }
                Requested::NotMade(lines) => out.append(lines),
                Requested::AtCap(e) if self.wait => {
                    self.slots.refused(ctx).await;
                    ctx.progress(&format!("{e}: waiting for a copy in {dest} to complete"));
                    queue.push_front((copy, spent));
                }
                Requested::AtCap(e) => {
                    out.push(
                        &dest,
                        copy.request.source_image.as_str(),
                        None,
                        Outcome::Deferred,
                        format!("{e}; the next copy to complete in {dest} starts it (its available event), else the next reconcile"),
                    );
                    self.stopped = Some(format!("not requested: the concurrent-copy cap in {dest} is reached ({e}); the next copy to complete there starts it (its available event), else the next reconcile"));
                }
            }
        }
    }
}

/// What became of one copy request.
enum Requested {
    /// EC2 answered with this copy (made now, or earlier under the same token).
    Made(ImageId),
    /// Not made, and reported in these lines (failed, deferred for throttling, skipped…).
    NotMade(Lines),
    /// Refused for the destination's concurrent-copy cap, not reported: the caller waits
    /// or defers.
    AtCap(CloudError),
}

/// How many more attempts one run tries when a `ClientToken` gives back a copy that no
/// longer exists (each lost copy of a (source, destination) spends one token).
const LOST_RETRIES: u32 = 8;

/// Waits before EC2's answer "no such image" about a copy just requested is believed:
/// DescribeImages is eventually consistent, and a new copy may not be visible at once.
const NEW_COPY_WAITS_MS: [u64; 3] = [500, 1000, 2000];

/// Whether the copy EC2 answered CopyImage with exists. A deregistered one does not (a
/// token spent on a lost copy); one not found is asked about again a few times first (a
/// copy just made may not be visible yet: a wrong "gone" would make a second copy).
async fn copy_exists(ctx: &Context, region: &Region, id: &ImageId) -> Result<bool, CloudError> {
    for wait in std::iter::once(0).chain(NEW_COPY_WAITS_MS) {
        if wait > 0 {
            if ctx.deadline.near() {
                // No time to wait: taken as made; the next reconcile sees whether it is.
                return Ok(true);
            }
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        }
        match find_image(ctx, region, id).await? {
            Some(img) => return Ok(img.state != ImageState::Deregistered),
            None => continue,
        }
    }
    Ok(false)
}

/// Requests one copy, sealed (the seal names the account the copy is made in, read once
/// per cloud).
async fn request_copy(ctx: &Context, copy: &CopyPlan) -> Requested {
    ctx.progress(&format!(
        "copying {} to {}",
        copy.request.source_image, copy.dest
    ));
    let mut request = copy.request.clone();
    let mut lines = Lines::default();
    let sealed = match ctx.cloud.account().await {
        Ok(owner) => {
            seal::sealed_tags(
                &ctx.sealer,
                &ctx.config.deployment,
                &owner,
                &copy.dest,
                &request.name,
                &request.tags,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match sealed {
        Ok((tags, snapshot_tags)) => {
            request.tags = tags;
            request.snapshot_tags = snapshot_tags;
        }
        Err(e) => {
            lines.push(
                &copy.dest,
                copy.request.source_image.as_str(),
                None,
                Outcome::for_error(&e),
                format!("not copied: the copy could not be sealed ({e})"),
            );
            return Requested::NotMade(lines);
        }
    }
    match ctx.cloud.ec2(&copy.dest).copy_image(&request).await {
        Ok(id) => Requested::Made(id),
        Err(e) if e.kind == ErrorKind::ResourceLimit => Requested::AtCap(e),
        Err(e) => {
            let (outcome, reason) = match e.kind {
                k if k.is_retryable() => (Outcome::Deferred, format!("{e}; the next reconcile copies it")),
                ErrorKind::NotFound => (Outcome::Skipped, format!("source no longer exists: {e}")),
                ErrorKind::Duplicate => (
                    Outcome::NameSquatted,
                    format!(
                        "{e}: an image named {:?} exists in {} but is not a copy of {} made by {}; rename or deregister it",
                        copy.request.name, copy.dest, copy.request.source_image, ctx.config.deployment
                    ),
                ),
                _ => (Outcome::Failed, e.to_string()),
            };
            lines.push(
                &copy.dest,
                copy.request.source_image.as_str(),
                None,
                outcome,
                reason,
            );
            Requested::NotMade(lines)
        }
    }
}

/// Checks that the copies EC2 accepted exist — a token EC2 has seen returns its first copy
/// again, even a deregistered one — reports each copy, removes the failed copies it
/// supersedes, and returns the lost ones to request again under their next attempt (a
/// fresh token). A copy a listing of the pending copies in `dest` showed ([`Slots::seen`]:
/// the slot polls while the run went on, then one more listing now, small: the copies
/// made last) exists; the rest are looked for in one listing of our copies in `dest`
/// (those not in it, e.g. not visible yet, are asked about one by one). A listing that
/// fails leaves the copies unverified: the next reconcile sees whether they exist.
async fn verify(
    ctx: &Context,
    dest: &Region,
    made: Vec<Made>,
    slots: &mut Slots,
    out: &mut Lines,
) -> Vec<Queued> {
    if made.is_empty() {
        return Vec::new();
    }
    ctx.progress(&format!(
        "checking that the {} copies made in {dest} exist",
        made.len()
    ));
    if made.iter().any(|m| !slots.seen(&m.id)) {
        slots.refresh(ctx).await;
    }
    let listed: Option<BTreeMap<ImageId, ImageState>> = if made.iter().all(|m| slots.seen(&m.id)) {
        Some(BTreeMap::new())
    } else {
        all_images(
            ctx.cloud.ec2(dest).as_ref(),
            &copies_query(&ctx.config.deployment),
        )
        .await
        .ok()
        .map(|images| images.into_iter().map(|i| (i.id, i.state)).collect())
    };
    let mut again = Vec::new();
    for Made {
        copy,
        id,
        mut spent,
    } in made
    {
        let exists = match listed.as_ref().map(|l| l.get(&id)) {
            _ if slots.seen(&id) => Some(true),
            Some(Some(state)) => Some(*state != ImageState::Deregistered),
            Some(None) => copy_exists(ctx, dest, &id).await.ok(),
            None => None,
        };
        if exists == Some(false) {
            if spent.len() < LOST_RETRIES as usize {
                spent.push((copy.attempt, id));
                again.push((copy.next_attempt(&ctx.config.deployment), spent));
            } else {
                out.push(
                    &copy.dest,
                    copy.request.source_image.as_str(),
                    Some(&id),
                    Outcome::Failed,
                    format!(
                        "the ClientTokens of {} attempts returned copies that no longer exist (last {id}); the next reconcile goes on from attempt 1",
                        spent.len() + 1
                    ),
                );
            }
            continue;
        }
        copied(ctx, &copy, &id, &spent, out).await;
    }
    again
}

/// Reports a copy made (or not verified: the next reconcile sees whether it exists) and
/// removes the failed copies it supersedes.
async fn copied(
    ctx: &Context,
    copy: &CopyPlan,
    id: &ImageId,
    spent: &[(u32, ImageId)],
    out: &mut Lines,
) {
    let mut reason = describe(copy);
    if !spent.is_empty() {
        let gone: Vec<String> = spent
            .iter()
            .map(|(n, id)| format!("attempt {n}: {id}"))
            .collect();
        reason.push_str(&format!(
            "; earlier tokens returned copies that no longer exist ({})",
            gone.join(", ")
        ));
    }
    out.push(
        &copy.dest,
        copy.request.source_image.as_str(),
        Some(id),
        Outcome::Copied,
        reason,
    );
    for f in &copy.supersedes {
        let removal = Removal {
            region: copy.dest.clone(),
            image: f.clone(),
            source: copy.request.source_image.clone(),
            reason: format!("failed copy superseded by {id}"),
        };
        remove(ctx, &removal, out).await;
    }
}

fn defer_for_deadline(report: &mut Lines, region: &Region, subject: &ImageId) {
    report.incomplete("deadline near: the next run continues");
    report.push(
        region,
        subject.as_str(),
        None,
        Outcome::Deferred,
        "deadline near: the next reconcile does it",
    );
}

fn describe(copy: &CopyPlan) -> String {
    let what = match copy.kind {
        CopyKind::Replica => format!(
            "copy of {} from {}",
            copy.request.source_image, copy.request.source_region
        ),
        CopyKind::Adoption => format!(
            "adoption of {} (account {})",
            copy.request.source_image,
            copy.request
                .tags
                .get(key::SOURCE_ACCOUNT)
                .map_or("?", String::as_str)
        ),
    };
    format!(
        "{what} as {:?}, attempt {}, key {}, token {}",
        copy.request.name,
        copy.attempt,
        copy.request
            .kms_key
            .as_ref()
            .map_or("(source encryption)", |k| k.as_str()),
        copy.request.client_token
    )
}

async fn remove(ctx: &Context, removal: &Removal, report: &mut Lines) {
    match ctx
        .cloud
        .ec2(&removal.region)
        .deregister(&removal.image, true)
        .await
    {
        Ok(d) => {
            let mut reason = format!(
                "{}; deregistered, {} snapshot(s) deleted",
                removal.reason,
                d.snapshots_deleted.len()
            );
            if !d.snapshots_kept.is_empty() {
                let kept: Vec<String> = d
                    .snapshots_kept
                    .iter()
                    .map(|(s, c)| format!("{s} ({c})"))
                    .collect();
                reason.push_str(&format!(", kept {}", kept.join(", ")));
            }
            report.push(
                &removal.region,
                removal.image.as_str(),
                Some(&removal.image),
                Outcome::Deleted,
                reason,
            );
        }
        Err(e) if e.kind == ErrorKind::NotFound => {
            report.push(
                &removal.region,
                removal.image.as_str(),
                Some(&removal.image),
                Outcome::AlreadyExisted,
                "failed copy already removed",
            );
        }
        Err(e) => {
            report.push(
                &removal.region,
                removal.image.as_str(),
                Some(&removal.image),
                Outcome::for_error(&e),
                format!(
                    "could not remove the failed copy of {}: {e}",
                    removal.source
                ),
            );
        }
    }
}

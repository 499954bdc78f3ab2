//! Applies create-image plans through the ports: read the inventory of every managed
//! region, plan, CreateImage (tags at creation on image and snapshots), continue the next
//! reboot wave later, and clean up after images that ended `failed`.

use time::OffsetDateTime;

use super::plan::{self, check_schedule, Action, Inventory, Plan};
use super::quiesce::{self, QuiesceJob};
use super::{CreateRequest, ScheduleRun};
use crate::context::Context;
use crate::error::{CloudError, ErrorKind};
use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Image, ImageId, InstanceId, Region};
use crate::ports::{all_images, all_snapshots, Ec2, ImageQuery, NewImage, SnapshotQuery};
use crate::report::{Outcome, RunReport};
use crate::seal;
use crate::tags::{self, key};
use crate::time_util::rfc3339;

pub const FUNCTION: &str = "create-image";

/// The result of one invocation: the report, and whether this slot still has work that a
/// later invocation must do (a later reboot wave, or deferred items).
#[derive(Debug, Clone)]
pub struct WaveRun {
    pub report: RunReport,
    pub more: bool,
}

/// Runs one invocation and returns its report (see [`run_wave`]).
pub async fn run(ctx: &Context, request: CreateRequest, now: OffsetDateTime) -> RunReport {
    run_wave(ctx, request, now).await.report
}

/// Runs one invocation: one wave of a slot (sending the continuation when waves remain and
/// a continuation queue is configured), or the clean-up of a failed image.
pub async fn run_wave(ctx: &Context, request: CreateRequest, now: OffsetDateTime) -> WaveRun {
    let mut report = RunReport::new(FUNCTION, ctx.dry_run(), now);
    match request {
        CreateRequest::Schedule(r) => {
            let more = run_slot(ctx, &r, 0, now, &mut report).await;
            WaveRun { report, more }
        }
        CreateRequest::Continue(r, round) => {
            let more = run_slot(ctx, &r, round, now, &mut report).await;
            WaveRun { report, more }
        }
        CreateRequest::ImageFailed {
            region,
            image,
            error,
        } => {
            failed_image(ctx, &region, &image, error.as_deref(), &mut report).await;
            WaveRun {
                report,
                more: false,
            }
        }
    }
}

fn home(ctx: &Context) -> Region {
    ctx.config
        .regions
        .first()
        .cloned()
        .unwrap_or_else(|| Region::new("us-east-1"))
}

fn slot_label(r: &ScheduleRun) -> String {
    format!("schedule {} slot {}", r.schedule, rfc3339(r.slot))
}

/// Reads one region: its scheduled instances and the images of the slot.
async fn read_region(
    ctx: &Context,
    ec2: &dyn Ec2,
    r: &ScheduleRun,
) -> Result<Inventory, CloudError> {
    let instances = ec2.scheduled_instances().await?;
    let query = ImageQuery {
        owned_by_self: true,
        tag: Some((key::SLOT.to_owned(), rfc3339(r.slot))),
        ..ImageQuery::default()
    };
    let mut slot_images: Vec<Image> = all_images(ec2, &query)
        .await?
        .into_iter()
        .filter(|i| {
            tags::is_managed_by(&i.tags, &ctx.config.deployment)
                && i.tag(key::SCHEDULE) == Some(r.schedule.as_str())
        })
        .collect();
    // Images named after the slot but not (or differently) tagged still hold the name.
    let names: Vec<String> = instances
        .iter()
        .map(|i| plan::image_name(&ctx.config.deployment, &i.id, r))
        .filter(|n| !slot_images.iter().any(|img| &img.name == n))
        .collect();
    for chunk in names.chunks(200) {
        let query = ImageQuery {
            owned_by_self: true,
            names: chunk.to_vec(),
            ..ImageQuery::default()
        };
        slot_images.extend(all_images(ec2, &query).await?);
    }
    // Which of them the suite made: only a sealed image stands for the slot. (A seal that
    // cannot be checked now counts as not sealed: the image is not made again, it is
    // reported name-squatted and the next run looks again.)
    let sealed: BTreeSet<ImageId> = seal::sealed_only(
        &ctx.sealer,
        slot_images.clone(),
        &ctx.config.deployment,
        None,
    )
    .await
    .into_iter()
    .map(|i| i.id)
    .collect();
    let unsealed = slot_images
        .iter()
        .filter(|i| !sealed.contains(&i.id))
        .map(|i| i.id.clone())
        .collect();
    // When the instances this slot may reboot were last rebooted for an image
    // (REBOOT_MIN_INTERVAL), from EC2's SourceInstanceId.
    let mut last_reboot: BTreeMap<InstanceId, OffsetDateTime> = BTreeMap::new();
    let rebooting: Vec<InstanceId> = instances
        .iter()
        .filter(|i| plan::may_reboot(i, r))
        .map(|i| i.id.clone())
        .collect();
    if ctx.config.reboot_min_interval_minutes > 0 {
        for chunk in rebooting.chunks(200) {
            let query = ImageQuery {
                owned_by_self: true,
                source_instances: chunk.to_vec(),
                page_size: Some(crate::ports::MAX_PAGE),
                ..ImageQuery::default()
            };
            for image in all_images(ec2, &query).await? {
                if let (Some(instance), Some(at)) =
                    (&image.source_instance, plan::reboot_time(&image))
                {
                    let e = last_reboot.entry(instance.clone()).or_insert(at);
                    *e = (*e).max(at);
                }
            }
        }
    }
    // The status checks of the reboot groups' running members: a member rebooted for the
    // slot holds its group back until both are ok (health-gated waves).
    let grouped: Vec<InstanceId> = instances
        .iter()
        .filter(|i| i.tags.contains_key(key::REBOOT_GROUP))
        .map(|i| i.id.clone())
        .collect();
    let health = if grouped.is_empty() {
        BTreeMap::new()
    } else {
        ec2.health(&grouped)
            .await?
            .into_iter()
            .map(|h| (h.id.clone(), h))
            .collect()
    };
    Ok(Inventory {
        instances,
        slot_images,
        unsealed,
        last_reboot,
        health,
    })
}

/// Reads every managed region for slot `r` (instances, the slot's images, recent reboots);
/// a region that cannot be read is reported, and `true` says a retry can help.
pub(super) async fn read_inventory(
    ctx: &Context,
    r: &ScheduleRun,
    report: &mut RunReport,
) -> (Inventory, bool) {
    let mut more = false;
    let mut inventory = Inventory::default();
    for region in &ctx.config.regions {
        ctx.progress(&format!(
            "reading instances and {} images in {region}",
            slot_label(r)
        ));
        let ec2 = ctx.cloud.ec2(region);
        match read_region(ctx, ec2.as_ref(), r).await {
            Ok(inv) => {
                inventory.instances.extend(inv.instances);
                inventory.slot_images.extend(inv.slot_images);
                inventory.unsealed.extend(inv.unsealed);
                inventory.last_reboot.extend(inv.last_reboot);
                inventory.health.extend(inv.health);
            }
            Err(e) if e.is_retryable() => {
                more = true;
                report.push(
                    region,
                    region.to_string(),
                    None,
                    Outcome::Deferred,
                    format!("could not read the region ({e}); the continuation retries it"),
                );
            }
            Err(e) => {
                report.push(
                    region,
                    region.to_string(),
                    None,
                    Outcome::Failed,
                    format!("could not read the region: {e}; its instances were not imaged"),
                );
            }
        }
    }
    (inventory, more)
}

/// One wave of a slot. Returns whether work remains for the slot.
pub(super) async fn run_slot(
    ctx: &Context,
    r: &ScheduleRun,
    round: u32,
    now: OffsetDateTime,
    report: &mut RunReport,
) -> bool {
    if let Err(reason) = check_schedule(r, &ctx.config) {
        report.push(
            &home(ctx),
            format!("schedule {}", r.schedule),
            None,
            Outcome::Failed,
            reason,
        );
        return false;
    }
    let (inventory, mut more) = read_inventory(ctx, r, report).await;
    let plan = plan::plan(r, &inventory, &ctx.config, now);
    more |= plan.waves_remain();
    if ctx.dry_run() {
        report_dry_run(&plan, report);
    } else {
        more |= apply(ctx, &plan, report).await;
    }
    let waiting = plan
        .items
        .iter()
        .filter(|i| matches!(i.action, Action::Wait { .. }))
        .count();
    report.metrics.insert("waiting".to_owned(), waiting as f64);
    if more && !ctx.dry_run() {
        if round >= MAX_CONTINUATION_ROUNDS {
            report.push(
                &home(ctx),
                slot_label(r),
                None,
                Outcome::Failed,
                format!(
                    "the slot still has work after {round} continuations; stopped (a stuck wave or a lasting quota or throttling): see the deferred items, then finish it with amictl create-images --schedule {} --slot {}",
                    r.schedule,
                    rfc3339(r.slot)
                ),
            );
            return false;
        }
        continue_later(ctx, r, round + 1, report).await;
    }
    more
}

/// The most continuations one slot sends before it is reported failed: at the default
/// 60 s delay, 4 hours (longer than [`plan::MAX_WAVE_WAIT`]), so a wave that can finish
/// does, and a lasting quota or throttling never loops for ever.
pub const MAX_CONTINUATION_ROUNDS: u32 = 240;

fn squatted_text(name: &str, image: &ImageId) -> String {
    format!(
        "the slot's image name {name} is taken by {image}, which the suite did not make (no valid seal): nothing imaged. Find out who made it; deregister it to let the slot be imaged"
    )
}

fn note_text(note: &Option<String>) -> String {
    note.as_ref().map(|n| format!("; {n}")).unwrap_or_default()
}

pub(super) fn wave_text(wave: &Option<plan::Wave>) -> String {
    match wave {
        Some(w) => format!(", reboot group {} wave {} of {}", w.group, w.number, w.of),
        None => String::new(),
    }
}

fn wait_text(name: &str, wave: &plan::Wave, blocked_by: &[crate::model::InstanceId]) -> String {
    let after = if blocked_by.is_empty() {
        "after the waves before it".to_owned()
    } else {
        let ids: Vec<String> = blocked_by.iter().map(ToString::to_string).collect();
        format!(
            "when {} {} running again with both status checks ok",
            ids.join(", "),
            if ids.len() == 1 { "is" } else { "are" }
        )
    };
    format!(
        "{name}: reboot group {} wave {} of {}, {after}",
        wave.group, wave.number, wave.of
    )
}

/// Items every plan reports the same way, dry run or not. Returns `true` if handled.
fn report_settled(item: &plan::PlanItem, report: &mut RunReport) -> bool {
    let (region, subject) = (&item.region, item.instance.as_str());
    match &item.action {
        Action::Exists { image, state } => {
            report.push(region, subject, Some(image), Outcome::AlreadyExisted, format!("the slot's image exists ({})", state.as_str()));
        }
        Action::ImageFailed { image } => report.push(
            region,
            subject,
            Some(image),
            Outcome::Failed,
            "the slot's image ended failed; the failed-image clean-up deregisters it, then the slot can be run again",
        ),
        Action::NameSquatted { image, name } => report.push(
            region,
            subject,
            Some(image),
            Outcome::NameSquatted,
            squatted_text(name, image),
        ),
        Action::Skip { reason } => report.push(region, subject, None, Outcome::Skipped, reason.clone()),
        Action::Fail { reason } => report.push(region, subject, None, Outcome::Failed, reason.clone()),
        Action::Create { .. } | Action::Wait { .. } => return false,
    }
    true
}

fn report_dry_run(plan: &Plan, report: &mut RunReport) {
    for item in &plan.items {
        if report_settled(item, report) {
            continue;
        }
        let reason = match &item.action {
            Action::Create {
                request,
                consistency,
                wave,
                note,
                quiesce,
            } => format!(
                "would {}create {} ({}{}{}){}",
                quiesce.as_ref().map_or_else(String::new, |q| format!(
                    "freeze {} through Systems Manager, then ",
                    if q.mounts.is_empty() {
                        "nothing but the hooks".to_owned()
                    } else {
                        q.mounts.join(",")
                    }
                )),
                request.name,
                consistency.as_str(),
                wave_text(wave),
                if request.exclude_devices.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", without {}",
                        request
                            .exclude_devices
                            .iter()
                            .map(|d| d.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                },
                note_text(note)
            ),
            Action::Wait {
                name,
                wave,
                blocked_by,
            } => format!("would create {}", wait_text(name, wave, blocked_by)),
            _ => continue,
        };
        report.push(
            &item.region,
            item.instance.as_str(),
            None,
            Outcome::Planned,
            reason,
        );
    }
}

/// Issues the plan's CreateImage calls. Returns `true` if some were deferred.
async fn apply(ctx: &Context, plan: &Plan, report: &mut RunReport) -> bool {
    let mut deferred = false;
    let mut quiesced: Vec<QuiesceJob> = Vec::new();
    for item in &plan.items {
        if report_settled(item, report) {
            continue;
        }
        let (region, subject) = (&item.region, item.instance.as_str());
        match &item.action {
            Action::Wait {
                name,
                wave,
                blocked_by,
            } => {
                report.push(
                    region,
                    subject,
                    None,
                    Outcome::Deferred,
                    wait_text(name, wave, blocked_by),
                );
            }
            Action::Create {
                request,
                consistency,
                wave,
                note,
                quiesce,
            } => {
                if ctx.deadline.near() {
                    deferred = true;
                    report.incomplete = Some(
                        "the invocation's deadline is near; the continuation does the rest"
                            .to_owned(),
                    );
                    report.push(
                        region,
                        subject,
                        None,
                        Outcome::Deferred,
                        format!("{}: deadline near, left to the continuation", request.name),
                    );
                    continue;
                }
                if let Some(q) = quiesce {
                    quiesced.push(QuiesceJob {
                        region: region.clone(),
                        instance: item.instance.clone(),
                        request: request.clone(),
                        wave: wave.clone(),
                        plan: q.clone(),
                    });
                    continue;
                }
                let text = format!(
                    "{} ({}{}){}",
                    request.name,
                    consistency.as_str(),
                    wave_text(wave),
                    note_text(note)
                );
                deferred |=
                    create_one(ctx, region, subject, request, text, report).await == Made::Deferred;
            }
            _ => {}
        }
    }
    // Quiesced instances last, QUIESCE_CONCURRENCY at a time: each waits for its freeze.
    deferred |= quiesce::run_jobs(ctx, quiesced, report).await;
    deferred
}

/// What one CreateImage came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Made {
    Created(ImageId),
    Existed,
    Deferred,
    Failed,
}

/// CreateImage for one instance, sealed at creation, reported into `report` (`text` says
/// what was made); a taken name is looked up (ours: already existed; not sealed:
/// name-squatted).
pub(crate) async fn create_one(
    ctx: &Context,
    region: &Region,
    subject: &str,
    request: &NewImage,
    text: String,
    report: &mut RunReport,
) -> Made {
    ctx.progress(&format!("CreateImage {} in {region}", request.name));
    let ec2 = ctx.cloud.ec2(region);
    // Sealed at creation: the image is never visible without its seal.
    let mut request = request.clone();
    // The seal names the account the image is made in (read once per cloud).
    let sealed = match ctx.cloud.account().await {
        Ok(owner) => {
            seal::sealed_tags(
                &ctx.sealer,
                &ctx.config.deployment,
                &owner,
                region,
                &request.name,
                &request.image_tags,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match sealed {
        Ok((image_tags, snapshot_tags)) => {
            request.image_tags = image_tags;
            request.snapshot_tags = snapshot_tags;
        }
        Err(e) => {
            let outcome = Outcome::for_error(&e);
            report.push(
                region,
                subject,
                None,
                outcome,
                format!("{}: not imaged, it could not be sealed ({e})", request.name),
            );
            return if outcome == Outcome::Deferred {
                Made::Deferred
            } else {
                Made::Failed
            };
        }
    }
    match ec2.create_image(&request).await {
        Ok(id) => {
            report.push(region, subject, Some(&id), Outcome::Created, text);
            Made::Created(id)
        }
        Err(e) if e.kind == ErrorKind::Duplicate => {
            match find_by_name(ec2.as_ref(), &request.name).await {
                Ok(Some(img)) if !is_sealed(ctx, &img).await => {
                    report.push(
                        region,
                        subject,
                        Some(&img.id),
                        Outcome::NameSquatted,
                        squatted_text(&request.name, &img.id),
                    );
                    Made::Failed
                }
                Ok(Some(img)) => {
                    report.push(
                        region,
                        subject,
                        Some(&img.id),
                        Outcome::AlreadyExisted,
                        format!("{} exists already ({})", request.name, img.state.as_str()),
                    );
                    Made::Existed
                }
                Ok(None) => {
                    report.push(
                        region,
                        subject,
                        None,
                        Outcome::Deferred,
                        format!(
                            "{} is taken but not visible yet; the next run looks again",
                            request.name
                        ),
                    );
                    Made::Deferred
                }
                Err(le) => {
                    let outcome = Outcome::for_error(&le);
                    report.push(
                        region,
                        subject,
                        None,
                        outcome,
                        format!("{} is taken and could not be looked up: {le}", request.name),
                    );
                    if outcome == Outcome::Deferred {
                        Made::Deferred
                    } else {
                        Made::Failed
                    }
                }
            }
        }
        // CreateImage has no transient resource limit (concurrent snapshots are
        // ConcurrentSnapshotLimitExceeded): ResourceLimitExceeded here is the
        // AMIs-per-Region quota, which minutes will not free.
        Err(e) if matches!(e.kind, ErrorKind::QuotaExceeded | ErrorKind::ResourceLimit) => {
            report.push(
                region,
                subject,
                None,
                Outcome::Failed,
                format!(
                    "{}: {e}; a quota is full: raise it (Service Quotas, Amazon EC2: the AMIs or EBS snapshots quota of {region}) or let cleanup free room; not retried until the next scheduled run",
                    request.name
                ),
            );
            Made::Failed
        }
        Err(e) if e.is_retryable() => {
            report.push(
                region,
                subject,
                None,
                Outcome::Deferred,
                format!("{}: {e}; retried by the continuation", request.name),
            );
            Made::Deferred
        }
        Err(e) => {
            report.push(
                region,
                subject,
                None,
                Outcome::Failed,
                format!("{}: {e}", request.name),
            );
            Made::Failed
        }
    }
}

/// Whether `image` is the suite's (sealed); a failed check counts as not.
async fn is_sealed(ctx: &Context, image: &Image) -> bool {
    seal::sealed_one(&ctx.sealer, image.clone(), &ctx.config.deployment, None)
        .await
        .is_some()
}

pub(crate) async fn find_by_name(ec2: &dyn Ec2, name: &str) -> Result<Option<Image>, CloudError> {
    let query = ImageQuery {
        owned_by_self: true,
        names: vec![name.to_owned()],
        ..ImageQuery::default()
    };
    Ok(all_images(ec2, &query).await?.into_iter().next())
}

/// Asks for the next invocation of this slot, or says how to continue without a queue.
async fn continue_later(ctx: &Context, r: &ScheduleRun, round: u32, report: &mut RunReport) {
    let subject = slot_label(r);
    let by_hand = format!(
        "amictl create-images --schedule {} --slot {}",
        r.schedule,
        rfc3339(r.slot)
    );
    match ctx.cloud.continuations() {
        Some(c) => match c
            .continue_later(
                &r.continuation_body(round),
                ctx.config.continuation_delay_seconds,
            )
            .await
        {
            Ok(()) => report.metrics.insert(
                "continuation_delay_seconds".to_owned(),
                f64::from(ctx.config.continuation_delay_seconds),
            ),
            Err(e) => {
                report.push(
                    &home(ctx),
                    subject,
                    None,
                    Outcome::Failed,
                    format!(
                        "could not send the continuation ({e}); finish the slot with {by_hand}"
                    ),
                );
                None
            }
        },
        None => {
            report.push(
                &home(ctx),
                subject,
                None,
                Outcome::Deferred,
                format!("no continuation queue (CONTINUATION_QUEUE_URL); continue with {by_hand}"),
            );
            None
        }
    };
}

/// An image ended `failed`: read it and its slot, plan the clean-up
/// ([`plan::failed_image_check`], [`plan::failed_image_plan`]) and apply it: report it,
/// deregister it and delete its leftover snapshots, only when it is provably ours.
async fn failed_image(
    ctx: &Context,
    region: &Region,
    id: &ImageId,
    error: Option<&str>,
    report: &mut RunReport,
) {
    let config = &ctx.config;
    let ec2 = ctx.cloud.ec2(region);
    let query = ImageQuery {
        owned_by_self: true,
        ids: vec![id.clone()],
        include_disabled: true,
        ..ImageQuery::default()
    };
    let image = match all_images(ec2.as_ref(), &query).await {
        Ok(images) => images.into_iter().find(|i| &i.id == id),
        Err(e) if e.kind == ErrorKind::NotFound => None,
        Err(e) => {
            report.push(
                region,
                id.as_str(),
                Some(id),
                Outcome::for_error(&e),
                format!("could not describe the failed image: {e}"),
            );
            return;
        }
    };
    let made = match plan::failed_image_check(id, image.as_ref(), config) {
        Ok(made) => made,
        Err(skip) => {
            report.push(
                region,
                skip.subject,
                Some(id),
                Outcome::Skipped,
                skip.reason,
            );
            return;
        }
    };
    let Some(image) = image else { return };
    // Deregistering and deleting snapshots needs proof the suite made it.
    let Some(image) =
        seal::sealed_one(&ctx.sealer, image, &config.deployment, Some(&mut *report)).await
    else {
        return;
    };
    let slot_tag = Some((key::SLOT.to_owned(), made.slot.clone()));
    let snaps = all_snapshots(
        ec2.as_ref(),
        &SnapshotQuery {
            tag: slot_tag.clone(),
            ..SnapshotQuery::default()
        },
    )
    .await;
    let slot_images = all_images(
        ec2.as_ref(),
        &ImageQuery {
            owned_by_self: true,
            tag: slot_tag,
            include_disabled: true,
            ..ImageQuery::default()
        },
    )
    .await;
    let plan = match (snaps, slot_images) {
        (Ok(snaps), Ok(images)) => {
            plan::failed_image_plan(&image, &made, error, &snaps, &images, config)
        }
        (Err(e), _) | (_, Err(e)) => {
            report.push(
                region,
                made.instance.as_str(),
                Some(id),
                Outcome::Failed,
                format!(
                    "{} ended failed: {}",
                    image.name,
                    error.unwrap_or("no error message")
                ),
            );
            report.push(
                region,
                id.as_str(),
                Some(id),
                Outcome::for_error(&e),
                format!("could not list the slot's snapshots and images: {e}; nothing deleted"),
            );
            return;
        }
    };
    apply_failed_image(ctx, region, &plan, report).await;
}

/// Applies a failed image's clean-up plan (a dry run reports it as planned).
async fn apply_failed_image(
    ctx: &Context,
    region: &Region,
    plan: &plan::FailedImagePlan,
    report: &mut RunReport,
) {
    let id = &plan.image;
    report.push(
        region,
        plan.instance.as_str(),
        Some(id),
        Outcome::Failed,
        plan.reason.as_str(),
    );
    if ctx.dry_run() {
        report.push(
            region,
            id.as_str(),
            Some(id),
            Outcome::Planned,
            "would deregister the failed image",
        );
        for s in &plan.snapshots {
            report.push(
                region,
                s.as_str(),
                Some(id),
                Outcome::Planned,
                "would delete this leftover snapshot of the failed image",
            );
        }
        return;
    }
    let ec2 = ctx.cloud.ec2(region);
    match ec2.deregister(id, false).await {
        Ok(_) => report.push(
            region,
            id.as_str(),
            Some(id),
            Outcome::Deleted,
            "deregistered the failed image",
        ),
        Err(e) if e.kind == ErrorKind::NotFound => {}
        Err(e) => {
            report.push(
                region,
                id.as_str(),
                Some(id),
                Outcome::for_error(&e),
                format!("could not deregister the failed image: {e}; its snapshots are kept"),
            );
            return;
        }
    }
    for s in &plan.snapshots {
        match ec2.delete_snapshot(s).await {
            Ok(()) => report.push(
                region,
                s.as_str(),
                Some(id),
                Outcome::Deleted,
                "leftover snapshot of the failed image",
            ),
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) if e.kind == ErrorKind::InUse => report.push(
                region,
                s.as_str(),
                Some(id),
                Outcome::Kept,
                format!("in use by another image: {e}"),
            ),
            Err(e) => report.push(
                region,
                s.as_str(),
                Some(id),
                Outcome::for_error(&e),
                format!("could not delete: {e}"),
            ),
        }
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;

//! Applies share plans through the ports: reads each image's facts, plans, then grants,
//! revokes and writes the record and status tags.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use super::FUNCTION;
use crate::cleanup::usage_check::UsageCheck;
use crate::context::Context;
use crate::error::{CloudError, CloudResult, ErrorKind};
use crate::model::{Grantee, Image, ImageId, KeyRef, Region, SnapshotId, Tags};
use crate::ports::{all_images, all_snapshots, Ec2, ImageQuery, Keys, SnapshotQuery};
use crate::report::{Outcome, RunReport};
use crate::seal;
use crate::share::plan::{
    self, Action, Changes, Governing, ImageFacts, ImagePlan, KeyFacts, SnapshotFacts,
};
use crate::share::record;
use crate::share::ShareRequest;
use crate::tags::{is_managed_by, key};

/// Runs a share request to completion (or to the deadline) and returns its report.
pub async fn run(ctx: &Context, request: ShareRequest, now: OffsetDateTime) -> RunReport {
    let mut report = RunReport::new("share", ctx.dry_run(), now);
    // SHARE_ALLOWED=org: the organization is read again on every run.
    let ctx = &crate::share::allowed::resolve(ctx, &mut report).await;
    // The run's cross-account use checks, cached across its images.
    let usage = &UsageCheck::new(ctx, FUNCTION, now);
    match request {
        ShareRequest::Reconcile => reconcile_all(ctx, usage, &mut report).await,
        ShareRequest::Image { image, region } => {
            reconcile_family(ctx, usage, &image, region, &mut report).await
        }
        ShareRequest::TagChange {
            image,
            region,
            changed_keys,
            more,
        } => {
            if !changed_keys.is_empty() && !changed_keys.iter().any(|k| k == key::SHARE_WITH) {
                report.push(
                    &region,
                    image.as_str(),
                    Some(&image),
                    Outcome::Skipped,
                    format!(
                        "tag change of {} does not touch {}",
                        changed_keys.join(", "),
                        key::SHARE_WITH
                    ),
                );
            } else {
                // Every image of the call, not only the first.
                for id in std::iter::once(image).chain(more) {
                    if ctx.deadline.near() {
                        report.incomplete = Some(format!(
                            "deadline near: stopped before {id}; the next reconcile continues"
                        ));
                        break;
                    }
                    reconcile_family(ctx, usage, &id, Some(region.clone()), &mut report).await;
                }
            }
        }
    }
    report
}

fn push_error(
    report: &mut RunReport,
    region: &Region,
    subject: &str,
    image: Option<&ImageId>,
    context: &str,
    e: &CloudError,
) {
    report.push(
        region,
        subject,
        image,
        Outcome::for_error(e),
        format!("{context}: {e}; the next run retries"),
    );
}

fn managed_query(config_deployment: &str) -> ImageQuery {
    // A disabled image is private by AWS design: nothing to share, so it is not listed.
    ImageQuery {
        include_disabled: false,
        ..ImageQuery::managed_by(config_deployment)
    }
}

async fn reconcile_all(ctx: &Context, usage: &UsageCheck, report: &mut RunReport) {
    let config = &ctx.config;
    let mut images: Vec<Image> = Vec::new();
    let mut unreadable: Vec<Region> = Vec::new();
    for region in config.all_regions() {
        ctx.progress(&format!("reading managed images in {region}"));
        let ec2 = ctx.cloud.ec2(&region);
        match all_images(ec2.as_ref(), &managed_query(&config.deployment)).await {
            // Only sealed images are shared, or govern their replicas.
            Ok(found) => images.extend(
                seal::sealed_only(&ctx.sealer, found, &config.deployment, Some(report)).await,
            ),
            Err(e) => {
                push_error(
                    report,
                    &region,
                    region.as_str(),
                    None,
                    "listing managed images",
                    &e,
                );
                unreadable.push(region);
            }
        }
    }
    for (n, governing) in plan::select(&images, config) {
        let image = &images[n];
        if ctx.deadline.near() {
            report.incomplete = Some(format!(
                "deadline near: stopped before {}; the next run continues",
                image.id
            ));
            return;
        }
        // A replica whose source region could not be read must not fall back to its own
        // (possibly stale) copy of the tag: that could revoke what the source still lists.
        let source_unread = governing.source.is_none()
            && config.share_replicas
            && plan::source_of(image).is_some_and(|(_, r)| unreadable.contains(&r));
        if source_unread {
            report.push(
                &image.region,
                image.id.as_str(),
                Some(&image.id),
                Outcome::Deferred,
                "its source's region could not be read",
            );
            continue;
        }
        reconcile_image(ctx, usage, image, &governing, report).await;
    }
}

async fn reconcile_family(
    ctx: &Context,
    usage: &UsageCheck,
    id: &ImageId,
    region: Option<Region>,
    report: &mut RunReport,
) {
    let config = &ctx.config;
    let regions = match &region {
        Some(r) => vec![r.clone()],
        None => config.all_regions(),
    };
    let mut found = None;
    for r in &regions {
        match crate::ports::own_image(ctx.cloud.ec2(r).as_ref(), id).await {
            Ok(Some(img)) => {
                found = Some(img);
                break;
            }
            Ok(None) => {}
            Err(e) => {
                return push_error(report, r, id.as_str(), Some(id), "describing the image", &e)
            }
        }
    }
    let Some(image) = found else {
        let names: Vec<String> = regions.iter().map(ToString::to_string).collect();
        let home = regions
            .first()
            .cloned()
            .unwrap_or_else(|| Region::new("unknown"));
        report.push(
            &home,
            id.as_str(),
            Some(id),
            Outcome::Skipped,
            format!(
                "no image {id} owned by this account in {}",
                names.join(", ")
            ),
        );
        return;
    };
    if let Some(why) = plan::not_managed(&image, config) {
        report.push(
            &image.region,
            image.id.as_str(),
            Some(&image.id),
            Outcome::Skipped,
            why,
        );
        return;
    }
    // Only a sealed image is shared: an unsealed one is reported and left alone.
    let Some(image) =
        seal::sealed_one(&ctx.sealer, image, &config.deployment, Some(&mut *report)).await
    else {
        return;
    };
    let managed = |img: &Image| is_managed_by(&img.tags, &config.deployment);

    // The root of the family: the source, when the image is a replica and replicas follow it.
    let mut root = image.clone();
    let mut source_gone = false;
    if config.share_replicas && plan::is_replica(&image) {
        if let Some((src_id, src_region)) = plan::source_of(&image) {
            match crate::ports::own_image(ctx.cloud.ec2(&src_region).as_ref(), &src_id).await {
                Ok(Some(src)) if managed(&src) => {
                    match seal::sealed_one(&ctx.sealer, src, &config.deployment, None).await {
                        Some(sealed) => root = sealed,
                        None => source_gone = true,
                    }
                }
                Ok(_) => source_gone = true,
                Err(e) => {
                    return push_error(
                        report,
                        &image.region,
                        image.id.as_str(),
                        Some(&image.id),
                        "describing its source image",
                        &e,
                    )
                }
            }
        }
    }

    let root_governing = if source_gone || !config.share_replicas {
        plan::governing_for(&root, None, config)
    } else {
        Governing::own(&root)
    };
    let mut family: Vec<(Image, Governing)> = vec![(root.clone(), root_governing)];
    if config.share_replicas && managed(&root) && !plan::is_replica(&root) {
        for r in config.all_regions() {
            let query = ImageQuery {
                owned_by_self: true,
                tag: Some((key::SOURCE_IMAGE.to_owned(), root.id.to_string())),
                ..ImageQuery::default()
            };
            match all_images(ctx.cloud.ec2(&r).as_ref(), &query).await {
                Ok(replicas) => {
                    let replicas = seal::sealed_only(
                        &ctx.sealer,
                        replicas,
                        &config.deployment,
                        Some(&mut *report),
                    )
                    .await;
                    for rep in replicas {
                        let is_ours = rep.id != root.id
                            && managed(&rep)
                            && plan::source_of(&rep)
                                .is_some_and(|(sid, sreg)| sid == root.id && sreg == root.region);
                        if is_ours && !family.iter().any(|(i, _)| i.id == rep.id) {
                            let governing = plan::governing_for(&rep, Some(&root), config);
                            family.push((rep, governing));
                        }
                    }
                }
                Err(e) => push_error(
                    report,
                    &r,
                    root.id.as_str(),
                    Some(&root.id),
                    "listing replicas",
                    &e,
                ),
            }
        }
    }
    // The image asked about is in the family unless its source governs nothing of it.
    if !family.iter().any(|(i, _)| i.id == image.id) {
        let governing = plan::governing_for(&image, None, config);
        family.push((image, governing));
    }
    for (img, governing) in &family {
        if ctx.deadline.near() {
            report.incomplete = Some(format!(
                "deadline near: stopped before {}; the next run continues",
                img.id
            ));
            return;
        }
        reconcile_image(ctx, usage, img, governing, report).await;
    }
}

/// How many times an image is planned again when its grant record changed under this
/// run (a concurrent run's write-ahead) before it is left to the next run.
const RECORD_ATTEMPTS: usize = 3;

async fn reconcile_image(
    ctx: &Context,
    usage: &UsageCheck,
    image: &Image,
    governing: &Governing,
    report: &mut RunReport,
) {
    ctx.progress(&format!("share: {} in {}", image.id, image.region));
    let mut image = image.clone();
    for _ in 0..RECORD_ATTEMPTS {
        let plan = match plan::screen(&image, governing, &ctx.config) {
            Err(plan) => plan,
            Ok(wanted) => match gather(ctx, &image, &wanted.desired).await {
                Ok(facts) => plan_with_use_check(ctx, usage, &image, governing, facts).await,
                // The share role may describe only the keys it may grant on (the stack's
                // KmsKeyArns): a snapshot key outside them (aws/ebs included) cannot be
                // shared by the suite. Say so, with the remedy, instead of a bare denial.
                Err(e) if e.kind == ErrorKind::Denied && e.operation == "DescribeKey" => {
                    report.push(
                        &image.region,
                        image.id.as_str(),
                        Some(&image.id),
                        Outcome::Refused,
                        format!(
                            "its snapshots' KMS key may not be used by the share role ({e}): the suite shares only images encrypted with a key listed in KmsKeyArns (aws/ebs can never be shared); add the key to KmsKeyArns, or copy the image with a listed key (REPLICA_KMS_KEYS) and share the copy; nothing changed"
                        ),
                    );
                    return;
                }
                Err(e) => {
                    return push_error(
                        report,
                        &image.region,
                        image.id.as_str(),
                        Some(&image.id),
                        "reading its permissions",
                        &e,
                    )
                }
            },
        };
        match apply(ctx, &image, plan, report).await {
            Applied::Done => return,
            Applied::RecordRaced => {
                let ec2 = ctx.cloud.ec2(&image.region);
                match crate::ports::own_image(ec2.as_ref(), &image.id).await {
                    Ok(Some(fresh)) => image = fresh,
                    Ok(None) => return,
                    Err(e) => {
                        return push_error(
                            report,
                            &image.region,
                            image.id.as_str(),
                            Some(&image.id),
                            "reading it again",
                            &e,
                        )
                    }
                }
            }
        }
    }
    report.push(
        &image.region,
        image.id.as_str(),
        Some(&image.id),
        Outcome::Deferred,
        format!(
            "its grant record changed under this run {RECORD_ATTEMPTS} times (concurrent share runs); the next run finishes it"
        ),
    );
}

/// Plans `image`; when the plan holds revocations whose grantees' use was not checked
/// yet ([`crate::share::hold`]), asks those accounts ([`UsageCheck`], cached for the run)
/// and plans again with their answers: the planner alone decides what is revoked.
async fn plan_with_use_check(
    ctx: &Context,
    usage: &UsageCheck,
    image: &Image,
    governing: &Governing,
    mut facts: ImageFacts,
) -> ImagePlan {
    let first = plan::plan_image(image, governing, &facts, &ctx.config);
    let Action::Apply(ch) = &first.action else {
        return first;
    };
    let unchecked = crate::share::hold::held_unchecked(ch);
    if unchecked.is_empty() {
        return first;
    }
    facts.usage = Some(
        usage
            .check(&image.region, &[(image.id.clone(), unchecked)])
            .await,
    );
    plan::plan_image(image, governing, &facts, &ctx.config)
}

/// Reads what the planner needs: launch and create-volume permissions, the snapshots'
/// keys and the suite's grants on them, and (only when `all` is wanted) the region's
/// image block public access state.
async fn gather(ctx: &Context, image: &Image, desired: &[Grantee]) -> CloudResult<ImageFacts> {
    let ec2 = ctx.cloud.ec2(&image.region);
    let kms = ctx.cloud.keys(&image.region);
    let launch = ec2.launch_permissions(&image.id).await?;

    // DescribeImages may omit a mapping's key: read the snapshot itself then.
    let missing: Vec<SnapshotId> = image
        .disks
        .iter()
        .filter(|d| d.encrypted && d.kms_key.is_none())
        .map(|d| d.snapshot_id.clone())
        .collect();
    let described = if missing.is_empty() {
        Vec::new()
    } else {
        all_snapshots(
            ec2.as_ref(),
            &SnapshotQuery {
                ids: missing,
                ..SnapshotQuery::default()
            },
        )
        .await?
    };
    let mut snapshots = Vec::new();
    for d in &image.disks {
        let snap = described.iter().find(|s| s.id == d.snapshot_id);
        let key = d
            .kms_key
            .clone()
            .or_else(|| snap.and_then(|s| s.kms_key.clone()));
        let encrypted = d.encrypted || snap.is_some_and(|s| s.encrypted);
        let permissions = ec2.snapshot_permissions(&d.snapshot_id).await?;
        snapshots.push(SnapshotFacts {
            id: d.snapshot_id.clone(),
            encrypted,
            key,
            permissions,
        });
    }

    let mut key_refs: Vec<KeyRef> = Vec::new();
    for k in snapshots
        .iter()
        .filter(|s| s.encrypted)
        .filter_map(|s| s.key.clone())
    {
        if !key_refs.contains(&k) {
            key_refs.push(k);
        }
    }
    let mut keys = Vec::new();
    for k in key_refs {
        let info = kms.describe_key(&k).await?;
        let grants = if info.aws_managed {
            Vec::new()
        } else {
            our_grants(kms.as_ref(), &info.arn, &image.id).await?
        };
        keys.push(KeyFacts {
            key: k,
            info,
            grants,
        });
    }
    let public_blocked = if desired.contains(&Grantee::Public) {
        Some(ec2.public_sharing_blocked().await?)
    } else {
        None
    };
    let record = record::verified(
        &ctx.sealer,
        &ctx.config.deployment,
        image.owner.as_ref(),
        &image.region,
        &image.id,
        &image.tags,
    )
    .await?;
    Ok(ImageFacts {
        launch,
        snapshots,
        keys,
        public_blocked,
        record,
        usage: None,
    })
}

async fn our_grants(
    kms: &dyn Keys,
    key_arn: &str,
    image: &ImageId,
) -> CloudResult<Vec<crate::model::KeyGrant>> {
    Ok(kms
        .list_grants(key_arn)
        .await?
        .into_iter()
        .filter(|g| {
            g.name
                .as_deref()
                .and_then(|n| plan::grant_account(image, n))
                .is_some()
        })
        .collect())
}

async fn write_tags(
    ec2: &dyn Ec2,
    image: &ImageId,
    current: &mut Tags,
    tags: Tags,
) -> CloudResult<()> {
    if tags.is_empty() {
        return Ok(());
    }
    ec2.set_tags(image.as_str(), &tags).await?;
    current.extend(tags);
    Ok(())
}

fn status_tags(current: &Tags, status: &str) -> Tags {
    let mut out = Tags::new();
    if current.get(key::SHARE_STATUS).map(String::as_str) != Some(status) {
        out.insert(key::SHARE_STATUS.to_owned(), status.to_owned());
    }
    out
}

/// What applying one image's plan came to.
enum Applied {
    /// Done, or failed and reported: the report has the image's items.
    Done,
    /// The grant record changed between this run's write-ahead and its re-read (another
    /// run wrote it): plan again from a fresh read. Nothing was granted or revoked.
    RecordRaced,
}

/// Why applying stopped early.
enum Stop {
    Failed(&'static str, CloudError),
    RecordRaced,
}

async fn apply(ctx: &Context, image: &Image, plan: ImagePlan, report: &mut RunReport) -> Applied {
    let region = &plan.region;
    let subject = plan.image.as_str();
    match plan.action {
        Action::Skip { outcome, reason } => {
            report.push(region, subject, Some(&plan.image), outcome, reason)
        }
        Action::Reject {
            outcome,
            reason,
            status,
        } => {
            let tags = status_tags(&image.tags, &status);
            if ctx.dry_run() {
                let note = if tags.is_empty() {
                    ""
                } else {
                    " (dry run: share-status not written)"
                };
                report.push(
                    region,
                    subject,
                    Some(&plan.image),
                    outcome,
                    format!("{reason}{note}"),
                );
                return Applied::Done;
            }
            report.push(region, subject, Some(&plan.image), outcome, reason);
            let ec2 = ctx.cloud.ec2(region);
            let mut current = image.tags.clone();
            if let Err(e) = write_tags(ec2.as_ref(), &plan.image, &mut current, tags).await {
                push_error(
                    report,
                    region,
                    subject,
                    Some(&plan.image),
                    "writing share-status",
                    &e,
                );
            }
        }
        Action::Apply(ch) => {
            if ctx.dry_run() {
                dry_run_items(image, &ch, report);
                return Applied::Done;
            }
            let mut current = image.tags.clone();
            match apply_changes(ctx, image, &ch, &mut current).await {
                Ok(duplicates) => {
                    for item in &ch.items {
                        report.push(
                            region,
                            item.subject.clone(),
                            Some(&plan.image),
                            item.outcome,
                            item.reason.clone(),
                        );
                    }
                    if duplicates > 0 {
                        report.push(
                            region,
                            subject,
                            Some(&plan.image),
                            Outcome::Revoked,
                            format!("{duplicates} duplicate KMS grant(s) revoked"),
                        );
                    }
                }
                Err(Stop::RecordRaced) => return Applied::RecordRaced,
                Err(Stop::Failed(step, e)) => {
                    push_error(
                        report,
                        region,
                        subject,
                        Some(&plan.image),
                        &format!("sharing stopped at {step}"),
                        &e,
                    );
                    if !e.is_retryable() {
                        let status =
                            plan::status_value(&format!("error {step} failed: {}", e.code));
                        let tags = status_tags(&current, &status);
                        let ec2 = ctx.cloud.ec2(region);
                        let _ = write_tags(ec2.as_ref(), &plan.image, &mut current, tags).await;
                    }
                }
            }
        }
    }
    Applied::Done
}

fn dry_run_items(image: &Image, ch: &Changes, report: &mut RunReport) {
    for item in &ch.items {
        let (outcome, reason) = match item.outcome {
            Outcome::Granted => (Outcome::Planned, format!("would be {}", item.reason)),
            Outcome::Revoked => (Outcome::Planned, format!("would be {}", item.reason)),
            other => (other, item.reason.clone()),
        };
        report.push(
            &image.region,
            item.subject.clone(),
            Some(&image.id),
            outcome,
            reason,
        );
    }
    let mut keys = Vec::new();
    if record::encode(&ch.record_after)
        != record::encode(
            &record::chunks(&image.tags)
                .iter()
                .flat_map(record::Chunk::grantees)
                .collect::<Vec<_>>(),
        )
    {
        keys.push(key::SHARE_GRANTED);
    }
    if !status_tags(&image.tags, &ch.status).is_empty() {
        keys.push(key::SHARE_STATUS);
    }
    if !keys.is_empty() {
        report.push(
            &image.region,
            image.id.as_str(),
            Some(&image.id),
            Outcome::Planned,
            format!("would set {}", keys.join(", ")),
        );
    }
}

/// The record's sealed tags for `grantees` on `image` (the record always fits: the
/// planner refused values that do not).
async fn record_tags(
    ctx: &Context,
    image: &Image,
    grantees: &[Grantee],
    current: &Tags,
) -> CloudResult<Tags> {
    let tags = record::sealed_tags(
        &ctx.sealer,
        &ctx.config.deployment,
        seal::owner_of(image)?,
        &image.region,
        &image.id,
        grantees,
        current,
    )
    .await?;
    Ok(tags.unwrap_or_default())
}

/// The record as it is on the image now (verified chunks), read again from EC2.
async fn record_now(ctx: &Context, image: &Image) -> CloudResult<Option<Vec<Grantee>>> {
    let ec2 = ctx.cloud.ec2(&image.region);
    let Some(fresh) = crate::ports::own_image(ec2.as_ref(), &image.id).await? else {
        return Ok(None);
    };
    let v = record::verified(
        &ctx.sealer,
        &ctx.config.deployment,
        fresh.owner.as_ref(),
        &image.region,
        &image.id,
        &fresh.tags,
    )
    .await?;
    Ok(Some(v.grantees))
}

/// Grants, then revokes, then the record: see the module docs for why in this order.
/// Returns the number of duplicate KMS grants removed, or why it stopped.
async fn apply_changes(
    ctx: &Context,
    image: &Image,
    ch: &Changes,
    current: &mut Tags,
) -> Result<usize, Stop> {
    let ec2 = ctx.cloud.ec2(&image.region);
    let kms = ctx.cloud.keys(&image.region);
    let (ec2, kms) = (ec2.as_ref(), kms.as_ref());
    let id = &image.id;
    let failed = |step: &'static str| move |e: CloudError| Stop::Failed(step, e);
    // Write-ahead: the record names everything about to be granted before it is.
    let ahead = record_tags(ctx, image, &ch.record_before, current)
        .await
        .map_err(failed("sealing the record"))?;
    let wrote_ahead = !ahead.is_empty();
    write_tags(ec2, id, current, ahead)
        .await
        .map_err(failed("recording the grants"))?;
    // Read it back: a concurrent run (a tag event racing the hourly reconcile) may have
    // overwritten it; granting now could leave a grant no record names.
    if wrote_ahead && !ch.is_noop() {
        let now = record_now(ctx, image)
            .await
            .map_err(failed("reading the record back"))?;
        if now.is_some_and(|r| ch.record_before.iter().any(|g| !r.contains(g))) {
            return Err(Stop::RecordRaced);
        }
    }

    let operations: Vec<String> = plan::GRANT_OPERATIONS
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for spec in &ch.grants_create {
        kms.create_grant(&spec.key_arn, &spec.principal, &operations, &spec.name)
            .await
            .map_err(failed("CreateGrant"))?;
    }
    for (snap, add) in &ch.snapshot_add {
        ec2.modify_snapshot_permissions(snap, add, &[])
            .await
            .map_err(failed("ModifySnapshotAttribute (add)"))?;
    }
    if !ch.launch_add.is_empty() || !ch.launch_remove.is_empty() {
        ec2.modify_launch_permissions(id, &ch.launch_add, &ch.launch_remove)
            .await
            .map_err(failed("ModifyImageAttribute"))?;
    }
    for (snap, remove) in &ch.snapshot_remove {
        ec2.modify_snapshot_permissions(snap, &[], remove)
            .await
            .map_err(failed("ModifySnapshotAttribute (remove)"))?;
    }
    for g in &ch.grants_revoke {
        revoke(kms, &g.key_arn, &g.grant_id)
            .await
            .map_err(failed("RevokeGrant"))?;
    }
    // KMS returns the existing grant for a repeated CreateGrant with the same name; where
    // it does not (an emulator, a race), keep one grant per name.
    let mut duplicates = 0;
    let created_on: BTreeSet<&str> = ch
        .grants_create
        .iter()
        .map(|s| s.key_arn.as_str())
        .collect();
    let wanted: BTreeSet<_> = ch
        .desired
        .iter()
        // A held grantee keeps its grant too (in use elsewhere, [`crate::share::hold`]).
        .chain(ch.held.iter().map(|(g, _)| g))
        .filter_map(|g| {
            if let Grantee::Account(a) = g {
                Some(a.clone())
            } else {
                None
            }
        })
        .collect();
    for key_arn in created_on {
        let grants = our_grants(kms, key_arn, id)
            .await
            .map_err(failed("ListGrants"))?;
        for g in plan::revocable_grants(id, &grants, &wanted) {
            revoke(kms, key_arn, &g.grant_id)
                .await
                .map_err(failed("RevokeGrant"))?;
            duplicates += 1;
        }
    }
    // Narrow the record to what is wanted, but keep what a concurrent run recorded ahead
    // since our write-ahead: it may be granting it right now.
    let mut after: Vec<Grantee> = ch.record_after.clone();
    if wrote_ahead {
        let now = record_now(ctx, image)
            .await
            .map_err(failed("reading the record back"))?
            .unwrap_or_default();
        for g in now {
            if !ch.record_before.contains(&g) && !after.contains(&g) {
                after.push(g);
            }
        }
    }
    let mut last = record_tags(ctx, image, &after, current)
        .await
        .map_err(failed("sealing the record"))?;
    last.extend(status_tags(current, &ch.status));
    write_tags(ec2, id, current, last)
        .await
        .map_err(failed("writing the record and share-status"))?;
    Ok(duplicates)
}

/// Retires the suite's KMS grants for `image` (named `ami-lifecycle-<image>-<account>`) on
/// `keys`: called by cleanup once the image is deregistered, so a deleted shared image
/// leaves no grant behind. Returns how many were revoked.
pub async fn retire_image_grants(
    kms: &dyn Keys,
    image: &ImageId,
    keys: &[KeyRef],
) -> CloudResult<usize> {
    let mut n = 0;
    for k in keys {
        let info = kms.describe_key(k).await?;
        if info.aws_managed {
            continue;
        }
        for g in our_grants(kms, &info.arn, image).await? {
            revoke(kms, &info.arn, &g.grant_id).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Revokes a grant; one already gone (another run revoked it) is fine.
async fn revoke(kms: &dyn Keys, key_arn: &str, grant_id: &str) -> CloudResult<()> {
    match kms.revoke_grant(key_arn, grant_id).await {
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

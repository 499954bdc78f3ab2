//! Applies publish: name the lineages, read each region's images, parameters and tracked
//! templates, plan ([`super::plan::plan`]), write, report.

use std::collections::BTreeSet;
use std::time::Duration;

use time::OffsetDateTime;

use super::names::LineageNames;
use super::plan::{
    self, Inventory, ParameterAction, Publication, RegionPlan, Scope, TemplateAction,
};
use super::{parameter_path, Request, FUNCTION};
use crate::context::Context;
use crate::error::{CloudError, CloudResult};
use crate::lineage::Lineage;
use crate::model::{ImageId, Region};
use crate::ports::{all_images, ImageQuery, NewParameterVersion, NewTemplateVersion, Parameters};
use crate::report::{Outcome, RunReport};
use crate::seal;
use crate::tags::key;

/// SSM validates an `aws:ec2:image` value after answering `PutParameter`: how often and
/// how long a write is read back before it is reported `unconfirmed` (bounded: at most
/// about 5 s per parameter, and never past the deadline).
const CONFIRM_ATTEMPTS: u32 = 5;
const CONFIRM_INTERVAL: Duration = Duration::from_secs(1);

/// SSM keeps 100 versions of a parameter, and refuses a new one while the oldest is labelled.
const SSM_VERSIONS_KEPT: usize = 100;

/// Runs one request and returns its report.
pub async fn run(ctx: &Context, request: Request, now: OffsetDateTime) -> RunReport {
    let mut report = RunReport::new(FUNCTION, ctx.dry_run(), now);
    let Some(names) = read_names(ctx, &mut report).await else {
        return report;
    };
    let (scope, regions) = match request {
        Request::Ignore { image, region, why } => {
            report.push(&region, image.as_str(), Some(&image), Outcome::Skipped, why);
            return report;
        }
        Request::Reconcile { lineage } => {
            let scope = lineage.map_or(Scope::All, Scope::Lineage);
            (scope, ctx.config.all_regions())
        }
        Request::Image { image, region } => {
            match lineage_of_image(ctx, &image, &region, &names, &mut report).await {
                Some(name) => (Scope::Lineage(name), vec![region]),
                None => return report,
            }
        }
    };
    report_refusals(&names, &scope, &mut report);
    if let Scope::Lineage(name) = &scope {
        // A refused name was reported just above; an unknown one is reported here.
        if names.instance_named(name).is_none() {
            if names.refusal_named(name).is_none() {
                refuse_unnamed(ctx, names.why_unnamed(name), name, &mut report);
            }
            return report;
        }
    }
    for region in &regions {
        if ctx.deadline.near() {
            report.incomplete = Some(format!(
                "deadline reached before {region}: the next run continues"
            ));
            break;
        }
        ctx.progress(&format!("publishing in {region}"));
        let Some(inventory) = read_inventory(ctx, region, &scope, &names, &mut report).await else {
            continue;
        };
        let plan = plan::plan(&inventory, &names, &ctx.config, &scope, now);
        apply(ctx, region, plan, &mut report).await;
    }
    report
}

/// Names every scheduled instance of every managed region; `None` (with the failure
/// reported) when a region cannot be read: a name could then collide unseen.
pub(super) async fn read_names(ctx: &Context, report: &mut RunReport) -> Option<LineageNames> {
    let mut instances = Vec::new();
    for region in &ctx.config.regions {
        match ctx.cloud.ec2(region).scheduled_instances().await {
            Ok(found) => instances.extend(found),
            Err(e) => {
                report.push(
                    region,
                    "scheduled instances",
                    None,
                    Outcome::for_error(&e),
                    format!("could not list: {e}; lineage names cannot be checked for collisions, nothing published"),
                );
                return None;
            }
        }
    }
    let plain = LineageNames::resolve(&instances);
    if plain.colliding().next().is_none() {
        return Some(plain);
    }
    let made_from = made_from(ctx, &instances, &plain).await;
    Some(LineageNames::resolve_with(&instances, &made_from))
}

/// For the instances whose names collide: the instance each was launched from, proven by
/// EC2's own fields — its `ImageId`, that image's `SourceInstanceId` (across regions the
/// copy's `SourceImageId` first). An image that cannot be read proves nothing: the claims
/// then stay a collision.
async fn made_from(
    ctx: &Context,
    instances: &[crate::model::Instance],
    names: &LineageNames,
) -> std::collections::BTreeMap<crate::model::InstanceId, crate::model::InstanceId> {
    use crate::ports::own_image;
    let colliding: std::collections::BTreeSet<_> = names.colliding().collect();
    let mut out = std::collections::BTreeMap::new();
    for instance in instances.iter().filter(|i| colliding.contains(&i.id)) {
        let Some(image) = &instance.image_id else {
            continue;
        };
        let ec2 = ctx.cloud.ec2(&instance.region);
        let Ok(Some(img)) = own_image(ec2.as_ref(), image).await else {
            continue;
        };
        let made = match (&img.source_instance, &img.source) {
            (Some(src), _) => Some(src.clone()),
            (None, Some((original, region))) => own_image(ctx.cloud.ec2(region).as_ref(), original)
                .await
                .ok()
                .flatten()
                .and_then(|o| o.source_instance),
            (None, None) => None,
        };
        if let Some(src) = made.filter(|s| *s != instance.id) {
            out.insert(instance.id.clone(), src);
        }
    }
    out
}

/// A lineage asked for by name that no instance publishes: one refused item (in the first
/// managed region: a name is not regional).
pub(super) fn refuse_unnamed(ctx: &Context, why: String, lineage: &str, report: &mut RunReport) {
    let region = ctx
        .config
        .regions
        .first()
        .cloned()
        .unwrap_or_else(|| Region::new("-"));
    report.push(&region, lineage, None, Outcome::Refused, why);
}

/// Refused names, once per run: a collision is alarmed on (`name-collision`).
fn report_refusals(names: &LineageNames, scope: &Scope, report: &mut RunReport) {
    for r in names.refused() {
        if let Scope::Lineage(n) = scope {
            if *n != r.name {
                continue;
            }
        }
        let outcome = if r.collision {
            Outcome::NameCollision
        } else {
            Outcome::Refused
        };
        report.push(
            &r.region,
            r.instance.as_str(),
            None,
            outcome,
            r.problem.as_str(),
        );
    }
}

/// The readable lineage of the image an event names, if it is a sealed image of a named
/// lineage (else reported and `None`).
async fn lineage_of_image(
    ctx: &Context,
    image: &ImageId,
    region: &Region,
    names: &LineageNames,
    report: &mut RunReport,
) -> Option<String> {
    let query = ImageQuery {
        ids: vec![image.clone()],
        ..ImageQuery::managed_by(&ctx.config.deployment)
    };
    let found = match all_images(ctx.cloud.ec2(region).as_ref(), &query).await {
        Ok(found) => found,
        Err(e) => {
            report.push(
                region,
                image.as_str(),
                Some(image),
                Outcome::for_error(&e),
                format!("could not describe: {e}; the hourly reconcile publishes it"),
            );
            return None;
        }
    };
    let sealed = seal::sealed_only(&ctx.sealer, found, &ctx.config.deployment, None).await;
    let skip = |report: &mut RunReport, why: String| {
        report.push(region, image.as_str(), Some(image), Outcome::Skipped, why);
    };
    let Some(found) = sealed.first() else {
        skip(
            report,
            "not a sealed image of this deployment: never published".to_owned(),
        );
        return None;
    };
    let Lineage::Instance { instance, .. } = Lineage::of(found) else {
        skip(
            report,
            "not an image of a scheduled instance (adopted or untracked): no lineage to publish"
                .to_owned(),
        );
        return None;
    };
    let instance = crate::model::InstanceId::new(&instance);
    match names.of(&instance) {
        Some(name) => Some(name.to_owned()),
        None => {
            let why = names.refusal_of(&instance).map_or_else(
                || format!("its instance {instance} is no longer scheduled: its parameter is left as it is"),
                |r| r.problem.clone(),
            );
            skip(report, why);
            None
        }
    }
}

pub(super) async fn read_inventory(
    ctx: &Context,
    region: &Region,
    scope: &Scope,
    names: &LineageNames,
    report: &mut RunReport,
) -> Option<Inventory> {
    let deployment = &ctx.config.deployment;
    let mut query = ImageQuery::managed_by(deployment);
    let mut path = parameter_path(deployment);
    if let Scope::Lineage(name) = scope {
        let instance = names.instance_named(name)?;
        query.tag = Some((key::SOURCE_INSTANCE.to_owned(), instance.to_string()));
        path = format!("{path}/{name}");
    }
    let failed = |report: &mut RunReport, what: &str, e: &CloudError| {
        report.push(
            region,
            what,
            None,
            Outcome::for_error(e),
            format!("could not read: {e}; nothing published here this run"),
        );
    };
    let images = match all_images(ctx.cloud.ec2(region).as_ref(), &query).await {
        Ok(images) => images,
        Err(e) => {
            failed(report, "images", &e);
            return None;
        }
    };
    let parameters = match ctx.cloud.parameters(region).under_path(&path).await {
        Ok(found) => found.into_iter().map(|p| (p.name.clone(), p)).collect(),
        Err(e) => {
            failed(report, &path, &e);
            return None;
        }
    };
    let templates = match ctx.cloud.launch_templates(region).tracked_templates().await {
        Ok(t) => t,
        Err(e) => {
            report.push(
                region,
                "launch templates",
                None,
                Outcome::for_error(&e),
                format!(
                    "could not list tracked launch templates: {e}; parameters are still published"
                ),
            );
            Vec::new()
        }
    };
    let images = seal::sealed_only(&ctx.sealer, images, deployment, None).await;
    Some(Inventory {
        region: region.clone(),
        images,
        parameters,
        templates,
    })
}

pub(super) async fn apply(
    ctx: &Context,
    region: &Region,
    plan: RegionPlan,
    report: &mut RunReport,
) {
    let params = ctx.cloud.parameters(region);
    // Lineages whose parameter holds what it should: only their templates follow.
    let mut settled: BTreeSet<String> = BTreeSet::new();
    for lp in plan.lineages {
        let name = lp.parameter.as_str();
        match lp.action {
            ParameterAction::Publish {
                publication,
                previous,
                why,
            } => {
                let was = previous.as_deref().unwrap_or("nothing");
                if ctx.dry_run() {
                    report.push(
                        region,
                        name,
                        Some(&publication.image),
                        Outcome::Planned,
                        format!("would publish (was {was}): {why}"),
                    );
                    settled.insert(lp.lineage);
                    continue;
                }
                match publish_one(ctx, params.as_ref(), name, &publication).await {
                    Ok(true) => {
                        report.push(region, name, Some(&publication.image), Outcome::Published, format!("{} (was {was}): {why}", publication.label));
                        settled.insert(lp.lineage);
                    }
                    Ok(false) => report.push(region, name, Some(&publication.image), Outcome::Unconfirmed, format!("written (was {was}), not yet visible: SSM validates aws:ec2:image values after answering; the next run confirms or writes it again")),
                    Err(e) => report.push(region, name, Some(&publication.image), Outcome::for_error(&e), format!("not published: {e}")),
                }
            }
            ParameterAction::Unchanged { image, why, label } => {
                match label {
                    Some((version, label)) if !ctx.dry_run() => {
                        match relabel(params.as_ref(), name, version, &label).await {
                            Ok(true) => report.push(region, name, Some(&image), Outcome::Published, format!("{label} put on version {version}, written by an earlier run (SSM had not shown it yet)")),
                            Ok(false) => report.push(region, name, Some(&image), Outcome::Unchanged, why),
                            Err(e) => report.push(region, name, Some(&image), Outcome::for_error(&e), format!("{why}; its version {version} could not be labelled {label}: {e}")),
                        }
                    }
                    _ => report.push(region, name, Some(&image), Outcome::Unchanged, why),
                }
                settled.insert(lp.lineage);
            }
            ParameterAction::WrongType { why, .. } => {
                report.push(region, name, None, Outcome::Refused, why)
            }
            ParameterAction::Held { pinned, newest } => {
                report.push(region, name, Some(&newest), Outcome::Held, format!("pinned to {pinned}: {newest} is not published until `amictl unpin --lineage {}`", lp.lineage));
                settled.insert(lp.lineage);
            }
            ParameterAction::Nothing { why } => {
                report.push(region, name, None, Outcome::Skipped, why)
            }
            ParameterAction::BadPin { why, .. } => {
                report.push(region, name, None, Outcome::Refused, why)
            }
        }
    }
    let templates = ctx.cloud.launch_templates(region);
    for tp in plan.templates {
        let subject = format!("launch template {} ({})", tp.name, tp.template);
        let waits = !settled.contains(&tp.lineage);
        match tp.action {
            TemplateAction::Refused { why } => {
                report.push(region, subject, None, Outcome::Refused, why)
            }
            TemplateAction::Unchanged { why } => {
                report.push(region, subject, None, Outcome::Unchanged, why)
            }
            _ if waits => report.push(
                region,
                subject,
                None,
                Outcome::Deferred,
                format!("waits for {}'s parameter to be published", tp.lineage),
            ),
            TemplateAction::SetDefault { version, image } => {
                if ctx.dry_run() {
                    report.push(
                        region,
                        subject,
                        Some(&image),
                        Outcome::Planned,
                        format!("would make version {version} the default"),
                    );
                    continue;
                }
                match templates.set_default_version(&tp.template, version).await {
                    Ok(()) => report.push(
                        region,
                        subject,
                        Some(&image),
                        Outcome::Published,
                        format!("version {version} (already {image}) is now the default"),
                    ),
                    Err(e) => report.push(
                        region,
                        subject,
                        Some(&image),
                        Outcome::for_error(&e),
                        format!("default not changed: {e}"),
                    ),
                }
            }
            TemplateAction::NewVersion {
                source_version,
                image,
                make_default,
                description,
                token,
            } => {
                let default = if make_default {
                    ", made the default"
                } else {
                    ""
                };
                if ctx.dry_run() {
                    report.push(region, subject, Some(&image), Outcome::Planned, format!("would add a version from version {source_version} with {image}{default}"));
                    continue;
                }
                let request = NewTemplateVersion {
                    template: tp.template.clone(),
                    source_version,
                    image: image.clone(),
                    description,
                    token,
                };
                let made = match templates.create_version(&request).await {
                    Ok(v) => v,
                    Err(e) => {
                        report.push(
                            region,
                            subject,
                            Some(&image),
                            Outcome::for_error(&e),
                            format!("no version added: {e}"),
                        );
                        continue;
                    }
                };
                if make_default {
                    if let Err(e) = templates.set_default_version(&tp.template, made).await {
                        report.push(region, subject, Some(&image), Outcome::for_error(&e), format!("version {made} added, not made the default: {e}; the next run makes it the default"));
                        continue;
                    }
                }
                report.push(
                    region,
                    subject,
                    Some(&image),
                    Outcome::Published,
                    format!("version {made} from version {source_version} with {image}{default}"),
                );
            }
        }
    }
}

/// Writes one publication: clears the labels of the oldest of 100 versions, writes,
/// reads back (bounded), labels. `Ok(false)`: written but not yet visible.
async fn publish_one(
    ctx: &Context,
    params: &dyn Parameters,
    name: &str,
    publication: &Publication,
) -> CloudResult<bool> {
    let history = params.history(name).await?;
    if history.len() >= SSM_VERSIONS_KEPT {
        if let Some(oldest) = history.first().filter(|v| !v.labels.is_empty()) {
            params.unlabel(name, oldest.version, &oldest.labels).await?;
        }
    }
    let version = params
        .put(&NewParameterVersion {
            name: name.to_owned(),
            value: publication.image.to_string(),
            description: publication.description.clone(),
            data_type: "aws:ec2:image",
        })
        .await?;
    if !confirmed(ctx, params, name, &publication.image, version).await? {
        return Ok(false);
    }
    params
        .label(name, version, std::slice::from_ref(&publication.label))
        .await?;
    Ok(true)
}

/// Labels `version` of `name` with `label` unless it already carries it; `Ok(true)` when
/// it did not.
async fn relabel(
    params: &dyn Parameters,
    name: &str,
    version: i64,
    label: &str,
) -> CloudResult<bool> {
    let history = params.history(name).await?;
    let Some(v) = history.iter().find(|v| v.version == version) else {
        return Ok(false);
    };
    if v.labels.iter().any(|l| l == label) {
        return Ok(false);
    }
    params.label(name, version, &[label.to_owned()]).await?;
    Ok(true)
}

/// Whether `name` shows `image` at `version` or later, read back up to
/// [`CONFIRM_ATTEMPTS`] times (never past the deadline).
async fn confirmed(
    ctx: &Context,
    params: &dyn Parameters,
    name: &str,
    image: &ImageId,
    version: i64,
) -> CloudResult<bool> {
    for attempt in 0..CONFIRM_ATTEMPTS {
        if attempt > 0 {
            if ctx.deadline.near() {
                return Ok(false);
            }
            tokio::time::sleep(CONFIRM_INTERVAL).await;
        }
        if let Some(now) = params.get(name).await? {
            if now.version >= version && now.value == image.as_str() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

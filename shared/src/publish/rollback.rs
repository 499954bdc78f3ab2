//! `amictl rollback` and `amictl unpin`: move a lineage's latest-image parameter (and its
//! tracked launch templates) back to an earlier image and pin it there, or lift the pin.
//!
//! A rollback writes `/ami-lifecycle/<deployment>/<lineage>/pinned` (a `text` parameter
//! holding the image id) in each region asked, then publishes: the planner
//! ([`super::plan`]) already keeps a pinned lineage on its pin, so the function's next run
//! or event cannot undo the rollback, and a template follows the parameter back (a new
//! version with the old image: a version is never deleted). [`Target`] picks the image:
//! a slot, or the publishable image before the one published now. `unpin` deletes the
//! pin and publishes the newest image again. Both print their plan unless applied
//! (the context's dry run).

use time::OffsetDateTime;

use super::names::LineageNames;
use super::plan::{self, publishable, Inventory, Scope};
use super::run::{apply, read_inventory, read_names, refuse_unnamed};
use super::{latest_parameter, pin_parameter};
use crate::config::Config;
use crate::context::Context;
use crate::lineage::retention_time;
use crate::model::{Image, InstanceId, Region};
use crate::ports::{NewParameterVersion, ParameterValue};
use crate::report::{Outcome, RunReport};
use crate::time_util::{rfc3339, slot_compact};

/// Which image a rollback goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The lineage's image of this slot.
    Slot(OffsetDateTime),
    /// The newest publishable image older than the one published now.
    Previous,
}

/// The image `target` names among `inv`'s images of `instance`, or why there is none.
pub fn rollback_target<'a>(
    inv: &'a Inventory,
    instance: &InstanceId,
    lineage: &str,
    target: Target,
    config: &Config,
) -> Result<&'a Image, String> {
    let mine: Vec<&Image> = inv
        .images
        .iter()
        .filter(|i| plan::instance_of(i).as_ref() == Some(instance))
        .filter(|i| publishable(i, config))
        .collect();
    let slots = || {
        let mut s: Vec<String> = mine
            .iter()
            .map(|i| slot_compact(plan::slot_of(i)))
            .collect();
        s.sort();
        s.dedup();
        if s.is_empty() {
            "none".to_owned()
        } else {
            s.join(", ")
        }
    };
    match target {
        Target::Slot(slot) => {
            let want = slot_compact(slot);
            mine.iter()
                .filter(|i| slot_compact(plan::slot_of(i)) == want)
                .min_by_key(|i| i.id.clone())
                .copied()
                .ok_or_else(|| {
                    format!(
                        "no publishable image of {lineage} for slot {want} in {} (slots here: {})",
                        inv.region,
                        slots()
                    )
                })
        }
        Target::Previous => {
            let current = inv
                .parameters
                .get(&latest_parameter(&config.deployment, lineage))
                .map(|p| p.value.trim().to_owned());
            let Some(current) = current else {
                return Err(format!(
                    "{lineage} has nothing published in {}: nothing to roll back",
                    inv.region
                ));
            };
            let bound = mine
                .iter()
                .find(|i| i.id.as_str() == current)
                .map_or(i64::MAX, |i| retention_time(i));
            mine.iter()
                .filter(|i| retention_time(i) < bound && i.id.as_str() != current)
                .max_by(|a, b| {
                    retention_time(a)
                        .cmp(&retention_time(b))
                        .then_with(|| b.id.cmp(&a.id))
                })
                .copied()
                .ok_or_else(|| {
                    format!(
                    "no publishable image of {lineage} older than {current} in {} (slots here: {})",
                    inv.region, slots()
                )
                })
        }
    }
}

/// Reads names, or reports why not; then the instance of `lineage`.
async fn lineage_instance(
    ctx: &Context,
    lineage: &str,
    report: &mut RunReport,
) -> Option<(LineageNames, InstanceId)> {
    let names = read_names(ctx, report).await?;
    match names.instance_named(lineage) {
        Some(i) => {
            let i = i.clone();
            Some((names, i))
        }
        None => {
            refuse_unnamed(ctx, names.why_unnamed(lineage), lineage, report);
            None
        }
    }
}

/// `amictl rollback`: in each of `regions`, pin `lineage` to `target` and publish.
pub async fn rollback(
    ctx: &Context,
    lineage: &str,
    target: Target,
    regions: &[Region],
    now: OffsetDateTime,
) -> RunReport {
    let mut report = RunReport::new("rollback", ctx.dry_run(), now);
    let Some((names, instance)) = lineage_instance(ctx, lineage, &mut report).await else {
        return report;
    };
    let scope = Scope::Lineage(lineage.to_owned());
    let pin = pin_parameter(&ctx.config.deployment, lineage);
    for region in regions {
        let Some(mut inv) = read_inventory(ctx, region, &scope, &names, &mut report).await else {
            continue;
        };
        let has_images = inv
            .images
            .iter()
            .any(|i| plan::instance_of(i).as_ref() == Some(&instance));
        if !has_images
            && !inv
                .parameters
                .contains_key(&latest_parameter(&ctx.config.deployment, lineage))
        {
            report.push(
                region,
                lineage,
                None,
                Outcome::Skipped,
                format!("{lineage} has no images here: nothing to roll back"),
            );
            continue;
        }
        let (image, slot) = match rollback_target(&inv, &instance, lineage, target, &ctx.config) {
            Ok(image) => (image.id.clone(), rfc3339(plan::slot_of(image))),
            Err(why) => {
                report.push(
                    region,
                    lineage,
                    None,
                    Outcome::Refused,
                    format!("{why}; nothing changed here"),
                );
                continue;
            }
        };
        if ctx.dry_run() {
            report.push(region, pin.as_str(), Some(&image), Outcome::Planned, format!("would pin {lineage} to {image} (slot {slot}); new images are held until `amictl unpin`"));
        } else {
            let written = ctx
                .cloud
                .parameters(region)
                .put(&NewParameterVersion {
                    name: pin.clone(),
                    value: image.to_string(),
                    description: format!(
                        "ami-lifecycle {}: {lineage} pinned to {} (slot {slot}) by amictl rollback at {}",
                        ctx.config.deployment, image, rfc3339(now)
                    ),
                    data_type: "text",
                })
                .await;
            if let Err(e) = written {
                report.push(
                    region,
                    pin.as_str(),
                    Some(&image),
                    Outcome::for_error(&e),
                    format!("not pinned: {e}; nothing changed here"),
                );
                continue;
            }
            report.push(
                region,
                pin.as_str(),
                Some(&image),
                Outcome::RolledBack,
                format!("{lineage} pinned to {image} (slot {slot})"),
            );
        }
        // The plan as the publisher will see it with the pin in place.
        inv.parameters.insert(
            pin.clone(),
            ParameterValue {
                name: pin.clone(),
                value: image.to_string(),
                version: 0,
                ..ParameterValue::default()
            },
        );
        let plan = plan::plan(&inv, &names, &ctx.config, &scope, now);
        apply(ctx, region, plan, &mut report).await;
    }
    report
}

/// `amictl unpin`: delete `lineage`'s pin in each of `regions` and publish its newest image.
pub async fn unpin(
    ctx: &Context,
    lineage: &str,
    regions: &[Region],
    now: OffsetDateTime,
) -> RunReport {
    let mut report = RunReport::new("unpin", ctx.dry_run(), now);
    let Some((names, _)) = lineage_instance(ctx, lineage, &mut report).await else {
        return report;
    };
    let scope = Scope::Lineage(lineage.to_owned());
    let pin = pin_parameter(&ctx.config.deployment, lineage);
    for region in regions {
        let Some(mut inv) = read_inventory(ctx, region, &scope, &names, &mut report).await else {
            continue;
        };
        if inv.parameters.remove(&pin).is_none() {
            report.push(
                region,
                pin.as_str(),
                None,
                Outcome::Unchanged,
                format!("{lineage} is not pinned here"),
            );
            continue;
        }
        if ctx.dry_run() {
            report.push(
                region,
                pin.as_str(),
                None,
                Outcome::Planned,
                format!("would unpin {lineage}"),
            );
        } else if let Err(e) = ctx.cloud.parameters(region).delete(&pin).await {
            report.push(
                region,
                pin.as_str(),
                None,
                Outcome::for_error(&e),
                format!("still pinned: {e}"),
            );
            continue;
        } else {
            report.push(
                region,
                pin.as_str(),
                None,
                Outcome::Unpinned,
                format!("{lineage} publishes its newest image again"),
            );
        }
        let plan = plan::plan(&inv, &names, &ctx.config, &scope, now);
        apply(ctx, region, plan, &mut report).await;
    }
    report
}

//! create-image's scheduled reconcile: what makes create-image level-triggered.
//!
//! For each schedule with an expression (`SCHEDULE_EXPRESSIONS`), the slot it last fired
//! for ([`crate::schedule::ScheduleExpression::last_fire`]) is checked:
//! - younger than the catch-up window (`CATCH_UP_WINDOW`, default half the schedule's
//!   period): the slot is run again — the same deterministic names, so racing the real run
//!   is harmless, images already made are `already-existed`, a lost schedule event or a
//!   lost continuation is made good (`created`, said to be a catch-up);
//! - older: each opted-in instance still without an image for it is reported `missed`,
//!   with the slot and the command that makes it.
//!
//! And each lineage of a schedule whose newest sealed image is older than the period plus
//! `STALE_GRACE` is reported `stale`. `missed` and `stale` reach the reports topic.

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

use super::plan::{self, Action};
use super::run::{read_inventory, run_slot, FUNCTION};
use super::ScheduleRun;
use crate::context::Context;
use crate::lineage;
use crate::model::{ImageState, Instance, Region};
use crate::ports::{all_images, ImageQuery};
use crate::report::{Outcome, RunReport};
use crate::seal;
use crate::tags::{key, InstanceSettings};
use crate::time_util::rfc3339;

/// Runs the reconcile at `now`; see the module docs.
pub async fn reconcile(ctx: &Context, now: OffsetDateTime) -> RunReport {
    let mut report = RunReport::new(FUNCTION, ctx.dry_run(), now);
    let config = &ctx.config;
    let home = config
        .regions
        .first()
        .cloned()
        .unwrap_or_else(|| Region::new("us-east-1"));
    let mut periods = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for schedule in &config.schedules {
        let Some(expr) = config.schedule_expressions.get(schedule) else {
            report.push(
                &home,
                format!("schedule {schedule}"),
                None,
                Outcome::Skipped,
                format!("no expression for it in SCHEDULE_EXPRESSIONS: missed slots of {schedule} are not caught up"),
            );
            continue;
        };
        let (Some(slot), Some(period)) = (expr.last_fire(now), expr.period(now)) else {
            continue;
        };
        let window = config
            .catch_up_window_minutes
            .map_or(period / 2, |m| Duration::minutes(i64::from(m)));
        let run = ScheduleRun::new(schedule.clone(), slot);
        // Unbounded: every deferred instance is read back below (`pending`).
        let mut one = RunReport::new(FUNCTION, ctx.dry_run(), now).unbounded();
        if now - slot <= window {
            ctx.progress(&format!(
                "catching up schedule {schedule} slot {}",
                rfc3339(slot)
            ));
            run_slot(ctx, &run, 0, now, &mut one).await;
            for item in &mut one.items {
                if item.outcome == Outcome::Created {
                    item.reason = format!(
                        "caught up (its schedule event or continuation was lost or late): {}",
                        item.reason
                    );
                }
            }
        } else {
            let (inventory, _) = read_inventory(ctx, &run, &mut one).await;
            let planned = plan::plan(&run, &inventory, config, now);
            let launched_after: Vec<&crate::model::InstanceId> = inventory
                .instances
                .iter()
                .filter(|i| i.launched.is_some_and(|t| t > slot))
                .map(|i| &i.id)
                .collect();
            for item in planned.items {
                // An instance launched after the slot cannot have missed it.
                if launched_after.contains(&&item.instance) {
                    continue;
                }
                let name = match &item.action {
                    Action::Create { request, .. } => request.name.clone(),
                    Action::Wait { name, .. } => name.clone(),
                    _ => continue,
                };
                one.push(
                    &item.region,
                    item.instance.as_str(),
                    None,
                    Outcome::Missed,
                    format!(
                        "no image for schedule {schedule} slot {} ({name}), older than the catch-up window ({} min): make it with amictl create-images --schedule {schedule} --slot {}",
                        rfc3339(slot),
                        window.whole_minutes(),
                        rfc3339(slot)
                    ),
                );
            }
        }
        // An instance whose image for the slot is on its way (a later reboot wave, a
        // throttled call) is not stale: the continuation makes it.
        pending.extend(
            one.items
                .iter()
                .filter(|i| i.outcome == Outcome::Deferred)
                .map(|i| i.subject.clone()),
        );
        report.merge(one);
        periods.push((schedule.as_str(), period));
    }
    // After the catch-up, so an image it just made counts.
    let newest = newest_per_lineage(ctx, &mut report).await;
    let instances = scheduled_instances(ctx).await;
    for (schedule, period) in periods {
        stale(
            ctx,
            &instances,
            &newest,
            &pending,
            (schedule, period),
            now,
            &mut report,
        );
    }
    report
}

/// The newest sealed image's retention time per (region, instance, schedule).
async fn newest_per_lineage(
    ctx: &Context,
    report: &mut RunReport,
) -> BTreeMap<(Region, String, String), i64> {
    let mut out = BTreeMap::new();
    for region in &ctx.config.regions {
        let ec2 = ctx.cloud.ec2(region);
        let images = match all_images(
            ec2.as_ref(),
            &ImageQuery::managed_by(&ctx.config.deployment),
        )
        .await
        {
            Ok(i) => i,
            Err(e) => {
                report.push(
                    region,
                    region.as_str(),
                    None,
                    Outcome::for_error(&e),
                    format!("could not list the managed images ({e}): staleness not checked"),
                );
                continue;
            }
        };
        let sealed = seal::sealed_only(&ctx.sealer, images, &ctx.config.deployment, None).await;
        // Pending counts: an image being made is not a stale lineage.
        let alive = |s: ImageState| lineage::is_counted(s) || s == ImageState::Pending;
        for image in sealed.iter().filter(|i| alive(i.state)) {
            // Only the region's own images (a replica carries its source's lineage tags).
            if image.tag(key::SOURCE_IMAGE).is_some() {
                continue;
            }
            if let (Some(instance), Some(schedule)) =
                (image.tag(key::SOURCE_INSTANCE), image.tag(key::SCHEDULE))
            {
                let t = lineage::retention_time(image);
                let e = out
                    .entry((region.clone(), instance.to_owned(), schedule.to_owned()))
                    .or_insert(t);
                *e = (*e).max(t);
            }
        }
    }
    out
}

/// The scheduled instances of every managed region, read once for every schedule's
/// staleness check (a region that cannot be read is left out of it).
async fn scheduled_instances(ctx: &Context) -> Vec<(Region, Vec<Instance>)> {
    let mut out = Vec::new();
    for region in &ctx.config.regions {
        if let Ok(instances) = ctx.cloud.ec2(region).scheduled_instances().await {
            out.push((region.clone(), instances));
        }
    }
    out
}

/// Reports each instance opted in to `schedule` whose newest image is older than the
/// period plus `STALE_GRACE` (an instance with no image yet is not stale: nothing was
/// ever made of it to go stale; a missed slot is reported `missed`).
fn stale(
    ctx: &Context,
    instances: &[(Region, Vec<Instance>)],
    newest: &BTreeMap<(Region, String, String), i64>,
    pending: &[String],
    (schedule, period): (&str, Duration),
    now: OffsetDateTime,
    report: &mut RunReport,
) {
    let limit = period + Duration::minutes(i64::from(ctx.config.stale_grace_minutes));
    for (region, instances) in instances {
        for instance in instances {
            let opted_in = InstanceSettings::from_tags(&instance.tags)
                .is_ok_and(|s| s.schedules.iter().any(|n| n.as_str() == schedule));
            if !opted_in
                || !plan::is_imageable(instance)
                || pending.contains(&instance.id.to_string())
            {
                continue;
            }
            let key = (region.clone(), instance.id.to_string(), schedule.to_owned());
            let Some(at) = newest.get(&key).map(|t| lineage::to_time(*t)) else {
                continue;
            };
            if now - at > limit {
                report.push(
                    region,
                    instance.id.as_str(),
                    None,
                    Outcome::Stale,
                    format!(
                        "its newest {schedule} image stands for {}, more than the schedule's period ({} h) plus STALE_GRACE ({} min) ago: check the schedule rule and the reports",
                        rfc3339(at),
                        period.whole_hours(),
                        ctx.config.stale_grace_minutes
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;

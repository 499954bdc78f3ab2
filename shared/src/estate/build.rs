//! [`build`]: inventory, launch permissions and cleanup's dry-run report → [`Estate`]. Pure.
//!
//! Lineages are grouped by [`Lineages`] and their rule named by
//! [`lineage::applied_rule`], as `amictl status` does; what happens to each image next is
//! the cleanup dry run's line for it, copied, never re-judged.

use std::collections::{BTreeMap, HashMap};

use time::OffsetDateTime;

use super::{
    AccountShares, Estate, ImageRow, LineageView, NextCleanup, Origin, PlanLine, RegionView,
};
use crate::config::Config;
use crate::lineage::{self, Lineages};
use crate::model::{Grantee, Image};
use crate::report::{Outcome, RunReport};

/// What [`build`] reads.
pub struct Inputs<'a> {
    pub config: &'a Config,
    /// Regions read, in order (a region without images still gets its section).
    pub regions: Vec<String>,
    /// Each managed image and who may launch it.
    pub images: Vec<(Image, Vec<Grantee>)>,
    /// Cleanup's dry-run report over the same regions.
    pub plan: &'a RunReport,
    pub notes: Vec<String>,
    pub now: OffsetDateTime,
}

/// The view model of the estate.
pub fn build(inputs: Inputs<'_>) -> Estate {
    let config = inputs.config;
    let price = config.price_per_gib_month;
    // The plan's line per (region, subject: an image id for an image's line); the rest are the region's other lines.
    let mut plan_lines: HashMap<(String, String), (Outcome, String)> = HashMap::new();
    for item in &inputs.plan.items {
        plan_lines
            .entry((item.region.to_string(), item.subject.clone()))
            .or_insert((item.outcome, item.reason.clone()));
    }
    let mut lineages = Lineages::new();
    let mut rows: Vec<Vec<ImageRow>> = Vec::new();
    let mut shares: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for (img, grantees) in &inputs.images {
        let Some(at) = lineages.add(img, &config.deployment) else {
            continue;
        };
        if rows.len() <= at {
            rows.resize_with(at + 1, Vec::new);
        }
        let key = (img.region.to_string(), img.id.to_string());
        let next_cleanup = match plan_lines.remove(&key) {
            None => NextCleanup::NotPlanned,
            Some((Outcome::Kept, reason)) => NextCleanup::Keep(reason),
            Some((Outcome::Planned, reason)) => NextCleanup::Retire(reason),
            Some((outcome, reason)) => NextCleanup::Other {
                outcome: outcome.as_str().to_owned(),
                reason,
            },
        };
        let shared_with: Vec<String> = grantees.iter().map(ToString::to_string).collect();
        let lineage_name = lineage::Lineage::of(img).to_string();
        for g in &shared_with {
            shares.entry(g.clone()).or_default().push((
                img.region.to_string(),
                lineage_name.clone(),
                img.id.to_string(),
            ));
        }
        let origin = match &img.source {
            Some((from, region)) if region != &img.region => Origin::Copied {
                from_region: region.to_string(),
                from_image: from.to_string(),
            },
            _ => Origin::Created,
        };
        rows[at].push(ImageRow {
            id: img.id.to_string(),
            name: img.name.clone(),
            state: img.state.as_str().to_owned(),
            created: img.created,
            retention_time: lineage::to_time(lineage::retention_time(img)),
            deprecation_time: img.deprecation_time,
            origin,
            size_gib: img.size_gib(),
            shared_with,
            next_cleanup,
        });
    }
    let mut by_region: BTreeMap<String, Vec<LineageView>> = BTreeMap::new();
    for (group, mut images) in lineages.groups().iter().zip(rows) {
        images.sort_by(|a, b| (a.retention_time, &a.id).cmp(&(b.retention_time, &b.id)));
        let gib = images.iter().map(|i| i.size_gib).sum::<u64>();
        let rule = match lineage::applied_rule(&group.head, config) {
            Ok(rule) => rule.to_string(),
            Err(bad) => format!("kept whole: {}", bad.error),
        };
        by_region
            .entry(group.region.to_string())
            .or_default()
            .push(LineageView {
                lineage: group.lineage.to_string(),
                rule,
                images,
                gib,
                #[allow(clippy::cast_precision_loss)]
                monthly_cost_usd: gib as f64 * price,
            });
    }
    // What the plan says that is not one of the images above, per region.
    let mut other: BTreeMap<String, Vec<PlanLine>> = BTreeMap::new();
    for item in &inputs.plan.items {
        let key = (item.region.to_string(), item.subject.clone());
        if plan_lines.remove(&key).is_some() {
            other
                .entry(item.region.to_string())
                .or_default()
                .push(PlanLine {
                    subject: item.subject.clone(),
                    outcome: item.outcome.as_str().to_owned(),
                    reason: item.reason.clone(),
                });
        }
    }
    let mut names = inputs.regions.clone();
    for r in by_region.keys().chain(other.keys()) {
        if !names.contains(r) {
            names.push(r.clone());
        }
    }
    let regions = names
        .into_iter()
        .map(|region| {
            let mut lineages = by_region.remove(&region).unwrap_or_default();
            lineages.sort_by(|a, b| a.lineage.cmp(&b.lineage));
            RegionView {
                other_plan: other.remove(&region).unwrap_or_default(),
                region,
                lineages,
            }
        })
        .collect();
    Estate {
        deployment: config.deployment.clone(),
        generated: inputs.now,
        price_per_gib_month: price,
        regions,
        shares: shares
            .into_iter()
            .map(|(grantee, mut images)| {
                images.sort();
                AccountShares { grantee, images }
            })
            .collect(),
        notes: inputs.notes,
    }
}

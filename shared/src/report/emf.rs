//! A run's CloudWatch metrics, in the embedded metric format (EMF): no API call, the log
//! line is the metric.
//!
//! [`documents`] turns a [`RunReport`] into EMF documents (pure: the report and the
//! deployment's name in, JSON out); [`emit`] writes them to stdout, one JSON object per
//! line, once the Lambda shell has called [`to_stdout`]. Lambda sends stdout to the
//! function's log group and CloudWatch Logs extracts the metrics from every line whose
//! root holds an `_aws` member. The `tracing` JSON lines cannot carry it: their fields sit
//! under `fields` and the report is a string there, hence lines of their own. `amictl`,
//! the simulator and the tests never call [`to_stdout`]: their stdout is a person's.
//!
//! Two kinds of document, all in namespace [`NAMESPACE`]:
//! - one per region the report has items in (kept or counted only, past
//!   [`super::ITEMS_PER_OUTCOME`]): the item counts of [`names::COUNTS`] (zeros
//!   included), under the dimension sets `[Deployment, Function]` and
//!   `[Deployment, Function, Region]`; summed over regions, the first set is the run's
//!   total.
//! - one per run: `Runs` = 1 and the report's figures that [`FIGURES`] maps (GiB freed,
//!   monthly saving, …; those a runner did not report are left out), under
//!   `[Deployment, Function]` only: runners total them over regions.
//!
//! A fanned-out run's summary report (its figures include `run_items`) repeats items its
//! work items already reported: its documents carry `Runs` and its figures, no counts.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Map, Value};

use super::{Outcome, ReportItem, RunReport};
use crate::model::Region;
use crate::tags::Consistency;

/// The CloudWatch namespace of every metric the suite emits.
pub const NAMESPACE: &str = "AmiLifecycle";
/// Dimension names (the root members holding their values).
pub const DEPLOYMENT: &str = "Deployment";
pub const FUNCTION: &str = "Function";
pub const REGION: &str = "Region";
/// The EMF limit on the metrics of one directive.
pub const MAX_METRICS_PER_DIRECTIVE: usize = 100;

/// Every metric name the functions emit (infra/tests/test_dashboard.py reads this module
/// as text: a dashboard widget may use only these).
pub mod names {
    pub const IMAGES_CREATED: &str = "ImagesCreated";
    pub const IMAGES_COPIED: &str = "ImagesCopied";
    pub const IMAGES_DELETED: &str = "ImagesDeleted";
    pub const IMAGES_DEPRECATED: &str = "ImagesDeprecated";
    pub const IMAGES_PUBLISHED: &str = "ImagesPublished";
    pub const SHARES_GRANTED: &str = "SharesGranted";
    pub const SHARES_REVOKED: &str = "SharesRevoked";
    pub const REBOOTS: &str = "Reboots";
    pub const FAILURES: &str = "Failures";
    pub const DEFERRED: &str = "Deferred";
    pub const UNSEALED: &str = "Unsealed";
    /// Reports finished: one per invocation (a fanned-out run: its fan-out, each batch of
    /// work items, its summary).
    pub const RUNS: &str = "Runs";
    pub const SNAPSHOTS_DELETED: &str = "SnapshotsDeleted";
    pub const GIB_FREED: &str = "GiBFreed";
    pub const GIB_STORED: &str = "GiBStored";
    pub const MONTHLY_SAVING_USD: &str = "MonthlySavingUSD";
    pub const MONTHLY_COST_USD: &str = "MonthlyCostUSD";

    /// The per-region counts, in document order.
    pub const COUNTS: [&str; 11] = [
        IMAGES_CREATED,
        IMAGES_COPIED,
        IMAGES_DELETED,
        IMAGES_DEPRECATED,
        IMAGES_PUBLISHED,
        SHARES_GRANTED,
        SHARES_REVOKED,
        REBOOTS,
        FAILURES,
        DEFERRED,
        UNSEALED,
    ];
}

/// Run figures: (metric, the report's `metrics` key, unit). Cleanup reports them all
/// (`gib_stored` and `monthly_cost_usd`: what stays stored after the run, per region).
pub const FIGURES: [(&str, &str, &str); 5] = [
    (names::SNAPSHOTS_DELETED, "snapshots_deleted", "Count"),
    (names::GIB_FREED, "gib_freed", "Gigabytes"),
    (names::GIB_STORED, "gib_stored", "Gigabytes"),
    (names::MONTHLY_SAVING_USD, "monthly_saving_usd", "None"),
    (names::MONTHLY_COST_USD, "monthly_cost_usd", "None"),
];

/// The figure that marks a fanned-out run's summary report (`run_items`).
const SUMMARY_FIGURE: &str = crate::fanout::summary::METRICS[2];

/// The counts one item adds to (none for most outcomes). A created image rebooted its
/// instance when its reason names the consistency `rebooted`: create-image writes
/// `NAME (CONSISTENCY[, reboot group …])…` for every image it makes.
pub(crate) fn counted_in(item: &ReportItem) -> &'static [&'static str] {
    match item.outcome {
        Outcome::Created if rebooted(&item.reason) => &[names::IMAGES_CREATED, names::REBOOTS],
        Outcome::Created => &[names::IMAGES_CREATED],
        Outcome::Copied => &[names::IMAGES_COPIED],
        // Orphan snapshots are items too; the snapshots deleted are a run figure.
        Outcome::Deleted if item.subject.starts_with("snap-") => &[],
        Outcome::Deleted => &[names::IMAGES_DELETED],
        Outcome::Deprecated => &[names::IMAGES_DEPRECATED],
        Outcome::Published => &[names::IMAGES_PUBLISHED],
        Outcome::Granted => &[names::SHARES_GRANTED],
        Outcome::Revoked => &[names::SHARES_REVOKED],
        Outcome::Failed => &[names::FAILURES],
        Outcome::Deferred => &[names::DEFERRED],
        Outcome::Unsealed | Outcome::NameSquatted => &[names::UNSEALED],
        _ => &[],
    }
}

fn rebooted(reason: &str) -> bool {
    let r = Consistency::Rebooted.as_str();
    reason.contains(&format!(" ({r})")) || reason.contains(&format!(" ({r}, reboot group "))
}

/// The EMF documents of `report` for deployment `deployment`: one per region with items,
/// then the run's (see the module docs). Timestamped with the run's start.
pub fn documents(report: &RunReport, deployment: &str) -> Vec<Value> {
    let timestamp =
        i64::try_from(report.started.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
    let summary = report.metrics.contains_key(SUMMARY_FIGURE);
    let mut per_region: BTreeMap<&Region, BTreeMap<&str, u64>> = BTreeMap::new();
    for item in report.items.iter().filter(|_| !summary) {
        let counts = per_region
            .entry(&item.region)
            .or_insert_with(|| names::COUNTS.iter().map(|n| (*n, 0)).collect());
        for name in counted_in(item) {
            *counts.entry(name).or_insert(0) += 1;
        }
    }
    // The items the report left out count too: it kept their counts per region.
    for (region, left_out) in report.omitted_metrics.iter().filter(|_| !summary) {
        let counts = per_region
            .entry(region)
            .or_insert_with(|| names::COUNTS.iter().map(|n| (*n, 0)).collect());
        for (name, n) in left_out {
            *counts.entry(name).or_insert(0) += n;
        }
    }
    let base = |extra: Option<&Region>| {
        let mut root = Map::new();
        root.insert(DEPLOYMENT.to_owned(), json!(deployment));
        root.insert(FUNCTION.to_owned(), json!(report.function));
        if let Some(r) = extra {
            root.insert(REGION.to_owned(), json!(r.as_str()));
        }
        root
    };
    let mut docs = Vec::new();
    for (region, counts) in per_region {
        let mut root = base(Some(region));
        let metrics: Vec<(&str, &str)> = names::COUNTS.iter().map(|n| (*n, "Count")).collect();
        for name in names::COUNTS {
            root.insert(
                name.to_owned(),
                json!(counts.get(name).copied().unwrap_or(0)),
            );
        }
        let dims = json!([[DEPLOYMENT, FUNCTION], [DEPLOYMENT, FUNCTION, REGION]]);
        docs.push(document(root, timestamp, &dims, &metrics));
    }
    let mut root = base(None);
    let mut metrics = vec![(names::RUNS, "Count")];
    root.insert(names::RUNS.to_owned(), json!(1));
    for (name, key, unit) in FIGURES {
        if let Some(v) = report.metrics.get(key).filter(|v| v.is_finite()) {
            root.insert(name.to_owned(), json!(v));
            metrics.push((name, unit));
        }
    }
    docs.push(document(
        root,
        timestamp,
        &json!([[DEPLOYMENT, FUNCTION]]),
        &metrics,
    ));
    docs
}

/// One document: `root` (dimension values and metric values) plus its `_aws` metadata, the
/// metrics split into directives of at most [`MAX_METRICS_PER_DIRECTIVE`].
pub fn document(
    mut root: Map<String, Value>,
    timestamp_ms: i64,
    dimensions: &Value,
    metrics: &[(&str, &str)],
) -> Value {
    let directives: Vec<Value> = metrics
        .chunks(MAX_METRICS_PER_DIRECTIVE)
        .map(|chunk| {
            json!({
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": chunk
                    .iter()
                    .map(|(name, unit)| json!({ "Name": name, "Unit": unit }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    root.insert(
        "_aws".to_owned(),
        json!({ "Timestamp": timestamp_ms, "CloudWatchMetrics": directives }),
    );
    Value::Object(root)
}

/// Writes each document as one line (no newline inside: a log event per document).
pub fn write_lines(docs: &[Value], out: &mut impl Write) -> std::io::Result<()> {
    let mut text = String::new();
    for doc in docs {
        text.push_str(&doc.to_string());
        text.push('\n');
    }
    out.write_all(text.as_bytes())?;
    out.flush()
}

static TO_STDOUT: AtomicBool = AtomicBool::new(false);

/// From now on [`emit`] writes to stdout (the Lambda shell calls this at start-up).
pub fn to_stdout() {
    TO_STDOUT.store(true, Ordering::Relaxed);
}

/// Writes the report's documents to stdout if [`to_stdout`] was called; a failed write
/// is logged, never a failed run.
pub fn emit(report: &RunReport, deployment: &str) {
    if !TO_STDOUT.load(Ordering::Relaxed) {
        return;
    }
    let docs = documents(report, deployment);
    if let Err(e) = write_lines(&docs, &mut std::io::stdout().lock()) {
        tracing::warn!(error = %e, "could not write the run's metrics");
    }
}

#[cfg(test)]
#[path = "emf_tests.rs"]
mod tests;

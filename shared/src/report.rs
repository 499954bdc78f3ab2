//! [`RunReport`]: every run ends in one, whatever happened.
//!
//! A report lists one [`ReportItem`] per instance, image, snapshot or grant a run touched
//! or decided about, with an [`Outcome`] and a reason. It renders as a table for people,
//! as JSON for `--json`, and as the detail of the `ami-lifecycle` event published to
//! EventBridge ([`RunReport::event_detail`]).
//!
//! A report keeps the first [`ITEMS_PER_OUTCOME`] items of each outcome and every failure;
//! the others are counted ([`RunReport::omitted`]) and, inside a [`sink::streaming`] scope,
//! handed to a [`ReportSink`] as they are left out (`amictl cleanup --json` writes every
//! item that way). Counts, outcome and metrics stay exact whatever is left out, so a run over
//! 50,000 images holds a few hundred items.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{CloudError, ErrorKind};
use crate::model::{AccountId, ImageId, Region};

pub mod emf;
pub mod sink;

pub use self::sink::ReportSink;

/// The items of one outcome a report keeps (failures: all of them); the others are counted
/// and streamed ([`sink`]). Enough to see what a run did; bounded so that a run's memory,
/// its log line and its event do not grow with the estate.
pub const ITEMS_PER_OUTCOME: usize = 100;

/// What happened to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// A dry run would do this (the detail says what).
    Planned,
    Created,
    /// The work was already done (duplicate event, retried run).
    AlreadyExisted,
    Copied,
    /// Postponed to a later run (throttling, copy quota, deadline, next wave).
    Deferred,
    Deprecated,
    /// Disabled by cleanup's staged retirement (`DISABLE_GRACE`): hidden and unshared,
    /// restorable with `amictl restore` until it is deregistered.
    Disabled,
    /// Re-enabled by `amictl restore` (EnableImage, deprecation cancelled).
    Restored,
    Deleted,
    Kept,
    Granted,
    Revoked,
    Unchanged,
    /// Refused by policy (allow-list, public sharing, aws/ebs key).
    Refused,
    Skipped,
    Failed,
    /// Tagged `managed-by` but its seal does not verify (forged, copied, edited, or made
    /// before the seal): never touched, and alarmed on.
    Unsealed,
    /// The deterministic name of an image the suite would make is taken by an image that
    /// is not sealed: nothing made, and alarmed on.
    NameSquatted,
    /// Sealed by `amictl seal --adopt` (the migration from a release before the seal).
    Sealed,
    /// A schedule slot that has no image and is too old to be caught up: alarmed on.
    Missed,
    /// A lineage whose newest image is older than its schedule's period plus grace.
    Stale,
    /// A copy still pending past its completion deadline (`COPY_COMPLETION_MINUTES`,
    /// requested with it on CopyImage): alarmed on.
    Late,
    /// A latest-image parameter or a tracked launch template now names the image.
    Published,
    /// A new image is not published because the lineage is pinned (`amictl rollback`).
    Held,
    /// `amictl rollback` moved a parameter back and pinned the lineage there.
    RolledBack,
    /// `amictl unpin`: the lineage publishes its newest image again.
    Unpinned,
    /// Two instances claim the same readable lineage name: neither is published, alarmed on.
    NameCollision,
    /// SSM answered the write of an `aws:ec2:image` value but has not shown it yet (it
    /// validates asynchronously): the next run confirms or writes it again.
    Unconfirmed,
    /// A work item of a fanned-out run sent to the function's work queue (issue 18).
    Queued,
    /// `amictl migrate`: the instance runs in its new zone or region (issue 20).
    Migrated,
}

impl Outcome {
    /// The outcome of an item whose call failed with `error`: `Deferred` when a later run
    /// can succeed (throttling, a quota, a transient failure), else `Failed`.
    pub fn for_error(error: &CloudError) -> Self {
        Self::for_kind(error.kind)
    }

    /// [`Outcome::for_error`] for an error already reduced to its kind.
    pub fn for_kind(kind: ErrorKind) -> Self {
        if kind.is_retryable() {
            Self::Deferred
        } else {
            Self::Failed
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Created => "created",
            Self::AlreadyExisted => "already-existed",
            Self::Copied => "copied",
            Self::Deferred => "deferred",
            Self::Deprecated => "deprecated",
            Self::Disabled => "disabled",
            Self::Restored => "restored",
            Self::Deleted => "deleted",
            Self::Kept => "kept",
            Self::Granted => "granted",
            Self::Revoked => "revoked",
            Self::Unchanged => "unchanged",
            Self::Refused => "refused",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::Unsealed => "unsealed",
            Self::NameSquatted => "name-squatted",
            Self::Sealed => "sealed",
            Self::Missed => "missed",
            Self::Stale => "stale",
            Self::Late => "late",
            Self::Published => "published",
            Self::Held => "held",
            Self::RolledBack => "rolled-back",
            Self::Unpinned => "unpinned",
            Self::NameCollision => "name-collision",
            Self::Unconfirmed => "unconfirmed",
            Self::Queued => "queued",
            Self::Migrated => "migrated",
        }
    }
}

/// One line of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportItem {
    /// The account the item is in, when the deployment acts on several
    /// (`AMI_LIFECYCLE_ACCOUNTS`); absent otherwise, so a one-account report is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    pub region: Region,
    /// The instance, image, snapshot or key the item is about.
    pub subject: String,
    /// The image concerned, when the subject is not itself the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageId>,
    pub outcome: Outcome,
    pub reason: String,
}

/// The result of one run of one function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub function: String,
    pub dry_run: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    /// The items kept: the first [`ITEMS_PER_OUTCOME`] of each outcome, every failure
    /// (add them with [`RunReport::push`] or [`RunReport::add`], which keep the bound).
    pub items: Vec<ReportItem>,
    /// How many items of each outcome were left out of `items` (counted in
    /// [`RunReport::counts`]); absent when none was.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub omitted: BTreeMap<Outcome, usize>,
    /// The metric counts ([`emf::counted_in`]) of the items left out, per region.
    #[serde(skip)]
    pub(crate) omitted_metrics: BTreeMap<Region, BTreeMap<&'static str, u64>>,
    /// Where items left out go ([`sink`]).
    #[serde(skip)]
    stream: sink::Attached,
    /// Keeps every item ([`RunReport::unbounded`]).
    #[serde(skip)]
    unbounded: bool,
    /// Set when the run stopped early (deadline) and the next run continues.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
    /// Figures such as `gib_freed` or `monthly_saving_usd`.
    pub metrics: BTreeMap<String, f64>,
    /// The fanned-out run this report belongs to (issue 18: the fanning invocation, each
    /// work item, the summary), so a run's reports can be found together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// For a batch of work items: the SQS message ids to deliver again (Lambda's
    /// `ReportBatchItemFailures`); empty = every message is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_item_failures: Option<Vec<String>>,
}

/// The most items an EventBridge report carries: PutEvents entries are limited to 256 KiB.
const EVENT_ITEM_LIMIT: usize = 200;

impl RunReport {
    pub fn new(function: &str, dry_run: bool, started: OffsetDateTime) -> Self {
        Self {
            function: function.to_owned(),
            dry_run,
            started,
            items: Vec::new(),
            omitted: BTreeMap::new(),
            omitted_metrics: BTreeMap::new(),
            stream: sink::Attached(sink::current()),
            unbounded: false,
            incomplete: None,
            metrics: BTreeMap::new(),
            run: None,
            batch_item_failures: None,
        }
    }

    pub fn push(
        &mut self,
        region: &Region,
        subject: impl Into<String>,
        image: Option<&ImageId>,
        outcome: Outcome,
        reason: impl Into<String>,
    ) {
        self.add(ReportItem {
            account: None,
            region: region.clone(),
            subject: subject.into(),
            image: image.cloned(),
            outcome,
            reason: reason.into(),
        });
    }

    /// Adds one item: kept while its outcome has fewer than [`ITEMS_PER_OUTCOME`] (always
    /// for a failure), else counted and streamed.
    pub fn add(&mut self, item: ReportItem) {
        if self.keeps(item.outcome) {
            self.items.push(item);
        } else {
            self.leave_out(item);
        }
    }

    /// A report that keeps every item: for a part of a run whose items are read back to
    /// decide (create-image's catch-up reads every deferred instance). Merging it into a
    /// bounded report bounds its items there.
    #[must_use]
    pub fn unbounded(mut self) -> Self {
        self.unbounded = true;
        self
    }

    fn keeps(&self, outcome: Outcome) -> bool {
        // Once an outcome has left one out it is full; until then its kept items are few.
        self.unbounded
            || outcome == Outcome::Failed
            || (!self.omitted.contains_key(&outcome)
                && self.items.iter().filter(|i| i.outcome == outcome).count() < ITEMS_PER_OUTCOME)
    }

    fn leave_out(&mut self, item: ReportItem) {
        *self.omitted.entry(item.outcome).or_insert(0) += 1;
        let names = emf::counted_in(&item);
        if !names.is_empty() {
            let counts = self.omitted_metrics.entry(item.region.clone()).or_default();
            for name in names {
                *counts.entry(name).or_insert(0) += 1;
            }
        }
        if let Some(scope) = &self.stream.0 {
            scope.send(item);
        }
    }

    /// Adds another report's items and metrics (per-region runs merged into one). Its kept
    /// items are bounded here; those it left out were streamed when it left them out.
    pub fn merge(&mut self, other: RunReport) {
        for item in other.items {
            self.add(item);
        }
        for (outcome, n) in other.omitted {
            *self.omitted.entry(outcome).or_insert(0) += n;
        }
        for (region, counts) in other.omitted_metrics {
            let mine = self.omitted_metrics.entry(region).or_default();
            for (name, n) in counts {
                *mine.entry(name).or_insert(0) += n;
            }
        }
        for (k, v) in other.metrics {
            *self.metrics.entry(k).or_insert(0.0) += v;
        }
        if self.incomplete.is_none() {
            self.incomplete = other.incomplete;
        }
    }

    /// Items of `outcome`, kept or left out.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.items.iter().filter(|i| i.outcome == outcome).count()
            + self.omitted.get(&outcome).copied().unwrap_or(0)
    }

    /// Every item, kept or left out.
    pub fn total(&self) -> usize {
        self.items.len() + self.omitted.values().sum::<usize>()
    }

    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for i in &self.items {
            *out.entry(i.outcome.as_str()).or_insert(0) += 1;
        }
        for (outcome, n) in &self.omitted {
            *out.entry(outcome.as_str()).or_insert(0) += n;
        }
        out
    }

    pub fn failed(&self) -> usize {
        self.count(Outcome::Failed)
    }

    /// Items that are evidence of tampering (`unsealed`, `name-squatted`): the report
    /// event's `unsealed` count, which the stack alarms on.
    pub fn unsealed(&self) -> usize {
        self.count(Outcome::Unsealed) + self.count(Outcome::NameSquatted)
    }

    /// `ok` when nothing failed, `failed` when everything that was attempted failed,
    /// `partial` otherwise.
    pub fn outcome(&self) -> &'static str {
        let failed = self.failed();
        if failed == 0 {
            "ok"
        } else if failed == self.total() {
            "failed"
        } else {
            "partial"
        }
    }

    /// The detail of the `AMI Lifecycle Report` event: counts always, items capped.
    pub fn event_detail(&self) -> serde_json::Value {
        let mut items: Vec<&ReportItem> = self
            .items
            .iter()
            .filter(|i| i.outcome == Outcome::Failed)
            .collect();
        items.extend(self.items.iter().filter(|i| i.outcome != Outcome::Failed));
        let truncated = items.len() > EVENT_ITEM_LIMIT || !self.omitted.is_empty();
        items.truncate(EVENT_ITEM_LIMIT);
        let mut detail = serde_json::json!({
            "function": self.function,
            "outcome": self.outcome(),
            "dry_run": self.dry_run,
            "started": self.started.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "counts": self.counts(),
            "failed": self.failed(),
            "unsealed": self.unsealed(),
            "incomplete": self.incomplete,
            "metrics": self.metrics,
            "items": items,
            "items_truncated": truncated,
        });
        if let Some(run) = &self.run {
            detail["run"] = serde_json::json!(run);
        }
        if let Some(ids) = &self.batch_item_failures {
            // The shape Lambda reads from an SQS-triggered function's response.
            detail["batchItemFailures"] = ids
                .iter()
                .map(|id| serde_json::json!({ "itemIdentifier": id }))
                .collect();
        }
        detail
    }

    /// Sets the account of every kept item that has none (a run in one account of several;
    /// items already streamed were tagged by [`sink::in_account`]).
    pub fn in_account(mut self, account: &AccountId) -> Self {
        for i in &mut self.items {
            i.account.get_or_insert_with(|| account.clone());
        }
        self
    }

    /// A table for a terminal: one row per item, then the counts. The ACCOUNT column is
    /// shown only when some item names an account.
    pub fn render_table(&self) -> String {
        let mut out = if self.items.iter().any(|i| i.account.is_some()) {
            let headers = ["ACCOUNT", "REGION", "SUBJECT", "IMAGE", "OUTCOME", "REASON"];
            let rows: Vec<[String; 6]> = self
                .items
                .iter()
                .map(|i| {
                    let [region, subject, image, outcome, reason] = Self::cells(i);
                    [
                        i.account
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                        region,
                        subject,
                        image,
                        outcome,
                        reason,
                    ]
                })
                .collect();
            render_rows(&headers, &rows)
        } else {
            let headers = ["REGION", "SUBJECT", "IMAGE", "OUTCOME", "REASON"];
            let rows: Vec<[String; 5]> = self.items.iter().map(Self::cells).collect();
            render_rows(&headers, &rows)
        };
        for (outcome, n) in &self.omitted {
            let _ = writeln!(out, "… and {n} more {}", outcome.as_str());
        }
        self.render_summary(&mut out);
        out
    }

    fn cells(i: &ReportItem) -> [String; 5] {
        [
            i.region.to_string(),
            i.subject.clone(),
            i.image
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            i.outcome.as_str().to_owned(),
            i.reason.clone(),
        ]
    }

    fn render_summary(&self, out: &mut String) {
        let counts: Vec<String> = self
            .counts()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(
            out,
            "{}{}: {}{}",
            self.function,
            if self.dry_run { " (dry run)" } else { "" },
            if counts.is_empty() {
                "nothing to do".to_owned()
            } else {
                counts.join(" ")
            },
            self.incomplete
                .as_ref()
                .map(|r| format!(" — incomplete: {r}"))
                .unwrap_or_default()
        );
        for (k, v) in &self.metrics {
            let _ = writeln!(out, "{k}: {v:.2}");
        }
    }
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
pub fn render_rows<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = headers.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{:width$}  ", cell, width = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_failed_call_defers_when_a_later_run_can_succeed_and_fails_otherwise() {
        for (code, expected) in [
            ("RequestLimitExceeded", Outcome::Deferred),
            ("ResourceLimitExceeded", Outcome::Deferred),
            ("AMIQuotaExceeded", Outcome::Failed),
            ("SnapshotLimitExceeded", Outcome::Failed),
            ("InternalError", Outcome::Deferred),
            ("InvalidParameterValue", Outcome::Failed),
            ("UnauthorizedOperation", Outcome::Failed),
            ("SomethingNew", Outcome::Failed),
        ] {
            let e = CloudError::from_code("CopyImage", None, code, "");
            assert_eq!(Outcome::for_error(&e), expected, "{code}");
        }
    }

    fn sample() -> RunReport {
        let r = Region::new("us-east-1");
        let mut rep = RunReport::new("create-image", false, datetime!(2026-11-22 03:00 UTC));
        rep.push(
            &r,
            "i-1",
            Some(&ImageId::new("ami-1")),
            Outcome::Created,
            "rebooted",
        );
        rep.push(
            &r,
            "i-2",
            None,
            Outcome::Failed,
            "CreateImage failed: InternalError",
        );
        rep.push(&r, "i-3", None, Outcome::Skipped, "terminated");
        rep
    }

    #[test]
    fn counts_and_outcome() {
        let rep = sample();
        assert_eq!(rep.failed(), 1);
        assert_eq!(rep.outcome(), "partial");
        assert_eq!(rep.counts().get("created"), Some(&1));
        let empty = RunReport::new("cleanup", true, datetime!(2026-11-22 03:00 UTC));
        assert_eq!(empty.outcome(), "ok");
    }

    #[test]
    fn event_detail_puts_failures_first_and_caps_items() {
        let mut rep = sample();
        // Three outcomes: more items than an event carries, none past the report's bound.
        for outcome in [Outcome::Skipped, Outcome::Unchanged, Outcome::Kept] {
            for n in 0..ITEMS_PER_OUTCOME - 1 {
                rep.push(
                    &Region::new("us-east-1"),
                    format!("i-x{n}"),
                    None,
                    outcome,
                    "not opted in",
                );
            }
        }
        let detail = rep.event_detail();
        assert_eq!(detail["failed"], 1);
        assert_eq!(detail["items"][0]["outcome"], "failed");
        assert_eq!(detail["items"].as_array().map(Vec::len), Some(200));
        assert_eq!(detail["items_truncated"], true);
        assert_eq!(detail["counts"]["skipped"], ITEMS_PER_OUTCOME);
    }

    #[test]
    fn the_account_column_and_field_appear_only_when_an_item_has_an_account() {
        let one = sample();
        assert!(!one.render_table().contains("ACCOUNT"));
        assert!(one.event_detail()["items"][0].get("account").is_none());
        let Some(spoke) = AccountId::parse("222233334444") else {
            panic!("an account id");
        };
        let many = sample().in_account(&spoke);
        let text = many.render_table();
        assert!(text.starts_with("ACCOUNT"), "{text}");
        assert!(text.contains("222233334444  us-east-1"), "{text}");
        assert_eq!(many.event_detail()["items"][0]["account"], "222233334444");
        let back: RunReport =
            serde_json::from_value(serde_json::to_value(&one).unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, one);
    }

    #[test]
    fn table_has_a_row_per_item_and_a_summary() {
        let text = sample().render_table();
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.contains("i-2"));
        assert!(
            text.contains("create-image: created=1 failed=1 skipped=1"),
            "{text}"
        );
    }
}

#[cfg(test)]
#[path = "report/bounded_tests.rs"]
mod bounded_tests;

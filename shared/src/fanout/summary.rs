//! The run summary: once a fanned-out run's last item is recorded, one report for the
//! whole run — accounts, regions, items done / deferred / failed — with a line for every
//! item that did not end done. Exactly one invocation publishes it: the one whose
//! conditional claim on the run succeeds.

use std::collections::BTreeSet;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::context::Context;
use crate::ports::{ItemState, Ledger, RunCounts};
use crate::report::{Outcome, ReportItem, RunReport};
use crate::runner::accounts::home;

/// The summary's metrics (a report's `metrics`), so alarms and tests can read them.
pub const METRICS: [&str; 6] = [
    "run_accounts",
    "run_regions",
    "run_items",
    "run_done",
    "run_deferred",
    "run_failed",
];

/// After an item was recorded (`counts`: the run's counters then, `None` when it was
/// recorded before): publishes the summary if no item remains and this call wins the claim.
pub async fn after_record(
    ctx: &Context,
    ledger: &Arc<dyn Ledger>,
    run: &str,
    function: &str,
    counts: Option<RunCounts>,
    now: OffsetDateTime,
) {
    let Some(counts) = counts else { return };
    if counts.remaining > 0 {
        return;
    }
    match ledger.claim_summary(run, now).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(run, error = %e, "could not claim the run summary");
            return;
        }
    }
    match summarize(ctx, ledger.as_ref(), run, function, now).await {
        Ok(report) => {
            ctx.finish(report).await;
        }
        Err(e) => tracing::warn!(run, error = %e, "could not read the run's items for its summary"),
    }
}

/// The summary report of `run` from the ledger's records.
pub async fn summarize(
    ctx: &Context,
    ledger: &dyn Ledger,
    run: &str,
    function: &str,
    now: OffsetDateTime,
) -> crate::error::CloudResult<RunReport> {
    let records = ledger.items(run).await?;
    let mut report = RunReport::new(function, ctx.dry_run(), now);
    report.run = Some(run.to_owned());
    let accounts: BTreeSet<_> = records.iter().map(|r| r.account.clone()).collect();
    let regions: BTreeSet<_> = records.iter().filter_map(|r| r.region.clone()).collect();
    let count = |s: ItemState| records.iter().filter(|r| r.state == s).count() as f64;
    let figures = [
        accounts.len() as f64,
        regions.len() as f64,
        records.len() as f64,
        count(ItemState::Done),
        count(ItemState::Deferred),
        count(ItemState::Failed),
    ];
    for (name, value) in METRICS.iter().zip(figures) {
        report.metrics.insert((*name).to_owned(), value);
    }
    for r in records.iter().filter(|r| r.state != ItemState::Done) {
        report.add(ReportItem {
            account: Some(r.account.clone()),
            region: r.region.clone().unwrap_or_else(|| home(ctx)),
            subject: r.item.clone(),
            image: None,
            outcome: if r.state == ItemState::Failed {
                Outcome::Failed
            } else {
                Outcome::Deferred
            },
            reason: r.line.clone(),
        });
    }
    report.add(ReportItem {
        account: None,
        region: home(ctx),
        subject: run.to_owned(),
        image: None,
        outcome: Outcome::Unchanged,
        reason: format!(
            "run {run} finished: {} accounts, {} regions, {} items: {} done, {} deferred, {} failed",
            figures[0], figures[1], figures[2], figures[3], figures[4], figures[5]
        ),
    });
    Ok(report)
}

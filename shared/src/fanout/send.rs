//! [`fan_out`]: the fanning invocation — accounts resolved, the run recorded, one work
//! item per (account, region) sent to the function's own queue.

use serde_json::Value;
use time::OffsetDateTime;

use super::{summary, WorkItem};
use crate::context::Context;
use crate::model::Region;
use crate::ports::{ItemRecord, ItemState};
use crate::report::{Outcome, ReportItem, RunReport};
use crate::runner::accounts::{home, push, select_accounts, Scope};
use crate::runner::{Runner, Split};

/// SQS `SendMessageBatch` takes at most 10 messages.
pub const SEND_BATCH: usize = 10;

/// Fans the run `run` of runner `R` out (see the module docs); the report has one
/// `queued` line per item sent, and the accounts left out or unreadable.
pub async fn fan_out<R: Runner>(
    ctx: &Context,
    run: &str,
    payload: &Value,
    split: &Split,
    now: OffsetDateTime,
) -> RunReport {
    let selected = select_accounts(ctx, R::NAME, now, Scope::Selected).await;
    let mut report = selected.report;
    report.run = Some(run.to_owned());
    let (Some(queue), Some(ledger)) = (ctx.cloud.work_queue(), ctx.cloud.ledger()) else {
        push(
            &mut report,
            ctx,
            None,
            run,
            Outcome::Failed,
            "the work queue or the run ledger is not reachable from this function: nothing sent; check WORK_QUEUE_URL and RUN_LEDGER_TABLE".to_owned(),
        );
        return report;
    };
    let regions: Vec<Option<Region>> = match split {
        Split::PerRegion(rs) => rs.iter().cloned().map(Some).collect(),
        Split::PerAccount => vec![None],
    };
    let items: Vec<WorkItem> = selected
        .accounts
        .iter()
        .flat_map(|account| {
            regions.iter().map(move |region| WorkItem {
                run: run.to_owned(),
                item: WorkItem::item_id(account, region.as_ref(), 0),
                function: R::NAME.to_owned(),
                account: account.clone(),
                region: region.clone(),
                payload: payload.clone(),
                round: 0,
            })
        })
        .collect();
    report
        .metrics
        .insert("accounts".to_owned(), selected.accounts.len() as f64);
    if items.is_empty() {
        return report;
    }
    let total = u32::try_from(items.len()).unwrap_or(u32::MAX);
    match ledger.start_run(run, total, now).await {
        Ok(true) => {}
        Ok(false) => {
            push(
                &mut report,
                ctx,
                None,
                run,
                Outcome::Skipped,
                format!("run {run} was already fanned out (the trigger came again): its {total} work items are not sent twice"),
            );
            return report;
        }
        Err(e) => {
            push(
                &mut report,
                ctx,
                None,
                run,
                Outcome::for_error(&e),
                format!("run {run} could not be recorded in the run ledger ({e}): no work item sent; the next scheduled run does the work"),
            );
            return report;
        }
    }
    for chunk in items.chunks(SEND_BATCH) {
        let bodies: Vec<String> = chunk.iter().map(WorkItem::body).collect();
        let sent = queue.send(&bodies, 0).await;
        for (item, result) in chunk.iter().zip(sent) {
            let region = item.region.clone().unwrap_or_else(|| home(ctx));
            let (outcome, reason) = match result {
                Ok(()) => (
                    Outcome::Queued,
                    format!("work item {} of run {run} sent", item.item),
                ),
                Err(e) => {
                    // Never sent, never consumed: recorded failed so the run still ends
                    // (and its summary names it).
                    let line =
                        format!("not sent to the work queue ({e}); the next scheduled run does it");
                    let record = ItemRecord {
                        item: item.item.clone(),
                        account: item.account.clone(),
                        region: item.region.clone(),
                        state: ItemState::Failed,
                        line: line.clone(),
                    };
                    match ledger.finish_item(run, &record, now).await {
                        Ok(counts) => {
                            summary::after_record(ctx, &ledger, run, R::NAME, counts, now).await
                        }
                        Err(le) => {
                            tracing::warn!(run, item = %item.item, error = %le, "could not record an unsent item")
                        }
                    }
                    (Outcome::for_error(&e), line)
                }
            };
            // Added whole: past the report's bound it is counted, not kept last.
            report.add(ReportItem {
                account: Some(item.account.clone()),
                region,
                subject: item.item.clone(),
                image: None,
                outcome,
                reason,
            });
        }
    }
    report
        .metrics
        .insert("work_items".to_owned(), f64::from(total));
    report
}

//! [`consume`]: one invocation of the function for a batch of work items (the template's
//! event source sends one at a time). Each item: skipped when the ledger has it, else run
//! in its account and region, then handed back to SQS or recorded once.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{summary, QueuedItem, WorkItem};
use crate::context::Context;
use crate::error::CloudResult;
use crate::events::parse_trigger;
use crate::ports::{Continuations, ItemRecord, ItemState, Ledger, WorkQueue};
use crate::report::{Outcome, ReportItem, RunReport};
use crate::runner::accounts::{home, open_account};
use crate::runner::{RequestError, Runner};

/// What became of one delivered item.
enum Fate {
    /// Finished earlier (a redelivery): nothing done.
    AlreadyDone(ItemState),
    /// Handed back to SQS (`batchItemFailures`): delivered again after the visibility
    /// timeout, up to `WORK_MAX_RECEIVES`.
    Retry(String),
    /// Recorded in the ledger with this state.
    Recorded(ItemState, String),
}

/// Runs a batch of work items of runner `R`; the report merges the items' runs, with the
/// ids of the messages SQS must deliver again in `batch_item_failures`.
pub async fn consume<R: Runner>(
    ctx: &Context,
    batch: Vec<QueuedItem>,
    now: OffsetDateTime,
) -> Result<RunReport, RequestError> {
    let (Some(ledger), Some(queue)) = (ctx.cloud.ledger(), ctx.cloud.work_queue()) else {
        // Without the ledger a redelivery could not be told from a first delivery: every
        // message goes back to the queue (and, past maxReceiveCount, to the DLQ).
        return Err(RequestError::retryable(
            R::NAME,
            "work items arrived but WORK_QUEUE_URL or RUN_LEDGER_TABLE is not set: set both (the template does when Accounts is set)",
        ));
    };
    let mut report = RunReport::new(R::NAME, ctx.dry_run(), now);
    let mut retry = Vec::new();
    for queued in batch {
        let item = &queued.item;
        report.run.get_or_insert_with(|| item.run.clone());
        let (fate, ran) = one::<R>(ctx, &ledger, &queue, &queued, now).await;
        if let Some(ran) = ran {
            report.merge(ran);
        }
        let region = item.region.clone().unwrap_or_else(|| home(ctx));
        let (outcome, line) = match fate {
            Fate::AlreadyDone(state) => (
                Outcome::Skipped,
                format!(
                    "work item {} of run {} was already {} (delivered again): nothing done",
                    item.item,
                    item.run,
                    state.as_str()
                ),
            ),
            Fate::Retry(why) => {
                retry.push(queued.message_id.clone());
                (
                    Outcome::Deferred,
                    format!(
                        "work item {} of run {}: {why}; SQS delivers it again (delivery {} of {})",
                        item.item, item.run, queued.receive_count, ctx.config.work_max_receives
                    ),
                )
            }
            Fate::Recorded(state, line) => (
                match state {
                    ItemState::Done => Outcome::Unchanged,
                    ItemState::Deferred => Outcome::Deferred,
                    ItemState::Failed => Outcome::Failed,
                },
                format!(
                    "work item {} of run {} {}: {line}",
                    item.item,
                    item.run,
                    state.as_str()
                ),
            ),
        };
        report.add(ReportItem {
            account: Some(item.account.clone()),
            region,
            subject: item.item.clone(),
            image: None,
            outcome,
            reason: line,
        });
    }
    report.batch_item_failures = Some(retry);
    Ok(report)
}

/// One item: its fate and, when it ran, its account's report.
async fn one<R: Runner>(
    ctx: &Context,
    ledger: &Arc<dyn Ledger>,
    queue: &Arc<dyn WorkQueue>,
    queued: &QueuedItem,
    now: OffsetDateTime,
) -> (Fate, Option<RunReport>) {
    let item = &queued.item;
    let last_delivery = queued.receive_count >= ctx.config.work_max_receives;
    if item.function != R::NAME {
        // Only this function's role can send to its queue: a foreign item is a bug, and
        // it would fail the same way again.
        return (
            finish(
                ctx,
                ledger,
                item,
                ItemState::Failed,
                format!("is for {}, not {}", item.function, R::NAME),
                now,
            )
            .await,
            None,
        );
    }
    match ledger.finished(&item.run, &item.item).await {
        Ok(Some(state)) => return (Fate::AlreadyDone(state), None),
        Ok(None) => {}
        Err(e) if !last_delivery => {
            return (
                Fate::Retry(format!("the run ledger could not be read ({e})")),
                None,
            )
        }
        Err(e) => {
            let why = format!("the run ledger could not be read ({e}) on its last delivery");
            return (
                finish(ctx, ledger, item, ItemState::Failed, why, now).await,
                None,
            );
        }
    }
    let own = match ctx.cloud.account().await {
        Ok(a) => a,
        Err(e) if !last_delivery => {
            return (
                Fate::Retry(format!("this account could not be read ({e})")),
                None,
            )
        }
        Err(e) => {
            return (
                finish(
                    ctx,
                    ledger,
                    item,
                    ItemState::Failed,
                    format!("this account could not be read ({e})"),
                    now,
                )
                .await,
                None,
            )
        }
    };
    let continuations: Arc<dyn Continuations> = Arc::new(ItemContinuations {
        queue: queue.clone(),
        ledger: ledger.clone(),
        item: item.clone(),
        now,
    });
    let actx = match open_account(ctx, &own, &item.account, R::NAME, Some(continuations)).await {
        Ok(c) => c,
        Err((Outcome::Deferred, why)) if !last_delivery => return (Fate::Retry(why), None),
        Err((outcome, why)) => {
            let state = if outcome == Outcome::Deferred {
                ItemState::Deferred
            } else {
                ItemState::Failed
            };
            return (finish(ctx, ledger, item, state, why, now).await, None);
        }
    };
    let mut config = (*ctx.config).clone();
    let request = match parse_trigger(&item.payload)
        .map_err(|e| RequestError::unreadable(R::NAME, e))
        .and_then(|t| R::request(t, &config, now))
    {
        Ok(r) => R::narrow(r, &mut config, item.region.as_ref()),
        Err(e) => {
            return (
                finish(
                    ctx,
                    ledger,
                    item,
                    ItemState::Failed,
                    format!("its request is refused: {e}"),
                    now,
                )
                .await,
                None,
            );
        }
    };
    let actx = Context {
        config: Arc::new(config),
        ..actx
    };
    ctx.progress(&format!("work item {} of run {}", item.item, item.run));
    let ran = R::run(&actx, request, now).await.in_account(&item.account);
    let counts = ran.counts();
    let line = if counts.is_empty() {
        "nothing to do".to_owned()
    } else {
        counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if ran.incomplete.is_some() && !last_delivery {
        return (Fate::Retry(format!("stopped early ({line})")), Some(ran));
    }
    let state = if ran.failed() > 0 {
        ItemState::Failed
    } else if ran.incomplete.is_some() || ran.count(Outcome::Deferred) > 0 {
        ItemState::Deferred
    } else {
        ItemState::Done
    };
    (finish(ctx, ledger, item, state, line, now).await, Some(ran))
}

/// Records an item once and, if it was the run's last, publishes the summary. A ledger
/// that cannot be written leaves the item to be delivered again (its work is idempotent).
async fn finish(
    ctx: &Context,
    ledger: &Arc<dyn Ledger>,
    item: &WorkItem,
    state: ItemState,
    line: String,
    now: OffsetDateTime,
) -> Fate {
    let record = ItemRecord {
        item: item.item.clone(),
        account: item.account.clone(),
        region: item.region.clone(),
        state,
        line: line.clone(),
    };
    match ledger.finish_item(&item.run, &record, now).await {
        Ok(counts) => {
            summary::after_record(ctx, ledger, &item.run, &item.function, counts, now).await;
            Fate::Recorded(state, line)
        }
        Err(e) => Fate::Retry(format!(
            "{} ({line}) but the run ledger could not record it ({e})",
            state.as_str()
        )),
    }
}

/// create-image's later reboot waves inside a work item: each continuation is the next
/// round's work item for the same account and region, counted into the run first so the
/// summary waits for it.
struct ItemContinuations {
    queue: Arc<dyn WorkQueue>,
    ledger: Arc<dyn Ledger>,
    item: WorkItem,
    now: OffsetDateTime,
}

#[async_trait]
impl Continuations for ItemContinuations {
    async fn continue_later(
        &self,
        body: &serde_json::Value,
        delay_seconds: u32,
    ) -> CloudResult<()> {
        let round = self.item.round + 1;
        let next = WorkItem {
            item: WorkItem::item_id(&self.item.account, self.item.region.as_ref(), round),
            payload: serde_json::json!({"Records": [{
                "messageId": format!("{}#{round}", self.item.item),
                "eventSource": "ami-lifecycle:work-item",
                "body": body.to_string(),
            }]}),
            round,
            ..self.item.clone()
        };
        if !self
            .ledger
            .add_item(&next.run, &next.item, self.now)
            .await?
        {
            // Added by an earlier delivery of this item, which sent it too.
            return Ok(());
        }
        let sent = self.queue.send(&[next.body()], delay_seconds).await;
        let result = sent.into_iter().next().unwrap_or(Ok(()));
        if let Err(e) = &result {
            // Counted but never sent: recorded failed so the run still ends.
            let record = ItemRecord {
                item: next.item.clone(),
                account: next.account.clone(),
                region: next.region.clone(),
                state: ItemState::Failed,
                line: format!(
                    "the next wave could not be sent ({e}); the next scheduled run does it"
                ),
            };
            self.ledger
                .finish_item(&next.run, &record, self.now)
                .await?;
        }
        result
    }
}

//! The fan-out (issue 18): a scheduled run over many accounts becomes one work item per
//! (account, region) on the function's own SQS work queue, consumed by the same function
//! (Lambda's SQS event source: batch size 1, bounded concurrency, partial batch failures,
//! a DLQ), so the work scales on Lambda's concurrency instead of one long invocation.
//!
//! - [`WorkItem`]: one message: the run, the item (`<account>/<region|all>`), the trigger
//!   payload the run started from, the round (create-image's later reboot waves).
//! - [`fan_out`] ([`send`]): the fanning invocation resolves the accounts, records the run
//!   in the [`Ledger`](crate::ports::Ledger) with its item count and sends the items; its
//!   report has one `queued` line per item. A redelivered schedule (same run id) sends
//!   nothing twice: the ledger already has the run.
//! - [`consume`] ([`consume`](self::consume::consume)): each record of an SQS batch: an
//!   item the ledger has finished is skipped; otherwise its account is opened (own
//!   credentials or its spoke role), the runner's request is narrowed to its region
//!   ([`Runner::narrow`](crate::runner::Runner::narrow)) and run within the invocation's
//!   deadline. An incomplete or throttled item is handed back to SQS
//!   (`batchItemFailures`) until its last delivery (`WORK_MAX_RECEIVES`); then, or when it
//!   ends, it is recorded once: done, deferred or failed.
//! - [`summary`]: the invocation that records a run's last item claims the summary (once,
//!   a conditional write) and publishes it: accounts, regions, items done / deferred /
//!   failed, one line per item that did not end done.
//!
//! Which runs fan out is each runner's [`Runner::split`](crate::runner::Runner::split):
//! create-image's schedules and reconcile per account (a reboot group's waves may cross
//! regions), replicate's reconcile per account and home region, cleanup per account and
//! region. Share does not: its grant record needs one share run at a time, so it runs the
//! accounts one after the other.
//!
//! Redelivery changes nothing: the runners are idempotent (deterministic names and tokens,
//! plans over what exists) and the ledger counts each item once.

mod consume;
mod send;
pub mod summary;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::Config;
use crate::events::{EventError, Trigger};
use crate::model::{AccountId, Region};

pub use self::consume::consume;
pub use self::send::fan_out;

/// The key of a work-item message body.
pub const BODY_KEY: &str = "work_item";

/// One unit of a fanned-out run: a request of `function` in one account (and region).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    /// The run's id ([`run_id`]): the ledger's partition.
    pub run: String,
    /// `<account>/<region|all>`, plus `/round-N` for a later create-image wave.
    pub item: String,
    pub function: String,
    pub account: AccountId,
    /// `None`: the whole account ([`crate::runner::Split::PerAccount`]).
    pub region: Option<Region>,
    /// The trigger payload the run started from (a scheduled event, a direct request, or a
    /// continuation): the item's request is read from it as the run's was.
    pub payload: Value,
    /// 0 for the run's own items; 1, 2, … for create-image's later reboot waves.
    #[serde(default)]
    pub round: u32,
}

impl WorkItem {
    /// The message body: `{"work_item": {…}}`.
    pub fn body(&self) -> String {
        serde_json::json!({ BODY_KEY: self }).to_string()
    }

    /// The item id for `account` and `region`.
    pub fn item_id(account: &AccountId, region: Option<&Region>, round: u32) -> String {
        let base = format!("{account}/{}", region.map_or("all", Region::as_str));
        if round == 0 {
            base
        } else {
            format!("{base}/round-{round}")
        }
    }
}

/// One record of an SQS batch of work items.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedItem {
    /// What `batchItemFailures` names to have SQS deliver it again.
    pub message_id: String,
    /// SQS's `ApproximateReceiveCount` (1 on the first delivery).
    pub receive_count: u32,
    pub item: WorkItem,
}

/// Whether a body (already parsed) is a work item.
pub fn is_work_item(body: &Value) -> bool {
    body.get(BODY_KEY).is_some()
}

/// Reads the work items of an SQS batch (`Records[]`, each body a [`WorkItem`]).
pub fn queued_items(records: &[Value]) -> Result<Vec<QueuedItem>, EventError> {
    let bad = |path: String, problem: String| EventError { path, problem };
    records
        .iter()
        .enumerate()
        .map(|(n, record)| {
            let message_id = record
                .get("messageId")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("Records[{n}].messageId"), "missing".to_owned()))?
                .to_owned();
            let receive_count = record
                .pointer("/attributes/ApproximateReceiveCount")
                .and_then(Value::as_str)
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let body: Value = record
                .get("body")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("Records[{n}].body"), "missing".to_owned()))
                .and_then(|b| {
                    serde_json::from_str(b)
                        .map_err(|e| bad(format!("Records[{n}].body"), format!("not JSON: {e}")))
                })?;
            let item: WorkItem = body
                .get(BODY_KEY)
                .cloned()
                .ok_or_else(|| {
                    bad(
                        format!("Records[{n}].body"),
                        "a batch mixes work items and other messages".to_owned(),
                    )
                })
                .and_then(|v| {
                    serde_json::from_value(v)
                        .map_err(|e| bad(format!("Records[{n}].body.{BODY_KEY}"), e.to_string()))
                })?;
            if AccountId::parse(item.account.as_str()).is_none() {
                return Err(bad(
                    format!("Records[{n}].body.{BODY_KEY}.account"),
                    format!("{:?} is not a 12-digit account id", item.account.as_str()),
                ));
            }
            Ok(QueuedItem {
                message_id,
                receive_count,
                item,
            })
        })
        .collect()
}

/// Whether scheduled runs fan out: accounts selected and a work queue and ledger set.
pub fn enabled(config: &Config) -> bool {
    !config.accounts.is_empty() && config.work_queue.is_some() && config.run_ledger.is_some()
}

/// The id of a run, the same for a redelivered trigger: `<function>/<rule>/<time>` for a
/// schedule (its event time, to the minute), `<function>/direct/<time>/<digest>` for a
/// direct request (now, to the minute, and the payload's digest: a dry run and a real run
/// in the same minute are two runs).
pub fn run_id(function: &str, trigger: &Trigger, now: OffsetDateTime) -> String {
    let minute = |t: OffsetDateTime| {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        )
    };
    match trigger {
        Trigger::Schedule { rule, time, .. } => format!("{function}/{rule}/{}", minute(*time)),
        Trigger::Direct(v) => {
            let digest = Sha256::digest(v.to_string().as_bytes());
            let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
            format!("{function}/direct/{}/{short}", minute(now))
        }
        _ => format!("{function}/event/{}", minute(now)),
    }
}

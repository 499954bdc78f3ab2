//! The fan-out (issue 18): the function's own work queue (`WORK_QUEUE_URL`), the run
//! ledger (`RUN_LEDGER_TABLE`) and how often a work item may be delivered before it is
//! recorded as it stands (`WORK_MAX_RECEIVES`, the queue's `maxReceiveCount`).
//! Unset queue: no fan-out; the accounts of a run are acted on one after the other in one
//! invocation, as before.

use super::parse::{err, u32_setting, Lookup};
use super::ConfigError;

pub(super) struct FanOutSettings {
    pub work_queue: Option<String>,
    pub run_ledger: Option<String>,
    pub work_max_receives: u32,
}

/// The template's RedrivePolicy `maxReceiveCount`; SQS accepts 1 to 1,000.
const MAX_RECEIVES: (u32, u32, u32) = (3, 1, 1000);

impl FanOutSettings {
    pub(super) fn from_lookup(get: &Lookup<'_>) -> Result<Self, ConfigError> {
        let work_queue = get("WORK_QUEUE_URL");
        let run_ledger = get("RUN_LEDGER_TABLE");
        if let Some(q) = &work_queue {
            if !q.starts_with("https://") && !q.starts_with("http://") {
                return Err(err(
                    "WORK_QUEUE_URL",
                    q,
                    "not a queue URL",
                    "the function's own work queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>), or unset for no fan-out",
                ));
            }
            if run_ledger.is_none() {
                return Err(err(
                    "RUN_LEDGER_TABLE",
                    "",
                    "required with WORK_QUEUE_URL: without the ledger a redelivered work item would be counted twice",
                    "the DynamoDB table of the stack's RunsTable",
                ));
            }
        }
        Ok(Self {
            work_queue,
            run_ledger,
            work_max_receives: u32_setting(
                get,
                "WORK_MAX_RECEIVES",
                MAX_RECEIVES,
                "1 to 1000, equal to the work queue's RedrivePolicy maxReceiveCount (default 3)",
            )?,
        })
    }
}

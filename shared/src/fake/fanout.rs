//! The fan-out's work queue and run ledger in memory ([`FakeFanOut`]), with SQS's and
//! DynamoDB's semantics the core relies on: a batch answers per message; an item is
//! recorded once (a conditional write), with the run's counters in the same write; the
//! summary is claimed once. Faults go through the hub's fault list (`SendMessageBatch`,
//! `GetItem`, `TransactWriteItems`, `PutItem`, `UpdateItem`, `Query`, subject = the run).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::FakeState;
use crate::error::{CloudError, CloudResult};
use crate::model::Region;
use crate::ports::{ItemRecord, ItemState, Ledger, RunCounts, WorkQueue};

/// One run in the fake ledger.
#[derive(Debug, Default, Clone)]
pub struct FakeRun {
    pub counts: RunCounts,
    /// Items added for later waves, not yet recorded.
    pub pending: Vec<String>,
    pub records: BTreeMap<String, ItemRecord>,
    /// How many times the summary was claimed successfully (must end at 1).
    pub summaries: u32,
}

/// The queue's messages sent and the ledger's runs.
#[derive(Debug, Default)]
pub struct FanOutState {
    /// Every body sent, with its delay, in order (the fake keeps them; a test delivers).
    pub sent: Vec<(String, u32)>,
    pub runs: BTreeMap<String, FakeRun>,
}

/// The work queue and ledger of a fake hub, shared with the clouds it opens in spokes.
#[derive(Clone)]
pub struct FakeFanOut {
    pub(super) hub: Arc<Mutex<FakeState>>,
    pub(super) state: Arc<Mutex<FanOutState>>,
}

impl FakeFanOut {
    pub fn state(&self) -> MutexGuard<'_, FanOutState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn call(&self, operation: &'static str, run: &str) -> CloudResult<()> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner()).call(
            &Region::new("global"),
            operation,
            Some(run),
        )
    }
}

#[async_trait]
impl WorkQueue for FakeFanOut {
    async fn send(&self, bodies: &[String], delay_seconds: u32) -> Vec<CloudResult<()>> {
        bodies
            .iter()
            .map(|b| {
                let run = serde_json::from_str::<serde_json::Value>(b)
                    .ok()
                    .and_then(|v| {
                        v.pointer("/work_item/run")
                            .and_then(|r| r.as_str())
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                self.call("SendMessageBatch", &run)?;
                self.state().sent.push((b.clone(), delay_seconds.min(900)));
                Ok(())
            })
            .collect()
    }
}

fn missing(run: &str) -> CloudError {
    CloudError::from_code(
        "TransactWriteItems",
        None,
        "TransactionCanceledException",
        format!("run {run} is not in the ledger"),
    )
}

#[async_trait]
impl Ledger for FakeFanOut {
    async fn start_run(&self, run: &str, total: u32, _now: OffsetDateTime) -> CloudResult<bool> {
        self.call("PutItem", run)?;
        let mut s = self.state();
        if s.runs.contains_key(run) {
            return Ok(false);
        }
        s.runs.insert(
            run.to_owned(),
            FakeRun {
                counts: RunCounts {
                    total,
                    remaining: total,
                    ..RunCounts::default()
                },
                ..FakeRun::default()
            },
        );
        Ok(true)
    }

    async fn add_item(&self, run: &str, item: &str, _now: OffsetDateTime) -> CloudResult<bool> {
        self.call("TransactWriteItems", run)?;
        let mut s = self.state();
        let r = s.runs.get_mut(run).ok_or_else(|| missing(run))?;
        if r.records.contains_key(item) || r.pending.iter().any(|p| p == item) {
            return Ok(false);
        }
        r.pending.push(item.to_owned());
        r.counts.total += 1;
        r.counts.remaining += 1;
        Ok(true)
    }

    async fn finished(&self, run: &str, item: &str) -> CloudResult<Option<ItemState>> {
        self.call("GetItem", run)?;
        Ok(self
            .state()
            .runs
            .get(run)
            .and_then(|r| r.records.get(item))
            .map(|r| r.state))
    }

    async fn finish_item(
        &self,
        run: &str,
        record: &ItemRecord,
        _now: OffsetDateTime,
    ) -> CloudResult<Option<RunCounts>> {
        self.call("TransactWriteItems", run)?;
        let mut s = self.state();
        let r = s.runs.get_mut(run).ok_or_else(|| missing(run))?;
        if r.records.contains_key(&record.item) {
            return Ok(None);
        }
        r.pending.retain(|p| p != &record.item);
        r.records.insert(record.item.clone(), record.clone());
        r.counts.remaining = r.counts.remaining.saturating_sub(1);
        match record.state {
            ItemState::Done => r.counts.done += 1,
            ItemState::Deferred => r.counts.deferred += 1,
            ItemState::Failed => r.counts.failed += 1,
        }
        Ok(Some(r.counts))
    }

    async fn claim_summary(&self, run: &str, _now: OffsetDateTime) -> CloudResult<bool> {
        self.call("UpdateItem", run)?;
        let mut s = self.state();
        let r = s.runs.get_mut(run).ok_or_else(|| missing(run))?;
        if r.counts.remaining > 0 || r.summaries > 0 {
            return Ok(false);
        }
        r.summaries += 1;
        Ok(true)
    }

    async fn items(&self, run: &str) -> CloudResult<Vec<ItemRecord>> {
        self.call("Query", run)?;
        Ok(self
            .state()
            .runs
            .get(run)
            .map(|r| r.records.values().cloned().collect())
            .unwrap_or_default())
    }
}

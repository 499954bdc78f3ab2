//! [`DynamoLedger`]: the run ledger in DynamoDB (the stack's `RunsTable`; key `run` +
//! `item`, TTL attribute `expires_at`).
//!
//! - The run row (`item = "#run"`): `total`, `remaining`, `done`, `deferred`, `failed`,
//!   `started`, and `summarized` once claimed.
//! - An item row: `state` (`pending` for a later wave counted in, else done / deferred /
//!   failed), `line`, `account`, `region`.
//!
//! Every "once" is a condition DynamoDB checks, never a read then a write: the run row is
//! put if absent; an item is recorded in one transaction with the run's counters (the put
//! is conditional on the item being absent or pending); the summary is claimed by the
//! update whose condition sees `remaining = 0` and no `summarized`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use time::OffsetDateTime;

use super::errors::cloud_error;
use crate::error::{CloudError, CloudResult};
use crate::model::{AccountId, Region};
use crate::ports::{ItemRecord, ItemState, Ledger, RunCounts};

/// The run row's sort key.
const RUN_ROW: &str = "#run";
/// How long rows stay (the table's TTL deletes them after).
const KEEP_DAYS: i64 = 14;
const PENDING: &str = "pending";

/// The ledger in one table of the home region.
#[derive(Debug, Clone)]
pub struct DynamoLedger {
    client: Client,
    region: Region,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn expires(now: OffsetDateTime) -> AttributeValue {
    n(now.unix_timestamp() + KEEP_DAYS * 86_400)
}

fn built<T, E: std::fmt::Display>(op: &'static str, r: Result<T, E>) -> CloudResult<T> {
    r.map_err(|e| CloudError::from_code(op, None, "InvalidRequest", e.to_string()))
}

/// A conditional write's answer: `Ok(true)` written, `Ok(false)` when its condition did
/// not hold (DynamoDB's `ConditionalCheckFailedException`), else the error.
fn written<O, E>(
    op: &'static str,
    region: &Region,
    result: Result<O, SdkError<E, HttpResponse>>,
) -> CloudResult<bool>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error().and_then(ProvideErrorMetadata::code)
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(cloud_error(op, Some(region), e)),
    }
}

fn count(row: &HashMap<String, AttributeValue>, name: &str) -> u32 {
    row.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(0, |v| u32::try_from(v.max(0)).unwrap_or(u32::MAX))
}

fn text<'a>(row: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    row.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

impl DynamoLedger {
    pub fn new(client: Client, region: Region, table: impl Into<String>) -> Self {
        Self {
            client,
            region,
            table: table.into(),
        }
    }

    fn key(run: &str, item: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("run".to_owned(), s(run)), ("item".to_owned(), s(item))])
    }

    /// One transaction: `put` conditional on `condition`, and `update` of the run row
    /// (which must exist). `Ok(false)` when the put's condition failed.
    async fn put_and_count(&self, op: &'static str, put: Put, update: Update) -> CloudResult<bool> {
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(t)) =
                    e.as_service_error()
                {
                    let reasons = t.cancellation_reasons();
                    let put_failed = reasons
                        .first()
                        .and_then(|r| r.code())
                        .is_some_and(|c| c == "ConditionalCheckFailed");
                    let update_ok = reasons
                        .get(1)
                        .and_then(|r| r.code())
                        .is_none_or(|c| c == "None");
                    if put_failed && update_ok {
                        return Ok(false);
                    }
                }
                Err(cloud_error(op, Some(&self.region), e))
            }
        }
    }

    async fn run_counts(&self, run: &str) -> CloudResult<RunCounts> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(run, RUN_ROW)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| cloud_error("GetItem", Some(&self.region), e))?;
        let row = out.item().cloned().unwrap_or_default();
        Ok(RunCounts {
            total: count(&row, "total"),
            remaining: count(&row, "remaining"),
            done: count(&row, "done"),
            deferred: count(&row, "deferred"),
            failed: count(&row, "failed"),
        })
    }
}

#[async_trait]
impl Ledger for DynamoLedger {
    async fn start_run(&self, run: &str, total: u32, now: OffsetDateTime) -> CloudResult<bool> {
        let started = crate::time_util::rfc3339(now);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("run", s(run))
            .item("item", s(RUN_ROW))
            .item("total", n(i64::from(total)))
            .item("remaining", n(i64::from(total)))
            .item("done", n(0))
            .item("deferred", n(0))
            .item("failed", n(0))
            .item("started", s(started))
            .item("expires_at", expires(now))
            .condition_expression("attribute_not_exists(#r)")
            .expression_attribute_names("#r", "run")
            .send()
            .await;
        written("PutItem", &self.region, result)
    }

    async fn add_item(&self, run: &str, item: &str, now: OffsetDateTime) -> CloudResult<bool> {
        let put = built(
            "TransactWriteItems",
            Put::builder()
                .table_name(&self.table)
                .item("run", s(run))
                .item("item", s(item))
                .item("state", s(PENDING))
                .item("expires_at", expires(now))
                .condition_expression("attribute_not_exists(#i)")
                .expression_attribute_names("#i", "item")
                .build(),
        )?;
        let update = built(
            "TransactWriteItems",
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(run, RUN_ROW)))
                .update_expression("ADD #t :one, #rem :one")
                .condition_expression("attribute_exists(#r)")
                .expression_attribute_names("#t", "total")
                .expression_attribute_names("#rem", "remaining")
                .expression_attribute_names("#r", "run")
                .expression_attribute_values(":one", n(1))
                .build(),
        )?;
        self.put_and_count("TransactWriteItems", put, update).await
    }

    async fn finished(&self, run: &str, item: &str) -> CloudResult<Option<ItemState>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(run, item)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| cloud_error("GetItem", Some(&self.region), e))?;
        Ok(out
            .item()
            .and_then(|row| text(row, "state"))
            .and_then(ItemState::parse))
    }

    async fn finish_item(
        &self,
        run: &str,
        record: &ItemRecord,
        now: OffsetDateTime,
    ) -> CloudResult<Option<RunCounts>> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("run", s(run))
            .item("item", s(&record.item))
            .item("state", s(record.state.as_str()))
            .item("line", s(crate::values::truncate(&record.line, 2000)))
            .item("account", s(record.account.as_str()))
            .item("expires_at", expires(now))
            .condition_expression("attribute_not_exists(#i) OR #s = :pending")
            .expression_attribute_names("#i", "item")
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":pending", s(PENDING));
        if let Some(r) = &record.region {
            put = put.item("region", s(r.as_str()));
        }
        let put = built("TransactWriteItems", put.build())?;
        let update = built(
            "TransactWriteItems",
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(run, RUN_ROW)))
                .update_expression("ADD #rem :minus, #state :one")
                .condition_expression("attribute_exists(#r)")
                .expression_attribute_names("#rem", "remaining")
                .expression_attribute_names("#state", record.state.as_str())
                .expression_attribute_names("#r", "run")
                .expression_attribute_values(":minus", n(-1))
                .expression_attribute_values(":one", n(1))
                .build(),
        )?;
        if !self
            .put_and_count("TransactWriteItems", put, update)
            .await?
        {
            return Ok(None);
        }
        self.run_counts(run).await.map(Some)
    }

    async fn claim_summary(&self, run: &str, now: OffsetDateTime) -> CloudResult<bool> {
        let at = crate::time_util::rfc3339(now);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(run, RUN_ROW)))
            .update_expression("SET #sum = :at")
            .condition_expression("#rem = :zero AND attribute_not_exists(#sum)")
            .expression_attribute_names("#sum", "summarized")
            .expression_attribute_names("#rem", "remaining")
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        written("UpdateItem", &self.region, result)
    }

    async fn items(&self, run: &str) -> CloudResult<Vec<ItemRecord>> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#r = :run")
                .expression_attribute_names("#r", "run")
                .expression_attribute_values(":run", s(run))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| cloud_error("Query", Some(&self.region), e))?;
            for row in page.items() {
                let (Some(item), Some(state), Some(account)) = (
                    text(row, "item"),
                    text(row, "state").and_then(ItemState::parse),
                    text(row, "account").and_then(AccountId::parse),
                ) else {
                    continue; // the run row, a pending wave
                };
                out.push(ItemRecord {
                    item: item.to_owned(),
                    account,
                    region: text(row, "region").map(Region::new),
                    state,
                    line: text(row, "line").unwrap_or_default().to_owned(),
                });
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }
}

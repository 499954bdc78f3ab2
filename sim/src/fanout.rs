//! [`FanoutDriver`]: the emulator's stand-in for Lambda's SQS event source mapping, as the
//! fan-out of issue 18 configures it (batch size 1, `ReportBatchItemFailures`, a DLQ).
//!
//! A fanned-out run sends one work item per (account, region) to the function's own work
//! queue; on AWS, Lambda polls that queue and invokes the same function with one record at
//! a time, at most its reserved concurrency at once. The driver does the same against the
//! emulator: it receives messages, hands each to an [`Invoke`] as a Lambda-shaped SQS event
//! of ONE record, at most `concurrency` invocations at once (tokio tasks), then
//!
//! - deletes the message when the response's `batchItemFailures` does not name it (a
//!   response without the key, or with an empty list, is a success, as Lambda reads it);
//! - otherwise makes it visible again (`ChangeMessageVisibility`, `retry_delay` seconds;
//!   Lambda itself waits for the visibility timeout: a test shortens the wait, nothing
//!   else changes). An invocation error, or a failure entry that does not name a message of
//!   the batch, fails the whole batch, as Lambda does.
//!
//! The DLQ is SQS's own: moto honours the queue's `RedrivePolicy` (a message received
//! `maxReceiveCount` times is moved to the dead-letter queue at its next receive, as SQS
//! does), so the driver moves nothing itself; it counts the DLQ's messages before and after.
//! It stops when the queue (visible, in flight, delayed) and its own invocations are empty,
//! or at `timeout`; [`DriveStats`] says what happened.
//!
//! [`InProcess`] invokes a runner of `ami_core::runner::RUNNERS` in this process through
//! [`crate::dispatch`], with a fresh [`Context`] per invocation and its own [`Deadline`], as
//! a Lambda invocation gets one. [`WorkQueue`] and the ledger helpers make the fan-out's
//! emulator resources (the queue with its DLQ; the DynamoDB run ledger).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ami_core::context::Context;
use ami_core::deadline::Deadline;
use anyhow::{bail, Context as _};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::client::EmulatorClient;

/// What an [`Invoke`] answers: what the function returns, or its error.
pub type Invoked = Pin<Box<dyn Future<Output = Result<Value, String>>>>;

/// What the driver invokes: a function that takes a Lambda event and returns what the
/// function returns, or its error (a Lambda error: the whole batch is retried). The future
/// need not be `Send`: the driver runs invocations as tasks of a [`tokio::task::LocalSet`]
/// (the runner's futures are not `Send` for every lifetime, so `tokio::spawn` refuses them).
pub trait Invoke: 'static {
    fn invoke(&self, event: Value) -> Invoked;
}

/// Builds the [`Context`] of one invocation (e.g. a clone of a warm container's, or a new
/// one over fresh credentials).
pub type ContextFactory = Arc<dyn Fn() -> Context + Send + Sync>;

/// A runner of `ami_core::runner::RUNNERS`, invoked in this process through
/// [`crate::dispatch`] (the runner contract the Lambda shell uses).
#[derive(Clone)]
pub struct InProcess {
    function: String,
    context: ContextFactory,
    deadline: Option<(Duration, Duration)>,
    clock: Arc<dyn Fn() -> OffsetDateTime + Send + Sync>,
}

impl InProcess {
    /// Invokes `function` with a context from `context` per invocation. An unknown name is
    /// refused here, before anything is received.
    pub fn new(
        function: &str,
        context: impl Fn() -> Context + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        if !ami_core::runner::RUNNERS.contains(&function) {
            bail!(
                "no function is named {function:?}; functions: {}",
                ami_core::runner::RUNNERS.join(", ")
            );
        }
        Ok(Self {
            function: function.to_owned(),
            context: Arc::new(context),
            deadline: None,
            clock: Arc::new(OffsetDateTime::now_utc),
        })
    }

    /// Each invocation gets a [`Deadline`] `timeout` after it starts, keeping `margin` for
    /// the report (the Lambda shell keeps 10 s of the function's timeout).
    pub fn with_deadline(mut self, timeout: Duration, margin: Duration) -> Self {
        self.deadline = Some((timeout, margin));
        self
    }

    /// The `now` each invocation runs at (default: the wall clock).
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static,
    ) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}

impl Invoke for InProcess {
    fn invoke(&self, event: Value) -> Invoked {
        let mut ctx = (self.context)();
        if let Some((timeout, margin)) = self.deadline {
            ctx = ctx.with_deadline(Deadline::after(timeout, margin));
        }
        let now = (self.clock)();
        let function = self.function.clone();
        Box::pin(async move { crate::dispatch(&function, &ctx, event, now).await })
    }
}

/// One invocation as the driver saw it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub message_id: String,
    /// `ApproximateReceiveCount` of the delivery (1 on the first).
    pub receive_count: u32,
    pub body: Value,
    pub outcome: Delivery,
    /// What the function returned, or its error message.
    pub response: Result<Value, String>,
}

/// What became of one delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Not named in `batchItemFailures`: deleted.
    Done,
    /// Named in `batchItemFailures`: visible again, to be redelivered.
    Returned,
    /// The invocation failed (or answered a malformed `batchItemFailures`): the whole batch
    /// is visible again, to be redelivered.
    Failed,
}

/// What a [`FanoutDriver::run`] did.
#[derive(Debug, Clone, Default)]
pub struct DriveStats {
    pub invocations: u64,
    /// Messages deleted after an invocation that did not return them.
    pub done: u64,
    /// Messages made visible again (returned in `batchItemFailures`, or a failed invocation).
    pub retried: u64,
    /// Deliveries with `ApproximateReceiveCount` > 1.
    pub redelivered: u64,
    /// Messages SQS moved to the DLQ during the run (the DLQ's count, after − before).
    pub dead_lettered: u64,
    /// Responses without a `batchItemFailures` key (Lambda reads them as success; the
    /// fan-out contract says a work-item response always has one).
    pub without_batch_item_failures: u64,
    /// Most invocations seen running at once.
    pub max_in_flight: usize,
    pub wall: Duration,
    /// Whether the run stopped at its timeout with work left.
    pub timed_out: bool,
    /// Every invocation, in the order they finished.
    pub log: Vec<Invocation>,
}

impl DriveStats {
    /// The responses of the invocations that succeeded, in the order they finished.
    pub fn responses(&self) -> impl Iterator<Item = &Value> {
        self.log.iter().filter_map(|i| i.response.as_ref().ok())
    }
}

/// Polls one work queue and invokes a function per message (see the module docs).
#[derive(Debug, Clone)]
pub struct FanoutDriver {
    sqs: aws_sdk_sqs::Client,
    region: String,
    url: String,
    concurrency: usize,
    timeout: Duration,
    retry_delay: i32,
    visibility_timeout: Option<i32>,
    idle_poll: Duration,
}

impl FanoutDriver {
    /// A driver for the queue at `url` in `region` (the hub's account): concurrency 1,
    /// a 5-minute bound, a returned message visible again at once.
    pub fn new(emu: &EmulatorClient, region: &str, url: &str) -> Self {
        Self {
            sqs: emu.sqs(region),
            region: region.to_owned(),
            url: url.to_owned(),
            concurrency: 1,
            timeout: Duration::from_secs(300),
            retry_delay: 0,
            visibility_timeout: None,
            idle_poll: Duration::from_millis(50),
        }
    }

    /// At most `n` invocations at once (the function's reserved concurrency).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Stop after `d` even with work left ([`DriveStats::timed_out`]).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Seconds before a returned message is visible again (Lambda: the queue's visibility
    /// timeout; 0 by default so tests do not wait).
    pub fn retry_delay(mut self, seconds: i32) -> Self {
        self.retry_delay = seconds;
        self
    }

    /// The visibility timeout of each receive (default: the queue's own).
    pub fn visibility_timeout(mut self, seconds: i32) -> Self {
        self.visibility_timeout = Some(seconds);
        self
    }

    /// Consumes the queue until it and the in-flight invocations are empty (or the
    /// timeout); an SQS call that fails ends the run with its error.
    pub async fn run(&self, invoker: Arc<dyn Invoke>) -> anyhow::Result<DriveStats> {
        tokio::task::LocalSet::new()
            .run_until(self.consume(invoker))
            .await
    }

    async fn consume(&self, invoker: Arc<dyn Invoke>) -> anyhow::Result<DriveStats> {
        let started = Instant::now();
        let queue = self.attributes(&self.url).await?;
        let arn = queue
            .get(&QueueAttributeName::QueueArn)
            .cloned()
            .with_context(|| format!("{}: no QueueArn", self.url))?;
        let dlq = self.dead_letter_queue(&queue).await?;
        let dlq_before = self.count(&dlq).await?;
        let mut stats = DriveStats::default();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while let Some(done) = tasks.try_join_next() {
                record(&mut stats, done.context("an invocation task panicked")??);
            }
            if started.elapsed() >= self.timeout {
                stats.timed_out = true;
                break;
            }
            let free = self.concurrency - tasks.len();
            let mut received = 0;
            if free > 0 {
                let mut req = self
                    .sqs
                    .receive_message()
                    .queue_url(&self.url)
                    .max_number_of_messages(free.min(10) as i32)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .wait_time_seconds(0);
                if let Some(v) = self.visibility_timeout {
                    req = req.visibility_timeout(v);
                }
                let out = req
                    .send()
                    .await
                    .with_context(|| format!("ReceiveMessage {}", self.url))?;
                for m in out.messages.unwrap_or_default() {
                    received += 1;
                    let job = Job {
                        sqs: self.sqs.clone(),
                        url: self.url.clone(),
                        arn: arn.clone(),
                        region: self.region.clone(),
                        retry_delay: self.retry_delay,
                        message: m,
                    };
                    let invoker = Arc::clone(&invoker);
                    tasks.spawn_local(job.run(invoker));
                }
                stats.max_in_flight = stats.max_in_flight.max(tasks.len());
            }
            if received > 0 {
                continue;
            }
            if tasks.is_empty() {
                if self.count_all(&self.url).await? == 0 {
                    break;
                }
                tokio::time::sleep(self.idle_poll).await;
            } else {
                // Wait for a slot (or a short while, to poll again when slots are free).
                tokio::select! {
                    done = tasks.join_next() => {
                        if let Some(done) = done {
                            record(&mut stats, done.context("an invocation task panicked")??);
                        }
                    }
                    _ = tokio::time::sleep(self.idle_poll) => {}
                }
            }
        }
        // At the timeout, let the invocations already running finish (their messages
        // are in flight: dropping them would only make them visible again later).
        while let Some(done) = tasks.join_next().await {
            record(&mut stats, done.context("an invocation task panicked")??);
        }
        stats.dead_lettered = self.count(&dlq).await?.saturating_sub(dlq_before);
        stats.wall = started.elapsed();
        Ok(stats)
    }

    async fn attributes(
        &self,
        url: &str,
    ) -> anyhow::Result<std::collections::HashMap<QueueAttributeName, String>> {
        Ok(self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .with_context(|| format!("GetQueueAttributes {url}"))?
            .attributes
            .unwrap_or_default())
    }

    /// The DLQ of the queue's `RedrivePolicy`; a work queue without one is refused (a
    /// failing item would be redelivered for ever).
    async fn dead_letter_queue(
        &self,
        queue: &std::collections::HashMap<QueueAttributeName, String>,
    ) -> anyhow::Result<String> {
        let policy = queue
            .get(&QueueAttributeName::RedrivePolicy)
            .with_context(|| {
                format!(
                    "work queue {} has no RedrivePolicy: the fan-out's queue needs a DLQ with \
                 maxReceiveCount = WORK_MAX_RECEIVES (see WorkQueue::create)",
                    self.url
                )
            })?;
        let policy: Value = serde_json::from_str(policy)
            .with_context(|| format!("{}: RedrivePolicy {policy:?} is not JSON", self.url))?;
        let target = policy["deadLetterTargetArn"].as_str().with_context(|| {
            format!(
                "{}: RedrivePolicy {policy} has no deadLetterTargetArn",
                self.url
            )
        })?;
        let parts: Vec<&str> = target.split(':').collect();
        let [_, _, _, _, account, name] = parts[..] else {
            bail!(
                "{}: deadLetterTargetArn {target:?} is not an SQS queue ARN",
                self.url
            );
        };
        self.sqs
            .get_queue_url()
            .queue_name(name)
            .queue_owner_aws_account_id(account)
            .send()
            .await
            .with_context(|| format!("GetQueueUrl {target}"))?
            .queue_url
            .with_context(|| format!("GetQueueUrl {target}: no URL"))
    }

    /// Visible messages of `url`.
    async fn count(&self, url: &str) -> anyhow::Result<u64> {
        let a = self.attributes(url).await?;
        Ok(number(&a, QueueAttributeName::ApproximateNumberOfMessages))
    }

    /// Visible, in-flight and delayed messages of `url`.
    async fn count_all(&self, url: &str) -> anyhow::Result<u64> {
        let a = self.attributes(url).await?;
        Ok([
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ]
        .into_iter()
        .map(|k| number(&a, k))
        .sum())
    }
}

fn number(a: &std::collections::HashMap<QueueAttributeName, String>, k: QueueAttributeName) -> u64 {
    a.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn record(stats: &mut DriveStats, i: Invocation) {
    stats.invocations += 1;
    if i.receive_count > 1 {
        stats.redelivered += 1;
    }
    match i.outcome {
        Delivery::Done => stats.done += 1,
        Delivery::Returned | Delivery::Failed => stats.retried += 1,
    }
    if let Ok(v) = &i.response {
        if v.get("batchItemFailures").is_none() {
            stats.without_batch_item_failures += 1;
        }
    }
    stats.log.push(i);
}

/// One delivered message: invoke, then delete or make visible again.
struct Job {
    sqs: aws_sdk_sqs::Client,
    url: String,
    arn: String,
    region: String,
    retry_delay: i32,
    message: aws_sdk_sqs::types::Message,
}

impl Job {
    async fn run(self, invoker: Arc<dyn Invoke>) -> anyhow::Result<Invocation> {
        let id = self.message.message_id().unwrap_or_default().to_owned();
        let handle = self
            .message
            .receipt_handle()
            .with_context(|| format!("message {id}: no receipt handle"))?
            .to_owned();
        let attributes: BTreeMap<String, String> = self
            .message
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let receive_count = attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let body_text = self.message.body().unwrap_or_default().to_owned();
        let event = json!({"Records": [{
            "messageId": id,
            "receiptHandle": handle,
            "body": body_text,
            "attributes": attributes,
            "messageAttributes": {},
            "md5OfBody": self.message.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": self.region,
        }]});
        let response = invoker.invoke(event).await;
        let outcome = match &response {
            Err(_) => Delivery::Failed,
            Ok(v) => batch_outcome(v, &id),
        };
        if outcome == Delivery::Done {
            self.sqs
                .delete_message()
                .queue_url(&self.url)
                .receipt_handle(&handle)
                .send()
                .await
                .with_context(|| format!("DeleteMessage {id}"))?;
        } else {
            self.sqs
                .change_message_visibility()
                .queue_url(&self.url)
                .receipt_handle(&handle)
                .visibility_timeout(self.retry_delay)
                .send()
                .await
                .with_context(|| format!("ChangeMessageVisibility {id}"))?;
        }
        Ok(Invocation {
            message_id: id,
            receive_count,
            body: serde_json::from_str(&body_text).unwrap_or(Value::String(body_text)),
            outcome,
            response,
        })
    }
}

/// How Lambda reads a response with `ReportBatchItemFailures` for a batch of `id` alone:
/// no key, null or `[]` is success; an entry naming `id` returns it; an entry without a
/// usable `itemIdentifier`, or naming another message, fails the whole batch.
fn batch_outcome(response: &Value, id: &str) -> Delivery {
    let failures = match response.get("batchItemFailures") {
        None | Some(Value::Null) => return Delivery::Done,
        Some(Value::Array(a)) => a,
        Some(_) => return Delivery::Failed,
    };
    let mut outcome = Delivery::Done;
    for f in failures {
        match f.get("itemIdentifier").and_then(Value::as_str) {
            Some(named) if named == id => outcome = Delivery::Returned,
            _ => return Delivery::Failed,
        }
    }
    outcome
}

/// A work queue and its dead-letter queue in the emulator (the hub's account).
#[derive(Debug, Clone)]
pub struct WorkQueue {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
}

impl WorkQueue {
    /// `name` with a DLQ `name-dlq` after `max_receives` receives (the template's
    /// `WORK_MAX_RECEIVES`) and a visibility timeout of `visibility_seconds`.
    pub async fn create(
        emu: &EmulatorClient,
        region: &str,
        name: &str,
        max_receives: u32,
        visibility_seconds: u32,
    ) -> anyhow::Result<Self> {
        let sqs = emu.sqs(region);
        let arn_of = |url: String| {
            let sqs = sqs.clone();
            async move {
                let arn = sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(QueueAttributeName::QueueArn)
                    .send()
                    .await
                    .with_context(|| format!("GetQueueAttributes {url}"))?
                    .attributes
                    .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
                    .with_context(|| format!("{url}: no QueueArn"))?;
                anyhow::Ok((url, arn))
            }
        };
        let dlq = sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .context("CreateQueue (DLQ)")?
            .queue_url
            .context("CreateQueue answered no URL")?;
        let (dlq_url, dlq_arn) = arn_of(dlq).await?;
        let policy = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives});
        let url = sqs
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_seconds.to_string(),
            )
            .send()
            .await
            .context("CreateQueue (work queue)")?
            .queue_url
            .context("CreateQueue answered no URL")?;
        let (url, arn) = arn_of(url).await?;
        Ok(Self { url, arn, dlq_url })
    }

    /// Visible messages in the DLQ (their bodies; left in place).
    pub async fn dead_letters(
        &self,
        emu: &EmulatorClient,
        region: &str,
    ) -> anyhow::Result<Vec<Value>> {
        let sqs = emu.sqs(region);
        let out = sqs
            .receive_message()
            .queue_url(&self.dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .context("ReceiveMessage (DLQ)")?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| m.body())
            .map(|b| serde_json::from_str(b).unwrap_or_else(|_| Value::String(b.to_owned())))
            .collect())
    }
}

impl EmulatorClient {
    pub fn dynamodb(&self, region: &str) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config(region))
    }

    /// The run ledger table of the fan-out contract: key `run` (S, partition), `item`
    /// (S, sort), on-demand.
    pub async fn ledger_table(&self, region: &str, name: &str) -> anyhow::Result<()> {
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |n: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
        };
        self.dynamodb(region)
            .create_table()
            .table_name(name)
            .attribute_definitions(attr("run")?)
            .attribute_definitions(attr("item")?)
            .key_schema(key("run", KeyType::Hash)?)
            .key_schema(key("item", KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .with_context(|| format!("CreateTable {name}"))?;
        Ok(())
    }

    /// Every row of the ledger `name` (a Scan, all pages), strings and numbers as JSON.
    pub async fn ledger_rows(&self, region: &str, name: &str) -> anyhow::Result<Vec<Value>> {
        let db = self.dynamodb(region);
        let mut rows = Vec::new();
        let mut start = None;
        loop {
            let page = db
                .scan()
                .table_name(name)
                .set_exclusive_start_key(start)
                .send()
                .await
                .with_context(|| format!("Scan {name}"))?;
            for item in page.items() {
                rows.push(Value::Object(
                    item.iter()
                        .map(|(k, v)| (k.clone(), attribute_json(v)))
                        .collect(),
                ));
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(rows),
            }
        }
    }
}

fn attribute_json(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!(s),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| json!(n)),
        AttributeValue::Bool(b) => json!(b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(l) => Value::Array(l.iter().map(attribute_json).collect()),
        AttributeValue::M(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), attribute_json(v)))
                .collect(),
        ),
        AttributeValue::Ss(s) => json!(s),
        AttributeValue::Ns(n) => json!(n),
        other => json!(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_read_as_lambda_reads_batch_item_failures() {
        assert_eq!(
            batch_outcome(&json!({"outcome": "ok"}), "m1"),
            Delivery::Done
        );
        assert_eq!(
            batch_outcome(&json!({"batchItemFailures": []}), "m1"),
            Delivery::Done
        );
        assert_eq!(
            batch_outcome(&json!({"batchItemFailures": null}), "m1"),
            Delivery::Done
        );
        assert_eq!(
            batch_outcome(
                &json!({"batchItemFailures": [{"itemIdentifier": "m1"}]}),
                "m1"
            ),
            Delivery::Returned
        );
        for malformed in [
            json!({"batchItemFailures": [{"itemIdentifier": "m2"}]}),
            json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            json!({"batchItemFailures": [{"id": "m1"}]}),
            json!({"batchItemFailures": "m1"}),
        ] {
            assert_eq!(
                batch_outcome(&malformed, "m1"),
                Delivery::Failed,
                "{malformed}"
            );
        }
    }
}

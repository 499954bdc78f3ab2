//! [`EventQueue`]: how a test sees the events the emulator emits: an EventBridge rule
//! targeting an SQS queue, as a deployed rule would; or a plain queue a function sends to.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

use crate::client::EmulatorClient;
use crate::ACCOUNT;

impl EmulatorClient {
    /// An EventBridge rule with `pattern` on `region`'s default bus, targeting a new SQS
    /// queue: how a test sees the events the emulator emits, as a deployed rule would.
    pub async fn event_queue(&self, region: &str, pattern: Value) -> anyhow::Result<EventQueue> {
        let n = NEXT_QUEUE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("events-{n}");
        let sqs = self.sqs(region);
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .context("CreateQueue")?
            .queue_url()
            .context("no queue url")?
            .to_owned();
        let arn = format!("arn:aws:sqs:{region}:{ACCOUNT}:{name}");
        let events = self.events(region);
        events
            .put_rule()
            .name(&name)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .context("PutRule")?;
        events
            .put_targets()
            .rule(&name)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()
                    .context("target")?,
            )
            .send()
            .await
            .context("PutTargets")?;
        Ok(EventQueue { sqs, url })
    }

    /// A plain SQS queue (no rule), e.g. a continuation queue a function sends to.
    pub async fn queue(&self, region: &str, name: &str) -> anyhow::Result<EventQueue> {
        let sqs = self.sqs(region);
        let url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .context("CreateQueue")?
            .queue_url()
            .context("no queue url")?
            .to_owned();
        Ok(EventQueue { sqs, url })
    }
}

static NEXT_QUEUE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// Events delivered by an EventBridge rule to an SQS queue.
pub struct EventQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl EventQueue {
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every event delivered so far (removes them from the queue).
    pub async fn drain(&self) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            let batch = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .send()
                .await
                .context("ReceiveMessage")?;
            let messages = batch.messages();
            if messages.is_empty() {
                return Ok(out);
            }
            for m in messages {
                if let Some(body) = m.body() {
                    out.push(
                        serde_json::from_str(body)
                            .with_context(|| format!("event is not JSON: {body}"))?,
                    );
                }
                if let Some(handle) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .context("DeleteMessage")?;
                }
            }
        }
    }

    /// Waits up to `timeout` for at least `n` events; returns what arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<Value>> {
        let start = Instant::now();
        let mut out = Vec::new();
        while out.len() < n && start.elapsed() < timeout {
            out.extend(self.drain().await?);
            if out.len() < n {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(out)
    }
}

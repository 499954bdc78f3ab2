//! [`SqsWorkQueue`]: the function's own work queue (issue 18's fan-out), sent to with
//! `SendMessageBatch` (at most 10 messages a call, each answered on its own).

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

use super::continuations::MAX_DELAY_SECONDS;
use super::errors::cloud_error;
use crate::error::{CloudError, CloudResult};
use crate::model::Region;
use crate::ports::WorkQueue;

/// SQS's limit of entries per `SendMessageBatch`.
pub const BATCH: usize = 10;

#[derive(Debug, Clone)]
pub struct SqsWorkQueue {
    client: Client,
    region: Region,
    queue_url: String,
}

impl SqsWorkQueue {
    pub fn new(client: Client, region: Region, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            region,
            queue_url: queue_url.into(),
        }
    }

    async fn send_batch(&self, bodies: &[String], delay: i32) -> Vec<CloudResult<()>> {
        let entries: Result<Vec<_>, _> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(b)
                    .delay_seconds(delay)
                    .build()
            })
            .collect();
        let entries = match entries {
            Ok(e) => e,
            Err(e) => {
                let err = CloudError::from_code(
                    "SendMessageBatch",
                    Some(self.region.clone()),
                    "InvalidRequest",
                    e.to_string(),
                );
                return every(bodies, &err);
            }
        };
        let out = match self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => {
                let err = cloud_error("SendMessageBatch", Some(&self.region), e);
                return every(bodies, &err);
            }
        };
        let mut results: Vec<CloudResult<()>> = bodies.iter().map(|_| Ok(())).collect();
        for f in out.failed() {
            if let Some(slot) = f
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| results.get_mut(i))
            {
                *slot = Err(CloudError::from_code(
                    "SendMessageBatch",
                    Some(self.region.clone()),
                    f.code(),
                    f.message().unwrap_or_default(),
                ));
            }
        }
        results
    }
}

/// The same failure for every body of a batch that failed as a whole.
fn every(bodies: &[String], err: &CloudError) -> Vec<CloudResult<()>> {
    bodies
        .iter()
        .map(|_| {
            Err(CloudError::from_code(
                err.operation,
                err.region.clone(),
                &err.code,
                &err.message,
            ))
        })
        .collect()
}

#[async_trait]
impl WorkQueue for SqsWorkQueue {
    async fn send(&self, bodies: &[String], delay_seconds: u32) -> Vec<CloudResult<()>> {
        let delay = i32::try_from(delay_seconds.min(MAX_DELAY_SECONDS)).unwrap_or(0);
        let mut out = Vec::with_capacity(bodies.len());
        for chunk in bodies.chunks(BATCH) {
            out.extend(self.send_batch(chunk, delay).await);
        }
        out
    }
}

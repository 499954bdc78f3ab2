//! [`SqsContinuations`]: asks for a later invocation through an SQS queue with a delay,
//! so create-image can wait out a reboot wave without holding a Lambda open.

use async_trait::async_trait;
use aws_sdk_sqs::Client;

use super::errors::cloud_error;
use crate::error::CloudResult;
use crate::model::Region;
use crate::ports::Continuations;

/// SQS's longest message delay (15 minutes).
pub const MAX_DELAY_SECONDS: u32 = 900;

/// Continuations sent to one queue.
#[derive(Debug, Clone)]
pub struct SqsContinuations {
    client: Client,
    region: Region,
    queue_url: String,
}

impl SqsContinuations {
    pub fn new(client: Client, region: Region, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            region,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl Continuations for SqsContinuations {
    async fn continue_later(
        &self,
        body: &serde_json::Value,
        delay_seconds: u32,
    ) -> CloudResult<()> {
        let delay = i32::try_from(delay_seconds.min(MAX_DELAY_SECONDS)).unwrap_or(0);
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body.to_string())
            .delay_seconds(delay)
            .send()
            .await
            .map_err(|e| cloud_error("SendMessage", Some(&self.region), e))?;
        Ok(())
    }
}

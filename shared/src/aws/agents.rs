//! [`AwsAgents`]: [`Agents`] over Systems Manager Run Command in one region
//! (`DescribeInstanceInformation`, `SendCommand`, `GetCommandInvocation`).
//!
//! Limits from the API model: `DescribeInstanceInformation` `MaxResults` 5–50 (with a
//! `Filters` `InstanceIds` key of up to 100 values, sent 50 at a time), `SendCommand`
//! `TimeoutSeconds` 30–2592000 and `Comment` ≤ 100 characters. `GetCommandInvocation`
//! right after `SendCommand` may answer `InvocationDoesNotExist` (eventual consistency):
//! that is read as still running, the caller's deadline bounds the wait.

use async_trait::async_trait;
use aws_sdk_ssm::types::{CommandInvocationStatus, InstanceInformationStringFilter, PingStatus};
use aws_sdk_ssm::Client;

use super::errors::cloud_error;
use crate::error::{CloudError, CloudResult};
use crate::model::{InstanceId, Region};
use crate::ports::{AgentCommand, AgentInfo, Agents, CommandStatus};

/// `DescribeInstanceInformation` `MaxResults` (5–50), and instance ids per filter.
const PAGE: i32 = 50;
/// `SendCommand` `TimeoutSeconds` minimum.
const MIN_TIMEOUT: u32 = 30;
/// `SendCommand` `Comment` maximum.
const MAX_COMMENT: usize = 100;

#[derive(Debug, Clone)]
pub struct AwsAgents {
    client: Client,
    region: Region,
}

impl AwsAgents {
    pub fn new(client: Client, region: Region) -> Self {
        Self { client, region }
    }
}

#[async_trait]
impl Agents for AwsAgents {
    async fn agents(&self, ids: &[InstanceId]) -> CloudResult<Vec<AgentInfo>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(PAGE as usize) {
            let filter = InstanceInformationStringFilter::builder()
                .key("InstanceIds")
                .set_values(Some(chunk.iter().map(|i| i.to_string()).collect()))
                .build()
                .map_err(|e| {
                    CloudError::from_code(
                        "DescribeInstanceInformation",
                        Some(self.region.clone()),
                        "InvalidParameterValue",
                        e.to_string(),
                    )
                })?;
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .describe_instance_information()
                    .filters(filter.clone())
                    .max_results(PAGE)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| {
                        cloud_error("DescribeInstanceInformation", Some(&self.region), e)
                    })?;
                out.extend(page.instance_information_list().iter().filter_map(|i| {
                    let ping = i.ping_status();
                    Some(AgentInfo {
                        instance: InstanceId::new(i.instance_id()?),
                        online: ping == Some(&PingStatus::Online),
                        ping: ping.map_or("unknown", PingStatus::as_str).to_owned(),
                        platform: i
                            .platform_type()
                            .map_or("unknown", |p| p.as_str())
                            .to_owned(),
                    })
                }));
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(out)
    }

    async fn send(&self, instance: &InstanceId, command: &AgentCommand) -> CloudResult<String> {
        let comment: String = command.comment.chars().take(MAX_COMMENT).collect();
        let answer = self
            .client
            .send_command()
            .instance_ids(instance.as_str())
            .document_name(&command.document)
            .set_parameters(Some(command.parameters.clone().into_iter().collect()))
            .timeout_seconds(command.timeout_seconds.max(MIN_TIMEOUT) as i32)
            .comment(comment)
            .send()
            .await
            .map_err(|e| cloud_error("SendCommand", Some(&self.region), e))?;
        Ok(answer
            .command()
            .and_then(|c| c.command_id())
            .unwrap_or_default()
            .to_owned())
    }

    async fn status(&self, command_id: &str, instance: &InstanceId) -> CloudResult<CommandStatus> {
        let sent = self
            .client
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(instance.as_str())
            .send()
            .await;
        let answer = match sent {
            Ok(a) => a,
            Err(e) => {
                let e = cloud_error("GetCommandInvocation", Some(&self.region), e);
                // Not visible yet right after SendCommand.
                if e.code == "InvocationDoesNotExist" {
                    return Ok(CommandStatus::Running);
                }
                return Err(e);
            }
        };
        Ok(match answer.status() {
            Some(CommandInvocationStatus::Success) => CommandStatus::Success,
            Some(
                CommandInvocationStatus::Pending
                | CommandInvocationStatus::InProgress
                | CommandInvocationStatus::Delayed,
            )
            | None => CommandStatus::Running,
            Some(other) => CommandStatus::Failed {
                status: other.as_str().to_owned(),
                detail: answer
                    .standard_error_content()
                    .or(answer.status_details())
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect(),
            },
        })
    }
}

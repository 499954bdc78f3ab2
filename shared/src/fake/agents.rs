//! The fake's Systems Manager Run Command ([`Agents`]): which instances are managed and
//! online ([`FakeCloud::set_agent`]), and what each command does there (succeeds at once,
//! fails, or never finishes). Every command sent is written to [`super::FakeState::timeline`]
//! next to the CreateImage calls, so tests can check the order freeze → image → thaw.

use async_trait::async_trait;

use super::FakeRegion;
use crate::error::{CloudError, CloudResult};
use crate::model::InstanceId;
use crate::ports::{AgentCommand, AgentInfo, Agents, CommandStatus};

/// How a command ends on a fake instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FakeOutcome {
    #[default]
    Success,
    /// Failed, with this on stderr.
    Fail(String),
    /// Never finishes (a hung hook, a frozen agent).
    Hang,
}

/// A managed instance's agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAgent {
    pub online: bool,
    pub platform: String,
    pub freeze: FakeOutcome,
    pub thaw: FakeOutcome,
}

impl Default for FakeAgent {
    fn default() -> Self {
        Self {
            online: true,
            platform: "Linux".to_owned(),
            freeze: FakeOutcome::Success,
            thaw: FakeOutcome::Success,
        }
    }
}

impl super::FakeCloud {
    /// Makes `instance` managed by Systems Manager with this agent.
    pub fn set_agent(&self, instance: &InstanceId, agent: FakeAgent) {
        self.state().agents.insert(instance.clone(), agent);
    }
}

/// The action a command asks for (`action` of the Linux document, `Action` of VSS).
fn action_of(command: &AgentCommand) -> String {
    command
        .parameters
        .get("action")
        .or_else(|| command.parameters.get("Action"))
        .and_then(|v| v.first())
        .map(|a| a.to_ascii_lowercase())
        .unwrap_or_default()
}

#[async_trait]
impl Agents for FakeRegion {
    async fn agents(&self, ids: &[InstanceId]) -> CloudResult<Vec<AgentInfo>> {
        let mut s = self.lock();
        s.call(&self.region, "DescribeInstanceInformation", None)?;
        Ok(ids
            .iter()
            .filter_map(|id| {
                let a = s.agents.get(id)?;
                Some(AgentInfo {
                    instance: id.clone(),
                    online: a.online,
                    ping: if a.online { "Online" } else { "ConnectionLost" }.to_owned(),
                    platform: a.platform.clone(),
                })
            })
            .collect())
    }

    async fn send(&self, instance: &InstanceId, command: &AgentCommand) -> CloudResult<String> {
        let mut s = self.lock();
        s.call(&self.region, "SendCommand", Some(instance.as_str()))?;
        if !s.agents.get(instance).is_some_and(|a| a.online) {
            return Err(CloudError::from_code(
                "SendCommand",
                Some(self.region.clone()),
                "InvalidInstanceId",
                format!("{instance} is not managed by Systems Manager or not online"),
            ));
        }
        let action = action_of(command);
        s.timeline.push(format!(
            "SendCommand {} {} {instance}",
            command.document, action
        ));
        let id = format!(
            "{:08x}-0000-0000-0000-{:012x}",
            s.timeline.len(),
            s.timeline.len()
        );
        s.command_actions
            .insert(id.clone(), (instance.clone(), action));
        Ok(id)
    }

    async fn status(&self, command_id: &str, instance: &InstanceId) -> CloudResult<CommandStatus> {
        let mut s = self.lock();
        s.call(
            &self.region,
            "GetCommandInvocation",
            Some(instance.as_str()),
        )?;
        let Some((on, action)) = s.command_actions.get(command_id).cloned() else {
            return Err(CloudError::from_code(
                "GetCommandInvocation",
                Some(self.region.clone()),
                "InvocationDoesNotExist",
                command_id,
            ));
        };
        let agent = s.agents.get(&on).cloned().unwrap_or_default();
        let outcome = if action == "thaw" {
            agent.thaw
        } else {
            agent.freeze
        };
        Ok(match outcome {
            FakeOutcome::Success => CommandStatus::Success,
            FakeOutcome::Fail(detail) => CommandStatus::Failed {
                status: "Failed".to_owned(),
                detail,
            },
            FakeOutcome::Hang => CommandStatus::Running,
        })
    }
}

//! Systems Manager on the emulator for quiesced images (`ami-lifecycle:method=quiesce`):
//! the template's own Linux quiesce document installed as the stack would
//! ([`EmulatorClient::install_quiesce_document`]), an instance's SSM Agent set through the
//! control API ([`EmulatorClient::set_ssm_agent`]), and the per-instance timeline the
//! emulator records (freeze and thaw commands, CreateImage, reboots:
//! [`EmulatorClient::timeline`], [`TimelineEntry`]).

use std::path::Path;

use anyhow::{bail, Context as _};
use serde_json::Value;
use serde_yaml::Value as Yaml;

use crate::client::EmulatorClient;

/// The template's logical id of the shipped Linux quiesce document.
pub const QUIESCE_DOCUMENT_RESOURCE: &str = "QuiesceLinuxDocument";

/// The document's name for a deployment (the template's `${DeploymentName}-quiesce-linux`,
/// what create-image's `QUIESCE_LINUX_DOCUMENT` says).
pub fn quiesce_document_name(deployment: &str) -> String {
    format!("{deployment}-quiesce-linux")
}

/// What `AWS::SSM::Document` `QuiesceLinuxDocument` creates: its content as YAML text, its
/// type, format and target type, read from the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuiesceDocument {
    pub content: String,
    pub document_type: String,
    pub document_format: String,
    pub target_type: Option<String>,
}

impl QuiesceDocument {
    /// Reads the resource from the template's text.
    pub fn from_template(text: &str) -> anyhow::Result<Self> {
        let doc: Yaml = serde_yaml::from_str(text).context("the template is not YAML")?;
        let props = doc
            .get("Resources")
            .and_then(|r| r.get(QUIESCE_DOCUMENT_RESOURCE))
            .and_then(|r| r.get("Properties"))
            .with_context(|| {
                format!("the template has no Resources.{QUIESCE_DOCUMENT_RESOURCE}.Properties")
            })?;
        let text_of = |k: &str| props.get(k).and_then(Yaml::as_str).map(str::to_owned);
        let content = match props.get("Content") {
            Some(Yaml::String(s)) => s.clone(),
            Some(v @ Yaml::Mapping(_)) => serde_yaml::to_string(v)?,
            _ => bail!("{QUIESCE_DOCUMENT_RESOURCE} has no Content mapping"),
        };
        let document = Self {
            content,
            document_type: text_of("DocumentType").unwrap_or_else(|| "Command".to_owned()),
            document_format: text_of("DocumentFormat").unwrap_or_else(|| "JSON".to_owned()),
            target_type: text_of("TargetType"),
        };
        if document.document_type != "Command" || document.document_format != "YAML" {
            bail!(
                "{QUIESCE_DOCUMENT_RESOURCE} is DocumentType {} / DocumentFormat {}: SendCommand runs Command documents and its Content is YAML",
                document.document_type,
                document.document_format
            );
        }
        Ok(document)
    }
}

/// One entry of an instance's timeline (`GET /_emulator/instances/<id>/timeline`).
#[derive(Debug, Clone, PartialEq)]
pub enum TimelineEntry {
    /// A SendCommand: the document, its `action`/`Action` parameter (lower-case) and the
    /// invocation's status now.
    Command {
        document: String,
        action: String,
        status: String,
        parameters: Value,
    },
    /// A CreateImage of the instance; `error` when EC2 refused it.
    CreateImage {
        image: Option<String>,
        no_reboot: bool,
        error: Option<String>,
    },
    /// A reboot (`cause`: CreateImage or RebootInstances).
    Reboot { cause: String },
}

impl TimelineEntry {
    fn parse(v: &Value) -> anyhow::Result<Self> {
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        Ok(match v["kind"].as_str() {
            Some("command") => Self::Command {
                document: s("document").unwrap_or_default(),
                action: s("action").unwrap_or_default(),
                status: s("status").unwrap_or_default(),
                parameters: v["parameters"].clone(),
            },
            Some("create-image") => Self::CreateImage {
                image: s("image_id"),
                no_reboot: v["no_reboot"].as_bool().unwrap_or(false),
                error: s("error"),
            },
            Some("reboot") => Self::Reboot {
                cause: s("cause").unwrap_or_default(),
            },
            _ => bail!("unknown timeline entry {v}"),
        })
    }

    /// A short label: `freeze AWSEC2-ManageVssIO (Success)`, `create-image NoReboot`,
    /// `create-image failed (InternalError)`, `reboot (CreateImage)`.
    pub fn label(&self) -> String {
        match self {
            Self::Command {
                document,
                action,
                status,
                ..
            } => format!("{action} {document} ({status})"),
            Self::CreateImage { error: Some(e), .. } => format!("create-image failed ({e})"),
            Self::CreateImage { no_reboot, .. } => {
                format!(
                    "create-image {}",
                    if *no_reboot {
                        "NoReboot"
                    } else {
                        "with reboot"
                    }
                )
            }
            Self::Reboot { cause } => format!("reboot ({cause})"),
        }
    }
}

impl EmulatorClient {
    pub fn ssm(&self, region: &str) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.sdk_config(region))
    }

    /// Creates the template's `QuiesceLinuxDocument` in `region`'s Systems Manager as the
    /// stack does (name `<deployment>-quiesce-linux`); returns the name. Installing it
    /// again with the same content is a no-op; different content is an error.
    pub async fn install_quiesce_document(
        &self,
        region: &str,
        template: &Path,
        deployment: &str,
    ) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(template)
            .with_context(|| format!("reading {}", template.display()))?;
        let doc = QuiesceDocument::from_template(&text)
            .with_context(|| format!("{} in {}", QUIESCE_DOCUMENT_RESOURCE, template.display()))?;
        let name = quiesce_document_name(deployment);
        let ssm = self.ssm(region);
        let sent = ssm
            .create_document()
            .name(&name)
            .content(&doc.content)
            .document_type(aws_sdk_ssm::types::DocumentType::from(
                doc.document_type.as_str(),
            ))
            .document_format(aws_sdk_ssm::types::DocumentFormat::from(
                doc.document_format.as_str(),
            ))
            .set_target_type(doc.target_type.clone())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(name),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_document_already_exists()) =>
            {
                let existing = ssm
                    .get_document()
                    .name(&name)
                    .send()
                    .await
                    .with_context(|| format!("GetDocument {name} in {region}"))?;
                if existing.content() == Some(doc.content.as_str()) {
                    Ok(name)
                } else {
                    bail!("{name} exists in {region} with other content than {QUIESCE_DOCUMENT_RESOURCE} of {}", template.display())
                }
            }
            Err(e) => Err(anyhow::Error::new(e))
                .with_context(|| format!("CreateDocument {name} in {region}")),
        }
    }

    /// Sets (merges) the SSM Agent of `instance` through the control API
    /// (`POST /_emulator/ssm/instances/<id>`: managed, ping, platform, vss, outcome,
    /// delay_seconds, freeze/thaw overrides, …); returns the agent as the emulator has it.
    /// The agent is global to the emulator (instance ids are unique); `region` is checked
    /// to hold the instance, so a test cannot configure one it did not launch there.
    pub async fn set_ssm_agent(
        &self,
        region: &str,
        instance: &str,
        agent: Value,
    ) -> anyhow::Result<Value> {
        self.instance_in(region, instance).await?;
        self.control(
            "POST",
            &format!("/_emulator/ssm/instances/{instance}"),
            Some(agent),
        )
    }

    /// The raw timeline of `instance` (`GET /_emulator/instances/<id>/timeline`): the
    /// entries of `region` (commands carry their region; CreateImage and reboots are of
    /// the instance, which lives in one region).
    pub async fn timeline(&self, region: &str, instance: &str) -> anyhow::Result<Value> {
        self.instance_in(region, instance).await?;
        let v = self.control(
            "GET",
            &format!("/_emulator/instances/{instance}/timeline"),
            None,
        )?;
        let entries = v["timeline"]
            .as_array()
            .with_context(|| format!("timeline of {instance}: {v}"))?;
        Ok(Value::Array(
            entries
                .iter()
                .filter(|e| {
                    e.get("region")
                        .and_then(Value::as_str)
                        .is_none_or(|r| r == region)
                })
                .cloned()
                .collect(),
        ))
    }

    /// [`EmulatorClient::timeline`] parsed.
    pub async fn timeline_entries(
        &self,
        region: &str,
        instance: &str,
    ) -> anyhow::Result<Vec<TimelineEntry>> {
        let raw = self.timeline(region, instance).await?;
        raw.as_array()
            .map(|a| a.iter().map(TimelineEntry::parse).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    async fn instance_in(&self, region: &str, instance: &str) -> anyhow::Result<()> {
        let out = self
            .ec2(region)
            .describe_instances()
            .instance_ids(instance)
            .send()
            .await
            .with_context(|| format!("{instance} is not an instance in {region}"))?;
        if out.reservations().iter().all(|r| r.instances().is_empty()) {
            bail!("{instance} is not an instance in {region}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_document_is_read_from_the_template() -> anyhow::Result<()> {
        let path = crate::repo_root().join("template.yaml");
        let doc = QuiesceDocument::from_template(&std::fs::read_to_string(path)?)?;
        let content: Yaml = serde_yaml::from_str(&doc.content)?;
        assert_eq!(content["schemaVersion"].as_str(), Some("2.2"));
        let params = content["parameters"]
            .as_mapping()
            .context("parameters")?
            .keys()
            .filter_map(Yaml::as_str)
            .collect::<Vec<_>>();
        for p in ["action", "mounts", "maxFreezeSeconds", "hookTimeoutSeconds"] {
            assert!(params.contains(&p), "{p} in {params:?}");
        }
        assert!(doc.content.contains("fsfreeze"));
        assert_eq!(doc.target_type.as_deref(), Some("/AWS::EC2::Instance"));
        Ok(())
    }

    #[test]
    fn a_template_without_the_document_is_named() {
        let e = QuiesceDocument::from_template("Resources: {}\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("QuiesceLinuxDocument"), "{e}");
    }
}

//! [`Org`]: an organization of accounts on the emulator, as issue 18's hub sees it: the
//! Organizations seed (control API), the spoke roles the StackSet of
//! `infra/spoke-role.yaml` deploys (with its trust, which the emulator's STS enforces), and
//! the hub *function role* the functions run as (a role under
//! `/ami-lifecycle/<deployment>/`, the only principal the spoke roles trust).
//!
//! [`Org::hub_credentials`] are that role's session (for a context here, or for a release
//! binary's environment); [`Org::hub_context`] is a runner [`Context`] over them.

use std::sync::Arc;

use ami_core::config::Config;
use ami_core::context::Context;
use anyhow::{ensure, Context as _};
use aws_credential_types::Credentials;
use serde_json::{json, Value};

use crate::client::EmulatorClient;

/// One deployment's view of an organization on the emulator.
#[derive(Debug, Clone)]
pub struct Org {
    pub hub: String,
    pub deployment: String,
    pub external_id: String,
    /// The region the IAM/STS calls and the hub's context use.
    pub home: String,
}

impl Org {
    pub fn new(hub: &str, deployment: &str, external_id: &str, home: &str) -> Self {
        Self {
            hub: hub.to_owned(),
            deployment: deployment.to_owned(),
            external_id: external_id.to_owned(),
            home: home.to_owned(),
        }
    }

    /// Seeds the organization: the hub as management account, `members` as
    /// `(account, name, ou)` ACTIVE accounts (OUs nested with `/`). Answers the control
    /// API's seed answer (`ous`: name → id, `accounts`).
    pub fn seed(
        &self,
        emu: &EmulatorClient,
        ous: &[&str],
        members: &[(&str, &str, &str)],
    ) -> anyhow::Result<Value> {
        let accounts: Vec<Value> = members
            .iter()
            .map(|(id, name, ou)| json!({"id": id, "name": name, "ou": ou, "status": "ACTIVE"}))
            .collect();
        let seeded = emu.control(
            "POST",
            "/_emulator/organizations/seed",
            Some(json!({"management": self.hub, "ous": ous, "accounts": accounts})),
        )?;
        ensure!(
            seeded["accounts"].as_array().map(Vec::len) == Some(members.len()),
            "organizations/seed answered {seeded}"
        );
        Ok(seeded)
    }

    /// The trust of every spoke role in `infra/spoke-role.yaml`, for this hub and deployment.
    pub fn spoke_trust(&self) -> anyhow::Result<String> {
        let path = crate::repo_root().join("infra/spoke-role.yaml");
        let template = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        // The statement built here is the template's: fail when the template's trust changes.
        for line in [
            "AWS: !Sub arn:${AWS::Partition}:iam::${HubAccountId}:root",
            "sts:ExternalId: !Ref ExternalId",
            "aws:PrincipalArn: !Sub arn:${AWS::Partition}:iam::${HubAccountId}:role/ami-lifecycle/${DeploymentName}/*",
        ] {
            ensure!(template.contains(line), "infra/spoke-role.yaml no longer says {line:?}");
        }
        Ok(json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "HubFunctionRolesWithExternalId",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{}:root", self.hub)},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"sts:ExternalId": self.external_id},
                    "ArnLike": {"aws:PrincipalArn": format!("arn:aws:iam::{}:role/ami-lifecycle/{}/*", self.hub, self.deployment)},
                },
            }],
        })
        .to_string())
    }

    fn iam(&self, emu: &EmulatorClient, account: &str) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&emu.sdk_config_as(&self.home, account))
    }

    /// The spoke roles `<deployment>-spoke-<function>` of `functions` in `account` (what
    /// the StackSet deploys).
    pub async fn spoke_roles(
        &self,
        emu: &EmulatorClient,
        account: &str,
        functions: &[&str],
    ) -> anyhow::Result<()> {
        let trust = self.spoke_trust()?;
        for f in functions {
            self.iam(emu, account)
                .create_role()
                .role_name(format!("{}-spoke-{f}", self.deployment))
                .path("/ami-lifecycle/")
                .assume_role_policy_document(&trust)
                .send()
                .await
                .with_context(|| {
                    format!("CreateRole {}-spoke-{f} in {account}", self.deployment)
                })?;
        }
        Ok(())
    }

    /// A session of the hub's function role (made on first use), as a function runs.
    pub async fn hub_credentials(&self, emu: &EmulatorClient) -> anyhow::Result<Credentials> {
        let name = format!("{}-functions", self.deployment);
        let iam = self.iam(emu, &self.hub);
        let arn = match iam.get_role().role_name(&name).send().await {
            Ok(found) => found.role.map(|r| r.arn),
            Err(_) => {
                let trust = json!({
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"AWS": self.hub}, "Action": "sts:AssumeRole"}],
                })
                .to_string();
                iam.create_role()
                    .role_name(&name)
                    .path(format!("/ami-lifecycle/{}/", self.deployment))
                    .assume_role_policy_document(trust)
                    .send()
                    .await
                    .with_context(|| format!("CreateRole {name} in {}", self.hub))?
                    .role
                    .map(|r| r.arn)
            }
        }
        .context("IAM answered no role")?;
        let sts = aws_sdk_sts::Client::new(&emu.sdk_config_as(&self.home, &self.hub));
        let c = sts
            .assume_role()
            .role_arn(&arn)
            .role_session_name("hub-function")
            .duration_seconds(3600)
            .send()
            .await
            .with_context(|| format!("AssumeRole {arn}"))?
            .credentials
            .context("AssumeRole answered no credentials")?;
        Ok(Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            None,
            "hub-function-role",
        ))
    }

    /// A runner context acting as the hub's function role with `config` (the deployment's
    /// seal key set), pacing at `pace_scale` (0: off).
    pub fn hub_context(
        &self,
        emu: &EmulatorClient,
        creds: Credentials,
        mut config: Config,
        pace_scale: f64,
    ) -> anyhow::Result<Context> {
        config.seal_key = Some(emu.seal_key(&self.home, &self.deployment)?);
        let cloud = ami_core::aws::AwsCloud::new(
            emu.sdk_config_with(&self.home, creds),
            &config,
            pace_scale,
        );
        Ok(Context::new(Arc::new(cloud), config))
    }
}

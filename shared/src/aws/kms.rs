//! [`AwsKeys`]: the KMS port for one region (key facts and grants for sharing encrypted
//! images). KMS has its own request quotas, far above what a run needs, so calls are not
//! paced; the SDK's retries absorb throttling.

use async_trait::async_trait;
use aws_sdk_kms::types::{GrantOperation, KeyManagerType, KeyState};
use aws_sdk_kms::Client;

use super::errors::cloud_error;
use crate::error::{CloudError, CloudResult};
use crate::model::{KeyGrant, KeyInfo, KeyRef, Region};
use crate::ports::Keys;

/// The KMS port of one region.
#[derive(Debug, Clone)]
pub struct AwsKeys {
    client: Client,
    region: Region,
}

impl AwsKeys {
    pub fn new(client: Client, region: Region) -> Self {
        Self { client, region }
    }

    fn err<E>(
        &self,
        operation: &'static str,
    ) -> impl FnOnce(aws_sdk_kms::error::SdkError<E>) -> CloudError + '_
    where
        E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        move |e| cloud_error(operation, Some(&self.region), e)
    }
}

#[async_trait]
impl Keys for AwsKeys {
    async fn describe_key(&self, key: &KeyRef) -> CloudResult<KeyInfo> {
        let out = self
            .client
            .describe_key()
            .key_id(key.as_str())
            .send()
            .await
            .map_err(self.err("DescribeKey"))?;
        let meta = out.key_metadata().ok_or_else(|| {
            CloudError::from_code(
                "DescribeKey",
                Some(self.region.clone()),
                "MissingKeyMetadata",
                format!("no metadata for {key}"),
            )
        })?;
        Ok(KeyInfo {
            arn: meta.arn().unwrap_or(meta.key_id()).to_owned(),
            enabled: meta.key_state() == Some(&KeyState::Enabled),
            aws_managed: meta.key_manager() == Some(&KeyManagerType::Aws),
        })
    }

    async fn list_grants(&self, key_arn: &str) -> CloudResult<Vec<KeyGrant>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_grants()
                .key_id(key_arn)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(self.err("ListGrants"))?;
            out.extend(page.grants().iter().filter_map(|g| {
                Some(KeyGrant {
                    grant_id: g.grant_id()?.to_owned(),
                    key_arn: g.key_id().unwrap_or(key_arn).to_owned(),
                    grantee: g.grantee_principal().unwrap_or_default().to_owned(),
                    name: g.name().filter(|n| !n.is_empty()).map(str::to_owned),
                    operations: g
                        .operations()
                        .iter()
                        .map(|o| o.as_str().to_owned())
                        .collect(),
                })
            }));
            match page.next_marker() {
                Some(m) if page.truncated() && !m.is_empty() => marker = Some(m.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    async fn create_grant(
        &self,
        key_arn: &str,
        grantee_principal: &str,
        operations: &[String],
        name: &str,
    ) -> CloudResult<String> {
        let out = self
            .client
            .create_grant()
            .key_id(key_arn)
            .grantee_principal(grantee_principal)
            .set_operations(Some(
                operations
                    .iter()
                    .map(|o| GrantOperation::from(o.as_str()))
                    .collect(),
            ))
            .name(name)
            .send()
            .await
            .map_err(self.err("CreateGrant"))?;
        out.grant_id().map(str::to_owned).ok_or_else(|| {
            CloudError::from_code(
                "CreateGrant",
                Some(self.region.clone()),
                "MissingGrantId",
                "no grant id in the answer",
            )
        })
    }

    async fn revoke_grant(&self, key_arn: &str, grant_id: &str) -> CloudResult<()> {
        self.client
            .revoke_grant()
            .key_id(key_arn)
            .grant_id(grant_id)
            .send()
            .await
            .map_err(self.err("RevokeGrant"))?;
        Ok(())
    }
}

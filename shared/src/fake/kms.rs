//! The fake's KMS: keys by ARN or alias, grants with ids.

use async_trait::async_trait;

use super::{not_found, FakeRegion};
use crate::error::CloudResult;
use crate::model::{KeyGrant, KeyInfo, KeyRef};
use crate::ports::Keys;

#[async_trait]
impl Keys for FakeRegion {
    async fn describe_key(&self, key: &KeyRef) -> CloudResult<KeyInfo> {
        let mut s = self.lock();
        s.call(&self.region, "DescribeKey", Some(key.as_str()))?;
        s.keys
            .iter()
            .filter(|((r, _), _)| *r == self.region)
            .map(|(_, k)| k)
            .find(|k| {
                k.arn == key.as_str()
                    || k.arn.ends_with(&format!("/{}", key.as_str()))
                    || k.aliases
                        .iter()
                        .any(|a| a == key.as_str() || key.as_str().ends_with(&format!(":{a}")))
            })
            .map(|k| KeyInfo {
                arn: k.arn.clone(),
                enabled: k.enabled,
                aws_managed: k.aws_managed,
            })
            .ok_or_else(|| {
                not_found(
                    "DescribeKey",
                    &self.region,
                    "NotFoundException",
                    key.as_str(),
                )
            })
    }

    async fn list_grants(&self, key_arn: &str) -> CloudResult<Vec<KeyGrant>> {
        let mut s = self.lock();
        s.call(&self.region, "ListGrants", Some(key_arn))?;
        Ok(s.grants
            .iter()
            .filter(|g| g.key_arn == key_arn)
            .cloned()
            .collect())
    }

    async fn create_grant(
        &self,
        key_arn: &str,
        grantee_principal: &str,
        operations: &[String],
        name: &str,
    ) -> CloudResult<String> {
        let mut s = self.lock();
        s.call(&self.region, "CreateGrant", Some(key_arn))?;
        // KMS returns the existing grant for an identical request (same name, grantee, operations).
        if let Some(g) = s.grants.iter().find(|g| {
            g.key_arn == key_arn
                && g.grantee == grantee_principal
                && g.name.as_deref() == Some(name)
                && g.operations == operations
        }) {
            return Ok(g.grant_id.clone());
        }
        let grant_id = s.id("grant");
        s.grants.push(KeyGrant {
            grant_id: grant_id.clone(),
            key_arn: key_arn.to_owned(),
            grantee: grantee_principal.to_owned(),
            name: Some(name.to_owned()),
            operations: operations.to_vec(),
        });
        Ok(grant_id)
    }

    async fn revoke_grant(&self, key_arn: &str, grant_id: &str) -> CloudResult<()> {
        let mut s = self.lock();
        s.call(&self.region, "RevokeGrant", Some(grant_id))?;
        let before = s.grants.len();
        s.grants
            .retain(|g| !(g.key_arn == key_arn && g.grant_id == grant_id));
        if s.grants.len() == before {
            return Err(not_found(
                "RevokeGrant",
                &self.region,
                "NotFoundException",
                grant_id,
            ));
        }
        Ok(())
    }
}

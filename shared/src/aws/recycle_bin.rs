//! [`AwsRecycleBin`]: the Recycle Bin retention rules of one region, for the cleanup report.
//!
//! Two calls: `ListRules` (per `ResourceType`, `MaxResults` 1–1000 in the model,
//! `NextToken` pages) gives each rule's id, and `GetRule` gives what a `ListRules` summary
//! leaves out and coverage needs: `ResourceTags`, `ExcludeResourceTags` and `Status`.
//! Rules are few (a region quota of a few hundred), so one `GetRule` per rule is cheap.

use async_trait::async_trait;
use aws_sdk_rbin::types::{ResourceTag, ResourceType, RuleStatus};
use aws_sdk_rbin::Client;

use super::errors::cloud_error;
use crate::error::CloudResult;
use crate::model::Region;
use crate::ports::{RecycleBin, RecycleResource, RetentionRule, RuleTag};

/// `ListRules` `MaxResults`: the model's `MaxResults` shape allows 1–1000.
const LIST_PAGE: i32 = 1000;

/// The Recycle Bin adapter of one region.
#[derive(Debug, Clone)]
pub struct AwsRecycleBin {
    client: Client,
    region: Region,
}

impl AwsRecycleBin {
    pub fn new(client: Client, region: Region) -> Self {
        Self { client, region }
    }

    /// Every rule id of one resource type.
    async fn rule_ids(&self, resource: RecycleResource) -> CloudResult<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_rules()
                .resource_type(api_type(resource))
                .max_results(LIST_PAGE)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| cloud_error("ListRules", Some(&self.region), e))?;
            out.extend(
                page.rules()
                    .iter()
                    .filter_map(|r| r.identifier().map(str::to_owned)),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    async fn rule(&self, resource: RecycleResource, id: String) -> CloudResult<RetentionRule> {
        let got = self
            .client
            .get_rule()
            .identifier(id.clone())
            .send()
            .await
            .map_err(|e| cloud_error("GetRule", Some(&self.region), e))?;
        Ok(RetentionRule {
            id,
            resource,
            retention_days: got
                .retention_period()
                .map(|p| u32::try_from(p.retention_period_value()).unwrap_or(0))
                .unwrap_or(0),
            resource_tags: got.resource_tags().iter().map(rule_tag).collect(),
            exclude_tags: got.exclude_resource_tags().iter().map(rule_tag).collect(),
            lock_state: got.lock_state().map(|l| l.as_str().to_owned()),
            // No status reported: take the rule as in force (the report errs towards
            // "restorable" only when AWS lists the rule at all).
            available: got.status().is_none_or(|s| *s == RuleStatus::Available),
        })
    }
}

fn api_type(resource: RecycleResource) -> ResourceType {
    match resource {
        RecycleResource::Image => ResourceType::Ec2Image,
        RecycleResource::Snapshot => ResourceType::EbsSnapshot,
    }
}

fn rule_tag(tag: &ResourceTag) -> RuleTag {
    RuleTag {
        key: tag.resource_tag_key().to_owned(),
        value: tag.resource_tag_value().map(str::to_owned),
    }
}

#[async_trait]
impl RecycleBin for AwsRecycleBin {
    async fn retention_rules(&self) -> CloudResult<Vec<RetentionRule>> {
        let mut out = Vec::new();
        for resource in [RecycleResource::Image, RecycleResource::Snapshot] {
            for id in self.rule_ids(resource).await? {
                out.push(self.rule(resource, id).await?);
            }
        }
        Ok(out)
    }
}

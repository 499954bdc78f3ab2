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

#[cfg(test)]
mod tests {
    //! Against `aws-smithy-mocks`, through the real SDK serializers: pages, the per-rule
    //! read, the mapping, and an error code kept.

    use std::time::Duration;

    use aws_sdk_rbin::operation::get_rule::GetRuleOutput;
    use aws_sdk_rbin::operation::list_rules::{ListRulesError, ListRulesOutput};
    use aws_sdk_rbin::types::{LockState, RetentionPeriod, RetentionPeriodUnit, RuleSummary};
    use aws_smithy_mocks::{
        create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode,
    };
    use aws_smithy_types::error::ErrorMetadata;
    use aws_smithy_types::retry::RetryConfig;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn bin(rules: &[&Rule]) -> AwsRecycleBin {
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in rules {
            interceptor = interceptor.with_rule(rule);
        }
        let conf = aws_sdk_rbin::Config::builder()
            .behavior_version(aws_sdk_rbin::config::BehaviorVersion::latest())
            .region(aws_sdk_rbin::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_rbin::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .http_client(create_mock_http_client())
            .interceptor(interceptor)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(1)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .build();
        AwsRecycleBin::new(Client::from_conf(conf), Region::new("us-east-1"))
    }

    fn summary(id: &str) -> RuleSummary {
        RuleSummary::builder().identifier(id).build()
    }

    fn days(n: i32) -> Result<RetentionPeriod, Box<dyn std::error::Error>> {
        Ok(RetentionPeriod::builder()
            .retention_period_value(n)
            .retention_period_unit(RetentionPeriodUnit::Days)
            .build()?)
    }

    #[tokio::test]
    async fn every_page_of_both_types_is_listed_and_each_rule_read_with_its_tags() -> TestResult {
        let images_1 = mock!(Client::list_rules)
            .match_requests(|r| {
                r.resource_type() == Some(&ResourceType::Ec2Image)
                    && r.next_token().is_none()
                    && r.max_results() == Some(1000)
            })
            .then_output(|| {
                ListRulesOutput::builder()
                    .rules(summary("imagerule01"))
                    .next_token("cGFnZTI=")
                    .build()
            });
        let images_2 = mock!(Client::list_rules)
            .match_requests(|r| {
                r.resource_type() == Some(&ResourceType::Ec2Image)
                    && r.next_token() == Some("cGFnZTI=")
            })
            .then_output(|| {
                ListRulesOutput::builder()
                    .rules(summary("imagerule02"))
                    .build()
            });
        let snapshots = mock!(Client::list_rules)
            .match_requests(|r| r.resource_type() == Some(&ResourceType::EbsSnapshot))
            .then_output(|| ListRulesOutput::builder().build());
        let p7 = days(7)?;
        let p30 = days(30)?;
        let region_rule = mock!(Client::get_rule)
            .match_requests(|r| r.identifier() == Some("imagerule01"))
            .then_output(move || {
                GetRuleOutput::builder()
                    .identifier("imagerule01")
                    .resource_type(ResourceType::Ec2Image)
                    .retention_period(p7.clone())
                    .exclude_resource_tags(
                        ResourceTag::builder()
                            .resource_tag_key("env")
                            .resource_tag_value("dev")
                            .build()
                            .unwrap_or_else(|e| panic!("{e}")),
                    )
                    .lock_state(LockState::Locked)
                    .status(RuleStatus::Available)
                    .build()
            });
        let tag_rule = mock!(Client::get_rule)
            .match_requests(|r| r.identifier() == Some("imagerule02"))
            .then_output(move || {
                GetRuleOutput::builder()
                    .identifier("imagerule02")
                    .retention_period(p30.clone())
                    .resource_tags(
                        ResourceTag::builder()
                            .resource_tag_key("tier")
                            .build()
                            .unwrap_or_else(|e| panic!("{e}")),
                    )
                    .status(RuleStatus::Pending)
                    .build()
            });
        let rules = bin(&[&images_1, &images_2, &snapshots, &region_rule, &tag_rule])
            .retention_rules()
            .await?;
        assert_eq!(
            rules,
            vec![
                RetentionRule {
                    id: "imagerule01".to_owned(),
                    resource: RecycleResource::Image,
                    retention_days: 7,
                    resource_tags: Vec::new(),
                    exclude_tags: vec![RuleTag {
                        key: "env".to_owned(),
                        value: Some("dev".to_owned()),
                    }],
                    lock_state: Some("locked".to_owned()),
                    available: true,
                },
                RetentionRule {
                    id: "imagerule02".to_owned(),
                    resource: RecycleResource::Image,
                    retention_days: 30,
                    resource_tags: vec![RuleTag {
                        key: "tier".to_owned(),
                        value: None,
                    }],
                    exclude_tags: Vec::new(),
                    lock_state: None,
                    available: false,
                },
            ]
        );
        assert_eq!(images_1.num_calls() + images_2.num_calls(), 2);
        assert_eq!(snapshots.num_calls(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn a_refused_list_keeps_the_aws_error_code() {
        let denied = mock!(Client::list_rules).then_error(|| {
            ListRulesError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("not authorized to perform: rbin:ListRules")
                    .build(),
            )
        });
        let err = bin(&[&denied])
            .retention_rules()
            .await
            .err()
            .unwrap_or_else(|| panic!("an error"));
        assert_eq!(err.code, "AccessDeniedException", "{err}");
        assert_eq!(err.operation, "ListRules");
    }
}

//! EC2 image usage reports: [`UsageReports`] for [`AwsEc2`].
//!
//! `CreateImageUsageReport` asks EC2 which OTHER accounts use an image this account owns
//! (instances, launch templates); the report is computed asynchronously (`pending`, then
//! `available`; AWS documents the data lagging up to a day) and kept 30 days.
//! `DescribeImageUsageReports` says where a report stands, `DescribeImageUsageReportEntries`
//! lists one entry per account and resource type with a `UsageCount`. Cleanup and share
//! read them for grantees the hub cannot look into ([`crate::cleanup::usage_check`]).
//!
//! Limits from the API model: `AccountId.N` 0–200 (none: every account), `ClientToken` up
//! to 128 characters (the suite's are shorter than 64), `ImageId.N`/`ReportId.N` up to 200.

use async_trait::async_trait;
use aws_sdk_ec2::types::{ImageUsageResourceTypeOptionRequest, ImageUsageResourceTypeRequest};

use super::convert;
use super::ec2::AwsEc2;
use super::references::LAUNCH_TEMPLATE_VERSION_DEPTH;
use crate::error::{CloudError, CloudResult};
use crate::model::{AccountId, ImageId};
use crate::pacing::Bucket;
use crate::ports::{UsageEntry, UsageReport, UsageReports};

/// `AccountId.N` of CreateImageUsageReport: at most 200 in the model.
pub const ACCOUNTS_PER_REPORT: usize = 200;

/// The resource types every report asks for: instances, and launch templates to their
/// deepest version (the default depth, 20, would miss an older version that pins the image).
fn resource_types() -> Vec<ImageUsageResourceTypeRequest> {
    vec![
        ImageUsageResourceTypeRequest::builder()
            .resource_type("ec2:Instance")
            .build(),
        ImageUsageResourceTypeRequest::builder()
            .resource_type("ec2:LaunchTemplate")
            .resource_type_options(
                ImageUsageResourceTypeOptionRequest::builder()
                    .option_name("version-depth")
                    .option_values(LAUNCH_TEMPLATE_VERSION_DEPTH.to_string())
                    .build(),
            )
            .build(),
    ]
}

#[async_trait]
impl UsageReports for AwsEc2 {
    async fn create_usage_report(
        &self,
        image: &ImageId,
        accounts: &[AccountId],
        token: &str,
    ) -> CloudResult<String> {
        if accounts.len() > ACCOUNTS_PER_REPORT {
            return Err(CloudError::from_code(
                "CreateImageUsageReport",
                Some(self.region.clone()),
                "InvalidParameterValue",
                format!(
                    "{} accounts for one usage report of {image}; EC2 takes at most {ACCOUNTS_PER_REPORT}",
                    accounts.len()
                ),
            ));
        }
        self.pacer.take(Bucket::Mutating).await;
        let answer = self
            .client
            .create_image_usage_report()
            .image_id(image.as_str())
            .set_resource_types(Some(resource_types()))
            .set_account_ids(
                (!accounts.is_empty())
                    .then(|| accounts.iter().map(|a| a.as_str().to_owned()).collect()),
            )
            .client_token(token)
            .send()
            .await
            .map_err(self.err("CreateImageUsageReport"))?;
        answer.report_id().map(str::to_owned).ok_or_else(|| {
            CloudError::from_code(
                "CreateImageUsageReport",
                Some(self.region.clone()),
                "InvalidResponse",
                format!("no ReportId in the answer for {image}"),
            )
        })
    }

    async fn usage_reports(&self, image: &ImageId) -> CloudResult<Vec<UsageReport>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.pacer.take(Bucket::Describe).await;
            let page = self
                .client
                .describe_image_usage_reports()
                .image_ids(image.as_str())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(self.err("DescribeImageUsageReports"))?;
            out.extend(page.image_usage_reports().iter().filter_map(|r| {
                Some(UsageReport {
                    id: r.report_id()?.to_owned(),
                    image: ImageId::new(r.image_id()?),
                    accounts: r
                        .account_ids()
                        .iter()
                        .filter_map(|a| AccountId::parse(a))
                        .collect(),
                    state: r.state().unwrap_or("unknown").to_owned(),
                    state_reason: r.state_reason().map(str::to_owned),
                    created: r.creation_time().and_then(convert::from_smithy_time),
                })
            }));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    async fn usage_report_entries(&self, report: &str) -> CloudResult<Vec<UsageEntry>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.pacer.take(Bucket::Describe).await;
            let page = self
                .client
                .describe_image_usage_report_entries()
                .report_ids(report)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(self.err("DescribeImageUsageReportEntries"))?;
            out.extend(page.image_usage_report_entries().iter().filter_map(|e| {
                Some(UsageEntry {
                    account: AccountId::parse(e.account_id()?)?,
                    resource_type: e.resource_type().unwrap_or("unknown").to_owned(),
                    count: u64::try_from(e.usage_count().unwrap_or(0)).unwrap_or(0),
                })
            }));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }
}

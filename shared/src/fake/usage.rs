//! The fake's EC2 image usage reports ([`UsageReports`]): what other accounts use an image
//! is set by the test ([`FakeCloud::use_elsewhere`]); a report counts it when created, as
//! EC2 does, and stays `pending` until [`FakeCloud::complete_usage_reports`] (or at once
//! with [`FakeUsage::immediate`]), or turns `error` ([`FakeCloud::fail_usage_report`]).

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{FakeCloud, FakeRegion};
use crate::error::{CloudError, CloudResult};
use crate::model::{AccountId, ImageId, Region};
use crate::ports::{UsageEntry, UsageReport, UsageReports};

/// One report the fake made.
#[derive(Debug, Clone)]
pub struct FakeReport {
    pub report: UsageReport,
    pub region: Region,
    pub token: String,
    /// What the report found, handed out once it is `available`.
    pub entries: Vec<UsageEntry>,
}

/// Usage of images by other accounts, and the reports made of it.
#[derive(Debug, Default)]
pub struct FakeUsage {
    /// (region, image, account, resource type, count).
    pub uses: Vec<(Region, ImageId, AccountId, String, u64)>,
    pub reports: Vec<FakeReport>,
    /// Reports are `available` at once instead of `pending`.
    pub immediate: bool,
}

impl FakeCloud {
    /// `account` uses `image` (owned here) in `region` through `count` resources of
    /// `resource_type` (`ec2:Instance`, `ec2:LaunchTemplate`): what a usage report finds.
    pub fn use_elsewhere(
        &self,
        region: &str,
        image: &str,
        account: &str,
        resource_type: &str,
        count: u64,
    ) {
        let account = AccountId::parse(account).unwrap_or_else(|| panic!("account {account}"));
        self.state().usage.uses.push((
            Region::new(region),
            ImageId::new(image),
            account,
            resource_type.to_owned(),
            count,
        ));
    }

    /// Every pending usage report becomes `available`.
    pub fn complete_usage_reports(&self) {
        for r in &mut self.state().usage.reports {
            if r.report.state == "pending" {
                r.report.state = "available".to_owned();
            }
        }
    }

    /// The report turns `error` with `reason`.
    pub fn fail_usage_report(&self, id: &str, reason: &str) {
        for r in &mut self.state().usage.reports {
            if r.report.id == id {
                r.report.state = "error".to_owned();
                r.report.state_reason = Some(reason.to_owned());
            }
        }
    }

    /// The usage reports made so far.
    pub fn usage_reports(&self) -> Vec<FakeReport> {
        self.state().usage.reports.clone()
    }
}

#[async_trait]
impl UsageReports for FakeRegion {
    async fn create_usage_report(
        &self,
        image: &ImageId,
        accounts: &[AccountId],
        token: &str,
    ) -> CloudResult<String> {
        let mut s = self.lock();
        s.call(&self.region, "CreateImageUsageReport", Some(image.as_str()))?;
        let owned = s.images.get(image).is_some_and(|i| i.region == self.region);
        if !owned {
            return Err(CloudError::from_code(
                "CreateImageUsageReport",
                Some(self.region.clone()),
                "InvalidAMIID.NotFound",
                format!("The image id '[{image}]' does not exist"),
            ));
        }
        if let Some(r) = s
            .usage
            .reports
            .iter()
            .find(|r| r.region == self.region && r.token == token)
        {
            return Ok(r.report.id.clone());
        }
        let entries = s
            .usage
            .uses
            .iter()
            .filter(|(r, i, a, _, n)| {
                *r == self.region
                    && i == image
                    && *n > 0
                    && (accounts.is_empty() || accounts.contains(a))
            })
            .map(|(_, _, a, t, n)| UsageEntry {
                account: a.clone(),
                resource_type: t.clone(),
                count: *n,
            })
            .collect();
        let id = s.id("amiur");
        let created = s.now.unwrap_or_else(OffsetDateTime::now_utc);
        let state = if s.usage.immediate {
            "available"
        } else {
            "pending"
        };
        s.usage.reports.push(FakeReport {
            report: UsageReport {
                id: id.clone(),
                image: image.clone(),
                accounts: accounts.to_vec(),
                state: state.to_owned(),
                state_reason: None,
                created: Some(created),
            },
            region: self.region.clone(),
            token: token.to_owned(),
            entries,
        });
        Ok(id)
    }

    async fn usage_reports(&self, image: &ImageId) -> CloudResult<Vec<UsageReport>> {
        let mut s = self.lock();
        s.call(
            &self.region,
            "DescribeImageUsageReports",
            Some(image.as_str()),
        )?;
        Ok(s.usage
            .reports
            .iter()
            .filter(|r| r.region == self.region && &r.report.image == image)
            .map(|r| r.report.clone())
            .collect())
    }

    async fn usage_report_entries(&self, report: &str) -> CloudResult<Vec<UsageEntry>> {
        let mut s = self.lock();
        s.call(
            &self.region,
            "DescribeImageUsageReportEntries",
            Some(report),
        )?;
        Ok(s.usage
            .reports
            .iter()
            .filter(|r| r.region == self.region && r.report.id == report)
            .filter(|r| r.report.state == "available")
            .flat_map(|r| r.entries.clone())
            .collect())
    }
}

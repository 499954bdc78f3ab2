//! [`LaunchTemplates`] on [`AwsEc2`]: the launch templates that follow a lineage
//! (`DescribeLaunchTemplates` filtered on the `ami-lifecycle:track` tag key,
//! `DescribeLaunchTemplateVersions` for the default and latest version,
//! `CreateLaunchTemplateVersion` from the default with only `ImageId` changed,
//! `ModifyLaunchTemplate` for the default), paced like every EC2 call.
//!
//! Versions are read without `ResolveAlias`, so a template whose image is
//! `resolve:ssm:…` is seen as such (it follows the parameter by itself).

use async_trait::async_trait;
use aws_sdk_ec2::types as ec2;

use super::convert::tags_from_ec2;
use super::ec2::{filter, AwsEc2};
use crate::error::CloudResult;
use crate::pacing::Bucket;
use crate::ports::{LaunchTemplates, NewTemplateVersion, TrackedTemplate};
use crate::tags::key;

/// `DescribeLaunchTemplates` `MaxResults`: the model allows 1–200.
const TEMPLATES_PAGE: i32 = 200;

#[async_trait]
impl LaunchTemplates for AwsEc2 {
    async fn tracked_templates(&self) -> CloudResult<Vec<TrackedTemplate>> {
        let mut listed: Vec<ec2::LaunchTemplate> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.pacer.take(Bucket::Describe).await;
            let page = self
                .client
                .describe_launch_templates()
                .filters(filter("tag-key", [key::TRACK]))
                .max_results(TEMPLATES_PAGE)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(self.err("DescribeLaunchTemplates"))?;
            listed.extend(page.launch_templates().iter().cloned());
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        let mut out = Vec::with_capacity(listed.len());
        for t in listed {
            let Some(id) = t.launch_template_id() else {
                continue;
            };
            self.pacer.take(Bucket::Describe).await;
            let versions = self
                .client
                .describe_launch_template_versions()
                .launch_template_id(id)
                .versions("$Default")
                .versions("$Latest")
                .send()
                .await
                .map_err(self.err("DescribeLaunchTemplateVersions"))?;
            let image_of = |n: i64| {
                versions
                    .launch_template_versions()
                    .iter()
                    .find(|v| v.version_number() == Some(n))
            };
            let default_version = t.default_version_number().unwrap_or(1);
            let latest_version = t.latest_version_number().unwrap_or(default_version);
            let default = image_of(default_version);
            let latest = image_of(latest_version);
            let image = |v: Option<&ec2::LaunchTemplateVersion>| {
                v.and_then(|v| v.launch_template_data())
                    .and_then(|d| d.image_id())
                    .map(str::to_owned)
            };
            out.push(TrackedTemplate {
                id: id.to_owned(),
                name: t.launch_template_name().unwrap_or_default().to_owned(),
                tags: tags_from_ec2(t.tags()),
                default_version,
                default_image: image(default),
                latest_version,
                latest_image: image(latest),
                latest_description: latest
                    .and_then(|v| v.version_description())
                    .map(str::to_owned),
            });
        }
        Ok(out)
    }

    async fn create_version(&self, request: &NewTemplateVersion) -> CloudResult<i64> {
        self.pacer.take(Bucket::Mutating).await;
        let answer = self
            .client
            .create_launch_template_version()
            .launch_template_id(&request.template)
            .source_version(request.source_version.to_string())
            .version_description(&request.description)
            .client_token(&request.token)
            .launch_template_data(
                ec2::RequestLaunchTemplateData::builder()
                    .image_id(request.image.as_str())
                    .build(),
            )
            .send()
            .await
            .map_err(self.err("CreateLaunchTemplateVersion"))?;
        Ok(answer
            .launch_template_version()
            .and_then(|v| v.version_number())
            .unwrap_or_default())
    }

    async fn set_default_version(&self, template: &str, version: i64) -> CloudResult<()> {
        self.pacer.take(Bucket::Mutating).await;
        self.client
            .modify_launch_template()
            .launch_template_id(template)
            .default_version(version.to_string())
            .send()
            .await
            .map_err(self.err("ModifyLaunchTemplate"))?;
        Ok(())
    }
}

//! What still uses an image: [`References`] for [`AwsEc2`].
//!
//! On AWS one operation answers it, `DescribeImageReferences`, and the suite asks it
//! explicitly ([`reference_types`]) rather than with `IncludeAllResourceTypes`, whose
//! defaults check only the **10 newest versions** of each launch template: an image
//! pinned by an older version (an Auto Scaling group at zero, a DR template) would look
//! unused and be deleted. Asking for named types also keeps the call within the
//! permissions the cleanup role is given (template.yaml): a resource type AWS adds later
//! is not silently asked for without them.
//!
//! Where the endpoint does not know the operation (older partitions, emulators), the same
//! question is answered by scanning: instances in the same states, every version of every
//! launch template, and the region's SSM parameters ([`super::ssm`]). Image Builder
//! recipes have no fallback (the suite does not link the Image Builder SDK).

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    ImageReferenceOptionName, ImageReferenceResourceType, ResourceTypeOption, ResourceTypeRequest,
};

use super::convert;
use super::ec2::{filter, AwsEc2};
use crate::error::{CloudError, CloudResult, ErrorKind};
use crate::model::{ImageId, ImageReference};
use crate::pacing::Bucket;
use crate::ports::References;

/// `DescribeImageReferences` `ImageId.N`: the model's
/// `DescribeImageReferencesImageIdStringList` takes 1 to 10 ids; more is refused with a
/// validation error that is neither retryable nor "unsupported".
pub const IDS_PER_REFERENCE_CALL: usize = 10;

/// `version-depth` for `ec2:LaunchTemplate`: how many versions, newest first, are
/// checked. AWS accepts 1–10000 and defaults to 10; the suite asks for the most.
pub const LAUNCH_TEMPLATE_VERSION_DEPTH: u32 = 10_000;

/// `state-name` for `ec2:Instance`: every state the API reference lists (its default,
/// written out so a change of default cannot narrow the check). A stopped or just
/// terminated instance still counts: it can be started again, or is still being looked
/// at, and keeping its image one more day costs little.
pub const INSTANCE_STATES: [&str; 6] = [
    "pending",
    "running",
    "shutting-down",
    "terminated",
    "stopping",
    "stopped",
];

/// Values per `Filter` in the fallback's DescribeInstances (EC2 documents no smaller
/// limit; 200 keeps each request small).
const FILTER_VALUES: usize = 200;

/// `DescribeLaunchTemplates` `MaxResults`: the model allows 1–200; the API reference
/// gives `DescribeLaunchTemplateVersions` the same range.
const TEMPLATES_PAGE: i32 = 200;

/// The resource types (and their options) every reference check asks for.
pub fn reference_types() -> Vec<ResourceTypeRequest> {
    let option = |name: ImageReferenceOptionName, values: &[&str]| {
        ResourceTypeOption::builder()
            .option_name(name)
            .set_option_values(Some(values.iter().map(|v| (*v).to_owned()).collect()))
            .build()
    };
    let depth = LAUNCH_TEMPLATE_VERSION_DEPTH.to_string();
    vec![
        ResourceTypeRequest::builder()
            .resource_type(ImageReferenceResourceType::Ec2Instance)
            .resource_type_options(option(
                ImageReferenceOptionName::StateName,
                &INSTANCE_STATES,
            ))
            .build(),
        ResourceTypeRequest::builder()
            .resource_type(ImageReferenceResourceType::Ec2LaunchTemplate)
            .resource_type_options(option(
                ImageReferenceOptionName::VersionDepth,
                &[depth.as_str()],
            ))
            .build(),
        ResourceTypeRequest::builder()
            .resource_type(ImageReferenceResourceType::SsmParameter)
            .build(),
        ResourceTypeRequest::builder()
            .resource_type(ImageReferenceResourceType::ImageBuilderImageRecipe)
            .build(),
        ResourceTypeRequest::builder()
            .resource_type(ImageReferenceResourceType::ImageBuilderContainerRecipe)
            .build(),
    ]
}

/// Whether an error means "this endpoint does not know the operation" (older partitions,
/// emulators) rather than a failure of the operation itself.
fn unsupported(e: &CloudError) -> bool {
    matches!(e.kind, ErrorKind::Invalid | ErrorKind::Other)
        && matches!(
            e.code.as_str(),
            "InvalidAction" | "UnsupportedOperation" | "NotImplemented" | "UnknownOperation"
        )
}

impl AwsEc2 {
    /// DescribeImageReferences for `images`: one call (and its pages) per 10 ids.
    async fn image_references(&self, images: &[ImageId]) -> CloudResult<Vec<ImageReference>> {
        let types = reference_types();
        let mut out = Vec::new();
        for chunk in images.chunks(IDS_PER_REFERENCE_CALL) {
            let mut token: Option<String> = None;
            loop {
                self.pacer.take(Bucket::Describe).await;
                let page = self
                    .client
                    .describe_image_references()
                    .set_image_ids(Some(chunk.iter().map(|i| i.as_str().to_owned()).collect()))
                    .set_resource_types(Some(types.clone()))
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(self.err("DescribeImageReferences"))?;
                out.extend(page.image_references().iter().filter_map(|r| {
                    Some(ImageReference {
                        image_id: ImageId::new(r.image_id()?),
                        resource_type: r
                            .resource_type()
                            .map_or("unknown", |t| t.as_str())
                            .to_owned(),
                        arn: r.arn().unwrap_or_default().to_owned(),
                    })
                }));
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(out)
    }

    /// Where DescribeImageReferences is missing: instances launched from the images (in
    /// [`INSTANCE_STATES`]), every version of every launch template, SSM parameters.
    async fn references_by_scan(&self, images: &[ImageId]) -> CloudResult<Vec<ImageReference>> {
        let mut out = self.instances_using(images).await?;
        out.extend(self.launch_templates_using(images).await?);
        out.extend(self.parameters.parameters_naming(images).await?);
        Ok(out)
    }

    async fn instances_using(&self, images: &[ImageId]) -> CloudResult<Vec<ImageReference>> {
        let partition = convert::partition(&self.region);
        let mut out = Vec::new();
        for chunk in images.chunks(FILTER_VALUES) {
            let filters = vec![
                filter("image-id", chunk.iter().map(|i| i.as_str().to_owned())),
                filter("instance-state-name", INSTANCE_STATES),
            ];
            for (owner, i) in self.describe_instances(filters, &[]).await? {
                let (Some(id), Some(image)) = (i.instance_id(), i.image_id()) else {
                    continue;
                };
                out.push(ImageReference {
                    image_id: ImageId::new(image),
                    resource_type: "ec2:Instance".to_owned(),
                    arn: format!(
                        "arn:{partition}:ec2:{}:{}:instance/{id}",
                        self.region,
                        owner.unwrap_or_default()
                    ),
                });
            }
        }
        Ok(out)
    }

    /// Every version (not only `$Latest`/`$Default`, and past any version depth).
    async fn launch_templates_using(&self, images: &[ImageId]) -> CloudResult<Vec<ImageReference>> {
        let wanted: BTreeSet<&str> = images.iter().map(ImageId::as_str).collect();
        let partition = convert::partition(&self.region);
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for template in self.launch_templates().await? {
            let mut token: Option<String> = None;
            loop {
                self.pacer.take(Bucket::Describe).await;
                let page = self
                    .client
                    .describe_launch_template_versions()
                    .launch_template_id(&template)
                    .max_results(TEMPLATES_PAGE)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(self.err("DescribeLaunchTemplateVersions"))?;
                for v in page.launch_template_versions() {
                    let Some(image) = v.launch_template_data().and_then(|d| d.image_id()) else {
                        continue;
                    };
                    if !wanted.contains(image) || !seen.insert((image.to_owned(), template.clone()))
                    {
                        continue;
                    }
                    // The account is the creator's; the ARN only needs to name the template.
                    let account = v
                        .created_by()
                        .and_then(|arn| arn.split(':').nth(4))
                        .unwrap_or_default();
                    out.push(ImageReference {
                        image_id: ImageId::new(image),
                        resource_type: "ec2:LaunchTemplate".to_owned(),
                        arn: format!(
                            "arn:{partition}:ec2:{}:{account}:launch-template/{template}",
                            self.region
                        ),
                    });
                }
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(out)
    }

    /// Ids of every launch template in the region.
    async fn launch_templates(&self) -> CloudResult<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.pacer.take(Bucket::Describe).await;
            let page = self
                .client
                .describe_launch_templates()
                // Templates other services manage for the account launch instances too.
                .include_managed_resources(true)
                .max_results(TEMPLATES_PAGE)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(self.err("DescribeLaunchTemplates"))?;
            out.extend(
                page.launch_templates()
                    .iter()
                    .filter_map(|t| t.launch_template_id().map(str::to_owned)),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }
}

#[async_trait]
impl References for AwsEc2 {
    async fn references(&self, images: &[ImageId]) -> CloudResult<Vec<ImageReference>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        match self.image_references(images).await {
            Err(e) if unsupported(&e) => {
                tracing::warn!(region = %self.region, code = %e.code, "DescribeImageReferences unsupported; scanning instances, launch templates and SSM parameters");
                self.references_by_scan(images).await
            }
            other => other,
        }
    }
}

//! [`AwsParameters`]: the SSM parameters of one region that hold an image id.
//!
//! Only the reference fallback reads it ([`super::references`]): where
//! `DescribeImageReferences` is not served, an image named by a parameter (a
//! `aws:ec2:image` parameter a launch template resolves with `resolve:ssm:`, or a plain
//! `String` one a deployment pipeline reads) must still count as used. It sits behind
//! [`ImageParameters`] so the fallback is tested without SSM.
//!
//! Two calls: `DescribeParameters` (names and types, `MaxResults` 1–50) and
//! `GetParameters` (values, 1–10 names per call). `SecureString` values are not read
//! (that would need `kms:Decrypt` on every key); `DescribeImageReferences` does not
//! report them either.

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_ssm::types::ParameterType;
use aws_sdk_ssm::Client;

use super::errors::cloud_error;
use crate::error::CloudResult;
use crate::model::{ImageId, ImageReference, Region};

/// `DescribeParameters` `MaxResults`: the model's `MaxResults` shape allows 1–50.
const DESCRIBE_PAGE: i32 = 50;
/// `GetParameters` `Names`: the model's `ParameterNameList` allows 1–10 names.
const NAMES_PER_GET: usize = 10;

/// The resource type `DescribeImageReferences` gives a parameter.
pub const SSM_PARAMETER: &str = "ssm:Parameter";

/// SSM parameters naming images, in domain terms.
#[async_trait]
pub trait ImageParameters: Send + Sync + std::fmt::Debug {
    /// Every readable parameter of the region whose value (or, for a `StringList`, one of
    /// whose items) is one of `images`, as `ssm:Parameter` references.
    async fn parameters_naming(&self, images: &[ImageId]) -> CloudResult<Vec<ImageReference>>;
}

/// The SSM adapter of one region.
#[derive(Debug, Clone)]
pub struct AwsParameters {
    client: Client,
    region: Region,
}

impl AwsParameters {
    pub fn new(client: Client, region: Region) -> Self {
        Self { client, region }
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    pub(super) fn region(&self) -> &Region {
        &self.region
    }

    /// Names of every parameter whose value can be read without a key.
    async fn readable_names(&self) -> CloudResult<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_parameters()
                .max_results(DESCRIBE_PAGE)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| cloud_error("DescribeParameters", Some(&self.region), e))?;
            out.extend(
                page.parameters()
                    .iter()
                    .filter(|p| p.r#type() != Some(&ParameterType::SecureString))
                    .filter_map(|p| p.name().map(str::to_owned)),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }
}

/// Whether a parameter value names one of `wanted`: the whole value, or one item of a
/// comma-separated list.
fn names_image<'a>(value: &'a str, wanted: &BTreeSet<&str>) -> Vec<&'a str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| wanted.contains(v))
        .collect()
}

#[async_trait]
impl ImageParameters for AwsParameters {
    async fn parameters_naming(&self, images: &[ImageId]) -> CloudResult<Vec<ImageReference>> {
        let wanted: BTreeSet<&str> = images.iter().map(ImageId::as_str).collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let names = self.readable_names().await?;
        let mut out = Vec::new();
        for chunk in names.chunks(NAMES_PER_GET) {
            let got = self
                .client
                .get_parameters()
                .set_names(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| cloud_error("GetParameters", Some(&self.region), e))?;
            for p in got.parameters() {
                let (Some(value), Some(name)) = (p.value(), p.name()) else {
                    continue;
                };
                for image in names_image(value, &wanted) {
                    out.push(ImageReference {
                        image_id: ImageId::new(image),
                        resource_type: SSM_PARAMETER.to_owned(),
                        arn: p.arn().map_or_else(|| name.to_owned(), str::to_owned),
                    });
                }
            }
        }
        Ok(out)
    }
}

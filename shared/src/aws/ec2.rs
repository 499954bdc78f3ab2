//! [`AwsEc2`]: the EC2 ports for one region, each call paced to its EC2 throttling bucket.
//!
//! One value per region (EC2 throttles per account per region): it owns that region's
//! client and shares that region's [`Pacer`]. Every method takes a token of its bucket
//! before calling (each retry the SDK then makes takes another: the client's HTTP client
//! is [`super::http::PacedRetries`], built in [`super::AwsCloud::aws_ec2`]), then maps the answer into [`crate::model`] records and any failure
//! through [`cloud_error`]. Listing methods return one page; [`crate::ports`] has the
//! loops. What still uses an image ([`References`](crate::ports::References)) has its own
//! file: [`super::references`].

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ec2::types as ec2;
use aws_sdk_ec2::Client;
use time::OffsetDateTime;

use super::convert::{self, tag_spec, tags_to_ec2};
use super::errors::cloud_error;
use super::ssm::ImageParameters;
use crate::error::{CloudError, CloudResult};
use crate::model::{
    AccountId, Grantee, Image, ImageId, Instance, InstanceHealth, InstanceId, Region, Snapshot,
    SnapshotId, Tags,
};
use crate::pacing::{Bucket, Pacer};
use crate::ports::{
    Deregistered, Ec2, ImageCopy, ImageFactory, ImageQuery, ImageRetirement, Images, Instances,
    NewImage, Page, Sharing, SnapshotLock, SnapshotQuery, Tagging,
};
use crate::tags;

/// EC2's page limit for DescribeInstances/DescribeImages/DescribeSnapshots.
const MAX_PAGE: i32 = 1000;
/// The smallest MaxResults EC2 accepts: DescribeImages 6, DescribeSnapshots 5.
const MIN_IMAGE_PAGE: i32 = 6;
const MIN_SNAPSHOT_PAGE: i32 = 5;

/// The EC2 ports of one region.
#[derive(Debug, Clone)]
pub struct AwsEc2 {
    pub(super) client: Client,
    pub(super) region: Region,
    pub(super) pacer: Arc<Pacer>,
    /// The region's SSM parameters, read only where `DescribeImageReferences` is missing.
    pub(super) parameters: Arc<dyn ImageParameters>,
}

pub(super) fn filter(
    name: &str,
    values: impl IntoIterator<Item = impl Into<String>>,
) -> ec2::Filter {
    ec2::Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

impl AwsEc2 {
    /// `pacer` must be the one pacer of `region` (shared by everything calling EC2 there);
    /// `parameters` that region's SSM parameters.
    pub fn new(
        client: Client,
        region: Region,
        pacer: Arc<Pacer>,
        parameters: Arc<dyn ImageParameters>,
    ) -> Self {
        Self {
            client,
            region,
            pacer,
            parameters,
        }
    }

    pub(super) fn err<E>(
        &self,
        operation: &'static str,
    ) -> impl FnOnce(aws_sdk_ec2::error::SdkError<E>) -> CloudError + '_
    where
        E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        move |e| cloud_error(operation, Some(&self.region), e)
    }

    /// DescribeInstances, all pages, with these filters or ids.
    pub(super) async fn describe_instances(
        &self,
        filters: Vec<ec2::Filter>,
        ids: &[InstanceId],
    ) -> CloudResult<Vec<(Option<String>, ec2::Instance)>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.pacer.take(Bucket::DescribeFiltered).await;
            let mut req = self
                .client
                .describe_instances()
                .set_next_token(token.take());
            if ids.is_empty() {
                req = req.set_filters(Some(filters.clone())).max_results(MAX_PAGE);
            } else {
                // EC2 rejects MaxResults together with InstanceIds.
                req =
                    req.set_instance_ids(Some(ids.iter().map(|i| i.as_str().to_owned()).collect()));
            }
            let page = req.send().await.map_err(self.err("DescribeInstances"))?;
            for r in page.reservations() {
                out.extend(
                    r.instances()
                        .iter()
                        .map(|i| (r.owner_id().map(str::to_owned), i.clone())),
                );
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    fn to_instances(&self, raw: Vec<(Option<String>, ec2::Instance)>) -> Vec<Instance> {
        raw.iter()
            .filter_map(|(_, i)| convert::instance_from_ec2(i, &self.region))
            .collect()
    }
}

#[async_trait]
impl Instances for AwsEc2 {
    async fn scheduled_instances(&self) -> CloudResult<Vec<Instance>> {
        let raw = self
            .describe_instances(vec![filter("tag-key", [tags::key::SCHEDULE])], &[])
            .await?;
        Ok(self.to_instances(raw))
    }

    async fn instances(&self, ids: &[InstanceId]) -> CloudResult<Vec<Instance>> {
        let mut out = Vec::new();
        // An empty id list would describe every instance.
        for chunk in ids.chunks(MAX_PAGE as usize) {
            out.extend(self.to_instances(self.describe_instances(Vec::new(), chunk).await?));
        }
        Ok(out)
    }

    async fn health(&self, ids: &[InstanceId]) -> CloudResult<Vec<InstanceHealth>> {
        let mut out = Vec::new();
        // EC2: at most 100 explicitly named instances per call (and no MaxResults with
        // InstanceIds); IncludeAllInstances, or a rebooting one would simply be missing.
        for chunk in ids.chunks(STATUS_IDS_MAX) {
            self.pacer.take(Bucket::Describe).await;
            let page = self
                .client
                .describe_instance_status()
                .set_instance_ids(Some(chunk.iter().map(|i| i.to_string()).collect()))
                .include_all_instances(true)
                .send()
                .await
                .map_err(self.err("DescribeInstanceStatus"))?;
            out.extend(
                page.instance_statuses()
                    .iter()
                    .filter_map(convert::health_from_ec2),
            );
        }
        Ok(out)
    }
}

/// `DescribeInstanceStatus`: "Maximum 100 explicitly specified instance IDs".
const STATUS_IDS_MAX: usize = 100;

#[async_trait]
impl Images for AwsEc2 {
    async fn images_page(
        &self,
        query: &ImageQuery,
        token: Option<String>,
    ) -> CloudResult<Page<Image>> {
        let mut req = self.client.describe_images().set_next_token(token);
        if query.owned_by_self {
            req = req.owners("self");
        }
        for owner in &query.owners {
            req = req.owners(owner.as_str());
        }
        if query.shared_with_me {
            req = req.executable_users("self");
        }
        let mut filters = Vec::new();
        if let Some((k, v)) = &query.tag {
            filters.push(filter(&format!("tag:{k}"), [v.as_str()]));
        }
        if let Some(k) = &query.tag_key {
            filters.push(filter("tag-key", [k.as_str()]));
        }
        if let Some(state) = query.state {
            filters.push(filter("state", [state.as_str()]));
        }
        if !query.names.is_empty() {
            filters.push(filter("name", query.names.iter().map(String::as_str)));
        }
        if !query.source_instances.is_empty() {
            filters.push(filter(
                "source-instance-id",
                query.source_instances.iter().map(InstanceId::as_str),
            ));
        }
        if !filters.is_empty() {
            req = req.set_filters(Some(filters));
        }
        if query.include_disabled {
            req = req.include_disabled(true);
        }
        if query.ids.is_empty() {
            let size = query.page_size.map_or(MAX_PAGE, |s| {
                i32::try_from(s)
                    .unwrap_or(MAX_PAGE)
                    .clamp(MIN_IMAGE_PAGE, MAX_PAGE)
            });
            req = req.max_results(size);
        } else {
            // EC2 rejects MaxResults together with ImageIds.
            req = req.set_image_ids(Some(
                query.ids.iter().map(|i| i.as_str().to_owned()).collect(),
            ));
        }
        self.pacer.take(Bucket::Describe).await;
        let page = req.send().await.map_err(self.err("DescribeImages"))?;
        Ok(Page {
            items: page
                .images()
                .iter()
                .filter_map(|i| convert::image_from_ec2(i, &self.region))
                .collect(),
            next: page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        })
    }

    async fn snapshots_page(
        &self,
        query: &SnapshotQuery,
        token: Option<String>,
    ) -> CloudResult<Page<Snapshot>> {
        let mut req = self
            .client
            .describe_snapshots()
            .owner_ids("self")
            .set_next_token(token);
        if let Some((k, v)) = &query.tag {
            req = req.filters(filter(&format!("tag:{k}"), [v.as_str()]));
        }
        if query.ids.is_empty() {
            let size = query.page_size.map_or(MAX_PAGE, |s| {
                i32::try_from(s)
                    .unwrap_or(MAX_PAGE)
                    .clamp(MIN_SNAPSHOT_PAGE, MAX_PAGE)
            });
            req = req.max_results(size);
        } else {
            req = req.set_snapshot_ids(Some(
                query.ids.iter().map(|i| i.as_str().to_owned()).collect(),
            ));
        }
        self.pacer.take(Bucket::DescribeFiltered).await;
        let page = req.send().await.map_err(self.err("DescribeSnapshots"))?;
        Ok(Page {
            items: page
                .snapshots()
                .iter()
                .filter_map(|s| convert::snapshot_from_ec2(s, &self.region))
                .collect(),
            next: page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        })
    }
}

#[async_trait]
impl ImageFactory for AwsEc2 {
    async fn create_image(&self, request: &NewImage) -> CloudResult<ImageId> {
        let excluded = request
            .exclude_devices
            .iter()
            .map(|d| {
                ec2::BlockDeviceMapping::builder()
                    .device_name(d.as_str())
                    .no_device("")
                    .build()
            })
            .collect::<Vec<_>>();
        let specs = [
            tag_spec(ec2::ResourceType::Image, &request.image_tags),
            tag_spec(ec2::ResourceType::Snapshot, &request.snapshot_tags),
        ];
        self.pacer.take(Bucket::CreateImage).await;
        let out = self
            .client
            .create_image()
            .instance_id(request.instance.as_str())
            .name(&request.name)
            .description(&request.description)
            .no_reboot(request.no_reboot)
            .set_block_device_mappings((!excluded.is_empty()).then_some(excluded))
            .set_tag_specifications(
                Some(specs.into_iter().flatten().collect::<Vec<_>>()).filter(|s| !s.is_empty()),
            )
            .send()
            .await
            .map_err(self.err("CreateImage"))?;
        out.image_id().map(ImageId::new).ok_or_else(|| {
            CloudError::from_code(
                "CreateImage",
                Some(self.region.clone()),
                "MissingImageId",
                "no image id in the answer",
            )
        })
    }

    async fn copy_image(&self, request: &ImageCopy) -> CloudResult<ImageId> {
        let specs: Vec<_> = [
            tag_spec(ec2::ResourceType::Image, &request.tags),
            tag_spec(ec2::ResourceType::Snapshot, &request.snapshot_tags),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut req = self
            .client
            .copy_image()
            .source_image_id(request.source_image.as_str())
            .source_region(request.source_region.as_str())
            .name(&request.name)
            .description(&request.description)
            .client_token(&request.client_token)
            .copy_image_tags(request.copy_source_tags)
            .set_snapshot_copy_completion_duration_minutes(
                request.completion_minutes.map(i64::from),
            )
            .set_tag_specifications((!specs.is_empty()).then_some(specs));
        if let Some(key) = &request.kms_key {
            req = req.encrypted(true).kms_key_id(key.as_str());
        }
        self.pacer.take(Bucket::CopyImage).await;
        let out = req.send().await.map_err(self.err("CopyImage"))?;
        out.image_id().map(ImageId::new).ok_or_else(|| {
            CloudError::from_code(
                "CopyImage",
                Some(self.region.clone()),
                "MissingImageId",
                "no image id in the answer",
            )
        })
    }
}

#[async_trait]
impl ImageRetirement for AwsEc2 {
    async fn deprecate(&self, image: &ImageId, at: OffsetDateTime) -> CloudResult<()> {
        self.pacer.take(Bucket::Mutating).await;
        self.client
            .enable_image_deprecation()
            .image_id(image.as_str())
            .deprecate_at(convert::to_smithy_time(at))
            .send()
            .await
            .map_err(self.err("EnableImageDeprecation"))?;
        Ok(())
    }

    async fn deregister(
        &self,
        image: &ImageId,
        delete_snapshots: bool,
    ) -> CloudResult<Deregistered> {
        self.pacer.take(Bucket::DeregisterImage).await;
        let mut req = self.client.deregister_image().image_id(image.as_str());
        if delete_snapshots {
            req = req.delete_associated_snapshots(true);
        }
        let out = req.send().await.map_err(self.err("DeregisterImage"))?;
        let mut result = Deregistered::default();
        for r in out.delete_snapshot_results() {
            let Some(id) = r.snapshot_id().map(SnapshotId::new) else {
                continue;
            };
            match r.return_code() {
                Some(ec2::SnapshotReturnCodes::Success) => result.snapshots_deleted.push(id),
                other => result
                    .snapshots_kept
                    .push((id, other.map_or("unknown", |c| c.as_str()).to_owned())),
            }
        }
        Ok(result)
    }

    async fn delete_snapshot(&self, snapshot: &SnapshotId) -> CloudResult<()> {
        self.pacer.take(Bucket::DeleteSnapshot).await;
        self.client
            .delete_snapshot()
            .snapshot_id(snapshot.as_str())
            .send()
            .await
            .map_err(self.err("DeleteSnapshot"))?;
        Ok(())
    }

    async fn disable(&self, image: &ImageId) -> CloudResult<()> {
        self.pacer.take(Bucket::Mutating).await;
        self.client
            .disable_image()
            .image_id(image.as_str())
            .send()
            .await
            .map_err(self.err("DisableImage"))?;
        Ok(())
    }

    async fn enable(&self, image: &ImageId) -> CloudResult<()> {
        self.pacer.take(Bucket::Mutating).await;
        self.client
            .enable_image()
            .image_id(image.as_str())
            .send()
            .await
            .map_err(self.err("EnableImage"))?;
        Ok(())
    }

    async fn cancel_deprecation(&self, image: &ImageId) -> CloudResult<()> {
        self.pacer.take(Bucket::Mutating).await;
        self.client
            .disable_image_deprecation()
            .image_id(image.as_str())
            .send()
            .await
            .map_err(self.err("DisableImageDeprecation"))?;
        Ok(())
    }

    async fn snapshot_locks(&self) -> CloudResult<Vec<SnapshotLock>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            self.pacer.take(Bucket::Describe).await;
            let page = self
                .client
                .describe_locked_snapshots()
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .map_err(self.err("DescribeLockedSnapshots"))?;
            for s in page.snapshots() {
                let (Some(id), Some(state)) = (s.snapshot_id(), s.lock_state()) else {
                    continue;
                };
                if *state == ec2::LockState::Expired {
                    continue;
                }
                out.push(SnapshotLock {
                    snapshot: SnapshotId::new(id),
                    mode: state.as_str().to_owned(),
                    expires: s.lock_expires_on().and_then(convert::from_smithy_time),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }
}

#[async_trait]
impl Sharing for AwsEc2 {
    async fn launch_permissions(&self, image: &ImageId) -> CloudResult<Vec<Grantee>> {
        self.pacer.take(Bucket::Describe).await;
        let out = self
            .client
            .describe_image_attribute()
            .image_id(image.as_str())
            .attribute(ec2::ImageAttributeName::LaunchPermission)
            .send()
            .await
            .map_err(self.err("DescribeImageAttribute"))?;
        Ok(out
            .launch_permissions()
            .iter()
            .filter_map(convert::grantee_from_launch_permission)
            .collect())
    }

    async fn modify_launch_permissions(
        &self,
        image: &ImageId,
        add: &[Grantee],
        remove: &[Grantee],
    ) -> CloudResult<()> {
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let list = |g: &[Grantee]| {
            (!g.is_empty()).then(|| g.iter().map(convert::launch_permission).collect())
        };
        let changes = ec2::LaunchPermissionModifications::builder()
            .set_add(list(add))
            .set_remove(list(remove))
            .build();
        self.pacer.take(Bucket::ModifyImageAttribute).await;
        self.client
            .modify_image_attribute()
            .image_id(image.as_str())
            .launch_permission(changes)
            .send()
            .await
            .map_err(self.err("ModifyImageAttribute"))?;
        Ok(())
    }

    async fn snapshot_permissions(&self, snapshot: &SnapshotId) -> CloudResult<Vec<Grantee>> {
        self.pacer.take(Bucket::Describe).await;
        let out = self
            .client
            .describe_snapshot_attribute()
            .snapshot_id(snapshot.as_str())
            .attribute(ec2::SnapshotAttributeName::CreateVolumePermission)
            .send()
            .await
            .map_err(self.err("DescribeSnapshotAttribute"))?;
        Ok(out
            .create_volume_permissions()
            .iter()
            .filter_map(convert::grantee_from_volume_permission)
            .collect())
    }

    async fn modify_snapshot_permissions(
        &self,
        snapshot: &SnapshotId,
        add: &[AccountId],
        remove: &[AccountId],
    ) -> CloudResult<()> {
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let list = |a: &[AccountId]| {
            (!a.is_empty()).then(|| {
                a.iter()
                    .map(|a| {
                        ec2::CreateVolumePermission::builder()
                            .user_id(a.as_str())
                            .build()
                    })
                    .collect()
            })
        };
        let changes = ec2::CreateVolumePermissionModifications::builder()
            .set_add(list(add))
            .set_remove(list(remove))
            .build();
        self.pacer.take(Bucket::ModifySnapshotAttribute).await;
        self.client
            .modify_snapshot_attribute()
            .snapshot_id(snapshot.as_str())
            .attribute(ec2::SnapshotAttributeName::CreateVolumePermission)
            .create_volume_permission(changes)
            .send()
            .await
            .map_err(self.err("ModifySnapshotAttribute"))?;
        Ok(())
    }

    async fn public_sharing_blocked(&self) -> CloudResult<bool> {
        self.pacer.take(Bucket::Describe).await;
        let out = self
            .client
            .get_image_block_public_access_state()
            .send()
            .await
            .map_err(self.err("GetImageBlockPublicAccessState"))?;
        Ok(out.image_block_public_access_state() == Some("block-new-sharing"))
    }
}

#[async_trait]
impl Tagging for AwsEc2 {
    async fn set_tags(&self, resource: &str, tags: &Tags) -> CloudResult<()> {
        if tags.is_empty() {
            return Ok(());
        }
        self.pacer.take(Bucket::CreateTags).await;
        self.client
            .create_tags()
            .resources(resource)
            .set_tags(Some(tags_to_ec2(tags)))
            .send()
            .await
            .map_err(self.err("CreateTags"))?;
        Ok(())
    }

    async fn remove_tags(&self, resource: &str, keys: &[String]) -> CloudResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.pacer.take(Bucket::Mutating).await;
        self.client
            .delete_tags()
            .resources(resource)
            .set_tags(Some(
                keys.iter()
                    .map(|k| ec2::Tag::builder().key(k).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(self.err("DeleteTags"))?;
        Ok(())
    }
}

impl Ec2 for AwsEc2 {
    fn region(&self) -> &Region {
        &self.region
    }
}

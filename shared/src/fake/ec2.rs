//! The fake's EC2: every EC2 port over [`super::FakeState`].

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{not_found, FakeRegion};
use crate::error::{CloudError, CloudResult};
use crate::model::{
    AccountId, Grantee, Image, ImageDisk, ImageId, ImageReference, ImageState, Instance,
    InstanceHealth, InstanceId, InstanceState, Snapshot, SnapshotId, Tags,
};
use crate::ports::{
    Deregistered, ImageCopy, ImageFactory, ImageQuery, ImageRetirement, Images, Instances,
    NewImage, Page, References, Sharing, SnapshotLock, SnapshotQuery, Tagging,
};
use crate::tags::key;

fn page<T: Clone>(items: Vec<T>, token: Option<String>, size: Option<u32>) -> Page<T> {
    let start: usize = token.and_then(|t| t.parse().ok()).unwrap_or(0);
    let size = size.unwrap_or(1000).max(1) as usize;
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Page {
        items: items.get(start..end).map(<[T]>::to_vec).unwrap_or_default(),
        next,
    }
}

fn image_matches(img: &Image, q: &ImageQuery, account: &str) -> bool {
    if img.state == ImageState::Deregistered
        || (img.state == ImageState::Disabled && !q.include_disabled)
    {
        return false;
    }
    let owner = img.owner.as_ref().map(AccountId::as_str);
    if q.owned_by_self && owner != Some(account) {
        return false;
    }
    if !q.owners.is_empty() && !q.owners.iter().any(|o| Some(o.as_str()) == owner) {
        return false;
    }
    if !q.ids.is_empty() && !q.ids.contains(&img.id) {
        return false;
    }
    if !q.names.is_empty() && !q.names.contains(&img.name) {
        return false;
    }
    if !q.source_instances.is_empty()
        && !img
            .source_instance
            .as_ref()
            .is_some_and(|i| q.source_instances.contains(i))
    {
        return false;
    }
    if let Some((k, v)) = &q.tag {
        if img.tags.get(k) != Some(v) {
            return false;
        }
    }
    if let Some(k) = &q.tag_key {
        if !img.tags.contains_key(k) {
            return false;
        }
    }
    if q.state.is_some_and(|s| s != img.state) {
        return false;
    }
    true
}

#[async_trait]
impl Instances for FakeRegion {
    async fn scheduled_instances(&self) -> CloudResult<Vec<Instance>> {
        let mut s = self.lock();
        s.call(&self.region, "DescribeInstances", None)?;
        Ok(s.instances
            .values()
            .filter(|i| i.region == self.region && i.tags.contains_key(key::SCHEDULE))
            .cloned()
            .collect())
    }

    async fn instances(&self, ids: &[InstanceId]) -> CloudResult<Vec<Instance>> {
        let mut s = self.lock();
        s.call(&self.region, "DescribeInstances", None)?;
        Ok(ids
            .iter()
            .filter_map(|id| s.instances.get(id))
            .filter(|i| i.region == self.region)
            .cloned()
            .collect())
    }

    async fn health(&self, ids: &[InstanceId]) -> CloudResult<Vec<InstanceHealth>> {
        let mut s = self.lock();
        s.call(&self.region, "DescribeInstanceStatus", None)?;
        Ok(ids
            .iter()
            .filter_map(|id| s.instances.get(id))
            .filter(|i| i.region == self.region)
            .map(|i| {
                let impaired = s.impaired.contains(&i.id);
                let running = i.state == InstanceState::Running;
                let check = if !running {
                    "not-applicable"
                } else if impaired {
                    "impaired"
                } else {
                    "ok"
                };
                InstanceHealth {
                    id: i.id.clone(),
                    state: i.state,
                    healthy: running && !impaired,
                    summary: format!("{}, system ok, instance {check}", i.state.as_str()),
                }
            })
            .collect())
    }
}

#[async_trait]
impl Images for FakeRegion {
    async fn images_page(
        &self,
        query: &ImageQuery,
        token: Option<String>,
    ) -> CloudResult<Page<Image>> {
        let mut s = self.lock();
        s.call(&self.region, "DescribeImages", None)?;
        let account = s.account.clone();
        let items: Vec<Image> = s
            .images
            .values()
            .filter(|i| i.region == self.region && image_matches(i, query, &account))
            .filter(|i| {
                !query.shared_with_me
                    || (i.owner.as_ref().map(AccountId::as_str) != Some(account.as_str())
                        && s.launch_permissions.get(&i.id).is_some_and(|g| {
                            AccountId::parse(&account)
                                .is_some_and(|a| g.contains(&Grantee::Account(a)))
                        }))
            })
            .cloned()
            .collect();
        Ok(page(items, token, query.page_size))
    }

    async fn snapshots_page(
        &self,
        query: &SnapshotQuery,
        token: Option<String>,
    ) -> CloudResult<Page<Snapshot>> {
        let mut s = self.lock();
        s.call(&self.region, "DescribeSnapshots", None)?;
        let items: Vec<Snapshot> = s
            .snapshots
            .values()
            .filter(|snap| snap.region == self.region)
            .filter(|snap| query.ids.is_empty() || query.ids.contains(&snap.id))
            .filter(|snap| {
                query
                    .tag
                    .as_ref()
                    .is_none_or(|(k, v)| snap.tags.get(k) == Some(v))
            })
            .cloned()
            .collect();
        Ok(page(items, token, query.page_size))
    }
}

#[async_trait]
impl ImageFactory for FakeRegion {
    async fn create_image(&self, request: &NewImage) -> CloudResult<ImageId> {
        let mut s = self.lock();
        s.timeline.push(format!(
            "CreateImage {} no-reboot={}",
            request.instance, request.no_reboot
        ));
        s.call(&self.region, "CreateImage", Some(request.instance.as_str()))?;
        let instance = s
            .instances
            .get(&request.instance)
            .filter(|i| i.region == self.region)
            .cloned()
            .ok_or_else(|| {
                not_found(
                    "CreateImage",
                    &self.region,
                    "InvalidInstanceID.NotFound",
                    request.instance.as_str(),
                )
            })?;
        if s.images.values().any(|i| {
            i.region == self.region && i.name == request.name && i.state != ImageState::Deregistered
        }) {
            return Err(CloudError::from_code(
                "CreateImage",
                Some(self.region.clone()),
                "InvalidAMIName.Duplicate",
                format!("AMI name {} is already in use", request.name),
            ));
        }
        let now = s.now();
        let id = ImageId::new(s.id("ami"));
        let mut disks = Vec::new();
        for vol in instance
            .volumes
            .iter()
            .filter(|v| !request.exclude_devices.contains(&v.device))
        {
            let (size, encrypted, kms) = s
                .volumes
                .get(&vol.volume_id)
                .cloned()
                .unwrap_or((8, false, None));
            let snap = SnapshotId::new(s.id("snap"));
            s.snapshots.insert(
                snap.clone(),
                Snapshot {
                    id: snap.clone(),
                    region: self.region.clone(),
                    tags: request.snapshot_tags.clone(),
                    size_gib: size,
                    encrypted,
                    kms_key: kms.clone(),
                    started: now,
                    full_size_bytes: None,
                },
            );
            disks.push(ImageDisk {
                device: vol.device.clone(),
                snapshot_id: snap,
                size_gib: size,
                encrypted,
                kms_key: kms,
            });
        }
        if !request.no_reboot && instance.state == InstanceState::Running {
            s.reboots.push((instance.id.clone(), id.clone()));
        }
        let owner = AccountId::parse(&s.account);
        s.images.insert(
            id.clone(),
            Image {
                id: id.clone(),
                region: self.region.clone(),
                name: request.name.clone(),
                state: ImageState::Pending,
                owner,
                created: now,
                tags: request.image_tags.clone(),
                disks,
                public: false,
                deprecation_time: None,
                last_launched: None,
                deregistration_protected: false,
                source: None,
                billing_products: Vec::new(),
                source_instance: Some(instance.id.clone()),
            },
        );
        Ok(id)
    }

    async fn copy_image(&self, request: &ImageCopy) -> CloudResult<ImageId> {
        let mut s = self.lock();
        s.call(
            &self.region,
            "CopyImage",
            Some(request.source_image.as_str()),
        )?;
        if let Some(existing) = s
            .copy_tokens
            .get(&(self.region.clone(), request.client_token.clone()))
        {
            return Ok(existing.clone());
        }
        let source = s
            .images
            .get(&request.source_image)
            .filter(|i| i.region == request.source_region && i.state == ImageState::Available)
            .cloned()
            .ok_or_else(|| {
                not_found(
                    "CopyImage",
                    &self.region,
                    "InvalidAMIID.NotFound",
                    request.source_image.as_str(),
                )
            })?;
        if let Some(cap) = s.copy_cap {
            let in_flight = s
                .images
                .values()
                .filter(|i| {
                    i.region == self.region && i.state == ImageState::Pending && i.source.is_some()
                })
                .count();
            if in_flight >= cap {
                return Err(CloudError::from_code(
                    "CopyImage",
                    Some(self.region.clone()),
                    "ResourceLimitExceeded",
                    "too many concurrent copies",
                ));
            }
        }
        let now = s.now();
        let id = ImageId::new(s.id("ami"));
        let mut tags: Tags = if request.copy_source_tags {
            source.tags.clone()
        } else {
            Tags::new()
        };
        tags.extend(request.tags.clone());
        let mut disks = Vec::new();
        for d in &source.disks {
            let snap = SnapshotId::new(s.id("snap"));
            let kms = request.kms_key.clone().or_else(|| d.kms_key.clone());
            let encrypted = request.kms_key.is_some() || d.encrypted;
            s.snapshots.insert(
                snap.clone(),
                Snapshot {
                    id: snap.clone(),
                    region: self.region.clone(),
                    tags: request.snapshot_tags.clone(),
                    size_gib: d.size_gib,
                    encrypted,
                    kms_key: kms.clone(),
                    started: now,
                    full_size_bytes: None,
                },
            );
            disks.push(ImageDisk {
                device: d.device.clone(),
                snapshot_id: snap,
                size_gib: d.size_gib,
                encrypted,
                kms_key: kms,
            });
        }
        let owner = AccountId::parse(&s.account);
        s.images.insert(
            id.clone(),
            Image {
                id: id.clone(),
                region: self.region.clone(),
                name: request.name.clone(),
                state: ImageState::Pending,
                owner,
                created: now,
                tags,
                disks,
                public: false,
                deprecation_time: None,
                last_launched: None,
                deregistration_protected: false,
                source: Some((source.id.clone(), request.source_region.clone())),
                billing_products: Vec::new(),
                source_instance: None,
            },
        );
        s.copy_tokens.insert(
            (self.region.clone(), request.client_token.clone()),
            id.clone(),
        );
        Ok(id)
    }
}

#[async_trait]
impl ImageRetirement for FakeRegion {
    async fn deprecate(&self, image: &ImageId, at: OffsetDateTime) -> CloudResult<()> {
        let mut s = self.lock();
        s.call(&self.region, "EnableImageDeprecation", Some(image.as_str()))?;
        let img = s
            .images
            .get_mut(image)
            .filter(|i| i.region == self.region)
            .ok_or_else(|| {
                not_found(
                    "EnableImageDeprecation",
                    &self.region,
                    "InvalidAMIID.NotFound",
                    image.as_str(),
                )
            })?;
        img.deprecation_time = Some(at);
        Ok(())
    }

    async fn deregister(
        &self,
        image: &ImageId,
        delete_snapshots: bool,
    ) -> CloudResult<Deregistered> {
        let mut s = self.lock();
        s.call(&self.region, "DeregisterImage", Some(image.as_str()))?;
        let img = s
            .images
            .get(image)
            .filter(|i| i.region == self.region && i.state != ImageState::Deregistered)
            .cloned()
            .ok_or_else(|| {
                not_found(
                    "DeregisterImage",
                    &self.region,
                    "InvalidAMIID.NotFound",
                    image.as_str(),
                )
            })?;
        if img.deregistration_protected {
            return Err(CloudError::from_code(
                "DeregisterImage",
                Some(self.region.clone()),
                "OperationNotPermitted",
                "the image has deregistration protection",
            ));
        }
        if let Some(i) = s.images.get_mut(image) {
            i.state = ImageState::Deregistered;
        }
        let mut out = Deregistered::default();
        if delete_snapshots {
            for snap in img.snapshot_ids() {
                if s.images_using(snap) > 0 || s.locked(snap) {
                    out.snapshots_kept
                        .push((snap.clone(), "client-error".to_owned()));
                } else {
                    s.snapshots.remove(snap);
                    out.snapshots_deleted.push(snap.clone());
                }
            }
        }
        Ok(out)
    }

    async fn delete_snapshot(&self, snapshot: &SnapshotId) -> CloudResult<()> {
        let mut s = self.lock();
        s.call(&self.region, "DeleteSnapshot", Some(snapshot.as_str()))?;
        if s.images_using(snapshot) > 0 {
            return Err(CloudError::from_code(
                "DeleteSnapshot",
                Some(self.region.clone()),
                "InvalidSnapshot.InUse",
                format!("{snapshot} is in use by an image"),
            ));
        }
        if s.locked(snapshot) {
            return Err(CloudError::from_code(
                "DeleteSnapshot",
                Some(self.region.clone()),
                "SnapshotLocked",
                format!("{snapshot} is locked"),
            ));
        }
        s.snapshots.remove(snapshot).map(|_| ()).ok_or_else(|| {
            not_found(
                "DeleteSnapshot",
                &self.region,
                "InvalidSnapshot.NotFound",
                snapshot.as_str(),
            )
        })
    }

    async fn disable(&self, image: &ImageId) -> CloudResult<()> {
        let mut s = self.lock();
        s.call(&self.region, "DisableImage", Some(image.as_str()))?;
        let img = self.own_live_image(&mut s, "DisableImage", image)?;
        img.state = ImageState::Disabled;
        img.public = false;
        s.launch_permissions.remove(image);
        Ok(())
    }

    async fn enable(&self, image: &ImageId) -> CloudResult<()> {
        let mut s = self.lock();
        s.call(&self.region, "EnableImage", Some(image.as_str()))?;
        let img = self.own_live_image(&mut s, "EnableImage", image)?;
        img.state = ImageState::Available;
        Ok(())
    }

    async fn cancel_deprecation(&self, image: &ImageId) -> CloudResult<()> {
        let mut s = self.lock();
        s.call(
            &self.region,
            "DisableImageDeprecation",
            Some(image.as_str()),
        )?;
        let img = self.own_live_image(&mut s, "DisableImageDeprecation", image)?;
        img.deprecation_time = None;
        Ok(())
    }

    async fn snapshot_locks(&self) -> CloudResult<Vec<SnapshotLock>> {
        let mut s = self.lock();
        s.call(&self.region, "DescribeLockedSnapshots", None)?;
        let now = s.now();
        Ok(s.snapshot_locks
            .iter()
            .filter(|(id, (_, until))| {
                *until > now
                    && s.snapshots
                        .get(*id)
                        .is_some_and(|x| x.region == self.region)
            })
            .map(|(id, (mode, until))| SnapshotLock {
                snapshot: id.clone(),
                mode: mode.clone(),
                expires: Some(*until),
            })
            .collect())
    }
}

impl FakeRegion {
    /// This region's image `id`, not deregistered, or `InvalidAMIID.NotFound`.
    fn own_live_image<'s>(
        &self,
        s: &'s mut super::FakeState,
        operation: &'static str,
        id: &ImageId,
    ) -> CloudResult<&'s mut Image> {
        s.images
            .get_mut(id)
            .filter(|i| i.region == self.region && i.state != ImageState::Deregistered)
            .ok_or_else(|| {
                not_found(
                    operation,
                    &self.region,
                    "InvalidAMIID.NotFound",
                    id.as_str(),
                )
            })
    }
}

#[async_trait]
impl References for FakeRegion {
    async fn references(&self, images: &[ImageId]) -> CloudResult<Vec<ImageReference>> {
        let mut s = self.lock();
        s.call(&self.region, "DescribeImageReferences", None)?;
        let mut out: Vec<ImageReference> = s
            .instances
            .values()
            .filter(|i| i.region == self.region && i.state != InstanceState::Terminated)
            .filter_map(|i| {
                let image = i.image_id.as_ref().filter(|id| images.contains(id))?;
                Some(ImageReference {
                    image_id: image.clone(),
                    resource_type: "ec2:Instance".to_owned(),
                    arn: format!(
                        "arn:aws:ec2:{}:{}:instance/{}",
                        self.region, s.account, i.id
                    ),
                })
            })
            .collect();
        // DescribeImageReferences reports an aws:ec2:image parameter by its current value.
        out.extend(
            s.parameters
                .iter()
                .filter(|((r, _), p)| *r == self.region && p.data_type == "aws:ec2:image")
                .filter_map(|((_, name), p)| {
                    let image = ImageId::new(&p.versions.last()?.value);
                    images.contains(&image).then(|| ImageReference {
                        image_id: image,
                        resource_type: "ssm:Parameter".to_owned(),
                        arn: format!("arn:aws:ssm:{}:{}:parameter{name}", self.region, s.account),
                    })
                }),
        );
        out.extend(
            s.extra_references
                .iter()
                .filter(|(r, _, _, img)| *r == self.region && images.contains(img))
                .map(|(_, kind, arn, img)| ImageReference {
                    image_id: img.clone(),
                    resource_type: kind.clone(),
                    arn: arn.clone(),
                }),
        );
        Ok(out)
    }
}

#[async_trait]
impl Sharing for FakeRegion {
    async fn launch_permissions(&self, image: &ImageId) -> CloudResult<Vec<Grantee>> {
        let mut s = self.lock();
        s.call(&self.region, "DescribeImageAttribute", Some(image.as_str()))?;
        Ok(s.launch_permissions
            .get(image)
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn modify_launch_permissions(
        &self,
        image: &ImageId,
        add: &[Grantee],
        remove: &[Grantee],
    ) -> CloudResult<()> {
        let mut s = self.lock();
        s.call(&self.region, "ModifyImageAttribute", Some(image.as_str()))?;
        if s.images.get(image).is_none_or(|i| i.region != self.region) {
            return Err(not_found(
                "ModifyImageAttribute",
                &self.region,
                "InvalidAMIID.NotFound",
                image.as_str(),
            ));
        }
        let perms = s.launch_permissions.entry(image.clone()).or_default();
        for g in remove {
            perms.remove(g);
        }
        perms.extend(add.iter().cloned());
        let public = perms.contains(&Grantee::Public);
        if let Some(i) = s.images.get_mut(image) {
            i.public = public;
        }
        Ok(())
    }

    async fn snapshot_permissions(&self, snapshot: &SnapshotId) -> CloudResult<Vec<Grantee>> {
        let mut s = self.lock();
        s.call(
            &self.region,
            "DescribeSnapshotAttribute",
            Some(snapshot.as_str()),
        )?;
        Ok(s.snapshot_permissions
            .get(snapshot)
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn modify_snapshot_permissions(
        &self,
        snapshot: &SnapshotId,
        add: &[AccountId],
        remove: &[AccountId],
    ) -> CloudResult<()> {
        let mut s = self.lock();
        s.call(
            &self.region,
            "ModifySnapshotAttribute",
            Some(snapshot.as_str()),
        )?;
        if !s.snapshots.contains_key(snapshot) {
            return Err(not_found(
                "ModifySnapshotAttribute",
                &self.region,
                "InvalidSnapshot.NotFound",
                snapshot.as_str(),
            ));
        }
        let perms = s.snapshot_permissions.entry(snapshot.clone()).or_default();
        for a in remove {
            perms.remove(&Grantee::Account(a.clone()));
        }
        perms.extend(add.iter().cloned().map(Grantee::Account));
        Ok(())
    }

    async fn public_sharing_blocked(&self) -> CloudResult<bool> {
        let mut s = self.lock();
        s.call(&self.region, "GetImageBlockPublicAccessState", None)?;
        Ok(s.public_blocked)
    }
}

#[async_trait]
impl Tagging for FakeRegion {
    async fn set_tags(&self, resource: &str, tags: &Tags) -> CloudResult<()> {
        let mut s = self.lock();
        s.call(&self.region, "CreateTags", Some(resource))?;
        if let Some(img) = s.images.get_mut(&ImageId::new(resource)) {
            img.tags.extend(tags.clone());
        } else if let Some(snap) = s.snapshots.get_mut(&SnapshotId::new(resource)) {
            snap.tags.extend(tags.clone());
        } else {
            return Err(not_found("CreateTags", &self.region, "InvalidID", resource));
        }
        Ok(())
    }

    async fn remove_tags(&self, resource: &str, keys: &[String]) -> CloudResult<()> {
        let mut s = self.lock();
        s.call(&self.region, "DeleteTags", Some(resource))?;
        if let Some(img) = s.images.get_mut(&ImageId::new(resource)) {
            keys.iter().for_each(|k| {
                img.tags.remove(k);
            });
        } else if let Some(snap) = s.snapshots.get_mut(&SnapshotId::new(resource)) {
            keys.iter().for_each(|k| {
                snap.tags.remove(k);
            });
        }
        Ok(())
    }
}

//! Resources a test or the demo seeds on the emulator, and what it reads back: instances
//! (launched from a base image), KMS keys, image tags, launch templates that reference an
//! image, launch permissions.

use anyhow::Context as _;
use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice, ResourceType, Tag, TagSpecification};

use crate::client::EmulatorClient;

impl EmulatorClient {
    /// A running instance with an 8 GiB root volume and 20 GiB data volumes on `data_devices`.
    pub async fn launch_instance(
        &self,
        region: &str,
        tags: &[(&str, &str)],
        data_devices: &[&str],
    ) -> anyhow::Result<String> {
        self.launch_instance_encrypted(region, tags, data_devices, None)
            .await
    }

    /// As [`EmulatorClient::launch_instance`], with every volume encrypted with `kms_key`.
    pub async fn launch_instance_encrypted(
        &self,
        region: &str,
        tags: &[(&str, &str)],
        data_devices: &[&str],
        kms_key: Option<&str>,
    ) -> anyhow::Result<String> {
        let ec2 = self.ec2(region);
        let base = self.base_image(region).await?;
        let mut mappings = Vec::new();
        for (device, size) in
            std::iter::once(("/dev/xvda", 8)).chain(data_devices.iter().map(|d| (*d, 20)))
        {
            let mut ebs = EbsBlockDevice::builder()
                .volume_size(size)
                .delete_on_termination(true);
            if let Some(key) = kms_key {
                ebs = ebs.encrypted(true).kms_key_id(key);
            }
            mappings.push(
                BlockDeviceMapping::builder()
                    .device_name(device)
                    .ebs(ebs.build())
                    .build(),
            );
        }
        let mut tag_spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (k, v) in tags {
            tag_spec = tag_spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        // EC2 rejects a tag specification without tags.
        let tag_specs = (!tags.is_empty()).then(|| vec![tag_spec.build()]);
        let out = ec2
            .run_instances()
            .image_id(base)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .set_block_device_mappings(Some(mappings))
            .set_tag_specifications(tag_specs)
            .send()
            .await
            .context("RunInstances")?;
        out.instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_owned)
            .context("RunInstances returned no instance")
    }

    /// An unmanaged base image to launch instances from (registered once per region).
    pub async fn base_image(&self, region: &str) -> anyhow::Result<String> {
        let ec2 = self.ec2(region);
        let name = "base-al2023";
        let found = ec2
            .describe_images()
            .owners("self")
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("name")
                    .values(name)
                    .build(),
            )
            .send()
            .await
            .context("DescribeImages")?;
        if let Some(id) = found.images().first().and_then(|i| i.image_id()) {
            return Ok(id.to_owned());
        }
        let out = ec2
            .register_image()
            .name(name)
            .root_device_name("/dev/xvda")
            .architecture(aws_sdk_ec2::types::ArchitectureValues::X8664)
            .send()
            .await
            .context("RegisterImage")?;
        out.image_id()
            .map(str::to_owned)
            .context("RegisterImage returned no id")
    }

    /// A customer managed KMS key in `region`, with `alias` if given; returns its ARN.
    pub async fn create_key(&self, region: &str, alias: Option<&str>) -> anyhow::Result<String> {
        let kms = self.kms(region);
        let key = kms
            .create_key()
            .description("ami-lifecycle test key")
            .send()
            .await
            .context("CreateKey")?;
        let meta = key.key_metadata().context("no key metadata")?;
        let arn = meta.arn().context("no key ARN")?.to_owned();
        if let Some(alias) = alias {
            kms.create_alias()
                .alias_name(alias)
                .target_key_id(meta.key_id())
                .send()
                .await
                .context("CreateAlias")?;
        }
        Ok(arn)
    }

    /// Tags an image (the emulator emits a `Tag Change on Resource` event).
    pub async fn tag_image(
        &self,
        region: &str,
        image: &str,
        key: &str,
        value: &str,
    ) -> anyhow::Result<()> {
        self.ec2(region)
            .create_tags()
            .resources(image)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await
            .context("CreateTags")?;
        Ok(())
    }

    /// Removes a tag from an image (the emulator emits a `Tag Change on Resource` event).
    pub async fn untag_image(&self, region: &str, image: &str, key: &str) -> anyhow::Result<()> {
        self.ec2(region)
            .delete_tags()
            .resources(image)
            .tags(Tag::builder().key(key).build())
            .send()
            .await
            .context("DeleteTags")?;
        Ok(())
    }

    /// A launch template whose default version uses `default_image` and whose second,
    /// non-default version uses `image`: a reference cleanup must honour.
    pub async fn launch_template_referencing(
        &self,
        region: &str,
        name: &str,
        default_image: &str,
        image: &str,
    ) -> anyhow::Result<String> {
        use aws_sdk_ec2::types::RequestLaunchTemplateData;
        let ec2 = self.ec2(region);
        let lt = ec2
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .image_id(default_image)
                    .build(),
            )
            .send()
            .await
            .context("CreateLaunchTemplate")?;
        let id = lt
            .launch_template()
            .and_then(|t| t.launch_template_id())
            .context("no launch template id")?
            .to_owned();
        ec2.create_launch_template_version()
            .launch_template_id(&id)
            .launch_template_data(RequestLaunchTemplateData::builder().image_id(image).build())
            .send()
            .await
            .context("CreateLaunchTemplateVersion")?;
        Ok(id)
    }

    /// A launch template whose only version launches whatever `parameter` holds at launch
    /// time (`resolve:ssm:<parameter>`); returns its id.
    pub async fn launch_template_resolving(
        &self,
        region: &str,
        name: &str,
        parameter: &str,
    ) -> anyhow::Result<String> {
        use aws_sdk_ec2::types::RequestLaunchTemplateData;
        let lt = self
            .ec2(region)
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .image_id(format!("resolve:ssm:{parameter}"))
                    .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                    .build(),
            )
            .send()
            .await
            .context("CreateLaunchTemplate")?;
        lt.launch_template()
            .and_then(|t| t.launch_template_id())
            .map(str::to_owned)
            .context("no launch template id")
    }

    /// What a launch template's default version launches now: its `ImageId` as stored and
    /// as resolved (`ResolveAlias`), e.g. `resolve:ssm:/…/latest` → `ami-…`.
    pub async fn launch_template_image(
        &self,
        region: &str,
        template: &str,
    ) -> anyhow::Result<(String, String)> {
        let ec2 = self.ec2(region);
        let image = |resolve: bool| {
            let ec2 = ec2.clone();
            async move {
                let out = ec2
                    .describe_launch_template_versions()
                    .launch_template_id(template)
                    .versions("$Default")
                    .resolve_alias(resolve)
                    .send()
                    .await
                    .context("DescribeLaunchTemplateVersions")?;
                out.launch_template_versions()
                    .first()
                    .and_then(|v| v.launch_template_data())
                    .and_then(|d| d.image_id())
                    .map(str::to_owned)
                    .with_context(|| format!("launch template {template} has no image"))
            }
        };
        Ok((image(false).await?, image(true).await?))
    }

    /// Accounts with launch permission on an image.
    pub async fn launch_permission_accounts(
        &self,
        region: &str,
        image: &str,
    ) -> anyhow::Result<Vec<String>> {
        let out = self
            .ec2(region)
            .describe_image_attribute()
            .image_id(image)
            .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
            .send()
            .await
            .context("DescribeImageAttribute")?;
        Ok(out
            .launch_permissions()
            .iter()
            .filter_map(|p| p.user_id().map(str::to_owned))
            .collect())
    }
}

/// The tags of an image a test makes by hand "as the suite would", sealed: what
/// create-image and replicate write at creation (see `ami_core::seal::sealed_tags`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedTags {
    /// For `TagSpecifications` `ResourceType=image`.
    pub image: Vec<(String, String)>,
    /// For `TagSpecifications` `ResourceType=snapshot`.
    pub snapshot: Vec<(String, String)>,
}

impl EmulatorClient {
    /// Seals `tags` for an image named `name` in `region` of the default account
    /// ([`crate::ACCOUNT`]), with the seal key of `deployment` in `home` (the key
    /// [`EmulatorClient::context`] gives the functions), as the suite does at creation.
    /// Tags without `managed-by` are returned unchanged.
    pub async fn sealed_tags(
        &self,
        home: &str,
        deployment: &str,
        region: &str,
        name: &str,
        tags: &[(String, String)],
    ) -> anyhow::Result<SealedTags> {
        self.sealed_tags_in(crate::ACCOUNT, home, deployment, region, name, tags)
            .await
    }

    /// [`EmulatorClient::sealed_tags`] for an image owned by `account` (the seal names
    /// the owning account).
    pub async fn sealed_tags_in(
        &self,
        account: &str,
        home: &str,
        deployment: &str,
        region: &str,
        name: &str,
        tags: &[(String, String)],
    ) -> anyhow::Result<SealedTags> {
        let owner = ami_core::model::AccountId::parse(account)
            .ok_or_else(|| anyhow::anyhow!("{account:?} is not a 12-digit account id"))?;
        let map: ami_core::model::Tags = tags.iter().cloned().collect();
        if map.get(ami_core::tags::key::MANAGED_BY).map(String::as_str) != Some(deployment) {
            return Ok(SealedTags {
                image: tags.to_vec(),
                snapshot: tags.to_vec(),
            });
        }
        let key = self.seal_key(home, deployment)?;
        let seals = ami_core::aws::AwsSeals::new(
            self.kms(home),
            ami_core::model::Region::new(home),
            Some(key),
        );
        let sealer = ami_core::seal::Sealer::new(std::sync::Arc::new(seals));
        let (image, snapshot) = ami_core::seal::sealed_tags(
            &sealer,
            deployment,
            &owner,
            &ami_core::model::Region::new(region),
            name,
            &map,
        )
        .await
        .map_err(|e| anyhow::anyhow!("sealing {name}: {e}"))?;
        Ok(SealedTags {
            image: image.into_iter().collect(),
            snapshot: snapshot.into_iter().collect(),
        })
    }

    /// `TagSpecifications` for an image and its snapshots from [`SealedTags`].
    pub fn tag_specifications(sealed: &SealedTags) -> Vec<TagSpecification> {
        [
            (ResourceType::Image, &sealed.image),
            (ResourceType::Snapshot, &sealed.snapshot),
        ]
        .into_iter()
        .map(|(rt, tags)| {
            TagSpecification::builder()
                .resource_type(rt)
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| Tag::builder().key(k).value(v).build())
                        .collect(),
                ))
                .build()
        })
        .collect()
    }
}

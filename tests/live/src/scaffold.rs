//! The scaffolding the suite does not make itself, through the AWS SDK directly:
//! [`Clients`] (EC2 in both regions, KMS in the replica region, EventBridge at home, STS),
//! the test instance, the KMS key, the event bus, the launch template, a person's tag,
//! and [`wait_for`], the poll every step waits with (it gives up when [`Stop`] is set).
//!
//! Every create call tags at creation (`TagSpecifications`, `Tags`) with
//! [`RUN_TAG`]`=<run id>`, so nothing exists untagged even for a moment and teardown finds
//! it by tag.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use aws_config::SdkConfig;
use aws_sdk_ec2::types::{
    Filter, HttpTokensState, ImageAttributeName, ImageState, InstanceMetadataOptionsRequest,
    InstanceStateName, InstanceType, LocationType, RequestLaunchTemplateData, ResourceType, Tag,
    TagSpecification,
};

use crate::plan::{amazon_linux_parameter, INSTANCE_TYPES, LAUNCH_TEMPLATE_VERSIONS};
use crate::settings::{Settings, RUN_TAG};

/// How often a wait polls AWS.
const POLL: Duration = Duration::from_secs(15);

/// Set by Ctrl-C: waits give up at their next poll so teardown can start.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The SDK clients of a run.
#[derive(Debug, Clone)]
pub struct Clients {
    pub home_ec2: aws_sdk_ec2::Client,
    pub replica_ec2: aws_sdk_ec2::Client,
    pub replica_kms: aws_sdk_kms::Client,
    pub home_events: aws_sdk_eventbridge::Client,
    pub sts: aws_sdk_sts::Client,
}

/// `sdk` in `region` (credentials, retries and endpoint unchanged).
pub fn in_region(sdk: &SdkConfig, region: &str) -> SdkConfig {
    sdk.to_builder()
        .region(aws_types::region::Region::new(region.to_owned()))
        .build()
}

impl Clients {
    pub fn new(sdk: &SdkConfig, s: &Settings) -> Self {
        let home = in_region(sdk, &s.home);
        let replica = in_region(sdk, &s.replica);
        Self {
            home_ec2: aws_sdk_ec2::Client::new(&home),
            replica_ec2: aws_sdk_ec2::Client::new(&replica),
            replica_kms: aws_sdk_kms::Client::new(&replica),
            home_events: aws_sdk_eventbridge::Client::new(&home),
            sts: aws_sdk_sts::Client::new(&home),
        }
    }

    pub fn ec2(&self, s: &Settings, region: &str) -> &aws_sdk_ec2::Client {
        if region == s.replica {
            &self.replica_ec2
        } else {
            &self.home_ec2
        }
    }
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

fn tagged(resource: ResourceType, tags: &[(&str, &str)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
        .build()
}

/// The account the credentials belong to (STS GetCallerIdentity: the one call made
/// before the plan is confirmed; it creates nothing).
pub async fn caller_account(c: &Clients) -> anyhow::Result<String> {
    let who = c
        .sts
        .get_caller_identity()
        .send()
        .await
        .context("STS GetCallerIdentity (are the credentials valid?)")?;
    who.account()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("GetCallerIdentity returned no account"))
}

/// The customer managed key replicas are encrypted with; returns its ARN.
pub async fn create_key(c: &Clients, s: &Settings) -> anyhow::Result<String> {
    let out = c
        .replica_kms
        .create_key()
        .description(format!("ami-lifecycle live test {} (replica key)", s.run))
        .tags(
            aws_sdk_kms::types::Tag::builder()
                .tag_key(RUN_TAG)
                .tag_value(s.run.as_str())
                .build()?,
        )
        .send()
        .await
        .context("KMS CreateKey")?;
    out.key_metadata()
        .map(|m| m.arn().unwrap_or(m.key_id()).to_owned())
        .ok_or_else(|| anyhow!("CreateKey returned no key"))
}

/// The bus the run's reports go to (named after the run).
pub async fn create_bus(c: &Clients, s: &Settings) -> anyhow::Result<()> {
    c.home_events
        .create_event_bus()
        .name(s.run.as_str())
        .tags(
            aws_sdk_eventbridge::types::Tag::builder()
                .key(RUN_TAG)
                .value(s.run.as_str())
                .build()?,
        )
        .send()
        .await
        .context("EventBridge CreateEventBus")?;
    Ok(())
}

/// t4g.nano (arm64) where the home region offers it, else t3.nano (x86_64).
pub async fn instance_type(c: &Clients) -> anyhow::Result<(&'static str, &'static str)> {
    let [arm, x86] = INSTANCE_TYPES;
    let offered = c
        .home_ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::Region)
        .filters(
            Filter::builder()
                .name("instance-type")
                .values(arm.0)
                .build(),
        )
        .send()
        .await
        .context("DescribeInstanceTypeOfferings")?;
    Ok(if offered.instance_type_offerings().is_empty() {
        x86
    } else {
        arm
    })
}

/// The test instance: opted into the run's schedule (reboot is the suite's default).
/// Returns (instance id, the Amazon Linux image it was launched from).
pub async fn launch_instance(c: &Clients, s: &Settings) -> anyhow::Result<(String, String)> {
    let (size, arch) = instance_type(c).await?;
    let run = s.run.as_str();
    let out = c
        .home_ec2
        .run_instances()
        .image_id(format!("resolve:ssm:{}", amazon_linux_parameter(arch)))
        .instance_type(InstanceType::from(size))
        .min_count(1)
        .max_count(1)
        .set_subnet_id(s.subnet.clone())
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(HttpTokensState::Required)
                .build(),
        )
        .tag_specifications(tagged(
            ResourceType::Instance,
            &[
                ("Name", run),
                (RUN_TAG, run),
                (ami_core::tags::key::SCHEDULE, run),
            ],
        ))
        .tag_specifications(tagged(ResourceType::Volume, &[(RUN_TAG, run)]))
        .send()
        .await
        .with_context(|| {
            format!(
                "RunInstances {size} in {} (no default VPC? set LIVE_SUBNET_ID=subnet-…)",
                s.home
            )
        })?;
    let instance = out
        .instances()
        .first()
        .context("RunInstances returned no instance")?;
    let id = instance.instance_id().context("no instance id")?.to_owned();
    let image = instance.image_id().context("no image id")?.to_owned();
    println!("  instance {id} ({size}, {arch}) from {image}");
    Ok((id, image))
}

/// Polls `check` every [`POLL`] until it returns `Some`, `timeout` passes, or Ctrl-C.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    stop: &Stop,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await? {
            println!("  {what}: after {} s", start.elapsed().as_secs());
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("{what}: not after {} min", timeout.as_secs() / 60);
        }
        // Sleep in short steps so Ctrl-C is seen within a second.
        let wake = Instant::now() + POLL;
        while Instant::now() < wake {
            if stop.requested() {
                bail!("{what}: stopped (Ctrl-C)");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

pub async fn wait_running(c: &Clients, id: &str, stop: &Stop) -> anyhow::Result<()> {
    wait_for(
        &format!("{id} running"),
        Duration::from_secs(600),
        stop,
        || async {
            let out = c
                .home_ec2
                .describe_instances()
                .instance_ids(id)
                .send()
                .await
                .context("DescribeInstances")?;
            let state = out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .find_map(|i| i.state().and_then(|s| s.name()).cloned());
            match state {
                Some(InstanceStateName::Running) => Ok(Some(())),
                Some(InstanceStateName::Pending) | None => Ok(None),
                Some(other) => bail!("instance {id} is {other:?}, not starting"),
            }
        },
    )
    .await
}

/// Waits until `image` is available; a `failed` image is an error with its reason.
pub async fn wait_available(
    ec2: &aws_sdk_ec2::Client,
    image: &str,
    timeout: Duration,
    stop: &Stop,
) -> anyhow::Result<aws_sdk_ec2::types::Image> {
    wait_for(&format!("{image} available"), timeout, stop, || async {
        // A new id can be unknown for a moment (eventual consistency): keep polling.
        let Ok(out) = ec2.describe_images().image_ids(image).send().await else {
            return Ok(None);
        };
        let Some(img) = out.images().first() else {
            return Ok(None);
        };
        match img.state() {
            Some(ImageState::Available) => Ok(Some(img.clone())),
            Some(ImageState::Failed) => bail!(
                "{image} failed: {}",
                img.state_reason()
                    .and_then(|r| r.message())
                    .unwrap_or("no reason given")
            ),
            _ => Ok(None),
        }
    })
    .await
}

/// Images owned by the account with tag `k=v` (all states DescribeImages shows).
pub async fn images_tagged(
    ec2: &aws_sdk_ec2::Client,
    k: &str,
    v: &str,
) -> anyhow::Result<Vec<aws_sdk_ec2::types::Image>> {
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name(format!("tag:{k}")).values(v).build())
        .max_results(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        out.extend(page.context("DescribeImages")?.images().iter().cloned());
    }
    Ok(out)
}

/// Whether `image` still exists (DescribeImages knows it and it is not deregistered).
pub async fn image_exists(ec2: &aws_sdk_ec2::Client, image: &str) -> anyhow::Result<bool> {
    let out = ec2
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("image-id").values(image).build())
        .send()
        .await
        .context("DescribeImages")?;
    Ok(out
        .images()
        .iter()
        .any(|i| i.state() != Some(&ImageState::Deregistered)))
}

/// The KMS keys of `image`'s snapshots.
pub async fn snapshot_keys(
    ec2: &aws_sdk_ec2::Client,
    image: &aws_sdk_ec2::types::Image,
) -> anyhow::Result<Vec<Option<String>>> {
    let ids: Vec<String> = image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
        .collect();
    if ids.is_empty() {
        bail!("{} has no snapshot", image.image_id().unwrap_or("?"));
    }
    let out = ec2
        .describe_snapshots()
        .set_snapshot_ids(Some(ids))
        .send()
        .await
        .context("DescribeSnapshots")?;
    Ok(out
        .snapshots()
        .iter()
        .map(|s| s.kms_key_id().map(str::to_owned))
        .collect())
}

/// The accounts `image` is shared with.
pub async fn launch_permissions(
    ec2: &aws_sdk_ec2::Client,
    image: &str,
) -> anyhow::Result<Vec<String>> {
    let out = ec2
        .describe_image_attribute()
        .image_id(image)
        .attribute(ImageAttributeName::LaunchPermission)
        .send()
        .await
        .context("DescribeImageAttribute launchPermission")?;
    Ok(out
        .launch_permissions()
        .iter()
        .filter_map(|p| p.user_id().map(str::to_owned))
        .collect())
}

/// What a person does to ask for sharing: tag the image.
pub async fn tag_image(
    ec2: &aws_sdk_ec2::Client,
    image: &str,
    k: &str,
    v: &str,
) -> anyhow::Result<()> {
    ec2.create_tags()
        .resources(image)
        .tags(tag(k, v))
        .send()
        .await
        .with_context(|| format!("CreateTags {image}"))?;
    Ok(())
}

/// The launch template: version 1 pins `pinned`, versions 2..=12 use `other`, and the
/// default is the newest, so only the oldest version refers to `pinned`.
pub async fn launch_template(
    c: &Clients,
    s: &Settings,
    pinned: &str,
    other: &str,
) -> anyhow::Result<String> {
    // Only the image: nothing is launched from the template, cleanup reads its versions.
    let data = |image: &str| RequestLaunchTemplateData::builder().image_id(image).build();
    let out = c
        .home_ec2
        .create_launch_template()
        .launch_template_name(s.run.as_str())
        .launch_template_data(data(pinned))
        .tag_specifications(tagged(
            ResourceType::LaunchTemplate,
            &[(RUN_TAG, s.run.as_str())],
        ))
        .send()
        .await
        .context("CreateLaunchTemplate")?;
    let id = out
        .launch_template()
        .and_then(|t| t.launch_template_id())
        .context("no launch template id")?
        .to_owned();
    for n in 2..=LAUNCH_TEMPLATE_VERSIONS {
        c.home_ec2
            .create_launch_template_version()
            .launch_template_id(&id)
            .launch_template_data(data(other))
            .version_description(format!("version {n}"))
            .send()
            .await
            .with_context(|| format!("CreateLaunchTemplateVersion {n} of {id}"))?;
    }
    c.home_ec2
        .modify_launch_template()
        .launch_template_id(&id)
        .default_version(LAUNCH_TEMPLATE_VERSIONS.to_string())
        .send()
        .await
        .context("ModifyLaunchTemplate")?;
    println!(
        "  launch template {id}: version 1 → {pinned}, versions 2-{LAUNCH_TEMPLATE_VERSIONS} → {other}"
    );
    Ok(id)
}

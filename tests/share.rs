//! Emulator integration tests for share: tag an image, observe the `Tag Change on Resource`
//! event the emulator emits (as the template's rule would), feed it to the share runner
//! exactly as the Lambda handler does (`parse_trigger` → `ShareRequest::TagChange` →
//! `run` → `finish`), and check launch permission, create-volume permission on every
//! snapshot and KMS grants.

use std::collections::BTreeSet;
use std::time::Duration;

use ami_core::context::Context;
use ami_core::events::parse_trigger;
use ami_core::report::RunReport;
use ami_core::share::{run, ShareRequest};
use ami_core::tags::key;
use ami_sim::Emulator;
use anyhow::Context as _;
use aws_sdk_ec2::types::{
    LaunchPermission, LaunchPermissionModifications, ResourceType, SnapshotAttributeName, Tag,
    TagSpecification,
};
use serde_json::{json, Value};

const A: &str = "111122223333";
const B: &str = "444455556666";
const HAND: &str = "777788889999";
const REGION: &str = "us-east-1";

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// What the Lambda handler does with an event.
async fn deliver(ctx: &Context, event: &Value) -> anyhow::Result<RunReport> {
    let request = ShareRequest::from_trigger(parse_trigger(event)?)?;
    Ok(ctx.finish(run(ctx, request, now()).await).await)
}

/// A managed, available image of an instance with a root and a data volume (2 snapshots),
/// encrypted with `kms_key` when given. Returns the image id and its snapshot ids.
async fn managed_image(
    emu: &Emulator,
    name: &str,
    kms_key: Option<&str>,
) -> anyhow::Result<(String, Vec<String>)> {
    let instance = emu
        .launch_instance_encrypted(REGION, &[("Name", name)], &["/dev/sdf"], kms_key)
        .await?;
    let ec2 = emu.ec2(REGION);
    let out = ec2
        .create_image()
        .instance_id(&instance)
        .name(name)
        .no_reboot(true)
        .tag_specifications(managed_image_tags())
        .send()
        .await
        .context("CreateImage")?;
    let id = out.image_id().context("no image id")?.to_owned();
    emu.tick()?;
    let described = ec2.describe_images().image_ids(&id).send().await?;
    let image = described.images().first().context("image not described")?;
    anyhow::ensure!(
        image.state().map(|s| s.as_str()) == Some("available"),
        "image not available: {:?}",
        image.state()
    );
    let snaps: Vec<String> = image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
        .collect();
    anyhow::ensure!(snaps.len() == 2, "expected 2 snapshots, got {snaps:?}");
    Ok((id, snaps))
}

async fn launch_accounts(emu: &Emulator, image: &str) -> anyhow::Result<BTreeSet<String>> {
    Ok(emu
        .launch_permission_accounts(REGION, image)
        .await?
        .into_iter()
        .collect())
}

async fn volume_accounts(emu: &Emulator, snapshot: &str) -> anyhow::Result<BTreeSet<String>> {
    let out = emu
        .ec2(REGION)
        .describe_snapshot_attribute()
        .snapshot_id(snapshot)
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .context("DescribeSnapshotAttribute")?;
    Ok(out
        .create_volume_permissions()
        .iter()
        .filter_map(|p| p.user_id().map(str::to_owned))
        .collect())
}

/// (grantee principal, name) of every grant on the key.
async fn key_grants(emu: &Emulator, key_arn: &str) -> anyhow::Result<Vec<(String, String)>> {
    let out = emu
        .kms(REGION)
        .list_grants()
        .key_id(key_arn)
        .send()
        .await
        .context("ListGrants")?;
    let mut grants: Vec<(String, String)> = out
        .grants()
        .iter()
        .map(|g| {
            (
                g.grantee_principal().unwrap_or_default().to_owned(),
                g.name().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    grants.sort();
    Ok(grants)
}

async fn image_tag(emu: &Emulator, image: &str, k: &str) -> anyhow::Result<Option<String>> {
    let out = emu
        .ec2(REGION)
        .describe_images()
        .image_ids(image)
        .send()
        .await?;
    Ok(out.images().first().and_then(|i| {
        i.tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value().map(str::to_owned))
    }))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The share-with tag events, as the template's rule matches them.
fn share_pattern() -> Value {
    json!({
        "source": ["aws.tag"],
        "detail-type": ["Tag Change on Resource"],
        "detail": {"service": ["ec2"], "resource-type": ["image"], "changed-tag-keys": [key::SHARE_WITH]}
    })
}

async fn one_event(queue: &ami_sim::EventQueue) -> anyhow::Result<Value> {
    let events = queue.wait_for(1, Duration::from_secs(5)).await?;
    anyhow::ensure!(
        events.len() == 1,
        "expected one share-with tag event, got {events:?}"
    );
    Ok(events.into_iter().next().unwrap_or_default())
}

type State = (
    BTreeSet<String>,
    Vec<BTreeSet<String>>,
    Vec<(String, String)>,
    Option<String>,
    Option<String>,
);

async fn state(
    emu: &Emulator,
    image: &str,
    snaps: &[String],
    key_arn: &str,
) -> anyhow::Result<State> {
    let mut vols = Vec::new();
    for s in snaps {
        vols.push(volume_accounts(emu, s).await?);
    }
    Ok((
        launch_accounts(emu, image).await?,
        vols,
        key_grants(emu, key_arn).await?,
        image_tag(emu, image, key::SHARE_GRANTED).await?,
        image_tag(emu, image, key::SHARE_STATUS).await?,
    ))
}

#[tokio::test]
async fn tag_events_grant_everything_and_revoke_exactly_what_the_suite_granted(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let key_arn = emu.create_key(REGION, Some("alias/amis")).await?;
    let (image, snaps) = managed_image(&emu, "web-encrypted", Some(&key_arn)).await?;
    let ctx = emu.context(emu.config(&[("SHARE_ALLOWED", &format!("{A},{B}"))]));
    let queue = emu.event_queue(REGION, share_pattern()).await?;

    // WHEN the image is tagged for A and B and the tag event is delivered
    emu.tag_image(REGION, &image, key::SHARE_WITH, &format!("{A},{B}"))
        .await?;
    let report = deliver(&ctx, &one_event(&queue).await?).await?;

    // THEN launch permission, create-volume on both snapshots, a KMS grant per account
    assert_eq!(
        report.count(ami_core::report::Outcome::Granted),
        2,
        "{}",
        report.render_table()
    );
    assert_eq!(launch_accounts(&emu, &image).await?, set(&[A, B]));
    for s in &snaps {
        assert_eq!(
            volume_accounts(&emu, s).await?,
            set(&[A, B]),
            "snapshot {s}"
        );
    }
    assert_eq!(
        key_grants(&emu, &key_arn).await?,
        vec![
            (
                format!("arn:aws:iam::{A}:root"),
                format!("ami-lifecycle-{image}-{A}")
            ),
            (
                format!("arn:aws:iam::{B}:root"),
                format!("ami-lifecycle-{image}-{B}")
            ),
        ]
    );
    assert_eq!(
        image_tag(&emu, &image, key::SHARE_STATUS).await?.as_deref(),
        Some("ok 2 targets")
    );

    // GIVEN a launch permission granted by hand
    emu.ec2(REGION)
        .modify_image_attribute()
        .image_id(&image)
        .attribute("launchPermission")
        .launch_permission(
            LaunchPermissionModifications::builder()
                .add(LaunchPermission::builder().user_id(HAND).build())
                .build(),
        )
        .send()
        .await
        .context("ModifyImageAttribute by hand")?;

    // WHEN B is removed from the tag
    emu.tag_image(REGION, &image, key::SHARE_WITH, A).await?;
    let event = one_event(&queue).await?;
    deliver(&ctx, &event).await?;

    // THEN exactly B's grants are gone; A's and the hand grant stay
    assert_eq!(launch_accounts(&emu, &image).await?, set(&[A, HAND]));
    for s in &snaps {
        assert_eq!(volume_accounts(&emu, s).await?, set(&[A]), "snapshot {s}");
    }
    assert_eq!(
        key_grants(&emu, &key_arn).await?,
        vec![(
            format!("arn:aws:iam::{A}:root"),
            format!("ami-lifecycle-{image}-{A}")
        )]
    );
    let once = state(&emu, &image, &snaps, &key_arn).await?;

    // WHEN the same event is delivered three more times, once then twice concurrently
    deliver(&ctx, &event).await?;
    let (r1, r2) = tokio::join!(deliver(&ctx, &event), deliver(&ctx, &event));
    r1?;
    r2?;
    // THEN the state is the same as after one delivery
    assert_eq!(state(&emu, &image, &snaps, &key_arn).await?, once);

    // WHEN the tag is removed, THEN everything the suite granted goes; the hand grant stays
    emu.untag_image(REGION, &image, key::SHARE_WITH).await?;
    deliver(&ctx, &one_event(&queue).await?).await?;
    assert_eq!(launch_accounts(&emu, &image).await?, set(&[HAND]));
    for s in &snaps {
        assert_eq!(volume_accounts(&emu, s).await?, set(&[]), "snapshot {s}");
    }
    assert!(key_grants(&emu, &key_arn).await?.is_empty());
    assert_eq!(
        image_tag(&emu, &image, key::SHARE_STATUS).await?.as_deref(),
        Some("ok 0 targets")
    );
    Ok(())
}

#[tokio::test]
async fn concurrent_first_deliveries_converge_to_one_grant_per_account() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let key_arn = emu.create_key(REGION, None).await?;
    let (image, snaps) = managed_image(&emu, "web-concurrent", Some(&key_arn)).await?;
    let ctx = emu.context(emu.config(&[("SHARE_ALLOWED", A)]));
    let queue = emu.event_queue(REGION, share_pattern()).await?;
    emu.tag_image(REGION, &image, key::SHARE_WITH, A).await?;
    let event = one_event(&queue).await?;

    // WHEN the first delivery arrives three times at once
    let (r1, r2, r3) = tokio::join!(
        deliver(&ctx, &event),
        deliver(&ctx, &event),
        deliver(&ctx, &event)
    );
    r1?;
    r2?;
    r3?;

    // THEN the state is that of one delivery (moto's CreateGrant is not idempotent: the
    // runs revoke duplicates and keep the grant with the smallest id)
    let concurrent = state(&emu, &image, &snaps, &key_arn).await?;
    assert_eq!(concurrent.0, set(&[A]));
    assert_eq!(
        concurrent.2,
        vec![(
            format!("arn:aws:iam::{A}:root"),
            format!("ami-lifecycle-{image}-{A}")
        )]
    );
    deliver(&ctx, &event).await?;
    assert_eq!(state(&emu, &image, &snaps, &key_arn).await?, concurrent);
    Ok(())
}

#[tokio::test]
async fn invalid_outside_and_public_values_change_nothing_and_record_the_error(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let (image, snaps) = managed_image(&emu, "web-plain", None).await?;
    let ctx = emu.context(emu.config(&[("SHARE_ALLOWED", A)]));
    let queue = emu.event_queue(REGION, share_pattern()).await?;

    for (value, expected) in [
        (format!("{A},12345"), "error \"12345\" is not an account id"),
        (
            format!("{A} 999999999999"),
            "error not in SHARE_ALLOWED: 999999999999",
        ),
        (
            "all".to_owned(),
            "error all (public) refused: ALLOW_PUBLIC is false",
        ),
    ] {
        emu.tag_image(REGION, &image, key::SHARE_WITH, &value)
            .await?;
        let report = deliver(&ctx, &one_event(&queue).await?).await?;
        assert_eq!(report.items.len(), 1, "{}", report.render_table());
        assert!(
            launch_accounts(&emu, &image).await?.is_empty(),
            "{value}: nothing granted"
        );
        for s in &snaps {
            assert!(
                volume_accounts(&emu, s).await?.is_empty(),
                "{value}: snapshot {s}"
            );
        }
        let status = image_tag(&emu, &image, key::SHARE_STATUS)
            .await?
            .unwrap_or_default();
        assert!(status.starts_with(expected), "{value}: {status}");
    }
    assert_eq!(
        image_tag(&emu, &image, key::SHARE_GRANTED).await?,
        None,
        "no record: nothing was granted"
    );
    Ok(())
}

#[tokio::test]
async fn the_reconcile_shares_replicas_with_their_own_region_key() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let (image, _) = managed_image(&emu, "web-source", None).await?;
    let replica_key = emu.create_key("eu-west-1", Some("alias/replicas")).await?;
    let copy = emu
        .ec2("eu-west-1")
        .copy_image()
        .source_image_id(&image)
        .source_region(REGION)
        .name("web-source-replica")
        .encrypted(true)
        .kms_key_id(&replica_key)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .tags(
                    Tag::builder()
                        .key(key::MANAGED_BY)
                        .value("ami-lifecycle")
                        .build(),
                )
                .tags(Tag::builder().key(key::SOURCE_IMAGE).value(&image).build())
                .tags(Tag::builder().key(key::SOURCE_REGION).value(REGION).build())
                .build(),
        )
        .send()
        .await
        .context("CopyImage")?;
    let replica = copy.image_id().context("no copy id")?.to_owned();
    emu.tick()?;
    emu.tag_image(REGION, &image, key::SHARE_WITH, A).await?;
    let ctx = emu.context(emu.config(&[("SHARE_ALLOWED", A), ("REPLICA_REGIONS", "eu-west-1")]));

    // WHEN the scheduled reconcile runs ({} = what the schedule and `amictl share` send)
    let report = deliver(&ctx, &json!({})).await?;

    // THEN the source and its replica are shared; the replica's grant is on the eu-west-1 key
    assert_eq!(
        report.count(ami_core::report::Outcome::Granted),
        2,
        "{}",
        report.render_table()
    );
    assert_eq!(launch_accounts(&emu, &image).await?, set(&[A]));
    let replica_accounts: BTreeSet<String> = emu
        .launch_permission_accounts("eu-west-1", &replica)
        .await?
        .into_iter()
        .collect();
    assert_eq!(replica_accounts, set(&[A]));
    let grants = emu
        .kms("eu-west-1")
        .list_grants()
        .key_id(&replica_key)
        .send()
        .await?;
    let names: Vec<&str> = grants.grants().iter().filter_map(|g| g.name()).collect();
    assert_eq!(names, vec![format!("ami-lifecycle-{replica}-{A}").as_str()]);
    Ok(())
}

#[tokio::test]
async fn an_image_copied_encrypted_without_a_key_is_refused_with_its_remedy() -> anyhow::Result<()>
{
    let emu = Emulator::start()?;
    let (source, _) = managed_image(&emu, "web-src", None).await?;
    // GIVEN a copy made with Encrypted=true and no KmsKeyId: EC2 uses the account's default
    // EBS key, the AWS managed aws/ebs unless changed, which cannot be shared …
    let ec2 = emu.ec2(REGION);
    let copy = ec2
        .copy_image()
        .source_image_id(&source)
        .source_region(REGION)
        .name("web-default-key")
        .encrypted(true)
        .tag_specifications(managed_image_tags())
        .send()
        .await
        .context("CopyImage")?
        .image_id()
        .context("no copy id")?
        .to_owned();
    emu.tick()?;
    let described = ec2.describe_images().image_ids(&copy).send().await?;
    let snaps: Vec<String> = described
        .images()
        .iter()
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
        .collect();
    anyhow::ensure!(!snaps.is_empty(), "the copy has no snapshot");
    let ctx = emu.context(emu.config(&[("SHARE_ALLOWED", A)]));
    let queue = emu.event_queue(REGION, share_pattern()).await?;

    // WHEN it is tagged to be shared with an allowed account
    emu.tag_image(REGION, &copy, key::SHARE_WITH, A).await?;
    let report = deliver(&ctx, &one_event(&queue).await?).await?;

    // THEN nothing is shared and the status says why and what to do, not "key unknown".
    let table = report.render_table();
    assert!(launch_accounts(&emu, &copy).await?.is_empty(), "{table}");
    for s in &snaps {
        assert!(volume_accounts(&emu, s).await?.is_empty(), "{s}: {table}");
    }
    let status = image_tag(&emu, &copy, key::SHARE_STATUS)
        .await?
        .unwrap_or_default();
    assert!(status.contains("aws/ebs"), "{status}");
    assert!(status.contains("customer managed key"), "{status}");
    assert!(!status.contains("unknown"), "{status}");
    Ok(())
}

/// Tags at creation that mark an image as this deployment's (as the suite writes them).
fn managed_image_tags() -> TagSpecification {
    TagSpecification::builder()
        .resource_type(ResourceType::Image)
        .tags(
            Tag::builder()
                .key(key::MANAGED_BY)
                .value("ami-lifecycle")
                .build(),
        )
        .build()
}

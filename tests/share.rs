//! Emulator integration tests for share: tag an image, observe the `Tag Change on Resource`
//! event the emulator emits (as the template's rule would), feed it to the share runner
//! exactly as the Lambda handler does (`parse_trigger` → `ShareRequest::TagChange` →
//! `run` → `finish`), and check launch permission, create-volume permission on every
//! snapshot and KMS grants.

use std::collections::BTreeSet;
use std::time::Duration;

use ami_core::context::Context;
use ami_core::events::parse_trigger;
use ami_core::model::Tags;
use ami_core::report::RunReport;
use ami_core::share::record;
use ami_core::share::{run, ShareRequest};
use ami_core::tags::key;
use ami_sim::{Emulator, EmulatorClient};
use anyhow::Context as _;
use aws_sdk_ec2::types::{
    LaunchPermission, LaunchPermissionModifications, SnapshotAttributeName, TagSpecification,
};
use serde_json::{json, Value};

use crate::common::{now, set};

const A: &str = "111122223333";
const B: &str = "444455556666";
const HAND: &str = "777788889999";
const REGION: &str = "us-east-1";
/// The deployment `emu.config` names (no `AMI_LIFECYCLE_NAME`); its seal key is in REGION,
/// the first managed region.
const DEPLOYMENT: &str = "ami-lifecycle";

/// What the Lambda handler does with an event.
async fn deliver(ctx: &Context, event: &Value) -> anyhow::Result<RunReport> {
    let request = ShareRequest::from_trigger(parse_trigger(event)?)?;
    Ok(ctx.finish(run(ctx, request, now()).await).await)
}

/// A managed, available image of an instance with a root and a data volume (2 snapshots),
/// encrypted with `kms_key` when given, made as create-image makes it: lineage tags naming
/// the instance it really is an image of, sealed. Returns the image id and its snapshot ids.
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
        .set_tag_specifications(Some(
            sealed_specs(emu, REGION, name, &lineage_tags(&instance)).await?,
        ))
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
    assert_eq!(
        recorded(&emu, &image).await?,
        vec![A, B],
        "the grant record"
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
    assert_eq!(
        recorded(&emu, &image).await?,
        vec![A],
        "the hand grant is not recorded"
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
    assert!(recorded(&emu, &image).await?.is_empty(), "the grant record");
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
async fn invalid_values_change_nothing_and_outside_or_public_targets_are_refused_by_name(
) -> anyhow::Result<()> {
    use ami_core::report::Outcome;
    let emu = Emulator::start()?;
    let (image, snaps) = managed_image(&emu, "web-plain", None).await?;
    let ctx = emu.context(emu.config(&[("SHARE_ALLOWED", A)]));
    let queue = emu.event_queue(REGION, share_pattern()).await?;
    let none: &[&str] = &[];

    // (value, granted afterwards, outcomes (granted, refused, revoked, failed), status prefix)
    for (value, granted, outcomes, expected) in [
        // A value that does not parse changes nothing, not even its valid entries.
        (
            format!("{A},12345"),
            none,
            (0, 0, 0, 1),
            "error \"12345\" is not an account id".to_owned(),
        ),
        // A target outside SHARE_ALLOWED is refused by name and never granted; the
        // allowed one in the same value is granted.
        (
            format!("{A} 999999999999"),
            &[A][..],
            (1, 1, 0, 0),
            "ok 1 target; refused 999999999999 (not in SHARE_ALLOWED)".to_owned(),
        ),
        // A value that does not parse still changes nothing: A, allowed, keeps its grant.
        (
            format!("{A},12345"),
            &[A][..],
            (0, 0, 0, 1),
            "error \"12345\" is not an account id".to_owned(),
        ),
        // Public is refused by name (ALLOW_PUBLIC is false); A, no longer named, is revoked.
        (
            "all".to_owned(),
            none,
            (0, 1, 1, 0),
            "ok 0 targets; refused all (all (public) refused: ALLOW_PUBLIC is false)".to_owned(),
        ),
    ] {
        emu.tag_image(REGION, &image, key::SHARE_WITH, &value)
            .await?;
        let report = deliver(&ctx, &one_event(&queue).await?).await?;
        let table = report.render_table();
        assert_eq!(
            (
                report.count(Outcome::Granted),
                report.count(Outcome::Refused),
                report.count(Outcome::Revoked),
                report.failed()
            ),
            outcomes,
            "{value}: {table}"
        );
        if outcomes.1 > 0 {
            let named = if value == "all" {
                "all"
            } else {
                "999999999999"
            };
            assert!(
                report
                    .items
                    .iter()
                    .any(|i| i.outcome == Outcome::Refused && i.subject == named),
                "{value}: refused by name: {table}"
            );
        }
        assert_eq!(
            launch_accounts(&emu, &image).await?,
            set(granted),
            "{value}: launch permission: {table}"
        );
        for s in &snaps {
            assert_eq!(
                volume_accounts(&emu, s).await?,
                set(granted),
                "{value}: snapshot {s}"
            );
        }
        let status = image_tag(&emu, &image, key::SHARE_STATUS)
            .await?
            .unwrap_or_default();
        assert!(status.starts_with(&expected), "{value}: {status}");
        assert_eq!(
            recorded(&emu, &image).await?,
            granted.to_vec(),
            "{value}: the grant record names what the suite granted"
        );
    }
    // AND the image was never made public
    let public = emu
        .ec2(REGION)
        .describe_image_attribute()
        .image_id(&image)
        .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
        .send()
        .await
        .context("DescribeImageAttribute")?;
    assert!(
        !public
            .launch_permissions()
            .iter()
            .any(|p| p.group().is_some()),
        "{:?}",
        public.launch_permissions()
    );
    Ok(())
}

#[tokio::test]
async fn the_reconcile_shares_replicas_with_their_own_region_key() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let (image, _) = managed_image(&emu, "web-source", None).await?;
    let replica_key = emu.create_key("eu-west-1", Some("alias/replicas")).await?;
    // GIVEN a replica as replicate makes it: the source's lineage, naming the real source,
    // sealed on its own; the share-with tag is on the source only
    let copy = emu
        .ec2("eu-west-1")
        .copy_image()
        .source_image_id(&image)
        .source_region(REGION)
        .name("web-source-replica")
        .encrypted(true)
        .kms_key_id(&replica_key)
        .set_tag_specifications(Some(
            replica_specs(&emu, "eu-west-1", "web-source-replica", &image).await?,
        ))
        .send()
        .await
        .context("CopyImage")?;
    let replica = copy.image_id().context("no copy id")?.to_owned();
    emu.tick()?;
    emu.tag_image(REGION, &image, key::SHARE_WITH, A).await?;
    // AND a share-with someone wrote on the replica itself (B is allowed, but a replica
    // never governs itself)
    emu.tag_image("eu-west-1", &replica, key::SHARE_WITH, B)
        .await?;
    let allowed = format!("{A},{B}");
    let ctx = emu.context(emu.config(&[
        ("SHARE_ALLOWED", allowed.as_str()),
        ("REPLICA_REGIONS", "eu-west-1"),
    ]));

    // WHEN the scheduled reconcile runs ({} = what the schedule and `amictl share` send)
    let report = deliver(&ctx, &json!({})).await?;

    // THEN the source and its replica are shared with what the source's tag says (the
    // replica's own tag is ignored); the replica's grant is on the eu-west-1 key
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
    // GIVEN a sealed copy made with Encrypted=true and no KmsKeyId: EC2 uses the account's
    // default EBS key, the AWS managed aws/ebs unless changed, which cannot be shared …
    let ec2 = emu.ec2(REGION);
    let copy = ec2
        .copy_image()
        .source_image_id(&source)
        .source_region(REGION)
        .name("web-default-key")
        .encrypted(true)
        .set_tag_specifications(Some(
            replica_specs(&emu, REGION, "web-default-key", &source).await?,
        ))
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

    // WHEN it is to be shared with an allowed account: a copy follows its source's
    // share-with (its own never governs it), so the source is tagged
    emu.tag_image(REGION, &source, key::SHARE_WITH, A).await?;
    let report = deliver(&ctx, &one_event(&queue).await?).await?;

    // THEN the source is shared, the copy is not, and its status says why and what to do,
    // not "key unknown".
    let table = report.render_table();
    assert_eq!(launch_accounts(&emu, &source).await?, set(&[A]), "{table}");
    assert!(
        report.items.iter().any(|i| i.subject == copy
            && i.outcome == ami_core::report::Outcome::Refused
            && i.reason.contains("aws/ebs")),
        "{table}"
    );
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

/// The tags create-image writes on an image of `instance` (before the seal).
fn lineage_tags(instance: &str) -> Vec<(String, String)> {
    [
        (key::MANAGED_BY, DEPLOYMENT),
        (key::SOURCE_INSTANCE, instance),
        (key::SCHEDULE, "daily"),
        (key::SLOT, "2026-11-22T03:00:00Z"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// `TagSpecifications` (image and snapshots) for an image named `name` in `region` with
/// `tags`, sealed with the deployment's key as the suite seals what it makes.
async fn sealed_specs(
    emu: &Emulator,
    region: &str,
    name: &str,
    tags: &[(String, String)],
) -> anyhow::Result<Vec<TagSpecification>> {
    let sealed = emu
        .sealed_tags(REGION, DEPLOYMENT, region, name, tags)
        .await?;
    Ok(EmulatorClient::tag_specifications(&sealed))
}

/// Sealed `TagSpecifications` of a copy named `name` in `region` of `source` (in REGION),
/// as replicate writes them: the source's lineage tags, the real source, the attempt.
async fn replica_specs(
    emu: &Emulator,
    region: &str,
    name: &str,
    source: &str,
) -> anyhow::Result<Vec<TagSpecification>> {
    let carried = image_tags(emu, REGION, source).await?;
    let mut tags: Vec<(String, String)> = [key::SOURCE_INSTANCE, key::SCHEDULE, key::SLOT]
        .iter()
        .filter_map(|k| Some(((*k).to_owned(), carried.get(*k)?.clone())))
        .collect();
    for (k, v) in [
        (key::MANAGED_BY, DEPLOYMENT),
        (key::SOURCE_IMAGE, source),
        (key::SOURCE_REGION, REGION),
        (ami_core::replicate::plan::ATTEMPT, "1"),
    ] {
        tags.push((k.to_owned(), v.to_owned()));
    }
    sealed_specs(emu, region, name, &tags).await
}

/// Every tag of an image.
async fn image_tags(emu: &Emulator, region: &str, image: &str) -> anyhow::Result<Tags> {
    let out = emu
        .ec2(region)
        .describe_images()
        .image_ids(image)
        .send()
        .await?;
    Ok(out
        .images()
        .first()
        .map(|i| {
            i.tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect()
        })
        .unwrap_or_default())
}

/// The grantees the image's grant record names (its chunks' entries, seals aside).
async fn recorded(emu: &Emulator, image: &str) -> anyhow::Result<Vec<String>> {
    Ok(record::chunks(&image_tags(emu, REGION, image).await?)
        .iter()
        .flat_map(|c| c.grantees())
        .map(|g| g.to_string())
        .collect())
}

/// The launch permissions of an image: account ids, and organization / OU ARNs.
async fn launch_grantees(emu: &Emulator, image: &str) -> anyhow::Result<BTreeSet<String>> {
    let out = emu
        .ec2(REGION)
        .describe_image_attribute()
        .image_id(image)
        .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
        .send()
        .await?;
    Ok(out
        .launch_permissions()
        .iter()
        .filter_map(|p| {
            p.user_id()
                .or(p.organization_arn())
                .or(p.organizational_unit_arn())
                .map(str::to_owned)
        })
        .collect())
}

/// Issue 18: `SHARE_ALLOWED=org` is the organization as Organizations lists it at each
/// run: its ACTIVE accounts, the organization itself and its OUs. An account outside it
/// or suspended is refused by name; an account suspended after it was given the image
/// loses launch and create-volume permission at the next reconcile, and gets them back
/// once active again.
#[tokio::test]
async fn share_allowed_org_follows_the_organization_on_every_run() -> anyhow::Result<()> {
    const SUSPENDED: &str = "555566667777";
    let emu = Emulator::start()?;
    let hub = ami_sim::ACCOUNT;
    let seeded = emu.control(
        "POST",
        "/_emulator/organizations/seed",
        Some(json!({
            "management": hub,
            "ous": ["Workloads"],
            "accounts": [
                {"id": A, "name": "a", "ou": "Workloads"},
                {"id": B, "name": "b", "ou": "Workloads"},
                {"id": SUSPENDED, "name": "c", "status": "SUSPENDED"},
            ],
        })),
    )?;
    let org_id = seeded["organization_id"]
        .as_str()
        .context("organization id")?;
    let ou_id = seeded["ous"]["Workloads"].as_str().context("OU id")?;
    let org_arn = format!("arn:aws:organizations::{hub}:organization/{org_id}");
    let ou_arn = format!("arn:aws:organizations::{hub}:ou/{org_id}/{ou_id}");

    let (image, snapshots) = managed_image(&emu, "web", None).await?;
    emu.tag_image(
        REGION,
        &image,
        key::SHARE_WITH,
        &format!("{A} {B} {SUSPENDED} {HAND} {org_arn} {ou_arn}"),
    )
    .await?;
    let ctx = emu.context(emu.config(&[("SHARE_ALLOWED", "org")]));

    let first = run(&ctx, ShareRequest::Reconcile, now()).await;
    let members = set(&[A, B, org_arn.as_str(), ou_arn.as_str()]);
    anyhow::ensure!(
        launch_grantees(&emu, &image).await? == members,
        "{}",
        first.render_table()
    );
    for s in &snapshots {
        anyhow::ensure!(volume_accounts(&emu, s).await? == set(&[A, B]));
    }
    let status = image_tag(&emu, &image, key::SHARE_STATUS)
        .await?
        .unwrap_or_default();
    anyhow::ensure!(
        status.contains(SUSPENDED) && status.contains(HAND),
        "refused by name: {status}"
    );

    // B is suspended: the next reconcile reads the organization again and revokes B.
    emu.control(
        "POST",
        &format!("/_emulator/organizations/accounts/{B}/status"),
        Some(json!({"status": "SUSPENDED"})),
    )?;
    let second = run(&ctx, ShareRequest::Reconcile, now()).await;
    anyhow::ensure!(
        launch_grantees(&emu, &image).await? == set(&[A, org_arn.as_str(), ou_arn.as_str()]),
        "{}",
        second.render_table()
    );
    for s in &snapshots {
        anyhow::ensure!(volume_accounts(&emu, s).await? == set(&[A]));
    }
    anyhow::ensure!(recorded(&emu, &image).await?.iter().all(|g| g != B));

    // Active again: shared again.
    emu.control(
        "POST",
        &format!("/_emulator/organizations/accounts/{B}/status"),
        Some(json!({"status": "ACTIVE"})),
    )?;
    let third = run(&ctx, ShareRequest::Reconcile, now()).await;
    anyhow::ensure!(
        launch_grantees(&emu, &image).await? == members,
        "{}",
        third.render_table()
    );
    Ok(())
}

//! Emulator integration test of cleanup's staged retirement with the disabled stage and its
//! way back: an image past retention (shared with a partner) is disabled after its
//! deprecation grace — hidden and unshared by EC2 — kept through `DISABLE_GRACE`, restored
//! (`amictl restore`'s core: EnableImage, DisableImageDeprecation, keep=true), shared again
//! by the share reconcile, and never retired again; its sibling is deregistered once the
//! disabled stage is over.

use ami_core::cleanup::restore::restore;
use ami_core::cleanup::{run, CleanupRequest};
use ami_core::model::{ImageId, Region};
use ami_core::report::{Outcome, RunReport};
use ami_core::share::{self, ShareRequest};
use ami_core::tags::key;
use ami_core::time_util::{rfc3339, slot_compact, slot_of};
use ami_sim::{Emulator, EmulatorClient, OTHER_ACCOUNT};
use anyhow::Context as _;
use time::{Duration, OffsetDateTime};

const HOME: &str = "us-east-1";
const DEPLOYMENT: &str = "ami-lifecycle";

/// A sealed daily image of `instance` standing for the slot `days_ago` days before `base`.
async fn create(
    emu: &Emulator,
    instance: &str,
    base: OffsetDateTime,
    days_ago: i64,
) -> anyhow::Result<String> {
    let slot = slot_of(base - Duration::days(days_ago));
    let tags = vec![
        (key::SOURCE_INSTANCE.to_owned(), instance.to_owned()),
        (key::SCHEDULE.to_owned(), "daily".to_owned()),
        (key::SLOT.to_owned(), rfc3339(slot)),
        (key::MANAGED_BY.to_owned(), DEPLOYMENT.to_owned()),
    ];
    let name = format!("ami-lifecycle/web/daily/{}", slot_compact(slot));
    let sealed = emu
        .sealed_tags(HOME, DEPLOYMENT, HOME, &name, &tags)
        .await?;
    let out = emu
        .ec2(HOME)
        .create_image()
        .instance_id(instance)
        .name(name)
        .no_reboot(true)
        .set_tag_specifications(Some(EmulatorClient::tag_specifications(&sealed)))
        .send()
        .await
        .context("CreateImage")?;
    out.image_id().map(str::to_owned).context("no image id")
}

/// (state, deprecation time, launch permission user ids, keep tag) as EC2 reports them.
async fn described(
    emu: &Emulator,
    image: &str,
) -> anyhow::Result<(String, Option<String>, Vec<String>, Option<String>)> {
    let ec2 = emu.ec2(HOME);
    let out = ec2
        .describe_images()
        .image_ids(image)
        .include_disabled(true)
        .send()
        .await?;
    let img = out.images().first().context("image described")?;
    let perms = ec2
        .describe_image_attribute()
        .image_id(image)
        .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
        .send()
        .await?;
    Ok((
        img.state()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        img.deprecation_time().map(str::to_owned),
        perms
            .launch_permissions()
            .iter()
            .filter_map(|p| p.user_id().map(str::to_owned))
            .collect(),
        img.tags()
            .iter()
            .find(|t| t.key() == Some(key::KEEP))
            .and_then(|t| t.value().map(str::to_owned)),
    ))
}

fn item<'a>(report: &'a RunReport, subject: &str) -> anyhow::Result<(Outcome, &'a str)> {
    report
        .items
        .iter()
        .find(|i| i.subject == subject)
        .map(|i| (i.outcome, i.reason.as_str()))
        .with_context(|| format!("{subject} is not in the report:\n{}", report.render_table()))
}

async fn exists(emu: &Emulator, image: &str) -> anyhow::Result<bool> {
    let out = emu
        .ec2(HOME)
        .describe_images()
        .owners("self")
        .include_disabled(true)
        .send()
        .await?;
    Ok(out.images().iter().any(|i| i.image_id() == Some(image)))
}

#[tokio::test]
async fn disabled_stage_then_restore_and_the_share_reconcile_re_grants() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let base = OffsetDateTime::now_utc();
    let from = emu.launch_instance(HOME, &[("Name", "web")], &[]).await?;
    let mut ids = Vec::new();
    for d in 0..3 {
        ids.push(create(&emu, &from, base, d).await?);
    }
    emu.tick()?;
    let (newest, shared, plain) = (&ids[0], &ids[1], &ids[2]);
    let ctx = emu.context(emu.config(&[
        ("RETAIN", "count=1"),
        ("DISABLE_GRACE", "3"),
        ("CLEANUP_SHARED", "true"),
        ("SHARE_ALLOWED", OTHER_ACCOUNT),
    ]));
    // GIVEN one of the images past retention is shared with a partner (share-with tag,
    // granted by the share reconcile).
    emu.tag_image(HOME, shared, key::SHARE_WITH, OTHER_ACCOUNT)
        .await?;
    share::run(&ctx, ShareRequest::Reconcile, base).await;
    assert_eq!(described(&emu, shared).await?.2, [OTHER_ACCOUNT]);

    // WHEN cleanup runs THEN both images past retention are disabled (DEPRECATION_GRACE=0:
    // at once), their deprecation time the stage's clock, the partner's access gone.
    let report = run(&ctx, CleanupRequest::default(), base).await;
    for id in [shared, plain] {
        let (outcome, reason) = item(&report, id)?;
        assert_eq!(outcome, Outcome::Disabled, "{reason}");
        assert!(reason.contains("DISABLE_GRACE=3 days"), "{reason}");
        let (state, deprecation, perms, _) = described(&emu, id).await?;
        assert_eq!(state, "disabled");
        assert!(deprecation.is_some(), "the disabled stage's clock");
        assert!(perms.is_empty(), "EC2 made it private");
    }
    assert_eq!(item(&report, newest)?.0, Outcome::Kept);
    assert_eq!(report.metrics.get("images_disabled"), Some(&2.0));

    // A day later both are kept, and the report says until when.
    let report = run(&ctx, CleanupRequest::default(), base + Duration::days(1)).await;
    let (outcome, reason) = item(&report, plain)?;
    assert_eq!(outcome, Outcome::Kept);
    assert!(
        reason.contains("deregistered on or after") && reason.contains("amictl restore"),
        "{reason}"
    );

    // WHEN the operator restores the shared one
    let region = [Region::new(HOME)];
    let report = restore(&ctx, &ImageId::new(shared.as_str()), &region, base)
        .await
        .map_err(anyhow::Error::msg)?;
    let (outcome, reason) = item(&report, shared)?;
    assert_eq!(outcome, Outcome::Restored, "{reason}");
    assert!(reason.contains("share reconcile"), "{reason}");
    let (state, deprecation, perms, keep) = described(&emu, shared).await?;
    assert_eq!(
        (state.as_str(), deprecation, keep.as_deref()),
        ("available", None, Some("true"))
    );
    assert!(
        perms.is_empty(),
        "EnableImage does not bring the shares back by itself"
    );

    // THEN the share reconcile grants the partner again what the tag asks …
    share::run(&ctx, ShareRequest::Reconcile, base).await;
    assert_eq!(described(&emu, shared).await?.2, [OTHER_ACCOUNT]);

    // … and after DISABLE_GRACE the other is deregistered, the restored one kept.
    let report = run(&ctx, CleanupRequest::default(), base + Duration::days(4)).await;
    assert_eq!(item(&report, plain)?.0, Outcome::Deleted);
    assert!(!exists(&emu, plain).await?);
    let (outcome, reason) = item(&report, shared)?;
    assert_eq!(outcome, Outcome::Kept);
    assert!(reason.contains("ami-lifecycle:keep=true"), "{reason}");
    assert!(exists(&emu, newest).await?);
    Ok(())
}

/// An image due for deregistration whose snapshot is locked (EBS snapshot lock) is kept and
/// reported with the lock's end, run after run, without a DeregisterImage; once unlocked it
/// goes with its snapshot.
#[tokio::test]
async fn a_locked_snapshot_keeps_its_image_until_the_lock_ends() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let base = OffsetDateTime::now_utc();
    let from = emu.launch_instance(HOME, &[("Name", "web")], &[]).await?;
    let newest = create(&emu, &from, base, 0).await?;
    let old = create(&emu, &from, base, 1).await?;
    emu.tick()?;
    let described = emu
        .ec2(HOME)
        .describe_images()
        .image_ids(&old)
        .send()
        .await?;
    let snap = described
        .images()
        .first()
        .and_then(|i| i.block_device_mappings().first())
        .and_then(|m| m.ebs().and_then(|e| e.snapshot_id()))
        .context("the image's snapshot")?
        .to_owned();
    let locked = emu
        .ec2(HOME)
        .lock_snapshot()
        .snapshot_id(&snap)
        .lock_mode(aws_sdk_ec2::types::LockMode::Governance)
        .lock_duration(7)
        .send()
        .await?;
    let until = locked
        .lock_expires_on()
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok())
        .context("lock end")?;
    let ctx = emu.context(emu.config(&[("RETAIN", "count=1")]));

    for _ in 0..2 {
        let report = run(&ctx, CleanupRequest::default(), base).await;
        let (outcome, reason) = item(&report, &old)?;
        assert_eq!(outcome, Outcome::Kept, "{reason}");
        assert!(
            reason.contains(&format!(
                "snapshot {snap} is locked (governance mode) until {}",
                rfc3339(until)
            )),
            "{reason}"
        );
        assert_eq!(report.metrics.get("snapshots_locked"), Some(&1.0));
    }
    let calls = emu.counters()?;
    assert_eq!(
        calls["calls"][HOME]["DeregisterImage"]
            .as_u64()
            .unwrap_or(0),
        0
    );
    assert!(exists(&emu, &old).await?);

    emu.ec2(HOME)
        .unlock_snapshot()
        .snapshot_id(&snap)
        .send()
        .await?;
    let report = run(&ctx, CleanupRequest::default(), base).await;
    assert_eq!(item(&report, &old)?.0, Outcome::Deleted);
    assert!(!exists(&emu, &old).await?);
    assert!(exists(&emu, &newest).await?);
    let left = emu
        .ec2(HOME)
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await?;
    assert!(left
        .snapshots()
        .iter()
        .all(|s| s.snapshot_id() != Some(snap.as_str())));
    Ok(())
}

/// Savings count what AWS bills: a snapshot whose `FullSnapshotSizeInBytes` EC2 reports is
/// counted by it, and the metrics say which basis each figure has.
#[tokio::test]
async fn savings_count_the_full_snapshot_size_ec2_reports() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let base = OffsetDateTime::now_utc();
    let from = emu.launch_instance(HOME, &[("Name", "web")], &[]).await?;
    create(&emu, &from, base, 0).await?;
    let old = create(&emu, &from, base, 1).await?;
    emu.tick()?;
    let described = emu
        .ec2(HOME)
        .describe_images()
        .image_ids(&old)
        .send()
        .await?;
    let snap = described
        .images()
        .first()
        .and_then(|i| i.block_device_mappings().first())
        .and_then(|m| m.ebs().and_then(|e| e.snapshot_id()))
        .context("the image's snapshot")?
        .to_owned();
    emu.control(
        "POST",
        &format!("/_emulator/snapshots/{snap}/full-size"),
        Some(serde_json::json!({ "bytes": 5u64 * 512 * 1024 * 1024 })),
    )?;
    let ctx = emu.context(emu.config(&[("RETAIN", "count=1")]));
    let report = run(&ctx, CleanupRequest::default(), base).await;
    let (outcome, reason) = item(&report, &old)?;
    assert_eq!(outcome, Outcome::Deleted, "{reason}");
    assert!(
        reason.contains("(2.50 GiB by full snapshot size)"),
        "{reason}"
    );
    assert_eq!(report.metrics.get("gib_freed"), Some(&2.5));
    assert_eq!(report.metrics.get("gib_freed_full_size"), Some(&2.5));
    assert_eq!(report.metrics.get("gib_freed_volume_size"), Some(&0.0));
    Ok(())
}

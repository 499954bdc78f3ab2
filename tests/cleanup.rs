//! Emulator integration tests for cleanup: a mixed inventory in three regions, cleaned
//! exactly as the rules say; runs cut short (near deadline, hard stop, crash after apply)
//! that converge when re-run; staged retirement; orphan snapshots.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration as StdDuration;

use ami_core::cleanup::{run, CleanupRequest};
use ami_core::context::Context;
use ami_core::deadline::Deadline;
use ami_core::report::{Outcome, RunReport};
use ami_core::tags::key;
use ami_core::time_util::{rfc3339, slot_compact, slot_of};
use ami_sim::{Emulator, EmulatorClient, OTHER_ACCOUNT};
use anyhow::Context as _;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, LaunchPermission, LaunchPermissionModifications,
    TagSpecification,
};
use serde_json::json;
use time::{Duration, OffsetDateTime};

const HOME: &str = "us-east-1";
const DEPLOYMENT: &str = "ami-lifecycle";

static NEXT_NAME: AtomicU32 = AtomicU32::new(1);

/// `TagSpecifications` for an image named `name` in `region` made "as the suite would":
/// this deployment's images and their snapshots sealed (the suite's seal key), anything
/// else (look-alikes, another deployment's) tagged as given, unsealed.
async fn specs(
    emu: &Emulator,
    region: &str,
    name: &str,
    tags: &[(String, String)],
) -> anyhow::Result<Vec<TagSpecification>> {
    let sealed = emu
        .sealed_tags(HOME, DEPLOYMENT, region, name, tags)
        .await?;
    Ok(EmulatorClient::tag_specifications(&sealed))
}

/// The lineage tags of a daily image of `instance` (a real instance id: the images are
/// made from it, so EC2's SourceInstanceId agrees) standing for the slot `days_ago` days
/// before `base`; `managed_by` None leaves the managed-by tag out (a look-alike).
fn lineage_tags(
    instance: &str,
    base: OffsetDateTime,
    days_ago: i64,
    managed_by: Option<&str>,
) -> Vec<(String, String)> {
    let slot = slot_of(base - Duration::days(days_ago));
    let mut tags = vec![
        (key::SOURCE_INSTANCE.to_owned(), instance.to_owned()),
        (key::SCHEDULE.to_owned(), "daily".to_owned()),
        (key::SLOT.to_owned(), rfc3339(slot)),
    ];
    if let Some(m) = managed_by {
        tags.push((key::MANAGED_BY.to_owned(), m.to_owned()));
    }
    tags
}

/// CreateImage from `from` (a running instance), tagged (and, if this deployment's,
/// sealed) at creation (image and snapshots).
async fn create(
    emu: &Emulator,
    region: &str,
    from: &str,
    tags: &[(String, String)],
) -> anyhow::Result<String> {
    create_as(emu, region, from, tags, true).await
}

/// [`create`], sealed as the suite would (`seal`) or with `tags` exactly as given (a
/// forgery: whoever can tag can write managed-by, or copy another image's seal tag).
async fn create_as(
    emu: &Emulator,
    region: &str,
    from: &str,
    tags: &[(String, String)],
    seal: bool,
) -> anyhow::Result<String> {
    let slot = tags
        .iter()
        .find(|(k, _)| k == key::SLOT)
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let compact = ami_core::time_util::parse_rfc3339(&slot)
        .map(slot_compact)
        .unwrap_or_default();
    let name = format!(
        "ami-lifecycle/web/daily/{compact}-{}",
        NEXT_NAME.fetch_add(1, Ordering::Relaxed)
    );
    let specs = if seal {
        specs(emu, region, &name, tags).await?
    } else {
        EmulatorClient::tag_specifications(&ami_sim::SealedTags {
            image: tags.to_vec(),
            snapshot: tags.to_vec(),
        })
    };
    let out = emu
        .ec2(region)
        .create_image()
        .instance_id(from)
        .name(name)
        .no_reboot(true)
        .set_tag_specifications(Some(specs))
        .send()
        .await
        .context("CreateImage")?;
    out.image_id().map(str::to_owned).context("no image id")
}

/// CopyImage of `source` (in HOME) into `region`, with the same lineage tags and the real
/// source, sealed as replicate seals its copies.
async fn replicate(
    emu: &Emulator,
    region: &str,
    source: &str,
    tags: &[(String, String)],
) -> anyhow::Result<String> {
    let mut tags = tags.to_vec();
    tags.push((key::SOURCE_IMAGE.to_owned(), source.to_owned()));
    tags.push((key::SOURCE_REGION.to_owned(), HOME.to_owned()));
    let name = format!("ami-lifecycle/replica/{source}");
    let specs = specs(emu, region, &name, &tags).await?;
    let out = emu
        .ec2(region)
        .copy_image()
        .source_image_id(source)
        .source_region(HOME)
        .name(name)
        .client_token(format!("{source}-{region}"))
        .set_tag_specifications(Some(specs))
        .send()
        .await
        .context("CopyImage")?;
    out.image_id().map(str::to_owned).context("no copy id")
}

/// Every image this account owns in `region` (disabled included) with its snapshot ids.
async fn images(emu: &Emulator, region: &str) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let out = emu
        .ec2(region)
        .describe_images()
        .owners("self")
        .include_disabled(true)
        .send()
        .await
        .context("DescribeImages")?;
    Ok(out
        .images()
        .iter()
        .filter_map(|i| {
            let snaps = i
                .block_device_mappings()
                .iter()
                .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
                .collect();
            Some((i.image_id()?.to_owned(), snaps))
        })
        .collect())
}

async fn snapshots(emu: &Emulator, region: &str) -> anyhow::Result<BTreeSet<String>> {
    let out = emu
        .ec2(region)
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .context("DescribeSnapshots")?;
    Ok(out
        .snapshots()
        .iter()
        .filter_map(|s| s.snapshot_id().map(str::to_owned))
        .collect())
}

fn counter(emu: &Emulator, region: &str, action: &str) -> anyhow::Result<u64> {
    Ok(emu.counters()?["calls"][region][action]
        .as_u64()
        .unwrap_or(0))
}

fn mutating_calls(emu: &Emulator, regions: &[&str]) -> anyhow::Result<u64> {
    let mut n = 0;
    for r in regions {
        for a in [
            "DeregisterImage",
            "EnableImageDeprecation",
            "DeleteSnapshot",
            "CreateTags",
            "DeleteTags",
            "ModifyImageAttribute",
        ] {
            n += counter(emu, r, a)?;
        }
    }
    Ok(n)
}

fn item<'a>(report: &'a RunReport, subject: &str) -> anyhow::Result<(Outcome, &'a str)> {
    report
        .items
        .iter()
        .find(|i| i.subject == subject)
        .map(|i| (i.outcome, i.reason.as_str()))
        .with_context(|| format!("{subject} is not in the report"))
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).clone()).collect()
}

/// After a run: no snapshot of a deleted image is left unless a remaining image uses it.
async fn no_orphans_of(
    emu: &Emulator,
    region: &str,
    before: &BTreeMap<String, Vec<String>>,
) -> anyhow::Result<()> {
    let after = images(emu, region).await?;
    let snaps = snapshots(emu, region).await?;
    let used: BTreeSet<&String> = after.values().flatten().collect();
    for (id, disks) in before.iter().filter(|(id, _)| !after.contains_key(*id)) {
        for s in disks {
            anyhow::ensure!(
                !snaps.contains(s) || used.contains(s),
                "snapshot {s} of deleted {id} left behind in {region}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_mixed_inventory_loses_exactly_what_the_rules_say() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let base = OffsetDateTime::now_utc();
    let ec2 = emu.ec2(HOME);
    let web = emu.launch_instance(HOME, &[("Name", "web")], &[]).await?;
    let tags = |d: i64| lineage_tags(&web, base, d, Some(DEPLOYMENT));

    // GIVEN a lineage of 12 managed daily images in HOME (a0 newest … a11 oldest) …
    let mut a = Vec::new();
    for d in 0..11 {
        a.push(create(&emu, HOME, &web, &tags(d)).await?);
    }
    let mut keep_tags = tags(11);
    keep_tags.push((key::KEEP.to_owned(), "true".to_owned()));
    a.push(create(&emu, HOME, &web, &keep_tags).await?);
    // … unmanaged look-alikes: same lineage tags without managed-by, or another deployment's …
    let lookalike = create(&emu, HOME, &web, &lineage_tags(&web, base, 20, None)).await?;
    let other_deployment = create(
        &emu,
        HOME,
        &web,
        &lineage_tags(&web, base, 21, Some("other-deployment")),
    )
    .await?;
    // … and forgeries of this deployment's images: managed-by written by hand without a
    // seal, and a seal tag copied from a9 (a seal binds its image's name: it does not verify
    // on another image) …
    let forged = create_as(
        &emu,
        HOME,
        &web,
        &lineage_tags(&web, base, 22, Some(DEPLOYMENT)),
        false,
    )
    .await?;
    let a9_seal = ec2
        .describe_images()
        .image_ids(&a[9])
        .send()
        .await
        .context("DescribeImages a9")?
        .images()
        .first()
        .and_then(|i| i.tags().iter().find(|t| t.key() == Some(key::SEAL)))
        .and_then(|t| t.value())
        .map(str::to_owned)
        .context("a9 is sealed")?;
    let mut stolen_tags = tags(9);
    stolen_tags.push((key::SEAL.to_owned(), a9_seal));
    let stolen_seal = create_as(&emu, HOME, &web, &stolen_tags, false).await?;
    // … replicas of a0..a3 in eu-west-1 and of a0..a2 in us-west-2 (retained per region) …
    let mut eu = Vec::new();
    for (d, src) in a.iter().take(4).enumerate() {
        eu.push(replicate(&emu, "eu-west-1", src, &tags(d as i64)).await?);
    }
    let mut usw = Vec::new();
    for (d, src) in a.iter().take(3).enumerate() {
        usw.push(replicate(&emu, "us-west-2", src, &tags(d as i64)).await?);
    }
    emu.tick()?;
    // … a2 used by an instance (launched long ago), a3 by a NON-default launch template version …
    ec2.run_instances()
        .image_id(&a[2])
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .context("RunInstances")?;
    let long_ago = rfc3339(base - Duration::days(60));
    emu.control(
        "POST",
        &format!("/_emulator/images/{}/last-launched", a[2]),
        Some(json!({"time": long_ago})),
    )?;
    let lt = emu
        .launch_template_referencing(HOME, "app", &emu.base_image(HOME).await?, &a[3])
        .await?;
    // … a4 launched 2 days ago, a5 protected, a6 shared, a7 disabled …
    let recent = rfc3339(base - Duration::days(2));
    emu.control(
        "POST",
        &format!("/_emulator/images/{}/last-launched", a[4]),
        Some(json!({"time": recent})),
    )?;
    ec2.enable_image_deregistration_protection()
        .image_id(&a[5])
        .send()
        .await
        .context("protect")?;
    let share = LaunchPermissionModifications::builder()
        .add(LaunchPermission::builder().user_id(OTHER_ACCOUNT).build())
        .build();
    ec2.modify_image_attribute()
        .image_id(&a[6])
        .launch_permission(share)
        .send()
        .await
        .context("share")?;
    ec2.disable_image()
        .image_id(&a[7])
        .send()
        .await
        .context("DisableImage")?;
    // … a8's snapshot also used by a hand-registered image …
    let before = images(&emu, HOME).await?;
    let a8_snap = before
        .get(&a[8])
        .and_then(|s| s.first())
        .cloned()
        .context("a8 has a snapshot")?;
    let hand_made = ec2
        .register_image()
        .name("hand-made-from-a8")
        .root_device_name("/dev/xvda")
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(EbsBlockDevice::builder().snapshot_id(&a8_snap).build())
                .build(),
        )
        .send()
        .await
        .context("RegisterImage")?
        .image_id()
        .map(str::to_owned)
        .context("no id")?;
    // … and a12, still pending, older than anything retention keeps.
    emu.configure(json!({"pending_seconds": 3600}))?;
    a.push(create(&emu, HOME, &web, &tags(12)).await?);

    let before = images(&emu, HOME).await?;
    let before_eu = images(&emu, "eu-west-1").await?;
    let before_usw = images(&emu, "us-west-2").await?;
    let config = emu.config(&[
        ("AMI_LIFECYCLE_REGIONS", HOME),
        ("REPLICA_REGIONS", "eu-west-1,us-west-2"),
        ("RETAIN", "count=2"),
        ("KEEP_IF_LAUNCHED_WITHIN", "14"),
    ]);
    let regions = [HOME, "eu-west-1", "us-west-2"];

    // WHEN a dry run plans: nothing changes, and the plan names the seven to go.
    let mut dry_config = config.clone();
    dry_config.dry_run = true;
    emu.control("POST", "/_emulator/counters/reset", None)?;
    let plan = run(&emu.context(dry_config), CleanupRequest::default(), base).await;
    assert_eq!(
        mutating_calls(&emu, &regions)?,
        0,
        "a dry run makes no mutating call"
    );
    assert_eq!(plan.count(Outcome::Planned), 7, "{}", plan.render_table());
    assert_eq!(images(&emu, HOME).await?, before);

    // WHEN cleanup runs for real
    emu.control("POST", "/_emulator/counters/reset", None)?;
    let ctx = emu.context(config.clone());
    let report = ctx
        .finish(run(&ctx, CleanupRequest::default(), base).await)
        .await;

    // THEN exactly a7 (disabled), a8, a9, a10 go in HOME; eu-west-1 keeps 2 of 4, us-west-2 2 of 3.
    let after = images(&emu, HOME).await?;
    let gone: BTreeSet<String> = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    assert_eq!(
        gone,
        set(&[&a[7], &a[8], &a[9], &a[10]]),
        "{}",
        report.render_table()
    );
    assert!(
        after.contains_key(&lookalike)
            && after.contains_key(&other_deployment)
            && after.contains_key(&hand_made)
            && after.contains_key(&forged)
            && after.contains_key(&stolen_seal)
    );
    let eu_after = images(&emu, "eu-west-1").await?;
    assert_eq!(
        eu_after.keys().cloned().collect::<BTreeSet<_>>(),
        set(&[&eu[0], &eu[1]]),
        "replicas have their own retention"
    );
    let usw_after = images(&emu, "us-west-2").await?;
    assert_eq!(
        usw_after.keys().cloned().collect::<BTreeSet<_>>(),
        set(&[&usw[0], &usw[1]])
    );

    // AND one DeregisterImage per deleted image, nothing else mutating.
    let deleted = report.count(Outcome::Deleted) as u64;
    assert_eq!(deleted, 7);
    assert_eq!(mutating_calls(&emu, &regions)?, deleted);

    // AND every kept image says why.
    for (id, words) in [
        (&a[0], "newest of its lineage"),
        (&a[1], "within the newest 2"),
        (&a[2], "ec2:Instance"),
        (&a[3], lt.as_str()),
        (&a[4], "KEEP_IF_LAUNCHED_WITHIN=14"),
        (&a[5], "deregistration protection"),
        (&a[6], "shared with 111122223333"),
        (&a[11], "ami-lifecycle:keep=true"),
        (&a[12], "pending"),
    ] {
        let (outcome, reason) = item(&report, id)?;
        assert_eq!(outcome, Outcome::Kept, "{id}: {reason}");
        assert!(reason.contains(words), "{id}: {reason:?} lacks {words:?}");
    }
    assert!(
        item(&report, &lookalike).is_err() && item(&report, &other_deployment).is_err(),
        "look-alikes are invisible"
    );
    // AND the forgeries are reported unsealed, never deleted (nor deprecated: no mutating
    // call was made but the deregistrations above).
    for id in [&forged, &stolen_seal] {
        let (outcome, reason) = item(&report, id)?;
        assert_eq!(outcome, Outcome::Unsealed, "{id}: {reason}");
        assert!(
            reason.contains("not provably this deployment's"),
            "{id}: {reason}"
        );
    }
    assert_eq!(
        report.count(Outcome::Unsealed),
        2,
        "{}",
        report.render_table()
    );

    // AND a8's snapshot is kept (reported), the others' snapshots are gone: no orphan left.
    let (outcome, reason) = item(&report, &a8_snap)?;
    assert_eq!(outcome, Outcome::Kept);
    assert!(reason.contains("another image still uses it"), "{reason}");
    assert!(snapshots(&emu, HOME).await?.contains(&a8_snap));
    no_orphans_of(&emu, HOME, &before).await?;
    no_orphans_of(&emu, "eu-west-1", &before_eu).await?;
    no_orphans_of(&emu, "us-west-2", &before_usw).await?;
    assert_eq!(
        report.metrics.get("gib_freed"),
        Some(&(8.0 * 6.0)),
        "a7, a9, a10 and three replicas; a8's snapshot stays"
    );

    // AND a second run changes nothing.
    let again = run(&ctx, CleanupRequest::default(), base).await;
    assert_eq!(again.count(Outcome::Deleted), 0, "{}", again.render_table());
    Ok(())
}

/// A lineage of `n` managed (sealed) images of a new instance named `instance` in HOME;
/// returns them newest first.
async fn lineage(
    emu: &Emulator,
    instance: &str,
    n: i64,
    base: OffsetDateTime,
) -> anyhow::Result<Vec<String>> {
    let from = emu
        .launch_instance(HOME, &[("Name", instance)], &[])
        .await?;
    let mut out = Vec::new();
    for d in 0..n {
        out.push(
            create(
                emu,
                HOME,
                &from,
                &lineage_tags(&from, base, d, Some(DEPLOYMENT)),
            )
            .await?,
        );
    }
    emu.tick()?;
    Ok(out)
}

async fn converges(
    emu: &Emulator,
    ctx: &Context,
    lineages: &[&[String]],
    keep: usize,
    base: OffsetDateTime,
) -> anyhow::Result<()> {
    let report = run(ctx, CleanupRequest::default(), base).await;
    assert!(report.incomplete.is_none(), "{}", report.render_table());
    let left = images(emu, HOME).await?;
    for ids in lineages {
        let kept: BTreeSet<String> = ids
            .iter()
            .filter(|i| left.contains_key(*i))
            .cloned()
            .collect();
        assert_eq!(
            kept,
            ids.iter().take(keep).cloned().collect::<BTreeSet<_>>(),
            "{}",
            report.render_table()
        );
    }
    let snaps = snapshots(emu, HOME).await?;
    let used: BTreeSet<&String> = left.values().flatten().collect();
    assert!(
        snaps.iter().all(|s| used.contains(s)),
        "no orphan snapshot left: {snaps:?}"
    );
    Ok(())
}

#[tokio::test]
async fn runs_cut_short_converge_when_re_run() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let base = OffsetDateTime::now_utc();
    let web = lineage(&emu, "i-web", 10, base).await?;
    let api = lineage(&emu, "i-api", 10, base).await?;
    let ctx = emu.context(emu.config(&[("RETAIN", "count=2")]));

    // A deadline already near: reads, plans, changes nothing, says so.
    emu.control("POST", "/_emulator/counters/reset", None)?;
    let near = ctx.clone().with_deadline(Deadline::after(
        StdDuration::ZERO,
        StdDuration::from_secs(10),
    ));
    let report = run(&near, CleanupRequest::default(), base).await;
    assert!(report.incomplete.is_some());
    assert_eq!(report.count(Outcome::Deferred), 16);
    assert_eq!(mutating_calls(&emu, &[HOME])?, 0);

    // A hard stop mid-run (the Lambda timeout): slow calls, the run future dropped.
    emu.configure(json!({"latency_ms": 100}))?;
    let cut = tokio::time::timeout(
        StdDuration::from_millis(3000),
        run(&ctx, CleanupRequest::default(), base),
    )
    .await;
    emu.configure(json!({"latency_ms": 0}))?;
    let done = counter(&emu, HOME, "DeregisterImage")?;
    eprintln!(
        "hard stop: finished={} after {done} DeregisterImage calls",
        cut.is_ok()
    );

    // A crash after EC2 applied a DeregisterImage (the answer lost, and the retry's too).
    emu.configure(json!({"crash": [
        {"action": "DeregisterImage", "nth": 1, "when": "after"},
        {"action": "DeregisterImage", "nth": 2, "when": "after"},
    ]}))?;
    let report = run(&ctx, CleanupRequest::default(), base).await;
    emu.configure(json!({"crash": []}))?;
    if done < 16 {
        // The lost answer surfaces either as a deferral (the retry failed too) or, when the
        // retry reached EC2 after the deregistration, as "already gone": both are handled.
        let handled = report.count(Outcome::Deferred)
            + report
                .items
                .iter()
                .filter(|i| i.outcome == Outcome::Unchanged && i.reason.starts_with("already gone"))
                .count();
        assert!(handled >= 1, "{}", report.render_table());
    }

    // THEN the next run converges: exactly the two newest of each lineage remain, no orphan.
    converges(&emu, &ctx, &[&web[..], &api[..]], 2, base).await
}

#[tokio::test]
async fn staged_retirement_and_orphans() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let base = OffsetDateTime::now_utc();
    let ids = lineage(&emu, "i-web", 3, base).await?;
    // An orphan: a managed image deregistered by hand without its snapshots.
    let lost = lineage(&emu, "i-gone", 1, base - Duration::days(30)).await?;
    let lost_snaps = images(&emu, HOME)
        .await?
        .get(&lost[0])
        .cloned()
        .unwrap_or_default();
    emu.ec2(HOME)
        .deregister_image()
        .image_id(&lost[0])
        .send()
        .await
        .context("DeregisterImage by hand")?;
    let ctx = emu.context(emu.config(&[("RETAIN", "count=2"), ("DEPRECATION_GRACE", "7")]));

    // Two days later: the oldest is deprecated, not deregistered; the orphan is reported.
    let later = base + Duration::days(2);
    let report = run(&ctx, CleanupRequest::default(), later).await;
    assert_eq!(
        item(&report, &ids[2])?.0,
        Outcome::Deprecated,
        "{}",
        report.render_table()
    );
    let described = emu
        .ec2(HOME)
        .describe_images()
        .image_ids(&ids[2])
        .send()
        .await?;
    assert!(described
        .images()
        .first()
        .and_then(|i| i.deprecation_time())
        .is_some());
    for s in &lost_snaps {
        let (outcome, reason) = item(&report, s)?;
        assert_eq!(outcome, Outcome::Kept);
        assert!(reason.contains("DELETE_ORPHANS=true"), "{reason}");
    }

    // Within the grace: kept. After it: deregistered, and with DELETE_ORPHANS the orphan goes.
    let report = run(&ctx, CleanupRequest::default(), later + Duration::days(3)).await;
    assert!(item(&report, &ids[2])?
        .1
        .contains("deregistered on or after"));
    let ctx = emu.context(emu.config(&[
        ("RETAIN", "count=2"),
        ("DEPRECATION_GRACE", "7"),
        ("DELETE_ORPHANS", "true"),
    ]));
    let report = run(&ctx, CleanupRequest::default(), later + Duration::days(8)).await;
    assert_eq!(
        item(&report, &ids[2])?.0,
        Outcome::Deleted,
        "{}",
        report.render_table()
    );
    let snaps = snapshots(&emu, HOME).await?;
    assert!(
        lost_snaps.iter().all(|s| !snaps.contains(s)),
        "orphan deleted"
    );
    let filter = Filter::builder()
        .name(format!("tag:{}", key::MANAGED_BY))
        .values(DEPLOYMENT)
        .build();
    let left = emu
        .ec2(HOME)
        .describe_images()
        .owners("self")
        .filters(filter)
        .send()
        .await?;
    assert_eq!(left.images().len(), 2);
    Ok(())
}

/// A launch template of `versions` versions: the first (oldest) uses `pinned`, every later
/// one `current`. With more than 10 versions AWS's default reference check (the 10 newest)
/// would not see `pinned`.
async fn deep_launch_template(
    emu: &Emulator,
    name: &str,
    pinned: &str,
    current: &str,
    versions: usize,
) -> anyhow::Result<String> {
    use aws_sdk_ec2::types::RequestLaunchTemplateData;
    let ec2 = emu.ec2(HOME);
    let data = |image: &str| RequestLaunchTemplateData::builder().image_id(image).build();
    let lt = ec2
        .create_launch_template()
        .launch_template_name(name)
        .launch_template_data(data(pinned))
        .send()
        .await
        .context("CreateLaunchTemplate")?;
    let id = lt
        .launch_template()
        .and_then(|t| t.launch_template_id())
        .context("no launch template id")?
        .to_owned();
    for _ in 1..versions {
        ec2.create_launch_template_version()
            .launch_template_id(&id)
            .launch_template_data(data(current))
            .send()
            .await
            .context("CreateLaunchTemplateVersion")?;
    }
    Ok(id)
}

#[tokio::test]
async fn more_than_ten_candidates_are_checked_and_the_oldest_template_version_still_counts(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let base = OffsetDateTime::now_utc();
    // GIVEN 16 images of one lineage, RETAIN=count=2: 14 candidates in one region, more than
    // one DescribeImageReferences call can take (10 ids) …
    let images_of_web = lineage(&emu, "i-web", 16, base).await?;
    let (newest, candidates) = images_of_web.split_at(2);
    // … and one candidate pinned only by version 1 of a 12-version launch template.
    let pinned = &candidates[5];
    let lt = deep_launch_template(&emu, "deep", pinned, &newest[0], 12).await?;
    let before = images(&emu, HOME).await?;
    let ctx = emu.context(emu.config(&[("RETAIN", "count=2")]));

    // WHEN cleanup runs
    let report = run(&ctx, CleanupRequest::default(), base).await;

    // THEN every other candidate is deleted, the pinned one kept with its reference named.
    let table = report.render_table();
    assert!(report.incomplete.is_none(), "{table}");
    assert_eq!(report.count(Outcome::Failed), 0, "{table}");
    let left = images(&emu, HOME).await?;
    let expected: BTreeSet<String> = newest.iter().chain([pinned]).cloned().collect();
    let remaining: BTreeSet<String> = images_of_web
        .iter()
        .filter(|i| left.contains_key(*i))
        .cloned()
        .collect();
    assert_eq!(remaining, expected, "{table}");
    assert_eq!(
        report.count(Outcome::Deleted),
        candidates.len() - 1,
        "{table}"
    );
    let (outcome, reason) = item(&report, pinned)?;
    assert_eq!(outcome, Outcome::Kept, "{table}");
    assert!(
        reason.contains(&lt),
        "the reason names the template: {reason}"
    );
    // Each DescribeImageReferences call carried at most 10 ids: the strict emulator refuses
    // more, which would have left every candidate kept as a failed check.
    assert!(counter(&emu, HOME, "DescribeImageReferences")? >= 2);
    no_orphans_of(&emu, HOME, &before).await
}

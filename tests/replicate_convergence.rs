//! replicate converges against the emulator (issue 15): a lost or failed copy is made again
//! while retention keeps its source (newest or not), never once it does not; retention per
//! destination region; copy deadlines.

use ami_core::context::Context;
use ami_core::model::{ImageId, Region};
use ami_core::replicate::plan::ATTEMPT;
use ami_core::replicate::{run, Request};
use ami_core::report::{Outcome, RunReport};
use ami_core::tags::key;
use ami_core::time_util::rfc3339;
use ami_sim::{Emulator, EmulatorClient};
use anyhow::Context as _;
use aws_sdk_ec2::types::{Filter, Image};
use serde_json::json;
use time::OffsetDateTime;

use crate::common::{describe, tag, wait_state};

const DEPLOYMENT: &str = "ami-lifecycle";
const HOME: &str = "us-east-1";
const DR: &str = "eu-west-1";

/// A lineage of `days` sealed daily images of one fresh instance in `region`, oldest first
/// (slots 1, 2, … days ago), each with `extra` tags.
async fn lineage(
    emu: &Emulator,
    region: &str,
    days: i64,
    extra: &[(&str, &str)],
) -> anyhow::Result<Vec<String>> {
    let instance = emu
        .launch_instance(region, &[("Name", "web")], &["/dev/sdf"])
        .await?;
    let mut ids = Vec::new();
    for ago in (1..=days).rev() {
        let slot = OffsetDateTime::now_utc() - time::Duration::days(ago);
        let mut tags: Vec<(String, String)> = [
            (key::MANAGED_BY, DEPLOYMENT.to_owned()),
            (key::SCHEDULE, "daily".to_owned()),
            (key::SLOT, rfc3339(slot)),
            (key::SOURCE_INSTANCE, instance.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        tags.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let name = format!("{DEPLOYMENT}/{instance}/daily/{}", ago);
        let sealed = emu
            .sealed_tags(HOME, DEPLOYMENT, region, &name, &tags)
            .await?;
        let id = emu
            .ec2(region)
            .create_image()
            .instance_id(&instance)
            .name(&name)
            .no_reboot(true)
            .set_tag_specifications(Some(EmulatorClient::tag_specifications(&sealed)))
            .send()
            .await
            .context("CreateImage")?
            .image_id()
            .context("no image id")?
            .to_owned();
        wait_state(emu, region, &id, "available").await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Our copies in `region`, any state but deregistered.
async fn copies(emu: &Emulator, region: &str) -> anyhow::Result<Vec<Image>> {
    let out = emu
        .ec2(region)
        .describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name("tag-key")
                .values(key::SOURCE_IMAGE)
                .build(),
        )
        .send()
        .await
        .context("DescribeImages")?;
    Ok(out
        .images()
        .iter()
        .filter(|i| i.state().map(|s| s.as_str()) != Some("deregistered"))
        .cloned()
        .collect())
}

/// The sources of the copies in `region`, sorted.
async fn copied_sources(emu: &Emulator, region: &str) -> anyhow::Result<Vec<String>> {
    let mut s: Vec<String> = copies(emu, region)
        .await?
        .iter()
        .filter_map(|c| tag(c, key::SOURCE_IMAGE).map(str::to_owned))
        .collect();
    s.sort();
    Ok(s)
}

/// The copy of `source` in `region`.
async fn copy_of(emu: &Emulator, region: &str, source: &str) -> anyhow::Result<Image> {
    copies(emu, region)
        .await?
        .into_iter()
        .find(|c| tag(c, key::SOURCE_IMAGE) == Some(source))
        .with_context(|| format!("no copy of {source} in {region}"))
}

async fn settle(emu: &Emulator, region: &str) -> anyhow::Result<()> {
    for c in copies(emu, region).await? {
        wait_state(emu, region, c.image_id().unwrap_or_default(), "available").await?;
    }
    Ok(())
}

async fn go(ctx: &Context, request: Request) -> RunReport {
    ctx.finish(run(ctx, request, OffsetDateTime::now_utc()).await)
        .await
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn a_lost_copy_of_a_kept_source_that_is_not_the_newest_is_copied_again() -> anyhow::Result<()>
{
    // GIVEN RETAIN=count=2 and a lineage of three daily images, replicated to DR
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[("REPLICA_REGIONS", DR), ("RETAIN", "count=2")]));
    let ids = lineage(&emu, HOME, 3, &[]).await?;
    let (old, mid, new) = (&ids[0], &ids[1], &ids[2]);
    let r = go(&ctx, Request::Reconcile).await;
    assert_eq!(r.count(Outcome::Copied), 2, "{}", r.render_table());
    settle(&emu, DR).await?;
    assert_eq!(
        copied_sources(&emu, DR).await?,
        sorted(vec![mid.clone(), new.clone()]),
        "only what retention keeps is copied"
    );

    // WHEN the copy of the kept, not newest, image is lost (deregistered in DR)
    let lost = copy_of(&emu, DR, mid).await?;
    let lost_id = lost.image_id().context("no id")?.to_owned();
    emu.ec2(DR)
        .deregister_image()
        .image_id(&lost_id)
        .send()
        .await
        .context("DeregisterImage")?;
    let r = go(&ctx, Request::Reconcile).await;

    // THEN the reconcile copies it again (a fresh copy, not the lost one's id back from
    // the spent ClientToken), and still not the image retention no longer keeps
    assert_eq!(
        (r.count(Outcome::Copied), r.count(Outcome::AlreadyExisted)),
        (1, 1),
        "{}",
        r.render_table()
    );
    settle(&emu, DR).await?;
    let again = copy_of(&emu, DR, mid).await?;
    assert_ne!(again.image_id(), Some(lost_id.as_str()));
    assert_eq!(
        copied_sources(&emu, DR).await?,
        sorted(vec![mid.clone(), new.clone()])
    );
    // AND a second reconcile finds everything in place
    let r = go(&ctx, Request::Reconcile).await;
    assert_eq!(
        (r.count(Outcome::Copied), r.count(Outcome::AlreadyExisted)),
        (0, 2),
        "{}",
        r.render_table()
    );

    // AND the one-image path judges the image within its lineage too: the image retention
    // no longer keeps is not copied (it used to be: alone, every image is the newest)
    let r = go(
        &ctx,
        Request::Image {
            image: ImageId::new(old.as_str()),
            region: Some(Region::new(HOME)),
            from_event: false,
        },
    )
    .await;
    assert_eq!(r.count(Outcome::Copied), 0, "{}", r.render_table());
    assert!(
        r.items
            .iter()
            .any(|i| i.subject == *old && i.reason.contains("retention rule")),
        "{}",
        r.render_table()
    );
    assert!(!copied_sources(&emu, DR).await?.contains(old));
    Ok(())
}

#[tokio::test]
async fn a_failed_copy_of_a_kept_source_that_is_not_the_newest_is_copied_again(
) -> anyhow::Result<()> {
    // GIVEN RETAIN=count=2, a lineage of three, and the copy of the middle one failing
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[("REPLICA_REGIONS", DR), ("RETAIN", "count=2")]));
    let ids = lineage(&emu, HOME, 3, &[]).await?;
    let mid = &ids[1];
    emu.configure(json!({"pending_seconds": 3600}))?;
    go(&ctx, Request::Reconcile).await;
    let failing = copy_of(&emu, DR, mid).await?;
    let failing_id = failing.image_id().context("no id")?.to_owned();
    emu.control(
        "POST",
        &format!("/_emulator/images/{failing_id}/fail"),
        Some(json!({"message": "snapshot copy failed"})),
    )?;
    emu.configure(json!({"pending_seconds": 0}))?;

    // WHEN its failed event is handled
    let r = go(
        &ctx,
        Request::FailedCopy {
            image: ImageId::new(failing_id.as_str()),
            region: Region::new(DR),
            error: Some("snapshot copy failed".to_owned()),
        },
    )
    .await;

    // THEN it is copied again (attempt 2) and the failed copy removed
    assert_eq!(
        (r.count(Outcome::Copied), r.count(Outcome::Deleted)),
        (1, 1),
        "{}",
        r.render_table()
    );
    let again = copy_of(&emu, DR, mid).await?;
    assert_ne!(again.image_id(), Some(failing_id.as_str()));
    assert_eq!(tag(&again, ATTEMPT), Some("2"));
    assert!(
        describe(&emu, DR, &failing_id)
            .await?
            .is_none_or(|i| i.state().map(|s| s.as_str()) == Some("deregistered")),
        "the failed copy is removed"
    );
    Ok(())
}

/// One more daily image of the lineage `of` (an image of it) in `region`, for the slot
/// `hours_ago` hours back.
async fn next_image(
    emu: &Emulator,
    region: &str,
    of: &str,
    hours_ago: i64,
) -> anyhow::Result<String> {
    let source = describe(emu, region, of).await?.context("no source")?;
    let instance = tag(&source, key::SOURCE_INSTANCE)
        .context("no source-instance")?
        .to_owned();
    let slot = OffsetDateTime::now_utc() - time::Duration::hours(hours_ago);
    let tags: Vec<(String, String)> = [
        (key::MANAGED_BY, DEPLOYMENT.to_owned()),
        (key::SCHEDULE, "daily".to_owned()),
        (key::SLOT, rfc3339(slot)),
        (key::SOURCE_INSTANCE, instance.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let name = format!("{DEPLOYMENT}/{instance}/daily/h{hours_ago}");
    let sealed = emu
        .sealed_tags(HOME, DEPLOYMENT, region, &name, &tags)
        .await?;
    let id = emu
        .ec2(region)
        .create_image()
        .instance_id(&instance)
        .name(&name)
        .no_reboot(true)
        .set_tag_specifications(Some(EmulatorClient::tag_specifications(&sealed)))
        .send()
        .await
        .context("CreateImage")?
        .image_id()
        .context("no image id")?
        .to_owned();
    wait_state(emu, region, &id, "available").await?;
    Ok(id)
}

async fn cleanup_in(ctx: &Context, region: &str) -> RunReport {
    let request = ami_core::cleanup::CleanupRequest {
        regions: vec![Region::new(region)],
        dry_run: false,
    };
    ctx.finish(ami_core::cleanup::run(ctx, request, OffsetDateTime::now_utc()).await)
        .await
}

fn retired(r: &RunReport) -> usize {
    r.count(Outcome::Deleted) + r.count(Outcome::Deprecated) + r.count(Outcome::Disabled)
}

#[tokio::test]
async fn a_dr_region_keeps_its_own_count_and_replicate_and_cleanup_agree_there(
) -> anyhow::Result<()> {
    // GIVEN RETAIN=count=3, the DR region keeping one (RETAIN_BY_REGION), us-west-2 the
    // default, and a lineage of three
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[
        ("REPLICA_REGIONS", "eu-west-1,us-west-2"),
        ("RETAIN", "count=3"),
        ("RETAIN_BY_REGION", "eu-west-1=count=1"),
        ("DEPRECATION_GRACE", "0"),
    ]));
    let ids = lineage(&emu, HOME, 3, &[]).await?;

    // WHEN the reconcile runs
    let r = go(&ctx, Request::Reconcile).await;

    // THEN us-west-2 gets all three, the DR region only the newest
    assert_eq!(r.count(Outcome::Copied), 4, "{}", r.render_table());
    settle(&emu, DR).await?;
    settle(&emu, "us-west-2").await?;
    assert_eq!(copied_sources(&emu, DR).await?, vec![ids[2].clone()]);
    assert_eq!(
        copied_sources(&emu, "us-west-2").await?,
        sorted(ids.clone())
    );
    // AND cleanup in the DR region retires none of what replicate just made
    let c = cleanup_in(&ctx, DR).await;
    assert_eq!(retired(&c), 0, "{}", c.render_table());

    // WHEN a newer image is made, replicated, and cleanup runs in the DR region
    let newer = next_image(&emu, HOME, &ids[2], 1).await?;
    let r = go(&ctx, Request::Reconcile).await;
    assert_eq!(r.count(Outcome::Copied), 2, "{}", r.render_table());
    settle(&emu, DR).await?;
    settle(&emu, "us-west-2").await?;
    let c = cleanup_in(&ctx, DR).await;

    // THEN the DR region's older copy is retired there (the newest kept, its rule named),
    // and the next reconcile does not copy it back: no copy-then-delete loop
    let older = copy_of(&emu, DR, &ids[2]).await.ok();
    let older_id = older.as_ref().and_then(|i| i.image_id()).map(str::to_owned);
    let item = |id: &str| c.items.iter().find(|i| i.subject == id).map(|i| i.outcome);
    let newer_copy = copy_of(&emu, DR, &newer).await?;
    assert_eq!(
        item(newer_copy.image_id().unwrap_or_default()),
        Some(Outcome::Kept),
        "{}",
        c.render_table()
    );
    assert!(
        c.items
            .iter()
            .any(|i| i.reason.contains("count=1 (RETAIN_BY_REGION eu-west-1)")),
        "{}",
        c.render_table()
    );
    if let Some(old) = older_id {
        // Not retired in this run (a guard deferred it): it is still due, never kept.
        assert_ne!(item(&old), Some(Outcome::Kept), "{}", c.render_table());
        assert_eq!(retired(&c), 0, "{}", c.render_table());
        emu.ec2(DR)
            .deregister_image()
            .image_id(&old)
            .send()
            .await
            .context("DeregisterImage")?;
    } else {
        assert_eq!(retired(&c), 1, "{}", c.render_table());
    }
    assert_eq!(copied_sources(&emu, DR).await?, vec![newer.clone()]);
    let r = go(&ctx, Request::Reconcile).await;
    assert_eq!(r.count(Outcome::Copied), 0, "{}", r.render_table());
    assert_eq!(copied_sources(&emu, DR).await?, vec![newer.clone()]);

    // AND one image asked about alone is judged the same way: not copied to the DR
    // region, saying which rule
    let r = go(
        &ctx,
        Request::Image {
            image: ImageId::new(ids[2].as_str()),
            region: Some(Region::new(HOME)),
            from_event: true,
        },
    )
    .await;
    assert_eq!(r.count(Outcome::Copied), 0, "{}", r.render_table());
    assert!(
        r.items.iter().any(|i| i.region.as_str() == DR
            && i.reason.contains("count=1 (RETAIN_BY_REGION eu-west-1)")),
        "{}",
        r.render_table()
    );
    Ok(())
}

#[tokio::test]
async fn the_retain_in_tag_on_the_newest_image_gives_a_region_its_own_rule() -> anyhow::Result<()> {
    // GIVEN RETAIN=count=3 and a lineage whose images say the DR region keeps two
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[("REPLICA_REGIONS", DR), ("RETAIN", "count=3")]));
    let ids = lineage(&emu, HOME, 3, &[(key::RETAIN_IN, "eu-west-1=count=2")]).await?;

    // WHEN the reconcile runs THEN the DR region gets the two newest, carrying the tag
    let r = go(&ctx, Request::Reconcile).await;
    assert_eq!(r.count(Outcome::Copied), 2, "{}", r.render_table());
    assert_eq!(
        copied_sources(&emu, DR).await?,
        sorted(vec![ids[1].clone(), ids[2].clone()])
    );
    let copy = copy_of(&emu, DR, &ids[2]).await?;
    assert_eq!(tag(&copy, key::RETAIN_IN), Some("eu-west-1=count=2"));
    settle(&emu, DR).await?;
    // AND cleanup there keeps both
    let c = cleanup_in(&ctx, DR).await;
    assert_eq!(retired(&c), 0, "{}", c.render_table());
    Ok(())
}

#[tokio::test]
async fn a_copy_still_pending_past_its_completion_duration_is_reported_late() -> anyhow::Result<()>
{
    // GIVEN COPY_COMPLETION_MINUTES=15 and copies that stay pending
    let emu = Emulator::start()?;
    let ctx =
        emu.context(emu.config(&[("REPLICA_REGIONS", DR), ("COPY_COMPLETION_MINUTES", "15")]));
    let ids = lineage(&emu, HOME, 1, &[]).await?;
    emu.configure(json!({"pending_seconds": 3600}))?;

    // WHEN the reconcile copies
    let r = go(&ctx, Request::Reconcile).await;
    assert_eq!(r.count(Outcome::Copied), 1, "{}", r.render_table());

    // THEN the copy was requested as a time-based copy (EC2 records the duration on its
    // snapshots) and carries its deadline
    let copy = copy_of(&emu, DR, &ids[0]).await?;
    assert_eq!(
        tag(&copy, ami_core::replicate::plan::COPY_WITHIN),
        Some("15")
    );
    let snaps: Vec<String> = copy
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_owned))
        .collect();
    anyhow::ensure!(!snaps.is_empty(), "the copy has no snapshots");
    let out = emu
        .ec2(DR)
        .describe_snapshots()
        .set_snapshot_ids(Some(snaps))
        .send()
        .await
        .context("DescribeSnapshots")?;
    for s in out.snapshots() {
        assert_eq!(s.completion_duration_minutes(), Some(15));
    }

    // AND a reconcile within the deadline finds it on its way, one past it reports it late
    let soon = ctx
        .finish(
            run(
                &ctx,
                Request::Reconcile,
                OffsetDateTime::now_utc() + time::Duration::minutes(5),
            )
            .await,
        )
        .await;
    assert_eq!(
        (
            soon.count(Outcome::AlreadyExisted),
            soon.count(Outcome::Late)
        ),
        (1, 0),
        "{}",
        soon.render_table()
    );
    let later = ctx
        .finish(
            run(
                &ctx,
                Request::Reconcile,
                OffsetDateTime::now_utc() + time::Duration::minutes(40),
            )
            .await,
        )
        .await;
    assert_eq!(later.count(Outcome::Late), 1, "{}", later.render_table());
    // (the report event's counts, which the -reports rule alarms on)
    assert_eq!(later.counts().get("late"), Some(&1));
    assert_eq!(
        later.count(Outcome::Copied),
        0,
        "a late copy is not copied again"
    );
    assert!(
        later.items.iter().any(|i| i.outcome == Outcome::Late
            && i.reason.contains("within 15 minutes")
            && i.image.as_ref().map(ImageId::as_str) == copy.image_id()),
        "{}",
        later.render_table()
    );
    Ok(())
}

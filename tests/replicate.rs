//! replicate against the emulator: whole flows as the Lambda function runs them (events
//! observed on the emulator's EventBridge, parsed, run, report finished).

use std::time::Duration;

use ami_core::context::Context;
use ami_core::events::parse_trigger;
use ami_core::replicate::plan::ATTEMPT;
use ami_core::replicate::{run, Request};
use ami_core::report::{Outcome, RunReport};
use ami_core::tags::key;
use ami_sim::{Emulator, EmulatorClient, ACCOUNT, OTHER_ACCOUNT};
use anyhow::Context as _;
use aws_sdk_ec2::types::{Filter, Image, LaunchPermission, LaunchPermissionModifications};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::common::{describe, tag, wait_state};

const SLOT: &str = "2026-11-22T03:00:00Z";
/// The deployment `emu.config` names (no `AMI_LIFECYCLE_NAME`), and its home region (the
/// first of `AMI_LIFECYCLE_REGIONS`), where its seal key is.
const DEPLOYMENT: &str = "ami-lifecycle";
const HOME: &str = "us-east-1";

fn managed_tags(instance: &str) -> Vec<(String, String)> {
    [
        (key::MANAGED_BY, "ami-lifecycle"),
        (key::SCHEDULE, "daily"),
        (key::SLOT, SLOT),
        (key::SOURCE_INSTANCE, instance),
        ("Name", "web"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// An available image of a fresh instance in `region`, with `extra` tags. A managed one is
/// made as create-image makes it: lineage tags naming the instance it really is an image
/// of, sealed (image and snapshots) with the deployment's key; an unmanaged one carries
/// only `extra`.
async fn image(
    emu: &Emulator,
    region: &str,
    name_tail: &str,
    managed: bool,
    extra: &[(&str, &str)],
) -> anyhow::Result<String> {
    let instance = emu
        .launch_instance(region, &[("Name", "web")], &["/dev/sdf"])
        .await?;
    let mut tags = if managed {
        managed_tags(&instance)
    } else {
        Vec::new()
    };
    tags.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let name = if managed {
        format!("ami-lifecycle/{instance}/daily/{name_tail}")
    } else {
        format!("golden-{name_tail}")
    };
    let mut req = emu
        .ec2(region)
        .create_image()
        .instance_id(&instance)
        .name(&name)
        .no_reboot(true);
    if !tags.is_empty() {
        // Tags without managed-by come back unchanged (unsealed).
        let sealed = emu
            .sealed_tags(HOME, DEPLOYMENT, region, &name, &tags)
            .await?;
        req = req.set_tag_specifications(Some(EmulatorClient::tag_specifications(&sealed)));
    }
    let id = req
        .send()
        .await
        .context("CreateImage")?
        .image_id()
        .context("no image id")?
        .to_owned();
    wait_state(emu, region, &id, "available").await?;
    Ok(id)
}

/// Our copies in `region` (images with a source-image tag), any state.
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
    Ok(out.images().to_vec())
}

/// The KMS keys of an image's snapshots.
async fn snapshot_keys(
    emu: &Emulator,
    region: &str,
    image: &Image,
) -> anyhow::Result<Vec<Option<String>>> {
    let ids: Vec<String> = image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_owned))
        .collect();
    anyhow::ensure!(!ids.is_empty(), "{:?} has no snapshots", image.image_id());
    let out = emu
        .ec2(region)
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

async fn run_event(ctx: &Context, event: &Value) -> anyhow::Result<RunReport> {
    let request = Request::from_trigger(parse_trigger(event)?, &ctx.config)?;
    Ok(ctx
        .finish(run(ctx, request, OffsetDateTime::now_utc()).await)
        .await)
}

async fn reconcile(ctx: &Context) -> RunReport {
    ctx.finish(run(ctx, Request::Reconcile, OffsetDateTime::now_utc()).await)
        .await
}

fn counts(report: &RunReport) -> String {
    report.render_table()
}

fn copy_calls(emu: &Emulator) -> anyhow::Result<u64> {
    let c = emu.counters()?;
    Ok(c["calls"]
        .as_object()
        .map(|regions| {
            regions
                .values()
                .filter_map(|r| r["CopyImage"].as_u64())
                .sum()
        })
        .unwrap_or(0))
}

fn ami_events() -> Value {
    json!({"source": ["aws.ec2"], "detail-type": ["EC2 AMI State Change"]})
}

/// Two destinations, each with its own replica key.
async fn two_destinations(emu: &Emulator) -> anyhow::Result<(Context, String, String)> {
    let eu = emu.create_key("eu-west-1", Some("alias/replicas")).await?;
    let us = emu.create_key("us-west-2", Some("alias/replicas")).await?;
    let config = emu.config(&[
        ("REPLICA_REGIONS", "eu-west-1,us-west-2"),
        (
            "REPLICA_KMS_KEYS",
            "eu-west-1=alias/replicas,us-west-2=alias/replicas",
        ),
    ]);
    Ok((emu.context(config), eu, us))
}

#[tokio::test]
async fn an_available_event_copies_to_each_destination_with_its_key_and_tags() -> anyhow::Result<()>
{
    // GIVEN two destinations with keys, and a sealed managed image (shared with another
    // account) whose available event we catch
    let emu = Emulator::start()?;
    let (ctx, eu_key, us_key) = two_destinations(&emu).await?;
    let queue = emu.event_queue("us-east-1", ami_events()).await?;
    let source = image(
        &emu,
        "us-east-1",
        "20261122T0300Z",
        true,
        &[(key::SHARE_WITH, OTHER_ACCOUNT)],
    )
    .await?;
    let source_seal = describe(&emu, "us-east-1", &source)
        .await?
        .and_then(|i| tag(&i, key::SEAL).map(str::to_owned))
        .context("the source is not sealed")?;
    let events = queue.wait_for(1, Duration::from_secs(5)).await?;
    let event = events
        .iter()
        .find(|e| e["detail"]["ImageId"] == source)
        .context("no available event for the source")?;

    // WHEN the function handles it
    let report = run_event(&ctx, event).await?;

    // THEN one copy per destination, re-encrypted with that region's key, with lineage tags
    // and its own seal, never the source's seal or share-with
    assert_eq!(
        (report.count(Outcome::Copied), report.failed()),
        (2, 0),
        "{}",
        counts(&report)
    );
    for (region, key_arn) in [("eu-west-1", &eu_key), ("us-west-2", &us_key)] {
        let found = copies(&emu, region).await?;
        assert_eq!(found.len(), 1, "{region}");
        let copy = &found[0];
        assert_eq!(copy.source_image_id(), Some(source.as_str()));
        assert_eq!(tag(copy, key::SOURCE_IMAGE), Some(source.as_str()));
        assert_eq!(tag(copy, key::SOURCE_REGION), Some("us-east-1"));
        assert_eq!(tag(copy, key::MANAGED_BY), Some("ami-lifecycle"));
        assert_eq!(tag(copy, key::SLOT), Some(SLOT));
        assert_eq!(tag(copy, key::SCHEDULE), Some("daily"));
        assert!(tag(copy, key::SOURCE_INSTANCE).is_some_and(|i| i.starts_with("i-")));
        assert_eq!(tag(copy, "Name"), Some("web"));
        assert_eq!(tag(copy, ATTEMPT), Some("1"));
        let seal = tag(copy, key::SEAL);
        assert!(
            seal.is_some_and(|s| s.starts_with(ami_core::seal::VERSION_PREFIX) && s != source_seal),
            "{region}: the copy is sealed on its own: {seal:?} (source {source_seal})"
        );
        assert_eq!(tag(copy, key::SHARE_WITH), None, "{region}");
        assert!(
            copy.name()
                .is_some_and(|n| n.starts_with("ami-lifecycle/i-")),
            "{:?}",
            copy.name()
        );
        let keys = snapshot_keys(&emu, region, copy).await?;
        assert_eq!(keys.len(), 2, "root and data volume");
        assert!(
            keys.iter().all(|k| k.as_deref() == Some(key_arn.as_str())),
            "{region}: {keys:?} vs {key_arn}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_same_event_three_times_even_concurrently_makes_one_copy_per_region(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let (ctx, _, _) = two_destinations(&emu).await?;
    let queue = emu.event_queue("us-east-1", ami_events()).await?;
    let source = image(&emu, "us-east-1", "20261122T0300Z", true, &[]).await?;
    let events = queue.wait_for(1, Duration::from_secs(5)).await?;
    let event = events
        .iter()
        .find(|e| e["detail"]["ImageId"] == source)
        .context("no available event")?;

    // WHEN it is delivered three times at once, then three times more one after another
    let (a, b, c) = tokio::join!(
        run_event(&ctx, event),
        run_event(&ctx, event),
        run_event(&ctx, event)
    );
    for r in [a?, b?, c?] {
        assert_eq!(r.failed(), 0, "{}", counts(&r));
    }
    for _ in 0..3 {
        let r = run_event(&ctx, event).await?;
        assert_eq!(r.count(Outcome::AlreadyExisted), 2, "{}", counts(&r));
    }

    // THEN there is exactly one copy per region (the token made the concurrent copies one)
    for region in ["eu-west-1", "us-west-2"] {
        assert_eq!(copies(&emu, region).await?.len(), 1, "{region}");
    }
    assert!(
        copy_calls(&emu)? <= 6,
        "only the concurrent deliveries reached CopyImage"
    );
    Ok(())
}

#[tokio::test]
async fn a_replicas_available_event_copies_nothing() -> anyhow::Result<()> {
    // GIVEN a copy in eu-west-1 that just became available (its event caught there),
    // even though someone tagged it with a replicate-to (copies do not carry their
    // source's)
    let emu = Emulator::start()?;
    let (ctx, _, _) = two_destinations(&emu).await?;
    let queue = emu.event_queue("eu-west-1", ami_events()).await?;
    let source = image(
        &emu,
        "us-east-1",
        "20261122T0300Z",
        true,
        &[(key::REPLICATE_TO, "eu-west-1,us-west-2")],
    )
    .await?;
    let first = run(
        &ctx,
        Request::Image {
            image: source.clone().as_str().into(),
            region: None,
            from_event: false,
        },
        OffsetDateTime::now_utc(),
    )
    .await;
    assert_eq!(first.count(Outcome::Copied), 2, "{}", counts(&first));
    let replica = copies(&emu, "eu-west-1")
        .await?
        .first()
        .and_then(|i| i.image_id().map(str::to_owned))
        .context("no replica")?;
    wait_state(&emu, "eu-west-1", &replica, "available").await?;
    let copied = describe(&emu, "eu-west-1", &replica)
        .await?
        .context("replica gone")?;
    assert_eq!(tag(&copied, key::REPLICATE_TO), None, "not carried");
    emu.tag_image(
        "eu-west-1",
        &replica,
        key::REPLICATE_TO,
        "us-east-1,us-west-2",
    )
    .await?;
    let events = queue.wait_for(1, Duration::from_secs(5)).await?;
    let event = events
        .iter()
        .find(|e| e["detail"]["ImageId"] == replica)
        .context("no available event for the replica")?;
    let before = copy_calls(&emu)?;

    // WHEN its available event is handled
    let report = run_event(&ctx, event).await?;

    // THEN nothing is copied: copies are never replicated again
    assert_eq!(report.count(Outcome::Skipped), 1, "{}", counts(&report));
    assert!(
        report.items[0].reason.contains("never replicated again"),
        "{}",
        counts(&report)
    );
    assert_eq!(copy_calls(&emu)?, before);
    assert!(copies(&emu, "us-west-2")
        .await?
        .iter()
        .all(|c| tag(c, key::SOURCE_IMAGE) == Some(source.as_str())));
    assert!(
        copies(&emu, "us-east-1").await?.is_empty(),
        "the replica's replicate-to was not followed"
    );
    Ok(())
}

/// The sources of our copies in `region` (each copy's `source-image` tag).
async fn copied_sources(emu: &Emulator, region: &str) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = copies(emu, region)
        .await?
        .iter()
        .filter_map(|c| tag(c, key::SOURCE_IMAGE).map(str::to_owned))
        .collect();
    out.sort();
    Ok(out)
}

#[tokio::test]
async fn one_reconcile_copies_three_times_the_copy_cap() -> anyhow::Result<()> {
    // GIVEN six sources and a destination that takes two concurrent copies, each pending 1 s
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[("REPLICA_REGIONS", "eu-west-1")]));
    let mut sources = Vec::new();
    for day in 21..27 {
        sources.push(image(&emu, "us-east-1", &format!("202611{day}T0300Z"), true, &[]).await?);
    }
    sources.sort();
    emu.configure(json!({"copy_cap": 2, "pending_seconds": 1.0}))?;
    let before = copy_calls(&emu)?;

    // WHEN one reconcile runs
    let report = reconcile(&ctx).await;

    // THEN it copies all six itself (waiting for slots as copies complete): nothing
    // deferred or failed, one copy per source, and EC2 refused few calls (the run learns
    // the cap from the first refusal: only the requests in flight then are refused, at
    // most 4, the run's requests in flight per destination)
    assert_eq!(
        (
            report.count(Outcome::Copied),
            report.count(Outcome::Deferred),
            report.failed()
        ),
        (6, 0, 0),
        "{}",
        counts(&report)
    );
    assert_eq!(copied_sources(&emu, "eu-west-1").await?, sources);
    let calls = copy_calls(&emu)? - before;
    assert!(
        (7..=10).contains(&calls),
        "{calls} CopyImage calls for 6 copies"
    );
    Ok(())
}

#[tokio::test]
async fn a_copy_deferred_at_the_cap_starts_on_the_replicas_available_event() -> anyhow::Result<()> {
    // GIVEN two sources and a destination that takes one concurrent copy, copies pending 1 s
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[("REPLICA_REGIONS", "eu-west-1")]));
    let first = image(&emu, "us-east-1", "20261122T0300Z", true, &[]).await?;
    let second = image(&emu, "us-east-1", "20261123T0300Z", true, &[]).await?;
    emu.configure(json!({"copy_cap": 1, "pending_seconds": 1.0}))?;
    let queue = emu.event_queue("eu-west-1", ami_events()).await?;
    let source_event = |id: &str| Request::Image {
        image: id.into(),
        region: Some("us-east-1".into()),
        from_event: true,
    };

    // WHEN both sources' available events are handled
    let r1 = run(&ctx, source_event(&first), OffsetDateTime::now_utc()).await;
    let r2 = run(&ctx, source_event(&second), OffsetDateTime::now_utc()).await;
    // THEN the first is copied, the second deferred at the cap (an event never waits)
    assert_eq!(r1.count(Outcome::Copied), 1, "{}", counts(&r1));
    assert_eq!(
        (
            r2.count(Outcome::Copied),
            r2.count(Outcome::Deferred),
            r2.failed()
        ),
        (0, 1, 0),
        "{}",
        counts(&r2)
    );
    assert!(
        r2.items.iter().any(|i| i.outcome == Outcome::Deferred
            && i.reason.contains("ResourceLimitExceeded")
            && i.reason.contains("available event")),
        "{}",
        counts(&r2)
    );

    // WHEN the first copy completes and its available event (in eu-west-1) is handled
    let replica = copies(&emu, "eu-west-1")
        .await?
        .first()
        .and_then(|i| i.image_id().map(str::to_owned))
        .context("no copy")?;
    wait_state(&emu, "eu-west-1", &replica, "available").await?;
    let events = queue.wait_for(1, Duration::from_secs(5)).await?;
    let event = events
        .iter()
        .find(|e| e["detail"]["ImageId"] == replica.as_str())
        .context("no available event for the replica")?;
    let r3 = run_event(&ctx, event).await?;

    // THEN the deferred copy is made then, not at the next reconcile: both sources have
    // exactly one copy
    assert_eq!(
        (
            r3.count(Outcome::Copied),
            r3.count(Outcome::AlreadyExisted),
            r3.failed()
        ),
        (1, 1, 0),
        "{}",
        counts(&r3)
    );
    let mut want = vec![first, second];
    want.sort();
    assert_eq!(copied_sources(&emu, "eu-west-1").await?, want);
    Ok(())
}

#[tokio::test]
async fn the_reconcile_alone_brings_every_region_up_to_date_without_loops() -> anyhow::Result<()> {
    // GIVEN two managed regions, default destinations, and no events at all; besides the
    // suite's (sealed) images, an image the suite did not make that asks for a copy
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[
        ("AMI_LIFECYCLE_REGIONS", "us-east-1,eu-west-1"),
        ("REPLICA_REGIONS", "eu-west-1,us-west-2"),
    ]));
    let east = image(&emu, "us-east-1", "a", true, &[]).await?;
    let west = image(
        &emu,
        "eu-west-1",
        "b",
        true,
        &[(key::REPLICATE_TO, "ap-southeast-2")],
    )
    .await?;
    let foreign_tagged = image(
        &emu,
        "us-east-1",
        "c",
        false,
        &[(key::REPLICATE_TO, "us-west-2")],
    )
    .await?;
    let untouched = image(&emu, "us-east-1", "d", false, &[]).await?;

    // WHEN the reconcile runs, the copies complete, and it runs again
    let r1 = reconcile(&ctx).await;
    // (west's replicate-to names ap-southeast-2, a region this deployment does not
    // manage: refused by name, on the image too, never copied)
    assert_eq!(
        (
            r1.count(Outcome::Copied),
            r1.count(Outcome::Refused),
            r1.failed()
        ),
        (2, 1, 0),
        "{}",
        counts(&r1)
    );
    for region in ["eu-west-1", "us-west-2", "ap-southeast-2"] {
        for c in copies(&emu, region).await? {
            wait_state(&emu, region, c.image_id().unwrap_or_default(), "available").await?;
        }
    }
    let r2 = reconcile(&ctx).await;

    // THEN every region has what it should, and the copies (managed, in a managed region)
    // were not copied again
    assert_eq!(
        (r2.count(Outcome::Copied), r2.count(Outcome::AlreadyExisted)),
        (0, 2),
        "{}",
        counts(&r2)
    );
    let sources = |v: Vec<Image>| -> Vec<String> {
        let mut s: Vec<String> = v
            .iter()
            .filter_map(|c| tag(c, key::SOURCE_IMAGE).map(str::to_owned))
            .collect();
        s.sort();
        s
    };
    assert_eq!(
        sources(copies(&emu, "eu-west-1").await?),
        vec![east.clone()]
    );
    assert_eq!(
        sources(copies(&emu, "us-west-2").await?),
        vec![east.clone()]
    );
    assert!(
        copies(&emu, "ap-southeast-2").await?.is_empty(),
        "{west} is not copied to a region the deployment does not manage"
    );
    assert!(
        copies(&emu, "us-east-1").await?.is_empty(),
        "nothing is copied back to a source region"
    );
    // AND the image the suite did not make is never copied, whatever its replicate-to
    // says (only sealed images the suite made are replicated), nor is the untagged one
    for region in ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2"] {
        let out = emu
            .ec2(region)
            .describe_images()
            .owners("self")
            .send()
            .await
            .context("DescribeImages")?;
        for i in out.images() {
            assert!(
                i.source_image_id() != Some(foreign_tagged.as_str())
                    && i.source_image_id() != Some(untouched.as_str()),
                "{region}: {:?} is a copy of {:?}",
                i.image_id(),
                i.source_image_id()
            );
        }
    }
    assert_eq!(
        copy_calls(&emu)?,
        2,
        "one CopyImage per copy, none for the foreign image or the unmanaged region"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_copy_is_reported_removed_and_copied_again_with_a_fresh_token(
) -> anyhow::Result<()> {
    // GIVEN a copy that stays pending, then fails (its failed event caught in eu-west-1)
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[("REPLICA_REGIONS", "eu-west-1")]));
    let source = image(&emu, "us-east-1", "20261122T0300Z", true, &[]).await?;
    emu.configure(json!({"pending_seconds": 3600}))?;
    let queue = emu
        .event_queue(
            "eu-west-1",
            json!({"source": ["aws.ec2"], "detail": {"State": ["failed"]}}),
        )
        .await?;
    reconcile(&ctx).await;
    let failed = copies(&emu, "eu-west-1")
        .await?
        .first()
        .and_then(|i| i.image_id().map(str::to_owned))
        .context("no copy")?;
    emu.control(
        "POST",
        &format!("/_emulator/images/{failed}/fail"),
        Some(json!({"message": "snapshot copy failed"})),
    )?;
    let events = queue.wait_for(1, Duration::from_secs(5)).await?;
    let event = events.first().context("no failed event")?;

    // WHEN the failed event is handled
    let report = run_event(&ctx, event).await?;

    // THEN it is reported, a new copy (attempt 2, new token) is requested and the failed one removed
    assert_eq!(
        (
            report.failed(),
            report.count(Outcome::Copied),
            report.count(Outcome::Deleted)
        ),
        (1, 1, 1),
        "{}",
        counts(&report)
    );
    assert!(
        report
            .items
            .iter()
            .any(|i| i.reason.contains("snapshot copy failed")),
        "{}",
        counts(&report)
    );
    let now = copies(&emu, "eu-west-1").await?;
    assert_eq!(now.len(), 1);
    assert_ne!(now[0].image_id(), Some(failed.as_str()));
    assert_eq!(tag(&now[0], ATTEMPT), Some("2"));
    assert_eq!(tag(&now[0], key::SOURCE_IMAGE), Some(source.as_str()));
    // AND a replay of the event, or a reconcile, changes nothing
    let replay = run_event(&ctx, event).await?;
    assert_eq!(replay.count(Outcome::Skipped), 1, "{}", counts(&replay));
    let r = reconcile(&ctx).await;
    assert_eq!(r.count(Outcome::AlreadyExisted), 1, "{}", counts(&r));
    assert_eq!(copies(&emu, "eu-west-1").await?.len(), 1);
    Ok(())
}

/// An image registered by `account` in us-east-1 and shared with ours.
async fn shared_by(emu: &Emulator, account: &str, name: &str) -> anyhow::Result<String> {
    let theirs = emu.ec2_as("us-east-1", account);
    let id = theirs
        .register_image()
        .name(name)
        .root_device_name("/dev/xvda")
        .architecture(aws_sdk_ec2::types::ArchitectureValues::X8664)
        .send()
        .await
        .context("RegisterImage")?
        .image_id()
        .context("no id")?
        .to_owned();
    theirs
        .modify_image_attribute()
        .image_id(&id)
        .launch_permission(
            LaunchPermissionModifications::builder()
                .add(LaunchPermission::builder().user_id(ACCOUNT).build())
                .build(),
        )
        .send()
        .await
        .context("ModifyImageAttribute")?;
    Ok(id)
}

#[tokio::test]
async fn adoption_copies_an_allowed_shared_image_and_never_one_from_an_unlisted_account(
) -> anyhow::Result<()> {
    // GIVEN an image shared by an ADOPT_FROM account and one shared by a stranger
    let emu = Emulator::start()?;
    let key_arn = emu.create_key("us-east-1", Some("alias/mine")).await?;
    let ctx = emu.context(emu.config(&[
        ("ADOPT_FROM", OTHER_ACCOUNT),
        ("REPLICA_KMS_KEYS", "us-east-1=alias/mine"),
    ]));
    let allowed = shared_by(&emu, OTHER_ACCOUNT, "vendor-golden").await?;
    let stranger = shared_by(&emu, "444455556666", "stranger-golden").await?;

    // WHEN the reconcile runs twice
    let r1 = reconcile(&ctx).await;
    let r2 = reconcile(&ctx).await;

    // THEN the allowed image is copied into this account once, re-encrypted, tagged with its origin
    assert_eq!(
        (r1.count(Outcome::Copied), r1.failed()),
        (1, 0),
        "{}",
        counts(&r1)
    );
    assert_eq!(r2.count(Outcome::AlreadyExisted), 1, "{}", counts(&r2));
    let adopted = copies(&emu, "us-east-1").await?;
    assert_eq!(adopted.len(), 1);
    let copy = &adopted[0];
    assert_eq!(copy.owner_id(), Some(ACCOUNT));
    assert_eq!(tag(copy, key::SOURCE_IMAGE), Some(allowed.as_str()));
    assert_eq!(tag(copy, key::SOURCE_ACCOUNT), Some(OTHER_ACCOUNT));
    assert_eq!(tag(copy, key::MANAGED_BY), Some("ami-lifecycle"));
    assert!(snapshot_keys(&emu, "us-east-1", copy)
        .await?
        .iter()
        .all(|k| k.as_deref() == Some(key_arn.as_str())));
    // AND the stranger's image is never copied nor even attempted
    assert!(
        r1.items
            .iter()
            .chain(&r2.items)
            .all(|i| i.subject != stranger),
        "{}",
        counts(&r1)
    );
    let mine = emu
        .ec2("us-east-1")
        .describe_images()
        .owners("self")
        .send()
        .await?;
    assert!(mine
        .images()
        .iter()
        .all(|i| i.source_image_id() != Some(stranger.as_str())));
    assert_eq!(copy_calls(&emu)?, 1);
    Ok(())
}

#[tokio::test]
async fn an_adopted_image_with_a_billing_product_code_is_refused_with_the_alternative(
) -> anyhow::Result<()> {
    // GIVEN an image an ADOPT_FROM account shares with us, carrying a Marketplace code
    let emu = Emulator::start()?;
    emu.create_key("us-east-1", Some("alias/mine")).await?;
    let ctx = emu.context(emu.config(&[
        ("ADOPT_FROM", OTHER_ACCOUNT),
        ("REPLICA_KMS_KEYS", "us-east-1=alias/mine"),
    ]));
    let billed = shared_by(&emu, OTHER_ACCOUNT, "vendor-marketplace").await?;
    emu.control(
        "POST",
        &format!("/_emulator/images/{billed}/product-codes"),
        Some(json!({"product_codes": [{"ProductCodeId": "abc123", "ProductCodeType": "marketplace"}]})),
    )?;

    // WHEN the reconcile runs
    let report = reconcile(&ctx).await;

    // THEN it is refused (AWS would refuse the copy) with the documented alternative,
    // and no CopyImage is even attempted.
    let item = report
        .items
        .iter()
        .find(|i| i.subject == billed)
        .with_context(|| format!("{billed} not reported: {}", counts(&report)))?;
    assert_eq!(item.outcome, Outcome::Refused, "{}", counts(&report));
    assert!(item.reason.contains("abc123"), "{}", item.reason);
    assert!(
        item.reason.contains("launch an instance from it"),
        "{}",
        item.reason
    );
    assert_eq!(copy_calls(&emu)?, 0);
    assert!(copies(&emu, "us-east-1").await?.is_empty());
    Ok(())
}

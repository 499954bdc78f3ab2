//! Emulator integration tests for create-image: the runner (the same code path as the
//! Lambda handler and `amictl create-images`) against the extended moto, through the AWS
//! SDK adapters.

use std::collections::BTreeMap;

use ami_core::create::{self, CreateRequest, ScheduleRun};
use ami_core::events::{parse_trigger, Trigger};
use ami_core::model::ImageState;
use ami_core::report::{Outcome, RunReport};
use ami_core::tags::key;
use ami_sim::Emulator;
use anyhow::{ensure, Context as _};
use aws_sdk_ec2::types::Filter;
use serde_json::json;
use time::macros::datetime;
use time::OffsetDateTime;

const SLOT: OffsetDateTime = datetime!(2026-11-22 03:00 UTC);
const EAST: &str = "us-east-1";
const WEST: &str = "eu-west-1";

fn daily() -> CreateRequest {
    CreateRequest::Schedule(ScheduleRun::new("daily".into(), SLOT))
}

fn outcome_of(report: &RunReport, subject: &str) -> Option<Outcome> {
    report
        .items
        .iter()
        .find(|i| i.subject == subject)
        .map(|i| i.outcome)
}

/// Our images in a region: name → (image id, tags, device names, snapshot ids).
struct Made {
    id: String,
    tags: BTreeMap<String, String>,
    devices: Vec<String>,
    snapshots: Vec<String>,
}

async fn managed_images(emu: &Emulator, region: &str) -> anyhow::Result<BTreeMap<String, Made>> {
    let out = emu
        .ec2(region)
        .describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name(format!("tag:{}", key::MANAGED_BY))
                .values("ami-lifecycle")
                .build(),
        )
        .send()
        .await
        .context("DescribeImages")?;
    let mut made = BTreeMap::new();
    for img in out.images() {
        let tags = img
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect();
        let devices = img
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.device_name().map(str::to_owned))
            .collect();
        let snapshots = img
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
            .collect();
        made.insert(
            img.name().unwrap_or_default().to_owned(),
            Made {
                id: img.image_id().unwrap_or_default().to_owned(),
                tags,
                devices,
                snapshots,
            },
        );
    }
    Ok(made)
}

async fn snapshot_tags(
    emu: &Emulator,
    region: &str,
    ids: &[String],
) -> anyhow::Result<Vec<BTreeMap<String, String>>> {
    let out = emu
        .ec2(region)
        .describe_snapshots()
        .set_snapshot_ids(Some(ids.to_vec()))
        .send()
        .await
        .context("DescribeSnapshots")?;
    Ok(out
        .snapshots()
        .iter()
        .map(|s| {
            s.tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect()
        })
        .collect())
}

/// Instance ids with recorded reboots, and how many each.
fn reboots(emu: &Emulator) -> anyhow::Result<BTreeMap<String, usize>> {
    let v = emu.reboots()?;
    Ok(v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_array().map_or(0, Vec::len)))
                .collect()
        })
        .unwrap_or_default())
}

fn name_of(instance: &str, schedule: &str) -> String {
    format!("ami-lifecycle/{instance}/{schedule}/20261122T0300Z")
}

#[tokio::test]
async fn a_schedule_run_images_exactly_the_opted_in_instances_of_each_region() -> anyhow::Result<()>
{
    // GIVEN instances in two managed regions: opted in (one without reboot, one leaving a
    // data volume out), opted in to another schedule, and not opted in
    let emu = Emulator::start()?;
    let web = emu
        .launch_instance(
            EAST,
            &[
                (key::SCHEDULE, "daily"),
                ("Name", "web"),
                ("team", "blue"),
                (key::RETAIN, "count=3"),
            ],
            &["/dev/sdf"],
        )
        .await?;
    let quiet = emu
        .launch_instance(
            EAST,
            &[(key::SCHEDULE, "daily,weekly"), (key::REBOOT, "false")],
            &[],
        )
        .await?;
    let lean = emu
        .launch_instance(
            WEST,
            &[(key::SCHEDULE, "daily"), (key::EXCLUDE_DEVICES, "/dev/sdf")],
            &["/dev/sdf", "/dev/sdg"],
        )
        .await?;
    let weekly = emu
        .launch_instance(EAST, &[(key::SCHEDULE, "weekly")], &[])
        .await?;
    let untagged = emu.launch_instance(WEST, &[("Name", "other")], &[]).await?;
    // a stopped instance (imaged, no reboot) and a terminated one (skipped)
    let cold = emu
        .launch_instance(WEST, &[(key::SCHEDULE, "daily")], &[])
        .await?;
    emu.ec2(WEST)
        .stop_instances()
        .instance_ids(&cold)
        .send()
        .await
        .context("StopInstances")?;
    let gone = emu
        .launch_instance(EAST, &[(key::SCHEDULE, "daily")], &[])
        .await?;
    emu.ec2(EAST)
        .terminate_instances()
        .instance_ids(&gone)
        .send()
        .await
        .context("TerminateInstances")?;
    let ctx = emu.context(emu.config(&[
        ("AMI_LIFECYCLE_REGIONS", "us-east-1,eu-west-1"),
        ("COPY_INSTANCE_TAGS", "team"),
    ]));

    // WHEN the daily schedule runs
    let report = create::run(&ctx, daily(), SLOT).await;

    // THEN exactly the daily instances are imaged, in their own regions
    ensure!(
        report.failed() == 0 && report.count(Outcome::Created) == 4,
        "{}",
        report.render_table()
    );
    let east = managed_images(&emu, EAST).await?;
    let west = managed_images(&emu, WEST).await?;
    ensure!(
        east.keys().cloned().collect::<Vec<_>>() == {
            let mut v = vec![name_of(&web, "daily"), name_of(&quiet, "daily")];
            v.sort();
            v
        },
        "east: {:?}",
        east.keys()
    );
    ensure!(
        west.keys().cloned().collect::<Vec<_>>() == {
            let mut v = vec![name_of(&lean, "daily"), name_of(&cold, "daily")];
            v.sort();
            v
        },
        "west: {:?}",
        west.keys()
    );
    ensure!(outcome_of(&report, &weekly).is_none() && outcome_of(&report, &untagged).is_none());
    let skipped = report.items.iter().find(|i| i.subject == gone);
    ensure!(
        skipped.is_some_and(|i| i.outcome == Outcome::Skipped && i.reason.contains("terminated")),
        "{}",
        report.render_table()
    );

    // AND only the instances that did not opt out were rebooted
    let rebooted = reboots(&emu)?;
    ensure!(
        rebooted.get(&web) == Some(&1) && rebooted.get(&lean) == Some(&1),
        "{rebooted:?}"
    );
    ensure!(
        !rebooted.contains_key(&quiet) && !rebooted.contains_key(&cold),
        "{rebooted:?}"
    );

    // AND the images and every snapshot carry the lineage, consistency and carried tags
    let img = &east[&name_of(&web, "daily")];
    for (k, v) in [
        (key::MANAGED_BY, "ami-lifecycle"),
        (key::SOURCE_INSTANCE, web.as_str()),
        (key::SCHEDULE, "daily"),
        (key::SLOT, "2026-11-22T03:00:00Z"),
        (key::CONSISTENCY, "rebooted"),
        ("Name", "web"),
        ("team", "blue"),
        (key::RETAIN, "count=3"),
    ] {
        ensure!(
            img.tags.get(k).map(String::as_str) == Some(v),
            "image tag {k}: {:?}",
            img.tags
        );
    }
    ensure!(
        img.snapshots.len() == 2,
        "root + /dev/sdf: {:?}",
        img.snapshots
    );
    // AND the image is sealed; each snapshot carries the image's tags, the image's name
    // (`image-name`) and its own seal, a different value (it seals the snapshot subject)
    let image_seal = img.tags.get(key::SEAL).context("the image is sealed")?;
    ensure!(
        image_seal.starts_with(ami_core::seal::VERSION_PREFIX),
        "image seal {image_seal:?}"
    );
    let unsealed = |tags: &BTreeMap<String, String>| {
        let mut t = tags.clone();
        t.remove(key::SEAL);
        t.remove(key::IMAGE_NAME);
        t
    };
    // (exactly the seals the deployment's key gives these tags, as create-image writes them)
    let expected = emu
        .sealed_tags(
            EAST,
            "ami-lifecycle",
            EAST,
            &name_of(&web, "daily"),
            &unsealed(&img.tags).into_iter().collect::<Vec<_>>(),
        )
        .await?;
    ensure!(
        img.tags == expected.image.iter().cloned().collect::<BTreeMap<_, _>>(),
        "image tags {:?} != sealed {:?}",
        img.tags,
        expected.image
    );
    let expected_snapshot: BTreeMap<String, String> = expected.snapshot.into_iter().collect();
    for tags in snapshot_tags(&emu, EAST, &img.snapshots).await? {
        ensure!(
            tags == expected_snapshot,
            "snapshot tags {tags:?} != sealed {expected_snapshot:?}"
        );
        ensure!(
            unsealed(&tags) == unsealed(&img.tags),
            "snapshot tags {tags:?} != image tags {:?} (+ image-name, seal)",
            img.tags
        );
        ensure!(
            tags.get(key::IMAGE_NAME) == Some(&name_of(&web, "daily")),
            "snapshot image-name: {tags:?}"
        );
        let snapshot_seal = tags.get(key::SEAL).context("the snapshot is sealed")?;
        ensure!(
            snapshot_seal.starts_with(ami_core::seal::VERSION_PREFIX)
                && snapshot_seal != image_seal,
            "snapshot seal {snapshot_seal:?}, image seal {image_seal:?}"
        );
    }
    let q = &east[&name_of(&quiet, "daily")];
    ensure!(
        q.tags.get(key::CONSISTENCY).map(String::as_str) == Some("crash-consistent"),
        "{:?}",
        q.tags
    );
    let c = &west[&name_of(&cold, "daily")];
    ensure!(
        c.tags.get(key::CONSISTENCY).map(String::as_str) == Some("stopped"),
        "{:?}",
        c.tags
    );
    // exclude-devices left /dev/sdf out
    let l = &west[&name_of(&lean, "daily")];
    ensure!(
        !l.devices.contains(&"/dev/sdf".to_owned()) && l.snapshots.len() == 2,
        "{:?} {:?}",
        l.devices,
        l.snapshots
    );
    Ok(())
}

#[tokio::test]
async fn a_duplicated_or_retried_event_makes_no_second_image() -> anyhow::Result<()> {
    // GIVEN an instance, and a CreateImage whose answer is lost after it took effect
    let emu = Emulator::start()?;
    let mut ids = [
        emu.launch_instance(EAST, &[(key::SCHEDULE, "daily")], &[])
            .await?,
        emu.launch_instance(EAST, &[(key::SCHEDULE, "daily")], &[])
            .await?,
    ];
    // instances are imaged in id order: `a` gets the first CreateImage call
    ids.sort();
    let (a, b) = (ids[0].clone(), ids[1].clone());
    emu.configure(json!({"crash": [{"action": "CreateImage", "nth": 1, "when": "after"}]}))?;
    let ctx = emu.context(emu.config(&[]));

    // WHEN the event is handled, then delivered again
    let first = create::run(&ctx, daily(), SLOT).await;
    let again = create::run(&ctx, daily(), SLOT + time::Duration::seconds(40)).await;

    // THEN the lost answer (the SDK's retry met InvalidAMIName.Duplicate) counts as done,
    // the duplicate finds both images, and there is one image per instance
    ensure!(first.failed() == 0, "{}", first.render_table());
    ensure!(
        outcome_of(&first, &a) == Some(Outcome::AlreadyExisted),
        "{}",
        first.render_table()
    );
    ensure!(
        outcome_of(&first, &b) == Some(Outcome::Created),
        "{}",
        first.render_table()
    );
    ensure!(
        outcome_of(&again, &a) == Some(Outcome::AlreadyExisted)
            && outcome_of(&again, &b) == Some(Outcome::AlreadyExisted),
        "{}",
        again.render_table()
    );
    let images = managed_images(&emu, EAST).await?;
    ensure!(images.len() == 2, "{:?}", images.keys());
    let calls = emu.counters()?;
    ensure!(
        calls["calls"][EAST]["CreateImage"] == 3,
        "two first calls + one SDK retry: {calls}"
    );
    Ok(())
}

#[tokio::test]
async fn one_failing_instance_leaves_the_others_imaged() -> anyhow::Result<()> {
    // GIVEN four instances: one with a bad tag, one excluding its root device, one whose
    // CreateImage keeps failing (both SDK attempts), and a healthy one
    let emu = Emulator::start()?;
    let bad_tag = emu
        .launch_instance(
            EAST,
            &[(key::SCHEDULE, "daily"), (key::REBOOT, "maybe")],
            &[],
        )
        .await?;
    let root = emu
        .launch_instance(EAST, &[(key::SCHEDULE, "daily")], &[])
        .await?;
    // exclude the root device, whatever name the emulator gives it
    let ec2 = emu.ec2(EAST);
    let described = ec2
        .describe_instances()
        .instance_ids(&root)
        .send()
        .await
        .context("DescribeInstances")?;
    let root_device = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find_map(|i| i.root_device_name())
        .context("root device")?
        .to_owned();
    let tag = aws_sdk_ec2::types::Tag::builder()
        .key(key::EXCLUDE_DEVICES)
        .value(&root_device)
        .build();
    ec2.create_tags()
        .resources(&root)
        .tags(tag)
        .send()
        .await
        .context("CreateTags")?;
    let flaky = emu
        .launch_instance(EAST, &[(key::SCHEDULE, "daily")], &[])
        .await?;
    let healthy = emu
        .launch_instance(EAST, &[(key::SCHEDULE, "daily")], &[])
        .await?;
    let ids = {
        let mut v = vec![flaky.clone(), healthy.clone()];
        v.sort();
        v
    };
    let flaky_first = ids[0] == flaky;
    // the imaged instances go in id order: fail both attempts of the flaky one's call
    let (n1, n2) = if flaky_first { (1, 2) } else { (2, 3) };
    emu.configure(json!({"crash": [{"action": "CreateImage", "nth": n1, "when": "before"}, {"action": "CreateImage", "nth": n2, "when": "before"}]}))?;
    let queue = emu.queue(EAST, "continuation").await?;
    let ctx = emu.context(emu.config(&[("CONTINUATION_QUEUE_URL", queue.url())]));

    // WHEN the schedule runs
    let out = create::run_wave(&ctx, daily(), SLOT).await;

    // THEN the bad inputs fail with clear reasons, the flaky one is deferred, the healthy one imaged
    let r = &out.report;
    let reason = |id: &str| {
        r.items
            .iter()
            .find(|i| i.subject == id)
            .map(|i| i.reason.clone())
            .unwrap_or_default()
    };
    ensure!(
        outcome_of(r, &bad_tag) == Some(Outcome::Failed)
            && reason(&bad_tag).contains("ami-lifecycle:reboot=\"maybe\""),
        "{}",
        r.render_table()
    );
    ensure!(
        outcome_of(r, &root) == Some(Outcome::Failed) && reason(&root).contains("root device"),
        "{}",
        r.render_table()
    );
    ensure!(
        outcome_of(r, &flaky) == Some(Outcome::Deferred),
        "{}",
        r.render_table()
    );
    ensure!(
        outcome_of(r, &healthy) == Some(Outcome::Created),
        "{}",
        r.render_table()
    );
    ensure!(out.more, "the deferred instance is continued");

    // AND a continuation was sent through SQS (delayed 60 s, so not receivable yet), and
    // running it images the flaky one, nothing twice
    ensure!(
        delayed_messages(&emu, queue.url()).await? == 1,
        "one continuation waits in the queue"
    );
    let request = CreateRequest::Continue(ScheduleRun::new("daily".into(), SLOT), 1);
    let next = create::run(&ctx, request, SLOT + time::Duration::minutes(1)).await;
    ensure!(
        outcome_of(&next, &flaky) == Some(Outcome::Created)
            && outcome_of(&next, &healthy) == Some(Outcome::AlreadyExisted),
        "{}",
        next.render_table()
    );
    let images = managed_images(&emu, EAST).await?;
    ensure!(images.len() == 2, "{:?}", images.keys());
    Ok(())
}

/// Messages waiting out their delay in the queue at `url`.
async fn delayed_messages(emu: &Emulator, url: &str) -> anyhow::Result<u64> {
    let name = aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed;
    let out = emu
        .sqs(EAST)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await
        .context("GetQueueAttributes")?;
    Ok(out
        .attributes()
        .and_then(|a| a.get(&name))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

#[tokio::test]
async fn reboot_waves_never_exceed_the_concurrency_and_wait_for_running() -> anyhow::Result<()> {
    // GIVEN a reboot group of four, REBOOT_CONCURRENCY=2, and an ungrouped instance
    let emu = Emulator::start()?;
    let mut members = Vec::new();
    for _ in 0..4 {
        members.push(
            emu.launch_instance(
                EAST,
                &[(key::SCHEDULE, "daily"), (key::REBOOT_GROUP, "db")],
                &[],
            )
            .await?,
        );
    }
    members.sort();
    let loner = emu
        .launch_instance(EAST, &[(key::SCHEDULE, "daily")], &[])
        .await?;
    let ec2 = emu.ec2(EAST);
    let ctx = emu.context(emu.config(&[("REBOOT_CONCURRENCY", "2")]));
    let now = OffsetDateTime::now_utc();

    // WHEN the first invocation runs
    let first = create::run_wave(&ctx, daily(), now).await;
    // THEN the loner and two members are rebooted; two members wait
    let r1 = reboots(&emu)?;
    ensure!(
        r1.len() == 3
            && r1.contains_key(&loner)
            && r1.contains_key(&members[0])
            && r1.contains_key(&members[1]),
        "{r1:?}"
    );
    ensure!(
        first.more && first.report.count(Outcome::Deferred) >= 2,
        "{}",
        first.report.render_table()
    );

    // WHEN a rebooted member is not running yet (stopped) at the next check
    ec2.stop_instances()
        .instance_ids(&members[0])
        .send()
        .await
        .context("StopInstances")?;
    let held = create::run_wave(
        &ctx,
        CreateRequest::Continue(ScheduleRun::new("daily".into(), SLOT), 1),
        now + time::Duration::minutes(1),
    )
    .await;
    // THEN nothing new is rebooted, and the slot is continued again
    ensure!(reboots(&emu)?.len() == 3, "{}", held.report.render_table());
    ensure!(held.more, "still waiting");
    let reason = held
        .report
        .items
        .iter()
        .find(|i| i.subject == members[2])
        .map(|i| i.reason.clone())
        .unwrap_or_default();
    ensure!(
        reason.contains(&members[0]) && reason.contains("running again"),
        "{reason}"
    );

    // WHEN it is running again
    ec2.start_instances()
        .instance_ids(&members[0])
        .send()
        .await
        .context("StartInstances")?;
    let second = create::run_wave(
        &ctx,
        CreateRequest::Continue(ScheduleRun::new("daily".into(), SLOT), 1),
        now + time::Duration::minutes(2),
    )
    .await;
    // THEN the second wave reboots the other two, and nothing remains
    let r2 = reboots(&emu)?;
    ensure!(r2.len() == 5 && r2.values().all(|n| *n == 1), "{r2:?}");
    ensure!(
        !second.more && second.report.count(Outcome::Created) == 2,
        "{}",
        second.report.render_table()
    );
    // AND at no time were more than two members of the group imaged in one invocation
    ensure!(managed_images(&emu, EAST).await?.len() == 5);
    Ok(())
}

#[tokio::test]
async fn the_dry_run_prints_the_plan_and_changes_nothing() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let mut group = Vec::new();
    for _ in 0..2 {
        group.push(
            emu.launch_instance(
                EAST,
                &[(key::SCHEDULE, "daily"), (key::REBOOT_GROUP, "db")],
                &[],
            )
            .await?,
        );
    }
    let plain = emu
        .launch_instance(WEST, &[(key::SCHEDULE, "daily")], &[])
        .await?;
    let ctx = emu.context(emu.config(&[
        ("AMI_LIFECYCLE_REGIONS", "us-east-1,eu-west-1"),
        ("DRY_RUN", "true"),
    ]));

    let report = create::run(&ctx, daily(), SLOT).await;

    ensure!(
        report.dry_run && report.count(Outcome::Planned) == 3,
        "{}",
        report.render_table()
    );
    let text = report.render_table();
    ensure!(
        text.contains(&name_of(&plain, "daily"))
            && text.contains("wave 1 of 2")
            && text.contains("wave 2 of 2"),
        "{text}"
    );
    ensure!(reboots(&emu)?.is_empty());
    ensure!(
        managed_images(&emu, EAST).await?.is_empty()
            && managed_images(&emu, WEST).await?.is_empty()
    );
    let counters = emu.counters()?;
    for (region, calls) in counters["calls"].as_object().into_iter().flatten() {
        for action in calls.as_object().into_iter().flatten().map(|(a, _)| a) {
            ensure!(
                action.starts_with("Describe")
                    || action == "RegisterImage"
                    || action == "RunInstances",
                "{region}: {action} in a dry run"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_failed_image_event_is_reported_and_its_snapshots_cleaned_up() -> anyhow::Result<()> {
    // GIVEN an image that stays pending, and a rule that delivers AMI state changes
    let emu = Emulator::start()?;
    emu.configure(json!({"pending_seconds": 600}))?;
    let inst = emu
        .launch_instance(EAST, &[(key::SCHEDULE, "daily")], &["/dev/sdf"])
        .await?;
    let events = emu
        .event_queue(
            EAST,
            json!({"source": ["aws.ec2"], "detail-type": ["EC2 AMI State Change"]}),
        )
        .await?;
    let ctx = emu.context(emu.config(&[]));
    create::run(&ctx, daily(), SLOT).await;
    let made = managed_images(&emu, EAST).await?;
    let img = made.values().next().context("an image")?;
    ensure!(img.snapshots.len() == 2);

    // WHEN the image ends failed and the event is handled as Lambda would get it
    emu.control(
        "POST",
        &format!("/_emulator/images/{}/fail", img.id),
        Some(json!({"message": "snapshot copy error"})),
    )?;
    let delivered = events
        .wait_for(1, std::time::Duration::from_secs(5))
        .await?;
    let event = delivered.first().context("no failed event delivered")?;
    let request = match parse_trigger(event).map_err(anyhow::Error::msg)? {
        Trigger::AmiState {
            image,
            state: ImageState::Failed,
            region,
            error,
            ..
        } => CreateRequest::ImageFailed {
            region,
            image,
            error,
        },
        other => anyhow::bail!("{other:?}"),
    };
    let report = create::run(&ctx, request.clone(), SLOT).await;

    // THEN it is reported against the instance with the error, deregistered, snapshots gone
    ensure!(
        outcome_of(&report, &inst) == Some(Outcome::Failed),
        "{}",
        report.render_table()
    );
    ensure!(
        report
            .items
            .iter()
            .any(|i| i.reason.contains("snapshot copy error")),
        "{}",
        report.render_table()
    );
    ensure!(managed_images(&emu, EAST).await?.is_empty());
    let left = emu
        .ec2(EAST)
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await?;
    let ours: Vec<_> = left
        .snapshots()
        .iter()
        .filter(|s| {
            img.snapshots
                .iter()
                .any(|i| Some(i.as_str()) == s.snapshot_id())
        })
        .collect();
    ensure!(ours.is_empty(), "{ours:?}");
    // AND a replay changes nothing; the slot can be run again
    let replay = create::run(&ctx, request, SLOT).await;
    ensure!(
        replay.count(Outcome::Skipped) == 1 && replay.failed() == 0,
        "{}",
        replay.render_table()
    );
    let rerun = create::run(&ctx, daily(), SLOT).await;
    ensure!(
        outcome_of(&rerun, &inst) == Some(Outcome::Created),
        "{}",
        rerun.render_table()
    );
    Ok(())
}

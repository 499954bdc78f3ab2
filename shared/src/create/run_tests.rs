//! Runner tests against the in-memory fake: what is created, reported and continued.

use std::sync::Arc;

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::config::Config;
use crate::fake::FakeCloud;
use crate::model::{ImageState, InstanceId, InstanceState};
use crate::report::ReportItem;

const SLOT: OffsetDateTime = datetime!(2026-11-22 03:00 UTC);

fn ctx(cloud: &FakeCloud, pairs: &[(&str, &str)]) -> Context {
    let mut all = vec![("AMI_LIFECYCLE_REGIONS", "us-east-1,eu-west-1")];
    all.extend_from_slice(pairs);
    let config = Config::from_lookup(|k| {
        all.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    Context::new(Arc::new(cloud.clone()), config)
}

fn daily() -> CreateRequest {
    CreateRequest::Schedule(ScheduleRun::new("daily".into(), SLOT))
}

fn item<'a>(report: &'a RunReport, subject: &str) -> Option<&'a ReportItem> {
    report.items.iter().find(|i| i.subject == subject)
}

fn outcome(report: &RunReport, id: &InstanceId) -> Option<Outcome> {
    item(report, id.as_str()).map(|i| i.outcome)
}

#[tokio::test]
async fn a_schedule_run_images_each_region_with_tags_on_images_and_snapshots() {
    // GIVEN opted-in instances in two regions, one opted out of the reboot, one not opted in
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(SLOT);
    let east = cloud.add_instance_with(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), ("Name", "web")],
        InstanceState::Running,
        &["/dev/sdf"],
    );
    let west = cloud.add_instance(
        "eu-west-1",
        &[(key::SCHEDULE, "daily"), (key::REBOOT, "false")],
    );
    let other = cloud.add_instance("eu-west-1", &[(key::SCHEDULE, "weekly")]);

    // WHEN the daily schedule runs
    let report = run(&ctx(&cloud, &[]), daily(), SLOT).await;

    // THEN both are created, only the rebooting one rebooted, tags on images and snapshots
    assert_eq!(
        outcome(&report, &east),
        Some(Outcome::Created),
        "{report:?}"
    );
    assert_eq!(outcome(&report, &west), Some(Outcome::Created));
    assert_eq!(outcome(&report, &other), None);
    let s = cloud.state();
    assert_eq!(
        s.reboots.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>(),
        vec![east.clone()]
    );
    assert_eq!(s.images.len(), 2);
    for img in s.images.values() {
        assert_eq!(img.tag(key::MANAGED_BY), Some("ami-lifecycle"));
        // Sealed at creation: the image over its name, the snapshots over their image's.
        let subject = crate::seal::Subject::of_image(img, "ami-lifecycle");
        assert_eq!(
            img.tag(key::SEAL),
            Some(crate::fake::fake_seal(&subject).as_str())
        );
        for snap in img.snapshot_ids() {
            let mut tags = s.snapshots[snap].tags.clone();
            assert_eq!(
                tags.remove(key::IMAGE_NAME).as_deref(),
                Some(img.name.as_str())
            );
            assert_ne!(tags.remove(key::SEAL), None, "snapshot {snap} is sealed");
            let mut image_tags = img.tags.clone();
            image_tags.remove(key::SEAL);
            assert_eq!(tags, image_tags, "snapshot {snap} carries the image's tags");
        }
    }
    let east_img = s
        .images
        .values()
        .find(|i| i.tag(key::SOURCE_INSTANCE) == Some(east.as_str()))
        .cloned();
    assert_eq!(east_img.as_ref().map(|i| i.disks.len()), Some(2));
    assert_eq!(east_img.as_ref().and_then(|i| i.tag("Name")), Some("web"));
    assert!(s.continuations.is_empty(), "no waves left: no continuation");
    assert_eq!(report.failed(), 0);
}

#[tokio::test]
async fn a_duplicated_event_makes_no_second_image() {
    let cloud = FakeCloud::new("123456789012");
    let id = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    let ctx = ctx(&cloud, &[]);
    let first = run(&ctx, daily(), SLOT).await;
    // WHEN the same slot runs again (duplicate delivery, retried event)
    let second = run(&ctx, daily(), SLOT + time::Duration::seconds(30)).await;
    // THEN the image is found, not made again
    assert_eq!(outcome(&first, &id), Some(Outcome::Created));
    assert_eq!(outcome(&second, &id), Some(Outcome::AlreadyExisted));
    assert_eq!(cloud.live_images("us-east-1").len(), 1);
    assert_eq!(cloud.calls("CreateImage"), 1);
}

#[tokio::test]
async fn a_duplicate_name_answer_is_looked_up_and_counted_as_done() {
    // GIVEN an image that holds the slot's name but was not visible to the inventory read
    let cloud = FakeCloud::new("123456789012");
    let id = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    let ctx = ctx(&cloud, &[]);
    let name = plan::image_name(
        "ami-lifecycle",
        &id,
        &ScheduleRun::new("daily".into(), SLOT),
    );
    // (made by a concurrent invocation: sealed)
    let slot = crate::time_util::rfc3339(SLOT);
    let existing = cloud.add_image(
        "us-east-1",
        &name,
        SLOT,
        &[
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_INSTANCE, id.as_str()),
            (key::SCHEDULE, "daily"),
            (key::SLOT, &slot),
        ],
    );
    // a plan made before the image existed
    let plan = plan::plan(
        &ScheduleRun::new("daily".into(), SLOT),
        &Inventory {
            instances: cloud.state().instances.values().cloned().collect(),
            ..Inventory::default()
        },
        &ctx.config,
        SLOT,
    );
    let mut report = RunReport::new(FUNCTION, false, SLOT);
    // WHEN it is applied
    apply(&ctx, &plan, &mut report).await;
    // THEN CreateImage answered Duplicate and the existing image is reported
    let it = item(&report, id.as_str()).cloned();
    assert_eq!(
        it.as_ref().map(|i| i.outcome),
        Some(Outcome::AlreadyExisted),
        "{report:?}"
    );
    assert_eq!(it.and_then(|i| i.image), Some(existing));
    assert_eq!(cloud.live_images("us-east-1").len(), 1);

    // AND a name taken by an image the suite did not make is reported name-squatted.
    let other = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    let squat_name = plan::image_name(
        "ami-lifecycle",
        &other,
        &ScheduleRun::new("daily".into(), SLOT),
    );
    let squatter = cloud.add_unsealed_image(
        "us-east-1",
        &squat_name,
        SLOT,
        &[(key::MANAGED_BY, "ami-lifecycle")],
    );
    let report = run(
        &ctx,
        CreateRequest::Schedule(ScheduleRun::new("daily".into(), SLOT)),
        SLOT,
    )
    .await;
    let it = item(&report, other.as_str()).cloned();
    assert_eq!(
        it.as_ref().map(|i| i.outcome),
        Some(Outcome::NameSquatted),
        "{report:?}"
    );
    assert_eq!(it.and_then(|i| i.image), Some(squatter));
    assert_eq!(report.unsealed(), 1);
}

#[tokio::test]
async fn one_failing_instance_leaves_the_others_imaged_and_throttling_defers() {
    let cloud = FakeCloud::new("123456789012");
    let bad = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    let slow = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    let good = cloud.add_instance("eu-west-1", &[(key::SCHEDULE, "daily")]);
    cloud.fail(
        "CreateImage",
        Some(bad.as_str()),
        "InvalidParameterValue",
        None,
    );
    cloud.fail(
        "CreateImage",
        Some(slow.as_str()),
        "RequestLimitExceeded",
        Some(1),
    );
    let ctx = ctx(&cloud, &[]);

    let report = run_wave(&ctx, daily(), SLOT).await;

    assert_eq!(outcome(&report.report, &bad), Some(Outcome::Failed));
    assert!(item(&report.report, bad.as_str())
        .is_some_and(|i| i.reason.contains("InvalidParameterValue")));
    assert_eq!(outcome(&report.report, &slow), Some(Outcome::Deferred));
    assert_eq!(outcome(&report.report, &good), Some(Outcome::Created));
    // the deferred one is continued, and the continuation images it
    assert!(report.more);
    let body = cloud.state().continuations.first().map(|(b, _)| b.clone());
    let again = match body
        .as_ref()
        .map(|b| crate::create::request_from_direct(b, SLOT))
    {
        Some(Ok(r)) => run(&ctx, r, SLOT + time::Duration::minutes(1)).await,
        other => panic!("{other:?}"),
    };
    assert_eq!(outcome(&again, &slow), Some(Outcome::Created));
    assert_eq!(outcome(&again, &good), Some(Outcome::AlreadyExisted));
}

#[tokio::test]
async fn waves_continue_through_the_queue_and_never_exceed_the_concurrency() {
    // GIVEN a reboot group of three and REBOOT_CONCURRENCY=1
    let cloud = FakeCloud::new("123456789012");
    let mut members: Vec<InstanceId> = (0..3)
        .map(|_| {
            cloud.add_instance(
                "us-east-1",
                &[(key::SCHEDULE, "daily"), (key::REBOOT_GROUP, "db")],
            )
        })
        .collect();
    members.sort();
    let ctx = ctx(&cloud, &[]);
    let mut now = SLOT;
    let mut request = daily();
    let mut per_run = Vec::new();
    for _ in 0..10 {
        cloud.set_now(now);
        let before = cloud.state().reboots.len();
        let out = run_wave(&ctx, request.clone(), now).await;
        per_run.push(cloud.state().reboots.len() - before);
        if !out.more {
            break;
        }
        let (body, delay) = cloud
            .state()
            .continuations
            .last()
            .cloned()
            .unwrap_or_default();
        assert_eq!(delay, 60, "CONTINUATION_DELAY_SECONDS defaults to 60");
        request = crate::create::request_from_direct(&body, now).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(request, CreateRequest::Continue(_, _)));
        now += time::Duration::seconds(i64::from(delay));
    }
    assert_eq!(
        per_run,
        vec![1, 1, 1],
        "one reboot per invocation, three invocations"
    );
    assert_eq!(cloud.live_images("us-east-1").len(), 3);
    assert_eq!(cloud.state().continuations.len(), 2);
}

#[tokio::test]
async fn without_a_queue_waves_are_reported_with_the_command_that_continues() {
    let cloud = FakeCloud::new("123456789012").without_continuations();
    for _ in 0..2 {
        cloud.add_instance(
            "us-east-1",
            &[(key::SCHEDULE, "daily"), (key::REBOOT_GROUP, "db")],
        );
    }
    let out = run_wave(&ctx(&cloud, &[]), daily(), SLOT).await;
    assert!(out.more);
    let line = item(&out.report, "schedule daily slot 2026-11-22T03:00:00Z")
        .map(|i| i.reason.clone())
        .unwrap_or_default();
    assert!(
        line.contains("amictl create-images --schedule daily --slot 2026-11-22T03:00:00Z"),
        "{line}"
    );
}

#[tokio::test]
async fn the_dry_run_plans_everything_and_changes_nothing() {
    let cloud = FakeCloud::new("123456789012");
    for _ in 0..2 {
        cloud.add_instance(
            "us-east-1",
            &[(key::SCHEDULE, "daily"), (key::REBOOT_GROUP, "db")],
        );
    }
    let gone = cloud.add_instance_with(
        "us-east-1",
        &[(key::SCHEDULE, "daily")],
        InstanceState::Terminated,
        &[],
    );
    let out = run_wave(&ctx(&cloud, &[("DRY_RUN", "true")]), daily(), SLOT).await;
    assert!(out.report.dry_run);
    assert_eq!(out.report.count(Outcome::Planned), 2);
    assert!(out
        .report
        .items
        .iter()
        .any(|i| i.reason.contains("wave 1 of 2")));
    assert!(out
        .report
        .items
        .iter()
        .any(|i| i.reason.contains("wave 2 of 2")));
    assert_eq!(outcome(&out.report, &gone), Some(Outcome::Skipped));
    let s = cloud.state();
    assert!(s.images.is_empty() && s.continuations.is_empty());
    assert!(
        s.calls.iter().all(|(_, op)| op.starts_with("Describe")),
        "{:?}",
        s.calls
    );
}

#[tokio::test]
async fn an_unknown_schedule_is_an_error_and_creates_nothing() {
    let cloud = FakeCloud::new("123456789012");
    cloud.add_instance("us-east-1", &[(key::SCHEDULE, "hourly")]);
    let report = run(
        &ctx(&cloud, &[]),
        CreateRequest::Schedule(ScheduleRun::new("hourly".into(), SLOT)),
        SLOT,
    )
    .await;
    assert_eq!(report.failed(), 1);
    assert!(
        report.items[0].reason.contains("SCHEDULES=daily,weekly"),
        "{report:?}"
    );
    assert_eq!(
        cloud.calls("CreateImage") + cloud.calls("DescribeInstances"),
        0
    );
}

#[tokio::test]
async fn a_failed_image_is_reported_deregistered_and_its_snapshots_deleted() {
    // GIVEN a managed image that ended failed, a stray managed snapshot of the same lineage,
    // and a foreign failed image
    let cloud = FakeCloud::new("123456789012");
    let inst = cloud.add_instance_with(
        "us-east-1",
        &[(key::SCHEDULE, "daily")],
        InstanceState::Running,
        &["/dev/sdf"],
    );
    let ctx = ctx(&cloud, &[]);
    run(&ctx, daily(), SLOT).await;
    let img = cloud.live_images("us-east-1")[0].clone();
    cloud.edit_image(&img.id, |i| i.state = ImageState::Failed);
    let stray = cloud.add_image(
        "us-east-1",
        "stray",
        SLOT,
        &img.tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    );
    let stray_snap = cloud.image(&stray).map(|i| i.disks[0].snapshot_id.clone());
    // the stray image is gone, its snapshot left behind
    cloud.edit_image(&stray, |i| i.state = ImageState::Deregistered);
    let foreign = cloud.add_image("us-east-1", "not ours", SLOT, &[]);
    cloud.edit_image(&foreign, |i| i.state = ImageState::Failed);

    // WHEN the failed events arrive (twice for ours)
    let request = |image: &ImageId| CreateRequest::ImageFailed {
        region: "us-east-1".into(),
        image: image.clone(),
        error: Some("boom".into()),
    };
    let report = run(&ctx, request(&img.id), SLOT).await;
    let again = run(&ctx, request(&img.id), SLOT).await;
    let other = run(&ctx, request(&foreign), SLOT).await;

    // THEN ours is reported with the error, deregistered, and all three snapshots deleted
    let it = item(&report, inst.as_str()).cloned();
    assert_eq!(it.as_ref().map(|i| i.outcome), Some(Outcome::Failed));
    assert!(it.is_some_and(
        |i| i.reason.contains("boom") && i.reason.contains("--slot 2026-11-22T03:00:00Z")
    ));
    assert_eq!(report.count(Outcome::Deleted), 1 + 3, "{report:?}");
    let s = cloud.state();
    assert_eq!(s.images[&img.id].state, ImageState::Deregistered);
    assert!(img
        .snapshot_ids()
        .all(|snap| !s.snapshots.contains_key(snap)));
    assert!(stray_snap.is_some_and(|snap| !s.snapshots.contains_key(&snap)));
    // the replay finds nothing to do; the foreign image is not touched
    assert_eq!(again.count(Outcome::Skipped), 1);
    assert_eq!(other.count(Outcome::Skipped), 1);
    assert_eq!(s.images[&foreign].state, ImageState::Failed);
    assert_eq!(
        s.snapshots.len(),
        1,
        "only the foreign image's snapshot is left"
    );
}

#[tokio::test]
async fn a_full_quota_fails_with_the_quota_to_raise_and_continuations_are_bounded() {
    // GIVEN the region's AMI quota is full for one instance, and another is throttled for good
    let cloud = FakeCloud::new("123456789012");
    let full = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    let stuck = cloud.add_instance("eu-west-1", &[(key::SCHEDULE, "daily")]);
    cloud.fail("CreateImage", Some(full.as_str()), "AMIQuotaExceeded", None);
    cloud.fail(
        "CreateImage",
        Some(stuck.as_str()),
        "RequestLimitExceeded",
        None,
    );
    let ctx = ctx(&cloud, &[]);

    // WHEN the schedule runs
    let first = run_wave(&ctx, daily(), SLOT).await;

    // THEN the quota item fails naming the quota (not deferred: minutes will not free it)
    assert_eq!(outcome(&first.report, &full), Some(Outcome::Failed));
    assert!(item(&first.report, full.as_str())
        .is_some_and(|i| i.reason.contains("quota") && i.reason.contains("Service Quotas")));
    // AND the throttled one is continued, round 1 …
    assert_eq!(outcome(&first.report, &stuck), Some(Outcome::Deferred));
    let body = cloud.state().continuations.last().map(|(b, _)| b.clone());
    assert_eq!(
        body.as_ref().map(|b| b["continue"]["round"].clone()),
        Some(serde_json::json!(1))
    );
    // … but never past MAX_CONTINUATION_ROUNDS: the last round reports the slot failed
    // and sends nothing.
    let sent = cloud.state().continuations.len();
    let last = run_wave(
        &ctx,
        CreateRequest::Continue(
            ScheduleRun::new("daily".into(), SLOT),
            super::MAX_CONTINUATION_ROUNDS,
        ),
        SLOT + time::Duration::hours(4),
    )
    .await;
    assert_eq!(
        cloud.state().continuations.len(),
        sent,
        "no further continuation"
    );
    assert!(!last.more);
    assert!(last
        .report
        .items
        .iter()
        .any(|i| i.outcome == Outcome::Failed && i.reason.contains("continuations; stopped")));
}

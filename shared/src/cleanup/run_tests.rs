//! Runner tests against the in-memory fake: GIVEN an inventory, WHEN cleanup runs, THEN
//! exactly the images the rules say are gone, and the report says why for every one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{run, CleanupRequest};
use crate::config::Config;
use crate::context::Context;
use crate::deadline::Deadline;
use crate::fake::FakeCloud;
use crate::model::{AccountId, Grantee, ImageId, ImageState, Region, Snapshot, SnapshotId};
use crate::report::{Outcome, RunReport};
use crate::tags::key;
use crate::time_util::rfc3339;

const NOW: OffsetDateTime = datetime!(2026-11-22 05:30 UTC);
const MUTATING: [&str; 10] = [
    "EnableImageDeprecation",
    "DisableImage",
    "DeregisterImage",
    "DeleteSnapshot",
    "CreateTags",
    "DeleteTags",
    "ModifyImageAttribute",
    "ModifySnapshotAttribute",
    "CreateImage",
    "CopyImage",
];

fn config(pairs: &[(&str, &str)]) -> Config {
    let mut map: BTreeMap<String, String> =
        BTreeMap::from([("AWS_REGION".to_owned(), "us-east-1".to_owned())]);
    map.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_lookup(|k| map.get(k).cloned()).unwrap_or_else(|e| panic!("test config: {e}"))
}

fn context(cloud: &FakeCloud, pairs: &[(&str, &str)]) -> Context {
    Context::new(Arc::new(cloud.clone()), config(pairs))
}

/// A managed daily image of `instance`, standing for the slot `days_ago` days before NOW.
fn managed(cloud: &FakeCloud, region: &str, instance: &str, days_ago: i64) -> ImageId {
    let slot = NOW - Duration::days(days_ago);
    cloud.add_image(
        region,
        &format!("ami-lifecycle/{instance}/daily/{days_ago}"),
        slot,
        &[
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_INSTANCE, instance),
            (key::SCHEDULE, "daily"),
            (key::SLOT, &rfc3339(slot)),
        ],
    )
}

fn mutating_calls(cloud: &FakeCloud) -> usize {
    MUTATING.iter().map(|op| cloud.calls(op)).sum()
}

fn live(cloud: &FakeCloud, id: &ImageId) -> bool {
    cloud
        .image(id)
        .is_some_and(|i| i.state != ImageState::Deregistered)
}

fn outcome_of(report: &RunReport, subject: &str) -> Option<(Outcome, String)> {
    report
        .items
        .iter()
        .find(|i| i.subject == subject)
        .map(|i| (i.outcome, i.reason.clone()))
}

fn partner() -> AccountId {
    AccountId::parse("111122223333").unwrap_or_else(|| panic!("valid account"))
}

#[tokio::test]
async fn retention_runs_per_lineage_in_every_managed_and_replica_region() {
    // GIVEN 4 images in the managed region, 3 replicas in a replica region, 1 in an unmanaged region.
    let cloud = FakeCloud::new("123456789012");
    let home: Vec<ImageId> = (0..4)
        .map(|d| managed(&cloud, "us-east-1", "i-1", d))
        .collect();
    let replicas: Vec<ImageId> = (0..3)
        .map(|d| managed(&cloud, "eu-west-1", "i-1", d))
        .collect();
    let elsewhere = managed(&cloud, "us-west-2", "i-1", 30);
    let ctx = context(
        &cloud,
        &[
            ("AMI_LIFECYCLE_REGIONS", "us-east-1"),
            ("REPLICA_REGIONS", "eu-west-1"),
            ("RETAIN", "count=2"),
        ],
    );

    // WHEN cleanup runs
    let report = run(&ctx, CleanupRequest::default(), NOW).await;

    // THEN each region keeps its own 2 newest, and each deletion was exactly one call.
    assert!(live(&cloud, &home[0]) && live(&cloud, &home[1]));
    assert!(!live(&cloud, &home[2]) && !live(&cloud, &home[3]));
    assert!(
        live(&cloud, &replicas[0]) && live(&cloud, &replicas[1]) && !live(&cloud, &replicas[2])
    );
    assert!(
        live(&cloud, &elsewhere),
        "a region the suite does not manage is not touched"
    );
    assert_eq!(report.count(Outcome::Deleted), 3);
    assert_eq!(
        mutating_calls(&cloud),
        3,
        "one DeregisterImage per deleted image, nothing else"
    );
    assert_eq!(report.metrics.get("gib_freed"), Some(&24.0));
    assert!(
        (report
            .metrics
            .get("monthly_saving_usd")
            .copied()
            .unwrap_or_default()
            - 1.2)
            .abs()
            < 1e-9
    );
    let (_, reason) = outcome_of(&report, home[3].as_str()).unwrap_or_else(|| panic!("reported"));
    assert!(
        reason.contains("past retention count=2 (RETAIN) [lineage i-1/daily]"),
        "{reason}"
    );
}

#[tokio::test]
async fn look_alikes_of_other_deployments_or_untagged_are_never_touched() {
    let cloud = FakeCloud::new("123456789012");
    managed(&cloud, "us-east-1", "i-1", 0);
    let theirs = cloud.add_image(
        "us-east-1",
        "ami-lifecycle/i-1/daily/9",
        NOW - Duration::days(9),
        &[
            (key::MANAGED_BY, "other-deployment"),
            (key::SOURCE_INSTANCE, "i-1"),
            (key::SCHEDULE, "daily"),
        ],
    );
    let untagged = cloud.add_image(
        "us-east-1",
        "ami-lifecycle/i-1/daily/8",
        NOW - Duration::days(8),
        &[(key::SOURCE_INSTANCE, "i-1")],
    );
    let ctx = context(&cloud, &[("RETAIN", "count=1")]);
    let report = run(&ctx, CleanupRequest::default(), NOW).await;
    assert!(live(&cloud, &theirs) && live(&cloud, &untagged));
    assert_eq!(mutating_calls(&cloud), 0);
    assert!(
        outcome_of(&report, theirs.as_str()).is_none(),
        "invisible, not even reported"
    );
}

#[tokio::test]
async fn images_in_use_or_shared_are_kept_and_the_report_says_by_what() {
    // GIVEN old images used by an instance, a launch template version, shared, and one free.
    let cloud = FakeCloud::new("123456789012");
    managed(&cloud, "us-east-1", "i-1", 0);
    let by_instance = managed(&cloud, "us-east-1", "i-1", 1);
    let by_template = managed(&cloud, "us-east-1", "i-1", 2);
    let shared = managed(&cloud, "us-east-1", "i-1", 3);
    let free = managed(&cloud, "us-east-1", "i-1", 4);
    let user = cloud.add_instance("us-east-1", &[("Name", "app")]);
    if let Some(i) = cloud.state().instances.get_mut(&user) {
        i.image_id = Some(by_instance.clone());
    }
    let lt = "arn:aws:ec2:us-east-1:123456789012:launch-template/lt-0abc:3";
    cloud.add_reference("us-east-1", "ec2:LaunchTemplate", lt, &by_template);
    cloud.state().launch_permissions.insert(
        shared.clone(),
        [Grantee::Account(partner())].into_iter().collect(),
    );
    let ctx = context(&cloud, &[("RETAIN", "count=1")]);

    // WHEN cleanup runs
    let report = run(&ctx, CleanupRequest::default(), NOW).await;

    // THEN only the free one goes.
    assert!(live(&cloud, &by_instance) && live(&cloud, &by_template) && live(&cloud, &shared));
    assert!(!live(&cloud, &free));
    let reason = |id: &ImageId| {
        outcome_of(&report, id.as_str())
            .map(|(_, r)| r)
            .unwrap_or_default()
    };
    assert!(reason(&by_instance).contains(&format!(
        "ec2:Instance arn:aws:ec2:us-east-1:123456789012:instance/{user}"
    )));
    assert!(
        reason(&by_template).contains(lt),
        "{}",
        reason(&by_template)
    );
    assert!(
        reason(&shared).contains("shared with 111122223333"),
        "{}",
        reason(&shared)
    );

    // AND with CLEANUP_SHARED=true the shared one goes too.
    let ctx = context(&cloud, &[("RETAIN", "count=1"), ("CLEANUP_SHARED", "true")]);
    run(&ctx, CleanupRequest::default(), NOW).await;
    assert!(!live(&cloud, &shared) && live(&cloud, &by_template));
}

#[tokio::test]
async fn a_failed_reference_check_keeps_everything_it_covered_until_a_run_can_check() {
    let cloud = FakeCloud::new("123456789012");
    let ids: Vec<ImageId> = (0..3)
        .map(|d| managed(&cloud, "us-east-1", "i-1", d))
        .collect();
    cloud.fail(
        "DescribeImageReferences",
        None,
        "RequestLimitExceeded",
        Some(1),
    );
    let ctx = context(&cloud, &[("RETAIN", "count=1")]);

    let report = run(&ctx, CleanupRequest::default(), NOW).await;
    assert!(ids.iter().all(|i| live(&cloud, i)), "never delete on doubt");
    assert_eq!(report.count(Outcome::Deferred), 2);
    assert_eq!(mutating_calls(&cloud), 0);

    let report = run(&ctx, CleanupRequest::default(), NOW).await;
    assert_eq!(report.count(Outcome::Deleted), 2);
}

#[tokio::test]
async fn a_throttled_deregistration_defers_that_image_and_the_rest_proceed() {
    let cloud = FakeCloud::new("123456789012");
    let ids: Vec<ImageId> = (0..4)
        .map(|d| managed(&cloud, "us-east-1", "i-1", d))
        .collect();
    cloud.fail(
        "DeregisterImage",
        Some(ids[2].as_str()),
        "RequestLimitExceeded",
        None,
    );
    let ctx = context(&cloud, &[("RETAIN", "count=1")]);
    let report = run(&ctx, CleanupRequest::default(), NOW).await;
    assert_eq!(
        outcome_of(&report, ids[2].as_str()).map(|o| o.0),
        Some(Outcome::Deferred)
    );
    assert!(live(&cloud, &ids[2]) && !live(&cloud, &ids[1]) && !live(&cloud, &ids[3]));
    assert_eq!(report.failed(), 0);
}

#[tokio::test]
async fn a_near_deadline_stops_before_any_change_and_later_runs_converge() {
    let cloud = FakeCloud::new("123456789012");
    let ids: Vec<ImageId> = (0..5)
        .map(|d| managed(&cloud, "us-east-1", "i-1", d))
        .collect();
    let ctx = context(&cloud, &[("RETAIN", "count=2")]);

    let near = ctx.clone().with_deadline(Deadline::after(
        StdDuration::ZERO,
        StdDuration::from_secs(10),
    ));
    let report = run(&near, CleanupRequest::default(), NOW).await;
    assert_eq!(mutating_calls(&cloud), 0);
    assert!(report.incomplete.is_some());
    assert_eq!(report.count(Outcome::Deferred), 3);

    let report = run(&ctx, CleanupRequest::default(), NOW).await;
    assert_eq!(report.count(Outcome::Deleted), 3);
    assert!(report.incomplete.is_none());
    let again = run(&ctx, CleanupRequest::default(), NOW).await;
    assert_eq!(again.count(Outcome::Deleted), 0, "converged");
    assert_eq!(ids.iter().filter(|i| live(&cloud, i)).count(), 2);
}

#[tokio::test]
async fn staged_retirement_deprecates_first_and_deregisters_after_the_grace() {
    let cloud = FakeCloud::new("123456789012");
    let ids: Vec<ImageId> = (0..3)
        .map(|d| managed(&cloud, "us-east-1", "i-1", d))
        .collect();
    let ctx = context(&cloud, &[("RETAIN", "count=2"), ("DEPRECATION_GRACE", "7")]);

    let report = run(&ctx, CleanupRequest::default(), NOW).await;
    assert_eq!(report.count(Outcome::Deprecated), 1);
    assert_eq!(
        cloud.image(&ids[2]).and_then(|i| i.deprecation_time),
        Some(NOW + Duration::minutes(1))
    );
    assert_eq!(cloud.calls("DeregisterImage"), 0);

    let report = run(&ctx, CleanupRequest::default(), NOW + Duration::days(3)).await;
    let (outcome, reason) =
        outcome_of(&report, ids[2].as_str()).unwrap_or_else(|| panic!("reported"));
    assert_eq!(outcome, Outcome::Kept);
    assert!(
        reason.contains("deregistered on or after 2026-11-29T05:31:00Z"),
        "{reason}"
    );
    assert_eq!(
        cloud.calls("EnableImageDeprecation"),
        1,
        "not deprecated twice"
    );

    run(
        &ctx,
        CleanupRequest::default(),
        NOW + Duration::days(7) + Duration::minutes(1),
    )
    .await;
    assert!(!live(&cloud, &ids[2]));
}

#[tokio::test]
async fn staged_retirement_disables_after_the_deprecation_grace_then_deregisters() {
    // GIVEN an image past retention, DEPRECATION_GRACE=2 and DISABLE_GRACE=3.
    let cloud = FakeCloud::new("123456789012");
    let ids: Vec<ImageId> = (0..2)
        .map(|d| managed(&cloud, "us-east-1", "i-1", d))
        .collect();
    let old = &ids[1];
    let settings = [
        ("RETAIN", "count=1"),
        ("DEPRECATION_GRACE", "2"),
        ("DISABLE_GRACE", "3"),
    ];
    let ctx = context(&cloud, &settings);
    run(&ctx, CleanupRequest::default(), NOW).await;
    assert_eq!(
        cloud.image(old).map(|i| i.state),
        Some(ImageState::Available)
    );

    // WHEN the deprecation grace is over THEN a dry run only plans the disable …
    let due = NOW + Duration::days(2) + Duration::minutes(1);
    let dry = context(
        &cloud,
        &[settings[0], settings[1], settings[2], ("DRY_RUN", "true")],
    );
    let report = run(&dry, CleanupRequest::default(), due).await;
    let (outcome, reason) = outcome_of(&report, old.as_str()).unwrap_or_else(|| panic!("reported"));
    assert_eq!(outcome, Outcome::Planned);
    assert!(reason.starts_with("would disable"), "{reason}");
    assert_eq!(cloud.calls("DisableImage"), 0);

    // … and a real run disables it, the clock restarted at the disable.
    let report = run(&ctx, CleanupRequest::default(), due).await;
    let (outcome, reason) = outcome_of(&report, old.as_str()).unwrap_or_else(|| panic!("reported"));
    assert_eq!(outcome, Outcome::Disabled);
    assert!(
        reason.contains("deregister on or after 2026-11-27T05:32:00Z (DISABLE_GRACE=3 days)"),
        "{reason}"
    );
    let img = cloud.image(old).unwrap_or_else(|| panic!("still there"));
    assert_eq!(img.state, ImageState::Disabled);
    assert_eq!(img.deprecation_time, Some(due + Duration::minutes(1)));
    assert_eq!(report.metrics.get("images_disabled"), Some(&1.0));

    // WHILE disabled it is kept, and said until when; nothing is called again.
    let report = run(&ctx, CleanupRequest::default(), due + Duration::days(1)).await;
    let (outcome, reason) = outcome_of(&report, old.as_str()).unwrap_or_else(|| panic!("reported"));
    assert_eq!(outcome, Outcome::Kept);
    assert!(
        reason.contains("deregistered on or after 2026-11-27T05:32:00Z"),
        "{reason}"
    );
    assert_eq!(cloud.calls("DisableImage"), 1);
    assert!(live(&cloud, old));

    // THEN after DISABLE_GRACE it is deregistered; the newest never moved.
    run(
        &ctx,
        CleanupRequest::default(),
        due + Duration::days(3) + Duration::minutes(1),
    )
    .await;
    assert!(!live(&cloud, old));
    assert!(live(&cloud, &ids[0]));
}

#[tokio::test]
async fn a_locked_snapshot_keeps_its_image_and_a_locked_orphan_is_not_attempted() {
    // GIVEN an image past retention whose snapshot is locked for 10 days, and a locked orphan.
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(NOW);
    managed(&cloud, "us-east-1", "i-1", 0);
    let old = managed(&cloud, "us-east-1", "i-1", 5);
    let snap = cloud
        .image(&old)
        .map(|i| i.disks[0].snapshot_id.clone())
        .unwrap_or_else(|| panic!("disk"));
    let until = NOW + Duration::days(10);
    cloud.lock_snapshot(&snap, "compliance", until);
    let gone = managed(&cloud, "us-east-1", "i-2", 40);
    let orphan = cloud
        .image(&gone)
        .map(|i| i.disks[0].snapshot_id.clone())
        .unwrap_or_else(|| panic!("disk"));
    cloud.edit_image(&gone, |i| i.state = ImageState::Deregistered);
    cloud.lock_snapshot(&orphan, "governance", until);
    let ctx = context(&cloud, &[("RETAIN", "count=1"), ("DELETE_ORPHANS", "true")]);

    // WHEN cleanup runs (twice) THEN neither is attempted, both reported with the lock's end.
    for _ in 0..2 {
        let report = run(&ctx, CleanupRequest::default(), NOW).await;
        let (outcome, reason) =
            outcome_of(&report, old.as_str()).unwrap_or_else(|| panic!("reported"));
        assert_eq!(outcome, Outcome::Kept);
        assert!(
            reason.contains("locked (compliance mode) until 2026-12-02T05:30:00Z"),
            "{reason}"
        );
        let (outcome, reason) =
            outcome_of(&report, orphan.as_str()).unwrap_or_else(|| panic!("reported"));
        assert_eq!(outcome, Outcome::Kept);
        assert!(
            reason.contains("locked (governance mode) until 2026-12-02T05:30:00Z"),
            "{reason}"
        );
        assert_eq!(report.metrics.get("snapshots_locked"), Some(&2.0));
    }
    assert_eq!(cloud.calls("DeregisterImage"), 0);
    assert_eq!(cloud.calls("DeleteSnapshot"), 0);

    // THEN once the lock has ended both go.
    let later = until + Duration::minutes(1);
    cloud.set_now(later);
    run(&ctx, CleanupRequest::default(), later).await;
    assert!(!live(&cloud, &old));
    assert!(!cloud.state().snapshots.contains_key(&snap));
    assert!(!cloud.state().snapshots.contains_key(&orphan));
}

#[tokio::test]
async fn a_snapshot_another_image_uses_is_kept_and_reported() {
    // GIVEN an old managed image whose snapshot an unmanaged image also uses.
    let cloud = FakeCloud::new("123456789012");
    managed(&cloud, "us-east-1", "i-1", 0);
    let old = managed(&cloud, "us-east-1", "i-1", 5);
    let other = cloud.add_image("us-east-1", "hand-made", NOW - Duration::days(5), &[]);
    let disks = cloud.image(&old).map(|i| i.disks).unwrap_or_default();
    let snap = disks[0].snapshot_id.clone();
    cloud.edit_image(&other, |i| i.disks = disks);
    let ctx = context(&cloud, &[("RETAIN", "count=1")]);

    let report = run(&ctx, CleanupRequest::default(), NOW).await;
    assert!(!live(&cloud, &old));
    assert!(cloud.state().snapshots.contains_key(&snap), "never forced");
    let (outcome, reason) =
        outcome_of(&report, snap.as_str()).unwrap_or_else(|| panic!("snapshot reported"));
    assert_eq!(outcome, Outcome::Kept);
    assert!(reason.contains("another image still uses it"), "{reason}");
    assert_eq!(report.metrics.get("gib_freed"), Some(&0.0));
}

#[tokio::test]
async fn orphans_are_reported_and_deleted_only_when_asked() {
    // GIVEN an orphan snapshot of ours, and a disabled image whose snapshot is not an orphan.
    let cloud = FakeCloud::new("123456789012");
    managed(&cloud, "us-east-1", "i-1", 0);
    let disabled = managed(&cloud, "us-east-1", "i-2", 3);
    cloud.edit_image(&disabled, |i| i.state = ImageState::Disabled);
    // Its tags as CreateImage wrote them: lineage, the image's name and the snapshot seal.
    let orphan = SnapshotId::new("snap-0orphan");
    let mut orphan_tags: crate::model::Tags = [
        (key::MANAGED_BY, "ami-lifecycle"),
        (key::SOURCE_INSTANCE, "i-9"),
        (key::SCHEDULE, "daily"),
        (key::IMAGE_NAME, "ami-lifecycle/i-9/daily/20261120T0300Z"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    orphan_tags.insert(
        key::SEAL.to_owned(),
        crate::fake::fake_seal(&crate::seal::Subject::snapshot(
            "ami-lifecycle",
            &crate::model::AccountId::parse("123456789012").unwrap_or_else(|| panic!("id")),
            &Region::new("us-east-1"),
            &orphan_tags,
        )),
    );
    // … and one that only claims to be ours (managed-by written by hand).
    let forged = SnapshotId::new("snap-0forged");
    for (id, tags) in [
        (&orphan, orphan_tags.clone()),
        (
            &forged,
            [(key::MANAGED_BY.to_owned(), "ami-lifecycle".to_owned())]
                .into_iter()
                .collect(),
        ),
    ] {
        cloud.state().snapshots.insert(
            id.clone(),
            Snapshot {
                id: id.clone(),
                region: Region::new("us-east-1"),
                tags,
                size_gib: 50,
                encrypted: false,
                kms_key: None,
                started: NOW - Duration::days(2),
                full_size_bytes: None,
            },
        );
    }

    let report = run(&context(&cloud, &[]), CleanupRequest::default(), NOW).await;
    let (outcome, reason) =
        outcome_of(&report, orphan.as_str()).unwrap_or_else(|| panic!("orphan reported"));
    assert_eq!(outcome, Outcome::Kept);
    assert!(reason.contains("DELETE_ORPHANS=true"), "{reason}");
    assert_eq!(report.metrics.get("orphan_snapshots"), Some(&2.0));
    assert!(cloud.state().snapshots.contains_key(&orphan));

    let report = run(
        &context(&cloud, &[("DELETE_ORPHANS", "true")]),
        CleanupRequest::default(),
        NOW,
    )
    .await;
    assert!(!cloud.state().snapshots.contains_key(&orphan));
    assert_eq!(report.metrics.get("gib_freed"), Some(&50.0));
    assert!(
        cloud.state().snapshots.contains_key(&forged),
        "an unsealed snapshot is never deleted"
    );
    assert_eq!(
        outcome_of(&report, forged.as_str()).map(|(o, _)| o),
        Some(Outcome::Unsealed)
    );
    assert!(
        live(&cloud, &disabled),
        "its snapshot was never taken for an orphan"
    );
    assert_eq!(cloud.calls("DeleteSnapshot"), 1);
}

#[tokio::test]
async fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let cloud = FakeCloud::new("123456789012");
    let ids: Vec<ImageId> = (0..3)
        .map(|d| managed(&cloud, "us-east-1", "i-1", d))
        .collect();
    let kept = managed(&cloud, "us-east-1", "i-1", 7);
    cloud.edit_image(&kept, |i| i.deregistration_protected = true);
    let ctx = context(&cloud, &[("RETAIN", "count=1"), ("DRY_RUN", "true")]);

    let report = run(&ctx, CleanupRequest::default(), NOW).await;
    assert_eq!(mutating_calls(&cloud), 0);
    assert!(report.dry_run);
    assert_eq!(report.count(Outcome::Planned), 2);
    let (_, reason) = outcome_of(&report, ids[2].as_str()).unwrap_or_else(|| panic!("planned"));
    assert!(
        reason.starts_with(
            "would deregister (snapshots of about 8 GiB by volume size): past retention count=1"
        ),
        "{reason}"
    );
    let (outcome, reason) = outcome_of(&report, kept.as_str()).unwrap_or_else(|| panic!("kept"));
    assert_eq!(outcome, Outcome::Kept);
    assert!(reason.contains("deregistration protection"), "{reason}");
    assert_eq!(report.metrics.get("gib_planned"), Some(&16.0));
    assert_eq!(report.metrics.get("gib_planned_volume_size"), Some(&16.0));
    assert_eq!(report.metrics.get("gib_planned_full_size"), Some(&0.0));
}

#[tokio::test]
async fn savings_count_the_full_snapshot_size_where_ec2_reports_it() {
    // GIVEN two images past retention: one whose snapshot EC2 reports 2.5 GiB written
    // (FullSnapshotSizeInBytes) of an 8 GiB volume, one without the figure.
    let cloud = FakeCloud::new("123456789012");
    managed(&cloud, "us-east-1", "i-1", 0);
    let measured = managed(&cloud, "us-east-1", "i-1", 1);
    managed(&cloud, "us-east-1", "i-1", 2);
    let snap = cloud
        .image(&measured)
        .map(|i| i.disks[0].snapshot_id.clone())
        .unwrap_or_else(|| panic!("disk"));
    if let Some(s) = cloud.state().snapshots.get_mut(&snap) {
        s.full_size_bytes = Some(5 * 512 * 1024 * 1024);
    }
    let settings = [("RETAIN", "count=1"), ("PRICE_PER_GIB_MONTH", "0.05")];

    // WHEN planned THEN the plan counts 2.5 + 8 GiB and says which basis each is.
    let dry = context(&cloud, &[settings[0], settings[1], ("DRY_RUN", "true")]);
    let report = run(&dry, CleanupRequest::default(), NOW).await;
    let (_, reason) = outcome_of(&report, measured.as_str()).unwrap_or_else(|| panic!("planned"));
    assert!(
        reason.contains("about 2.50 GiB by full snapshot size"),
        "{reason}"
    );
    assert_eq!(report.metrics.get("gib_planned"), Some(&10.5));
    assert_eq!(report.metrics.get("gib_planned_full_size"), Some(&2.5));
    assert_eq!(report.metrics.get("gib_planned_volume_size"), Some(&8.0));

    // WHEN applied THEN the same figures are freed, and the saving is priced on them.
    let report = run(&context(&cloud, &settings), CleanupRequest::default(), NOW).await;
    let (outcome, reason) =
        outcome_of(&report, measured.as_str()).unwrap_or_else(|| panic!("deleted"));
    assert_eq!(outcome, Outcome::Deleted);
    assert!(
        reason.contains("(2.50 GiB by full snapshot size)"),
        "{reason}"
    );
    assert_eq!(report.metrics.get("gib_freed"), Some(&10.5));
    assert_eq!(report.metrics.get("gib_freed_full_size"), Some(&2.5));
    assert_eq!(report.metrics.get("gib_freed_volume_size"), Some(&8.0));
    let saving = report
        .metrics
        .get("monthly_saving_usd")
        .copied()
        .unwrap_or_default();
    assert!((saving - 10.5 * 0.05).abs() < 1e-9, "{saving}");
}

#[tokio::test]
async fn a_region_that_cannot_be_read_is_reported_and_the_others_proceed() {
    let cloud = FakeCloud::new("123456789012");
    let home: Vec<ImageId> = (0..2)
        .map(|d| managed(&cloud, "us-east-1", "i-1", d))
        .collect();
    cloud.fail("DescribeImages", None, "UnauthorizedOperation", Some(1));
    let ctx = context(
        &cloud,
        &[
            ("AMI_LIFECYCLE_REGIONS", "us-east-1,eu-west-1"),
            ("RETAIN", "count=1"),
        ],
    );
    let report = run(&ctx, CleanupRequest::default(), NOW).await;
    // One region failed to read (whichever asked first); the other one still ran.
    assert_eq!(report.failed(), 1);
    let run2 = run(
        &ctx,
        CleanupRequest {
            regions: vec![Region::new("us-east-1")],
            ..CleanupRequest::default()
        },
        NOW,
    )
    .await;
    assert!(!live(&cloud, &home[1]));
    assert_eq!(run2.failed(), 0);
}

#[tokio::test]
async fn a_forged_managed_by_image_joins_no_lineage_is_never_deleted_and_is_reported() {
    // GIVEN a lineage of 2 real images under count=1, and a foreign image tagged with the
    // same lineage and an OLD slot (it would be the oldest member, the first to go).
    let cloud = FakeCloud::new("123456789012");
    let newest = managed(&cloud, "us-east-1", "i-1", 0);
    let older = managed(&cloud, "us-east-1", "i-1", 1);
    let old_slot = rfc3339(NOW - Duration::days(30));
    let forged = cloud.add_unsealed_image(
        "us-east-1",
        "someone-elses-golden-image",
        NOW - Duration::days(30),
        &[
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_INSTANCE, "i-1"),
            (key::SCHEDULE, "daily"),
            (key::SLOT, &old_slot),
        ],
    );

    let report = run(
        &context(&cloud, &[("RETAIN", "count=1")]),
        CleanupRequest::default(),
        NOW,
    )
    .await;

    // THEN the real surplus image goes, the forged one stays and is reported unsealed.
    assert!(live(&cloud, &newest));
    assert!(!live(&cloud, &older), "{:?}", report.items);
    assert!(live(&cloud, &forged), "never deleted: {:?}", report.items);
    assert_eq!(
        outcome_of(&report, forged.as_str()).map(|(o, _)| o),
        Some(Outcome::Unsealed)
    );
    assert_eq!(report.unsealed(), 1);
    assert_eq!(report.event_detail()["counts"]["unsealed"], 1);
}

#[tokio::test]
async fn a_forged_newest_image_with_its_own_retain_tag_neither_leads_nor_pushes_real_ones_out() {
    // GIVEN two real images under count=2 (both kept), and a foreign image tagged into the
    // same lineage with a NEWER slot and `retain=count=1`: taken for a member, it would be
    // the lineage's head, its rule would keep only itself and both real images would go.
    // The listing checks no seal; the plan must prove the members it keeps.
    let cloud = FakeCloud::new("123456789012");
    let newest = managed(&cloud, "us-east-1", "i-1", 1);
    let older = managed(&cloud, "us-east-1", "i-1", 2);
    let new_slot = rfc3339(NOW - Duration::hours(1));
    let forged = cloud.add_unsealed_image(
        "us-east-1",
        "forged-newest",
        NOW - Duration::hours(1),
        &[
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_INSTANCE, "i-1"),
            (key::SCHEDULE, "daily"),
            (key::SLOT, &new_slot),
            (key::RETAIN, "count=1"),
        ],
    );

    let report = run(
        &context(&cloud, &[("RETAIN", "count=2")]),
        CleanupRequest::default(),
        NOW,
    )
    .await;

    // THEN both real images stay (the real head's rule, count=2), the forged one too, and
    // it is reported unsealed, once.
    assert!(live(&cloud, &newest), "{:?}", report.items);
    assert!(live(&cloud, &older), "{:?}", report.items);
    assert!(live(&cloud, &forged));
    assert_eq!(
        outcome_of(&report, forged.as_str()).map(|(o, _)| o),
        Some(Outcome::Unsealed)
    );
    assert_eq!(report.unsealed(), 1);
    assert_eq!(report.count(Outcome::Deleted), 0);
}

#[tokio::test]
async fn a_slot_in_the_future_never_makes_an_image_the_newest() {
    // GIVEN today's real image, and yesterday's image whose slot tag says 2036 (a typo in
    // `amictl create-images --slot`, or an edit; sealed over that slot all the same).
    let cloud = FakeCloud::new("123456789012");
    let today = managed(&cloud, "us-east-1", "i-1", 0);
    let future = "2036-11-22T03:00:00Z";
    let bogus = cloud.add_image(
        "us-east-1",
        "ami-lifecycle/i-1/daily/bogus",
        NOW - Duration::days(1),
        &[
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_INSTANCE, "i-1"),
            (key::SCHEDULE, "daily"),
            (key::SLOT, future),
        ],
    );

    run(
        &context(&cloud, &[("RETAIN", "count=1")]),
        CleanupRequest::default(),
        NOW,
    )
    .await;

    // THEN retention counts the bogus image at its creation time: today's is the newest.
    assert!(live(&cloud, &today), "today's real backup is kept");
    assert!(!live(&cloud, &bogus), "the older one is past count=1");
}

#[tokio::test]
async fn deleting_a_shared_image_retires_the_kms_grants_the_suite_made_for_it(
) -> Result<(), crate::error::CloudError> {
    use crate::model::KeyRef;
    use crate::ports::Cloud;
    // GIVEN an old shared image (CLEANUP_SHARED=true) encrypted with a customer key, with
    // the suite's grant for the partner, and a grant of someone else on the same key.
    let cloud = FakeCloud::new("123456789012");
    let key_arn = cloud.add_key("us-east-1", None, false);
    managed(&cloud, "us-east-1", "i-1", 0);
    let old = managed(&cloud, "us-east-1", "i-1", 1);
    cloud.edit_image(&old, |i| {
        for d in &mut i.disks {
            d.encrypted = true;
            d.kms_key = Some(KeyRef::new(key_arn.as_str()));
        }
        i.tags
            .insert(key::SHARE_GRANTED.to_owned(), "111122223333".to_owned());
    });
    let kms = cloud.keys(&Region::new("us-east-1"));
    let ops = vec!["Decrypt".to_owned()];
    let ours = crate::share::plan::grant_name(&old, &partner());
    kms.create_grant(&key_arn, "arn:aws:iam::111122223333:root", &ops, &ours)
        .await?;
    kms.create_grant(
        &key_arn,
        "arn:aws:iam::999999999999:root",
        &ops,
        "hand-made",
    )
    .await?;

    let report = run(
        &context(&cloud, &[("RETAIN", "count=1"), ("CLEANUP_SHARED", "true")]),
        CleanupRequest::default(),
        NOW,
    )
    .await;

    // THEN the image is gone, its grant with it, and the other grant stays.
    assert!(!live(&cloud, &old), "{:?}", report.items);
    let names: Vec<Option<String>> = kms
        .list_grants(&key_arn)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(names, vec![Some("hand-made".to_owned())]);
    assert!(report
        .items
        .iter()
        .any(|i| i.outcome == Outcome::Revoked && i.reason.contains("1 KMS grant")));
    Ok(())
}

#[test]
fn batches_double_from_ten_to_a_hundred_and_cover_every_image_once() {
    let items: Vec<usize> = (0..437).collect();
    let sizes: Vec<usize> = run::ramped(&items).map(<[usize]>::len).collect();
    assert_eq!(sizes, vec![10, 20, 40, 80, 100, 100, 87]);
    let joined: Vec<usize> = run::ramped(&items).flatten().copied().collect();
    assert_eq!(joined, items);
    assert_eq!(run::ramped::<usize>(&[]).count(), 0);
}

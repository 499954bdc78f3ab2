//! Runner tests against the fake cloud: GIVEN a cloud, WHEN a request runs, THEN its state.

use std::time::Duration;

use time::macros::datetime;
use time::OffsetDateTime;

use super::plan::{client_token, ATTEMPT};
use super::{run, Request};
use crate::config::Config;
use crate::context::Context;
use crate::deadline::Deadline;
use crate::events::{parse_trigger, Trigger};
use crate::fake::FakeCloud;
use crate::model::{AccountId, ImageId, ImageState, Region};
use crate::report::{Outcome, RunReport};
use crate::tags::key;

const NOW: OffsetDateTime = datetime!(2026-11-22 03:05 UTC);

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_lookup(|k| {
        pairs
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| (k == "AWS_REGION").then(|| "us-east-1".to_owned()))
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A cloud with one managed image in us-east-1 and keys in eu-west-1 and us-west-2.
fn seeded() -> (FakeCloud, ImageId) {
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(NOW);
    cloud.add_key("eu-west-1", Some("alias/replicas"), false);
    cloud.add_key("us-west-2", Some("alias/replicas"), false);
    let src = cloud.add_image(
        "us-east-1",
        "ami-lifecycle/i-1/daily/20261122T0300Z",
        datetime!(2026-11-22 03:00 UTC),
        &[
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SCHEDULE, "daily"),
            (key::SLOT, "2026-11-22T03:00:00Z"),
        ],
    );
    (cloud, src)
}

fn two_regions() -> Config {
    config(&[
        ("REPLICA_REGIONS", "eu-west-1,us-west-2"),
        (
            "REPLICA_KMS_KEYS",
            "eu-west-1=alias/replicas,us-west-2=alias/replicas",
        ),
    ])
}

fn ctx(cloud: &FakeCloud, config: Config) -> Context {
    Context::new(std::sync::Arc::new(cloud.clone()), config)
}

fn event(image: &ImageId) -> Request {
    Request::Image {
        image: image.clone(),
        region: Some(Region::new("us-east-1")),
        from_event: true,
    }
}

fn copies_in(cloud: &FakeCloud, region: &str) -> Vec<crate::model::Image> {
    cloud
        .live_images(region)
        .into_iter()
        .filter(|i| i.tag(key::SOURCE_IMAGE).is_some())
        .collect()
}

fn reasons(report: &RunReport) -> String {
    report.render_table()
}

#[tokio::test]
async fn an_available_event_copies_once_to_each_destination_and_a_replay_copies_nothing() {
    // GIVEN a managed image and two destinations with keys
    let (cloud, src) = seeded();
    let ctx = ctx(&cloud, two_regions());
    // WHEN its available event runs
    let report = run(&ctx, event(&src), NOW).await;
    // THEN one encrypted copy per region, with lineage tags
    assert_eq!(report.count(Outcome::Copied), 2, "{}", reasons(&report));
    for region in ["eu-west-1", "us-west-2"] {
        let copies = copies_in(&cloud, region);
        assert_eq!(copies.len(), 1);
        let c = &copies[0];
        assert_eq!(c.tag(key::SOURCE_IMAGE), Some(src.as_str()));
        assert_eq!(c.tag(key::SOURCE_REGION), Some("us-east-1"));
        assert_eq!(c.tag(key::SCHEDULE), Some("daily"));
        assert_eq!(c.tag(ATTEMPT), Some("1"));
        assert!(c.disks.iter().all(|d| d.encrypted
            && d.kms_key
                .as_ref()
                .is_some_and(|k| k.as_str().contains(&format!("kms:{region}:")))));
    }
    // WHEN the same event is delivered again (copies still pending)
    let again = run(&ctx, event(&src), NOW).await;
    // THEN nothing is copied
    assert_eq!(
        again.count(Outcome::AlreadyExisted),
        2,
        "{}",
        reasons(&again)
    );
    assert_eq!(cloud.calls("CopyImage"), 2);
}

#[tokio::test]
async fn a_replicas_available_event_copies_nothing() {
    let (cloud, src) = seeded();
    let ctx = ctx(&cloud, two_regions());
    run(&ctx, event(&src), NOW).await;
    cloud.complete_pending();
    let replica = copies_in(&cloud, "eu-west-1").remove(0);
    let report = run(
        &ctx,
        Request::Image {
            image: replica.id.clone(),
            region: Some(Region::new("eu-west-1")),
            from_event: true,
        },
        NOW,
    )
    .await;
    assert_eq!(report.count(Outcome::Skipped), 1, "{}", reasons(&report));
    assert!(
        report.items[0].reason.contains("never replicated again"),
        "{}",
        reasons(&report)
    );
    assert_eq!(cloud.calls("CopyImage"), 2);
}

#[tokio::test]
async fn an_event_from_a_region_that_is_not_managed_copies_nothing() {
    let (cloud, _) = seeded();
    let elsewhere = cloud.add_image(
        "ap-south-1",
        "x",
        NOW,
        &[(key::MANAGED_BY, "ami-lifecycle")],
    );
    let request = Request::Image {
        image: elsewhere,
        region: Some(Region::new("ap-south-1")),
        from_event: true,
    };
    let report = run(&ctx(&cloud, two_regions()), request, NOW).await;
    assert_eq!(report.count(Outcome::Skipped), 1, "{}", reasons(&report));
    assert!(report.items[0].reason.contains("AMI_LIFECYCLE_REGIONS"));
    assert_eq!(cloud.calls("CopyImage"), 0);
}

#[tokio::test]
async fn a_copy_quota_defers_and_the_next_reconcile_completes() {
    // GIVEN CopyImage in us-west-2 answers ResourceLimitExceeded once
    let (cloud, src) = seeded();
    let ctx = ctx(&cloud, two_regions());
    cloud.fail(
        "CopyImage",
        Some(src.as_str()),
        "ResourceLimitExceeded",
        Some(1),
    );
    // WHEN the event runs
    let first = run(&ctx, event(&src), NOW).await;
    // THEN one region is copied, the other deferred (not dropped, not failed)
    assert_eq!(
        (
            first.count(Outcome::Copied),
            first.count(Outcome::Deferred),
            first.failed()
        ),
        (1, 1, 0),
        "{}",
        reasons(&first)
    );
    // WHEN the reconcile runs
    let second = run(&ctx, Request::Reconcile, NOW).await;
    // THEN the missing copy is made and the present one left alone
    assert_eq!(
        (
            second.count(Outcome::Copied),
            second.count(Outcome::AlreadyExisted)
        ),
        (1, 1),
        "{}",
        reasons(&second)
    );
    assert_eq!(
        copies_in(&cloud, "eu-west-1").len() + copies_in(&cloud, "us-west-2").len(),
        2
    );
}

#[tokio::test]
async fn a_failed_copy_is_reported_copied_again_with_a_fresh_token_and_removed() {
    let (cloud, src) = seeded();
    let ctx = ctx(&cloud, config(&[("REPLICA_REGIONS", "eu-west-1")]));
    run(&ctx, event(&src), NOW).await;
    let failed = copies_in(&cloud, "eu-west-1").remove(0);
    cloud.edit_image(&failed.id, |i| i.state = ImageState::Failed);
    // WHEN the failed event arrives
    let report = run(
        &ctx,
        Request::FailedCopy {
            image: failed.id.clone(),
            region: Region::new("eu-west-1"),
            error: Some("boom".into()),
        },
        NOW,
    )
    .await;
    // THEN it is reported, a second attempt is requested, and the failed copy is gone
    assert_eq!(
        (
            report.failed(),
            report.count(Outcome::Copied),
            report.count(Outcome::Deleted)
        ),
        (1, 1, 1),
        "{}",
        reasons(&report)
    );
    let live = copies_in(&cloud, "eu-west-1");
    assert_eq!(live.len(), 1);
    assert_ne!(live[0].id, failed.id);
    assert_eq!(live[0].tag(ATTEMPT), Some("2"));
    assert!(cloud.state().copy_tokens.contains_key(&(
        Region::new("eu-west-1"),
        client_token("ami-lifecycle", &src, &Region::new("eu-west-1"), 2)
    )));
    // WHEN the event is replayed
    let replay = run(
        &ctx,
        Request::FailedCopy {
            image: failed.id.clone(),
            region: Region::new("eu-west-1"),
            error: None,
        },
        NOW,
    )
    .await;
    // THEN nothing more happens
    assert_eq!(replay.count(Outcome::Skipped), 1, "{}", reasons(&replay));
    assert_eq!(cloud.calls("CopyImage"), 2);
}

#[tokio::test]
async fn a_failed_copy_whose_retry_is_deferred_stays_as_the_attempt_record() {
    let (cloud, src) = seeded();
    let ctx = ctx(&cloud, config(&[("REPLICA_REGIONS", "eu-west-1")]));
    run(&ctx, event(&src), NOW).await;
    let failed = copies_in(&cloud, "eu-west-1").remove(0);
    cloud.edit_image(&failed.id, |i| i.state = ImageState::Failed);
    cloud.fail("CopyImage", None, "RequestLimitExceeded", Some(1));
    let report = run(
        &ctx,
        Request::FailedCopy {
            image: failed.id.clone(),
            region: Region::new("eu-west-1"),
            error: None,
        },
        NOW,
    )
    .await;
    assert_eq!(report.count(Outcome::Deferred), 1, "{}", reasons(&report));
    assert!(cloud
        .image(&failed.id)
        .is_some_and(|i| i.state == ImageState::Failed));
    // The reconcile then makes attempt 2 and removes the failed copy.
    let next = run(&ctx, Request::Reconcile, NOW).await;
    assert_eq!(
        (next.count(Outcome::Copied), next.count(Outcome::Deleted)),
        (1, 1),
        "{}",
        reasons(&next)
    );
    assert_eq!(copies_in(&cloud, "eu-west-1")[0].tag(ATTEMPT), Some("2"));
}

#[tokio::test]
async fn a_disabled_key_fails_its_region_only() {
    let (cloud, src) = seeded();
    {
        let mut s = cloud.state();
        for ((region, _), k) in s.keys.iter_mut() {
            if region.as_str() == "eu-west-1" {
                k.enabled = false;
            }
        }
    }
    let ctx = ctx(&cloud, two_regions());
    let report = run(&ctx, event(&src), NOW).await;
    assert_eq!(
        (report.count(Outcome::Copied), report.failed()),
        (1, 1),
        "{}",
        reasons(&report)
    );
    let failure = report
        .items
        .iter()
        .find(|i| i.outcome == Outcome::Failed)
        .map(|i| i.reason.clone())
        .unwrap_or_default();
    assert!(
        failure.contains("eu-west-1")
            && failure.contains("alias/replicas")
            && failure.contains("not enabled"),
        "{failure}"
    );
    assert_eq!(
        cloud.calls("DescribeKey"),
        2,
        "each key is checked once per run"
    );
}

#[tokio::test]
async fn a_dry_run_prints_the_plan_and_copies_nothing() {
    let (cloud, src) = seeded();
    let mut c = two_regions();
    c.dry_run = true;
    let report = run(&ctx(&cloud, c), Request::Reconcile, NOW).await;
    assert_eq!(report.count(Outcome::Planned), 2, "{}", reasons(&report));
    assert!(report
        .items
        .iter()
        .all(|i| i.reason.contains("token ") && i.reason.contains("key arn:aws:kms:")));
    assert_eq!(cloud.calls("CopyImage"), 0);
    assert!(src.as_str().starts_with("ami-"));
}

#[tokio::test]
async fn a_near_deadline_defers_the_rest_and_marks_the_run_incomplete() {
    let (cloud, src) = seeded();
    let ctx = ctx(&cloud, two_regions()).with_deadline(Deadline::after(
        Duration::from_secs(1),
        Duration::from_secs(10),
    ));
    let report = run(&ctx, event(&src), NOW).await;
    assert_eq!(report.count(Outcome::Deferred), 2, "{}", reasons(&report));
    assert!(report.incomplete.is_some());
    assert_eq!(cloud.calls("CopyImage"), 0);
}

#[tokio::test]
async fn the_reconcile_adopts_allowed_shared_images_only() {
    // GIVEN images shared with us by an allowed and by an unknown account
    let cloud = FakeCloud::new("123456789012");
    let allowed = cloud.add_image("us-east-1", "vendor", NOW, &[]);
    let stranger = cloud.add_image("us-east-1", "stranger", NOW, &[]);
    let me = AccountId::parse("123456789012").map(crate::model::Grantee::Account);
    for (id, owner) in [(&allowed, "111122223333"), (&stranger, "444455556666")] {
        cloud.edit_image(id, |i| i.owner = AccountId::parse(owner));
        cloud
            .state()
            .launch_permissions
            .entry(id.clone())
            .or_default()
            .extend(me.clone());
    }
    let ctx = ctx(&cloud, config(&[("ADOPT_FROM", "111122223333")]));
    // WHEN the reconcile runs twice
    let first = run(&ctx, Request::Reconcile, NOW).await;
    let second = run(&ctx, Request::Reconcile, NOW).await;
    // THEN only the allowed image is copied, once
    assert_eq!(first.count(Outcome::Copied), 1, "{}", reasons(&first));
    assert_eq!(
        second.count(Outcome::AlreadyExisted),
        1,
        "{}",
        reasons(&second)
    );
    let adopted = copies_in(&cloud, "us-east-1");
    assert_eq!(adopted.len(), 1);
    assert_eq!(adopted[0].tag(key::SOURCE_IMAGE), Some(allowed.as_str()));
    assert_eq!(adopted[0].tag(key::SOURCE_ACCOUNT), Some("111122223333"));
}

#[test]
fn requests_come_from_events_and_direct_payloads() -> Result<(), Box<dyn std::error::Error>> {
    let c = config(&[]);
    let fixture = |name: &str| -> serde_json::Value {
        let path = format!(
            "{}/../tests/fixtures/events/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_default())
            .unwrap_or_default()
    };
    match Request::from_trigger(
        parse_trigger(&fixture("ami-state-change-available.json"))?,
        &c,
    )? {
        Request::Image {
            from_event: true,
            region: Some(_),
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    match Request::from_trigger(parse_trigger(&fixture("ami-state-change-failed.json"))?, &c)? {
        Request::FailedCopy { error, .. } => {
            assert_eq!(error.as_deref(), Some("Description of failure"))
        }
        other => panic!("{other:?}"),
    }
    let mut schedule = fixture("scheduled-event.json");
    schedule["resources"][0] =
        "arn:aws:events:us-east-1:123456789012:rule/ami-lifecycle-replicate-reconcile".into();
    assert_eq!(
        Request::from_trigger(parse_trigger(&schedule)?, &c)?,
        Request::Reconcile
    );
    let other_rule = Request::from_trigger(parse_trigger(&fixture("scheduled-event.json"))?, &c);
    assert!(other_rule.is_err_and(|e| e.to_string().contains("ami-lifecycle-replicate-reconcile")));
    let direct = |v: serde_json::Value| Request::from_trigger(Trigger::Direct(v), &c);
    assert_eq!(direct(serde_json::json!({}))?, Request::Reconcile);
    assert_eq!(
        direct(serde_json::json!({"image": "ami-0abc", "region": "eu-west-1"}))?,
        Request::Image {
            image: ImageId::new("ami-0abc"),
            region: Some(Region::new("eu-west-1")),
            from_event: false
        }
    );
    assert!(direct(serde_json::json!({"image": "snap-1"})).is_err());
    assert!(direct(serde_json::json!({"imgae": "ami-1"}))
        .is_err_and(|e| e.to_string().contains("unknown key")));
    Ok(())
}

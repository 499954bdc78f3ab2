//! Cross-account use checks in cleanup (`CLEANUP_SHARED=true`), against the fake: a hub
//! (123456789012) and two spokes it reaches through their spoke roles (A, B), plus an
//! account outside its reach (C).

use std::collections::BTreeMap;
use std::sync::Arc;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{run, CleanupRequest};
use crate::config::Config;
use crate::context::Context;
use crate::fake::FakeCloud;
use crate::model::{AccountId, Grantee, ImageId, ImageState};
use crate::report::{Outcome, RunReport};
use crate::tags::key;
use crate::time_util::rfc3339;

const NOW: OffsetDateTime = datetime!(2026-11-22 05:30 UTC);
const HUB: &str = "123456789012";
const A: &str = "222222222222";
const B: &str = "333333333333";
const C: &str = "444444444444";

fn context(cloud: &FakeCloud, extra: &[(&str, &str)]) -> Context {
    let mut map: BTreeMap<String, String> = [
        ("AWS_REGION", "us-east-1"),
        ("RETAIN", "count=1"),
        ("CLEANUP_SHARED", "true"),
        (
            "AMI_LIFECYCLE_ACCOUNTS",
            "123456789012,222222222222,333333333333",
        ),
        ("SPOKE_EXTERNAL_ID", "external-id-0123456789"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    map.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config =
        Config::from_lookup(|k| map.get(k).cloned()).unwrap_or_else(|e| panic!("config: {e}"));
    Context::new(Arc::new(cloud.clone()), config)
}

fn managed(cloud: &FakeCloud, days_ago: i64) -> ImageId {
    let slot = NOW - Duration::days(days_ago);
    cloud.add_image(
        "us-east-1",
        &format!("ami-lifecycle/i-1/daily/{days_ago}"),
        slot,
        &[
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_INSTANCE, "i-1"),
            (key::SCHEDULE, "daily"),
            (key::SLOT, &rfc3339(slot)),
        ],
    )
}

fn account(a: &str) -> Grantee {
    Grantee::Account(AccountId::parse(a).unwrap_or_else(|| panic!("{a}")))
}

fn share(cloud: &FakeCloud, image: &ImageId, with: &[&str]) {
    cloud
        .state()
        .launch_permissions
        .insert(image.clone(), with.iter().map(|a| account(a)).collect());
}

fn live(cloud: &FakeCloud, id: &ImageId) -> bool {
    cloud
        .image(id)
        .is_some_and(|i| i.state != ImageState::Deregistered)
}

fn item(report: &RunReport, id: &ImageId) -> (Outcome, String) {
    report
        .items
        .iter()
        .rev()
        .find(|i| i.subject == id.as_str())
        .map(|i| (i.outcome, i.reason.clone()))
        .unwrap_or_else(|| panic!("no item for {id}: {report:#?}"))
}

/// The hub, its clock at NOW.
fn hub() -> FakeCloud {
    let hub = FakeCloud::new(HUB);
    hub.set_now(NOW);
    hub
}

#[tokio::test]
async fn a_shared_image_a_spoke_runs_is_kept_with_its_grant_and_an_unused_one_goes() {
    // GIVEN the newest image, one shared with A (an instance in A runs it), one with B (unused)
    let hub = hub();
    let a = hub.add_account(A);
    let b = hub.add_account(B);
    managed(&hub, 0);
    let used = managed(&hub, 1);
    let unused = managed(&hub, 2);
    share(&hub, &used, &[A]);
    share(&hub, &unused, &[B]);
    let instance = a.add_instance("us-east-1", &[("Name", "app")]);
    if let Some(i) = a.state().instances.get_mut(&instance) {
        i.image_id = Some(used.clone());
    }

    // WHEN cleanup runs with CLEANUP_SHARED=true
    let report = run(&context(&hub, &[]), CleanupRequest::default(), NOW).await;

    // THEN the one A runs is kept, grant and all, the line naming the account and instance
    assert!(live(&hub, &used), "{report:#?}");
    assert_eq!(
        hub.launch_permissions(&used),
        [account(A)].into_iter().collect()
    );
    let (outcome, reason) = item(&report, &used);
    assert_eq!(outcome, Outcome::Kept);
    assert!(
        reason.contains(&format!(
            "kept: in use in {A} by instance {instance} (us-east-1)"
        )),
        "{reason}"
    );
    // AND the one B does not use goes, as before
    assert!(!live(&hub, &unused), "{report:#?}");
    assert_eq!(item(&report, &unused).0, Outcome::Deleted);
    // AND each spoke was asked once, through its cleanup spoke role; no usage report needed
    assert_eq!(a.calls("DescribeImageReferences"), 1);
    assert_eq!(b.calls("DescribeImageReferences"), 1);
    assert_eq!(hub.calls("CreateImageUsageReport"), 0);
    let assumed: Vec<String> = hub
        .org()
        .assumed
        .iter()
        .map(|(acct, role, _)| format!("{acct} {role}"))
        .collect();
    assert!(
        assumed
            .iter()
            .any(|r| r.starts_with(A) && r.ends_with("-spoke-cleanup")),
        "{assumed:?}"
    );
}

#[tokio::test]
async fn many_images_shared_with_one_account_are_asked_in_one_batch_and_cached_for_the_run() {
    // GIVEN 25 old images shared with A, none used, in two regions
    let hub = hub();
    let a = hub.add_account(A);
    hub.add_account(B);
    managed(&hub, 0);
    let old: Vec<ImageId> = (1..=25).map(|d| managed(&hub, d)).collect();
    for id in &old {
        share(&hub, id, &[A]);
    }

    // WHEN cleanup runs
    let report = run(&context(&hub, &[]), CleanupRequest::default(), NOW).await;

    // THEN all go, after one reference check in A per batch (10, then 15: batches double
    // from ten; the AWS adapter splits each into calls of 10 ids) and one AssumeRole for
    // the run
    assert!(old.iter().all(|id| !live(&hub, id)), "{report:#?}");
    assert_eq!(super::run::ramped(&old).count(), 2);
    assert_eq!(a.calls("DescribeImageReferences"), 2);
    assert_eq!(
        hub.org()
            .assumed
            .iter()
            .filter(|(acct, _, _)| acct == A)
            .count(),
        1
    );
}

#[tokio::test]
async fn an_account_outside_reach_goes_through_a_usage_report_never_deleted_on_unknown_use() {
    // GIVEN an old image shared with C, which AMI_LIFECYCLE_ACCOUNTS does not select, and
    // which runs 2 instances of it
    let hub = hub();
    hub.add_account(A);
    managed(&hub, 0);
    let old = managed(&hub, 1);
    share(&hub, &old, &[C]);
    hub.use_elsewhere("us-east-1", old.as_str(), C, "ec2:Instance", 2);
    let ctx = context(&hub, &[]);

    // WHEN cleanup runs: a report is requested, the image and its grant are kept
    let first = run(&ctx, CleanupRequest::default(), NOW).await;
    assert!(live(&hub, &old));
    assert_eq!(
        hub.launch_permissions(&old),
        [account(C)].into_iter().collect()
    );
    let reports = hub.usage_reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].report.accounts,
        vec![AccountId::parse(C).unwrap_or_else(|| panic!())]
    );
    let id = reports[0].report.id.clone();
    let (outcome, reason) = item(&first, &old);
    assert_eq!(outcome, Outcome::Deferred);
    assert!(
        reason.contains(&format!("usage being checked: {C}: report {id}")),
        "{reason}"
    );

    // AND a run while the report is pending keeps it and requests no second report
    let second = run(&ctx, CleanupRequest::default(), NOW).await;
    assert!(live(&hub, &old));
    assert_eq!(hub.calls("CreateImageUsageReport"), 1);
    assert!(item(&second, &old).1.contains(&id));

    // AND once the report is available it is still kept, naming C and what uses it
    hub.complete_usage_reports();
    let third = run(&ctx, CleanupRequest::default(), NOW).await;
    assert!(live(&hub, &old));
    let (outcome, reason) = item(&third, &old);
    assert_eq!(outcome, Outcome::Kept);
    assert!(
        reason.contains(&format!(
            "in use in {C} by 2 instance(s) (us-east-1, usage report"
        )),
        "{reason}"
    );
}

#[tokio::test]
async fn an_available_report_with_no_use_lets_the_image_go() {
    let hub = hub();
    managed(&hub, 0);
    let old = managed(&hub, 1);
    share(&hub, &old, &[C]);
    let ctx = context(&hub, &[]);
    run(&ctx, CleanupRequest::default(), NOW).await;
    assert!(live(&hub, &old));
    hub.complete_usage_reports();
    let report = run(&ctx, CleanupRequest::default(), NOW + Duration::hours(1)).await;
    assert!(!live(&hub, &old), "{report:#?}");
    assert_eq!(hub.calls("CreateImageUsageReport"), 1);
}

#[tokio::test]
async fn a_spoke_whose_role_refuses_goes_through_a_report_and_a_failed_check_keeps() {
    // GIVEN A's spoke role refuses, and B's reference check fails
    let hub = hub();
    let b = hub.add_account(B);
    hub.add_account(A);
    managed(&hub, 0);
    let old_a = managed(&hub, 1);
    let old_b = managed(&hub, 2);
    share(&hub, &old_a, &[A]);
    share(&hub, &old_b, &[B]);
    hub.fail("AssumeRole", Some(A), "AccessDenied", None);
    b.fail(
        "DescribeImageReferences",
        None,
        "RequestLimitExceeded",
        None,
    );

    // WHEN cleanup runs
    let report = run(&context(&hub, &[]), CleanupRequest::default(), NOW).await;

    // THEN both are kept: A through a usage report, B with the reason of its failed check
    assert!(live(&hub, &old_a) && live(&hub, &old_b));
    let (outcome, reason) = item(&report, &old_a);
    assert_eq!(outcome, Outcome::Deferred);
    assert!(
        reason.contains("usage being checked") && reason.contains("outside the hub's reach"),
        "{reason}"
    );
    let (outcome, reason) = item(&report, &old_b);
    assert_eq!(
        outcome,
        Outcome::Deferred,
        "throttling: the next run checks again"
    );
    assert!(
        reason.contains("cross-account use check failed") && reason.contains(B),
        "{reason}"
    );
}

#[tokio::test]
async fn a_dry_run_requests_no_report_and_deletes_nothing() {
    let hub = hub();
    managed(&hub, 0);
    let old = managed(&hub, 1);
    share(&hub, &old, &[C]);
    let report = run(
        &context(&hub, &[("DRY_RUN", "true")]),
        CleanupRequest::default(),
        NOW,
    )
    .await;
    assert!(live(&hub, &old));
    assert_eq!(hub.calls("CreateImageUsageReport"), 0);
    let (outcome, reason) = item(&report, &old);
    assert_eq!(outcome, Outcome::Deferred);
    assert!(
        reason.contains("a usage report would be requested"),
        "{reason}"
    );
}

#[tokio::test]
async fn with_accounts_unset_cleanup_shared_behaves_as_before() {
    // GIVEN an image shared with A, which runs it, and AMI_LIFECYCLE_ACCOUNTS unset
    let hub = hub();
    let a = hub.add_account(A);
    managed(&hub, 0);
    let old = managed(&hub, 1);
    share(&hub, &old, &[A]);
    let instance = a.add_instance("us-east-1", &[]);
    if let Some(i) = a.state().instances.get_mut(&instance) {
        i.image_id = Some(old.clone());
    }
    let config = Config::from_lookup(|k| match k {
        "AWS_REGION" => Some("us-east-1".to_owned()),
        "RETAIN" => Some("count=1".to_owned()),
        "CLEANUP_SHARED" => Some("true".to_owned()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let ctx = Context::new(Arc::new(hub.clone()), config);
    // WHEN cleanup runs with CLEANUP_SHARED=true THEN it goes, as before issue 18, unasked
    run(&ctx, CleanupRequest::default(), NOW).await;
    assert!(!live(&hub, &old));
    assert_eq!(a.calls("DescribeImageReferences"), 0);
    assert_eq!(hub.calls("AssumeRole"), 0);
}

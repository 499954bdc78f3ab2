//! Share revocations and cross-account use ([`super::hold`]), against the fake: a hub
//! (123456789012), spokes A and B it reaches through their spoke roles, and C outside its
//! reach. A grantee that uses the image keeps every grant, and the record keeps it.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::macros::datetime;
use time::OffsetDateTime;

use super::{run, ShareRequest};
use crate::config::Config;
use crate::context::Context;
use crate::fake::FakeCloud;
use crate::model::{AccountId, Grantee, ImageId, Region};
use crate::report::{Outcome, RunReport};
use crate::share::record;
use crate::tags::key;

const NOW: OffsetDateTime = datetime!(2026-11-22 10:05 UTC);
const HUB: &str = "123456789012";
const A: &str = "222222222222";
const B: &str = "333333333333";
const C: &str = "444444444444";

fn context(cloud: &FakeCloud, allowed: &str) -> Context {
    let map: BTreeMap<&str, String> = [
        ("AWS_REGION", "us-east-1".to_owned()),
        ("SHARE_ALLOWED", allowed.to_owned()),
        ("AMI_LIFECYCLE_ACCOUNTS", format!("{HUB},{A},{B}")),
        ("SPOKE_EXTERNAL_ID", "external-id-0123456789".to_owned()),
    ]
    .into_iter()
    .collect();
    let config = Config::from_lookup(|k| map.get(k).cloned()).unwrap_or_else(|e| panic!("{e}"));
    Context::new(Arc::new(cloud.clone()), config)
}

fn account(a: &str) -> Grantee {
    Grantee::Account(AccountId::parse(a).unwrap_or_else(|| panic!("{a}")))
}

fn recorded(cloud: &FakeCloud, id: &ImageId) -> Vec<Grantee> {
    let tags = cloud.image(id).map(|i| i.tags).unwrap_or_default();
    record::chunks(&tags)
        .iter()
        .flat_map(record::Chunk::grantees)
        .collect()
}

fn set_share_with(cloud: &FakeCloud, id: &ImageId, value: &str) {
    cloud.edit_image(id, |img| {
        img.tags
            .insert(key::SHARE_WITH.to_owned(), value.to_owned());
    });
}

async fn share(ctx: &Context, id: &ImageId) -> RunReport {
    let request = ShareRequest::Image {
        image: id.clone(),
        region: Some(Region::new("us-east-1")),
    };
    run(ctx, request, NOW).await
}

fn line(report: &RunReport, subject: &str) -> (Outcome, String) {
    report
        .items
        .iter()
        .find(|i| i.subject == subject)
        .map(|i| (i.outcome, i.reason.clone()))
        .unwrap_or_else(|| panic!("no line for {subject}: {report:#?}"))
}

/// The hub with an image shared (by the suite) with `with`; A runs an instance of it.
async fn shared_image(with: &str, allowed: &str) -> (FakeCloud, FakeCloud, ImageId, String) {
    let hub = FakeCloud::new(HUB);
    hub.set_now(NOW);
    let a = hub.add_account(A);
    hub.add_account(B);
    let id = hub.add_image(
        "us-east-1",
        "web",
        NOW,
        &[(key::MANAGED_BY, "ami-lifecycle"), (key::SHARE_WITH, with)],
    );
    let report = share(&context(&hub, allowed), &id).await;
    assert_eq!(
        report.count(Outcome::Granted),
        with.split(',').count(),
        "{report:#?}"
    );
    let instance = a.add_instance("us-east-1", &[]);
    if let Some(i) = a.state().instances.get_mut(&instance) {
        i.image_id = Some(id.clone());
    }
    (hub, a, id, instance.to_string())
}

#[tokio::test]
async fn a_share_with_change_keeps_the_grant_of_a_spoke_that_runs_the_image() {
    // GIVEN an image the suite shared with A and B; A runs an instance of it
    let allowed = format!("{A},{B},{C}");
    let (hub, a, id, instance) = shared_image(&format!("{A},{B}"), &allowed).await;

    // WHEN share-with drops both
    set_share_with(&hub, &id, HUB);
    let report = share(&context(&hub, &allowed), &id).await;

    // THEN A keeps its launch permission and stays in the record, the line naming where
    // it is used; B, which uses nothing, is revoked as before
    assert_eq!(
        hub.launch_permissions(&id),
        [account(A)].into_iter().collect(),
        "{report:#?}"
    );
    assert!(recorded(&hub, &id).contains(&account(A)));
    assert!(!recorded(&hub, &id).contains(&account(B)));
    let (outcome, reason) = line(&report, A);
    assert_eq!(outcome, Outcome::Kept);
    assert!(
        reason.contains(&format!(
            "kept: in use in {A} by instance {instance} (us-east-1)"
        )),
        "{reason}"
    );
    assert_eq!(line(&report, B).0, Outcome::Revoked);
    assert_eq!(a.calls("DescribeImageReferences"), 1);

    // AND once A no longer runs it, the next run revokes it
    a.state().instances.clear();
    let report = share(&context(&hub, &allowed), &id).await;
    assert!(hub.launch_permissions(&id).is_empty(), "{report:#?}");
    assert_eq!(line(&report, A).0, Outcome::Revoked);
    assert!(!recorded(&hub, &id).contains(&account(A)));
}

#[tokio::test]
async fn an_allow_list_shrink_keeps_the_grant_while_it_is_used() {
    // GIVEN an image shared with A, which runs it
    let (hub, _a, id, instance) = shared_image(A, &format!("{A},{B}")).await;

    // WHEN SHARE_ALLOWED no longer admits A
    let report = share(&context(&hub, B), &id).await;

    // THEN the grant stays, said once, with where it is used (no "never granted" line)
    assert_eq!(
        hub.launch_permissions(&id),
        [account(A)].into_iter().collect()
    );
    let lines: Vec<_> = report.items.iter().filter(|i| i.subject == A).collect();
    assert_eq!(lines.len(), 1, "{report:#?}");
    assert!(
        lines[0].reason.contains(&format!("instance {instance}")),
        "{}",
        lines[0].reason
    );
}

#[tokio::test]
async fn an_account_outside_reach_is_revoked_only_after_its_usage_report_says_unused() {
    // GIVEN an image shared with C (not selected by AMI_LIFECYCLE_ACCOUNTS)
    let allowed = format!("{A},{B},{C}");
    let (hub, _a, id, _) = shared_image(C, &allowed).await;

    // WHEN share-with drops C: a usage report is requested and the grant kept
    set_share_with(&hub, &id, HUB);
    let report = share(&context(&hub, &allowed), &id).await;
    assert_eq!(
        hub.launch_permissions(&id),
        [account(C)].into_iter().collect()
    );
    let reports = hub.usage_reports();
    assert_eq!(reports.len(), 1);
    let (outcome, reason) = line(&report, C);
    assert_eq!(outcome, Outcome::Deferred);
    assert!(
        reason.contains(&format!(
            "usage being checked: {C}: report {}",
            reports[0].report.id
        )),
        "{reason}"
    );

    // AND once the report is available with no use by C, the grant goes
    hub.complete_usage_reports();
    let report = share(&context(&hub, &allowed), &id).await;
    assert!(hub.launch_permissions(&id).is_empty(), "{report:#?}");
    assert_eq!(line(&report, C).0, Outcome::Revoked);
    assert_eq!(hub.calls("CreateImageUsageReport"), 1);
}

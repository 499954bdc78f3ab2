//! `SHARE_ALLOWED=org` against the fake: the organization read on every run, combined
//! with explicit entries, shrinking, and a failed listing.

use std::sync::Arc;

use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

use super::Share;
use crate::config::Config;
use crate::context::Context;
use crate::fake::FakeCloud;
use crate::model::{AccountId, Grantee, ImageId};
use crate::runner;
use crate::tags::key;

const NOW: OffsetDateTime = datetime!(2026-11-22 10:05 UTC);
const HUB: &str = "123456789012";
const MEMBER: &str = "111122223333";
const LEAVER: &str = "222233334444";
const SUSPENDED: &str = "555566667777";
const STRANGER: &str = "999988887777";
const PARTNER: &str = "444455556666";
const ORG: &str = "arn:aws:organizations::123456789012:organization/o-abc123def4";
const OU: &str = "arn:aws:organizations::123456789012:ou/o-abc123def4/ou-ab12-cdef5678";

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn acct(s: &str) -> Grantee {
    Grantee::Account(AccountId::parse(s).unwrap_or_else(|| panic!("{s}")))
}

/// A hub in an organization of itself, MEMBER, LEAVER (active) and SUSPENDED.
fn org() -> FakeCloud {
    let cloud = FakeCloud::new(HUB);
    cloud.org().arn = Some(ORG.to_owned());
    cloud.list_account(HUB, "hub", "ACTIVE", &[]);
    cloud.list_account(MEMBER, "member", "ACTIVE", &["ou-ab12-cdef5678"]);
    cloud.list_account(LEAVER, "leaver", "ACTIVE", &[]);
    cloud.list_account(SUSPENDED, "suspended", "SUSPENDED", &[]);
    cloud
}

fn context(cloud: &FakeCloud, allowed: &str) -> Context {
    let config = Config::from_lookup(|k| match k {
        "AWS_REGION" => Some("us-east-1".to_owned()),
        "SHARE_ALLOWED" => Some(allowed.to_owned()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    Context::new(Arc::new(cloud.clone()), config)
}

fn image(cloud: &FakeCloud, name: &str, share_with: &str) -> ImageId {
    cloud.add_image(
        "us-east-1",
        name,
        NOW,
        &[
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SHARE_WITH, share_with),
        ],
    )
}

async fn share(ctx: &Context, id: &ImageId) -> Result<Value, runner::RequestError> {
    runner::handle::<Share>(ctx, json!({"image": id.as_str()}), NOW).await
}

fn items_about<'a>(detail: &'a Value, subject: &str) -> Vec<&'a Value> {
    detail["items"]
        .as_array()
        .map(|a| a.iter().filter(|i| i["subject"] == subject).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn org_admits_its_active_accounts_itself_and_its_ous_and_is_read_every_run() -> TestResult {
    let cloud = org();
    let targets = format!("{MEMBER} {LEAVER} {SUSPENDED} {STRANGER} {ORG} {OU}");
    let id = image(&cloud, "web", &targets);
    let ctx = context(&cloud, "org");

    let detail = share(&ctx, &id).await?;
    let launch = cloud.launch_permissions(&id);
    let expected = [
        acct(MEMBER),
        acct(LEAVER),
        Grantee::Organization(ORG.into()),
        Grantee::OrganizationalUnit(OU.into()),
    ];
    assert_eq!(launch, expected.iter().cloned().collect(), "{detail}");
    let status = cloud
        .image(&id)
        .and_then(|i| i.tags.get(key::SHARE_STATUS).cloned())
        .unwrap_or_default();
    assert!(
        status.contains(STRANGER) && status.contains(SUSPENDED),
        "refused targets are named: {status}"
    );
    assert_eq!(cloud.calls("ListAccounts"), 1);
    assert_eq!(cloud.calls("DescribeOrganization"), 1);

    // LEAVER leaves the organization: the next run reads it again and revokes it.
    cloud.org().listed.retain(|(a, _)| a.id.as_str() != LEAVER);
    let detail = share(&ctx, &id).await?;
    assert_eq!(cloud.calls("ListAccounts"), 2, "read again on every run");
    let launch = cloud.launch_permissions(&id);
    assert!(!launch.contains(&acct(LEAVER)), "{detail}");
    assert!(launch.contains(&acct(MEMBER)));
    let img = cloud.image(&id).unwrap_or_else(|| panic!("{id}"));
    for d in &img.disks {
        assert!(!cloud
            .snapshot_permissions(&d.snapshot_id)
            .contains(&acct(LEAVER)));
    }
    Ok(())
}

#[tokio::test]
async fn org_combines_with_explicit_entries() -> TestResult {
    let cloud = org();
    let id = image(&cloud, "web", &format!("{MEMBER},{PARTNER},{STRANGER}"));
    let ctx = context(&cloud, &format!("org,{PARTNER}"));
    share(&ctx, &id).await?;
    assert_eq!(
        cloud.launch_permissions(&id),
        [acct(MEMBER), acct(PARTNER)].into_iter().collect()
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_listing_grants_nothing_that_needs_it_and_revokes_nothing_because_of_it(
) -> TestResult {
    let cloud = org();
    let id = image(&cloud, "web", &format!("{MEMBER} {LEAVER}"));
    let explicit = image(&cloud, "partner-only", PARTNER);
    let ctx = context(&cloud, &format!("org {PARTNER}"));
    share(&ctx, &id).await?;
    let granted = cloud.launch_permissions(&id);
    assert_eq!(granted, [acct(MEMBER), acct(LEAVER)].into_iter().collect());

    // Organizations refuses; meanwhile LEAVER left, and the tag now names another member.
    cloud.fail("ListAccounts", None, "AccessDeniedException", None);
    cloud.org().listed.retain(|(a, _)| a.id.as_str() != LEAVER);
    cloud.list_account("333344445555", "new", "ACTIVE", &[]);
    cloud.edit_image(&id, |i| {
        i.tags.insert(
            key::SHARE_WITH.to_owned(),
            format!("{MEMBER} {LEAVER} 333344445555"),
        );
    });
    let detail = share(&ctx, &id).await?;
    assert_eq!(
        cloud.launch_permissions(&id),
        granted,
        "nothing granted, nothing revoked: {detail}"
    );
    let about = items_about(&detail, id.as_str());
    assert!(
        about.iter().any(|i| i["outcome"] == "deferred"
            && i["reason"]
                .as_str()
                .is_some_and(|r| r.contains("333344445555"))),
        "{detail}"
    );
    let listing = items_about(&detail, "SHARE_ALLOWED=org");
    assert!(
        listing.iter().any(|i| i["outcome"] == "failed"
            && i["reason"]
                .as_str()
                .is_some_and(|r| r.contains("AccessDenied")
                    && r.contains("management account or a delegated administrator"))),
        "{detail}"
    );

    // An image whose targets the explicit entries decide is shared as usual.
    share(&ctx, &explicit).await?;
    assert_eq!(
        cloud.launch_permissions(&explicit),
        [acct(PARTNER)].into_iter().collect()
    );

    // Once Organizations answers again, the leaver is revoked and the newcomer granted.
    cloud.clear_faults();
    share(&ctx, &id).await?;
    assert_eq!(
        cloud.launch_permissions(&id),
        [acct(MEMBER), acct("333344445555")].into_iter().collect()
    );
    Ok(())
}

//! The many-accounts driver against the fake: a hub and two spokes, one of which has no
//! spoke role; the unset default calls neither STS nor Organizations.
use std::sync::Arc;

use serde_json::json;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::config::Config;
use crate::context::Context;
use crate::fake::FakeCloud;
use crate::report::Outcome;
use crate::runner::{self, Cleanup};
use crate::tags::key;

const NOW: OffsetDateTime = datetime!(2026-11-22 05:30 UTC);
const HUB: &str = "111111111111";
const SPOKE: &str = "222222222222";
const NO_ROLE: &str = "333333333333";
const SUSPENDED: &str = "444444444444";
const SECRET: &str = "0123456789abcdef-secret";

/// Three daily images of one lineage (RETAIN=count=1 retires two).
fn lineage(cloud: &FakeCloud) {
    for d in 0..3 {
        let slot = crate::time_util::rfc3339(NOW - Duration::days(d));
        cloud.add_image(
            "us-east-1",
            &format!("web-{d}"),
            NOW - Duration::days(d),
            &[
                (key::MANAGED_BY, "ami-lifecycle"),
                (key::SOURCE_INSTANCE, "i-1"),
                (key::SCHEDULE, "daily"),
                (key::SLOT, &slot),
            ],
        );
    }
}

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_lookup(|k| match k {
        "AWS_REGION" => Some("us-east-1".to_owned()),
        "RETAIN" => Some("count=1".to_owned()),
        _ => pairs
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| (*v).to_owned()),
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A hub (management account) and an organization of the hub, a spoke with its role, a
/// spoke without it and a suspended account; each of the first three holds a lineage.
fn org() -> (FakeCloud, FakeCloud, FakeCloud) {
    let hub = FakeCloud::new(HUB);
    let spoke = hub.add_account(SPOKE);
    let no_role = FakeCloud::new(NO_ROLE);
    for c in [&hub, &spoke, &no_role] {
        lineage(c);
    }
    hub.list_account(HUB, "hub", "ACTIVE", &[]);
    hub.list_account(SPOKE, "spoke", "ACTIVE", &["ou-ab12-workload1"]);
    hub.list_account(NO_ROLE, "no-role", "ACTIVE", &["ou-ab12-workload1"]);
    hub.list_account(SUSPENDED, "old", "SUSPENDED", &["ou-ab12-workload1"]);
    (hub, spoke, no_role)
}

#[tokio::test]
async fn every_account_of_the_org_is_cleaned_and_one_without_the_role_is_reported(
) -> Result<(), Box<dyn std::error::Error>> {
    let (hub, spoke, no_role) = org();
    let ctx = Context::new(
        Arc::new(hub.clone()),
        config(&[
            ("AMI_LIFECYCLE_ACCOUNTS", "org"),
            ("SPOKE_EXTERNAL_ID", SECRET),
        ]),
    );
    let detail = runner::handle::<Cleanup>(&ctx, json!({}), NOW).await?;

    assert_eq!(
        hub.live_images("us-east-1").len(),
        1,
        "the hub's own account"
    );
    assert_eq!(
        spoke.live_images("us-east-1").len(),
        1,
        "the spoke, through its role"
    );
    assert_eq!(no_role.live_images("us-east-1").len(), 3, "untouched");
    assert_eq!(detail["counts"]["deleted"], 4);
    assert_eq!(detail["metrics"]["accounts"], 2.0);

    let reports = hub.state().reports.clone();
    assert_eq!(reports.len(), 1, "one merged report, published by the hub");
    let report = &reports[0];
    let failed: Vec<_> = report
        .items
        .iter()
        .filter(|i| i.outcome == Outcome::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{}", report.render_table());
    let reason = &failed[0].reason;
    assert_eq!(
        failed[0].account.as_ref().map(|a| a.as_str()),
        Some(NO_ROLE)
    );
    for words in [
        NO_ROLE,
        "arn:aws:iam::333333333333:role/ami-lifecycle/ami-lifecycle-spoke-cleanup",
        "AccessDenied",
        "deploy infra/spoke-role.yaml",
        "HubAccountId=111111111111",
        "the other accounts are unaffected",
    ] {
        assert!(reason.contains(words), "{reason:?} lacks {words:?}");
    }
    let left_out: Vec<_> = report
        .items
        .iter()
        .filter(|i| i.outcome == Outcome::Skipped)
        .collect();
    assert_eq!(left_out.len(), 1);
    assert!(left_out[0].reason.contains("SUSPENDED"));
    // Every deletion names its account; the hub's come first.
    let deleted: Vec<&str> = report
        .items
        .iter()
        .filter(|i| i.outcome == Outcome::Deleted)
        .filter_map(|i| i.account.as_ref().map(|a| a.as_str()))
        .collect();
    assert_eq!(deleted, [HUB, HUB, SPOKE, SPOKE]);
    assert!(report.render_table().starts_with("ACCOUNT"));
    let assumed = hub.org().assumed.clone();
    assert_eq!(
        assumed,
        [(
            SPOKE.to_owned(),
            "arn:aws:iam::222222222222:role/ami-lifecycle/ami-lifecycle-spoke-cleanup".to_owned(),
            "ami-lifecycle-cleanup".to_owned()
        )]
    );
    Ok(())
}

#[tokio::test]
async fn an_ou_selects_its_active_accounts_and_the_hub_is_left_alone(
) -> Result<(), Box<dyn std::error::Error>> {
    let (hub, spoke, _) = org();
    hub.fail("AssumeRole", Some(NO_ROLE), "AccessDenied", None);
    let ctx = Context::new(
        Arc::new(hub.clone()),
        config(&[
            ("AMI_LIFECYCLE_ACCOUNTS", "ou:ou-ab12-workload1"),
            ("SPOKE_EXTERNAL_ID", SECRET),
        ]),
    );
    let report = runner::run_request::<Cleanup>(&ctx, Default::default(), NOW).await;
    assert_eq!(
        hub.live_images("us-east-1").len(),
        3,
        "{}",
        report.render_table()
    );
    assert_eq!(spoke.live_images("us-east-1").len(), 1);
    assert_eq!(report.failed(), 1);
    Ok(())
}

#[tokio::test]
async fn organizations_refusing_the_listing_is_reported_and_named_accounts_still_run(
) -> Result<(), Box<dyn std::error::Error>> {
    let (hub, spoke, _) = org();
    hub.fail("ListAccounts", None, "AccessDeniedException", None);
    let ctx = Context::new(
        Arc::new(hub.clone()),
        config(&[
            ("AMI_LIFECYCLE_ACCOUNTS", &format!("org,{SPOKE}")),
            ("SPOKE_EXTERNAL_ID", SECRET),
        ]),
    );
    let report = runner::run_request::<Cleanup>(&ctx, Default::default(), NOW).await;
    assert_eq!(spoke.live_images("us-east-1").len(), 1);
    assert_eq!(hub.live_images("us-east-1").len(), 3);
    let refused = report.items.iter().find(|i| i.subject == "org");
    assert!(
        refused.is_some_and(|i| i.outcome == Outcome::Failed
            && i.reason
                .contains("management account or a delegated administrator")),
        "{}",
        report.render_table()
    );
    Ok(())
}

#[tokio::test]
async fn unset_calls_neither_sts_nor_organizations_and_reports_no_account(
) -> Result<(), Box<dyn std::error::Error>> {
    let (hub, spoke, _) = org();
    let ctx = Context::new(Arc::new(hub.clone()), config(&[]));
    let detail = runner::handle::<Cleanup>(&ctx, json!({}), NOW).await?;
    assert_eq!(hub.live_images("us-east-1").len(), 1);
    assert_eq!(spoke.live_images("us-east-1").len(), 3);
    for op in ["GetCallerIdentity", "AssumeRole", "ListAccounts"] {
        assert_eq!(hub.calls(op), 0, "{op}");
    }
    assert!(detail["metrics"].get("accounts").is_none());
    let items = detail["items"].as_array().cloned().unwrap_or_default();
    assert!(items.iter().all(|i| i.get("account").is_none()), "{detail}");
    Ok(())
}

#[tokio::test]
async fn an_image_event_without_an_account_acts_in_the_hub_only(
) -> Result<(), Box<dyn std::error::Error>> {
    let (hub, spoke, _) = org();
    let ctx = Context::new(
        Arc::new(hub.clone()),
        config(&[
            ("AMI_LIFECYCLE_ACCOUNTS", "org"),
            ("SPOKE_EXTERNAL_ID", SECRET),
        ]),
    );
    let opened = super::open_accounts(&ctx, "cleanup", NOW, super::Scope::Event(None)).await;
    let accounts: Vec<&str> = opened.contexts.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(accounts, [HUB]);
    assert_eq!(hub.calls("ListAccounts"), 0);
    assert_eq!(spoke.live_images("us-east-1").len(), 3);
    Ok(())
}

#[tokio::test]
async fn an_event_forwarded_from_a_spoke_acts_in_that_spoke_through_its_role(
) -> Result<(), Box<dyn std::error::Error>> {
    let (hub, _spoke, _) = org();
    let ctx = Context::new(
        Arc::new(hub.clone()),
        config(&[
            ("AMI_LIFECYCLE_ACCOUNTS", "ou:ou-ab12-workload1"),
            ("SPOKE_EXTERNAL_ID", SECRET),
        ]),
    );
    let event = json!({"account": SPOKE, "detail-type": "EC2 AMI State Change"});
    let opened = super::open_accounts(&ctx, "replicate", NOW, super::Scope::of_event(&event)).await;
    let accounts: Vec<&str> = opened.contexts.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(accounts, [SPOKE], "the event's account, selected by its OU");
    let assumed: Vec<String> = hub.org().assumed.iter().map(|a| a.0.clone()).collect();
    assert_eq!(assumed, [SPOKE], "through the spoke's role");
    // An account the selection does not name: nothing opened, one skipped line.
    let event = json!({"account": "999999999999"});
    let opened = super::open_accounts(&ctx, "replicate", NOW, super::Scope::of_event(&event)).await;
    assert!(opened.contexts.is_empty());
    assert!(opened
        .report
        .items
        .iter()
        .any(|i| i.outcome == Outcome::Skipped
            && i.reason.contains("999999999999")
            && i.reason.contains("does not select")));
    Ok(())
}

#[tokio::test]
async fn an_image_event_in_a_hub_that_is_not_selected_does_nothing(
) -> Result<(), Box<dyn std::error::Error>> {
    let (hub, _, _) = org();
    let ctx = Context::new(
        Arc::new(hub.clone()),
        config(&[
            ("AMI_LIFECYCLE_ACCOUNTS", "ou:ou-ab12-workload1"),
            ("SPOKE_EXTERNAL_ID", SECRET),
        ]),
    );
    let opened = super::open_accounts(&ctx, "share", NOW, super::Scope::Event(None)).await;
    assert!(opened.contexts.is_empty());
    assert_eq!(hub.calls("ListAccountsForParent"), 1);
    assert!(opened
        .report
        .items
        .iter()
        .any(|i| i.outcome == Outcome::Skipped && i.reason.contains("does not select")));
    // Named by id: no listing needed.
    let ctx = Context::new(
        Arc::new(hub.clone()),
        config(&[
            ("AMI_LIFECYCLE_ACCOUNTS", &format!("{HUB},{SPOKE}")),
            ("SPOKE_EXTERNAL_ID", SECRET),
        ]),
    );
    let opened = super::open_accounts(&ctx, "share", NOW, super::Scope::Event(None)).await;
    assert_eq!(opened.contexts.len(), 1);
    assert_eq!(hub.calls("ListAccountsForParent"), 1);
    Ok(())
}

#[tokio::test]
async fn another_account_without_an_external_id_says_to_set_it(
) -> Result<(), Box<dyn std::error::Error>> {
    let (hub, spoke, _) = org();
    let ctx = Context::new(
        Arc::new(hub.clone()),
        config(&[("AMI_LIFECYCLE_ACCOUNTS", SPOKE)]),
    );
    let report = runner::run_request::<Cleanup>(&ctx, Default::default(), NOW).await;
    assert_eq!(spoke.live_images("us-east-1").len(), 3);
    assert_eq!(hub.calls("AssumeRole"), 0);
    assert_eq!(report.failed(), 1, "{}", report.render_table());
    assert!(
        report.items[0]
            .reason
            .contains("SPOKE_EXTERNAL_ID is not set"),
        "{}",
        report.render_table()
    );
    Ok(())
}

#[tokio::test]
async fn a_continuation_asked_by_every_account_is_sent_once(
) -> Result<(), Box<dyn std::error::Error>> {
    let (hub, _, _) = org();
    let ctx = Context::new(
        Arc::new(hub.clone()),
        config(&[
            ("AMI_LIFECYCLE_ACCOUNTS", &format!("{HUB},{SPOKE}")),
            ("SPOKE_EXTERNAL_ID", SECRET),
        ]),
    );
    let opened = super::open_accounts(&ctx, "create-image", NOW, super::Scope::Selected).await;
    assert_eq!(opened.contexts.len(), 2);
    for (_, actx) in &opened.contexts {
        let Some(c) = actx.cloud.continuations() else {
            panic!("the hub's queue");
        };
        c.continue_later(&json!({"schedule": "daily", "round": 1}), 60)
            .await?;
    }
    assert_eq!(hub.state().continuations.len(), 1);
    Ok(())
}

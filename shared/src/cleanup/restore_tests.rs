//! `amictl restore` against the fake: GIVEN an image cleanup disabled, WHEN restored, THEN
//! it is available, no longer deprecated, kept by cleanup, and the report says the share
//! reconcile re-grants; never for an image that is not this deployment's sealed one.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{restore, steps, NotRestorable, Steps};
use crate::cleanup::{run, CleanupRequest};
use crate::config::Config;
use crate::context::Context;
use crate::fake::FakeCloud;
use crate::model::{ImageId, ImageState, Region};
use crate::report::{Outcome, RunReport};
use crate::tags::key;
use crate::time_util::rfc3339;

const NOW: OffsetDateTime = datetime!(2026-11-22 05:30 UTC);

fn context(cloud: &FakeCloud, extra: &[(&str, &str)]) -> Context {
    let mut map: BTreeMap<String, String> = [
        ("AWS_REGION", "us-east-1"),
        ("RETAIN", "count=1"),
        ("DISABLE_GRACE", "5"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    map.insert("AMI_LIFECYCLE_REGIONS".into(), "us-east-1".into());
    let config =
        Config::from_lookup(|k| map.get(k).cloned()).unwrap_or_else(|e| panic!("config: {e}"));
    Context::new(Arc::new(cloud.clone()), config)
}

fn managed(cloud: &FakeCloud, days_ago: i64, tags: &[(&str, &str)]) -> ImageId {
    let slot = NOW - Duration::days(days_ago);
    let slot_text = rfc3339(slot);
    let mut all = vec![
        (key::MANAGED_BY, "ami-lifecycle"),
        (key::SOURCE_INSTANCE, "i-1"),
        (key::SCHEDULE, "daily"),
        (key::SLOT, slot_text.as_str()),
    ];
    all.extend_from_slice(tags);
    cloud.add_image("us-east-1", &format!("web/{days_ago}"), slot, &all)
}

fn only(report: &RunReport) -> (Outcome, String) {
    assert_eq!(report.items.len(), 1, "{report:#?}");
    (report.items[0].outcome, report.items[0].reason.clone())
}

fn regions() -> Vec<Region> {
    vec![Region::new("us-east-1")]
}

#[tokio::test]
async fn a_disabled_image_is_re_enabled_undeprecated_kept_and_the_share_reconcile_named() {
    // GIVEN cleanup disabled an image past retention.
    let cloud = FakeCloud::new("123456789012");
    managed(&cloud, 0, &[]);
    let old = managed(&cloud, 3, &[(key::SHARE_WITH, "111122223333")]);
    let ctx = context(&cloud, &[("CLEANUP_SHARED", "true")]);
    run(&ctx, CleanupRequest::default(), NOW).await;
    let img = cloud.image(&old).unwrap_or_else(|| panic!("exists"));
    assert_eq!(img.state, ImageState::Disabled);
    assert!(img.deprecation_time.is_some());

    // WHEN restored
    let report = restore(&ctx, &old, &regions(), NOW + Duration::days(1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // THEN available, deprecation cancelled, tagged keep, and the report says who re-shares.
    let (outcome, reason) = only(&report);
    assert_eq!(outcome, Outcome::Restored);
    assert!(
        reason.contains("re-enabled (EnableImage)")
            && reason.contains("deprecation cancelled")
            && reason.contains("ami-lifecycle:keep=true")
            && reason.contains(
                "the share reconcile grants again what its ami-lifecycle:share-with tag asks"
            )
            && reason.contains(&format!("amictl share --image {old}")),
        "{reason}"
    );
    let img = cloud.image(&old).unwrap_or_else(|| panic!("exists"));
    assert_eq!(img.state, ImageState::Available);
    assert_eq!(img.deprecation_time, None);
    assert_eq!(img.tags.get(key::KEEP).map(String::as_str), Some("true"));

    // … and cleanup leaves it alone from now on (the keep tag), well past DISABLE_GRACE.
    let report = run(&ctx, CleanupRequest::default(), NOW + Duration::days(30)).await;
    assert_eq!(
        cloud.image(&old).map(|i| i.state),
        Some(ImageState::Available)
    );
    assert_eq!(cloud.calls("DisableImage"), 1);
    let item = report.items.iter().find(|i| i.subject == old.as_str());
    assert!(
        item.is_some_and(|i| i.outcome == Outcome::Kept),
        "{report:#?}"
    );

    // Restoring again changes nothing.
    let report = restore(&ctx, &old, &regions(), NOW + Duration::days(31))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(only(&report).0, Outcome::Unchanged);
    assert_eq!(cloud.calls("EnableImage"), 1);
}

#[tokio::test]
async fn a_dry_run_restore_only_says_what_it_would_do() {
    let cloud = FakeCloud::new("123456789012");
    let id = managed(&cloud, 3, &[]);
    cloud.edit_image(&id, |i| {
        i.state = ImageState::Disabled;
        i.deprecation_time = Some(NOW);
    });
    let ctx = context(&cloud, &[("DRY_RUN", "true")]);
    let report = restore(&ctx, &id, &regions(), NOW)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (outcome, reason) = only(&report);
    assert_eq!(outcome, Outcome::Planned);
    assert!(reason.starts_with("would restore: re-enabled"), "{reason}");
    for call in ["EnableImage", "DisableImageDeprecation", "CreateTags"] {
        assert_eq!(cloud.calls(call), 0, "{call}");
    }
}

#[tokio::test]
async fn images_not_sealed_by_this_deployment_are_never_restored() {
    let cloud = FakeCloud::new("123456789012");
    let forged = cloud.add_unsealed_image(
        "us-east-1",
        "forged",
        NOW,
        &[
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_INSTANCE, "i-1"),
        ],
    );
    let foreign = cloud.add_image("us-east-1", "theirs", NOW, &[(key::MANAGED_BY, "other")]);
    for id in [&forged, &foreign] {
        cloud.edit_image(id, |i| i.state = ImageState::Disabled);
    }
    let ctx = context(&cloud, &[]);
    let report = restore(&ctx, &forged, &regions(), NOW)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(only(&report).0, Outcome::Unsealed);
    let report = restore(&ctx, &foreign, &regions(), NOW)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (outcome, reason) = only(&report);
    assert_eq!(outcome, Outcome::Refused);
    assert!(
        reason.contains("not tagged ami-lifecycle:managed-by=ami-lifecycle"),
        "{reason}"
    );
    assert_eq!(cloud.calls("EnableImage"), 0);
    assert_eq!(
        cloud.image(&forged).map(|i| i.state),
        Some(ImageState::Disabled)
    );

    let missing = ImageId::new("ami-0123456789abcdef0");
    let err = restore(&ctx, &missing, &regions(), NOW)
        .await
        .err()
        .unwrap_or_else(|| panic!("not found is an error"));
    assert!(
        err.contains("ami-0123456789abcdef0")
            && err.contains("us-east-1")
            && err.contains("--region"),
        "{err}"
    );
}

#[test]
fn steps_follow_the_state_and_tags() {
    let cloud = FakeCloud::new("123456789012");
    let id = managed(&cloud, 1, &[(key::KEEP, "true")]);
    let mut img = cloud.image(&id).unwrap_or_else(|| panic!("exists"));
    assert_eq!(
        steps(&img, "ami-lifecycle"),
        Ok(Steps {
            enable: false,
            cancel_deprecation: false,
            keep: false
        })
    );
    img.state = ImageState::Disabled;
    img.deprecation_time = Some(NOW);
    img.tags.remove(key::KEEP);
    assert_eq!(
        steps(&img, "ami-lifecycle"),
        Ok(Steps {
            enable: true,
            cancel_deprecation: true,
            keep: true
        })
    );
    img.state = ImageState::Pending;
    assert_eq!(
        steps(&img, "ami-lifecycle"),
        Err(NotRestorable::State(ImageState::Pending))
    );
    assert_eq!(steps(&img, "other"), Err(NotRestorable::NotManaged));
}

//! Recycle Bin coverage in the cleanup report, against the in-memory fake: GIVEN the
//! region's retention rules, WHEN cleanup deletes, THEN each deleted image and snapshot is
//! reported restorable until a time under a named rule, or deleted for good.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{run, CleanupRequest};
use crate::config::Config;
use crate::context::Context;
use crate::fake::FakeCloud;
use crate::model::{ImageId, ImageState, SnapshotId};
use crate::ports::{RecycleResource, RetentionRule, RuleTag};
use crate::report::{Outcome, RunReport};
use crate::tags::key;
use crate::time_util::rfc3339;

const NOW: OffsetDateTime = datetime!(2026-11-22 05:30 UTC);
const REGION: &str = "us-east-1";

fn context(cloud: &FakeCloud, pairs: &[(&str, &str)]) -> Context {
    let mut map: BTreeMap<String, String> = BTreeMap::from([
        ("AWS_REGION".to_owned(), REGION.to_owned()),
        ("RETAIN".to_owned(), "count=1".to_owned()),
    ]);
    map.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config =
        Config::from_lookup(|k| map.get(k).cloned()).unwrap_or_else(|e| panic!("config: {e}"));
    Context::new(Arc::new(cloud.clone()), config)
}

/// A managed daily image of `instance` standing for the slot `days_ago` days before NOW,
/// with `extra` tags on the image and its snapshot.
fn managed(cloud: &FakeCloud, instance: &str, days_ago: i64, extra: &[(&str, &str)]) -> ImageId {
    let slot = NOW - Duration::days(days_ago);
    let slot_text = rfc3339(slot);
    let mut tags = vec![
        (key::MANAGED_BY, "ami-lifecycle"),
        (key::SOURCE_INSTANCE, instance),
        (key::SCHEDULE, "daily"),
        (key::SLOT, slot_text.as_str()),
    ];
    tags.extend_from_slice(extra);
    cloud.add_image(
        REGION,
        &format!("ami-lifecycle/{instance}/daily/{days_ago}"),
        slot,
        &tags,
    )
}

fn rule(id: &str, resource: RecycleResource, days: u32) -> RetentionRule {
    RetentionRule {
        id: id.to_owned(),
        resource,
        retention_days: days,
        resource_tags: Vec::new(),
        exclude_tags: Vec::new(),
        lock_state: Some("unlocked".to_owned()),
        available: true,
    }
}

fn tag(key: &str, value: &str) -> RuleTag {
    RuleTag {
        key: key.to_owned(),
        value: Some(value.to_owned()),
    }
}

fn reason_of(report: &RunReport, subject: &str) -> (Outcome, String) {
    report
        .items
        .iter()
        .find(|i| i.subject == subject)
        .map(|i| (i.outcome, i.reason.clone()))
        .unwrap_or_else(|| panic!("{subject} reported"))
}

fn until(days: i64) -> String {
    rfc3339(NOW + Duration::days(days))
}

#[tokio::test]
async fn region_level_tag_level_and_excluded_deletions_are_each_reported() -> Result<(), String> {
    // GIVEN three lineages, each with one image past count=1: one plain, one tagged for the
    // tag-level rules, one carrying the region-level rule's exclusion tag.
    let cloud = FakeCloud::new("123456789012");
    managed(&cloud, "i-plain", 0, &[]);
    let plain = managed(&cloud, "i-plain", 1, &[]);
    managed(&cloud, "i-gold", 0, &[("tier", "gold")]);
    let gold = managed(&cloud, "i-gold", 1, &[("tier", "gold")]);
    managed(&cloud, "i-dev", 0, &[("env", "dev")]);
    let dev = managed(&cloud, "i-dev", 1, &[("env", "dev")]);
    let mut region_images = rule("regionimg01", RecycleResource::Image, 7);
    region_images.exclude_tags = vec![tag("env", "dev")];
    let mut gold_images = rule("goldimages1", RecycleResource::Image, 60);
    gold_images.resource_tags = vec![tag("tier", "gold"), tag("tier", "platinum")];
    let mut gold_snapshots = rule("goldsnaps01", RecycleResource::Snapshot, 30);
    gold_snapshots.resource_tags = vec![tag("tier", "gold")];
    gold_snapshots.lock_state = Some("locked".to_owned());
    for r in [region_images, gold_images, gold_snapshots] {
        cloud.add_retention_rule(REGION, r);
    }
    // A rule of another region covers nothing here.
    cloud.add_retention_rule(
        "eu-west-1",
        rule("elsewhere01", RecycleResource::Snapshot, 99),
    );

    // WHEN cleanup runs
    let report = run(&context(&cloud, &[]), CleanupRequest::default(), NOW).await;

    // THEN the plain image is kept a week by the region-level rule, its snapshot by none;
    let (outcome, reason) = reason_of(&report, plain.as_str());
    assert_eq!(outcome, Outcome::Deleted);
    assert!(
        reason.ends_with(&format!(
            "; image: restorable from the Recycle Bin until {} (rule regionimg01); 1 snapshot(s): no Recycle Bin rule covers it: deletion is final",
            until(7)
        )),
        "{reason}"
    );
    // the gold image by the longest matching rule, its snapshot by the (locked) snapshot rule;
    let (_, reason) = reason_of(&report, gold.as_str());
    assert!(
        reason.ends_with(&format!(
            "; image: restorable from the Recycle Bin until {} (rule goldimages1); 1 snapshot(s): restorable from the Recycle Bin until {} (rule goldsnaps01, locked)",
            until(60),
            until(30)
        )),
        "{reason}"
    );
    // the excluded one by nothing.
    let (_, reason) = reason_of(&report, dev.as_str());
    assert!(
        reason.ends_with("; image: no Recycle Bin rule covers it: deletion is final; 1 snapshot(s): no Recycle Bin rule covers it: deletion is final"),
        "{reason}"
    );
    assert_eq!(report.metrics.get("recycle_bin_images"), Some(&2.0));
    assert_eq!(report.metrics.get("recycle_bin_snapshots"), Some(&1.0));
    // One read per region, only where something was deleted.
    assert_eq!(cloud.calls("ListRules"), 1);
    Ok(())
}

#[tokio::test]
async fn a_failed_rule_read_stops_no_deletion_and_says_coverage_is_unknown() {
    let cloud = FakeCloud::new("123456789012");
    managed(&cloud, "i-1", 0, &[]);
    let old = managed(&cloud, "i-1", 1, &[]);
    cloud.add_retention_rule(REGION, rule("regionimg01", RecycleResource::Image, 7));
    cloud.fail("ListRules", None, "AccessDeniedException", None);

    let report = run(&context(&cloud, &[]), CleanupRequest::default(), NOW).await;

    let (outcome, reason) = reason_of(&report, old.as_str());
    assert_eq!(outcome, Outcome::Deleted);
    assert!(
        cloud
            .image(&old)
            .is_some_and(|i| i.state == ImageState::Deregistered),
        "deleted all the same"
    );
    assert!(
        reason.contains("; image: Recycle Bin rules could not be read (")
            && reason.contains("AccessDeniedException"),
        "{reason}"
    );
    assert_eq!(report.metrics.get("recycle_bin_images"), Some(&0.0));
}

#[tokio::test]
async fn nothing_deleted_reads_no_rules() {
    let cloud = FakeCloud::new("123456789012");
    managed(&cloud, "i-1", 0, &[]);
    let report = run(&context(&cloud, &[]), CleanupRequest::default(), NOW).await;
    assert_eq!(report.count(Outcome::Deleted), 0);
    assert_eq!(cloud.calls("ListRules"), 0);
}

#[tokio::test]
async fn a_dry_run_says_what_would_be_restorable_and_an_orphan_its_own_coverage() {
    // GIVEN an image past retention and a sealed orphan snapshot tagged for a snapshot rule.
    let cloud = FakeCloud::new("123456789012");
    managed(&cloud, "i-1", 0, &[]);
    let old = managed(&cloud, "i-1", 1, &[]);
    let orphan_image = managed(&cloud, "i-9", 5, &[("backup", "yes")]);
    // Deregistering an image by hand leaves its (sealed, tagged) snapshot an orphan.
    let orphan: SnapshotId = cloud
        .image(&orphan_image)
        .and_then(|i| i.snapshot_ids().next().cloned())
        .unwrap_or_else(|| panic!("snapshot"));
    cloud.state().images.remove(&orphan_image);
    let mut snaps = rule("backupsnap1", RecycleResource::Snapshot, 14);
    snaps.resource_tags = vec![tag("backup", "yes")];
    cloud.add_retention_rule(REGION, rule("regionimg01", RecycleResource::Image, 7));
    cloud.add_retention_rule(REGION, snaps);

    let report = run(
        &context(&cloud, &[("DRY_RUN", "true"), ("DELETE_ORPHANS", "true")]),
        CleanupRequest::default(),
        NOW,
    )
    .await;

    let (outcome, reason) = reason_of(&report, old.as_str());
    assert_eq!(outcome, Outcome::Planned);
    assert!(
        reason.ends_with(&format!("; once deleted, image: restorable from the Recycle Bin until {} (rule regionimg01); 1 snapshot(s): no Recycle Bin rule covers it: deletion is final", until(7))),
        "{reason}"
    );
    let (outcome, reason) = reason_of(&report, orphan.as_str());
    assert_eq!(outcome, Outcome::Planned);
    assert!(
        reason.ends_with(&format!(
            "; once deleted, restorable from the Recycle Bin until {} (rule backupsnap1)",
            until(14)
        )),
        "{reason}"
    );
    assert!(cloud.state().snapshots.contains_key(&orphan), "dry run");
    assert_eq!(report.metrics.get("recycle_bin_images"), Some(&1.0));
    assert_eq!(report.metrics.get("recycle_bin_snapshots"), Some(&1.0));

    // AND a real run deletes the orphan and reports the same coverage.
    let report = run(
        &context(&cloud, &[("DELETE_ORPHANS", "true")]),
        CleanupRequest::default(),
        NOW,
    )
    .await;
    let (outcome, reason) = reason_of(&report, orphan.as_str());
    assert_eq!(outcome, Outcome::Deleted);
    assert!(reason.contains("(rule backupsnap1)"), "{reason}");
}

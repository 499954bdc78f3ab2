//! Runner tests: share's AWS-shaped events in through [`runner::handle`] (what the Lambda
//! function runs), against the in-memory fake.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

use super::Share;
use crate::config::Config;
use crate::context::Context;
use crate::fake::FakeCloud;
use crate::model::{
    AccountId, DeviceName, Grantee, ImageDisk, ImageId, KeyRef, Region, Snapshot, SnapshotId,
};
use crate::runner::{self, RequestError};
use crate::tags::key;

const NOW: OffsetDateTime = datetime!(2026-11-22 10:05 UTC);
const A: &str = "111122223333";
const B: &str = "444455556666";

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn handle(ctx: &Context, payload: Value, now: OffsetDateTime) -> Result<Value, RequestError> {
    runner::handle::<Share>(ctx, payload, now).await
}

fn fixture(dir: &str, name: &str) -> Value {
    let path = format!("{}/../{dir}/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn context(cloud: &FakeCloud, extra: &[(&str, &str)]) -> Context {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = Config::from_lookup(|k| {
        extra
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .or_else(|| match k {
                "AWS_REGION" => Some("us-east-1".to_owned()),
                "SHARE_ALLOWED" => Some(format!("{A},{B}")),
                _ => None,
            })
    })
    .unwrap_or_else(|e| panic!("{e}"));
    Context::new(Arc::new(cloud.clone()), config)
}

/// A managed image with a root and a data snapshot, both encrypted with `key` when given.
fn image(cloud: &FakeCloud, region: &str, tags: &[(&str, &str)], key: Option<&str>) -> ImageId {
    let mut all = vec![(key::MANAGED_BY, "ami-lifecycle")];
    all.extend_from_slice(tags);
    let id = cloud.add_image(region, &format!("img-{}", tags.len()), NOW, &all);
    let data = SnapshotId::new(format!("snap-d{}", id.as_str().trim_start_matches("ami-")));
    cloud.state().snapshots.insert(
        data.clone(),
        Snapshot {
            id: data.clone(),
            region: Region::new(region),
            tags: Default::default(),
            size_gib: 100,
            encrypted: key.is_some(),
            kms_key: key.map(KeyRef::new),
            started: NOW,
            full_size_bytes: None,
        },
    );
    cloud.edit_image(&id, |img| {
        for d in &mut img.disks {
            d.encrypted = key.is_some();
            d.kms_key = key.map(KeyRef::new);
        }
        img.disks.push(ImageDisk {
            device: DeviceName::new("/dev/sdf"),
            snapshot_id: data,
            size_gib: 100,
            encrypted: key.is_some(),
            kms_key: key.map(KeyRef::new),
        });
    });
    id
}

fn tag_event(image: &ImageId, region: &str, changed: &[&str], tags: Value) -> Value {
    let mut e = fixture("tests/fixtures/events", "tag-change-on-image.json");
    e["region"] = json!(region);
    e["resources"] = json!([format!("arn:aws:ec2:{region}:123456789012:image/{image}")]);
    e["detail"]["changed-tag-keys"] = json!(changed);
    e["detail"]["tags"] = tags;
    e
}

fn acct(s: &str) -> Grantee {
    Grantee::Account(AccountId::parse(s).unwrap_or_else(|| panic!("{s}")))
}

/// Launch permissions, per-snapshot permissions, grants, record and status of an image.
type SharingState = (
    BTreeSet<Grantee>,
    Vec<BTreeSet<Grantee>>,
    Vec<(String, String)>,
    Option<String>,
    Option<String>,
);

/// Everything sharing-related about an image, to compare states.
fn sharing_state(cloud: &FakeCloud, id: &ImageId) -> SharingState {
    let img = cloud.image(id).unwrap_or_else(|| panic!("{id}"));
    let snaps = img
        .disks
        .iter()
        .map(|d| cloud.snapshot_permissions(&d.snapshot_id))
        .collect();
    let mut grants: Vec<(String, String)> = cloud
        .state()
        .grants
        .iter()
        .map(|g| (g.grantee.clone(), g.name.clone().unwrap_or_default()))
        .collect();
    grants.sort();
    (
        cloud.launch_permissions(id),
        snaps,
        grants,
        recorded(&img.tags),
        img.tags.get(key::SHARE_STATUS).cloned(),
    )
}

/// The entries of the first record chunk (without its seal).
fn recorded(tags: &crate::model::Tags) -> Option<String> {
    super::record::chunks(tags)
        .first()
        .map(|c| c.entries.clone())
}

#[tokio::test]
async fn a_tag_event_grants_launch_snapshots_and_key_and_repeats_change_nothing() -> TestResult {
    // GIVEN an image encrypted with a customer managed key, tagged for A and B
    let cloud = FakeCloud::new("123456789012");
    let key_arn = cloud.add_key("us-east-1", Some("alias/amis"), false);
    let id = image(
        &cloud,
        "us-east-1",
        &[(key::SHARE_WITH, &format!("{A},{B}"))],
        Some(&key_arn),
    );
    let ctx = context(&cloud, &[]);
    let event = tag_event(&id, "us-east-1", &[key::SHARE_WITH], json!({}));

    // WHEN the tag event arrives
    let detail = handle(&ctx, event.clone(), NOW).await?;

    // THEN both accounts can launch, both snapshots are shared, each account has a grant
    assert_eq!(detail["counts"]["granted"], 2, "{detail}");
    let once = sharing_state(&cloud, &id);
    assert_eq!(once.0, [acct(A), acct(B)].into_iter().collect());
    assert_eq!(once.1.len(), 2);
    assert!(once.1.iter().all(|s| s == &once.0));
    assert_eq!(
        once.2,
        vec![
            (
                format!("arn:aws:iam::{A}:root"),
                format!("ami-lifecycle-{id}-{A}")
            ),
            (
                format!("arn:aws:iam::{B}:root"),
                format!("ami-lifecycle-{id}-{B}")
            ),
        ]
    );
    assert_eq!(once.3.as_deref(), Some(format!("{A} {B}").as_str()));
    assert_eq!(once.4.as_deref(), Some("ok 2 targets"));

    // WHEN the same event is delivered twice more, THEN nothing changes
    let mutating = |c: &FakeCloud| {
        [
            "ModifyImageAttribute",
            "ModifySnapshotAttribute",
            "CreateGrant",
            "RevokeGrant",
            "CreateTags",
        ]
        .iter()
        .map(|op| c.calls(op))
        .sum::<usize>()
    };
    let before = mutating(&cloud);
    handle(&ctx, event.clone(), NOW).await?;
    let detail = handle(&ctx, event, NOW).await?;
    assert_eq!(detail["counts"]["unchanged"], 2, "{detail}");
    assert_eq!(sharing_state(&cloud, &id), once);
    assert_eq!(
        mutating(&cloud),
        before,
        "a converged image costs no mutating call"
    );
    Ok(())
}

#[tokio::test]
async fn removing_an_account_revokes_its_grants_and_keeps_a_hand_grant() -> TestResult {
    let cloud = FakeCloud::new("123456789012");
    let key_arn = cloud.add_key("us-east-1", None, false);
    let id = image(
        &cloud,
        "us-east-1",
        &[(key::SHARE_WITH, &format!("{A} {B}"))],
        Some(&key_arn),
    );
    let ctx = context(&cloud, &[]);
    handle(&ctx, json!({"image": id.as_str()}), NOW).await?;
    // a grant made by hand for a third account
    let hand = acct("777788889999");
    cloud
        .state()
        .launch_permissions
        .entry(id.clone())
        .or_default()
        .insert(hand.clone());

    cloud.edit_image(&id, |img| {
        img.tags.insert(key::SHARE_WITH.into(), A.into());
    });
    let detail = handle(
        &ctx,
        tag_event(&id, "us-east-1", &[key::SHARE_WITH], json!({})),
        NOW,
    )
    .await?;

    assert_eq!(detail["counts"]["revoked"], 1, "{detail}");
    assert_eq!(
        cloud.launch_permissions(&id),
        [acct(A), hand].into_iter().collect()
    );
    let img = cloud.image(&id).ok_or("image")?;
    for d in &img.disks {
        assert_eq!(
            cloud.snapshot_permissions(&d.snapshot_id),
            [acct(A)].into_iter().collect()
        );
    }
    let grants: Vec<String> = cloud
        .state()
        .grants
        .iter()
        .filter_map(|g| g.name.clone())
        .collect();
    assert_eq!(grants, vec![format!("ami-lifecycle-{id}-{A}")]);
    assert_eq!(recorded(&img.tags).as_deref(), Some(A));
    Ok(())
}

#[tokio::test]
async fn an_aws_managed_key_is_refused_with_the_remedy_and_nothing_changes() -> TestResult {
    let cloud = FakeCloud::new("123456789012");
    let ebs = cloud.add_key("us-east-1", Some("alias/aws/ebs"), true);
    let id = image(&cloud, "us-east-1", &[(key::SHARE_WITH, A)], Some(&ebs));
    let ctx = context(&cloud, &[]);

    let detail = handle(
        &ctx,
        tag_event(&id, "us-east-1", &[key::SHARE_WITH], json!({})),
        NOW,
    )
    .await?;

    assert_eq!(detail["counts"]["refused"], 1, "{detail}");
    let reason = detail["items"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("--kms-key-id KEY") && reason.contains("aws/ebs"),
        "{reason}"
    );
    assert!(cloud.launch_permissions(&id).is_empty());
    assert_eq!(
        cloud.calls("CreateGrant") + cloud.calls("ModifySnapshotAttribute"),
        0
    );
    let status = cloud
        .image(&id)
        .and_then(|i| i.tags.get(key::SHARE_STATUS).cloned())
        .unwrap_or_default();
    assert!(
        status.starts_with("error aws/ebs key cannot be shared"),
        "{status}"
    );
    Ok(())
}

#[tokio::test]
async fn other_tag_changes_and_unmanaged_images_are_skipped() -> TestResult {
    let cloud = FakeCloud::new("123456789012");
    let id = image(&cloud, "us-east-1", &[(key::SHARE_WITH, A)], None);
    let ctx = context(&cloud, &[]);
    let mut event = fixture(
        "tests/fixtures/events",
        "tag-change-on-image-other-key.json",
    );
    event["resources"] = json!([format!("arn:aws:ec2:us-east-1:123456789012:image/{id}")]);
    let detail = handle(&ctx, event, NOW).await?;
    assert_eq!(detail["counts"]["skipped"], 1);
    assert_eq!(cloud.calls("DescribeImages"), 0, "not even a describe");

    let theirs = cloud.add_image("us-east-1", "theirs", NOW, &[(key::SHARE_WITH, A)]);
    let detail = handle(
        &ctx,
        json!({"image": theirs.as_str(), "region": "us-east-1"}),
        NOW,
    )
    .await?;
    assert!(
        detail["items"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("never shared"),
        "{detail}"
    );
    assert!(cloud.launch_permissions(&theirs).is_empty());
    Ok(())
}

#[tokio::test]
async fn invalid_values_change_nothing_and_refused_targets_are_named_and_never_granted(
) -> TestResult {
    let cloud = FakeCloud::new("123456789012");
    let id = image(
        &cloud,
        "us-east-1",
        &[(key::SHARE_WITH, &format!("{A},12345"))],
        None,
    );
    let outsider = image(
        &cloud,
        "us-east-1",
        &[(key::SHARE_WITH, &format!("{A} 999999999999"))],
        None,
    );
    let public = image(&cloud, "us-east-1", &[(key::SHARE_WITH, "all")], None);
    let ctx = context(&cloud, &[]);

    let detail = handle(
        &ctx,
        fixture("tests/fixtures/events", "scheduled-event.json"),
        NOW,
    )
    .await?;

    assert_eq!(detail["counts"]["failed"], 1, "{detail}");
    assert_eq!(detail["counts"]["refused"], 2, "{detail}");
    let status = |i: &ImageId| {
        cloud
            .image(i)
            .and_then(|i| i.tags.get(key::SHARE_STATUS).cloned())
            .unwrap_or_default()
    };
    assert!(
        status(&id).contains("\"12345\" is not an account id"),
        "{}",
        status(&id)
    );
    assert_eq!(
        status(&outsider),
        "ok 1 target; refused 999999999999 (not in SHARE_ALLOWED)"
    );
    assert!(status(&public).contains("ALLOW_PUBLIC is false"));
    // The invalid value and `all` grant nothing; the outsider's allowed target is granted.
    assert!(cloud.launch_permissions(&id).is_empty());
    assert!(cloud.launch_permissions(&public).is_empty());
    assert_eq!(
        cloud.launch_permissions(&outsider),
        [acct(A)].into_iter().collect()
    );
    Ok(())
}

#[tokio::test]
async fn the_dry_run_plans_without_a_mutating_call() -> TestResult {
    let cloud = FakeCloud::new("123456789012");
    let id = image(&cloud, "us-east-1", &[(key::SHARE_WITH, A)], None);
    let bad = image(&cloud, "us-east-1", &[(key::SHARE_WITH, "oops")], None);
    let ctx = context(&cloud, &[("DRY_RUN", "true")]);
    let detail = handle(&ctx, json!({}), NOW).await?;
    assert_eq!(detail["counts"]["planned"], 2, "grant + tags: {detail}");
    assert_eq!(detail["dry_run"], true);
    for op in [
        "ModifyImageAttribute",
        "ModifySnapshotAttribute",
        "CreateGrant",
        "CreateTags",
    ] {
        assert_eq!(cloud.calls(op), 0, "{op}");
    }
    assert!(cloud.launch_permissions(&id).is_empty());
    assert!(cloud
        .image(&bad)
        .is_some_and(|i| !i.tags.contains_key(key::SHARE_STATUS)));
    Ok(())
}

#[tokio::test]
async fn replicas_follow_their_source_with_their_own_key() -> TestResult {
    let cloud = FakeCloud::new("123456789012");
    let home_key = cloud.add_key("us-east-1", None, false);
    let replica_key = cloud.add_key("eu-west-1", None, false);
    let src = image(
        &cloud,
        "us-east-1",
        &[(key::SHARE_WITH, A)],
        Some(&home_key),
    );
    let rep = image(
        &cloud,
        "eu-west-1",
        &[
            (key::SOURCE_IMAGE, src.as_str()),
            (key::SOURCE_REGION, "us-east-1"),
        ],
        Some(&replica_key),
    );
    let ctx = context(&cloud, &[("REPLICA_REGIONS", "eu-west-1")]);

    handle(
        &ctx,
        tag_event(&src, "us-east-1", &[key::SHARE_WITH], json!({})),
        NOW,
    )
    .await?;

    assert_eq!(
        cloud.launch_permissions(&rep),
        [acct(A)].into_iter().collect()
    );
    let on_replica_key = cloud
        .state()
        .grants
        .iter()
        .filter(|g| g.key_arn == replica_key)
        .count();
    assert_eq!(on_replica_key, 1, "the replica's own region's key");

    // WHEN the source's tag goes, THEN the scheduled reconcile revokes from the replica too
    cloud.edit_image(&src, |i| {
        i.tags.remove(key::SHARE_WITH);
    });
    handle(&ctx, json!({}), NOW).await?;
    assert!(cloud.launch_permissions(&rep).is_empty());
    assert!(cloud.launch_permissions(&src).is_empty());
    assert!(cloud.state().grants.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_failed_grant_defers_and_the_next_run_converges() -> TestResult {
    let cloud = FakeCloud::new("123456789012");
    let id = image(&cloud, "us-east-1", &[(key::SHARE_WITH, A)], None);
    let ctx = context(&cloud, &[]);
    cloud.fail(
        "ModifyImageAttribute",
        Some(id.as_str()),
        "RequestLimitExceeded",
        Some(1),
    );
    let detail = handle(&ctx, json!({}), NOW).await?;
    assert_eq!(detail["counts"]["deferred"], 1, "{detail}");
    // the write-ahead record already names A: a later removal of A would still revoke it
    assert_eq!(
        cloud.image(&id).and_then(|i| recorded(&i.tags)).as_deref(),
        Some(A)
    );
    handle(&ctx, json!({}), NOW).await?;
    assert_eq!(
        cloud.launch_permissions(&id),
        [acct(A)].into_iter().collect()
    );
    Ok(())
}

#[tokio::test]
async fn malformed_events_and_requests_are_refused() {
    let cloud = FakeCloud::new("123456789012");
    let ctx = context(&cloud, &[]);
    let mut bad = fixture("tests/fixtures/events", "tag-change-on-image.json");
    bad["resources"] = json!([]);
    let e = handle(&ctx, bad, NOW)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("no image ARN") && e.contains("not retryable"),
        "{e}"
    );
    let e = handle(&ctx, json!({"image": "snap-1"}), NOW)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("is not an image id"), "{e}");
    let e = handle(&ctx, json!({"images": []}), NOW)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("unknown key \"images\""), "{e}");
    assert!(cloud.state().calls.is_empty(), "nothing was called");
}

#[tokio::test]
async fn a_key_the_share_role_may_not_describe_is_refused_with_the_remedy() -> TestResult {
    // GIVEN an image encrypted with a key outside KmsKeyArns: IAM denies DescribeKey
    let cloud = FakeCloud::new("123456789012");
    let key_arn = cloud.add_key("us-east-1", None, false);
    let id = image(&cloud, "us-east-1", &[(key::SHARE_WITH, A)], Some(&key_arn));
    cloud.fail("DescribeKey", None, "AccessDeniedException", None);
    let ctx = context(&cloud, &[]);

    let detail = handle(
        &ctx,
        tag_event(&id, "us-east-1", &[key::SHARE_WITH], json!({})),
        NOW,
    )
    .await?;

    // THEN refused (not a bare failure), naming the setting and the remedy; nothing shared
    assert_eq!(detail["counts"]["refused"], 1, "{detail}");
    let reason = detail["items"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("KmsKeyArns") && reason.contains("copy the image"),
        "{reason}"
    );
    assert!(cloud.launch_permissions(&id).is_empty());
    assert_eq!(
        cloud.calls("ModifyImageAttribute") + cloud.calls("CreateGrant"),
        0
    );
    Ok(())
}

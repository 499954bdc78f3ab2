//! Planner tests: GIVEN an image and its facts, WHEN planned, THEN these changes.

use std::collections::BTreeMap;

use time::macros::datetime;

use super::*;
use crate::model::{DeviceName, ImageDisk, Tags};

const A: &str = "111122223333";
const B: &str = "444455556666";
const C: &str = "777788889999";
const ORG: &str = "arn:aws:organizations::111111111111:organization/o-abc123def4";
const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/k1";

fn acct(s: &str) -> AccountId {
    AccountId::parse(s).unwrap_or_else(|| panic!("test account {s}"))
}

fn g(s: &str) -> Grantee {
    Grantee::Account(acct(s))
}

fn config(pairs: &[(&str, &str)]) -> Config {
    let mut map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.entry("AWS_REGION".into())
        .or_insert_with(|| "us-east-1".into());
    map.entry("SHARE_ALLOWED".into())
        .or_insert_with(|| format!("{A} {B} {C} {ORG}"));
    Config::from_lookup(|k| map.get(k).cloned()).unwrap_or_else(|e| panic!("{e}"))
}

fn image(tags: &[(&str, &str)], encrypted: bool) -> Image {
    let mut t: Tags = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    t.entry(key::MANAGED_BY.into())
        .or_insert_with(|| "ami-lifecycle".into());
    let disk = |dev: &str, snap: &str| ImageDisk {
        device: DeviceName::new(dev),
        snapshot_id: SnapshotId::new(snap),
        size_gib: 8,
        encrypted,
        kms_key: encrypted.then(|| KeyRef::new(KEY)),
    };
    Image {
        id: ImageId::new("ami-0123"),
        region: Region::new("us-east-1"),
        name: "web".into(),
        state: ImageState::Available,
        owner: AccountId::parse("123456789012"),
        created: datetime!(2026-11-22 03:00 UTC),
        tags: t,
        disks: vec![disk("/dev/xvda", "snap-1"), disk("/dev/sdf", "snap-2")],
        public: false,
        deprecation_time: None,
        last_launched: None,
        deregistration_protected: false,
        source: None,
        billing_products: Vec::new(),
        source_instance: None,
    }
}

fn facts(
    img: &Image,
    launch: &[Grantee],
    snap_perms: &[Grantee],
    aws_managed: bool,
    grants: Vec<KeyGrant>,
) -> ImageFacts {
    let encrypted = img.disks.iter().any(|d| d.encrypted);
    ImageFacts {
        launch: launch.to_vec(),
        snapshots: img
            .disks
            .iter()
            .map(|d| SnapshotFacts {
                id: d.snapshot_id.clone(),
                encrypted: d.encrypted,
                key: d.kms_key.clone(),
                permissions: snap_perms.to_vec(),
            })
            .collect(),
        keys: if encrypted {
            vec![KeyFacts {
                key: KeyRef::new(KEY),
                info: KeyInfo {
                    arn: KEY.into(),
                    enabled: true,
                    aws_managed,
                },
                grants,
            }]
        } else {
            Vec::new()
        },
        public_blocked: None,
        // The planner trusts the record it is given: here, what the image's chunks name
        // (the run verifies the seals: `record::verified`).
        record: record::Verified {
            grantees: {
                let mut r: Vec<Grantee> = record::chunks(&img.tags)
                    .iter()
                    .flat_map(record::Chunk::grantees)
                    .collect();
                r.sort();
                r.dedup();
                r
            },
            rejected: Vec::new(),
        },
        usage: None,
    }
}

fn changes(plan: &ImagePlan) -> Changes {
    match &plan.action {
        Action::Apply(ch) => (**ch).clone(),
        other => panic!("expected changes, got {other:?}"),
    }
}

fn rejected(plan: &ImagePlan) -> (Outcome, String, String) {
    match &plan.action {
        Action::Reject {
            outcome,
            reason,
            status,
        } => (*outcome, reason.clone(), status.clone()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn grant(account: &str, id: &str) -> KeyGrant {
    KeyGrant {
        grant_id: id.into(),
        key_arn: KEY.into(),
        grantee: format!("arn:aws:iam::{account}:root"),
        name: Some(grant_name(&ImageId::new("ami-0123"), &acct(account))),
        operations: GRANT_OPERATIONS.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn new_targets_get_launch_snapshots_and_key_grants() {
    let img = image(&[(key::SHARE_WITH, &format!("{A},{B}"))], true);
    let plan = plan_image(
        &img,
        &Governing::own(&img),
        &facts(&img, &[], &[], false, vec![]),
        &config(&[]),
    );
    let ch = changes(&plan);
    assert_eq!(ch.launch_add, vec![g(A), g(B)]);
    assert_eq!(ch.snapshot_add.len(), 2, "every snapshot");
    assert!(ch
        .snapshot_add
        .iter()
        .all(|(_, a)| a == &vec![acct(A), acct(B)]));
    assert_eq!(ch.grants_create.len(), 2);
    assert_eq!(
        ch.grants_create[0].principal,
        format!("arn:aws:iam::{A}:root")
    );
    assert_eq!(
        ch.grants_create[0].name,
        format!("ami-lifecycle-ami-0123-{A}")
    );
    assert_eq!(ch.record_before, vec![g(A), g(B)]);
    assert_eq!(ch.status, "ok 2 targets");
    assert!(
        ch.items.iter().all(|i| i.outcome == Outcome::Granted),
        "{:?}",
        ch.items
    );
}

#[test]
fn removing_a_target_revokes_only_what_the_suite_granted() {
    // GIVEN A and B were granted by the suite, C by hand; the tag now lists A only.
    let img = image(
        &[
            (key::SHARE_WITH, A),
            (key::SHARE_GRANTED, &format!("{A} {B}")),
        ],
        true,
    );
    let f = facts(
        &img,
        &[g(A), g(B), g(C)],
        &[g(A), g(B), g(C)],
        false,
        vec![grant(A, "g1"), grant(B, "g2")],
    );
    let ch = changes(&plan_image(&img, &Governing::own(&img), &f, &config(&[])));
    assert!(ch.launch_add.is_empty());
    assert_eq!(
        ch.launch_remove,
        vec![g(B)],
        "C was granted by hand: untouched"
    );
    assert!(ch.snapshot_remove.iter().all(|(_, a)| a == &vec![acct(B)]));
    assert_eq!(ch.snapshot_remove.len(), 2);
    assert_eq!(
        ch.grants_revoke
            .iter()
            .map(|g| g.grant_id.as_str())
            .collect::<Vec<_>>(),
        vec!["g2"]
    );
    assert_eq!(ch.record_after, vec![g(A)]);
    assert!(ch.items.iter().any(|i| i.subject == C
        && i.outcome == Outcome::Unchanged
        && i.reason.contains("outside the suite")));
}

#[test]
fn removing_the_tag_revokes_everything_granted() {
    let img = image(&[(key::SHARE_GRANTED, &format!("{A} {B}"))], false);
    let ch = changes(&plan_image(
        &img,
        &Governing::own(&img),
        &facts(&img, &[g(A), g(B)], &[g(A)], false, vec![]),
        &config(&[]),
    ));
    assert_eq!(ch.launch_remove, vec![g(A), g(B)]);
    assert_eq!(ch.record_after, Vec::<Grantee>::new());
    assert_eq!(ch.status, "ok 0 targets");
}

#[test]
fn a_converged_image_changes_nothing() {
    let img = image(
        &[
            (key::SHARE_WITH, A),
            (key::SHARE_GRANTED, A),
            (key::SHARE_STATUS, "ok 1 target"),
        ],
        true,
    );
    let ch = changes(&plan_image(
        &img,
        &Governing::own(&img),
        &facts(&img, &[g(A)], &[g(A)], false, vec![grant(A, "g1")]),
        &config(&[]),
    ));
    assert!(ch.is_noop(), "{ch:?}");
    assert!(ch.items.iter().all(|i| i.outcome == Outcome::Unchanged));
}

#[test]
fn a_hand_grant_the_tag_lists_is_adopted() {
    // GIVEN A has launch permission but not from the suite (a crash before the record, or by hand)
    let img = image(&[(key::SHARE_WITH, A)], false);
    let ch = changes(&plan_image(
        &img,
        &Governing::own(&img),
        &facts(&img, &[g(A)], &[g(A)], false, vec![]),
        &config(&[]),
    ));
    assert!(ch.is_noop());
    assert_eq!(
        ch.record_after,
        vec![g(A)],
        "the record converges on what the tag lists"
    );
}

#[test]
fn one_bad_entry_changes_nothing() {
    let img = image(
        &[
            (key::SHARE_WITH, &format!("{A},12345")),
            (key::SHARE_GRANTED, B),
        ],
        false,
    );
    let plan = plan_image(
        &img,
        &Governing::own(&img),
        &facts(&img, &[g(B)], &[], false, vec![]),
        &config(&[]),
    );
    let (outcome, reason, status) = rejected(&plan);
    assert_eq!(outcome, Outcome::Failed);
    assert!(
        reason.contains("\"12345\" is not an account id"),
        "{reason}"
    );
    assert!(
        status.starts_with("error ") && status.contains("12345"),
        "{status}"
    );
}

#[test]
fn targets_outside_the_allow_list_are_refused_by_name_and_the_rest_granted() {
    let img = image(&[(key::SHARE_WITH, &format!("{A} 999999999999"))], false);
    let ch = changes(&plan_image(
        &img,
        &Governing::own(&img),
        &facts(&img, &[], &[], false, vec![]),
        &config(&[]),
    ));
    assert_eq!(
        ch.launch_add,
        vec![g(A)],
        "the allowed target is still granted"
    );
    assert_eq!(
        ch.status,
        "ok 1 target; refused 999999999999 (not in SHARE_ALLOWED)"
    );
    assert!(ch
        .items
        .iter()
        .any(|i| i.subject == "999999999999" && i.outcome == Outcome::Refused));

    let no_sharing = config(&[("SHARE_ALLOWED", "")]);
    let img = image(&[(key::SHARE_WITH, A)], false);
    let ch = changes(&plan_image(
        &img,
        &Governing::own(&img),
        &ImageFacts::default(),
        &no_sharing,
    ));
    assert!(ch.is_noop());
    assert!(
        ch.status.contains("SHARE_ALLOWED is empty"),
        "{}",
        ch.status
    );
}

#[test]
fn a_shrinking_allow_list_revokes_launch_snapshots_and_key_grant() {
    // B was allowed and granted; then removed from SHARE_ALLOWED (say, compromised).
    let img = image(
        &[
            (key::SHARE_WITH, &format!("{A} {B}")),
            (key::SHARE_GRANTED, &format!("{A} {B}")),
        ],
        true,
    );
    let shrunk = config(&[("SHARE_ALLOWED", A)]);
    let ch = changes(&plan_image(
        &img,
        &Governing::own(&img),
        &facts(
            &img,
            &[g(A), g(B)],
            &[g(A), g(B)],
            false,
            vec![grant(A, "g-a"), grant(B, "g-b")],
        ),
        &shrunk,
    ));
    assert_eq!(ch.launch_remove, vec![g(B)]);
    assert_eq!(ch.snapshot_remove.len(), 2, "every snapshot");
    assert!(ch.snapshot_remove.iter().all(|(_, a)| a == &vec![acct(B)]));
    assert_eq!(
        ch.grants_revoke
            .iter()
            .map(|g| g.grant_id.as_str())
            .collect::<Vec<_>>(),
        vec!["g-b"]
    );
    assert_eq!(ch.record_after, vec![g(A)]);
    assert!(ch.items.iter().any(|i| i.subject == B
        && i.outcome == Outcome::Revoked
        && i.reason.contains("not in SHARE_ALLOWED")));

    // A broken value cannot freeze B's grants: B is revoked, A is left as it is.
    let broken = image(
        &[
            (key::SHARE_WITH, &format!("{A} {B} 12345")),
            (key::SHARE_GRANTED, &format!("{A} {B}")),
        ],
        false,
    );
    let ch = changes(&plan_image(
        &broken,
        &Governing::own(&broken),
        &facts(&broken, &[g(A), g(B)], &[g(A), g(B)], false, vec![]),
        &shrunk,
    ));
    assert_eq!(ch.launch_remove, vec![g(B)]);
    assert!(ch.launch_add.is_empty());
    assert_eq!(ch.record_after, vec![g(A)]);
    assert!(ch.status.starts_with("error "), "{}", ch.status);
}

#[test]
fn public_is_refused_unless_allowed_and_unblocked() {
    let img = image(&[(key::SHARE_WITH, "all")], false);
    let plan = plan_image(
        &img,
        &Governing::own(&img),
        &facts(&img, &[], &[], false, vec![]),
        &config(&[]),
    );
    let refused = changes(&plan);
    assert!(refused.is_noop(), "{refused:?}");
    assert!(
        refused.status.contains("ALLOW_PUBLIC is false"),
        "{}",
        refused.status
    );
    assert_eq!(refused.items[0].outcome, Outcome::Refused);

    // ALLOW_PUBLIC turned off after the suite made the image public: revoked.
    let was_public = image(
        &[(key::SHARE_WITH, "all"), (key::SHARE_GRANTED, "all")],
        false,
    );
    let ch = changes(&plan_image(
        &was_public,
        &Governing::own(&was_public),
        &facts(&was_public, &[Grantee::Public], &[], false, vec![]),
        &config(&[]),
    ));
    assert_eq!(ch.launch_remove, vec![Grantee::Public]);
    assert!(ch.record_after.is_empty());
    assert!(ch
        .items
        .iter()
        .any(|i| i.outcome == Outcome::Revoked && i.reason.contains("ALLOW_PUBLIC is false")));

    let allow = config(&[("ALLOW_PUBLIC", "true")]);
    let mut f = facts(&img, &[], &[], false, vec![]);
    f.public_blocked = Some(true);
    assert!(
        rejected(&plan_image(&img, &Governing::own(&img), &f, &allow))
            .2
            .contains("block public access is on")
    );

    f.public_blocked = Some(false);
    let ch = changes(&plan_image(&img, &Governing::own(&img), &f, &allow));
    assert_eq!(ch.launch_add, vec![Grantee::Public]);
    assert!(
        ch.snapshot_add.is_empty(),
        "snapshots are never made public"
    );
    assert!(ch.items[0]
        .reason
        .contains("block public access in us-east-1: off"));

    let enc = image(&[(key::SHARE_WITH, "all")], true);
    let mut f = facts(&enc, &[], &[], false, vec![]);
    f.public_blocked = Some(false);
    assert!(
        rejected(&plan_image(&enc, &Governing::own(&enc), &f, &allow))
            .2
            .contains("encrypted")
    );
}

#[test]
fn aws_managed_keys_are_refused_with_the_remedy() {
    let img = image(&[(key::SHARE_WITH, A)], true);
    let plan = plan_image(
        &img,
        &Governing::own(&img),
        &facts(&img, &[], &[], true, vec![]),
        &config(&[]),
    );
    let (outcome, reason, status) = rejected(&plan);
    assert_eq!(outcome, Outcome::Refused);
    assert!(
        reason.contains("--source-image-id ami-0123 --encrypted --kms-key-id KEY")
            && reason.contains("REPLICA_KMS_KEYS"),
        "{reason}"
    );
    assert!(
        status.len() <= 256 && status.contains("aws/ebs"),
        "{status}"
    );
}

#[test]
fn organizations_get_launch_permission_and_the_key_policy_statement() {
    let img = image(&[(key::SHARE_WITH, ORG)], true);
    let ch = changes(&plan_image(
        &img,
        &Governing::own(&img),
        &facts(&img, &[], &[], false, vec![]),
        &config(&[]),
    ));
    assert_eq!(ch.launch_add, vec![Grantee::Organization(ORG.into())]);
    assert!(ch.snapshot_add.is_empty() && ch.grants_create.is_empty());
    let reason = &ch.items[0].reason;
    assert!(
        reason.contains("aws:PrincipalOrgID")
            && reason.contains("o-abc123def4")
            && reason.contains(KEY),
        "{reason}"
    );
}

#[test]
fn unmanaged_and_pending_images_are_left_alone() {
    let mut img = image(&[(key::SHARE_WITH, A)], false);
    img.tags
        .insert(key::MANAGED_BY.into(), "someone-else".into());
    let plan = plan_image(
        &img,
        &Governing::own(&img),
        &ImageFacts::default(),
        &config(&[]),
    );
    assert!(
        matches!(&plan.action, Action::Skip { outcome: Outcome::Skipped, reason } if reason.contains("never shared"))
    );

    let mut img = image(&[(key::SHARE_WITH, A)], false);
    img.state = ImageState::Pending;
    let plan = plan_image(
        &img,
        &Governing::own(&img),
        &ImageFacts::default(),
        &config(&[]),
    );
    assert!(matches!(
        plan.action,
        Action::Skip {
            outcome: Outcome::Deferred,
            ..
        }
    ));
}

#[test]
fn duplicate_grants_keep_the_smallest_id() {
    let desired = [acct(A)].into_iter().collect();
    let grants = vec![
        grant(A, "g3"),
        grant(A, "g1"),
        grant(A, "g2"),
        grant(B, "g0"),
    ];
    let gone: Vec<String> = revocable_grants(&ImageId::new("ami-0123"), &grants, &desired)
        .into_iter()
        .map(|g| g.grant_id)
        .collect();
    assert_eq!(gone, vec!["g0", "g2", "g3"]);
    assert_eq!(
        grant_account(
            &ImageId::new("ami-012"),
            &grant_name(&ImageId::new("ami-0123"), &acct(A))
        ),
        None
    );
}

#[test]
fn replicas_follow_their_source() {
    let cfg = config(&[]);
    let source = image(&[(key::SHARE_WITH, A)], false);
    let mut replica = image(
        &[
            (key::SHARE_WITH, B),
            (key::SOURCE_IMAGE, "ami-0123"),
            (key::SOURCE_REGION, "us-east-1"),
        ],
        false,
    );
    replica.id = ImageId::new("ami-0999");
    replica.region = Region::new("eu-west-1");
    let gov = governing_for(&replica, Some(&source), &cfg);
    assert_eq!(gov.value.as_deref(), Some(A));
    assert_eq!(
        gov.source,
        Some((ImageId::new("ami-0123"), Region::new("us-east-1")))
    );
    // A replica never governs itself (its tag may be stale or forged).
    let off = governing_for(
        &replica,
        Some(&source),
        &config(&[("SHARE_REPLICAS", "false")]),
    );
    assert_eq!(off.value, None);
    assert!(off
        .note
        .as_ref()
        .is_some_and(|n| n.contains("SHARE_REPLICAS=false")));
    let orphaned = governing_for(&replica, None, &cfg);
    assert_eq!(orphaned.value, None, "source gone: nothing is shared");

    // SHARE_REPLICAS=false revokes what the suite granted on a replica.
    let mut granted = replica.clone();
    granted
        .tags
        .insert(key::SHARE_GRANTED.to_owned(), B.to_owned());
    let ch = changes(&plan_image(
        &granted,
        &off,
        &facts(&granted, &[g(B)], &[g(B)], false, vec![]),
        &config(&[("SHARE_REPLICAS", "false")]),
    ));
    assert_eq!(ch.launch_remove, vec![g(B)]);
    assert!(ch.record_after.is_empty());

    let mut untagged_replica = replica.clone();
    untagged_replica.tags.remove(key::SHARE_WITH);
    let plain = image(&[], false);
    let mut other = plain.clone();
    other.id = ImageId::new("ami-0777");
    let selected = select(&[source, untagged_replica, other], &cfg);
    assert_eq!(
        selected.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        vec![0, 1],
        "an image without tag or record is not looked at"
    );
}

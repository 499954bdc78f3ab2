use std::sync::Arc;

use super::*;
use crate::fake::FakeCloud;
use crate::model::AccountId;

const DEPLOYMENT: &str = "prod";
const OU: &str = "arn:aws:organizations::111111111111:ou/o-abc123def4/ou-ab12-cdef5678";

fn acct(n: u64) -> Grantee {
    Grantee::Account(AccountId::parse(&format!("{n:012}")).unwrap_or_else(|| panic!("account {n}")))
}

fn owner() -> AccountId {
    AccountId::parse("111111111111").unwrap_or_else(|| panic!("owner"))
}

fn setup() -> (FakeCloud, Sealer, Region, ImageId) {
    let cloud = FakeCloud::new("111111111111");
    let sealer = Sealer::new(Arc::new(cloud.clone()));
    (
        cloud,
        sealer,
        Region::new("us-east-1"),
        ImageId::new("ami-1"),
    )
}

async fn write(
    sealer: &Sealer,
    region: &Region,
    image: &ImageId,
    g: &[Grantee],
    current: &Tags,
) -> Tags {
    match sealed_tags(sealer, DEPLOYMENT, &owner(), region, image, g, current).await {
        Ok(Some(t)) => t,
        other => panic!("record of {} grantees: {other:?}", g.len()),
    }
}

async fn read(sealer: &Sealer, region: &Region, image: &ImageId, tags: &Tags) -> Verified {
    verified(sealer, DEPLOYMENT, Some(&owner()), region, image, tags)
        .await
        .unwrap_or_else(|e| panic!("verify: {e}"))
}

#[tokio::test]
async fn round_trips_sealed_and_writing_again_changes_nothing() {
    let (_, sealer, region, image) = setup();
    let grantees = vec![
        acct(2),
        Grantee::OrganizationalUnit(OU.into()),
        acct(1),
        Grantee::Public,
    ];
    let tags = write(&sealer, &region, &image, &grantees, &Tags::new()).await;
    assert_eq!(tags.len(), 1);
    assert!(
        tags.values()
            .all(|v| v.len() <= TAG_VALUE_MAX && v.contains(" v2:")),
        "{tags:?}"
    );
    let mut expected = grantees.clone();
    expected.sort();
    let got = read(&sealer, &region, &image, &tags).await;
    assert_eq!(got.grantees, expected);
    assert!(got.rejected.is_empty());
    assert!(write(&sealer, &region, &image, &grantees, &tags)
        .await
        .is_empty());
}

#[tokio::test]
async fn long_records_spill_into_independently_sealed_chunks_and_shrink_back() {
    let (_, sealer, region, image) = setup();
    let many: Vec<Grantee> = (1..=40).map(acct).collect();
    let tags = write(&sealer, &region, &image, &many, &Tags::new()).await;
    assert_eq!(tags.len(), 3, "{tags:?}");
    assert!(tags.values().all(|v| v.len() <= TAG_VALUE_MAX));
    assert_eq!(read(&sealer, &region, &image, &tags).await.grantees, many);

    // Deleting the first chunk forgets only what it named.
    let mut without_first = tags.clone();
    without_first.remove(&chunk_key(1));
    let rest = read(&sealer, &region, &image, &without_first)
        .await
        .grantees;
    assert!(!rest.is_empty() && rest.iter().all(|g| many.contains(g)));
    assert!(
        rest.contains(&acct(40)),
        "later chunks still read: {rest:?}"
    );

    let mut current = tags.clone();
    let fewer = vec![acct(7)];
    let update = write(&sealer, &region, &image, &fewer, &current).await;
    assert_eq!(
        update.get(&chunk_key(2)).map(String::as_str),
        Some(""),
        "stale chunks are blanked"
    );
    current.extend(update);
    assert_eq!(
        read(&sealer, &region, &image, &current).await.grantees,
        fewer
    );
}

#[tokio::test]
async fn a_hand_written_edited_or_moved_chunk_is_ignored_and_reported() {
    let (_, sealer, region, image) = setup();
    let real = write(&sealer, &region, &image, &[acct(1)], &Tags::new()).await;

    // Written by hand: no seal.
    let mut forged = Tags::new();
    forged.insert(chunk_key(1), "000000000009".into());
    let got = read(&sealer, &region, &image, &forged).await;
    assert!(got.grantees.is_empty());
    assert_eq!(got.rejected.len(), 1, "{got:?}");

    // An account added in front of the real seal.
    let value = real.get(&chunk_key(1)).cloned().unwrap_or_default();
    let mut edited = Tags::new();
    edited.insert(chunk_key(1), format!("000000000009 {value}"));
    assert!(read(&sealer, &region, &image, &edited)
        .await
        .grantees
        .is_empty());

    // The real chunk moved to another key, or read on another image.
    let mut moved = Tags::new();
    moved.insert(chunk_key(2), value.clone());
    assert!(read(&sealer, &region, &image, &moved)
        .await
        .grantees
        .is_empty());
    assert!(read(&sealer, &region, &ImageId::new("ami-2"), &real)
        .await
        .grantees
        .is_empty());

    // A forged chunk beside a real one: the real one still counts.
    let mut mixed = real.clone();
    mixed.insert(chunk_key(2), "000000000009".into());
    let got = read(&sealer, &region, &image, &mixed).await;
    assert_eq!(got.grantees, vec![acct(1)]);
    assert_eq!(got.rejected.len(), 1);

    // Writing the record again replaces a chunk whose seal does not verify.
    let fix = write(&sealer, &region, &image, &[acct(1)], &edited).await;
    assert!(fix.contains_key(&chunk_key(1)), "{fix:?}");
}

#[tokio::test]
async fn an_empty_record_on_an_untagged_image_writes_nothing() {
    let (_, sealer, region, image) = setup();
    assert!(write(&sealer, &region, &image, &[], &Tags::new())
        .await
        .is_empty());
    let current = write(&sealer, &region, &image, &[acct(1)], &Tags::new()).await;
    let cleared = write(&sealer, &region, &image, &[], &current).await;
    assert_eq!(cleared.get(&chunk_key(1)).map(String::as_str), Some(""));
}

#[test]
fn too_many_grantees_do_not_fit() {
    let huge: Vec<Grantee> = (1..=500).map(acct).collect();
    assert_eq!(encode(&huge), None);
}

#[test]
fn hand_edited_garbage_is_ignored_and_names_anyone_sees_unsealed_chunks() {
    let mut tags = Tags::new();
    tags.insert(chunk_key(3), "000000000001 bogus group:x".into());
    let found = chunks(&tags);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].grantees(), vec![acct(1)]);
    assert!(names_anyone(&tags));
    assert!(!names_anyone(&Tags::new()));
}

/// The record names the image's owning account: chunks read for an image owned by
/// another account do not verify, and a v1 chunk is trusted only where the sealer trusts
/// v1 (and is rewritten v2 on the next write).
#[tokio::test]
async fn the_record_binds_the_owner_and_v1_chunks_are_rewritten_v2() {
    let (cloud, sealer, region, image) = setup();
    let g = vec![acct(7)];
    let tags = write(&sealer, &region, &image, &g, &Tags::new()).await;
    let spoke = AccountId::parse("222222222222").unwrap_or_else(|| panic!("spoke"));
    let elsewhere = verified(&sealer, DEPLOYMENT, Some(&spoke), &region, &image, &tags)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(elsewhere.grantees.is_empty() && elsewhere.rejected.len() == 1);

    // A chunk as a release before v2 wrote it.
    let subject = Subject::record_chunk(
        DEPLOYMENT,
        None,
        &region,
        &image,
        key::SHARE_GRANTED,
        "000000000007",
    );
    let v1 = format!(
        "000000000007 {V1_PREFIX}{}",
        aws_smithy_types::base64::encode(crate::fake::fake_mac(subject.legacy_bytes()))
    );
    let old: Tags = [(key::SHARE_GRANTED.to_owned(), v1)].into_iter().collect();
    assert_eq!(read(&sealer, &region, &image, &old).await.grantees, g);
    let strict = Sealer::new(Arc::new(cloud.clone())).with_legacy(crate::seal::Legacy::OwnAccount(
        Arc::new(FakeCloud::new("222222222222")),
    ));
    assert!(read(&strict, &region, &image, &old)
        .await
        .grantees
        .is_empty());
    let rewritten = write(&sealer, &region, &image, &g, &old).await;
    assert!(
        rewritten[key::SHARE_GRANTED].contains(&format!(" {VERSION_PREFIX}")),
        "{rewritten:?}"
    );
    assert_eq!(read(&strict, &region, &image, &rewritten).await.grantees, g);
}

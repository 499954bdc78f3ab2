use std::sync::Arc;

use time::macros::datetime;

use super::*;
use crate::fake::FakeCloud;
use crate::model::{AccountId, InstanceId};
use crate::report::{Outcome, RunReport};

const DEPLOYMENT: &str = "prod";
const HUB: &str = "111111111111";
const SPOKE: &str = "222222222222";

fn acct(id: &str) -> AccountId {
    AccountId::parse(id).unwrap_or_else(|| panic!("{id}"))
}

fn lineage_tags(instance: &str, slot: &str) -> Vec<(&'static str, String)> {
    vec![
        (key::MANAGED_BY, DEPLOYMENT.to_owned()),
        (key::SOURCE_INSTANCE, instance.to_owned()),
        (key::SCHEDULE, "daily".to_owned()),
        (key::SLOT, slot.to_owned()),
    ]
}

fn add(cloud: &FakeCloud, name: &str, tags: &[(&'static str, String)], sealed: bool) -> Image {
    let pairs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let at = datetime!(2026-11-20 03:00 UTC);
    let id = if sealed {
        cloud.add_image("us-east-1", name, at, &pairs)
    } else {
        cloud.add_unsealed_image("us-east-1", name, at, &pairs)
    };
    cloud
        .image(&id)
        .unwrap_or_else(|| panic!("{id} was just added"))
}

fn sealer(cloud: &FakeCloud) -> Sealer {
    Sealer::new(Arc::new(cloud.clone()))
}

#[tokio::test]
async fn a_seal_made_by_the_suite_verifies_and_any_edit_breaks_it() -> CloudResult<()> {
    let cloud = FakeCloud::new(HUB);
    let s = sealer(&cloud);
    let region = Region::new("us-east-1");
    let tags: Tags = lineage_tags("i-1", "2026-11-20T03:00:00Z")
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let hub = acct(HUB);
    let subject = Subject::image(DEPLOYMENT, &hub, &region, "prod/i-1/daily/x", &tags);
    let value = s.seal(&subject).await?;
    assert!(value.starts_with(VERSION_PREFIX), "{value}");
    assert!(value.len() < 64, "fits a tag value with room: {value}");
    assert!(
        Sealer::new(Arc::new(cloud.clone()))
            .verify(&subject, Some(&value))
            .await?
    );

    // Another account, name, region, slot, lineage or deployment: the same value does not
    // verify.
    let mut later = tags.clone();
    later.insert(key::SLOT.to_owned(), "2036-01-01T00:00:00Z".to_owned());
    let mut other_instance = tags.clone();
    other_instance.insert(key::SOURCE_INSTANCE.to_owned(), "i-2".to_owned());
    for other in [
        Subject::image(DEPLOYMENT, &acct(SPOKE), &region, "prod/i-1/daily/x", &tags),
        Subject::image(DEPLOYMENT, &hub, &region, "prod/i-1/daily/y", &tags),
        Subject::image(
            DEPLOYMENT,
            &hub,
            &Region::new("eu-west-1"),
            "prod/i-1/daily/x",
            &tags,
        ),
        Subject::image(DEPLOYMENT, &hub, &region, "prod/i-1/daily/x", &later),
        Subject::image(
            DEPLOYMENT,
            &hub,
            &region,
            "prod/i-1/daily/x",
            &other_instance,
        ),
        Subject::image("staging", &hub, &region, "prod/i-1/daily/x", &tags),
        Subject::snapshot(DEPLOYMENT, &hub, &region, &tags),
    ] {
        assert!(
            !s.verify(&other, Some(&value)).await?,
            "{:?} must not verify with the seal of {:?}",
            other.as_str(),
            subject.as_str()
        );
    }
    // Malformed values are refused without asking KMS.
    let calls = cloud.calls("VerifyMac");
    for bad in ["", "v1:", "v2:", "v3:AAAA", "v2:not base64!", "anything"] {
        assert!(!s.verify(&subject, Some(bad)).await?, "{bad:?}");
    }
    assert!(!s.verify(&subject, None).await?);
    assert_eq!(cloud.calls("VerifyMac"), calls);
    Ok(())
}

#[tokio::test]
async fn verified_seals_are_remembered_so_a_run_asks_kms_once_per_image() -> CloudResult<()> {
    let cloud = FakeCloud::new(HUB);
    let image = add(
        &cloud,
        "prod/i-1/daily/a",
        &lineage_tags("i-1", "2026-11-20T03:00:00Z"),
        true,
    );
    let s = sealer(&cloud);
    for _ in 0..3 {
        assert_eq!(s.check_image(&image, DEPLOYMENT).await?, Verdict::Sealed);
    }
    assert_eq!(cloud.calls("VerifyMac"), 1);
    Ok(())
}

#[test]
fn the_cache_of_verified_seals_is_bounded_and_keeps_the_latest() {
    let s = sealer(&FakeCloud::new(HUB));
    let n = VERIFIED_CACHED * 3 + 7;
    for i in 0..n {
        s.remember(format!("subject {i}").as_bytes(), "v2:AAAA");
    }
    let held = s.verified.lock().map(|set| set.len()).unwrap_or(usize::MAX);
    assert!(held <= VERIFIED_CACHED, "{held} digests held");
    let last = format!("subject {}", n - 1);
    assert!(s.known(last.as_bytes(), "v2:AAAA"));
    assert!(!s.known(b"subject 0", "v2:AAAA"));
    assert!(!s.known(last.as_bytes(), "v2:AAAB"));
}

#[tokio::test]
async fn forged_copied_or_edited_seals_leave_the_image_unsealed() -> CloudResult<()> {
    let cloud = FakeCloud::new(HUB);
    let s = sealer(&cloud);
    let real = add(
        &cloud,
        "prod/i-1/daily/a",
        &lineage_tags("i-1", "2026-11-20T03:00:00Z"),
        true,
    );
    let real_seal = real.tag(key::SEAL).unwrap_or_default().to_owned();

    // A foreign image with the lineage tags and no seal.
    let forged = add(
        &cloud,
        "someone-elses",
        &lineage_tags("i-1", "2026-11-01T03:00:00Z"),
        false,
    );
    let v = s.check_image(&forged, DEPLOYMENT).await?;
    assert!(
        matches!(&v, Verdict::Unsealed(w) if w.contains("lineage tags disagree")),
        "{v:?}"
    );

    // The same image, with EC2 saying it was made from i-1 and the real seal copied on.
    let mut copied = forged.clone();
    copied.source_instance = Some(InstanceId::new("i-1"));
    copied.tags.insert(key::SEAL.to_owned(), real_seal.clone());
    let v = s.check_image(&copied, DEPLOYMENT).await?;
    assert!(
        matches!(&v, Verdict::Unsealed(w) if w.contains("does not verify")),
        "{v:?}"
    );

    // The real image with its slot tag moved into the future.
    let mut edited = real.clone();
    edited
        .tags
        .insert(key::SLOT.to_owned(), "2036-11-20T03:00:00Z".to_owned());
    assert!(!s.check_image(&edited, DEPLOYMENT).await?.is_sealed());

    // No seal at all: the reason names the migration.
    let mut bare = real.clone();
    bare.tags.remove(key::SEAL);
    let v = s.check_image(&bare, DEPLOYMENT).await?;
    assert!(
        matches!(&v, Verdict::Unsealed(w) if w.contains("amictl seal --adopt")),
        "{v:?}"
    );
    Ok(())
}

#[test]
fn provenance_is_what_ec2_recorded_not_what_the_tags_say() {
    let cloud = FakeCloud::new(HUB);
    let made = add(&cloud, "prod/i-1/daily/a", &lineage_tags("i-1", "s"), true);
    assert_eq!(provenance(&made), Ok(()));

    let mut other_instance = made.clone();
    other_instance.source_instance = Some(InstanceId::new("i-9"));
    assert!(provenance(&other_instance).is_err_and(|w| w.contains("i-9")));

    // A replica: source-image/source-region must be EC2's SourceImageId/SourceImageRegion.
    let mut replica = made.clone();
    replica.source_instance = None;
    replica
        .tags
        .insert(key::SOURCE_IMAGE.to_owned(), "ami-src".to_owned());
    replica
        .tags
        .insert(key::SOURCE_REGION.to_owned(), "us-east-1".to_owned());
    assert!(provenance(&replica).is_err_and(|w| w.contains("not a copy")));
    replica.source = Some((ImageId::new("ami-src"), Region::new("us-east-1")));
    assert_eq!(provenance(&replica), Ok(()));
    replica.source = Some((ImageId::new("ami-other"), Region::new("us-east-1")));
    assert!(provenance(&replica).is_err_and(|w| w.contains("ami-other")));

    // An adopted image must name the image it was copied from.
    let mut adopted = made.clone();
    adopted.tags.remove(key::SOURCE_INSTANCE);
    adopted
        .tags
        .insert(key::SOURCE_ACCOUNT.to_owned(), "222222222222".to_owned());
    assert!(provenance(&adopted).is_err());
}

#[tokio::test]
async fn sealed_only_keeps_ours_and_reports_each_unsealed_image() {
    let cloud = FakeCloud::new(HUB);
    let ours = add(
        &cloud,
        "prod/i-1/daily/a",
        &lineage_tags("i-1", "2026-11-20T03:00:00Z"),
        true,
    );
    let forged = add(
        &cloud,
        "forged",
        &lineage_tags("i-1", "2026-11-01T03:00:00Z"),
        false,
    );
    let foreign = add(&cloud, "foreign", &[("Name", "x".to_owned())], false);
    let mut report = RunReport::new("test", false, datetime!(2026-11-22 00:00 UTC));
    let kept = sealed_only(
        &sealer(&cloud),
        vec![ours.clone(), forged.clone(), foreign],
        DEPLOYMENT,
        Some(&mut report),
    )
    .await;
    assert_eq!(
        kept.iter().map(|i| &i.id).collect::<Vec<_>>(),
        vec![&ours.id]
    );
    assert_eq!(report.items.len(), 1, "{:?}", report.items);
    assert_eq!(report.items[0].outcome, Outcome::Unsealed);
    assert_eq!(report.items[0].image.as_ref(), Some(&forged.id));
    assert_eq!(report.unsealed(), 1);

    // KMS failing: nothing is trusted, the image is deferred, not reported unsealed.
    cloud.fail("VerifyMac", None, "ThrottlingException", None);
    let mut report = RunReport::new("test", false, datetime!(2026-11-22 00:00 UTC));
    let fresh = Sealer::new(Arc::new(cloud.clone()));
    let kept = sealed_only(&fresh, vec![ours], DEPLOYMENT, Some(&mut report)).await;
    assert!(kept.is_empty());
    assert_eq!(report.items[0].outcome, Outcome::Deferred);
}

#[tokio::test]
async fn sealed_tags_seal_the_image_and_its_snapshots_at_creation() -> CloudResult<()> {
    let cloud = FakeCloud::new(HUB);
    let s = sealer(&cloud);
    let region = Region::new("eu-west-1");
    let tags: Tags = lineage_tags("i-1", "2026-11-20T03:00:00Z")
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let hub = acct(HUB);
    let (image, snapshot) =
        sealed_tags(&s, DEPLOYMENT, &hub, &region, "prod/i-1/daily/a", &tags).await?;
    let fresh = sealer(&cloud);
    assert!(
        fresh
            .verify(
                &Subject::image(DEPLOYMENT, &hub, &region, "prod/i-1/daily/a", &image),
                image.get(key::SEAL).map(String::as_str)
            )
            .await?
    );
    assert_eq!(
        snapshot.get(key::IMAGE_NAME).map(String::as_str),
        Some("prod/i-1/daily/a")
    );
    assert!(
        fresh
            .verify(
                &Subject::snapshot(DEPLOYMENT, &hub, &region, &snapshot),
                snapshot.get(key::SEAL).map(String::as_str)
            )
            .await?
    );
    assert_ne!(image.get(key::SEAL), snapshot.get(key::SEAL));
    Ok(())
}

/// A spoke account's admin can copy one of the hub's sealed images into their account
/// with the same name and tags (EC2 lets a shared image be copied, and the copier chooses
/// the tags): the v2 seal names the hub as owner, so the copy does not verify.
#[tokio::test]
async fn a_copy_into_another_account_with_the_same_name_and_tags_does_not_verify() -> CloudResult<()>
{
    let cloud = FakeCloud::new(HUB);
    let real = add(
        &cloud,
        "prod/i-1/daily/a",
        &lineage_tags("i-1", "2026-11-20T03:00:00Z"),
        true,
    );
    let s = sealer(&cloud);
    assert_eq!(s.check_image(&real, DEPLOYMENT).await?, Verdict::Sealed);
    assert!(real
        .tag(key::SEAL)
        .is_some_and(|v| v.starts_with(VERSION_PREFIX)));

    let mut forged = real.clone();
    forged.id = ImageId::new("ami-0f0f0f0f0f0f0f0f0");
    forged.owner = Some(acct(SPOKE));
    let v = s.check_image(&forged, DEPLOYMENT).await?;
    assert!(
        matches!(&v, Verdict::Unsealed(w) if w.contains("does not verify") && w.contains(SPOKE)),
        "{v:?}"
    );
    // Also when many accounts are managed (v1 trusted in the hub only).
    let strict = sealer(&cloud).with_legacy(Legacy::OwnAccount(Arc::new(cloud.clone())));
    assert!(!strict.check_image(&forged, DEPLOYMENT).await?.is_sealed());
    assert!(strict.check_image(&real, DEPLOYMENT).await?.is_sealed());
    // An image whose owner EC2 did not report cannot verify a v2 seal.
    let mut ownerless = real.clone();
    ownerless.owner = None;
    assert!(!sealer(&cloud)
        .check_image(&ownerless, DEPLOYMENT)
        .await?
        .is_sealed());
    Ok(())
}

/// The seal a release before v2 wrote for `image` (no account in the message).
fn v1_seal(image: &Image) -> String {
    let subject = Subject::of_image(image, DEPLOYMENT);
    format!(
        "{V1_PREFIX}{}",
        aws_smithy_types::base64::encode(crate::fake::fake_mac(subject.legacy_bytes()))
    )
}

#[tokio::test]
async fn a_v1_seal_verifies_with_one_account_and_in_the_own_account_only() -> CloudResult<()> {
    let cloud = FakeCloud::new(HUB);
    let mut old = add(
        &cloud,
        "prod/i-1/daily/a",
        &lineage_tags("i-1", "2026-11-20T03:00:00Z"),
        true,
    );
    old.tags.insert(key::SEAL.to_owned(), v1_seal(&old));
    let mut copied = old.clone();
    copied.id = ImageId::new("ami-0f0f0f0f0f0f0f0f0");
    copied.owner = Some(acct(SPOKE));

    // AMI_LIFECYCLE_ACCOUNTS unset: one account, today's behaviour, v1 trusted.
    let one = sealer(&cloud);
    assert_eq!(one.check_image(&old, DEPLOYMENT).await?, Verdict::Sealed);

    // Many accounts: in the deployment's own account, v1 still verifies…
    let many = sealer(&cloud).with_legacy(Legacy::OwnAccount(Arc::new(cloud.clone())));
    assert_eq!(many.check_image(&old, DEPLOYMENT).await?, Verdict::Sealed);
    // … in a spoke it is unsealed, naming the account and the fix, without asking KMS
    // (even though the same v1 value verified a moment ago in the hub: the cache must
    // not vouch for it across accounts).
    let calls = cloud.calls("VerifyMac");
    let v = many.check_image(&copied, DEPLOYMENT).await?;
    assert!(
        matches!(&v, Verdict::Unsealed(w)
            if w.contains("v1 seal") && w.contains(SPOKE) && w.contains(HUB)
                && w.contains("amictl seal --adopt")),
        "{v:?}"
    );
    assert_eq!(cloud.calls("VerifyMac"), calls);
    // The own account is read once per sealer.
    assert_eq!(cloud.calls("GetCallerIdentity"), 1);

    // A forged v1 value is refused in the own account too.
    let mut bad = old.clone();
    bad.tags
        .insert(key::SEAL.to_owned(), format!("{V1_PREFIX}AAAA"));
    assert!(!many.check_image(&bad, DEPLOYMENT).await?.is_sealed());

    // When the own account cannot be read, a v1 seal is not trusted: the check fails
    // (the caller defers), it does not say sealed.
    let cloud2 = FakeCloud::new(HUB);
    cloud2.fail("GetCallerIdentity", None, "ThrottlingException", None);
    let doubtful = Sealer::new(Arc::new(cloud2.clone()))
        .with_legacy(Legacy::OwnAccount(Arc::new(cloud2.clone())));
    assert!(doubtful.check_image(&old, DEPLOYMENT).await.is_err());
    Ok(())
}

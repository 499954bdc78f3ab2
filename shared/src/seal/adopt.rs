//! `amictl seal --adopt`: the migration from a release before the seal.
//!
//! Images made by an earlier release carry `managed-by` but no seal, so the suite now
//! reports them `unsealed` and leaves them alone (never deleted, shared or copied). After
//! reviewing the list (`--dry-run` prints it: the plan), an operator whose role the seal
//! key admits seals them. Only images whose lineage tags agree with what EC2 recorded
//! ([`super::provenance`]) are sealed; the rest are refused by name, for a person to look
//! at. An image's unsealed grant record (`share-granted`) is sealed with it, as it stands:
//! the operator's review is what vouches for both.
//!
//! It also migrates seals to v2 (which name the owning account): an image whose v1 seal is
//! trusted where it runs (one account, or the deployment's own) is re-sealed v2 with its
//! record; a v1-sealed image in another account is `unsealed` under many accounts
//! (a copy into that account looks the same) and is sealed here after review, like an
//! image without a seal.
//!
//! [`adopt`] returns a [`RunReport`]: `sealed` (or `planned`) per image, `refused` for a
//! lineage EC2 contradicts, and the count already sealed in the metrics.

use time::OffsetDateTime;

use super::{provenance, Subject, Verdict, V1_PREFIX};
use crate::context::Context;
use crate::ports::{all_images, ImageQuery};
use crate::report::{Outcome, RunReport};
use crate::share::record;
use crate::tags::key;

/// The name of the adoption in reports.
pub const FUNCTION: &str = "seal-adopt";

/// Seals (or, in a dry run, lists) every managed image of every region that has no valid
/// seal, or a v1 one, and whose lineage EC2 confirms.
pub async fn adopt(ctx: &Context, now: OffsetDateTime) -> RunReport {
    let mut report = RunReport::new(FUNCTION, ctx.dry_run(), now);
    let deployment = ctx.config.deployment.clone();
    let mut already = 0_u32;
    for region in ctx.config.all_regions() {
        ctx.progress(&format!("reading managed images in {region}"));
        let ec2 = ctx.cloud.ec2(&region);
        let images = match all_images(ec2.as_ref(), &ImageQuery::managed_by(&deployment)).await {
            Ok(i) => i,
            Err(e) => {
                report.push(
                    &region,
                    region.as_str(),
                    None,
                    Outcome::for_error(&e),
                    format!("could not list the managed images: {e}"),
                );
                continue;
            }
        };
        for image in images {
            let verdict = match ctx.sealer.check_image(&image, &deployment).await {
                Ok(v) => v,
                Err(e) => {
                    report.push(
                        &region,
                        image.id.as_str(),
                        Some(&image.id),
                        Outcome::for_error(&e),
                        format!("its seal could not be checked: {e}"),
                    );
                    continue;
                }
            };
            // A v1 seal trusted here (one account, or the deployment's own) is re-sealed
            // v2, so it keeps verifying once the deployment manages other accounts.
            let upgrade = verdict == Verdict::Sealed
                && image
                    .tag(key::SEAL)
                    .is_some_and(|v| v.trim().starts_with(V1_PREFIX));
            if verdict == Verdict::Sealed && !upgrade {
                already += 1;
                continue;
            }
            if let Err(why) = provenance(&image) {
                report.push(
                    &region,
                    image.id.as_str(),
                    Some(&image.id),
                    Outcome::Refused,
                    format!(
                        "{} ({}): lineage tags disagree with EC2 ({why}); not sealed — it may be forged: find out who tagged it",
                        image.id, image.name
                    ),
                );
                continue;
            }
            let grantees: Vec<_> = record::chunks(&image.tags)
                .iter()
                .flat_map(record::Chunk::grantees)
                .collect();
            let what = if grantees.is_empty() {
                String::new()
            } else {
                format!(" and its grant record ({} target(s))", grantees.len())
            };
            let owner = image
                .owner
                .as_ref()
                .map_or_else(|| "?".to_owned(), ToString::to_string);
            let (verb, done) = if upgrade {
                ("re-seal", "re-sealed")
            } else {
                ("seal", "sealed")
            };
            let how = if upgrade {
                format!("v2 (its v1 seal did not name the account; v2 names {owner})")
            } else {
                format!("v2 (naming account {owner})")
            };
            if ctx.dry_run() {
                report.push(
                    &region,
                    image.id.as_str(),
                    Some(&image.id),
                    Outcome::Planned,
                    format!("would {verb} {} {how}{what}", image.name),
                );
                continue;
            }
            let sealed = async {
                let mut tags = crate::model::Tags::new();
                let subject = Subject::of_image(&image, &deployment);
                tags.insert(key::SEAL.to_owned(), ctx.sealer.seal(&subject).await?);
                if !grantees.is_empty() {
                    let chunks = record::sealed_tags(
                        &ctx.sealer,
                        &deployment,
                        super::owner_of(&image)?,
                        &region,
                        &image.id,
                        &grantees,
                        &image.tags,
                    )
                    .await?
                    .unwrap_or_default();
                    tags.extend(chunks);
                }
                ec2.set_tags(image.id.as_str(), &tags).await
            }
            .await;
            match sealed {
                Ok(()) => report.push(
                    &region,
                    image.id.as_str(),
                    Some(&image.id),
                    Outcome::Sealed,
                    format!("{done} {} {how}{what}", image.name),
                ),
                Err(e) => report.push(
                    &region,
                    image.id.as_str(),
                    Some(&image.id),
                    Outcome::for_error(&e),
                    format!("could not seal it: {e}"),
                ),
            }
        }
    }
    report
        .metrics
        .insert("already_sealed".to_owned(), f64::from(already));
    report
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use time::macros::datetime;

    use super::*;
    use crate::config::Config;
    use crate::fake::FakeCloud;
    use crate::model::InstanceId;
    use crate::seal::{sealed_only, Sealer};

    const NOW: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    #[tokio::test]
    async fn adoption_lists_then_seals_old_images_and_refuses_contradicted_lineages() {
        let cloud = FakeCloud::new("123456789012");
        let lineage = [
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_INSTANCE, "i-1"),
            (key::SCHEDULE, "daily"),
            (key::SLOT, "2026-11-20T03:00:00Z"),
            (key::SHARE_GRANTED, "111122223333"),
        ];
        // An image of the previous release: made by CreateImage of i-1, no seal.
        let old = cloud.add_unsealed_image("us-east-1", "old", NOW, &lineage);
        cloud.edit_image(&old, |i| i.source_instance = Some(InstanceId::new("i-1")));
        // A forged one: EC2 says it was made of another instance.
        let forged = cloud.add_unsealed_image("us-east-1", "forged", NOW, &lineage);
        cloud.edit_image(&forged, |i| {
            i.source_instance = Some(InstanceId::new("i-9"))
        });
        let sealed = cloud.add_image("us-east-1", "new", NOW, &lineage[..4]);

        let dry = Config::from_lookup(|k| match k {
            "AWS_REGION" => Some("us-east-1".to_owned()),
            "DRY_RUN" => Some("true".to_owned()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let ctx = Context::new(Arc::new(cloud.clone()), dry);
        let report = adopt(&ctx, NOW).await;
        let outcome = |r: &RunReport, id: &crate::model::ImageId| {
            r.items
                .iter()
                .find(|i| i.image.as_ref() == Some(id))
                .map(|i| i.outcome)
        };
        assert_eq!(outcome(&report, &old), Some(Outcome::Planned), "{report:?}");
        assert_eq!(outcome(&report, &forged), Some(Outcome::Refused));
        assert_eq!(outcome(&report, &sealed), None);
        assert_eq!(report.metrics.get("already_sealed"), Some(&1.0));
        assert_eq!(cloud.calls("CreateTags"), 0, "a dry run writes nothing");

        let ctx = Context::new(Arc::new(cloud.clone()), Config::for_region("us-east-1"));
        let report = adopt(&ctx, NOW).await;
        assert_eq!(outcome(&report, &old), Some(Outcome::Sealed), "{report:?}");
        let fresh = Sealer::new(Arc::new(cloud.clone()));
        let images: Vec<_> = [&old, &forged]
            .iter()
            .filter_map(|id| cloud.image(id))
            .collect();
        let kept = sealed_only(&fresh, images, "ami-lifecycle", None).await;
        assert_eq!(kept.iter().map(|i| &i.id).collect::<Vec<_>>(), vec![&old]);
        // Its grant record was sealed with it.
        let adopted = cloud.image(&old).unwrap_or_else(|| panic!("old"));
        let rec = record::verified(
            &fresh,
            "ami-lifecycle",
            adopted.owner.as_ref(),
            &adopted.region,
            &adopted.id,
            &adopted.tags,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rec.grantees.len(), 1);
        assert!(rec.rejected.is_empty());
    }

    /// A v1 seal in the deployment's own account is re-sealed v2 (with its grant record),
    /// so it keeps verifying wherever the seal is checked strictly; a v2 seal is left.
    #[tokio::test]
    async fn adoption_re_seals_v1_seals_v2() {
        let cloud = FakeCloud::new("123456789012");
        let lineage = [
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_INSTANCE, "i-1"),
            (key::SCHEDULE, "daily"),
            (key::SLOT, "2026-11-20T03:00:00Z"),
        ];
        let old = cloud.add_image("us-east-1", "old", NOW, &lineage);
        let current = cloud.add_image("us-east-1", "current", NOW, &lineage);
        // What a release before v2 wrote: the MAC of the v1 message, a v1 record chunk.
        let image = cloud.image(&old).unwrap_or_else(|| panic!("old"));
        let subject = Subject::of_image(&image, "ami-lifecycle");
        let v1 = |m: &[u8]| {
            format!(
                "{}{}",
                crate::seal::V1_PREFIX,
                aws_smithy_types::base64::encode(crate::fake::fake_mac(m))
            )
        };
        let chunk = Subject::record_chunk(
            "ami-lifecycle",
            None,
            &image.region,
            &image.id,
            key::SHARE_GRANTED,
            "111122223333",
        );
        let (seal_v1, chunk_v1) = (v1(subject.legacy_bytes()), v1(chunk.legacy_bytes()));
        cloud.edit_image(&old, |i| {
            i.tags.insert(key::SEAL.to_owned(), seal_v1.clone());
            i.tags.insert(
                key::SHARE_GRANTED.to_owned(),
                format!("111122223333 {chunk_v1}"),
            );
        });
        let ctx = Context::new(Arc::new(cloud.clone()), Config::for_region("us-east-1"));
        let report = adopt(&ctx, NOW).await;
        let item = report.items.iter().find(|i| i.image.as_ref() == Some(&old));
        assert!(
            item.is_some_and(|i| i.outcome == Outcome::Sealed && i.reason.contains("re-sealed")),
            "{report:?}"
        );
        assert!(report
            .items
            .iter()
            .all(|i| i.image.as_ref() != Some(&current)));
        assert_eq!(report.metrics.get("already_sealed"), Some(&1.0));

        let adopted = cloud.image(&old).unwrap_or_else(|| panic!("old"));
        let seal = adopted.tag(key::SEAL).unwrap_or_default();
        assert!(seal.starts_with(crate::seal::VERSION_PREFIX), "{seal}");
        assert!(adopted
            .tag(key::SHARE_GRANTED)
            .is_some_and(|v| v.contains(crate::seal::VERSION_PREFIX)));
        // A sealer that trusts v1 nowhere but the hub (many accounts) and a fresh cache.
        let strict = Sealer::new(Arc::new(cloud.clone())).with_legacy(
            crate::seal::Legacy::OwnAccount(Arc::new(FakeCloud::new("999999999999"))),
        );
        assert!(strict
            .check_image(&adopted, "ami-lifecycle")
            .await
            .is_ok_and(|v| v.is_sealed()));
        let rec = record::verified(
            &strict,
            "ami-lifecycle",
            adopted.owner.as_ref(),
            &adopted.region,
            &adopted.id,
            &adopted.tags,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rec.grantees.len(), 1, "{rec:?}");
        // Running it again changes nothing.
        let writes = cloud.calls("CreateTags");
        let again = adopt(&ctx, NOW).await;
        assert_eq!(cloud.calls("CreateTags"), writes, "{again:?}");
        assert_eq!(again.metrics.get("already_sealed"), Some(&2.0));
    }
}

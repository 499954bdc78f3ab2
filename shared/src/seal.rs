//! The seal: proof, that no tag can forge, that this deployment made an image.
//!
//! Anyone with `ec2:CreateTags` can write `ami-lifecycle:managed-by`, so the tag alone
//! confers nothing. Every image the suite makes (created, copied, adopted) also carries
//! `ami-lifecycle:seal` = a KMS HMAC (`GenerateMac`, key `SEAL_KEY`, usable only by the
//! suite's roles) over a [`Subject`]: deployment, owning account (EC2's `OwnerId`),
//! region, image name, claimed lineage and slot. Names are immutable and unique per
//! account and region, so a seal copied onto another image does not verify; editing the
//! lineage or slot tags breaks it too; and a copy into another account (which EC2 lets an
//! admin of a spoke account make, with the same name and tags) names another owner.
//!
//! Seals are written `v2:` (with the account). A `v1:` seal (earlier releases, no account)
//! is trusted only where it could have been made ([`Legacy`]): anywhere while
//! `AMI_LIFECYCLE_ACCOUNTS` is unset, else on resources of the deployment's own account
//! only; elsewhere the image is `unsealed`, and `amictl seal --adopt` re-seals it v2.
//!
//! - [`Subject`]: the canonical message of an image, a snapshot or a grant-record chunk.
//! - [`Sealer`]: seals and verifies through the [`Seals`] port ([`SealCheck`]), caching what it verified
//!   (a run asks about each image once; a lineage of 1,000 images costs 1,000 `VerifyMac`
//!   calls on the first run of a warm Lambda container only; the cache is bounded,
//!   [`VERIFIED_CACHED`], so memory does not grow with a region's image count).
//! - [`provenance`]: the pure check of the lineage tags against what EC2 itself recorded
//!   (`SourceInstanceId`, `SourceImageId`/`SourceImageRegion`); a mismatch is unsealed
//!   whatever the MAC says.
//! - [`Verdict`]: sealed, or unsealed with the reason a report gives.
//!
//! Cleanup deletes, deprecates or disables only sealed images; share shares only sealed
//! images and trusts only sealed record chunks; replicate copies only sealed sources; an
//! image carrying `managed-by` without a valid seal is reported `unsealed` and never
//! touched. `amictl seal --adopt` seals the images of a release that predates the seal,
//! and re-seals v1 seals v2.

pub mod adopt;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::error::{CloudError, CloudResult};
use crate::lineage::Lineage;
use crate::model::{AccountId, Image, ImageId, Region, Tags};
use crate::ports::{Cloud, Seals};
use crate::tags::key;

/// The seal format this version writes: `v2:` + base64 of the HMAC over a subject that
/// names the owning account.
pub const VERSION_PREFIX: &str = "v2:";

/// The format of releases before issue 18 (`v1:`): its subject does not name the account,
/// so it is trusted only where it could have been made ([`Legacy`]).
pub const V1_PREFIX: &str = "v1:";

/// The MAC algorithm of an `HMAC_256` key.
pub const MAC_ALGORITHM: &str = "HMAC_SHA_256";

/// The canonical message a seal is the MAC of. Fields are separated by newlines, which
/// none of them may contain (names, tag values and ids are single-line in EC2), and the
/// first line names the format and the kind, so a message of one kind never equals one of
/// another. The v2 message names the account that owns the resource (EC2's `OwnerId`): a
/// copy of a sealed image into another account, with the same name and tags, does not
/// verify. The v1 message (without the account) is kept to check seals of earlier releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The owning account; `None` when EC2 did not say (only a v1 seal can verify then).
    owner: Option<AccountId>,
    text: String,
    legacy: String,
}

impl Subject {
    /// An image: deployment, owning account, region, name, the lineage its tags claim,
    /// its slot tag.
    pub fn image(
        deployment: &str,
        owner: &AccountId,
        region: &Region,
        name: &str,
        tags: &Tags,
    ) -> Self {
        Self::image_owned_by(deployment, Some(owner), region, name, tags)
    }

    fn image_owned_by(
        deployment: &str,
        owner: Option<&AccountId>,
        region: &Region,
        name: &str,
        tags: &Tags,
    ) -> Self {
        Self::new(
            "image",
            deployment,
            owner,
            &[
                region.as_str(),
                name,
                &lineage_claim(tags),
                tags.get(key::SLOT).map_or("", |v| v.trim()),
            ],
        )
    }

    /// The subject of an existing image (its own owner, name, region and tags).
    pub fn of_image(image: &Image, deployment: &str) -> Self {
        Self::image_owned_by(
            deployment,
            image.owner.as_ref(),
            &image.region,
            &image.name,
            &image.tags,
        )
    }

    /// A snapshot made with an image, in `owner`'s account: the image's name
    /// (`ami-lifecycle:image-name` on the snapshot), lineage and slot. Snapshot ids are not
    /// known before creation, so a snapshot seal binds it to its image's identity, not to
    /// its own id.
    pub fn snapshot(deployment: &str, owner: &AccountId, region: &Region, tags: &Tags) -> Self {
        Self::new(
            "snapshot",
            deployment,
            Some(owner),
            &[
                region.as_str(),
                tags.get(key::IMAGE_NAME).map_or("", String::as_str),
                &lineage_claim(tags),
                tags.get(key::SLOT).map_or("", |v| v.trim()),
            ],
        )
    }

    /// One chunk of the grant record of an image owned by `owner` (`share-granted`,
    /// `share-granted-2`, …): bound to the image id and the chunk's key, so a chunk moved
    /// to another image or key fails.
    pub fn record_chunk(
        deployment: &str,
        owner: Option<&AccountId>,
        region: &Region,
        image: &ImageId,
        chunk_key: &str,
        entries: &str,
    ) -> Self {
        Self::new(
            "grant-record",
            deployment,
            owner,
            &[region.as_str(), image.as_str(), chunk_key, entries],
        )
    }

    fn new(kind: &str, deployment: &str, owner: Option<&AccountId>, rest: &[&str]) -> Self {
        let join = |head: Vec<&str>| -> String {
            head.iter()
                .chain(rest)
                .map(|f| f.replace('\n', " "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let v2 = format!("ami-lifecycle seal v2 {kind}");
        let v1 = format!("ami-lifecycle seal v1 {kind}");
        Self {
            owner: owner.cloned(),
            text: join(vec![&v2, deployment, owner.map_or("", AccountId::as_str)]),
            legacy: join(vec![&v1, deployment]),
        }
    }

    /// The message a seal written now is the MAC of (v2).
    pub fn as_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The message of a v1 seal (earlier releases): the same fields without the account.
    pub fn legacy_bytes(&self) -> &[u8] {
        self.legacy.as_bytes()
    }

    pub fn owner(&self) -> Option<&AccountId> {
        self.owner.as_ref()
    }
}

/// The lineage claimed by `tags`, as the seal covers it (`-` when none is claimed).
fn lineage_claim(tags: &Tags) -> String {
    match Lineage::claimed(tags, &ImageId::new("")) {
        Some(Lineage::Instance { instance, schedule }) => format!("instance {instance} {schedule}"),
        Some(Lineage::Adopted { account, image }) => format!("adopted {account} {image}"),
        Some(Lineage::Untracked { .. }) | None => "-".to_owned(),
    }
}

/// Where a v1 seal (which does not name the account) is still trusted: only where the
/// suite could have written it. Before issue 18 a deployment acted in its own account
/// only, so a v1 seal is one of ours exactly when the resource is in that account.
#[derive(Clone)]
pub enum Legacy {
    /// `AMI_LIFECYCLE_ACCOUNTS` unset: the deployment acts in one account, as before.
    Anywhere,
    /// Many accounts: only resources owned by the account of this cloud (the hub's own,
    /// `Cloud::account`, read once).
    OwnAccount(Arc<dyn Cloud>),
}

/// What a seal value says about a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealCheck {
    /// The suite's seal of this subject.
    Valid,
    /// A v1 seal on a resource owned by an account other than the deployment's own
    /// (`own`, when it could be read): not checked, never trusted; `amictl seal --adopt`
    /// re-seals it after review.
    Legacy { own: Option<AccountId> },
    /// Absent, malformed, or not the seal of this subject.
    Invalid,
}

/// Whether an image is the suite's, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Sealed,
    /// Carries `managed-by` but is not provably ours: reported `unsealed`, never touched.
    Unsealed(String),
}

impl Verdict {
    pub fn is_sealed(&self) -> bool {
        matches!(self, Self::Sealed)
    }
}

/// The lineage tags of `image` checked against what EC2 recorded, which no tag can
/// change: an image claiming an instance must have been made from it by CreateImage
/// (`SourceInstanceId`), unless it is a copy; a copy's `source-image`/`source-region` must
/// be EC2's `SourceImageId`/`SourceImageRegion`. `Err` says what disagrees.
pub fn provenance(image: &Image) -> Result<(), String> {
    let tag = |k: &str| image.tag(k).map(str::trim).filter(|v| !v.is_empty());
    if let Some(claimed) = tag(key::SOURCE_IMAGE) {
        let claimed_region = tag(key::SOURCE_REGION).unwrap_or(image.region.as_str());
        return match &image.source {
            Some((id, region)) if id.as_str() == claimed && region.as_str() == claimed_region => {
                Ok(())
            }
            Some((id, region)) => Err(format!(
                "{} says {claimed} in {claimed_region}, EC2 says it was copied from {id} in {region}",
                key::SOURCE_IMAGE
            )),
            None => Err(format!(
                "{} says {claimed}, but EC2 records no source image (not a copy)",
                key::SOURCE_IMAGE
            )),
        };
    }
    if let Some(claimed) = tag(key::SOURCE_INSTANCE) {
        return match &image.source_instance {
            Some(id) if id.as_str() == claimed => Ok(()),
            Some(id) => Err(format!(
                "{} says {claimed}, EC2 says the image was made from {id}",
                key::SOURCE_INSTANCE
            )),
            None => Err(format!(
                "{} says {claimed}, but EC2 records no source instance (not made by CreateImage)",
                key::SOURCE_INSTANCE
            )),
        };
    }
    if tag(key::SOURCE_ACCOUNT).is_some() {
        return Err(format!(
            "{} without {}: an adopted image names the image it was copied from",
            key::SOURCE_ACCOUNT,
            key::SOURCE_IMAGE
        ));
    }
    Ok(())
}

/// How many verified seals a [`Sealer`] remembers (a SHA-256 digest each, about 0.5 MiB
/// in all): more than a warm container's runs ask about again in most regions; a region of
/// more images verifies the rest once per run.
pub const VERIFIED_CACHED: usize = 8_192;

/// Seals and verifies through [`Seals`], remembering what verified (at most
/// [`VERIFIED_CACHED`] seals). Cheap to clone (one cache shared by the clones).
#[derive(Clone)]
pub struct Sealer {
    seals: Arc<dyn Seals>,
    verified: Arc<Mutex<HashSet<[u8; 32]>>>,
    legacy: Legacy,
    own: Arc<OnceLock<AccountId>>,
}

impl Sealer {
    /// A sealer that trusts v1 seals anywhere (one account: `AMI_LIFECYCLE_ACCOUNTS`
    /// unset); see [`Sealer::with_legacy`].
    pub fn new(seals: Arc<dyn Seals>) -> Self {
        Self {
            seals,
            verified: Arc::default(),
            legacy: Legacy::Anywhere,
            own: Arc::default(),
        }
    }

    /// Where this sealer trusts v1 seals.
    #[must_use]
    pub fn with_legacy(mut self, legacy: Legacy) -> Self {
        self.legacy = legacy;
        self.own = Arc::default();
        self
    }

    /// The seal tag value for `subject` (v2). A subject without an owning account cannot
    /// be sealed: the seal would bind nothing.
    pub async fn seal(&self, subject: &Subject) -> CloudResult<String> {
        if subject.owner.is_none() {
            return Err(CloudError::from_code(
                "GenerateMac",
                None,
                "InvalidParameterValue",
                "a seal names the account that owns the resource, and none was given",
            ));
        }
        let mac = self.seals.mac(subject.as_bytes()).await?;
        let value = format!("{VERSION_PREFIX}{}", aws_smithy_types::base64::encode(&mac));
        self.remember(subject.as_bytes(), &value);
        Ok(value)
    }

    /// Whether `value` (a seal tag value) is the seal of `subject`: [`Sealer::check`] said
    /// [`SealCheck::Valid`].
    pub async fn verify(&self, subject: &Subject, value: Option<&str>) -> CloudResult<bool> {
        Ok(self.check(subject, value).await? == SealCheck::Valid)
    }

    /// What `value` (a seal tag value) says about `subject`. Malformed or absent values,
    /// and v2 seals of a subject without an owner, are [`SealCheck::Invalid`] without a
    /// call; a v1 seal is checked only where [`Legacy`] trusts it (asked before the cache:
    /// a v1 message does not name the account, so a verified v1 seal in one account says
    /// nothing about the same value in another).
    pub async fn check(&self, subject: &Subject, value: Option<&str>) -> CloudResult<SealCheck> {
        let Some(value) = value.map(str::trim) else {
            return Ok(SealCheck::Invalid);
        };
        let (message, b64) = if let Some(b64) = value.strip_prefix(VERSION_PREFIX) {
            if subject.owner.is_none() {
                return Ok(SealCheck::Invalid);
            }
            (subject.as_bytes(), b64)
        } else if let Some(b64) = value.strip_prefix(V1_PREFIX) {
            if let Some(refused) = self.legacy_refused(subject.owner.as_ref()).await? {
                return Ok(refused);
            }
            (subject.legacy_bytes(), b64)
        } else {
            return Ok(SealCheck::Invalid);
        };
        let Some(mac) = aws_smithy_types::base64::decode(b64)
            .ok()
            .filter(|m| !m.is_empty() && m.len() <= 64)
        else {
            return Ok(SealCheck::Invalid);
        };
        if self.known(message, value) {
            return Ok(SealCheck::Valid);
        }
        let ok = self.seals.verify(message, &mac).await?;
        if ok {
            self.remember(message, value);
        }
        Ok(if ok {
            SealCheck::Valid
        } else {
            SealCheck::Invalid
        })
    }

    /// `None` when a v1 seal of a resource owned by `owner` may be checked, else the
    /// refusal. Errs when the deployment's own account cannot be read (nothing is trusted
    /// in doubt: the caller defers).
    async fn legacy_refused(&self, owner: Option<&AccountId>) -> CloudResult<Option<SealCheck>> {
        let Legacy::OwnAccount(cloud) = &self.legacy else {
            return Ok(None);
        };
        let own = match self.own.get() {
            Some(a) => a.clone(),
            None => {
                let a = cloud.account().await?;
                let _ = self.own.set(a.clone());
                a
            }
        };
        Ok((owner != Some(&own)).then_some(SealCheck::Legacy { own: Some(own) }))
    }

    /// Whether `image` is this deployment's: tagged `managed-by`, its lineage agreeing
    /// with EC2's records ([`provenance`]) and its seal verifying for its owning account.
    pub async fn check_image(&self, image: &Image, deployment: &str) -> CloudResult<Verdict> {
        if !crate::tags::is_managed_by(&image.tags, deployment) {
            return Ok(Verdict::Unsealed(format!(
                "not tagged {}={deployment}",
                key::MANAGED_BY
            )));
        }
        if let Err(why) = provenance(image) {
            return Ok(Verdict::Unsealed(format!(
                "lineage tags disagree with EC2: {why}"
            )));
        }
        let seal = image.tag(key::SEAL);
        if seal.is_none() {
            return Ok(Verdict::Unsealed(format!(
                "no {} tag (made by hand, or by a release before the seal: review and run amictl seal --adopt)",
                key::SEAL
            )));
        }
        let owner = image.owner.as_ref().map_or_else(
            || "an account EC2 did not name".to_owned(),
            ToString::to_string,
        );
        match self
            .check(&Subject::of_image(image, deployment), seal)
            .await?
        {
            SealCheck::Valid => Ok(Verdict::Sealed),
            SealCheck::Legacy { own } => Ok(Verdict::Unsealed(format!(
                "{} is a v1 seal, which does not name the account, on an image owned by {owner}, not this deployment's own account{}: a copy of one of ours into another account with the same name and tags looks the same; if it is ours, review it and run amictl seal --adopt in {owner} to re-seal it v2",
                key::SEAL,
                own.map(|a| format!(" ({a})")).unwrap_or_default()
            ))),
            SealCheck::Invalid => Ok(Verdict::Unsealed(format!(
                "{} does not verify for this account ({owner}), name, region, lineage and slot (forged, copied or edited tags)",
                key::SEAL
            ))),
        }
    }

    fn digest(message: &[u8], value: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(message);
        h.update([0]);
        h.update(value.as_bytes());
        h.finalize().into()
    }

    fn known(&self, message: &[u8], value: &str) -> bool {
        let d = Self::digest(message, value);
        self.verified
            .lock()
            .map(|set| set.contains(&d))
            .unwrap_or(false)
    }

    fn remember(&self, message: &[u8], value: &str) {
        let d = Self::digest(message, value);
        if let Ok(mut set) = self.verified.lock() {
            // Bounded, so that memory does not grow with the inventory: a cleanup of a
            // 50,000-image region would otherwise hold 2 MiB of digests to the end of the
            // run, each asked about once. Starting afresh loses only KMS calls saved.
            if set.len() >= VERIFIED_CACHED {
                set.clear();
                set.shrink_to(VERIFIED_CACHED);
            }
            set.insert(d);
        }
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "seal/tests.rs"]
mod tests;

/// How many seals are verified at once: KMS's HMAC request quota is shared by the
/// account, and a region of 50,000 images must not take minutes one call at a time.
pub const VERIFY_CONCURRENCY: usize = 16;

/// Keeps the images that are provably this deployment's. An image tagged `managed-by`
/// that is not sealed is reported `unsealed` (once per image and run, when `report` is
/// given) and dropped; one whose seal could not be checked (KMS throttled or failed) is
/// reported deferred or failed and dropped: nothing is acted on in doubt. Images not
/// tagged `managed-by` are dropped silently (they are not the suite's to report).
pub async fn sealed_only(
    sealer: &Sealer,
    images: Vec<Image>,
    deployment: &str,
    mut report: Option<&mut crate::report::RunReport>,
) -> Vec<Image> {
    use futures::stream::{self, StreamExt};
    let verdicts: Vec<(Image, CloudResult<Verdict>)> = stream::iter(images)
        .map(|image| async move {
            let verdict = sealer.check_image(&image, deployment).await;
            (image, verdict)
        })
        .buffered(VERIFY_CONCURRENCY)
        .collect()
        .await;
    let mut out = Vec::with_capacity(verdicts.len());
    for (image, verdict) in verdicts {
        if !crate::tags::is_managed_by(&image.tags, deployment) {
            continue;
        }
        match verdict {
            Ok(Verdict::Sealed) => out.push(image),
            Ok(Verdict::Unsealed(why)) => {
                if let Some(r) = report.as_deref_mut() {
                    report_unsealed(r, &image, &why);
                }
            }
            Err(e) => {
                if let Some(r) = report.as_deref_mut() {
                    r.push(
                        &image.region,
                        image.id.as_str(),
                        Some(&image.id),
                        crate::report::Outcome::for_error(&e),
                        format!("its seal could not be checked ({e}): left alone this run"),
                    );
                }
            }
        }
    }
    out
}

/// [`sealed_only`] for one image: `Some` when it is provably this deployment's.
pub async fn sealed_one(
    sealer: &Sealer,
    image: Image,
    deployment: &str,
    report: Option<&mut crate::report::RunReport>,
) -> Option<Image> {
    sealed_only(sealer, vec![image], deployment, report)
        .await
        .pop()
}

/// The account that owns `image` (EC2's `OwnerId`), which a seal written for it names.
pub fn owner_of(image: &Image) -> CloudResult<&AccountId> {
    image.owner.as_ref().ok_or_else(|| {
        CloudError::from_code(
            "DescribeImages",
            Some(image.region.clone()),
            "InvalidResponse",
            format!(
                "{}: EC2 did not say which account owns it, so it cannot be sealed",
                image.id
            ),
        )
    })
}

/// Reports an image tagged `managed-by` whose seal does not hold.
pub fn report_unsealed(report: &mut crate::report::RunReport, image: &Image, why: &str) {
    report.push(
        &image.region,
        image.id.as_str(),
        Some(&image.id),
        crate::report::Outcome::Unsealed,
        format!(
            "{} ({}) carries {} but is not provably this deployment's: {why}; never deleted, shared or copied",
            image.id,
            crate::values::truncate(&image.name, 80),
            key::MANAGED_BY
        ),
    );
}

/// The tags of an image about to be made (CreateImage, CopyImage) in `owner`'s account, sealed: the image's
/// tags with their seal, and its snapshots' tags (the same, plus the image's name and the
/// snapshot seal). Written at creation (`TagSpecifications`), so the image is never
/// visible unsealed.
pub async fn sealed_tags(
    sealer: &Sealer,
    deployment: &str,
    owner: &AccountId,
    region: &Region,
    name: &str,
    tags: &Tags,
) -> CloudResult<(Tags, Tags)> {
    let mut image = tags.clone();
    image.remove(key::SEAL);
    let seal = sealer
        .seal(&Subject::image(deployment, owner, region, name, &image))
        .await?;
    let mut snapshot = image.clone();
    snapshot.insert(key::IMAGE_NAME.to_owned(), name.to_owned());
    let snapshot_seal = sealer
        .seal(&Subject::snapshot(deployment, owner, region, &snapshot))
        .await?;
    image.insert(key::SEAL.to_owned(), seal);
    snapshot.insert(key::SEAL.to_owned(), snapshot_seal);
    Ok((image, snapshot))
}

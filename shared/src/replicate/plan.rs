//! The replication planner: which image goes to which region, with which key and token.
//!
//! [`plan`] is pure: it reads an [`Inventory`] (images and copies listed by
//! [`super::run`], key checks already made) and the [`Config`], and returns a [`Plan`]
//! of copies to request, failed copies to remove and decisions to report. No AWS call,
//! no clock.
//!
//! Invariants:
//! - a copy (tag `ami-lifecycle:source-image`, or EC2's `SourceImageId`) is never a source;
//! - the source region is never a destination;
//! - a pending, available or disabled copy counts as present: no second copy;
//! - the `ClientToken` is a digest of (deployment, source, destination, attempt); the
//!   attempt only moves on after a copy ended `failed`. It is read from the failed copy
//!   itself (tag [`ATTEMPT`], written at creation), which is removed only once its
//!   successor has been requested — so the record outlives the failure without any
//!   tag write outside CopyImage (the template allows `ec2:CreateTags` only as part of
//!   `CopyImage`). After [`MAX_ATTEMPTS`] failures the copy is reported, not retried. A
//!   copy that vanished leaves no record: [`super::run`] moves on to the next attempt's
//!   token when EC2 answers a token with a copy that no longer exists;
//! - a source is copied to a destination only while its own region's retention keeps it
//!   and the destination's retention will keep the copy (both judged within the whole
//!   lineage: [`Inventory::peers`], [`crate::lineage::applied_rule_in`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::Config;
use crate::error::ErrorKind;
use crate::lineage::Lineages;
use crate::model::{Image, ImageId, ImageState, Region, Tags};
use crate::ports::ImageCopy;
use crate::report::Outcome;
use crate::tags::{self, key, TagError};

/// Tag written on every copy at creation: which attempt of (source, destination) it is.
pub const ATTEMPT: &str = "ami-lifecycle:replicate-attempt";

/// Tag written on a copy requested with a completion duration (`COPY_COMPLETION_MINUTES`):
/// the minutes it was given. Still pending past its creation plus these, it is `late`.
pub const COPY_WITHIN: &str = "ami-lifecycle:copy-within";

/// A copy that failed this many times is reported, not tried again, until an operator
/// removes the last failed copy (its attempt record).
pub const MAX_ATTEMPTS: u32 = 5;

/// AMI names are at most 128 characters.
const NAME_MAX: usize = 128;

/// The suite's source tags carried onto replicas, so cleanup acts on a replica as on its
/// source. Not `share-with`: a replica follows its source's current value (read from the
/// source region) or, with `SHARE_REPLICAS=false`, is never shared; a copied value would
/// only go stale. Never a state tag ([`tags::is_state_key`]).
const CARRIED_TAGS: [&str; 6] = [
    key::SLOT,
    key::SCHEDULE,
    key::SOURCE_INSTANCE,
    key::CONSISTENCY,
    key::RETAIN,
    key::RETAIN_IN,
];

/// The most tags a copy carries (EC2: 50 per resource; the seal is added after planning).
const COPY_TAGS_MAX: usize = 49;

/// Why a copy is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyKind {
    /// One of our images, to another region.
    Replica,
    /// An image another account (in `ADOPT_FROM`) shared with us, into this account.
    Adoption,
}

/// What the run learnt about a destination region's replica key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStatus {
    /// Exists and is enabled; copies use this ARN.
    Usable { arn: String },
    /// Cannot be used (missing, disabled, not allowed): copies to the region fail.
    Unusable(String),
    /// Could not be checked for a passing reason (throttled): copies are deferred.
    Unknown(String),
}

/// Everything the planner looks at, listed by [`super::run`].
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Own images that may be sources (managed by us or tagged `replicate-to`), any state.
    pub sources: Vec<Image>,
    /// Images other accounts shared with us: adoption candidates.
    pub shared: Vec<Image>,
    /// Our copies (managed by us, with a `source-image` tag) per listed region.
    pub copies: BTreeMap<Region, Vec<Image>>,
    /// Regions whose copies could not be listed: (how the listing failed, why). Nothing is
    /// copied there.
    pub unlisted: BTreeMap<Region, (ErrorKind, String)>,
    /// The replica key of each destination that has one configured.
    pub keys: BTreeMap<Region, KeyStatus>,
    /// The other images of the sources' lineages in the sources' regions, listed by the
    /// one-image paths (an event, a failed copy): the retention guard judges each source
    /// within its whole lineage, as cleanup does, but these are never copied here. The
    /// reconcile lists every managed image as a source and leaves this empty.
    pub peers: Vec<Image>,
    /// Sources looked up by id that no longer exist: their failed copies can go.
    pub gone_sources: BTreeSet<ImageId>,
    /// Plan copies into this region only (handling one failed copy).
    pub only_region: Option<Region>,
    /// One image was asked about: explain why it is skipped, if it is.
    pub explain_skips: bool,
}

/// One CopyImage to request, in `dest`.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyPlan {
    pub kind: CopyKind,
    pub dest: Region,
    pub attempt: u32,
    pub request: ImageCopy,
    /// Failed earlier attempts, removed once this copy has been requested.
    pub supersedes: Vec<ImageId>,
}

impl CopyPlan {
    /// The same copy as the next attempt: its own name, `ClientToken` and attempt tag. For
    /// a token EC2 answers with a copy that no longer exists (the copy was lost: EC2
    /// returns a token's first result again, even once that image is gone).
    pub fn next_attempt(&self, deployment: &str) -> CopyPlan {
        let attempt = self.attempt + 1;
        let name = &self.request.name;
        let base = match name.rfind(" (attempt ") {
            Some(at) if self.attempt > 1 && name.ends_with(')') => &name[..at],
            _ => name.as_str(),
        };
        let suffix = format!(" (attempt {attempt})");
        let mut request = self.request.clone();
        request.name = format!("{}{suffix}", truncate(base, NAME_MAX - suffix.len()));
        request.client_token = client_token(deployment, &request.source_image, &self.dest, attempt);
        request.tags.insert(ATTEMPT.to_owned(), attempt.to_string());
        CopyPlan {
            attempt,
            request,
            ..self.clone()
        }
    }
}

/// A failed copy of ours to deregister (with its snapshots).
#[derive(Debug, Clone, PartialEq)]
pub struct Removal {
    pub region: Region,
    pub image: ImageId,
    pub source: ImageId,
    pub reason: String,
}

/// An item decided without any call (already present, refused, bad tag, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub region: Region,
    pub subject: String,
    pub image: Option<ImageId>,
    pub outcome: Outcome,
    pub reason: String,
}

/// What a run does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub copies: Vec<CopyPlan>,
    pub removals: Vec<Removal>,
    pub decisions: Vec<Decision>,
    /// `ami-lifecycle:replicate-status` values to write on sources (region, image, value):
    /// a refusal the operator must see on the image itself.
    pub statuses: Vec<(Region, ImageId, String)>,
}

impl Plan {
    fn decide(
        &mut self,
        region: &Region,
        subject: &ImageId,
        image: Option<&ImageId>,
        outcome: Outcome,
        reason: impl Into<String>,
    ) {
        self.decisions.push(Decision {
            region: region.clone(),
            subject: subject.to_string(),
            image: image.cloned(),
            outcome,
            reason: reason.into(),
        });
    }
}

/// The image a copy was made from, if `image` is a copy (ours by tag, or anyone's by
/// EC2's `SourceImageId`).
pub fn copied_from(image: &Image) -> Option<ImageId> {
    image
        .tag(key::SOURCE_IMAGE)
        .map(ImageId::new)
        .or_else(|| image.source.as_ref().map(|(id, _)| id.clone()))
}

/// Why `image` is not a replication source, or `None` if it is one.
pub fn not_a_source(image: &Image, config: &Config) -> Option<String> {
    if let Some(src) = copied_from(image) {
        return Some(format!(
            "a copy of {src}: copies are never replicated again"
        ));
    }
    if !tags::is_managed_by(&image.tags, &config.deployment) {
        return Some(format!(
            "not managed by {}: only images the suite made (and sealed) are replicated",
            config.deployment
        ));
    }
    None
}

/// Where a source goes: its `replicate-to` tag, else `REPLICA_REGIONS`; never its own region.
pub fn destinations(image: &Image, config: &Config) -> Result<Vec<Region>, TagError> {
    let wanted = match image.tag(key::REPLICATE_TO) {
        Some(v) => tags::parse_regions(key::REPLICATE_TO, v)?,
        None => config.replica_regions.clone(),
    };
    Ok(wanted.into_iter().filter(|r| *r != image.region).collect())
}

/// The CopyImage `ClientToken`: 64 hex characters (EC2's limit) from a SHA-256 digest.
pub fn client_token(deployment: &str, source: &ImageId, dest: &Region, attempt: u32) -> String {
    let digest = Sha256::digest(format!("{deployment}/{source}/{dest}/{attempt}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The attempt a copy records (1 when the tag is missing or unreadable).
pub fn attempt_of(copy: &Image) -> u32 {
    copy.tag(ATTEMPT)
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}

/// The copy's name: the source's own name when it is one of ours (unique per region, as
/// it embeds instance, schedule and slot), else one derived from the source id. Later
/// attempts get a suffix: the failed copy keeps its name until it is removed.
pub fn copy_name(kind: CopyKind, source: &Image, config: &Config, attempt: u32) -> String {
    let ours = tags::is_managed_by(&source.tags, &config.deployment)
        && source.name.starts_with(&format!("{}/", config.deployment));
    let base = match kind {
        CopyKind::Adoption => format!(
            "{}/adopted/{}/{}",
            config.deployment,
            source.owner.as_ref().map_or("unknown", |o| o.as_str()),
            source.id
        ),
        CopyKind::Replica if ours => source.name.clone(),
        CopyKind::Replica => format!("{}/copy/{}/{}", config.deployment, source.region, source.id),
    };
    if attempt <= 1 {
        return truncate(&base, NAME_MAX);
    }
    let suffix = format!(" (attempt {attempt})");
    format!("{}{suffix}", truncate(&base, NAME_MAX - suffix.len()))
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn copy_tags(kind: CopyKind, source: &Image, config: &Config, attempt: u32) -> Tags {
    let mut t = Tags::new();
    if kind == CopyKind::Replica {
        for k in CARRIED_TAGS {
            if let Some(v) = source.tag(k) {
                t.insert(k.to_owned(), v.to_owned());
            }
        }
        // The user's own tags, as CopyImageTags would carry them, but never the suite's
        // other keys (state tags, share-with) nor AWS-reserved ones.
        for (k, v) in &source.tags {
            let users = !k.starts_with(tags::PREFIX) && !k.starts_with("aws:");
            if users && t.len() < COPY_TAGS_MAX - 8 {
                t.insert(k.clone(), v.clone());
            }
        }
    }
    t.insert(key::MANAGED_BY.to_owned(), config.deployment.clone());
    t.insert(key::SOURCE_IMAGE.to_owned(), source.id.to_string());
    t.insert(key::SOURCE_REGION.to_owned(), source.region.to_string());
    if kind == CopyKind::Adoption {
        if let Some(owner) = &source.owner {
            t.insert(key::SOURCE_ACCOUNT.to_owned(), owner.to_string());
        }
    }
    t.insert(ATTEMPT.to_owned(), attempt.to_string());
    if let Some(minutes) = config.copy_completion_minutes {
        t.insert(COPY_WITHIN.to_owned(), minutes.to_string());
    }
    t
}

/// When a pending copy requested with a completion duration ([`COPY_WITHIN`]) is past it:
/// `(minutes given, deadline)`. Available, failed or untagged copies are never late.
pub fn late(copy: &Image, now: OffsetDateTime) -> Option<(u32, OffsetDateTime)> {
    if copy.state != ImageState::Pending {
        return None;
    }
    let minutes: u32 = copy.tag(COPY_WITHIN)?.trim().parse().ok()?;
    let deadline = copy.created + time::Duration::minutes(i64::from(minutes));
    (now > deadline).then_some((minutes, deadline))
}

fn is_present(state: ImageState) -> bool {
    matches!(
        state,
        ImageState::Pending | ImageState::Available | ImageState::Disabled | ImageState::Transient
    )
}

fn is_failed(state: ImageState) -> bool {
    matches!(
        state,
        ImageState::Failed | ImageState::Error | ImageState::Invalid
    )
}

/// Our copies of `source` in `region`.
fn copies_of<'a>(
    inv: &'a Inventory,
    region: &Region,
    source: &ImageId,
    config: &Config,
) -> Vec<&'a Image> {
    inv.copies
        .get(region)
        .map(|v| {
            v.iter()
                .filter(|c| {
                    tags::is_managed_by(&c.tags, &config.deployment)
                        && c.tag(key::SOURCE_IMAGE) == Some(source.as_str())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sources their own region's retention no longer keeps ([`crate::lineage::Standing::Past`]): cleanup
/// may retire them there, and would retire their replicas too (replicas carry the same
/// lineage tags, slot and `retain` tag), so copying them would only feed a copy-then-delete
/// loop. The decision is cleanup's own ([`crate::lineage`]), over the same images cleanup
/// sees in each source region (the managed ones, any state, copies included): the sources
/// and, on the one-image paths, their lineages' other images ([`Inventory::peers`]). Every
/// other source is kept, newest or not, so a lost or failed copy of it is made again.
fn outside_retention(inv: &Inventory, config: &Config, now: OffsetDateTime) -> BTreeSet<ImageId> {
    let mut lineages = Lineages::new();
    let mut seen = BTreeSet::new();
    for s in inv.sources.iter().chain(&inv.peers) {
        if seen.insert(s.id.clone()) {
            lineages.add(s, &config.deployment);
        }
    }
    lineages
        .standings(config, now)
        .into_iter()
        .filter(|(_, standing)| standing.is_past())
        .map(|(id, _)| id)
        .collect()
}

/// Copies the destination's retention would not keep, by (destination, source), with the
/// rule that says so. Each destination is judged as cleanup will judge it once the copies
/// are made: its listed copies ([`Inventory::copies`], which on the one-image paths include
/// the lineage's other copies there) and the copy of every source of the lineage that
/// goes there, is available, is kept at home and has no copy there yet — each with the
/// tags a copy carries (the source's `retain` and `retain-in`, read for the destination:
/// [`crate::lineage::applied_rule_in`]). A copy cleanup would retire there is not made:
/// a destination keeping fewer images than the source (`RETAIN_BY_REGION`,
/// `ami-lifecycle:retain-in`) never feeds a copy-then-delete loop.
fn outside_retention_at_dests(
    inv: &Inventory,
    config: &Config,
    now: OffsetDateTime,
    retired: &BTreeSet<ImageId>,
) -> BTreeMap<(Region, ImageId), String> {
    let mut by_dest: BTreeMap<Region, (Lineages, BTreeSet<ImageId>)> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for src in inv.sources.iter().chain(&inv.peers) {
        if !seen.insert(src.id.clone())
            || src.state != ImageState::Available
            || retired.contains(&src.id)
            || not_a_source(src, config).is_some()
        {
            continue;
        }
        let Ok(dests) = destinations(src, config) else {
            continue;
        };
        for dest in dests {
            let (lineages, projected) = by_dest.entry(dest.clone()).or_insert_with(|| {
                let mut lineages = Lineages::new();
                let mut ids = BTreeSet::new();
                for c in inv.copies.get(&dest).into_iter().flatten() {
                    if ids.insert(c.id.clone()) {
                        lineages.add(c, &config.deployment);
                    }
                }
                (lineages, BTreeSet::new())
            });
            if copies_of(inv, &dest, &src.id, config)
                .iter()
                .any(|c| is_present(c.state))
            {
                continue;
            }
            let copy = Image {
                region: dest.clone(),
                created: now,
                state: ImageState::Available,
                tags: copy_tags(CopyKind::Replica, src, config, 1),
                ..src.clone()
            };
            lineages.add(&copy, &config.deployment);
            projected.insert(src.id.clone());
        }
    }
    let mut out = BTreeMap::new();
    for (dest, (lineages, projected)) in by_dest {
        for (id, standing) in lineages.standings(config, now) {
            if let (true, crate::lineage::Standing::Past(rule)) =
                (projected.contains(&id), standing)
            {
                out.insert((dest.clone(), id), rule.to_string());
            }
        }
    }
    out
}

/// Whether copies into `region` are in this run's scope ([`Inventory::only_region`]).
fn in_scope(inv: &Inventory, region: &Region) -> bool {
    match &inv.only_region {
        None => true,
        Some(only) => only == region,
    }
}

/// Plans the run; see the module docs.
pub fn plan(inv: &Inventory, config: &Config, now: OffsetDateTime) -> Plan {
    let mut plan = Plan::default();
    let retired = outside_retention(inv, config, now);
    let retired_at = outside_retention_at_dests(inv, config, now, &retired);
    // Failed copies already dealt with (superseded or removed), by id.
    let mut handled: BTreeSet<ImageId> = BTreeSet::new();
    // Where each known source goes (None: unknown, e.g. a bad tag).
    let mut known: BTreeMap<ImageId, Option<Vec<Region>>> = BTreeMap::new();
    let mut seen = BTreeSet::new();

    for src in &inv.sources {
        if !seen.insert(src.id.clone()) {
            continue;
        }
        if let Some(why) = not_a_source(src, config) {
            if inv.explain_skips {
                plan.decide(&src.region, &src.id, None, Outcome::Skipped, why);
            }
            continue;
        }
        let dests = match destinations(src, config) {
            Ok(d) => d,
            Err(e) => {
                known.insert(src.id.clone(), None);
                plan.decide(
                    &src.region,
                    &src.id,
                    None,
                    Outcome::Failed,
                    format!("not replicated: {e}"),
                );
                continue;
            }
        };
        known.insert(src.id.clone(), Some(dests.clone()));
        if retired.contains(&src.id) {
            if inv.explain_skips {
                plan.decide(
                    &src.region,
                    &src.id,
                    None,
                    Outcome::Skipped,
                    "older than what the retention rule keeps of its lineage: not replicated (cleanup retires it)",
                );
            }
            continue;
        }
        if src.state != ImageState::Available {
            if inv.explain_skips {
                plan.decide(
                    &src.region,
                    &src.id,
                    None,
                    Outcome::Skipped,
                    format!("{}: replicated once available", src.state.as_str()),
                );
            }
            continue;
        }
        if dests.is_empty() && inv.explain_skips {
            plan.decide(
                &src.region,
                &src.id,
                None,
                Outcome::Skipped,
                "no destination region (replicate-to tag or REPLICA_REGIONS)",
            );
        }
        // A region the deployment does not manage: a copy there would never be cleaned up,
        // shared or checked again. Refused, on the source's replicate-status too.
        let managed = config.all_regions();
        let unmanaged: Vec<&Region> = dests.iter().filter(|d| !managed.contains(d)).collect();
        if !unmanaged.is_empty() {
            let names: Vec<&str> = unmanaged.iter().map(|r| r.as_str()).collect();
            let why = format!(
                "{} names {}, which deployment {} does not manage (AMI_LIFECYCLE_REGIONS and REPLICA_REGIONS): not copied there; add {} to REPLICA_REGIONS (ReplicaRegions) or fix the tag",
                key::REPLICATE_TO,
                names.join(", "),
                config.deployment,
                if names.len() == 1 { "it" } else { "them" },
            );
            plan.decide(&src.region, &src.id, None, Outcome::Refused, why.clone());
            let status = crate::values::truncate(
                &format!(
                    "error not managed: {}; add to REPLICA_REGIONS",
                    names.join(",")
                ),
                256,
            );
            if src.tag(key::REPLICATE_STATUS) != Some(status.as_str()) {
                plan.statuses
                    .push((src.region.clone(), src.id.clone(), status));
            }
        }
        for dest in dests
            .iter()
            .filter(|d| in_scope(inv, d) && managed.contains(d))
        {
            if let Some(rule) = retired_at.get(&(dest.clone(), src.id.clone())) {
                if inv.explain_skips {
                    plan.decide(
                        dest,
                        &src.id,
                        None,
                        Outcome::Skipped,
                        format!("not copied to {dest}: its retention there ({rule}) would not keep the copy (cleanup there would retire it)"),
                    );
                }
                continue;
            }
            decide_copy(
                inv,
                config,
                now,
                CopyKind::Replica,
                src,
                dest,
                &mut plan,
                &mut handled,
            );
        }
    }

    for img in &inv.shared {
        if !seen.insert(img.id.clone()) {
            continue;
        }
        let owner = img
            .owner
            .as_ref()
            .map_or_else(|| "an unknown account".to_owned(), ToString::to_string);
        if !img
            .owner
            .as_ref()
            .is_some_and(|o| config.adopt_from.contains(o))
        {
            plan.decide(
                &img.region,
                &img.id,
                None,
                Outcome::Refused,
                format!("shared by {owner}, which is not in ADOPT_FROM: never copied"),
            );
            continue;
        }
        if !img.billing_products.is_empty() {
            plan.decide(
                &img.region,
                &img.id,
                None,
                Outcome::Refused,
                format!(
                    "shared by {owner} with billing product code(s) {}: AWS cannot copy it across accounts. \
                     Alternative: launch an instance from it, then create an image of that instance \
                     (e.g. tag the instance {}=<schedule>)",
                    img.billing_products.join(","),
                    key::SCHEDULE
                ),
            );
            continue;
        }
        known.insert(img.id.clone(), Some(vec![img.region.clone()]));
        if img.state != ImageState::Available {
            if inv.explain_skips {
                plan.decide(
                    &img.region,
                    &img.id,
                    None,
                    Outcome::Skipped,
                    format!("{}: adopted once available", img.state.as_str()),
                );
            }
            continue;
        }
        if in_scope(inv, &img.region) {
            decide_copy(
                inv,
                config,
                now,
                CopyKind::Adoption,
                img,
                &img.region,
                &mut plan,
                &mut handled,
            );
        }
    }

    // Failed copies nobody will supersede: remove those provably useless.
    for (region, copies) in &inv.copies {
        for c in copies
            .iter()
            .filter(|c| is_failed(c.state) && !handled.contains(&c.id))
        {
            if !tags::is_managed_by(&c.tags, &config.deployment) {
                continue;
            }
            let Some(src) = c.tag(key::SOURCE_IMAGE).map(ImageId::new) else {
                continue;
            };
            let reason = if inv.gone_sources.contains(&src) {
                Some(format!("failed copy of {src}, which no longer exists"))
            } else if retired.contains(&src) {
                Some(format!(
                    "failed copy of {src}, which retention no longer keeps: not copied again"
                ))
            } else if let Some(rule) = retired_at.get(&(region.clone(), src.clone())) {
                Some(format!(
                    "failed copy of {src}, whose copy retention in {region} ({rule}) would not keep: not copied again"
                ))
            } else {
                match known.get(&src) {
                    Some(Some(dests)) if !dests.contains(region) => Some(format!(
                        "failed copy of {src}; {region} is no longer a destination"
                    )),
                    _ => None,
                }
            };
            if let Some(reason) = reason {
                plan.removals.push(Removal {
                    region: region.clone(),
                    image: c.id.clone(),
                    source: src,
                    reason,
                });
            }
        }
    }
    plan
}

#[allow(clippy::too_many_arguments)]
fn decide_copy(
    inv: &Inventory,
    config: &Config,
    now: OffsetDateTime,
    kind: CopyKind,
    src: &Image,
    dest: &Region,
    plan: &mut Plan,
    handled: &mut BTreeSet<ImageId>,
) {
    if let Some((kind, why)) = inv.unlisted.get(dest) {
        plan.decide(
            dest,
            &src.id,
            None,
            Outcome::for_kind(*kind),
            format!("copies in {dest} could not be listed ({why}); the next reconcile copies it"),
        );
        return;
    }
    let mine = copies_of(inv, dest, &src.id, config);
    let failed: Vec<&Image> = mine
        .iter()
        .copied()
        .filter(|c| is_failed(c.state))
        .collect();
    if let Some(present) = mine.iter().find(|c| is_present(c.state)) {
        match late(present, now) {
            Some((minutes, deadline)) => plan.decide(
                dest,
                &src.id,
                Some(&present.id),
                Outcome::Late,
                format!(
                    "copy {} was requested at {} to complete within {minutes} minutes and is still pending {} minutes past that ({}): check its snapshot copies in {dest} (EBS copy throughput quotas); reported until it completes or fails",
                    present.id,
                    crate::time_util::rfc3339(present.created),
                    (now - deadline).whole_minutes(),
                    crate::time_util::rfc3339(deadline),
                ),
            ),
            None => plan.decide(
                dest,
                &src.id,
                Some(&present.id),
                Outcome::AlreadyExisted,
                format!("copy {} is {}", present.id, present.state.as_str()),
            ),
        }
        for f in failed {
            handled.insert(f.id.clone());
            plan.removals.push(Removal {
                region: dest.clone(),
                image: f.id.clone(),
                source: src.id.clone(),
                reason: format!("failed copy of {}, superseded by {}", src.id, present.id),
            });
        }
        return;
    }
    let attempt = failed
        .iter()
        .map(|f| attempt_of(f))
        .max()
        .map_or(1, |n| n + 1);
    if attempt > MAX_ATTEMPTS {
        let last = failed
            .iter()
            .max_by_key(|f| attempt_of(f))
            .map_or_else(String::new, |f| f.id.to_string());
        plan.decide(
            dest,
            &src.id,
            failed.first().map(|f| &f.id),
            Outcome::Failed,
            format!(
                "the copy to {dest} failed {MAX_ATTEMPTS} times (last: {last}); not tried again. \
                 Fix the cause (key permissions, source snapshots), then deregister {last} and the next reconcile copies again"
            ),
        );
        return;
    }
    let kms_key = match config.replica_keys.get(dest) {
        None => None,
        Some(configured) => match inv.keys.get(dest) {
            Some(KeyStatus::Usable { arn }) => Some(crate::model::KeyRef::new(arn.as_str())),
            Some(KeyStatus::Unusable(why)) => {
                plan.decide(
                    dest,
                    &src.id,
                    None,
                    Outcome::Failed,
                    format!(
                        "REPLICA_KMS_KEYS key {configured} for {dest} {why}; create or enable it in {dest}, \
                         or set REPLICA_KMS_KEYS={dest}=<usable key>"
                    ),
                );
                return;
            }
            Some(KeyStatus::Unknown(why)) => {
                plan.decide(dest, &src.id, None, Outcome::Deferred, format!("key {configured} could not be checked ({why}); the next reconcile copies it"));
                return;
            }
            None => {
                plan.decide(
                    dest,
                    &src.id,
                    None,
                    Outcome::Deferred,
                    format!("key {configured} was not checked; the next reconcile copies it"),
                );
                return;
            }
        },
    };
    let description = match kind {
        CopyKind::Replica => format!(
            "Copy of {} ({}) from {} by {}",
            src.id, src.name, src.region, config.deployment
        ),
        CopyKind::Adoption => format!(
            "Adopted by {} from account {}: {}",
            config.deployment,
            src.owner.as_ref().map_or("unknown", |o| o.as_str()),
            src.id
        ),
    };
    let request = ImageCopy {
        source_image: src.id.clone(),
        source_region: src.region.clone(),
        name: copy_name(kind, src, config, attempt),
        description: truncate(&description, 255),
        client_token: client_token(&config.deployment, &src.id, dest, attempt),
        kms_key,
        // Never CopyImageTags: it would carry the source's state tags (seal, grant record,
        // statuses); `copy_tags` carries what a copy should have.
        copy_source_tags: false,
        tags: copy_tags(kind, src, config, attempt),
        // The snapshots' seal and image name are added with the image's seal (run.rs).
        snapshot_tags: Tags::new(),
        completion_minutes: config.copy_completion_minutes,
    };
    let supersedes: Vec<ImageId> = failed.iter().map(|f| f.id.clone()).collect();
    handled.extend(supersedes.iter().cloned());
    plan.copies.push(CopyPlan {
        kind,
        dest: dest.clone(),
        attempt,
        request,
        supersedes,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccountId, KeyRef};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-22 04:00 UTC);

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| (k == "AWS_REGION").then(|| "us-east-1".to_owned()))
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn image(id: &str, region: &str, tags: &[(&str, &str)]) -> Image {
        Image {
            id: ImageId::new(id),
            region: Region::new(region),
            name: format!("ami-lifecycle/i-1/daily/{id}"),
            state: ImageState::Available,
            owner: AccountId::parse("123456789012"),
            created: datetime!(2026-11-22 03:00 UTC),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            disks: Vec::new(),
            public: false,
            deprecation_time: None,
            last_launched: None,
            deregistration_protected: false,
            source: None,
            billing_products: Vec::new(),
            source_instance: None,
        }
    }

    fn managed(id: &str, region: &str) -> Image {
        image(
            id,
            region,
            &[
                (key::MANAGED_BY, "ami-lifecycle"),
                (key::SLOT, "2026-11-22T03:00:00Z"),
                ("Name", "web"),
            ],
        )
    }

    fn copy_of(id: &str, source: &str, region: &str, state: ImageState, attempt: u32) -> Image {
        let mut c = image(
            id,
            region,
            &[
                (key::MANAGED_BY, "ami-lifecycle"),
                (key::SOURCE_IMAGE, source),
                (key::SOURCE_REGION, "us-east-1"),
                (ATTEMPT, &attempt.to_string()),
            ],
        );
        c.state = state;
        c.source = Some((ImageId::new(source), Region::new("us-east-1")));
        c
    }

    fn usable(regions: &[&str]) -> BTreeMap<Region, KeyStatus> {
        regions
            .iter()
            .map(|r| {
                (
                    Region::new(*r),
                    KeyStatus::Usable {
                        arn: format!("arn:aws:kms:{r}:123456789012:key/k"),
                    },
                )
            })
            .collect()
    }

    fn listed(regions: &[&str]) -> BTreeMap<Region, Vec<Image>> {
        regions
            .iter()
            .map(|r| (Region::new(*r), Vec::new()))
            .collect()
    }

    fn dests(plan: &Plan) -> Vec<&str> {
        plan.copies.iter().map(|c| c.dest.as_str()).collect()
    }

    #[test]
    fn destinations_come_from_the_tag_else_the_config_and_never_the_source_region(
    ) -> Result<(), TagError> {
        let c = config(&[("REPLICA_REGIONS", "us-east-1,eu-west-1")]);
        assert_eq!(
            destinations(&managed("ami-1", "us-east-1"), &c)?,
            vec![Region::new("eu-west-1")]
        );
        let tagged = image(
            "ami-2",
            "us-east-1",
            &[(key::REPLICATE_TO, "us-west-2 ap-south-1,us-east-1")],
        );
        assert_eq!(
            destinations(&tagged, &c)?,
            vec![Region::new("us-west-2"), Region::new("ap-south-1")]
        );
        Ok(())
    }

    #[test]
    fn an_available_source_is_copied_to_each_destination_with_its_key_token_and_lineage() {
        // GIVEN a managed image and two destinations, one with a replica key
        let c = config(&[
            ("REPLICA_REGIONS", "eu-west-1,us-west-2"),
            ("REPLICA_KMS_KEYS", "eu-west-1=alias/replicas"),
        ]);
        let inv = Inventory {
            sources: vec![managed("ami-1", "us-east-1")],
            copies: listed(&["eu-west-1", "us-west-2"]),
            keys: usable(&["eu-west-1"]),
            ..Inventory::default()
        };
        // WHEN planning
        let plan = plan(&inv, &c, NOW);
        // THEN one copy per destination, re-encrypted where a key is configured
        assert_eq!(dests(&plan), vec!["eu-west-1", "us-west-2"]);
        let eu = &plan.copies[0].request;
        assert_eq!(
            eu.kms_key,
            Some(KeyRef::new("arn:aws:kms:eu-west-1:123456789012:key/k"))
        );
        assert_eq!(plan.copies[1].request.kms_key, None);
        assert_eq!(eu.name, "ami-lifecycle/i-1/daily/ami-1");
        assert!(
            !eu.copy_source_tags,
            "CopyImageTags would carry the source's seal, record and statuses"
        );
        assert_eq!(
            eu.tags.get(key::SOURCE_IMAGE).map(String::as_str),
            Some("ami-1")
        );
        assert_eq!(
            eu.tags.get(key::SOURCE_REGION).map(String::as_str),
            Some("us-east-1")
        );
        assert_eq!(
            eu.tags.get(key::MANAGED_BY).map(String::as_str),
            Some("ami-lifecycle")
        );
        assert_eq!(
            eu.tags.get(key::SLOT).map(String::as_str),
            Some("2026-11-22T03:00:00Z")
        );
        assert_eq!(eu.tags.get("Name").map(String::as_str), Some("web"));
        assert_eq!(eu.tags.get(ATTEMPT).map(String::as_str), Some("1"));
        assert_eq!(
            eu.client_token,
            client_token(
                "ami-lifecycle",
                &ImageId::new("ami-1"),
                &Region::new("eu-west-1"),
                1
            )
        );
    }

    #[test]
    fn tokens_are_deterministic_64_hex_and_differ_by_destination_and_attempt() {
        let (s, eu, us) = (
            ImageId::new("ami-1"),
            Region::new("eu-west-1"),
            Region::new("us-west-2"),
        );
        let t = client_token("d", &s, &eu, 1);
        assert_eq!(t.len(), 64);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(t, client_token("d", &s, &eu, 1));
        assert_ne!(t, client_token("d", &s, &us, 1));
        assert_ne!(t, client_token("d", &s, &eu, 2));
    }

    #[test]
    fn copies_are_never_replicated_again_whatever_their_tags() {
        let c = config(&[("REPLICA_REGIONS", "eu-west-1")]);
        let mut by_tag = copy_of("ami-2", "ami-1", "eu-west-1", ImageState::Available, 1);
        by_tag
            .tags
            .insert(key::REPLICATE_TO.to_owned(), "us-west-2".to_owned());
        let mut by_ec2 = image(
            "ami-3",
            "us-east-1",
            &[
                (key::MANAGED_BY, "ami-lifecycle"),
                (key::REPLICATE_TO, "us-west-2"),
            ],
        );
        by_ec2.source = Some((ImageId::new("ami-9"), Region::new("ap-south-1")));
        let inv = Inventory {
            sources: vec![by_tag, by_ec2],
            copies: listed(&["eu-west-1", "us-west-2"]),
            explain_skips: true,
            ..Inventory::default()
        };
        let plan = plan(&inv, &c, NOW);
        assert!(plan.copies.is_empty(), "{plan:?}");
        assert_eq!(plan.decisions.len(), 2);
        assert!(plan
            .decisions
            .iter()
            .all(|d| d.outcome == Outcome::Skipped && d.reason.contains("never replicated again")));
    }

    #[test]
    fn a_replicate_to_region_the_deployment_does_not_manage_is_refused_by_name() {
        let c = config(&[("REPLICA_REGIONS", "eu-west-1")]);
        let mut src = managed("ami-1", "us-east-1");
        src.tags.insert(
            key::REPLICATE_TO.to_owned(),
            "eu-west-1,ap-south-1".to_owned(),
        );
        let inv = Inventory {
            sources: vec![src],
            copies: listed(&["eu-west-1", "ap-south-1"]),
            ..Inventory::default()
        };
        let plan = plan(&inv, &c, NOW);
        assert_eq!(dests(&plan), vec!["eu-west-1"], "only the managed region");
        assert!(plan.decisions.iter().any(|d| d.outcome == Outcome::Refused
            && d.reason.contains("ap-south-1")
            && d.reason.contains("REPLICA_REGIONS")));
        assert_eq!(
            plan.statuses,
            vec![(
                Region::new("us-east-1"),
                ImageId::new("ami-1"),
                "error not managed: ap-south-1; add to REPLICA_REGIONS".to_owned()
            )]
        );
    }

    #[test]
    fn images_the_suite_did_not_make_are_never_copied_whatever_their_replicate_to_says() {
        let c = config(&[("REPLICA_REGIONS", "eu-west-1")]);
        let mut foreign = image("ami-5", "us-east-1", &[(key::REPLICATE_TO, "eu-west-1")]);
        foreign.name = "golden".to_owned();
        let inv = Inventory {
            sources: vec![image("ami-4", "us-east-1", &[]), foreign],
            copies: listed(&["eu-west-1"]),
            explain_skips: true,
            ..Inventory::default()
        };
        let plan = plan(&inv, &c, NOW);
        assert!(plan.copies.is_empty(), "{plan:?}");
        assert!(
            plan.decisions
                .iter()
                .any(|d| d.subject == "ami-5" && d.reason.contains("only images the suite made")),
            "{:?}",
            plan.decisions
        );
    }

    #[test]
    fn copies_carry_the_lineage_and_user_tags_but_never_state_tags_or_share_with() {
        let c = config(&[("REPLICA_REGIONS", "eu-west-1")]);
        let mut src = managed("ami-1", "us-east-1");
        for (k, v) in [
            (key::SEAL, "v1:abc"),
            (key::SHARE_GRANTED, "111122223333"),
            ("ami-lifecycle:share-granted-2", "444455556666"),
            (key::SHARE_STATUS, "ok 1 target"),
            (key::REPLICATE_STATUS, "ok"),
            (key::SHARE_WITH, "111122223333"),
            ("CostCenter", "42"),
        ] {
            src.tags.insert(k.to_owned(), v.to_owned());
        }
        let inv = Inventory {
            sources: vec![src],
            copies: listed(&["eu-west-1"]),
            ..Inventory::default()
        };
        let plan = plan(&inv, &c, NOW);
        let tags = &plan.copies[0].request.tags;
        for k in [
            key::SEAL,
            key::SHARE_GRANTED,
            "ami-lifecycle:share-granted-2",
            key::SHARE_STATUS,
            key::REPLICATE_STATUS,
            key::SHARE_WITH,
        ] {
            assert!(!tags.contains_key(k), "{k} carried onto the copy: {tags:?}");
        }
        assert_eq!(tags.get("CostCenter").map(String::as_str), Some("42"));
        assert_eq!(
            tags.get(key::SLOT).map(String::as_str),
            Some("2026-11-22T03:00:00Z")
        );
    }

    #[test]
    fn a_bad_replicate_to_tag_fails_that_image_naming_tag_value_and_fix() {
        let c = config(&[]);
        let inv = Inventory {
            sources: vec![image(
                "ami-1",
                "us-east-1",
                &[
                    (key::MANAGED_BY, "ami-lifecycle"),
                    (key::REPLICATE_TO, "eu-west-1,mars"),
                ],
            )],
            ..Inventory::default()
        };
        let plan = plan(&inv, &c, NOW);
        assert!(plan.copies.is_empty());
        let d = &plan.decisions[0];
        assert_eq!(d.outcome, Outcome::Failed);
        for words in [key::REPLICATE_TO, "mars", "list regions such as"] {
            assert!(d.reason.contains(words), "{:?} lacks {words:?}", d.reason);
        }
    }

    #[test]
    fn a_pending_or_available_copy_counts_as_present() {
        let c = config(&[("REPLICA_REGIONS", "eu-west-1,us-west-2")]);
        let mut copies = listed(&["eu-west-1", "us-west-2"]);
        copies.insert(
            Region::new("eu-west-1"),
            vec![copy_of(
                "ami-2",
                "ami-1",
                "eu-west-1",
                ImageState::Pending,
                1,
            )],
        );
        copies.insert(
            Region::new("us-west-2"),
            vec![copy_of(
                "ami-3",
                "ami-1",
                "us-west-2",
                ImageState::Available,
                1,
            )],
        );
        let plan = plan(
            &Inventory {
                sources: vec![managed("ami-1", "us-east-1")],
                copies,
                ..Inventory::default()
            },
            &c,
            NOW,
        );
        assert!(plan.copies.is_empty());
        assert_eq!(
            plan.decisions
                .iter()
                .filter(|d| d.outcome == Outcome::AlreadyExisted)
                .count(),
            2
        );
    }

    #[test]
    fn after_a_failed_copy_the_next_attempt_has_a_fresh_token_and_name_and_supersedes_it() {
        let c = config(&[("REPLICA_REGIONS", "eu-west-1")]);
        let mut copies = listed(&["eu-west-1"]);
        copies.insert(
            Region::new("eu-west-1"),
            vec![copy_of(
                "ami-2",
                "ami-1",
                "eu-west-1",
                ImageState::Failed,
                2,
            )],
        );
        let plan = plan(
            &Inventory {
                sources: vec![managed("ami-1", "us-east-1")],
                copies,
                ..Inventory::default()
            },
            &c,
            NOW,
        );
        let copy = &plan.copies[0];
        assert_eq!(copy.attempt, 3);
        assert_eq!(
            copy.request.client_token,
            client_token(
                "ami-lifecycle",
                &ImageId::new("ami-1"),
                &Region::new("eu-west-1"),
                3
            )
        );
        assert_eq!(
            copy.request.name,
            "ami-lifecycle/i-1/daily/ami-1 (attempt 3)"
        );
        assert_eq!(copy.supersedes, vec![ImageId::new("ami-2")]);
        assert!(
            plan.removals.is_empty(),
            "the failed copy stays until its successor is requested"
        );
    }

    #[test]
    fn after_the_last_allowed_attempt_failed_it_is_reported_and_not_tried_again() {
        let c = config(&[("REPLICA_REGIONS", "eu-west-1")]);
        let mut copies = listed(&["eu-west-1"]);
        copies.insert(
            Region::new("eu-west-1"),
            vec![copy_of(
                "ami-2",
                "ami-1",
                "eu-west-1",
                ImageState::Failed,
                MAX_ATTEMPTS,
            )],
        );
        let plan = plan(
            &Inventory {
                sources: vec![managed("ami-1", "us-east-1")],
                copies,
                ..Inventory::default()
            },
            &c,
            NOW,
        );
        assert!(
            plan.copies.is_empty() && plan.removals.is_empty(),
            "{plan:?}"
        );
        assert_eq!(plan.decisions[0].outcome, Outcome::Failed);
        assert!(
            plan.decisions[0].reason.contains("deregister ami-2"),
            "{:?}",
            plan.decisions[0].reason
        );
    }

    #[test]
    fn sources_the_retention_rule_no_longer_keeps_are_not_copied_so_cleanup_and_replicate_never_loop(
    ) {
        // GIVEN RETAIN=count=2 and three images of one lineage; the oldest is still there
        // (kept by a launch template in its region) and has no replica any more
        let c = config(&[("REPLICA_REGIONS", "eu-west-1"), ("RETAIN", "count=2")]);
        let at = |id: &str, slot: &str| {
            image(
                id,
                "us-east-1",
                &[
                    (key::MANAGED_BY, "ami-lifecycle"),
                    (key::SOURCE_INSTANCE, "i-1"),
                    (key::SCHEDULE, "daily"),
                    (key::SLOT, slot),
                ],
            )
        };
        let other_lineage = image(
            "ami-x",
            "us-east-1",
            &[
                (key::MANAGED_BY, "ami-lifecycle"),
                (key::SOURCE_INSTANCE, "i-2"),
                (key::SCHEDULE, "daily"),
                (key::SLOT, "2026-11-01T03:00:00Z"),
            ],
        );
        let inv = Inventory {
            sources: vec![
                at("ami-old", "2026-11-20T03:00:00Z"),
                at("ami-mid", "2026-11-21T03:00:00Z"),
                at("ami-new", "2026-11-22T03:00:00Z"),
                other_lineage,
            ],
            copies: listed(&["eu-west-1"]),
            ..Inventory::default()
        };
        // WHEN planning
        let plan = plan(&inv, &c, NOW);
        // THEN only what the rule keeps is copied (each lineage counted on its own)
        let mut copied: Vec<&str> = plan
            .copies
            .iter()
            .map(|c| c.request.source_image.as_str())
            .collect();
        copied.sort_unstable();
        assert_eq!(copied, vec!["ami-mid", "ami-new", "ami-x"]);
        // AND the newest image's retain tag overrides RETAIN for its lineage
        let mut tagged = inv.clone();
        tagged.sources[2]
            .tags
            .insert(key::RETAIN.to_owned(), "count=3".to_owned());
        assert_eq!(plan_copies(&tagged, &c), 4);
    }

    #[test]
    fn one_source_is_judged_within_its_listed_lineage_kept_or_not_newest_or_not() {
        // GIVEN RETAIN=count=2 and a lineage of three; one image is asked about (an event,
        // a failed copy), the others are listed as its peers
        let c = config(&[("REPLICA_REGIONS", "eu-west-1"), ("RETAIN", "count=2")]);
        let at = |id: &str, slot: &str| {
            image(
                id,
                "us-east-1",
                &[
                    (key::MANAGED_BY, "ami-lifecycle"),
                    (key::SOURCE_INSTANCE, "i-1"),
                    (key::SCHEDULE, "daily"),
                    (key::SLOT, slot),
                ],
            )
        };
        let lineage = vec![
            at("ami-old", "2026-11-20T03:00:00Z"),
            at("ami-mid", "2026-11-21T03:00:00Z"),
            at("ami-new", "2026-11-22T03:00:00Z"),
        ];
        let asked = |i: usize| Inventory {
            sources: vec![lineage[i].clone()],
            peers: lineage.clone(),
            copies: listed(&["eu-west-1"]),
            explain_skips: true,
            ..Inventory::default()
        };
        // WHEN the kept image that is not the newest is asked about THEN it is copied
        let mid = plan(&asked(1), &c, NOW);
        assert_eq!(dests(&mid), vec!["eu-west-1"], "{mid:?}");
        // AND the one retention no longer keeps is not, with the reason
        let old = plan(&asked(0), &c, NOW);
        assert!(old.copies.is_empty(), "{old:?}");
        assert!(
            old.decisions
                .iter()
                .any(|d| d.subject == "ami-old" && d.reason.contains("retention rule")),
            "{:?}",
            old.decisions
        );
        // AND peers are never copied themselves
        assert_eq!(plan(&asked(2), &c, NOW).copies.len(), 1);
    }

    #[test]
    fn each_destination_gets_only_the_copies_its_own_retention_keeps() {
        // GIVEN RETAIN=count=3, eu-west-1 keeping 1 (RETAIN_BY_REGION), and a lineage of
        // three whose oldest already has its copy in eu-west-1
        let c = config(&[
            ("REPLICA_REGIONS", "eu-west-1,us-west-2"),
            ("RETAIN", "count=3"),
            ("RETAIN_BY_REGION", "eu-west-1=count=2"),
        ]);
        let at = |id: &str, slot: &str| {
            image(
                id,
                "us-east-1",
                &[
                    (key::MANAGED_BY, "ami-lifecycle"),
                    (key::SOURCE_INSTANCE, "i-1"),
                    (key::SCHEDULE, "daily"),
                    (key::SLOT, slot),
                ],
            )
        };
        let sources = vec![
            at("ami-old", "2026-11-20T03:00:00Z"),
            at("ami-mid", "2026-11-21T03:00:00Z"),
            at("ami-new", "2026-11-22T03:00:00Z"),
        ];
        let mut copies = listed(&["eu-west-1", "us-west-2"]);
        let mut old_copy = copy_of("ami-c0", "ami-old", "eu-west-1", ImageState::Available, 1);
        old_copy.tags.extend(
            [
                (key::SOURCE_INSTANCE, "i-1"),
                (key::SCHEDULE, "daily"),
                (key::SLOT, "2026-11-20T03:00:00Z"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        copies.insert(Region::new("eu-west-1"), vec![old_copy]);
        let inv = Inventory {
            sources: sources.clone(),
            copies,
            explain_skips: true,
            ..Inventory::default()
        };
        // WHEN planning
        let plan = plan(&inv, &c, NOW);
        // THEN us-west-2 (RETAIN) gets all three, eu-west-1 the two newest (its old copy
        // is cleanup's to retire there), each skip saying which rule
        let mut made: Vec<(&str, &str)> = plan
            .copies
            .iter()
            .map(|c| (c.dest.as_str(), c.request.source_image.as_str()))
            .collect();
        made.sort_unstable();
        assert_eq!(
            made,
            vec![
                ("eu-west-1", "ami-mid"),
                ("eu-west-1", "ami-new"),
                ("us-west-2", "ami-mid"),
                ("us-west-2", "ami-new"),
                ("us-west-2", "ami-old"),
            ]
        );
        // AND with eu-west-1 keeping one, the middle image is not copied there, saying why
        let c1 = config(&[
            ("REPLICA_REGIONS", "eu-west-1,us-west-2"),
            ("RETAIN", "count=3"),
            ("RETAIN_BY_REGION", "eu-west-1=count=1"),
        ]);
        let one = plan_fn(&inv, &c1);
        assert_eq!(
            one.copies
                .iter()
                .filter(|c| c.dest.as_str() == "eu-west-1")
                .map(|c| c.request.source_image.as_str())
                .collect::<Vec<_>>(),
            vec!["ami-new"]
        );
        assert!(
            one.decisions.iter().any(|d| d.subject == "ami-mid"
                && d.outcome == Outcome::Skipped
                && d.reason.contains("count=1 (RETAIN_BY_REGION eu-west-1)")),
            "{:?}",
            one.decisions
        );
        // AND the head's retain-in tag (carried onto the copies) overrides it
        let mut tagged = inv.clone();
        tagged.sources[2]
            .tags
            .insert(key::RETAIN_IN.to_owned(), "eu-west-1=count=3".to_owned());
        let tagged_plan = plan_fn(&tagged, &c1);
        assert_eq!(tagged_plan.copies.len(), 5, "{tagged_plan:?}");
        assert!(tagged_plan
            .copies
            .iter()
            .all(|c| c.request.tags.contains_key(key::RETAIN_IN)
                == (c.request.source_image.as_str() == "ami-new")));
    }

    #[test]
    fn copies_get_the_completion_deadline_and_a_pending_copy_past_it_is_late() {
        // GIVEN COPY_COMPLETION_MINUTES=30
        let c = config(&[
            ("REPLICA_REGIONS", "eu-west-1,us-west-2"),
            ("COPY_COMPLETION_MINUTES", "30"),
        ]);
        // WHEN a copy is planned THEN it asks for the duration and records it
        let fresh = plan(
            &Inventory {
                sources: vec![managed("ami-1", "us-east-1")],
                copies: listed(&["eu-west-1", "us-west-2"]),
                ..Inventory::default()
            },
            &c,
            NOW,
        );
        assert_eq!(fresh.copies.len(), 2);
        for copy in &fresh.copies {
            assert_eq!(copy.request.completion_minutes, Some(30));
            assert_eq!(
                copy.request.tags.get(COPY_WITHIN).map(String::as_str),
                Some("30")
            );
        }
        // AND without the setting, neither
        let best_effort = plan(
            &Inventory {
                sources: vec![managed("ami-1", "us-east-1")],
                copies: listed(&["eu-west-1"]),
                ..Inventory::default()
            },
            &config(&[("REPLICA_REGIONS", "eu-west-1")]),
            NOW,
        );
        assert_eq!(best_effort.copies[0].request.completion_minutes, None);
        assert!(!best_effort.copies[0].request.tags.contains_key(COPY_WITHIN));

        // GIVEN pending copies: one 45 minutes old given 30, one 10 minutes old given 30
        let pending = |id: &str, region: &str, age: i64, within: Option<&str>| {
            let mut p = copy_of(id, "ami-1", region, ImageState::Pending, 1);
            p.created = NOW - time::Duration::minutes(age);
            if let Some(w) = within {
                p.tags.insert(COPY_WITHIN.to_owned(), w.to_owned());
            }
            p
        };
        let mut copies = listed(&["eu-west-1", "us-west-2"]);
        copies.insert(
            Region::new("eu-west-1"),
            vec![pending("ami-2", "eu-west-1", 45, Some("30"))],
        );
        copies.insert(
            Region::new("us-west-2"),
            vec![pending("ami-3", "us-west-2", 10, Some("30"))],
        );
        let inv = Inventory {
            sources: vec![managed("ami-1", "us-east-1")],
            copies,
            ..Inventory::default()
        };
        // WHEN planning THEN the first is late (saying when and by how much), the other
        // already exists, and nothing is copied again
        let p = plan(&inv, &c, NOW);
        assert!(p.copies.is_empty(), "{p:?}");
        let late: Vec<&Decision> = p
            .decisions
            .iter()
            .filter(|d| d.outcome == Outcome::Late)
            .collect();
        assert_eq!(late.len(), 1, "{:?}", p.decisions);
        assert_eq!(late[0].image.as_ref().map(ImageId::as_str), Some("ami-2"));
        for words in ["within 30 minutes", "15 minutes past", "eu-west-1"] {
            assert!(
                late[0].reason.contains(words),
                "{:?} lacks {words:?}",
                late[0].reason
            );
        }
        assert_eq!(
            p.decisions
                .iter()
                .filter(|d| d.outcome == Outcome::AlreadyExisted)
                .count(),
            1
        );
        // AND a copy made without a deadline is never late, nor is an available one
        let mut untagged = inv.clone();
        untagged.copies.insert(
            Region::new("eu-west-1"),
            vec![pending("ami-2", "eu-west-1", 600, None)],
        );
        assert!(plan(&untagged, &c, NOW)
            .decisions
            .iter()
            .all(|d| d.outcome != Outcome::Late));
        let mut done = pending("ami-2", "eu-west-1", 600, Some("30"));
        done.state = ImageState::Available;
        assert_eq!(late_of(&done), None);
    }

    fn late_of(copy: &Image) -> Option<(u32, OffsetDateTime)> {
        late(copy, NOW)
    }

    fn plan_fn(inv: &Inventory, c: &Config) -> Plan {
        plan(inv, c, NOW)
    }

    fn plan_copies(inv: &Inventory, c: &Config) -> usize {
        plan(inv, c, NOW).copies.len()
    }

    #[test]
    fn failed_copies_go_once_superseded_or_useless_and_not_before() {
        let c = config(&[("REPLICA_REGIONS", "eu-west-1")]);
        let mut copies = listed(&["eu-west-1", "us-west-2"]);
        copies.insert(
            Region::new("eu-west-1"),
            vec![
                copy_of("ami-2", "ami-1", "eu-west-1", ImageState::Failed, 1),
                copy_of("ami-3", "ami-1", "eu-west-1", ImageState::Available, 2),
            ],
        );
        // us-west-2 is no longer a destination of ami-1; ami-8's source is gone; ami-7's unknown.
        copies.insert(
            Region::new("us-west-2"),
            vec![
                copy_of("ami-4", "ami-1", "us-west-2", ImageState::Failed, 1),
                copy_of("ami-6", "ami-8", "us-west-2", ImageState::Failed, 1),
                copy_of("ami-5", "ami-7", "us-west-2", ImageState::Failed, 1),
            ],
        );
        let inv = Inventory {
            sources: vec![managed("ami-1", "us-east-1")],
            copies,
            gone_sources: [ImageId::new("ami-8")].into_iter().collect(),
            ..Inventory::default()
        };
        let plan = plan(&inv, &c, NOW);
        let removed: Vec<&str> = plan.removals.iter().map(|r| r.image.as_str()).collect();
        assert_eq!(removed, vec!["ami-2", "ami-4", "ami-6"]);
        assert!(plan.copies.is_empty());
    }

    #[test]
    fn an_unusable_key_fails_its_region_only_and_an_unchecked_one_defers() {
        let c = config(&[
            ("REPLICA_REGIONS", "eu-west-1,us-west-2,ap-south-1"),
            (
                "REPLICA_KMS_KEYS",
                "eu-west-1=alias/gone,ap-south-1=alias/slow",
            ),
        ]);
        let mut keys = BTreeMap::new();
        keys.insert(
            Region::new("eu-west-1"),
            KeyStatus::Unusable("does not exist in eu-west-1".to_owned()),
        );
        keys.insert(
            Region::new("ap-south-1"),
            KeyStatus::Unknown("throttled".to_owned()),
        );
        let inv = Inventory {
            sources: vec![managed("ami-1", "us-east-1")],
            copies: listed(&["eu-west-1", "us-west-2", "ap-south-1"]),
            keys,
            ..Inventory::default()
        };
        let plan = plan(&inv, &c, NOW);
        assert_eq!(dests(&plan), vec!["us-west-2"]);
        let failed = plan
            .decisions
            .iter()
            .find(|d| d.outcome == Outcome::Failed)
            .map(|d| d.reason.clone())
            .unwrap_or_default();
        for words in [
            "alias/gone",
            "eu-west-1",
            "does not exist",
            "REPLICA_KMS_KEYS",
        ] {
            assert!(failed.contains(words), "{failed:?} lacks {words:?}");
        }
        assert!(plan
            .decisions
            .iter()
            .any(|d| d.outcome == Outcome::Deferred && d.region.as_str() == "ap-south-1"));
    }

    #[test]
    fn an_unlisted_destination_defers_instead_of_risking_a_duplicate() {
        let c = config(&[("REPLICA_REGIONS", "eu-west-1")]);
        let mut unlisted = BTreeMap::new();
        unlisted.insert(
            Region::new("eu-west-1"),
            (ErrorKind::Throttled, "RequestLimitExceeded".to_owned()),
        );
        let plan = plan(
            &Inventory {
                sources: vec![managed("ami-1", "us-east-1")],
                unlisted,
                ..Inventory::default()
            },
            &c,
            NOW,
        );
        assert!(plan.copies.is_empty());
        assert_eq!(plan.decisions[0].outcome, Outcome::Deferred);
    }

    fn shared(id: &str, owner: &str, billing: &[&str]) -> Image {
        let mut i = image(id, "us-east-1", &[]);
        i.owner = AccountId::parse(owner);
        i.name = "vendor-golden".to_owned();
        i.billing_products = billing.iter().map(|b| (*b).to_owned()).collect();
        i
    }

    #[test]
    fn adoption_copies_allowed_shared_images_into_the_same_region_and_refuses_the_rest() {
        let c = config(&[
            ("ADOPT_FROM", "111122223333"),
            ("REPLICA_KMS_KEYS", "us-east-1=alias/mine"),
        ]);
        let mut copies = listed(&["us-east-1"]);
        copies.insert(
            Region::new("us-east-1"),
            vec![copy_of(
                "ami-a2",
                "ami-adopted",
                "us-east-1",
                ImageState::Available,
                1,
            )],
        );
        let inv = Inventory {
            shared: vec![
                shared("ami-ok", "111122223333", &[]),
                shared("ami-adopted", "111122223333", &[]),
                shared("ami-market", "111122223333", &["bp-6ba54002"]),
                shared("ami-stranger", "444455556666", &[]),
            ],
            copies,
            keys: usable(&["us-east-1"]),
            ..Inventory::default()
        };
        let plan = plan(&inv, &c, NOW);
        assert_eq!(plan.copies.len(), 1);
        let copy = &plan.copies[0];
        assert_eq!(
            (
                copy.kind,
                copy.dest.as_str(),
                copy.request.source_image.as_str()
            ),
            (CopyKind::Adoption, "us-east-1", "ami-ok")
        );
        assert!(!copy.request.copy_source_tags);
        assert_eq!(
            copy.request.name,
            "ami-lifecycle/adopted/111122223333/ami-ok"
        );
        assert_eq!(
            copy.request
                .tags
                .get(key::SOURCE_ACCOUNT)
                .map(String::as_str),
            Some("111122223333")
        );
        assert!(copy.request.kms_key.is_some());
        let refused: Vec<&str> = plan
            .decisions
            .iter()
            .filter(|d| d.outcome == Outcome::Refused)
            .map(|d| d.subject.as_str())
            .collect();
        assert_eq!(refused, vec!["ami-market", "ami-stranger"]);
        assert!(plan
            .decisions
            .iter()
            .any(|d| d.reason.contains("launch an instance from it")));
    }

    #[test]
    fn names_stay_within_128_characters() {
        let c = config(&[]);
        let mut src = managed("ami-1", "us-east-1");
        src.name = format!("ami-lifecycle/{}", "x".repeat(114));
        let name = copy_name(CopyKind::Replica, &src, &c, 12);
        assert_eq!(name.chars().count(), 128);
        assert!(name.ends_with(" (attempt 12)"));
    }
}

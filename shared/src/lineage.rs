//! [`Lineage`]: which images are versions of one another, and the one retention decision
//! over a lineage that cleanup, replicate and `amictl status` share.
//!
//! - [`Lineage::of`]: the lineage of an image, from its tags. Images of one instance by one
//!   schedule form one lineage; an adopted image is a lineage of its own, keyed by the
//!   source account and the foreign image it was copied from; a replica carries its
//!   source's lineage tags, so it belongs to its source's lineage (in its own region); a
//!   managed image without lineage tags is a lineage of one.
//! - [`retention_time`]: the time retention counts an image by (its parsed
//!   `ami-lifecycle:slot`, never later than its creation date, else its creation date).
//! - [`Head`]: the lineage's newest image, whose `ami-lifecycle:retain` and `retain-in`
//!   tags rule it; [`applied_rule`] turns it into the [`AppliedRule`] for its region (or the
//!   [`BadRule`] that keeps the lineage whole).
//! - [`judge`]: each member's [`Standing`] under that rule; [`Lineages`] groups whole
//!   [`Image`]s per region and lineage and judges them all (replicate's guard, status).
//!   Cleanup keeps its own compact inventory and calls [`Head`] and [`judge`] directly.
//!
//! The rules, in one place. Where the three earlier copies disagreed, the rule chosen is
//! the one that keeps more and cannot feed a copy-then-delete loop between replicate and
//! cleanup:
//! - **Newest**: the later retention time; on a tie, the smaller id
//!   ([`crate::retention::newest_first`], the order [`RetentionRule::keep`] ranks by).
//!   Replicate took the larger id before.
//! - **Counted**: retention ranks available and disabled images. A pending image is not
//!   counted: it is kept by its own guard until it is available (replicate counted it,
//!   which pushed an older image out of its copies while cleanup still kept it). Failed,
//!   error, … images are neither counted nor retired here.
//! - **The rule**: the `retain` tag of the lineage's head, else `RETAIN`. The head is the
//!   newest available image, or the newest disabled one when none is available; never a
//!   pending or failed image (cleanup read it from an image of any state, replicate from
//!   available and pending ones). The newest available image is always kept and so always
//!   replicated: a replica region reads the same tag from the replica of the same image,
//!   and the two regions cannot disagree on the rule.
//! - **Per region**: a lineage is judged in each region by the rule for that region, the
//!   first of: the head's `ami-lifecycle:retain-in` entry for the region
//!   (`eu-west-1=count=3;us-west-2=days=90`, [`parse_rules_by_region`]), the head's
//!   `ami-lifecycle:retain`, `RETAIN_BY_REGION`'s entry for the region, `RETAIN`. The
//!   head's tags override the deployment's settings; within each, the region's entry
//!   overrides the general one. Replicas carry both tags, so the replica region reads the
//!   same entries ([`applied_rule_in`] gives any region's rule from the source's head).
//! - **A bad `retain` or `retain-in` tag on the head** keeps the whole lineage (cleanup);
//!   replicate copies as if there were no guard (in doubt, copy: cleanup keeps it anyway).
//! - **The newest available image is always kept**, whatever the rule says (a newer image
//!   may be disabled).
//!
//! ```
//! use ami_core::lineage::{judge, applied_rule, Head, Member, Standing};
//! use ami_core::model::{ImageId, ImageState};
//! use ami_core::retention::RetentionRule;
//! use time::macros::datetime;
//!
//! let (old, new) = (ImageId::new("ami-1"), ImageId::new("ami-2"));
//! let members = [
//!     Member { id: &old, time: 1_000, state: ImageState::Available },
//!     Member { id: &new, time: 2_000, state: ImageState::Available },
//! ];
//! let mut head = Head::default();
//! for m in &members {
//!     head.offer(m, None);
//! }
//! let rule = applied_rule(&head, &RetentionRule::parse("count=1")?);
//! let standings = judge(&members, &rule, datetime!(2026-11-22 00:00 UTC));
//! assert!(matches!(standings[0], Standing::Past(_)));
//! assert!(matches!(standings[1], Standing::Kept(..)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::model::{Image, ImageId, ImageState, Region};
use crate::retention::{newest_first, KeepReason, RetentionRule};
use crate::tags::{self, key, TagError};
use crate::time_util::{parse_rfc3339, parse_slot_compact};

/// Which images are versions of one another; retention counts each lineage separately
/// (and separately in each region).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lineage {
    /// Images of one instance by one schedule (`ami-lifecycle:source-instance` ×
    /// `ami-lifecycle:schedule`); replicas carry the same tags and form the same lineage
    /// in their own region.
    Instance { instance: String, schedule: String },
    /// An image adopted from another account (`ami-lifecycle:source-account`, no source
    /// instance). Each adopted image is a lineage of its own, keyed by the foreign image
    /// it was copied from (`ami-lifecycle:source-image`): the suite cannot know which of
    /// another account's images are versions of one another, so it never prunes one
    /// adopted image because another is newer. Its replicas share the key.
    Adopted { account: String, image: String },
    /// Managed but without lineage tags (made by hand, tags edited): a lineage of one,
    /// so retention always keeps it.
    Untracked { image: String },
}

impl Lineage {
    /// The lineage of an image, from its tags (values trimmed; empty values are absent).
    pub fn of(image: &Image) -> Self {
        Self::claimed(&image.tags, &image.id).unwrap_or_else(|| Self::Untracked {
            image: image.id.to_string(),
        })
    }

    /// The lineage the tags claim, `None` when they claim none (untracked). `id` is the
    /// image itself, the key of an adopted image whose tags lack `source-image`. The seal
    /// covers this claim ([`crate::seal::Subject::image`]), so it is computed the same way
    /// before an image exists (its tags at creation) and after.
    pub fn claimed(tags: &crate::model::Tags, id: &ImageId) -> Option<Self> {
        let tag = |k: &str| tags.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        if let Some(instance) = tag(key::SOURCE_INSTANCE) {
            return Some(Self::Instance {
                instance: instance.to_owned(),
                schedule: tag(key::SCHEDULE).unwrap_or("-").to_owned(),
            });
        }
        tag(key::SOURCE_ACCOUNT).map(|account| Self::Adopted {
            account: account.to_owned(),
            image: tag(key::SOURCE_IMAGE).unwrap_or(id.as_str()).to_owned(),
        })
    }
}

impl fmt::Display for Lineage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Instance { instance, schedule } => write!(f, "{instance}/{schedule}"),
            Self::Adopted { account, image } => write!(f, "adopted {account}/{image}"),
            Self::Untracked { image } => write!(f, "untracked {image}"),
        }
    }
}

/// Whether retention looks at `image` at all: tagged `managed-by` this deployment and not
/// deregistered. What is not ours is never counted, kept or retired.
pub fn is_member(image: &Image, deployment: &str) -> bool {
    tags::is_managed_by(&image.tags, deployment) && image.state != ImageState::Deregistered
}

/// Whether retention ranks an image in this state: available and disabled images count;
/// pending, failed and the rest do not (see the module docs).
pub fn is_counted(state: ImageState) -> bool {
    matches!(state, ImageState::Available | ImageState::Disabled)
}

/// Parses an `ami-lifecycle:slot` value: RFC 3339 (as written), or the compact form of names.
pub fn parse_slot(value: &str) -> Option<OffsetDateTime> {
    let v = value.trim();
    parse_rfc3339(v).or_else(|| parse_slot_compact(v))
}

/// The time retention counts an image by, in Unix seconds: the slot it stands for, else
/// its creation date. Whole seconds, so every caller ranks ties the same way.
///
/// Bounded by the creation date: `min(slot, created)`. An image can stand for a slot
/// before it was made (a late wave, a retried copy) but never for a later one, so a slot
/// tag in the future (a typo, a forged tag, a bogus invocation) cannot make an image the
/// newest of its lineage and push real images out.
pub fn retention_time(image: &Image) -> i64 {
    image
        .tag(key::SLOT)
        .and_then(parse_slot)
        .map_or(image.created, |slot| slot.min(image.created))
        .unix_timestamp()
}

/// Unix seconds → time (the epoch for values out of range, which cannot come from EC2).
pub fn to_time(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// What the decisions need of one image of a lineage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    pub id: &'a ImageId,
    /// [`retention_time`], Unix seconds.
    pub time: i64,
    pub state: ImageState,
}

/// The head of a lineage: its newest available image, or its newest disabled image when
/// none is available, with that image's `ami-lifecycle:retain` and `retain-in` values and
/// its region. Built one image at a time ([`Head::offer_image`]), so an inventory need not
/// keep every image's tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    newest: Option<(bool, i64, ImageId)>,
    retain_tag: Option<String>,
    retain_in_tag: Option<String>,
    region: Option<Region>,
}

impl Head {
    /// Considers one member of `image`'s lineage (`member` describes `image`): its
    /// `retain` and `retain-in` tags and its region (whose rule [`applied_rule`] picks).
    pub fn offer_image(&mut self, member: &Member<'_>, image: &Image) {
        if self.offer_tags(member, image.tag(key::RETAIN), image.tag(key::RETAIN_IN)) {
            self.region = Some(image.region.clone());
        }
    }

    /// Considers one member; `retain_tag` is its `ami-lifecycle:retain` value. Without a
    /// region or `retain-in` tag: [`Head::offer_image`] is what the runners call.
    pub fn offer(&mut self, member: &Member<'_>, retain_tag: Option<&str>) {
        self.offer_tags(member, retain_tag, None);
    }

    /// Whether the member became the head.
    fn offer_tags(
        &mut self,
        member: &Member<'_>,
        retain_tag: Option<&str>,
        retain_in_tag: Option<&str>,
    ) -> bool {
        if !is_counted(member.state) {
            return false;
        }
        let available = member.state == ImageState::Available;
        let better = match &self.newest {
            None => true,
            // An available image beats a disabled one; between equals, the newer.
            Some((a, t, id)) => {
                (available && !*a)
                    || (available == *a && newest_first((member.time, member.id), (*t, id)).is_lt())
            }
        };
        if better {
            self.newest = Some((available, member.time, member.id.clone()));
            self.retain_tag = retain_tag.map(str::to_owned);
            self.retain_in_tag = retain_in_tag.map(str::to_owned);
        }
        better
    }

    /// The head image and its retention time, if the lineage has a counted image.
    pub fn image(&self) -> Option<(&ImageId, i64)> {
        self.newest.as_ref().map(|(_, t, id)| (id, *t))
    }

    /// The head's `ami-lifecycle:retain` value.
    pub fn retain_tag(&self) -> Option<&str> {
        self.retain_tag.as_deref()
    }

    /// The head's `ami-lifecycle:retain-in` value.
    pub fn retain_in_tag(&self) -> Option<&str> {
        self.retain_in_tag.as_deref()
    }

    /// The region of the lineage (its head's), when offered with [`Head::offer_image`].
    pub fn region(&self) -> Option<&Region> {
        self.region.as_ref()
    }
}

/// Where a lineage's rule comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSource {
    /// `RETAIN`.
    Config,
    /// `RETAIN_BY_REGION`'s entry for this region.
    ConfigIn(Region),
    /// `ami-lifecycle:retain` on the lineage's head.
    Tag(ImageId),
    /// `ami-lifecycle:retain-in`'s entry for this region, on the lineage's head.
    TagIn(ImageId, Region),
}

/// The deployment's retention settings a lineage falls back on: `RETAIN` everywhere
/// ([`RetentionRule`]), or `RETAIN` and `RETAIN_BY_REGION` ([`crate::config::Config`]).
pub trait Defaults {
    /// The rule for `region` (`None`: unknown) and where it comes from.
    fn rule_for(&self, region: Option<&Region>) -> (&RetentionRule, RuleSource);
}

impl Defaults for RetentionRule {
    fn rule_for(&self, _region: Option<&Region>) -> (&RetentionRule, RuleSource) {
        (self, RuleSource::Config)
    }
}

impl Defaults for crate::config::Config {
    fn rule_for(&self, region: Option<&Region>) -> (&RetentionRule, RuleSource) {
        match region.and_then(|r| self.retain_by_region.get_key_value(r)) {
            Some((r, rule)) => (rule, RuleSource::ConfigIn(r.clone())),
            None => (&self.retain, RuleSource::Config),
        }
    }
}

/// What a `region=rule;region=rule` value (`RETAIN_BY_REGION`, `ami-lifecycle:retain-in`)
/// gets wrong: the problem, and the accepted form in [`RULES_BY_REGION_FORM`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesByRegionError {
    pub problem: String,
}

/// The accepted form of [`parse_rules_by_region`], for error messages.
pub const RULES_BY_REGION_FORM: &str =
    "region=rule entries separated by semicolons, e.g. eu-west-1=count=3;us-west-2=days=90 (each rule as RETAIN: count=7, days=30, daily=7,weekly=4, ...)";

/// Parses `region=rule;region=rule` (the rule in `RETAIN`'s language; empty entries are
/// ignored; a region at most once).
pub fn parse_rules_by_region(
    value: &str,
) -> Result<BTreeMap<Region, RetentionRule>, RulesByRegionError> {
    let mut out = BTreeMap::new();
    for entry in value.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = |problem: String| RulesByRegionError { problem };
        let (region, rule) = entry.split_once('=').ok_or_else(|| {
            bad(format!(
                "{:?} is not region=rule",
                crate::values::truncate(entry, 80)
            ))
        })?;
        let region = region.trim();
        if !tags::is_region_name(region) {
            return Err(bad(format!(
                "{:?} is not a region name such as eu-west-1",
                crate::values::truncate(region, 80)
            )));
        }
        let rule = RetentionRule::parse(rule.trim())
            .map_err(|e| bad(format!("{region}: {}", e.problem)))?;
        if out.insert(Region::new(region), rule).is_some() {
            return Err(bad(format!("{region} is named twice")));
        }
    }
    Ok(out)
}

/// The rule a lineage is retained by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedRule {
    pub rule: RetentionRule,
    pub source: RuleSource,
}

impl fmt::Display for AppliedRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            RuleSource::Config => write!(f, "{} (RETAIN)", self.rule),
            RuleSource::ConfigIn(r) => write!(f, "{} (RETAIN_BY_REGION {r})", self.rule),
            RuleSource::Tag(id) => write!(f, "{} ({} on {id})", self.rule, key::RETAIN),
            RuleSource::TagIn(id, r) => {
                write!(f, "{} ({} {r} on {id})", self.rule, key::RETAIN_IN)
            }
        }
    }
}

/// The head's `ami-lifecycle:retain` does not parse: the lineage is kept whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRule {
    /// The image carrying the bad tag (the head).
    pub on: ImageId,
    pub error: Arc<TagError>,
}

/// The rule of a lineage in its own region (its head's, [`Head::region`]); see
/// [`applied_rule_in`].
pub fn applied_rule(head: &Head, defaults: &impl Defaults) -> Result<Arc<AppliedRule>, BadRule> {
    applied_rule_in(head, head.region(), defaults)
}

/// The rule a lineage whose head is `head` is retained by in `region` (the module docs:
/// `retain-in` entry, `retain`, `RETAIN_BY_REGION` entry, `RETAIN`). Replicate asks it
/// for a destination from the source's head: the replicas carry the same tags.
pub fn applied_rule_in(
    head: &Head,
    region: Option<&Region>,
    defaults: &impl Defaults,
) -> Result<Arc<AppliedRule>, BadRule> {
    let Some((id, _)) = head.image() else {
        let (rule, source) = defaults.rule_for(region);
        return Ok(Arc::new(AppliedRule {
            rule: rule.clone(),
            source,
        }));
    };
    let bad = |error: TagError| BadRule {
        on: id.clone(),
        error: Arc::new(error),
    };
    let by_region = match head.retain_in_tag() {
        Some(value) => parse_rules_by_region(value).map_err(|e| {
            bad(TagError::new(
                key::RETAIN_IN,
                value,
                e.problem,
                RULES_BY_REGION_FORM,
            ))
        })?,
        None => BTreeMap::new(),
    };
    let general = match head.retain_tag() {
        Some(value) => Some(
            RetentionRule::parse(value)
                .map_err(|e| bad(TagError::from_retention(key::RETAIN, &e)))?,
        ),
        None => None,
    };
    let applied = match (region.and_then(|r| by_region.get_key_value(r)), general) {
        (Some((r, rule)), _) => AppliedRule {
            rule: rule.clone(),
            source: RuleSource::TagIn(id.clone(), r.clone()),
        },
        (None, Some(rule)) => AppliedRule {
            rule,
            source: RuleSource::Tag(id.clone()),
        },
        (None, None) => {
            let (rule, source) = defaults.rule_for(region);
            AppliedRule {
                rule: rule.clone(),
                source,
            }
        }
    };
    Ok(Arc::new(applied))
}

/// Where one image stands under its lineage's rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    /// The rule keeps it.
    Kept(KeepReason, Arc<AppliedRule>),
    /// The newest available image: kept although the rule alone would not keep it
    /// (newer images are disabled).
    NewestAvailable,
    /// Being made: never counted, never retired.
    Pending,
    /// Failed, error, …: not counted by retention, left alone.
    Uncounted(ImageState),
    /// The head's `retain` tag is bad: the whole lineage is kept.
    BadRule(BadRule),
    /// Past retention: cleanup may retire it (after its guards); replicate does not copy it.
    Past(Arc<AppliedRule>),
}

impl Standing {
    /// Retention no longer keeps the image.
    pub fn is_past(&self) -> bool {
        matches!(self, Self::Past(_))
    }
}

/// Each member's standing (same order as `members`: one lineage in one region, any order).
pub fn judge(
    members: &[Member<'_>],
    rule: &Result<Arc<AppliedRule>, BadRule>,
    now: OffsetDateTime,
) -> Vec<Standing> {
    let rule = match rule {
        Ok(rule) => rule,
        Err(bad) => return vec![Standing::BadRule(bad.clone()); members.len()],
    };
    let ranked: Vec<(ImageId, OffsetDateTime)> = members
        .iter()
        .filter(|m| is_counted(m.state))
        .map(|m| (m.id.clone(), to_time(m.time)))
        .collect();
    let kept = rule.rule.keep(&ranked, now);
    let newest_available = members
        .iter()
        .filter(|m| m.state == ImageState::Available)
        .min_by(|a, b| newest_first((a.time, a.id), (b.time, b.id)))
        .map(|m| m.id);
    members
        .iter()
        .map(|m| match m.state {
            s if is_counted(s) => match kept.get(m.id) {
                Some(reason) => Standing::Kept(reason.clone(), rule.clone()),
                None if Some(m.id) == newest_available => Standing::NewestAvailable,
                None => Standing::Past(rule.clone()),
            },
            ImageState::Pending => Standing::Pending,
            other => Standing::Uncounted(other),
        })
        .collect()
}

/// One lineage in one region, as [`Lineages`] collects it.
#[derive(Debug, Clone)]
pub struct Group {
    pub region: Region,
    pub lineage: Lineage,
    pub head: Head,
    /// `(id, retention time, state)` of each member.
    pub members: Vec<(ImageId, i64, ImageState)>,
}

impl Group {
    /// The members' standings, in [`Group::members`] order.
    pub fn judge(&self, defaults: &impl Defaults, now: OffsetDateTime) -> Vec<Standing> {
        let members: Vec<Member<'_>> = self
            .members
            .iter()
            .map(|(id, time, state)| Member {
                id,
                time: *time,
                state: *state,
            })
            .collect();
        judge(&members, &applied_rule(&self.head, defaults), now)
    }
}

/// Whole images grouped by region and lineage: what cleanup's inventory holds, for callers
/// that list full images (replicate's retention guard, `amictl status`).
#[derive(Debug, Clone, Default)]
pub struct Lineages {
    index: HashMap<(Region, Lineage), usize>,
    groups: Vec<Group>,
}

impl Lineages {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `image` to its group if retention looks at it ([`is_member`]); returns the
    /// group's index in [`Lineages::groups`].
    pub fn add(&mut self, image: &Image, deployment: &str) -> Option<usize> {
        if !is_member(image, deployment) {
            return None;
        }
        let group_key = (image.region.clone(), Lineage::of(image));
        let next = self.groups.len();
        let at = *self.index.entry(group_key.clone()).or_insert(next);
        if at == next {
            self.groups.push(Group {
                region: group_key.0,
                lineage: group_key.1,
                head: Head::default(),
                members: Vec::new(),
            });
        }
        let group = &mut self.groups[at];
        let time = retention_time(image);
        group.head.offer_image(
            &Member {
                id: &image.id,
                time,
                state: image.state,
            },
            image,
        );
        group.members.push((image.id.clone(), time, image.state));
        Some(at)
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Every member's standing, by image id.
    pub fn standings(
        &self,
        defaults: &impl Defaults,
        now: OffsetDateTime,
    ) -> BTreeMap<ImageId, Standing> {
        let mut out = BTreeMap::new();
        for g in &self.groups {
            for ((id, _, _), s) in g.members.iter().zip(g.judge(defaults, now)) {
                out.insert(id.clone(), s);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;

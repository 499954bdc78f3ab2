//! The pure cleanup planner: per managed image, keep (and why) or retire (and by which rule).
//!
//! Planning runs in two steps so the run can fetch only the facts it needs:
//! 1. [`retention`] applies each lineage's rule ([`crate::lineage::judge`]: what a lineage
//!    is, which image is the newest, which rule applies, decided once for cleanup, replicate
//!    and `amictl status`) and marks every image [`Stage::Keep`] or [`Stage::Past`] retention;
//! 2. [`decide`] applies the guards to an image past retention — pending, `keep=true`,
//!    deregistration protection, recently launched, public, then the [`Facts`] the run
//!    looked up (references, launch permissions) — and the staged retirement
//!    (`DEPRECATION_GRACE`, then `DISABLE_GRACE`).
//!
//! Staged retirement: deprecate (`EnableImageDeprecation`) → after `DEPRECATION_GRACE`
//! days, disable (`DisableImage`: hidden, not launchable, every share removed; reversible
//! with `amictl restore`) → after `DISABLE_GRACE` days, deregister. A grace of 0 skips its
//! stage. EC2 records no time of disabling, so the stage clock is the image's deprecation
//! time: disabling also sets it to the moment of disabling, and a disabled image is
//! deregistered `DISABLE_GRACE` days after it.
//!
//! [`candidates`] lists the images that need facts; [`plan`] does both steps for the whole
//! inventory (the dry run prints it). Nothing here calls AWS or reads the clock.
//!
//! Safety rules the planner enforces (tested below):
//! - the newest available image of each lineage is always kept;
//! - an image past retention is retired only when every check ran and passed: a missing
//!   or failed check keeps it ("never delete on doubt");
//! - a bad `ami-lifecycle:retain` value keeps its whole lineage.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::inventory::{ImageRecord, Inventory, LineageId};
use crate::config::Config;
use crate::lineage::{self, to_time, BadRule, Head, Member, Standing};
pub use crate::lineage::{AppliedRule, RuleSource};
use crate::model::{Grantee, ImageId, ImageReference, ImageState, Snapshot};
use crate::ports::SnapshotLock;
use crate::retention::KeepReason;
use crate::tags::{self, key, TagError};
use crate::time_util::rfc3339;

/// A snapshot younger than this is never called an orphan: its image may have been created
/// after the inventory was read (CreateImage makes the snapshots first).
pub const ORPHAN_MIN_AGE: Duration = Duration::hours(24);

/// How far ahead of "now" retirement sets a deprecation time (EC2 refuses one in the
/// past); the graces count from it.
pub const DEPRECATE_AHEAD: Duration = Duration::minutes(1);

/// Why an image is kept.
#[derive(Debug, Clone, PartialEq)]
pub enum KeepWhy {
    /// The lineage's rule keeps it.
    Retention(KeepReason, Arc<AppliedRule>),
    /// The newest available image of its lineage (the rule alone would not keep it,
    /// e.g. because a newer image is disabled).
    NewestAvailable,
    Pending,
    /// Failed, error, … : not a retention candidate; left alone.
    State(ImageState),
    /// The lineage's head (newest available image) has an unreadable `ami-lifecycle:retain`.
    BadRetainTag {
        on: ImageId,
        error: Arc<TagError>,
    },
    KeepTag,
    Protected,
    LaunchedRecently {
        at: OffsetDateTime,
        within_days: u32,
    },
    Public,
    Shared(Vec<Grantee>),
    Referenced(Vec<ImageReference>),
    /// Published: the current or a recent value of a latest-image parameter, a pin, or the
    /// image of a tracked launch template ([`crate::publish::history`]); the reason says which.
    Published(String),
    /// A reference or sharing check failed: never delete on doubt. `retryable` when the
    /// failure was throttling or transient (the next run checks again).
    CheckFailed {
        problem: String,
        retryable: bool,
    },
    /// The checks were not run (deadline): the next run decides.
    NotChecked,
    /// Due to be disabled or deleted with `CLEANUP_SHARED=true`, but an account it is shared
    /// with uses it, or its use could not be established yet ([`super::usage`]): kept with
    /// its grants.
    UsedElsewhere(super::usage::Blocked),
    /// Deprecated, waiting for `DEPRECATION_GRACE` to pass; then disabled when
    /// `disable_next` (`DISABLE_GRACE` > 0), else deregistered.
    InGrace {
        deprecated_at: OffsetDateTime,
        until: OffsetDateTime,
        rule: Arc<AppliedRule>,
        disable_next: bool,
    },
    /// Disabled (by retirement, at `since`), waiting for `DISABLE_GRACE` to pass.
    Disabled {
        since: OffsetDateTime,
        until: OffsetDateTime,
        rule: Arc<AppliedRule>,
    },
    /// Due for deregistration, but one of its snapshots is locked (EBS snapshot lock):
    /// EC2 would refuse to delete it, so the image waits for the lock's end.
    SnapshotLocked(SnapshotLock),
}

impl fmt::Display for KeepWhy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Retention(reason, rule) => write!(f, "{reason}: retention {rule}"),
            Self::NewestAvailable => f.write_str("the newest available image of its lineage is always kept"),
            Self::Pending => f.write_str("pending: never deleted while it is being made"),
            Self::State(s) => write!(f, "state {}: not counted by retention, left alone", s.as_str()),
            Self::BadRetainTag { on, error } => {
                write!(f, "lineage kept whole: {error} (on {on}, the lineage's newest image)")
            }
            Self::KeepTag => write!(f, "tagged {}=true", key::KEEP),
            Self::Protected => f.write_str("deregistration protection is on"),
            Self::LaunchedRecently { at, within_days } => {
                write!(f, "launched {}, within KEEP_IF_LAUNCHED_WITHIN={within_days} days", rfc3339(*at))
            }
            Self::Public => f.write_str("public (launch permission all); CLEANUP_SHARED=true would allow deleting it"),
            Self::Shared(grantees) => {
                let list: Vec<String> = grantees.iter().map(ToString::to_string).collect();
                write!(f, "shared with {}; CLEANUP_SHARED=true would allow deleting it", list.join(", "))
            }
            Self::Referenced(refs) => {
                let list: Vec<String> = refs.iter().map(|r| format!("{} {}", r.resource_type, r.arn)).collect();
                write!(f, "in use by {} (references are per region: only this region's can use this image)", list.join("; "))
            }
            Self::Published(why) => f.write_str(why),
            Self::CheckFailed { problem, .. } => write!(f, "could not verify it is unused ({problem}): kept, never deleted on doubt"),
            Self::NotChecked => f.write_str("past retention, not yet checked for references: left for the next run"),
            Self::UsedElsewhere(blocked) => write!(f, "{blocked} (shared; CLEANUP_SHARED=true retires it once no account it is shared with uses it)"),
            Self::InGrace { deprecated_at, until, rule, disable_next } => write!(
                f,
                "past retention {rule}; deprecated {}, {} on or after {} (DEPRECATION_GRACE)",
                rfc3339(*deprecated_at),
                if *disable_next { "disabled" } else { "deregistered" },
                rfc3339(*until)
            ),
            Self::SnapshotLocked(lock) => write!(
                f,
                "due for deregistration, but its snapshot {} is locked ({} mode) {}: kept, and deregistered with its snapshots once the lock ends",
                lock.snapshot,
                lock.mode,
                lock.expires
                    .map_or_else(|| "with no end given".to_owned(), |t| format!("until {}", rfc3339(t)))
            ),
            Self::Disabled { since, until, rule } => write!(
                f,
                "past retention {rule}; disabled {} (hidden, not launchable, unshared), deregistered on or after {} (DISABLE_GRACE); `amictl restore` brings it back until then",
                rfc3339(*since),
                rfc3339(*until)
            ),
        }
    }
}

/// The outcome of the retention step for one image. 16 bytes: a run holds one per image
/// (issue 19, flat memory), and a [`KeepWhy`] inline would make it 72; the reason is
/// shared instead (allocated for kept images only, once for all the not-yet-judged).
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    Keep(Arc<KeepWhy>),
    Past(Arc<AppliedRule>),
}

/// The [`Stage`] of every inventory image ([`retention`]), 4 bytes an image: each image's
/// index into the distinct stages, which its lineage's members share (one `Past` per
/// lineage, a `Keep` per reason met in a row); read as a slice (`stages[i]`, `iter`).
#[derive(Debug, Clone, PartialEq)]
pub struct Stages {
    of: Vec<u32>,
    distinct: Vec<Stage>,
}

impl Stages {
    /// `len` images, each [`KeepWhy::NotChecked`] until set.
    fn new(len: usize) -> Self {
        Self {
            of: vec![0; len],
            distinct: vec![Stage::Keep(Arc::new(KeepWhy::NotChecked))],
        }
    }

    /// Sets image `i`'s stage, sharing the last distinct stage when it is the same
    /// (`recent`: the indexes of the last `Keep` and `Past` set, per lineage).
    fn set(&mut self, i: usize, stage: Stage, recent: &mut [Option<u32>; 2]) {
        let slot = usize::from(matches!(stage, Stage::Past(_)));
        let same = recent[slot]
            .and_then(|d| self.distinct.get(d as usize).map(|known| (d, known)))
            .filter(|(_, known)| match (known, &stage) {
                (Stage::Past(a), Stage::Past(b)) => Arc::ptr_eq(a, b) || a == b,
                (Stage::Keep(a), Stage::Keep(b)) => a == b,
                _ => false,
            })
            .map(|(d, _)| d);
        let d = same.unwrap_or_else(|| {
            self.distinct.push(stage);
            (self.distinct.len() - 1) as u32
        });
        recent[slot] = Some(d);
        if let Some(of) = self.of.get_mut(i) {
            *of = d;
        }
    }

    pub fn len(&self) -> usize {
        self.of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.of.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Stage> {
        self.of.get(i).and_then(|&d| self.distinct.get(d as usize))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Stage> + '_ {
        self.of
            .iter()
            .filter_map(|&d| self.distinct.get(d as usize))
    }
}

impl std::ops::Index<usize> for Stages {
    type Output = Stage;

    fn index(&self, i: usize) -> &Stage {
        &self.distinct[self.of[i] as usize]
    }
}

impl<'a> IntoIterator for &'a Stages {
    type Item = &'a Stage;
    type IntoIter = Box<dyn Iterator<Item = &'a Stage> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// What to do with one image.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Keep(KeepWhy),
    /// Past retention, grace configured, not yet deprecated: `EnableImageDeprecation` now.
    Deprecate(Arc<AppliedRule>),
    /// Past retention and its deprecation grace: `DisableImage` now (skipped when already
    /// disabled), after setting the deprecation time to now (the disabled stage's clock)
    /// when `restart_clock`. Deregistered on or after `until`.
    Disable {
        rule: Arc<AppliedRule>,
        restart_clock: bool,
        until: OffsetDateTime,
    },
    /// Past retention and checked unused: `DeregisterImage` with its snapshots.
    Deregister {
        rule: Arc<AppliedRule>,
        deprecated_at: Option<OffsetDateTime>,
    },
}

/// A region's locked snapshots by [`super::inventory::snapshot_key`].
pub type SnapshotLocks = Arc<HashMap<u64, SnapshotLock>>;

/// The snapshot lock check of a region: `None` = not asked (treated as no lock), `Err` =
/// the check failed (problem, retryable).
pub type LockCheck = Option<Result<SnapshotLocks, (String, bool)>>;

/// What the run looked up for the images past retention.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    references: HashMap<ImageId, Vec<ImageReference>>,
    references_checked: HashSet<ImageId>,
    grantees: HashMap<ImageId, Vec<Grantee>>,
    sharing_checked: HashSet<ImageId>,
    failed: HashMap<ImageId, (String, bool)>,
    /// The region's snapshot locks by [`super::inventory::snapshot_key`]; `None` = not
    /// asked (treated as none), `Err` = the check failed (deregistrations kept).
    locks: LockCheck,
    /// What was published in the region (image → why kept); `Err` = could not be read
    /// (every candidate kept); `None` = not asked.
    published: Option<Result<Arc<crate::publish::history::Published>, (String, bool)>>,
    /// What the accounts the images are shared with said ([`super::usage_check`]).
    usage: Option<super::usage::Usage>,
}

impl Facts {
    pub fn new() -> Self {
        Self::default()
    }

    /// `images` were checked and `found` is everything that references any of them.
    pub fn references_checked(&mut self, images: &[ImageId], found: Vec<ImageReference>) {
        self.references_checked.extend(images.iter().cloned());
        for r in found {
            if images.contains(&r.image_id) {
                self.references
                    .entry(r.image_id.clone())
                    .or_default()
                    .push(r);
            }
        }
    }

    /// `image`'s launch permissions were read.
    pub fn sharing_checked(&mut self, image: &ImageId, grantees: Vec<Grantee>) {
        self.sharing_checked.insert(image.clone());
        if !grantees.is_empty() {
            self.grantees.insert(image.clone(), grantees);
        }
    }

    /// A check of `image` failed (`retryable`: throttling or transient): the image is kept.
    pub fn check_failed(&mut self, image: &ImageId, problem: impl Into<String>, retryable: bool) {
        self.failed
            .entry(image.clone())
            .or_insert_with(|| (problem.into(), retryable));
    }

    /// The region's locked snapshots (one `DescribeLockedSnapshots` listing per run).
    pub fn snapshot_locks(&mut self, locks: SnapshotLocks) {
        self.locks = Some(Ok(locks));
    }

    /// The snapshot lock check failed: no image is deregistered on doubt.
    pub fn snapshot_locks_failed(&mut self, problem: impl Into<String>, retryable: bool) {
        self.locks = Some(Err((problem.into(), retryable)));
    }

    /// What the region's latest-image parameters, their histories, pins and tracked
    /// templates keep (one read per region and run).
    pub fn published(&mut self, published: Arc<crate::publish::history::Published>) {
        self.published = Some(Ok(published));
    }

    /// The published images could not be read: nothing is deleted on doubt.
    pub fn published_failed(&mut self, problem: impl Into<String>, retryable: bool) {
        self.published = Some(Err((problem.into(), retryable)));
    }

    /// The cross-account use checks of the images about to be disabled or deleted.
    pub fn usage_checked(&mut self, usage: super::usage::Usage) {
        match &mut self.usage {
            Some(known) => known.extend(usage),
            None => self.usage = Some(usage),
        }
    }

    /// Who `image` is shared with, as read (`None`: not read).
    pub fn grantees(&self, image: &ImageId) -> Option<&[Grantee]> {
        if !self.sharing_checked.contains(image) {
            return None;
        }
        Some(self.grantees.get(image).map_or(&[], Vec::as_slice))
    }

    pub fn has_failed(&self, image: &ImageId) -> bool {
        self.failed.contains_key(image)
    }

    pub fn is_referenced(&self, image: &ImageId) -> bool {
        self.references.contains_key(image)
    }
}

/// Step 1: each lineage's rule over its images ([`lineage::judge`], the decision replicate
/// and `amictl status` share). Returns one stage per inventory image.
pub fn retention(inventory: &Inventory, config: &Config, now: OffsetDateTime) -> Stages {
    retention_without(inventory, &[], &HashMap::new(), config, now)
}

/// [`retention`] with the images `excluded[i]` marks left out of their lineages (proven not
/// this deployment's: they neither count nor are judged; their stage is
/// [`KeepWhy::NotChecked`]) and, for a lineage whose [`Head`] was one of them, the head
/// `heads` gives (the best member left).
///
/// Leaving out a member past retention changes no other member's stage: each rule keeps
/// the newest, the newest `count`, those younger than `days`, and the newest of each recent
/// calendar period, so a member no rule keeps is nobody's reason to be kept or not. Only a
/// kept member (or the head, always kept) can change the others'. Cleanup relies on this to
/// prove the kept members' seals before anything else ([`super::run`]).
pub fn retention_without(
    inventory: &Inventory,
    excluded: &[bool],
    heads: &HashMap<LineageId, Head>,
    config: &Config,
    now: OffsetDateTime,
) -> Stages {
    // Each lineage's members, as `u32` indices (4 bytes an image).
    let mut groups: Vec<Vec<u32>> = vec![Vec::new(); inventory.lineages.len()];
    for (i, img) in inventory.images.iter().enumerate() {
        if excluded.get(i).copied().unwrap_or(false) {
            continue;
        }
        if let Some(g) = groups.get_mut(img.lineage as usize) {
            g.push(i as u32);
        }
    }
    let mut stages = Stages::new(inventory.images.len());
    for (lid, (info, members)) in inventory.lineages.iter().zip(&groups).enumerate() {
        let head = LineageId::try_from(lid)
            .ok()
            .and_then(|l| heads.get(&l))
            .unwrap_or(&info.head);
        let rule = lineage::applied_rule(head, config);
        // The ids are made for one lineage at a time (the records keep them packed).
        let ids: Vec<ImageId> = members
            .iter()
            .map(|&i| inventory.id(&inventory.images[i as usize]))
            .collect();
        let judged: Vec<Member<'_>> = members
            .iter()
            .zip(&ids)
            .map(|(&i, id)| {
                let img = &inventory.images[i as usize];
                Member {
                    id,
                    time: img.time(),
                    state: img.state,
                }
            })
            .collect();
        let mut recent = [None, None];
        for (&i, standing) in members.iter().zip(lineage::judge(&judged, &rule, now)) {
            stages.set(i as usize, Stage::from(standing), &mut recent);
        }
    }
    stages
}

impl From<Standing> for Stage {
    fn from(standing: Standing) -> Self {
        match standing {
            Standing::Kept(reason, rule) => Self::Keep(Arc::new(KeepWhy::Retention(reason, rule))),
            Standing::NewestAvailable => Self::Keep(Arc::new(KeepWhy::NewestAvailable)),
            Standing::Pending => Self::Keep(Arc::new(KeepWhy::Pending)),
            Standing::Uncounted(state) => Self::Keep(Arc::new(KeepWhy::State(state))),
            Standing::BadRule(BadRule { on, error }) => {
                Self::Keep(Arc::new(KeepWhy::BadRetainTag { on, error }))
            }
            Standing::Past(rule) => Self::Past(rule),
        }
    }
}

/// Guards that need no lookup. `None` = the image may go as far as these are concerned.
fn local_guard(img: &ImageRecord, config: &Config, now: OffsetDateTime) -> Option<KeepWhy> {
    if img.state == ImageState::Pending {
        return Some(KeepWhy::Pending);
    }
    if img.keep_tag() {
        return Some(KeepWhy::KeepTag);
    }
    if img.protected() {
        return Some(KeepWhy::Protected);
    }
    let days = config.keep_if_launched_within_days;
    if let Some(at) = img.last_launched().map(to_time) {
        if days > 0 && at > now - Duration::days(i64::from(days)) {
            return Some(KeepWhy::LaunchedRecently {
                at,
                within_days: days,
            });
        }
    }
    if img.public() && !config.cleanup_shared {
        return Some(KeepWhy::Public);
    }
    None
}

/// Images past retention that no local guard keeps: the ones the run must look up
/// (references, and launch permissions unless `CLEANUP_SHARED`).
pub fn candidates(
    inventory: &Inventory,
    stages: &Stages,
    config: &Config,
    now: OffsetDateTime,
) -> Vec<usize> {
    (0..stages.len())
        .filter(|&i| is_candidate(inventory, stages, i, config, now))
        .collect()
}

/// Whether image `index` is one of the [`candidates`].
pub fn is_candidate(
    inventory: &Inventory,
    stages: &Stages,
    index: usize,
    config: &Config,
    now: OffsetDateTime,
) -> bool {
    matches!(stages.get(index), Some(Stage::Past(_)))
        && inventory
            .images
            .get(index)
            .is_some_and(|img| local_guard(img, config, now).is_none())
}

/// Step 2: the decision for image `index`, given its stage and the facts looked up.
///
/// With `CLEANUP_SHARED=true` and the cross-account use checks on
/// ([`super::usage::enabled`]), an image about to be disabled (which unshares it) or
/// deregistered while shared is kept unless every account it is shared with answered
/// "unused" ([`super::usage::verdict`]).
pub fn decide(
    inventory: &Inventory,
    stages: &Stages,
    index: usize,
    facts: &Facts,
    config: &Config,
    now: OffsetDateTime,
) -> Decision {
    let decision = decide_before_use_check(inventory, stages, index, facts, config, now);
    match use_check_needed(inventory, index, &decision, facts, config) {
        Err(why) => Decision::Keep(why),
        Ok(Some(grantees)) => {
            let id = inventory.id(&inventory.images[index]);
            match super::usage::verdict(facts.usage.as_ref(), &id, &grantees) {
                Some(blocked) => Decision::Keep(KeepWhy::UsedElsewhere(blocked)),
                None => decision,
            }
        }
        Ok(None) => decision,
    }
}

/// The grantees whose use must be checked before `decision` is applied to image `index`:
/// `Ok(None)` when none (no check, or the decision neither unshares nor deletes);
/// `Err` when the image must be kept because its launch permissions were not read.
/// The run asks it to know which images to check ([`super::usage_check`]).
pub fn use_check_needed(
    inventory: &Inventory,
    index: usize,
    decision: &Decision,
    facts: &Facts,
    config: &Config,
) -> Result<Option<Vec<Grantee>>, KeepWhy> {
    let retires = matches!(
        decision,
        Decision::Disable { .. } | Decision::Deregister { .. }
    );
    if !retires || !config.cleanup_shared || !super::usage::enabled(config) {
        return Ok(None);
    }
    let img = &inventory.images[index];
    if img.state == ImageState::Disabled {
        // EC2 removed every launch permission when it was disabled: nothing to revoke.
        return Ok(None);
    }
    match facts.grantees(&inventory.id(img)) {
        None => Err(KeepWhy::NotChecked),
        Some([]) => Ok(None),
        Some(g) => Ok(Some(g.to_vec())),
    }
}

/// [`decide`] before the cross-account use check: what the run applies when no account
/// it is shared with is to be asked ([`use_check_needed`]).
pub fn decide_before_use_check(
    inventory: &Inventory,
    stages: &Stages,
    index: usize,
    facts: &Facts,
    config: &Config,
    now: OffsetDateTime,
) -> Decision {
    let img = &inventory.images[index];
    let rule = match &stages[index] {
        Stage::Keep(why) => return Decision::Keep(KeepWhy::clone(why)),
        Stage::Past(rule) => rule.clone(),
    };
    if let Some(why) = local_guard(img, config, now) {
        return Decision::Keep(why);
    }
    let id = &inventory.id(img);
    if let Some((problem, retryable)) = facts.failed.get(id) {
        return Decision::Keep(KeepWhy::CheckFailed {
            problem: problem.clone(),
            retryable: *retryable,
        });
    }
    match &facts.published {
        Some(Err((problem, retryable))) => {
            return Decision::Keep(KeepWhy::CheckFailed {
                problem: problem.clone(),
                retryable: *retryable,
            })
        }
        Some(Ok(published)) => {
            if let Some(why) = published.get(id) {
                return Decision::Keep(KeepWhy::Published(why.clone()));
            }
        }
        None => {}
    }
    if !facts.references_checked.contains(id) {
        return Decision::Keep(KeepWhy::NotChecked);
    }
    if let Some(refs) = facts.references.get(id) {
        return Decision::Keep(KeepWhy::Referenced(refs.clone()));
    }
    if !config.cleanup_shared {
        if !facts.sharing_checked.contains(id) {
            return Decision::Keep(KeepWhy::NotChecked);
        }
        if let Some(g) = facts.grantees.get(id) {
            return Decision::Keep(if g.contains(&Grantee::Public) {
                KeepWhy::Public
            } else {
                KeepWhy::Shared(g.clone())
            });
        }
    }
    // A deprecation time in the future was not set by retirement (which deprecates "now").
    let deprecated_at = img.deprecation_time().map(to_time).filter(|t| *t <= now);
    let decision = staged(img.state, deprecated_at, rule, config, now);
    if !matches!(decision, Decision::Deregister { .. }) {
        return decision;
    }
    match &facts.locks {
        Some(Err((problem, retryable))) => Decision::Keep(KeepWhy::CheckFailed {
            problem: problem.clone(),
            retryable: *retryable,
        }),
        Some(Ok(locks)) => match inventory.disks(img).find_map(|(k, _)| locks.get(&k)) {
            Some(lock) => Decision::Keep(KeepWhy::SnapshotLocked(lock.clone())),
            None => decision,
        },
        None => decision,
    }
}

/// The retirement stage of an image past retention that every check let go: deprecate,
/// wait `DEPRECATION_GRACE`, disable, wait `DISABLE_GRACE`, deregister (module docs).
fn staged(
    state: ImageState,
    deprecated_at: Option<OffsetDateTime>,
    rule: Arc<AppliedRule>,
    config: &Config,
    now: OffsetDateTime,
) -> Decision {
    let deprecation_grace = Duration::days(i64::from(config.deprecation_grace_days));
    let disable_grace = Duration::days(i64::from(config.disable_grace_days));
    let disable = |rule| Decision::Disable {
        rule,
        restart_clock: true,
        until: now + DEPRECATE_AHEAD + disable_grace,
    };
    if config.disable_grace_days > 0 && state == ImageState::Disabled {
        // Disabled: the deprecation time is when (retirement sets both); without one the
        // clock starts now.
        return match deprecated_at {
            None => disable(rule),
            Some(since) if now < since + disable_grace => Decision::Keep(KeepWhy::Disabled {
                since,
                until: since + disable_grace,
                rule,
            }),
            Some(at) => Decision::Deregister {
                rule,
                deprecated_at: Some(at),
            },
        };
    }
    if config.deprecation_grace_days > 0 {
        match deprecated_at {
            None => return Decision::Deprecate(rule),
            Some(at) if now < at + deprecation_grace => {
                return Decision::Keep(KeepWhy::InGrace {
                    deprecated_at: at,
                    until: at + deprecation_grace,
                    rule,
                    disable_next: config.disable_grace_days > 0,
                })
            }
            Some(_) => {}
        }
    }
    if config.disable_grace_days > 0 {
        disable(rule)
    } else {
        Decision::Deregister {
            rule,
            deprecated_at,
        }
    }
}

/// One image's line of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedImage {
    /// Index into [`Inventory::images`].
    pub index: usize,
    pub id: ImageId,
    pub decision: Decision,
}

/// The whole plan of one region.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CleanupPlan {
    pub images: Vec<PlannedImage>,
}

impl CleanupPlan {
    pub fn deregistrations(&self) -> impl Iterator<Item = &PlannedImage> {
        self.images
            .iter()
            .filter(|p| matches!(p.decision, Decision::Deregister { .. }))
    }

    pub fn deprecations(&self) -> impl Iterator<Item = &PlannedImage> {
        self.images
            .iter()
            .filter(|p| matches!(p.decision, Decision::Deprecate(_)))
    }

    pub fn disablings(&self) -> impl Iterator<Item = &PlannedImage> {
        self.images
            .iter()
            .filter(|p| matches!(p.decision, Decision::Disable { .. }))
    }

    pub fn decision(&self, id: &ImageId) -> Option<&Decision> {
        self.images
            .iter()
            .find(|p| &p.id == id)
            .map(|p| &p.decision)
    }
}

/// Both steps for every image: the plan a dry run prints. `facts` must cover
/// [`candidates`]; a candidate without facts is kept ([`KeepWhy::NotChecked`]).
pub fn plan(
    inventory: &Inventory,
    facts: &Facts,
    config: &Config,
    now: OffsetDateTime,
) -> CleanupPlan {
    let stages = retention(inventory, config, now);
    let images = (0..inventory.images.len())
        .map(|i| PlannedImage {
            index: i,
            id: inventory.id(&inventory.images[i]),
            decision: decide(inventory, &stages, i, facts, config, now),
        })
        .collect();
    CleanupPlan { images }
}

/// The reason printed for a decision, naming the lineage.
pub fn explain(
    inventory: &Inventory,
    index: usize,
    decision: &Decision,
    (grace_days, disable_grace_days): (u32, u32),
) -> String {
    let lineage = inventory
        .images
        .get(index)
        .and_then(|img| inventory.lineage(img.lineage))
        .map(|l| l.lineage.to_string())
        .unwrap_or_default();
    match decision {
        Decision::Keep(why) => format!("{why} [lineage {lineage}]"),
        Decision::Deprecate(rule) => format!(
            "past retention {rule} [lineage {lineage}]: deprecate now, {} after DEPRECATION_GRACE={grace_days} days",
            if disable_grace_days > 0 { "disable" } else { "deregister" }
        ),
        Decision::Disable { rule, until, .. } => format!(
            "past retention {rule} [lineage {lineage}], no reference, no guard: disable now (hidden, not launchable, unshared; `amictl restore` brings it back), deregister on or after {} (DISABLE_GRACE={disable_grace_days} days)",
            rfc3339(*until)
        ),
        Decision::Deregister { rule, deprecated_at } => format!(
            "past retention {rule} [lineage {lineage}]{}: no reference, no guard: deregister with its snapshots",
            deprecated_at.map(|t| format!(", deprecated {}", rfc3339(t))).unwrap_or_default()
        ),
    }
}

/// What to do with a snapshot tagged as ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanDecision {
    /// Report it (`DELETE_ORPHANS=false`).
    Report,
    Delete,
}

/// Whether a snapshot may be deleted as far as ownership and use go: tagged `managed-by`
/// this deployment, and used by none of the images the caller knows (`users` of them use
/// it). The one "ours and unused" decision: cleanup's orphans and create-image's
/// failed-image clean-up both make it here.
pub fn ours_and_unused(snapshot: &Snapshot, deployment: &str, users: u32) -> bool {
    tags::is_managed_by(&snapshot.tags, deployment) && users == 0
}

/// Whether `snapshot` is an orphan: ours and unused by any inventoried image (any state,
/// [`ours_and_unused`]), and older than [`ORPHAN_MIN_AGE`].
pub fn orphan(
    snapshot: &Snapshot,
    inventory: &Inventory,
    config: &Config,
    now: OffsetDateTime,
) -> Option<OrphanDecision> {
    let users = inventory.snapshot_users(&snapshot.id);
    let old = snapshot.started <= now - ORPHAN_MIN_AGE;
    (ours_and_unused(snapshot, &config.deployment, users) && old).then_some(
        if config.delete_orphans {
            OrphanDecision::Delete
        } else {
            OrphanDecision::Report
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeviceName, Image, ImageDisk, Region, SnapshotId, Tags};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);
    const DEPLOYMENT: &str = "ami-lifecycle";

    fn config(pairs: &[(&str, &str)]) -> Config {
        let map: std::collections::BTreeMap<String, String> = pairs
            .iter()
            .chain(&[("AWS_REGION", "us-east-1")])
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned()).unwrap_or_else(|e| panic!("test config: {e}"))
    }

    /// An image `days_ago` old (by slot) of lineage i-1/daily, plus extra tags.
    fn image(id: &str, days_ago: i64, extra: &[(&str, &str)]) -> Image {
        let slot = NOW - Duration::days(days_ago);
        let mut tags: Tags = [
            (key::MANAGED_BY, DEPLOYMENT),
            (key::SOURCE_INSTANCE, "i-1"),
            (key::SCHEDULE, "daily"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        tags.insert(key::SLOT.to_owned(), rfc3339(slot));
        for (k, v) in extra {
            tags.insert(k.to_string(), v.to_string());
        }
        Image {
            id: ImageId::new(id),
            region: Region::new("us-east-1"),
            name: format!("web/{id}"),
            state: ImageState::Available,
            owner: None,
            created: slot + Duration::minutes(5),
            tags,
            disks: vec![ImageDisk {
                device: DeviceName::new("/dev/xvda"),
                snapshot_id: SnapshotId::new(format!("snap-{id}")),
                size_gib: 8,
                encrypted: false,
                kms_key: None,
            }],
            public: false,
            deprecation_time: None,
            last_launched: None,
            deregistration_protected: false,
            source: None,
            billing_products: Vec::new(),
            source_instance: None,
        }
    }

    fn inventory(images: &[Image]) -> Inventory {
        let mut inv = Inventory::new();
        for i in images {
            inv.add(i, DEPLOYMENT);
        }
        inv
    }

    /// Facts for every candidate: checked, nothing found.
    fn clean_facts(inv: &Inventory, config: &Config) -> Facts {
        let stages = retention(inv, config, NOW);
        let mut facts = Facts::new();
        let ids: Vec<ImageId> = candidates(inv, &stages, config, NOW)
            .into_iter()
            .map(|i| inv.id(&inv.images[i]))
            .collect();
        facts.references_checked(&ids, Vec::new());
        for id in &ids {
            facts.sharing_checked(id, Vec::new());
        }
        facts
    }

    fn deregistered(plan: &CleanupPlan) -> Vec<String> {
        let mut ids: Vec<String> = plan.deregistrations().map(|p| p.id.to_string()).collect();
        ids.sort();
        ids
    }

    /// GIVEN images (days old) and a config WHEN planned with clean facts THEN exactly `expected` go.
    fn check(settings: &[(&str, &str)], images: &[Image], expected: &[&str]) -> CleanupPlan {
        let config = config(settings);
        let inv = inventory(images);
        let plan = plan(&inv, &clean_facts(&inv, &config), &config, NOW);
        assert_eq!(deregistered(&plan), expected, "plan: {plan:#?}");
        plan
    }

    fn keep_why<'a>(plan: &'a CleanupPlan, id: &str) -> &'a KeepWhy {
        match plan.decision(&ImageId::new(id)) {
            Some(Decision::Keep(why)) => why,
            other => panic!("{id}: expected keep, got {other:?}"),
        }
    }

    #[test]
    fn count_keeps_the_newest_n() {
        let imgs = [
            image("ami-a", 0, &[]),
            image("ami-b", 1, &[]),
            image("ami-c", 2, &[]),
            image("ami-d", 3, &[]),
        ];
        let plan = check(&[("RETAIN", "count=2")], &imgs, &["ami-c", "ami-d"]);
        assert!(matches!(
            keep_why(&plan, "ami-b"),
            KeepWhy::Retention(KeepReason::Count(2), _)
        ));
    }

    #[test]
    fn age_keeps_the_young_and_always_the_newest() {
        let imgs = [
            image("ami-a", 1, &[]),
            image("ami-b", 2, &[]),
            image("ami-c", 5, &[]),
        ];
        check(&[("RETAIN", "days=3")], &imgs, &["ami-c"]);
        let old = [image("ami-x", 40, &[]), image("ami-y", 50, &[])];
        let plan = check(&[("RETAIN", "days=3")], &old, &["ami-y"]);
        assert!(matches!(
            keep_why(&plan, "ami-x"),
            KeepWhy::Retention(KeepReason::Newest, _)
        ));
    }

    #[test]
    fn both_keep_what_either_keeps() {
        let imgs = [
            image("ami-a", 0, &[]),
            image("ami-b", 1, &[]),
            image("ami-c", 2, &[]),
            image("ami-d", 5, &[]),
            image("ami-e", 6, &[]),
        ];
        check(&[("RETAIN", "count=1,days=3")], &imgs, &["ami-d", "ami-e"]);
        check(&[("RETAIN", "count=4,days=1")], &imgs, &["ami-e"]);
    }

    #[test]
    fn gfs_keeps_the_newest_of_each_period() {
        // NOW is Sunday 2026-11-22. daily=2: today and yesterday; weekly=2: this ISO week's
        // newest (ami-0) and last week's newest (ami-7).
        let imgs: Vec<Image> = [0, 1, 2, 7, 8, 15]
            .iter()
            .map(|d| image(&format!("ami-{d}"), *d, &[]))
            .collect();
        let plan = check(
            &[("RETAIN", "daily=2,weekly=2")],
            &imgs,
            &["ami-15", "ami-2", "ami-8"],
        );
        assert!(matches!(
            keep_why(&plan, "ami-7"),
            KeepWhy::Retention(KeepReason::Gfs("week", 2), _)
        ));
        let imgs: Vec<Image> = [0, 10, 25, 40, 70]
            .iter()
            .map(|d| image(&format!("ami-{d}"), *d, &[]))
            .collect();
        check(
            &[("RETAIN", "monthly=2")],
            &imgs,
            &["ami-10", "ami-40", "ami-70"],
        );
    }

    #[test]
    fn the_newest_available_image_survives_a_newer_pending_or_disabled_one() {
        let mut pending = image("ami-new", 0, &[]);
        pending.state = ImageState::Pending;
        let mut disabled = image("ami-dis", 1, &[]);
        disabled.state = ImageState::Disabled;
        let imgs = [
            pending,
            disabled,
            image("ami-avail", 2, &[]),
            image("ami-old", 3, &[]),
        ];
        let plan = check(&[("RETAIN", "count=1")], &imgs, &["ami-old"]);
        assert_eq!(keep_why(&plan, "ami-new"), &KeepWhy::Pending);
        assert!(matches!(
            keep_why(&plan, "ami-dis"),
            KeepWhy::Retention(KeepReason::Newest, _)
        ));
        assert_eq!(keep_why(&plan, "ami-avail"), &KeepWhy::NewestAvailable);
    }

    #[test]
    fn disabled_images_past_retention_are_retired_like_the_others() {
        let mut disabled = image("ami-dis", 5, &[]);
        disabled.state = ImageState::Disabled;
        check(
            &[("RETAIN", "count=1")],
            &[image("ami-a", 0, &[]), disabled],
            &["ami-dis"],
        );
    }

    #[test]
    fn lineages_are_counted_separately() {
        let other = |id: &str, d| image(id, d, &[(key::SOURCE_INSTANCE, "i-2")]);
        let weekly = |id: &str, d| image(id, d, &[(key::SCHEDULE, "weekly")]);
        let imgs = [
            image("ami-a", 0, &[]),
            image("ami-b", 1, &[]),
            other("ami-c", 5),
            weekly("ami-d", 9),
        ];
        check(&[("RETAIN", "count=1")], &imgs, &["ami-b"]);
    }

    #[test]
    fn the_newest_images_retain_tag_rules_its_lineage() {
        let imgs = [
            image("ami-a", 0, &[(key::RETAIN, "count=3")]),
            image("ami-b", 1, &[(key::RETAIN, "count=1")]),
            image("ami-c", 2, &[]),
            image("ami-d", 3, &[]),
        ];
        let plan = check(&[("RETAIN", "count=1")], &imgs, &["ami-d"]);
        match keep_why(&plan, "ami-c") {
            KeepWhy::Retention(_, rule) => {
                assert_eq!(rule.source, RuleSource::Tag(ImageId::new("ami-a")))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bad_retain_tag_keeps_the_lineage_whole_and_names_the_fix() {
        let imgs = [
            image("ami-a", 0, &[(key::RETAIN, "forever")]),
            image("ami-b", 10, &[]),
            image("ami-c", 20, &[]),
        ];
        let plan = check(&[("RETAIN", "count=1")], &imgs, &[]);
        let text = keep_why(&plan, "ami-c").to_string();
        assert!(
            text.contains("lineage kept whole")
                && text.contains("forever")
                && text.contains("count=7"),
            "{text}"
        );
    }

    #[test]
    fn the_slot_tag_orders_images_not_the_creation_date() {
        let mut late_copy = image("ami-old-slot", 5, &[]);
        late_copy.created = NOW; // copied today, but stands for a slot 5 days ago
        check(
            &[("RETAIN", "count=1")],
            &[image("ami-new-slot", 1, &[]), late_copy],
            &["ami-old-slot"],
        );
    }

    #[test]
    fn images_not_of_this_deployment_are_invisible() {
        let mut foreign = image("ami-f", 30, &[(key::MANAGED_BY, "other")]);
        foreign
            .tags
            .insert(key::MANAGED_BY.to_owned(), "other".to_owned());
        let mut untagged = image("ami-u", 30, &[]);
        untagged.tags.remove(key::MANAGED_BY);
        let inv = inventory(&[image("ami-a", 0, &[]), foreign, untagged]);
        assert_eq!(inv.len(), 1);
        assert_eq!(inv.foreign_skipped, 2);
    }

    #[test]
    fn every_local_guard_keeps_an_image_past_retention() {
        let mut protected = image("ami-prot", 2, &[]);
        protected.deregistration_protected = true;
        let mut launched = image("ami-launched", 3, &[]);
        launched.last_launched = Some(NOW - Duration::days(3));
        let mut launched_long_ago = image("ami-launched-old", 4, &[]);
        launched_long_ago.last_launched = Some(NOW - Duration::days(30));
        let mut public = image("ami-public", 5, &[]);
        public.public = true;
        let mut failed = image("ami-failed", 7, &[]);
        failed.state = ImageState::Failed;
        let imgs = [
            image("ami-a", 0, &[]),
            image("ami-kept", 1, &[(key::KEEP, "true")]),
            protected,
            launched,
            launched_long_ago,
            public,
            image("ami-gone", 6, &[]),
            failed,
        ];
        let settings = [("RETAIN", "count=1"), ("KEEP_IF_LAUNCHED_WITHIN", "14")];
        let plan = check(&settings, &imgs, &["ami-gone", "ami-launched-old"]);
        assert_eq!(keep_why(&plan, "ami-kept"), &KeepWhy::KeepTag);
        assert_eq!(keep_why(&plan, "ami-prot"), &KeepWhy::Protected);
        assert!(matches!(
            keep_why(&plan, "ami-launched"),
            KeepWhy::LaunchedRecently {
                within_days: 14,
                ..
            }
        ));
        assert_eq!(keep_why(&plan, "ami-public"), &KeepWhy::Public);
        assert_eq!(
            keep_why(&plan, "ami-failed"),
            &KeepWhy::State(ImageState::Failed)
        );
        // CLEANUP_SHARED lets the public one go; KEEP_IF_LAUNCHED_WITHIN=0 the launched one.
        let settings = [
            ("RETAIN", "count=1"),
            ("KEEP_IF_LAUNCHED_WITHIN", "0"),
            ("CLEANUP_SHARED", "true"),
        ];
        check(
            &settings,
            &imgs,
            &["ami-gone", "ami-launched", "ami-launched-old", "ami-public"],
        );
    }

    #[test]
    fn looked_up_facts_keep_referenced_shared_and_unverified_images() {
        let config = config(&[("RETAIN", "count=1")]);
        let imgs = [
            image("ami-a", 0, &[]),
            image("ami-ref", 1, &[]),
            image("ami-shared", 2, &[]),
            image("ami-doubt", 3, &[]),
            image("ami-unchecked", 4, &[]),
            image("ami-gone", 5, &[]),
        ];
        let inv = inventory(&imgs);
        let ids = |v: &[&str]| v.iter().map(|s| ImageId::new(*s)).collect::<Vec<_>>();
        let mut facts = Facts::new();
        let lt = ImageReference {
            image_id: ImageId::new("ami-ref"),
            resource_type: "ec2:LaunchTemplate".into(),
            arn: "arn:aws:ec2:us-east-1:123456789012:launch-template/lt-1".into(),
        };
        facts.references_checked(
            &ids(&["ami-ref", "ami-shared", "ami-doubt", "ami-gone"]),
            vec![lt],
        );
        let partner = Grantee::Account(partner());
        facts.sharing_checked(&ImageId::new("ami-shared"), vec![partner]);
        facts.sharing_checked(&ImageId::new("ami-gone"), Vec::new());
        facts.sharing_checked(&ImageId::new("ami-ref"), Vec::new());
        facts.check_failed(
            &ImageId::new("ami-doubt"),
            "DescribeImageAttribute failed: RequestLimitExceeded",
            true,
        );
        let plan = plan(&inv, &facts, &config, NOW);
        assert_eq!(deregistered(&plan), ["ami-gone"]);
        assert!(keep_why(&plan, "ami-ref").to_string().contains(
            "ec2:LaunchTemplate arn:aws:ec2:us-east-1:123456789012:launch-template/lt-1"
        ));
        assert!(matches!(keep_why(&plan, "ami-shared"), KeepWhy::Shared(_)));
        assert!(matches!(
            keep_why(&plan, "ami-doubt"),
            KeepWhy::CheckFailed {
                retryable: true,
                ..
            }
        ));
        assert_eq!(keep_why(&plan, "ami-unchecked"), &KeepWhy::NotChecked);
    }

    fn partner() -> crate::model::AccountId {
        crate::model::AccountId::parse("111122223333").unwrap_or_else(|| panic!("valid account id"))
    }

    #[test]
    fn staged_retirement_deprecates_then_deregisters_after_the_grace() {
        let config = config(&[("RETAIN", "count=1"), ("DEPRECATION_GRACE", "7")]);
        let mut fresh = image("ami-fresh", 3, &[]);
        fresh.deprecation_time = None;
        let mut waiting = image("ami-waiting", 4, &[]);
        waiting.deprecation_time = Some(NOW - Duration::days(2));
        let mut due = image("ami-due", 5, &[]);
        due.deprecation_time = Some(NOW - Duration::days(7));
        let mut future = image("ami-future", 6, &[]);
        future.deprecation_time = Some(NOW + Duration::days(300));
        let inv = inventory(&[image("ami-a", 0, &[]), fresh, waiting, due, future]);
        let plan = plan(&inv, &clean_facts(&inv, &config), &config, NOW);
        assert_eq!(deregistered(&plan), ["ami-due"]);
        let deprecated: Vec<String> = plan.deprecations().map(|p| p.id.to_string()).collect();
        assert_eq!(deprecated, ["ami-fresh", "ami-future"]);
        assert!(matches!(
            keep_why(&plan, "ami-waiting"),
            KeepWhy::InGrace { .. }
        ));
    }

    #[test]
    fn staged_retirement_disables_between_deprecation_and_deregistration() {
        let config = config(&[
            ("RETAIN", "count=1"),
            ("DEPRECATION_GRACE", "7"),
            ("DISABLE_GRACE", "5"),
        ]);
        let aged = |id: &str, days: i64, deprecated_days_ago: Option<i64>, disabled: bool| {
            let mut img = image(id, days, &[]);
            img.deprecation_time = deprecated_days_ago.map(|d| NOW - Duration::days(d));
            if disabled {
                img.state = ImageState::Disabled;
            }
            img
        };
        let inv = inventory(&[
            image("ami-a", 0, &[]),
            aged("ami-fresh", 3, None, false),
            aged("ami-waiting", 4, Some(2), false),
            aged("ami-due", 5, Some(7), false),
            aged("ami-off", 6, Some(3), true),
            aged("ami-off-due", 7, Some(5), true),
            aged("ami-off-by-hand", 8, None, true),
        ]);
        let plan = plan(&inv, &clean_facts(&inv, &config), &config, NOW);
        assert_eq!(deregistered(&plan), ["ami-off-due"]);
        let ids = |it: &mut dyn Iterator<Item = &PlannedImage>| {
            it.map(|p| p.id.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(ids(&mut plan.deprecations()), ["ami-fresh"]);
        assert_eq!(ids(&mut plan.disablings()), ["ami-due", "ami-off-by-hand"]);
        match plan.decision(&ImageId::new("ami-due")) {
            Some(Decision::Disable {
                restart_clock: true,
                until,
                ..
            }) => assert_eq!(*until, NOW + DEPRECATE_AHEAD + Duration::days(5)),
            other => panic!("{other:?}"),
        }
        match keep_why(&plan, "ami-waiting") {
            KeepWhy::InGrace {
                until,
                disable_next: true,
                ..
            } => assert_eq!(*until, NOW + Duration::days(5)),
            other => panic!("{other:?}"),
        }
        let off = keep_why(&plan, "ami-off");
        assert_eq!(
            off,
            &KeepWhy::Disabled {
                since: NOW - Duration::days(3),
                until: NOW + Duration::days(2),
                rule: match off {
                    KeepWhy::Disabled { rule, .. } => rule.clone(),
                    _ => unreachable!(),
                },
            }
        );
        let text = off.to_string();
        assert!(
            text.contains("deregistered on or after 2026-11-24T12:00:00Z (DISABLE_GRACE)")
                && text.contains("amictl restore"),
            "{text}"
        );
        let waiting = keep_why(&plan, "ami-waiting").to_string();
        assert!(
            waiting.contains("disabled on or after 2026-11-27T12:00:00Z"),
            "{waiting}"
        );
    }

    #[test]
    fn a_disable_grace_without_deprecation_grace_disables_at_once() {
        let config = config(&[("RETAIN", "count=1"), ("DISABLE_GRACE", "5")]);
        let mut old_deprecated = image("ami-c", 9, &[]);
        old_deprecated.deprecation_time = Some(NOW - Duration::days(30));
        let inv = inventory(&[
            image("ami-a", 0, &[]),
            image("ami-b", 3, &[]),
            old_deprecated,
        ]);
        let plan = plan(&inv, &clean_facts(&inv, &config), &config, NOW);
        assert!(deregistered(&plan).is_empty(), "{plan:#?}");
        let disabled: Vec<String> = plan.disablings().map(|p| p.id.to_string()).collect();
        assert_eq!(
            disabled,
            ["ami-b", "ami-c"],
            "never deregistered without the disabled stage"
        );
        let p = &plan.images[1];
        let text = explain(&inv, p.index, &p.decision, (0, 5));
        assert!(
            text.contains("disable now")
                && text
                    .contains("deregister on or after 2026-11-27T12:01:00Z (DISABLE_GRACE=5 days)"),
            "{text}"
        );
        // The disabled stage off: deregistered at once, as before.
        let config = super::tests::config(&[("RETAIN", "count=1")]);
        let plan = super::plan(&inv, &clean_facts(&inv, &config), &config, NOW);
        assert_eq!(deregistered(&plan), ["ami-b", "ami-c"]);
    }

    #[test]
    fn a_locked_snapshot_keeps_its_image_until_the_lock_ends() {
        let config = config(&[("RETAIN", "count=1")]);
        let inv = inventory(&[
            image("ami-a", 0, &[]),
            image("ami-b", 1, &[]),
            image("ami-c", 2, &[]),
        ]);
        let mut facts = clean_facts(&inv, &config);
        let lock = SnapshotLock {
            snapshot: SnapshotId::new("snap-ami-b"),
            mode: "compliance".into(),
            expires: Some(NOW + Duration::days(30)),
        };
        let locks = [(
            super::super::inventory::snapshot_key(&lock.snapshot),
            lock.clone(),
        )];
        facts.snapshot_locks(Arc::new(locks.into_iter().collect()));
        let plan = plan(&inv, &facts, &config, NOW);
        assert_eq!(deregistered(&plan), ["ami-c"]);
        assert_eq!(keep_why(&plan, "ami-b"), &KeepWhy::SnapshotLocked(lock));
        let text = keep_why(&plan, "ami-b").to_string();
        assert!(
            text.contains("snap-ami-b is locked (compliance mode) until 2026-12-22T12:00:00Z"),
            "{text}"
        );
        // Deprecation and disabling go on while locked: only the deletion waits.
        let staged = super::tests::config(&[("RETAIN", "count=1"), ("DISABLE_GRACE", "3")]);
        let plan = super::plan(&inv, &facts, &staged, NOW);
        assert!(matches!(
            plan.decision(&ImageId::new("ami-b")),
            Some(Decision::Disable { .. })
        ));
        // A failed lock check keeps every deregistration (never on doubt).
        let mut doubt = clean_facts(&inv, &config);
        doubt.snapshot_locks_failed("DescribeLockedSnapshots: Throttling", true);
        let plan = super::plan(&inv, &doubt, &config, NOW);
        assert!(deregistered(&plan).is_empty());
        assert!(matches!(
            keep_why(&plan, "ami-c"),
            KeepWhy::CheckFailed {
                retryable: true,
                ..
            }
        ));
    }

    #[test]
    fn candidates_are_only_images_past_retention_without_a_local_guard() {
        let config = config(&[("RETAIN", "count=1")]);
        let imgs = [
            image("ami-a", 0, &[]),
            image("ami-b", 1, &[(key::KEEP, "yes")]),
            image("ami-c", 2, &[]),
        ];
        let inv = inventory(&imgs);
        let stages = retention(&inv, &config, NOW);
        let ids: Vec<String> = candidates(&inv, &stages, &config, NOW)
            .into_iter()
            .map(|i| inv.id(&inv.images[i]).to_string())
            .collect();
        assert_eq!(ids, ["ami-c"]);
    }

    #[test]
    fn orphans_are_old_unused_snapshots_of_ours() {
        let inv = inventory(&[image("ami-a", 0, &[])]);
        let snap = |id: &str, age_h: i64, managed: &str| Snapshot {
            id: SnapshotId::new(id),
            region: Region::new("us-east-1"),
            tags: [(key::MANAGED_BY.to_owned(), managed.to_owned())]
                .into_iter()
                .collect(),
            size_gib: 8,
            encrypted: false,
            kms_key: None,
            started: NOW - Duration::hours(age_h),
            full_size_bytes: None,
        };
        let report = config(&[]);
        let delete = config(&[("DELETE_ORPHANS", "true")]);
        assert_eq!(
            orphan(&snap("snap-ami-a", 48, DEPLOYMENT), &inv, &delete, NOW),
            None,
            "used by ami-a"
        );
        assert_eq!(
            orphan(&snap("snap-x", 48, DEPLOYMENT), &inv, &report, NOW),
            Some(OrphanDecision::Report)
        );
        assert_eq!(
            orphan(&snap("snap-x", 48, DEPLOYMENT), &inv, &delete, NOW),
            Some(OrphanDecision::Delete)
        );
        assert_eq!(
            orphan(&snap("snap-x", 2, DEPLOYMENT), &inv, &delete, NOW),
            None,
            "too young"
        );
        assert_eq!(
            orphan(&snap("snap-x", 48, "other"), &inv, &delete, NOW),
            None,
            "not ours"
        );
    }

    #[test]
    fn explanations_name_rule_lineage_and_reference() {
        let config = config(&[("RETAIN", "count=1")]);
        let inv = inventory(&[image("ami-a", 0, &[]), image("ami-b", 1, &[])]);
        let plan = plan(&inv, &clean_facts(&inv, &config), &config, NOW);
        let text: Vec<String> = plan
            .images
            .iter()
            .map(|p| explain(&inv, p.index, &p.decision, (0, 0)))
            .collect();
        assert!(
            text[0]
                .contains("newest of its lineage: retention count=1 (RETAIN) [lineage i-1/daily]"),
            "{text:?}"
        );
        assert!(
            text[1].contains("past retention count=1 (RETAIN) [lineage i-1/daily]"),
            "{text:?}"
        );
    }

    #[test]
    fn a_stage_is_16_bytes_and_an_images_stage_4() {
        // Issue 19 (flat memory): a run holds one stage per image of the region.
        assert!(std::mem::size_of::<Stage>() <= 16);
        // Members of a lineage share its stages: a lineage of 10 under count=2 holds its
        // 2 kept members' reasons and one `Past`, not 10 stages.
        let imgs: Vec<Image> = (0..10)
            .map(|n| image(&format!("ami-{n}"), n, &[]))
            .collect();
        let inv = inventory(&imgs);
        let stages = retention(&inv, &config(&[("RETAIN", "count=2")]), NOW);
        assert_eq!(stages.len(), 10);
        assert!(stages.distinct.len() <= 4, "{stages:#?}");
        let past = stages
            .iter()
            .filter(|s| matches!(s, Stage::Past(_)))
            .count();
        assert_eq!(past, 8);
        for (i, stage) in (&stages).into_iter().enumerate() {
            assert_eq!(&stages[i], stage);
            assert_eq!(stages.get(i), Some(stage));
        }
    }
}

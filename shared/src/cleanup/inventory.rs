//! [`Inventory`]: the compact snapshot of one region's managed images that cleanup plans over.
//!
//! Images are streamed page by page and each is folded into a small [`ImageRecord`]
//! (id, lineage index, times as Unix seconds, a few flags, snapshot keys and sizes); tags,
//! names and block device details are dropped as soon as the page is read, so a region
//! of 50,000 images costs a few MiB. Snapshot ids are kept as 64-bit hashes
//! ([`snapshot_key`]): a collision can only make an orphan look used, i.e. keep it.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use time::OffsetDateTime;

use crate::model::{Image, ImageId, ImageState, SnapshotId};
use crate::tags::{self, key};
use crate::time_util::{parse_rfc3339, parse_slot_compact};

/// Index of a lineage in [`Inventory::lineages`].
pub type LineageId = u32;

/// Which images are versions of one another; retention counts each lineage separately
/// (and separately in each region, since an inventory is one region's).
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
    /// The lineage of an image, from its tags.
    pub fn of(image: &Image) -> Self {
        let tag = |k: &str| image.tag(k).map(str::trim).filter(|v| !v.is_empty());
        if let Some(instance) = tag(key::SOURCE_INSTANCE) {
            return Self::Instance {
                instance: instance.to_owned(),
                schedule: tag(key::SCHEDULE).unwrap_or("-").to_owned(),
            };
        }
        if let Some(account) = tag(key::SOURCE_ACCOUNT) {
            return Self::Adopted {
                account: account.to_owned(),
                image: tag(key::SOURCE_IMAGE)
                    .unwrap_or(image.id.as_str())
                    .to_owned(),
            };
        }
        Self::Untracked {
            image: image.id.to_string(),
        }
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

/// One lineage of the inventory, with the newest image's `ami-lifecycle:retain` value
/// (the newest image's tag wins for the whole lineage).
#[derive(Debug, Clone, PartialEq)]
pub struct LineageInfo {
    pub lineage: Lineage,
    /// `(time, id)` of the newest image (any state); ties go to the smaller id, as in
    /// [`crate::retention::RetentionRule::keep`].
    pub newest: Option<(i64, ImageId)>,
    /// The newest image's `ami-lifecycle:retain` tag, if it has one.
    pub retain_tag: Option<String>,
}

/// What cleanup remembers of one managed image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    pub id: ImageId,
    pub lineage: LineageId,
    /// The time retention counts by (Unix seconds): the `ami-lifecycle:slot` it stands
    /// for, else its creation date.
    pub time: i64,
    pub state: ImageState,
    /// `ami-lifecycle:keep=true` (or an unreadable keep value).
    pub keep_tag: bool,
    pub protected: bool,
    pub public: bool,
    pub deprecation_time: Option<i64>,
    pub last_launched: Option<i64>,
    /// `(snapshot_key, size_gib)` per snapshot-backed device.
    pub disks: Box<[(u64, u32)]>,
}

impl ImageRecord {
    pub fn size_gib(&self) -> u64 {
        self.disks.iter().map(|(_, s)| u64::from(*s)).sum()
    }
}

/// A 64-bit key for a snapshot id (std's SipHash with fixed keys: stable within a run).
pub fn snapshot_key(id: &SnapshotId) -> u64 {
    let mut h = DefaultHasher::new();
    id.as_str().hash(&mut h);
    h.finish()
}

/// Unix seconds → time (the epoch for values out of range, which cannot come from EC2).
pub fn to_time(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Parses an `ami-lifecycle:slot` value: RFC 3339 (as written), or the compact form of names.
pub fn parse_slot(value: &str) -> Option<OffsetDateTime> {
    let v = value.trim();
    parse_rfc3339(v).or_else(|| parse_slot_compact(v))
}

/// One region's managed images, compact. Build it with [`Inventory::add`].
#[derive(Debug, Default)]
pub struct Inventory {
    pub lineages: Vec<LineageInfo>,
    index: HashMap<Lineage, LineageId>,
    pub images: Vec<ImageRecord>,
    /// How many images use each snapshot (every state, so snapshots of disabled and
    /// pending images are never taken for orphans).
    snapshot_users: HashMap<u64, u32>,
    /// Images seen but left out because they are not this deployment's (a port filter
    /// that let them through): never planned, only counted.
    pub foreign_skipped: usize,
}

impl Inventory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one image in. Images not tagged `managed-by=deployment` are not recorded:
    /// the query already filters on the tag, this makes "never touch what is not ours"
    /// independent of any filter.
    pub fn add(&mut self, image: &Image, deployment: &str) {
        if !tags::is_managed_by(&image.tags, deployment) || image.state == ImageState::Deregistered
        {
            self.foreign_skipped += usize::from(image.state != ImageState::Deregistered);
            return;
        }
        let time = image
            .tag(key::SLOT)
            .and_then(parse_slot)
            .unwrap_or(image.created)
            .unix_timestamp();
        let lineage = Lineage::of(image);
        let next = LineageId::try_from(self.lineages.len()).unwrap_or(LineageId::MAX);
        let lid = *self.index.entry(lineage.clone()).or_insert(next);
        if lid == next {
            self.lineages.push(LineageInfo {
                lineage,
                newest: None,
                retain_tag: None,
            });
        }
        if let Some(info) = self.lineages.get_mut(lid as usize) {
            let newer = match &info.newest {
                None => true,
                Some((t, id)) => time > *t || (time == *t && image.id < *id),
            };
            if newer {
                info.newest = Some((time, image.id.clone()));
                info.retain_tag = image.tag(key::RETAIN).map(str::to_owned);
            }
        }
        let disks: Box<[(u64, u32)]> = image
            .disks
            .iter()
            .map(|d| {
                (
                    snapshot_key(&d.snapshot_id),
                    u32::try_from(d.size_gib).unwrap_or(u32::MAX),
                )
            })
            .collect();
        for (k, _) in disks.iter() {
            *self.snapshot_users.entry(*k).or_insert(0) += 1;
        }
        self.images.push(ImageRecord {
            id: image.id.clone(),
            lineage: lid,
            time,
            state: image.state,
            keep_tag: tags::is_kept(&image.tags),
            protected: image.deregistration_protected,
            public: image.public,
            deprecation_time: image.deprecation_time.map(OffsetDateTime::unix_timestamp),
            last_launched: image.last_launched.map(OffsetDateTime::unix_timestamp),
            disks,
        });
    }

    pub fn lineage(&self, id: LineageId) -> Option<&LineageInfo> {
        self.lineages.get(id as usize)
    }

    /// How many inventoried images use a snapshot.
    pub fn snapshot_users(&self, snapshot: &SnapshotId) -> u32 {
        self.snapshot_users
            .get(&snapshot_key(snapshot))
            .copied()
            .unwrap_or(0)
    }

    /// GiB that deregistering `image` would free: its snapshots no other image uses.
    pub fn exclusive_gib(&self, image: &ImageRecord) -> u64 {
        image
            .disks
            .iter()
            .filter(|(k, _)| self.snapshot_users.get(k).copied().unwrap_or(0) <= 1)
            .map(|(_, s)| u64::from(*s))
            .sum()
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
}

//! [`Inventory`]: the compact snapshot of one region's managed images that cleanup plans over.
//!
//! Images are streamed page by page and each is folded into a small [`ImageRecord`]
//! (id, [`Lineage`] index, times as Unix seconds, a few flags, snapshot keys and sizes, tag
//! hashes for Recycle Bin coverage: [`ImageTags`]) and
//! its lineage's [`Head`] (what a lineage is and which image rules it: [`crate::lineage`]); tag
//! text, names and block device details are dropped as soon as the page is read, so a region
//! of 50,000 images costs a few MiB. Snapshot ids are kept as 64-bit hashes
//! ([`snapshot_key`]): a collision can only make an orphan look used, i.e. keep it.
//!
//! Each snapshot an image uses has one [`SnapshotUse`] (one table for its users, its full
//! size and its tags, which the orphan listing adds with [`Inventory::note_snapshot`]);
//! snapshot tags are pooled, so the many snapshots tagged alike share one [`TagPrint`].
//!
//! An image's tag hashes are kept in two parts ([`ImageTags`]): those of the tags whose
//! values differ image to image ([`VARYING_KEYS`]: slot, seal, …) in one array for the
//! whole inventory, the rest (the same across a lineage) pooled like snapshot tags.
//! [`Inventory::image_tags`] joins them into the print [`TagPrint::of`] makes of the
//! image's tags, so Recycle Bin coverage reads exactly what it read before.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use time::OffsetDateTime;

use super::recycle::TagPrint;
pub use crate::lineage::Lineage;
use crate::lineage::{self, Head, Member};
use crate::model::{Image, ImageId, ImageState, KeyRef, SnapshotId, Tags};
use crate::tags::{self, key};

/// Index of a lineage in [`Inventory::lineages`].
pub type LineageId = u32;

/// One lineage of the inventory and its [`Head`] (whose `ami-lifecycle:retain` rules it).
#[derive(Debug, Clone, PartialEq)]
pub struct LineageInfo {
    pub lineage: Lineage,
    pub head: Head,
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
    /// [`ImageRecord::deprecation_time`], or [`NO_TIME`].
    deprecated: i64,
    /// [`ImageRecord::last_launched`], or [`NO_TIME`].
    launched: i64,
    /// Where its `(snapshot_key, size_gib)` per snapshot-backed device are in
    /// [`Inventory`]'s shared array: [`Inventory::disks`].
    disks: Span,
    /// The customer keys of its snapshots, kept only for images whose grant record names
    /// someone: their KMS grants are retired when the image is deleted.
    pub shared_keys: Box<[KeyRef]>,
    /// Its tags as hashes: which Recycle Bin rule would retain it ([`super::recycle`]);
    /// read them with [`Inventory::image_tags`].
    pub tags: ImageTags,
}

/// Tag keys whose values differ from image to image (or may): their hashes are kept per
/// image, the hashes of an image's other tags are pooled.
pub const VARYING_KEYS: [&str; 8] = [
    key::SLOT,
    key::SEAL,
    key::SOURCE_IMAGE,
    key::IMAGE_NAME,
    key::SHARE_STATUS,
    key::SHARE_GRANTED,
    key::REPLICATE_STATUS,
    "Name",
];

/// Where an image's tag hashes are: its pooled print and its own hashes (those of its
/// [`VARYING_KEYS`] tags) in [`Inventory`]'s shared array. 12 bytes instead of a boxed
/// print per image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageTags {
    pooled: u32,
    start: u32,
    len: u32,
}

/// Distinct [`TagPrint`]s, each kept once and found again by its hash (a hash shared by
/// two prints pools only the first; the second is kept on its own).
#[derive(Debug, Default)]
struct PrintPool {
    prints: Vec<TagPrint>,
    index: HashMap<u64, u32>,
}

impl PrintPool {
    /// The index of `print` in the pool, adding it if new.
    fn intern(&mut self, print: TagPrint) -> u32 {
        let hash = {
            let mut h = DefaultHasher::new();
            print.hash(&mut h);
            h.finish()
        };
        if let Some(&i) = self.index.get(&hash) {
            if self.prints.get(i as usize) == Some(&print) {
                return i;
            }
        }
        let i = u32::try_from(self.prints.len()).unwrap_or(u32::MAX - 1);
        self.prints.push(print);
        self.index.entry(hash).or_insert(i);
        i
    }

    fn get(&self, i: u32) -> Option<&TagPrint> {
        self.prints.get(i as usize)
    }
}

/// The hashes of `all` not in `part` (both sorted; `part` a sub-multiset of `all`).
fn without(all: &[u64], part: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(all.len().saturating_sub(part.len()));
    let mut rest = part.iter().peekable();
    for &h in all {
        while rest.next_if(|&&p| p < h).is_some() {}
        if rest.next_if(|&&p| p == h).is_none() {
            out.push(h);
        }
    }
    out
}

/// A time an image may lack, packed: Unix seconds, or this.
const NO_TIME: i64 = i64::MIN;

fn pack_time(t: Option<OffsetDateTime>) -> i64 {
    t.map_or(NO_TIME, OffsetDateTime::unix_timestamp)
}

/// A run of entries in one of [`Inventory`]'s shared arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// The entries pushed onto `array` since it was `start` long.
    fn since<T>(array: &[T], start: usize) -> Self {
        Self {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            len: u32::try_from(array.len().saturating_sub(start)).unwrap_or(0),
        }
    }

    fn of<T>(self, array: &[T]) -> &[T] {
        let start = self.start as usize;
        array.get(start..start + self.len as usize).unwrap_or(&[])
    }
}

impl ImageRecord {
    /// Its deprecation time (Unix seconds), if EC2 reported one.
    pub fn deprecation_time(&self) -> Option<i64> {
        (self.deprecated != NO_TIME).then_some(self.deprecated)
    }

    /// When it was last launched (Unix seconds), if EC2 reported it.
    pub fn last_launched(&self) -> Option<i64> {
        (self.launched != NO_TIME).then_some(self.launched)
    }
}

/// [`SnapshotUse::full_bytes`] when EC2 did not report it.
const UNKNOWN_SIZE: u64 = u64::MAX;

/// What the inventory knows of one snapshot its images use: 16 bytes.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotUse {
    users: u32,
    /// 1 + its index in [`Inventory::snapshot_tags`]; 0: not listed.
    tags: u32,
    /// `FullSnapshotSizeInBytes`, or [`UNKNOWN_SIZE`].
    full_bytes: u64,
}

impl Default for SnapshotUse {
    fn default() -> Self {
        Self {
            users: 0,
            tags: 0,
            full_bytes: UNKNOWN_SIZE,
        }
    }
}

/// A 64-bit key for a snapshot id (std's SipHash with fixed keys: stable within a run).
pub fn snapshot_key(id: &SnapshotId) -> u64 {
    let mut h = DefaultHasher::new();
    id.as_str().hash(&mut h);
    h.finish()
}

/// One region's managed images, compact. Build it with [`Inventory::add`].
#[derive(Debug, Default)]
pub struct Inventory {
    pub lineages: Vec<LineageInfo>,
    index: HashMap<Lineage, LineageId>,
    pub images: Vec<ImageRecord>,
    /// Each snapshot an image uses, by snapshot key: how many images use it (every state,
    /// so snapshots of disabled and pending images are never taken for orphans), and what
    /// the orphan listing read of it.
    snapshots: HashMap<u64, SnapshotUse>,
    /// The distinct snapshot [`TagPrint`]s ([`SnapshotUse::tags`] indexes it).
    snapshot_tags: PrintPool,
    /// The distinct prints of images' tags other than their [`VARYING_KEYS`] ones, and the
    /// hashes of those, image after image ([`ImageTags`]).
    image_tags: PrintPool,
    varying_tags: Vec<u64>,
    /// Every image's `(snapshot_key, size_gib)` per disk, image after image.
    disks: Vec<(u64, u32)>,
    /// Images seen but left out because they are not this deployment's (a port filter
    /// that let them through): never planned, only counted.
    pub foreign_skipped: usize,
    /// Images tagged `managed-by` whose seal does not verify ([`Inventory::add_unsealed`]).
    pub unsealed: usize,
}

impl Inventory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one image in. Images not tagged `managed-by=deployment` are not recorded:
    /// the query already filters on the tag, this makes "never touch what is not ours"
    /// independent of any filter.
    pub fn add(&mut self, image: &Image, deployment: &str) {
        if !lineage::is_member(image, deployment) {
            self.foreign_skipped += usize::from(image.state != ImageState::Deregistered);
            return;
        }
        self.add_member(image);
    }

    /// Folds in an image that carries `managed-by` but whose seal does not verify: it is
    /// never a lineage member (so it can neither be retired nor push a real image out), but
    /// its snapshots are in use, so they are never taken for orphans.
    pub fn add_unsealed(&mut self, image: &Image) {
        self.unsealed += 1;
        for d in &image.disks {
            self.snapshots
                .entry(snapshot_key(&d.snapshot_id))
                .or_default()
                .users += 1;
        }
    }

    fn add_member(&mut self, image: &Image) {
        let time = lineage::retention_time(image);
        let lineage = Lineage::of(image);
        let next = LineageId::try_from(self.lineages.len()).unwrap_or(LineageId::MAX);
        let lid = *self.index.entry(lineage.clone()).or_insert(next);
        if lid == next {
            self.lineages.push(LineageInfo {
                lineage,
                head: Head::default(),
            });
        }
        if let Some(info) = self.lineages.get_mut(lid as usize) {
            let member = Member {
                id: &image.id,
                time,
                state: image.state,
            };
            info.head.offer_image(&member, image);
        }
        let first = self.disks.len();
        for d in &image.disks {
            let k = snapshot_key(&d.snapshot_id);
            self.disks
                .push((k, u32::try_from(d.size_gib).unwrap_or(u32::MAX)));
            self.snapshots.entry(k).or_default().users += 1;
        }
        let disks = Span::since(&self.disks, first);
        let shared_keys: Box<[KeyRef]> = if crate::share::record::names_anyone(&image.tags) {
            let mut keys: Vec<KeyRef> = image
                .disks
                .iter()
                .filter(|d| d.encrypted)
                .filter_map(|d| d.kms_key.clone())
                .collect();
            keys.sort();
            keys.dedup();
            keys.into()
        } else {
            Box::default()
        };
        let tags = self.fold_tags(&image.tags);
        self.images.push(ImageRecord {
            shared_keys,
            tags,
            id: image.id.clone(),
            lineage: lid,
            time,
            state: image.state,
            keep_tag: tags::is_kept(&image.tags),
            protected: image.deregistration_protected,
            public: image.public,
            deprecated: pack_time(image.deprecation_time),
            launched: pack_time(image.last_launched),
            disks,
        });
    }

    /// Splits `tags`' print into the hashes of its [`VARYING_KEYS`] tags (appended to the
    /// shared array) and the rest (pooled).
    fn fold_tags(&mut self, tags: &Tags) -> ImageTags {
        let all = TagPrint::of(tags);
        let varying: Tags = tags
            .iter()
            .filter(|(k, _)| VARYING_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let varying = TagPrint::of(&varying);
        let pooled = self.image_tags.intern(TagPrint::from_hashes(without(
            all.hashes(),
            varying.hashes(),
        )));
        let start = u32::try_from(self.varying_tags.len()).unwrap_or(u32::MAX);
        self.varying_tags.extend_from_slice(varying.hashes());
        ImageTags {
            pooled,
            start,
            len: u32::try_from(varying.hashes().len()).unwrap_or(0),
        }
    }

    /// `image`'s tags as hashes: the same print [`TagPrint::of`] made of its tags.
    pub fn image_tags(&self, image: &ImageRecord) -> TagPrint {
        let t = image.tags;
        let mut hashes: Vec<u64> = self
            .image_tags
            .get(t.pooled)
            .map(|p| p.hashes().to_vec())
            .unwrap_or_default();
        let (start, len) = (t.start as usize, t.len as usize);
        if let Some(own) = self.varying_tags.get(start..start + len) {
            hashes.extend_from_slice(own);
        }
        TagPrint::from_hashes(hashes)
    }

    /// Gives back the room kept for more images (call when the listing is done).
    pub fn shrink_to_fit(&mut self) {
        self.images.shrink_to_fit();
        self.varying_tags.shrink_to_fit();
        self.disks.shrink_to_fit();
    }

    /// `image`'s `(snapshot_key, size_gib)` per snapshot-backed device.
    pub fn disks(&self, image: &ImageRecord) -> &[(u64, u32)] {
        image.disks.of(&self.disks)
    }

    /// The GiB of `image`'s volumes.
    pub fn size_gib(&self, image: &ImageRecord) -> u64 {
        self.disks(image).iter().map(|(_, s)| u64::from(*s)).sum()
    }

    pub fn lineage(&self, id: LineageId) -> Option<&LineageInfo> {
        self.lineages.get(id as usize)
    }

    /// How many inventoried images use a snapshot.
    pub fn snapshot_users(&self, snapshot: &SnapshotId) -> u32 {
        self.snapshots
            .get(&snapshot_key(snapshot))
            .map_or(0, |s| s.users)
    }

    /// How many inventoried images use the snapshot of key `key`.
    pub fn snapshot_key_users(&self, key: u64) -> u32 {
        self.snapshots.get(&key).map_or(0, |s| s.users)
    }

    /// Records what the snapshot listing says of snapshot `key`: its full size (where EC2
    /// reports it) and its tags. Kept only for a snapshot an inventoried image uses (an
    /// orphan is decided as it is listed).
    pub fn note_snapshot(&mut self, key: u64, full_bytes: Option<u64>, tags: TagPrint) {
        let Some(known) = self.snapshots.get_mut(&key) else {
            return;
        };
        known.full_bytes = full_bytes.unwrap_or(UNKNOWN_SIZE);
        known.tags = self.snapshot_tags.intern(tags) + 1;
    }

    /// The full size (`FullSnapshotSizeInBytes`) the listing read for snapshot `key`.
    pub fn full_bytes(&self, key: u64) -> Option<u64> {
        self.snapshots
            .get(&key)
            .map(|s| s.full_bytes)
            .filter(|&b| b != UNKNOWN_SIZE)
    }

    /// The tags the listing read for snapshot `key`.
    pub fn snapshot_tags(&self, key: u64) -> Option<&TagPrint> {
        let i = self.snapshots.get(&key)?.tags.checked_sub(1)?;
        self.snapshot_tags.get(i)
    }

    /// GiB that deregistering `image` would free: its snapshots no other image uses.
    pub fn exclusive_gib(&self, image: &ImageRecord) -> u64 {
        self.exclusive_disks(image)
            .map(|(_, s)| u64::from(*s))
            .sum()
    }

    /// The `(snapshot_key, volume GiB)` of `image`'s snapshots no other image uses.
    pub fn exclusive_disks<'a>(
        &'a self,
        image: &'a ImageRecord,
    ) -> impl Iterator<Item = &'a (u64, u32)> + 'a {
        self.disks(image)
            .iter()
            .filter(|(k, _)| self.snapshots.get(k).map_or(0, |s| s.users) <= 1)
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
}

#[cfg(test)]
#[path = "inventory_tests.rs"]
mod tests;

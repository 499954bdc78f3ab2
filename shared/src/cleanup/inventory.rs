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
//! The snapshots the images use are a [`SnapshotTable`]: their keys sorted, with their
//! users, full sizes and tags (which cleanup adds as it reads snapshots, with
//! [`Inventory::note_snapshot`]) in arrays beside them. It is made from the disks once the
//! listing is done (no hash table growing with the listing: 24 bytes per snapshot instead
//! of about 33); snapshot tags are pooled, so the many snapshots tagged alike share one
//! [`TagPrint`].
//!
//! An image's tag hashes are kept in two parts ([`ImageTags`]): the `key = value` hashes of
//! the tags whose values differ image to image ([`VARYING_KEYS`]: slot, seal, …) in one
//! array for the whole inventory, the rest (the same across a lineage, key-only hashes
//! included) pooled like snapshot tags. [`Inventory::image_tags`] joins them into the print
//! [`TagPrint::of`] makes of the image's tags, so Recycle Bin coverage reads exactly what
//! it read before.
//!
//! An image id of the usual shape (`ami-` and 17 hex digits) is kept as the number it
//! spells, in the record ([`PackedId`]: 9 bytes instead of a `String`'s 24 and its text's
//! 32 on the heap); [`Inventory::id`] gives it back. Ids of other shapes are kept whole
//! beside the records.
//!
//! What grows with the image count (issue 19, flat memory) is about 80 bytes per image
//! while listing (record 40 with its id, two disks 24 — key and size in two arrays —, two
//! varying hashes 16) and two snapshot rows of 24 bytes (16 while EC2 reports no full
//! size) once the listing is done. The per-image arrays are [`Chunked`]: they never
//! reallocate (a growing `Vec` holds its old and new blocks at once and leaves the old one
//! to the allocator).
//! Cleanup's plan adds 4 bytes an image for the stages ([`super::plan::Stages`]) and 4 for
//! the list of images to go through ([`super::run`]).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use time::OffsetDateTime;

use super::chunked::Chunked;
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

/// What cleanup remembers of one managed image: 40 bytes, its id included (a `u64`, seven
/// `u32`s and four bytes: no padding). Times are [`PackedTime`]s; the customer keys of the
/// few images that need them are beside the records ([`Inventory::shared_keys`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    /// Its id, packed with `id_high` ([`PackedId`]): read it with [`Inventory::id`].
    id_low: u64,
    /// The time retention counts by: the `ami-lifecycle:slot` it stands for, else its
    /// creation date. Read it with [`ImageRecord::time`].
    time: PackedTime,
    /// [`ImageRecord::deprecation_time`].
    deprecated: PackedTime,
    /// [`ImageRecord::last_launched`].
    launched: PackedTime,
    pub lineage: LineageId,
    /// Where its snapshot keys and volume sizes (GiB) per snapshot-backed device start in
    /// [`Inventory`]'s shared arrays, `disk_count` of them: [`Inventory::disks`].
    disk_start: u32,
    /// Its tags as hashes: which Recycle Bin rule would retain it ([`super::recycle`]);
    /// read them with [`Inventory::image_tags`].
    pub tags: ImageTags,
    id_high: u8,
    pub state: ImageState,
    /// [`KEEP_TAG`], [`PROTECTED`], [`PUBLIC`], [`SHARED_KEYS`]: read them with
    /// [`ImageRecord::keep_tag`], …
    flags: u8,
    disk_count: u8,
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

/// Where an image's tag hashes are: its pooled print and its own hashes (the `key = value`
/// hashes of its [`VARYING_KEYS`] tags) in [`Inventory`]'s shared array. 8 bytes instead of
/// a boxed print per image: the pool index in the low 24 bits of `pooled_len`, the count
/// of own hashes (at most [`VARYING_KEYS`]'s 8) in the high 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageTags {
    start: u32,
    pooled_len: u32,
}

/// The pool indexes [`ImageTags`] can name: more distinct prints than a region has images.
const POOLED_MAX: u32 = (1 << 24) - 1;

impl ImageTags {
    fn new(pooled: u32, start: u32, len: usize) -> Self {
        let len = u32::try_from(len.min(0xff)).unwrap_or(0xff);
        Self {
            start,
            pooled_len: pooled.min(POOLED_MAX) | (len << 24),
        }
    }

    fn pooled(self) -> u32 {
        self.pooled_len & POOLED_MAX
    }

    fn len(self) -> usize {
        (self.pooled_len >> 24) as usize
    }
}

/// A time an image may lack, in 4 bytes: Unix seconds (1970 to 2106, which holds every time
/// EC2 can report for an image), or [`PackedTime::NONE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PackedTime(u32);

impl PackedTime {
    const NONE: Self = Self(u32::MAX);
    const LATEST: u32 = u32::MAX - 1;

    /// Unix seconds, clamped into the range (a time before 1970 reads as 1970).
    fn of(seconds: i64) -> Self {
        Self(u32::try_from(seconds.clamp(0, i64::from(Self::LATEST))).unwrap_or(Self::LATEST))
    }

    fn of_option(t: Option<OffsetDateTime>) -> Self {
        t.map_or(Self::NONE, |t| Self::of(t.unix_timestamp()))
    }

    fn get(self) -> Option<i64> {
        (self != Self::NONE).then_some(i64::from(self.0))
    }
}

/// The key-only hashes of the [`VARYING_KEYS`] (the same for every image that has the tag:
/// pooled, not kept per image). Found as what two prints of a key with different values
/// share, so they are exactly what [`TagPrint::of`] makes.
fn varying_key_hashes() -> &'static [u64] {
    static HASHES: OnceLock<Vec<u64>> = OnceLock::new();
    HASHES.get_or_init(|| {
        let print = |k: &str, v: &str| TagPrint::of(&Tags::from([(k.to_owned(), v.to_owned())]));
        let mut out: Vec<u64> = VARYING_KEYS
            .iter()
            .flat_map(|k| {
                let (a, b) = (print(k, "a"), print(k, "b"));
                a.hashes()
                    .iter()
                    .copied()
                    .filter(|h| b.hashes().contains(h))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort_unstable();
        out
    })
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

/// [`ImageRecord`] flag: tagged `ami-lifecycle:keep=true` (or an unreadable keep value).
const KEEP_TAG: u8 = 1;
/// [`ImageRecord`] flag: deregistration protection is on.
const PROTECTED: u8 = 2;
/// [`ImageRecord`] flag: public (launch permission `all`).
const PUBLIC: u8 = 4;
/// [`ImageRecord`] flag: its grant record names someone, so the customer keys of its
/// snapshots are kept ([`Inventory::shared_keys`]).
const SHARED_KEYS: u8 = 8;

/// An image id packed into 9 bytes instead of a `String`'s 24 and the 32 its text takes on
/// the heap: `ami-` and 17 lowercase hex digits (every id EC2 gives today) as the number
/// they spell, its top digit in `high`. An id of any other shape is kept whole in
/// [`Inventory`]'s `other_ids`, `low` its index there and `high` [`PackedId::OTHER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PackedId {
    low: u64,
    high: u8,
}

impl PackedId {
    const OTHER: u8 = 0x80;
    const DIGITS: usize = 17;

    /// The packed form of an id of the usual shape; `None` for any other.
    fn of(id: &str) -> Option<Self> {
        let hex = id.strip_prefix("ami-")?;
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if hex.len() != Self::DIGITS || !hex.bytes().all(lower_hex) {
            return None;
        }
        Some(Self {
            high: u8::from_str_radix(&hex[..1], 16).ok()?,
            low: u64::from_str_radix(&hex[1..], 16).ok()?,
        })
    }

    /// The text of a packed id of the usual shape (`high` below [`PackedId::OTHER`]).
    fn text(self) -> String {
        format!("ami-{:x}{:016x}", self.high, self.low)
    }
}

impl ImageRecord {
    fn packed_id(&self) -> PackedId {
        PackedId {
            low: self.id_low,
            high: self.id_high,
        }
    }

    /// Tagged `ami-lifecycle:keep=true` (or an unreadable keep value).
    pub fn keep_tag(&self) -> bool {
        self.flags & KEEP_TAG != 0
    }

    /// Deregistration protection is on.
    pub fn protected(&self) -> bool {
        self.flags & PROTECTED != 0
    }

    /// Public (launch permission `all`).
    pub fn public(&self) -> bool {
        self.flags & PUBLIC != 0
    }

    /// The time retention counts by (Unix seconds): the `ami-lifecycle:slot` it stands for,
    /// else its creation date.
    pub fn time(&self) -> i64 {
        self.time.get().unwrap_or(0)
    }

    /// Its deprecation time (Unix seconds), if EC2 reported one.
    pub fn deprecation_time(&self) -> Option<i64> {
        self.deprecated.get()
    }

    /// When it was last launched (Unix seconds), if EC2 reported it.
    pub fn last_launched(&self) -> Option<i64> {
        self.launched.get()
    }
}

/// [`SnapshotTable::full_bytes`] when EC2 did not report it.
const UNKNOWN_SIZE: u64 = u64::MAX;

/// What the inventory knows of the snapshots its images use, made from the disks
/// ([`SnapshotTable::of`]): the keys sorted and, at the same index, each one's users, tags
/// and full size. 24 bytes per snapshot, allocated once at its final size.
#[derive(Debug, Default)]
pub struct SnapshotTable {
    keys: Box<[u64]>,
    /// How many inventoried images use it (every state, unsealed included, so snapshots of
    /// disabled, pending and unsealed images are never taken for orphans).
    users: Box<[u32]>,
    /// 1 + its index in [`Inventory::snapshot_tags`]; 0: not listed.
    tags: Box<[u32]>,
    /// `FullSnapshotSizeInBytes`, or [`UNKNOWN_SIZE`]; empty until the listing reports one.
    full_bytes: Vec<u64>,
}

impl SnapshotTable {
    /// The table of the snapshots `keys` name, each as often as an image uses it.
    fn of(mut keys: Vec<u64>) -> Self {
        keys.sort_unstable();
        let mut users: Vec<u32> = Vec::with_capacity(keys.len());
        let mut distinct = 0;
        for i in 0..keys.len() {
            if distinct > 0 && keys[distinct - 1] == keys[i] {
                if let Some(n) = users.last_mut() {
                    *n = n.saturating_add(1);
                }
            } else {
                keys[distinct] = keys[i];
                distinct += 1;
                users.push(1);
            }
        }
        keys.truncate(distinct);
        Self {
            tags: vec![0; distinct].into(),
            keys: keys.into(),
            users: users.into(),
            full_bytes: Vec::new(),
        }
    }

    fn find(&self, key: u64) -> Option<usize> {
        self.keys.binary_search(&key).ok()
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
    pub images: Chunked<ImageRecord>,
    /// The snapshots the images use, made from [`Inventory::disks`] and `unsealed_disks`
    /// at the first question after the listing (again after any image is added).
    snapshots: OnceLock<SnapshotTable>,
    /// The snapshot keys of the images [`Inventory::add_unsealed`] counted.
    unsealed_disks: Chunked<u64>,
    /// The distinct snapshot [`TagPrint`]s ([`SnapshotUse::tags`] indexes it).
    snapshot_tags: PrintPool,
    /// The distinct prints of images' tags other than their [`VARYING_KEYS`] ones, and the
    /// hashes of those, image after image ([`ImageTags`]).
    image_tags: PrintPool,
    varying_tags: Chunked<u64>,
    /// Every image's snapshot key and volume size (GiB) per disk, image after image, in
    /// two arrays (12 bytes a disk; a `(u64, u32)` takes 16).
    disk_keys: Chunked<u64>,
    disk_sizes: Chunked<u32>,
    /// The ids not of the usual shape, whole ([`PackedId`]).
    other_ids: Vec<ImageId>,
    /// The customer keys of the snapshots of the images whose grant record names someone
    /// (their KMS grants are retired when the image is deleted), by packed id: few images,
    /// so not a field of every record.
    shared_keys: HashMap<PackedId, Box<[KeyRef]>>,
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
        self.snapshots.take();
        for d in &image.disks {
            self.unsealed_disks.push(snapshot_key(&d.snapshot_id));
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
        self.snapshots.take();
        let disk_start = u32::try_from(self.disk_keys.len()).unwrap_or(u32::MAX);
        // EC2 allows far fewer block devices than 255; were there more, the record would
        // name only the first 255 (the snapshot table still counts every one as used).
        let disk_count = u8::try_from(image.disks.len()).unwrap_or(u8::MAX);
        for d in &image.disks {
            self.disk_keys.push(snapshot_key(&d.snapshot_id));
            self.disk_sizes
                .push(u32::try_from(d.size_gib).unwrap_or(u32::MAX));
        }
        let shared_keys = if crate::share::record::names_anyone(&image.tags) {
            let mut keys: Vec<KeyRef> = image
                .disks
                .iter()
                .filter(|d| d.encrypted)
                .filter_map(|d| d.kms_key.clone())
                .collect();
            keys.sort();
            keys.dedup();
            keys
        } else {
            Vec::new()
        };
        let tags = self.fold_tags(&image.tags);
        let id = PackedId::of(image.id.as_str()).unwrap_or_else(|| {
            self.other_ids.push(image.id.clone());
            PackedId {
                low: (self.other_ids.len() - 1) as u64,
                high: PackedId::OTHER,
            }
        });
        let flags = [
            (tags::is_kept(&image.tags), KEEP_TAG),
            (image.deregistration_protected, PROTECTED),
            (image.public, PUBLIC),
            (!shared_keys.is_empty(), SHARED_KEYS),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |all, (_, flag)| all | flag);
        if !shared_keys.is_empty() {
            self.shared_keys.insert(id, shared_keys.into_boxed_slice());
        }
        self.images.push(ImageRecord {
            id_low: id.low,
            time: PackedTime::of(time),
            deprecated: PackedTime::of_option(image.deprecation_time),
            launched: PackedTime::of_option(image.last_launched),
            lineage: lid,
            disk_start,
            tags,
            id_high: id.high,
            state: image.state,
            flags,
            disk_count,
        });
    }

    /// Splits `tags`' print into the `key = value` hashes of its [`VARYING_KEYS`] tags
    /// (appended to the shared array) and the rest (pooled).
    fn fold_tags(&mut self, tags: &Tags) -> ImageTags {
        let all = TagPrint::of(tags);
        let varying: Tags = tags
            .iter()
            .filter(|(k, _)| VARYING_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let varying = without(TagPrint::of(&varying).hashes(), varying_key_hashes());
        let pooled = self
            .image_tags
            .intern(TagPrint::from_hashes(without(all.hashes(), &varying)));
        let start = u32::try_from(self.varying_tags.len()).unwrap_or(u32::MAX);
        for &h in &varying {
            self.varying_tags.push(h);
        }
        ImageTags::new(pooled, start, varying.len())
    }

    /// `image`'s tags as hashes: the same print [`TagPrint::of`] made of its tags.
    pub fn image_tags(&self, image: &ImageRecord) -> TagPrint {
        let t = image.tags;
        let mut hashes: Vec<u64> = self
            .image_tags
            .get(t.pooled())
            .map(|p| p.hashes().to_vec())
            .unwrap_or_default();
        hashes.extend(self.varying_tags.run(t.start as usize, t.len()));
        TagPrint::from_hashes(hashes)
    }

    /// Gives back the room kept for more images and makes the snapshot table (call when
    /// the listing is done).
    pub fn shrink_to_fit(&mut self) {
        self.images.shrink_to_fit();
        self.varying_tags.shrink_to_fit();
        self.disk_keys.shrink_to_fit();
        self.disk_sizes.shrink_to_fit();
        self.unsealed_disks.shrink_to_fit();
        self.table();
    }

    /// The snapshot table, made on first use since the last image was added.
    fn table(&self) -> &SnapshotTable {
        self.snapshots.get_or_init(|| {
            let mut keys = Vec::with_capacity(self.disk_keys.len() + self.unsealed_disks.len());
            keys.extend(self.disk_keys.iter());
            keys.extend(self.unsealed_disks.iter());
            SnapshotTable::of(keys)
        })
    }

    /// `image`'s `(snapshot_key, size_gib)` per snapshot-backed device.
    pub fn disks<'a>(&'a self, image: &ImageRecord) -> impl Iterator<Item = (u64, u32)> + 'a {
        let (start, count) = (image.disk_start as usize, usize::from(image.disk_count));
        let keys = self.disk_keys.run(start, count);
        keys.copied()
            .zip(self.disk_sizes.run(start, count).copied())
    }

    /// The customer keys of `image`'s snapshots, kept only for an image whose grant record
    /// names someone: their KMS grants are retired when the image is deleted.
    pub fn shared_keys(&self, image: &ImageRecord) -> &[KeyRef] {
        if image.flags & SHARED_KEYS == 0 {
            return &[];
        }
        self.shared_keys
            .get(&image.packed_id())
            .map_or(&[], |keys| &keys[..])
    }

    /// The GiB of `image`'s volumes.
    pub fn size_gib(&self, image: &ImageRecord) -> u64 {
        self.disks(image).map(|(_, s)| u64::from(s)).sum()
    }

    pub fn lineage(&self, id: LineageId) -> Option<&LineageInfo> {
        self.lineages.get(id as usize)
    }

    /// How many inventoried images use a snapshot.
    pub fn snapshot_users(&self, snapshot: &SnapshotId) -> u32 {
        self.snapshot_key_users(snapshot_key(snapshot))
    }

    /// How many inventoried images use the snapshot of key `key`.
    pub fn snapshot_key_users(&self, key: u64) -> u32 {
        let t = self.table();
        t.find(key).map_or(0, |i| t.users[i])
    }

    /// Records what the snapshot listing says of snapshot `key`: its full size (where EC2
    /// reports it) and its tags. Kept only for a snapshot an inventoried image uses (an
    /// orphan is decided as it is listed).
    pub fn note_snapshot(&mut self, key: u64, full_bytes: Option<u64>, tags: TagPrint) {
        self.table();
        let Some(table) = self.snapshots.get_mut() else {
            return;
        };
        let Some(i) = table.find(key) else {
            return;
        };
        match full_bytes {
            Some(b) => {
                if table.full_bytes.is_empty() {
                    table.full_bytes = vec![UNKNOWN_SIZE; table.keys.len()];
                }
                table.full_bytes[i] = b;
            }
            None => {
                if let Some(known) = table.full_bytes.get_mut(i) {
                    *known = UNKNOWN_SIZE;
                }
            }
        }
        table.tags[i] = self.snapshot_tags.intern(tags) + 1;
    }

    /// The full size (`FullSnapshotSizeInBytes`) the listing read for snapshot `key`.
    pub fn full_bytes(&self, key: u64) -> Option<u64> {
        let t = self.table();
        t.find(key)
            .and_then(|i| t.full_bytes.get(i).copied())
            .filter(|&b| b != UNKNOWN_SIZE)
    }

    /// The tags the listing read for snapshot `key`.
    pub fn snapshot_tags(&self, key: u64) -> Option<&TagPrint> {
        let t = self.table();
        let i = t.tags[t.find(key)?].checked_sub(1)?;
        self.snapshot_tags.get(i)
    }

    /// GiB that deregistering `image` would free: its snapshots no other image uses.
    pub fn exclusive_gib(&self, image: &ImageRecord) -> u64 {
        self.exclusive_disks(image).map(|(_, s)| u64::from(s)).sum()
    }

    /// The `(snapshot_key, volume GiB)` of `image`'s snapshots no other image uses.
    pub fn exclusive_disks<'a>(
        &'a self,
        image: &'a ImageRecord,
    ) -> impl Iterator<Item = (u64, u32)> + 'a {
        self.disks(image)
            .filter(|(k, _)| self.snapshot_key_users(*k) <= 1)
    }

    /// `image`'s id.
    pub fn id(&self, image: &ImageRecord) -> ImageId {
        let packed = image.packed_id();
        if packed.high < PackedId::OTHER {
            return ImageId::new(packed.text());
        }
        self.other_id(packed)
            .cloned()
            .unwrap_or_else(|| ImageId::new(String::new()))
    }

    /// Whether `image`'s id is `id` (no text made).
    pub fn has_id(&self, image: &ImageRecord, id: &ImageId) -> bool {
        let packed = image.packed_id();
        if packed.high < PackedId::OTHER {
            return PackedId::of(id.as_str()) == Some(packed);
        }
        self.other_id(packed) == Some(id)
    }

    /// The whole id a [`PackedId::OTHER`] id stands for, in `other_ids`.
    fn other_id(&self, packed: PackedId) -> Option<&ImageId> {
        usize::try_from(packed.low)
            .ok()
            .and_then(|i| self.other_ids.get(i))
    }

    /// The index of the image of id `id`.
    pub fn position(&self, id: &ImageId) -> Option<usize> {
        match PackedId::of(id.as_str()) {
            Some(packed) => self.images.iter().position(|img| img.packed_id() == packed),
            None => self.images.iter().position(|img| self.has_id(img, id)),
        }
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

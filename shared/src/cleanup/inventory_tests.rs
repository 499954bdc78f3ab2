//! [`Inventory`]'s split tag prints: joined, they are the print of the image's tags.

use time::macros::datetime;

use super::*;
use crate::model::{DeviceName, ImageDisk, Region};

const DEPLOYMENT: &str = "ami-lifecycle";

/// A managed image of lineage `instance`/daily with `extra` tags.
fn image(id: &str, instance: &str, slot: &str, extra: &[(&str, &str)]) -> Image {
    let mut tags: Tags = [
        (key::MANAGED_BY, DEPLOYMENT),
        (key::SOURCE_INSTANCE, instance),
        (key::SCHEDULE, "daily"),
        (key::SLOT, slot),
        (key::SEAL, &format!("v2:{id}")),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        tags.insert(k.to_string(), v.to_string());
    }
    Image {
        id: ImageId::new(id),
        region: Region::new("us-east-1"),
        name: format!("web/{id}"),
        state: ImageState::Available,
        owner: None,
        created: datetime!(2026-11-01 00:00 UTC),
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

#[test]
fn an_images_tag_print_is_the_print_of_its_tags() {
    let images = [
        image("ami-1", "i-1", "2026-11-01T00:00:00Z", &[]),
        image("ami-2", "i-1", "2026-11-02T00:00:00Z", &[("Name", "web 2")]),
        image(
            "ami-3",
            "i-2",
            "2026-11-02T00:00:00Z",
            &[("team", "blue"), (key::KEEP, "true")],
        ),
        // No varying tag but the suite's own: only the pooled part.
        image("ami-4", "i-2", "", &[]),
    ];
    let mut inv = Inventory::new();
    for i in &images {
        inv.add(i, DEPLOYMENT);
    }
    assert_eq!(inv.len(), images.len());
    for (img, record) in images.iter().zip(&inv.images) {
        assert_eq!(inv.id(record), img.id);
        assert_eq!(
            inv.image_tags(record),
            TagPrint::of(&img.tags),
            "{}",
            img.id
        );
    }
    // A print with a tag changed is not the image's print (the join is not vacuous).
    let mut other = images[0].tags.clone();
    other.insert(key::SLOT.to_owned(), "2026-11-03T00:00:00Z".to_owned());
    assert_ne!(inv.image_tags(&inv.images[0]), TagPrint::of(&other));
}

#[test]
fn images_tagged_alike_but_for_slot_and_seal_share_one_pooled_print() {
    let mut inv = Inventory::new();
    for n in 0..10 {
        let slot = format!("2026-11-{:02}T00:00:00Z", n + 1);
        inv.add(&image(&format!("ami-{n}"), "i-1", &slot, &[]), DEPLOYMENT);
    }
    inv.add(
        &image("ami-x", "i-2", "2026-11-01T00:00:00Z", &[]),
        DEPLOYMENT,
    );
    assert_eq!(inv.len(), 11);
    // One pooled print per lineage (the key-only hashes of slot and seal included); each
    // image keeps its slot and seal (2 tags, one `key = value` hash each).
    assert_eq!(inv.image_tags.prints.len(), 2);
    assert_eq!(inv.varying_tags.len(), 11 * 2);
    assert_eq!(inv.images[0].tags.pooled(), inv.images[9].tags.pooled());
    assert_ne!(inv.images[0].tags.pooled(), inv.images[10].tags.pooled());
    for (img, n) in inv.images.iter().zip(0..) {
        let slot = format!("2026-11-{:02}T00:00:00Z", n + 1);
        let id = inv.id(img);
        let id = id.as_str();
        let expected = image(id, "i-1", &slot, &[]);
        if n < 10 {
            assert_eq!(inv.image_tags(img), TagPrint::of(&expected.tags), "{id}");
        }
    }
}

#[test]
fn a_record_is_40_bytes_and_the_key_hashes_are_those_of_tag_print() {
    // Issue 19 (flat memory): the record is what every image costs, its id included.
    assert!(std::mem::size_of::<ImageRecord>() <= 40);
    // The key-only hash of a varying key is in the print of any value of it, and a
    // `key = value` hash is not.
    let keys = varying_key_hashes();
    assert_eq!(keys.len(), VARYING_KEYS.len());
    for k in VARYING_KEYS {
        let print = TagPrint::of(&Tags::from([(k.to_owned(), "x".to_owned())]));
        let shared: Vec<_> = print.hashes().iter().filter(|h| keys.contains(h)).collect();
        assert_eq!(shared.len(), 1, "{k}");
    }
}

#[test]
fn unsealed_images_use_snapshots_and_the_listing_notes_only_used_ones() {
    let a = image("ami-a", "i-1", "2026-11-01T00:00:00Z", &[]);
    let mut forged = image("ami-f", "i-1", "2026-11-02T00:00:00Z", &[]);
    forged.disks[0].snapshot_id = SnapshotId::new("snap-ami-a");
    forged.disks.push(ImageDisk {
        device: DeviceName::new("/dev/xvdb"),
        snapshot_id: SnapshotId::new("snap-only-forged"),
        size_gib: 4,
        encrypted: false,
        kms_key: None,
    });
    let mut inv = Inventory::new();
    inv.add(&a, DEPLOYMENT);
    inv.add_unsealed(&forged);
    inv.shrink_to_fit();
    let own = snapshot_key(&SnapshotId::new("snap-ami-a"));
    let only_forged = snapshot_key(&SnapshotId::new("snap-only-forged"));
    let orphan = snapshot_key(&SnapshotId::new("snap-orphan"));
    assert_eq!(inv.snapshot_key_users(own), 2);
    assert_eq!(inv.snapshot_key_users(only_forged), 1);
    assert_eq!(inv.snapshot_key_users(orphan), 0);
    assert_eq!(inv.snapshot_users(&SnapshotId::new("snap-ami-a")), 2);
    // Nothing was listed yet: no size, no tags.
    assert_eq!(inv.full_bytes(own), None);
    assert_eq!(inv.snapshot_tags(own), None);
    let tags = TagPrint::of(&Tags::from([("team".to_owned(), "blue".to_owned())]));
    inv.note_snapshot(own, Some(3 << 30), tags.clone());
    inv.note_snapshot(only_forged, None, tags.clone());
    inv.note_snapshot(orphan, Some(1), tags.clone());
    assert_eq!(inv.full_bytes(own), Some(3 << 30));
    assert_eq!(inv.full_bytes(only_forged), None);
    assert_eq!(inv.full_bytes(orphan), None);
    assert_eq!(inv.snapshot_tags(own), Some(&tags));
    assert_eq!(inv.snapshot_tags(only_forged), Some(&tags));
    assert_eq!(inv.snapshot_tags(orphan), None);
    // Both share one pooled print.
    assert_eq!(inv.snapshot_tags.prints.len(), 1);
    // Only the image's own snapshot is exclusive when no other image uses it: here the
    // forged image uses it too.
    assert_eq!(inv.exclusive_gib(&inv.images[0]), 0);
}

#[test]
fn disks_and_times_read_back_as_listed() {
    let mut a = image("ami-a", "i-1", "2026-11-01T00:00:00Z", &[]);
    a.disks.push(ImageDisk {
        device: DeviceName::new("/dev/xvdb"),
        snapshot_id: SnapshotId::new("snap-shared"),
        size_gib: 100,
        encrypted: false,
        kms_key: None,
    });
    a.deprecation_time = Some(datetime!(2026-11-05 00:00 UTC));
    a.last_launched = Some(datetime!(1969-12-31 00:00 UTC));
    let mut b = image("ami-b", "i-1", "2026-11-02T00:00:00Z", &[]);
    b.disks[0].snapshot_id = SnapshotId::new("snap-shared");
    b.disks[0].size_gib = 100;
    let mut inv = Inventory::new();
    inv.add(&a, DEPLOYMENT);
    inv.add(&b, DEPLOYMENT);
    inv.shrink_to_fit();
    let (ra, rb) = (&inv.images[0], &inv.images[1]);
    let shared = snapshot_key(&SnapshotId::new("snap-shared"));
    let own = snapshot_key(&SnapshotId::new("snap-ami-a"));
    assert_eq!(inv.disks(ra).collect::<Vec<_>>(), [(own, 8), (shared, 100)]);
    assert_eq!(inv.disks(rb).collect::<Vec<_>>(), [(shared, 100)]);
    assert_eq!(inv.size_gib(ra), 108);
    assert_eq!(inv.snapshot_key_users(shared), 2);
    assert_eq!(inv.snapshot_key_users(own), 1);
    // Only the snapshot no other image uses is freed with the image.
    assert_eq!(inv.exclusive_gib(ra), 8);
    assert_eq!(inv.exclusive_gib(rb), 0);
    assert_eq!(
        ra.deprecation_time(),
        Some(datetime!(2026-11-05 00:00 UTC).unix_timestamp())
    );
    // A time before 1970 (EC2 reports none such) is a time, not "none": it reads as 1970,
    // the first a packed time holds, which is as old for every rule.
    assert_eq!(ra.last_launched(), Some(0));
    assert_eq!(rb.deprecation_time(), None);
    assert_eq!(rb.last_launched(), None);
}

#[test]
fn ids_are_packed_and_given_back_whole() {
    // The usual shape packs (leading zeros kept); any other is kept whole, in the order met.
    let ids = [
        "ami-0123456789abcdef0",
        "ami-00000000000000000",
        "ami-fffffffffffffffff",
        "ami-1",
        "ami-0123456789ABCDEF0",
        "ami-0123456789abcdef01",
        "ami-12345678",
        "ami-+0123456789abcdef",
    ];
    let mut inv = Inventory::new();
    for (n, id) in ids.iter().enumerate() {
        inv.add(&image(id, &format!("i-{n}"), "", &[]), DEPLOYMENT);
    }
    assert_eq!(inv.other_ids.len(), 5);
    for (n, id) in ids.iter().enumerate() {
        let record = &inv.images[n];
        assert_eq!(inv.id(record).as_str(), *id);
        assert!(inv.has_id(record, &ImageId::new(*id)));
        assert_eq!(inv.position(&ImageId::new(*id)), Some(n), "{id}");
    }
    assert!(!inv.has_id(&inv.images[0], &ImageId::new("ami-0123456789abcdef1")));
    assert!(!inv.has_id(&inv.images[3], &ImageId::new("ami-2")));
    assert_eq!(inv.position(&ImageId::new("ami-0123456789abcdef1")), None);
    assert_eq!(inv.position(&ImageId::new("ami-2")), None);
}

#[test]
fn a_records_flags_are_its_images() {
    let mut kept = image("ami-k", "i-1", "", &[(key::KEEP, "true")]);
    kept.public = true;
    let mut protected = image("ami-p", "i-1", "", &[]);
    protected.deregistration_protected = true;
    let mut inv = Inventory::new();
    inv.add(&kept, DEPLOYMENT);
    inv.add(&protected, DEPLOYMENT);
    let (k, p) = (&inv.images[0], &inv.images[1]);
    assert!(k.keep_tag() && k.public() && !k.protected());
    assert!(!p.keep_tag() && !p.public() && p.protected());
}

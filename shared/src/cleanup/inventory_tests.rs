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
        assert_eq!(record.id, img.id);
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
    // One pooled print per lineage; each image keeps its slot and seal (2 tags, 2 hashes each).
    assert_eq!(inv.image_tags.prints.len(), 2);
    assert_eq!(inv.varying_tags.len(), 11 * 4);
    assert_eq!(inv.images[0].tags.pooled, inv.images[9].tags.pooled);
    assert_ne!(inv.images[0].tags.pooled, inv.images[10].tags.pooled);
}

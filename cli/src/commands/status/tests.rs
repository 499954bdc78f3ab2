use super::*;
use ami_core::model::{ImageId, Region, Tags};
use time::macros::datetime;
use time::Duration;

const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

fn config(retain: &str) -> Config {
    Config::from_lookup(|k| match k {
        "AWS_REGION" => Some("us-east-1".to_owned()),
        "RETAIN" => Some(retain.to_owned()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn image(id: &str, region: &str, days_ago: i64, state: ImageState, tags: &[(&str, &str)]) -> Image {
    let slot = NOW - Duration::days(days_ago);
    let mut all: Tags = tags
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.entry(key::MANAGED_BY.to_owned())
        .or_insert_with(|| "ami-lifecycle".to_owned());
    all.insert(key::SLOT.to_owned(), rfc3339(slot));
    Image {
        id: ImageId::new(id),
        region: Region::new(region),
        name: id.to_owned(),
        state,
        owner: None,
        created: slot,
        tags: all,
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

const WEB: [(&str, &str); 2] = [(key::SOURCE_INSTANCE, "i-1"), (key::SCHEDULE, "daily")];

/// GIVEN images WHEN summarized under `retain` THEN the rows, by lineage.
fn status(images: &[Image], retain: &str) -> Status {
    let mut summary = Summary::default();
    for i in images {
        summary.add(i, "ami-lifecycle");
    }
    summary.into_status(&config(retain), vec!["us-east-1".into()], NOW)
}

fn row<'a>(s: &'a Status, region: &str, lineage: &str) -> &'a LineageStatus {
    s.lineages
        .iter()
        .find(|l| l.region == region && l.lineage == lineage)
        .unwrap_or_else(|| panic!("no row {region} {lineage}: {s:#?}"))
}

#[test]
fn rows_are_cleanups_lineages_with_their_rule_newest_and_what_is_past() {
    let adopted = |id: &str, from: &str| {
        image(
            id,
            "us-east-1",
            3,
            ImageState::Available,
            &[
                (key::SOURCE_ACCOUNT, "111122223333"),
                (key::SOURCE_IMAGE, from),
                (key::SOURCE_REGION, "us-east-1"),
            ],
        )
    };
    let mut replica = image("ami-r", "eu-west-1", 1, ImageState::Available, &WEB);
    replica
        .tags
        .insert(key::SOURCE_REGION.to_owned(), "us-east-1".to_owned());
    let images = [
        image("ami-b", "us-east-1", 1, ImageState::Available, &WEB),
        // Same slot as ami-b: the smaller id is the newest, as cleanup decides.
        image("ami-a", "us-east-1", 1, ImageState::Available, &WEB),
        image("ami-c", "us-east-1", 2, ImageState::Available, &WEB),
        image("ami-p", "us-east-1", 0, ImageState::Pending, &WEB),
        adopted("ami-x", "ami-f1"),
        adopted("ami-y", "ami-f2"),
        image(
            "ami-f",
            "us-east-1",
            9,
            ImageState::Available,
            &[(key::MANAGED_BY, "other")],
        ),
        replica,
    ];
    let s = status(&images, "count=1");
    assert_eq!(s.managed_images, 7, "the foreign image is not counted");
    assert_eq!(s.lineages.len(), 4, "{s:#?}");
    let web = row(&s, "us-east-1", "i-1/daily");
    assert_eq!(
        (web.images, web.available, web.pending, web.past_retention),
        (4, 3, 1, 2)
    );
    assert_eq!(web.newest_image.as_deref(), Some("ami-a"));
    assert_eq!(web.rule, "count=1 (RETAIN)");
    // Two adopted images: two lineages, neither past retention.
    for from in ["ami-f1", "ami-f2"] {
        let l = row(&s, "us-east-1", &format!("adopted 111122223333/{from}"));
        assert_eq!((l.images, l.past_retention, l.replicas), (1, 0, 0));
    }
    let eu = row(&s, "eu-west-1", "i-1/daily");
    assert_eq!((eu.images, eu.replicas, eu.past_retention), (1, 1, 0));
}

#[test]
fn the_rule_comes_from_the_newest_images_tag_and_a_bad_one_keeps_the_lineage_whole() {
    let tagged = |id: &str, days, retain: &str| {
        let mut i = image(id, "us-east-1", days, ImageState::Available, &WEB);
        i.tags.insert(key::RETAIN.to_owned(), retain.to_owned());
        i
    };
    let s = status(
        &[tagged("ami-1", 0, "count=3"), tagged("ami-2", 1, "x")],
        "count=1",
    );
    let web = row(&s, "us-east-1", "i-1/daily");
    assert_eq!(web.rule, "count=3 (ami-lifecycle:retain on ami-1)");
    assert_eq!(web.past_retention, 0);
    let s = status(
        &[tagged("ami-1", 0, "forever"), tagged("ami-2", 1, "count=1")],
        "count=1",
    );
    let web = row(&s, "us-east-1", "i-1/daily");
    assert!(
        web.rule.starts_with("kept whole: ") && web.rule.contains("forever"),
        "{}",
        web.rule
    );
    assert_eq!(web.past_retention, 0);
}

#[test]
fn an_empty_inventory_says_what_it_looked_for() {
    let text = render(&status(&[], "count=7"));
    assert!(
        text.contains("no managed images (nothing tagged ami-lifecycle:managed-by=ami-lifecycle)"),
        "{text}"
    );
}

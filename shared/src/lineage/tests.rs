use super::*;
use crate::model::Tags;
use time::macros::datetime;
use time::Duration;

const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);
const DEPLOYMENT: &str = "ami-lifecycle";

/// A managed image of `region`, `days_ago` old by slot, with `tags` on top of managed-by.
fn image(id: &str, days_ago: i64, state: ImageState, tags: &[(&str, &str)]) -> Image {
    let slot = NOW - Duration::days(days_ago);
    let mut all: Tags = tags
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.insert(key::MANAGED_BY.to_owned(), DEPLOYMENT.to_owned());
    all.entry(key::SLOT.to_owned())
        .or_insert_with(|| crate::time_util::rfc3339(slot));
    Image {
        id: ImageId::new(id),
        region: Region::new("us-east-1"),
        name: id.to_owned(),
        state,
        owner: None,
        created: slot + Duration::minutes(5),
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

fn web(id: &str, days_ago: i64, state: ImageState) -> Image {
    image(
        id,
        days_ago,
        state,
        &[(key::SOURCE_INSTANCE, "i-1"), (key::SCHEDULE, "daily")],
    )
}

fn rule(text: &str) -> RetentionRule {
    RetentionRule::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

/// GIVEN images of one region WHEN judged under `retain` THEN the standing of each, by id.
fn standings(images: &[Image], retain: &str) -> BTreeMap<String, Standing> {
    let mut lineages = Lineages::new();
    for i in images {
        lineages.add(i, DEPLOYMENT);
    }
    lineages
        .standings(&rule(retain), NOW)
        .into_iter()
        .map(|(id, s)| (id.to_string(), s))
        .collect()
}

fn past(s: &BTreeMap<String, Standing>) -> Vec<&str> {
    s.iter()
        .filter(|(_, s)| s.is_past())
        .map(|(id, _)| id.as_str())
        .collect()
}

#[test]
fn an_instance_lineage_is_instance_by_schedule_and_its_replicas_share_it() {
    let source = web("ami-1", 0, ImageState::Available);
    let mut replica = source.clone();
    replica.id = ImageId::new("ami-2");
    replica.region = Region::new("eu-west-1");
    replica
        .tags
        .insert(key::SOURCE_IMAGE.to_owned(), "ami-1".to_owned());
    assert_eq!(Lineage::of(&source), Lineage::of(&replica));
    assert_eq!(Lineage::of(&source).to_string(), "i-1/daily");
    let weekly = image(
        "ami-3",
        0,
        ImageState::Available,
        &[(key::SOURCE_INSTANCE, " i-1 "), (key::SCHEDULE, "weekly")],
    );
    assert_eq!(Lineage::of(&weekly).to_string(), "i-1/weekly");
}

#[test]
fn each_adopted_image_is_a_lineage_of_its_own_keyed_by_account_and_source_image() {
    let adopted = |id: &str, from: &str| {
        image(
            id,
            0,
            ImageState::Available,
            &[
                (key::SOURCE_ACCOUNT, "111122223333"),
                (key::SOURCE_IMAGE, from),
            ],
        )
    };
    let (a, b) = (adopted("ami-a", "ami-f1"), adopted("ami-b", "ami-f2"));
    assert_ne!(Lineage::of(&a), Lineage::of(&b));
    assert_eq!(
        Lineage::of(&a),
        Lineage::Adopted {
            account: "111122223333".into(),
            image: "ami-f1".into()
        }
    );
    // An old adopted image is never retired because another adopted image is newer.
    let mut older = adopted("ami-old", "ami-f3");
    older
        .tags
        .insert(key::SLOT.to_owned(), "2020-01-01T00:00:00Z".to_owned());
    let s = standings(&[a, b, older], "count=1");
    assert!(past(&s).is_empty(), "{s:?}");
}

#[test]
fn an_untracked_managed_image_is_a_lineage_of_one_and_what_is_not_ours_is_no_member() {
    let lone = image("ami-x", 90, ImageState::Available, &[]);
    assert_eq!(
        Lineage::of(&lone),
        Lineage::Untracked {
            image: "ami-x".into()
        }
    );
    let mut foreign = web("ami-f", 90, ImageState::Available);
    foreign
        .tags
        .insert(key::MANAGED_BY.to_owned(), "someone-else".to_owned());
    let gone = web("ami-g", 90, ImageState::Deregistered);
    let mut lineages = Lineages::new();
    assert_eq!(lineages.add(&foreign, DEPLOYMENT), None);
    assert_eq!(lineages.add(&gone, DEPLOYMENT), None);
    assert_eq!(lineages.add(&lone, DEPLOYMENT), Some(0));
}

#[test]
fn retention_time_is_the_slot_in_either_form_else_the_creation_date() {
    let mut img = web("ami-1", 3, ImageState::Available);
    assert_eq!(
        retention_time(&img),
        (NOW - Duration::days(3)).unix_timestamp()
    );
    img.tags
        .insert(key::SLOT.to_owned(), " 20261101T0300Z ".to_owned());
    assert_eq!(
        retention_time(&img),
        datetime!(2026-11-01 03:00 UTC).unix_timestamp()
    );
    img.tags
        .insert(key::SLOT.to_owned(), "yesterday".to_owned());
    assert_eq!(retention_time(&img), img.created.unix_timestamp());
}

#[test]
fn on_a_tie_the_smaller_id_is_the_newest_everywhere() {
    // Same slot: the head is the smaller id, and count=1 keeps the same image.
    let imgs = [
        web("ami-b", 1, ImageState::Available),
        web("ami-a", 1, ImageState::Available),
    ];
    let mut lineages = Lineages::new();
    for i in &imgs {
        lineages.add(i, DEPLOYMENT);
    }
    let head = lineages.groups()[0]
        .head
        .image()
        .map(|(id, _)| id.to_string());
    assert_eq!(head.as_deref(), Some("ami-a"));
    let s = standings(&imgs, "count=1");
    assert_eq!(past(&s), ["ami-b"]);
}

#[test]
fn pending_images_are_not_counted_and_never_past() {
    let imgs = [
        web("ami-new", 0, ImageState::Pending),
        web("ami-a", 1, ImageState::Available),
        web("ami-b", 2, ImageState::Available),
        web("ami-c", 3, ImageState::Available),
    ];
    let s = standings(&imgs, "count=2");
    assert_eq!(s["ami-new"], Standing::Pending);
    assert_eq!(past(&s), ["ami-c"], "the pending image takes no count slot");
}

#[test]
fn disabled_images_are_counted_and_the_newest_available_is_always_kept() {
    let imgs = [
        web("ami-dis", 0, ImageState::Disabled),
        web("ami-a", 1, ImageState::Available),
        web("ami-b", 2, ImageState::Available),
        web("ami-failed", 3, ImageState::Failed),
    ];
    let s = standings(&imgs, "count=1");
    assert!(matches!(
        s["ami-dis"],
        Standing::Kept(KeepReason::Newest, _)
    ));
    assert_eq!(s["ami-a"], Standing::NewestAvailable);
    assert_eq!(s["ami-failed"], Standing::Uncounted(ImageState::Failed));
    assert_eq!(past(&s), ["ami-b"]);
}

#[test]
fn the_head_is_the_newest_available_image_whatever_newer_pending_disabled_or_failed_say() {
    let tagged = |id: &str, days, state, retain: &str| {
        image(
            id,
            days,
            state,
            &[
                (key::SOURCE_INSTANCE, "i-1"),
                (key::SCHEDULE, "daily"),
                (key::RETAIN, retain),
            ],
        )
    };
    let imgs = [
        tagged("ami-p", 0, ImageState::Pending, "count=9"),
        tagged("ami-f", 0, ImageState::Failed, "forever"),
        tagged("ami-d", 1, ImageState::Disabled, "count=8"),
        tagged("ami-a", 2, ImageState::Available, "count=2"),
        tagged("ami-b", 3, ImageState::Available, "count=5"),
        web("ami-c", 4, ImageState::Available),
    ];
    let s = standings(&imgs, "count=1");
    // count=2 from ami-a: ami-d and ami-a are the two newest counted.
    match &s["ami-a"] {
        Standing::Kept(_, rule) => {
            assert_eq!(rule.source, RuleSource::Tag(ImageId::new("ami-a")));
            assert_eq!(rule.to_string(), "count=2 (ami-lifecycle:retain on ami-a)");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(past(&s), ["ami-b", "ami-c"]);
    // With no available image, the newest disabled one rules.
    let disabled_only = [
        tagged("ami-d1", 1, ImageState::Disabled, "count=2"),
        tagged("ami-d2", 2, ImageState::Disabled, "count=1"),
        tagged("ami-d3", 3, ImageState::Disabled, "count=1"),
    ];
    assert_eq!(past(&standings(&disabled_only, "count=1")), ["ami-d3"]);
}

#[test]
fn a_bad_retain_tag_on_the_head_keeps_the_whole_lineage() {
    let imgs = [
        image(
            "ami-a",
            0,
            ImageState::Available,
            &[(key::SOURCE_INSTANCE, "i-1"), (key::RETAIN, "forever")],
        ),
        image(
            "ami-b",
            5,
            ImageState::Available,
            &[(key::SOURCE_INSTANCE, "i-1")],
        ),
        image(
            "ami-c",
            9,
            ImageState::Pending,
            &[(key::SOURCE_INSTANCE, "i-1")],
        ),
    ];
    let s = standings(&imgs, "count=1");
    assert!(past(&s).is_empty());
    match &s["ami-b"] {
        Standing::BadRule(bad) => {
            assert_eq!(bad.on, ImageId::new("ami-a"));
            let text = bad.error.to_string();
            assert!(
                text.contains("forever") && text.contains("count=7"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn lineages_are_judged_per_region() {
    let mut replica = web("ami-r", 9, ImageState::Available);
    replica.region = Region::new("eu-west-1");
    let imgs = [
        web("ami-a", 0, ImageState::Available),
        web("ami-b", 1, ImageState::Available),
        replica,
    ];
    // The old replica is the newest of its lineage in eu-west-1.
    assert_eq!(past(&standings(&imgs, "count=1")), ["ami-b"]);
}

/// A configuration with `RETAIN` and `RETAIN_BY_REGION` (destinations eu-west-1, us-west-2).
fn config(retain: &str, by_region: &str) -> crate::config::Config {
    crate::config::Config::from_lookup(|k| match k {
        "AWS_REGION" => Some("us-east-1".to_owned()),
        "REPLICA_REGIONS" => Some("eu-west-1,us-west-2".to_owned()),
        "RETAIN" => Some(retain.to_owned()),
        "RETAIN_BY_REGION" => Some(by_region.to_owned()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// `imgs` moved to `region` (as replicas carry the lineage tags).
fn in_region(imgs: &[Image], region: &str) -> Vec<Image> {
    imgs.iter()
        .map(|i| Image {
            region: Region::new(region),
            ..i.clone()
        })
        .collect()
}

fn past_under(imgs: &[Image], config: &crate::config::Config) -> Vec<String> {
    let mut lineages = Lineages::new();
    for i in imgs {
        lineages.add(i, DEPLOYMENT);
    }
    lineages
        .standings(config, NOW)
        .into_iter()
        .filter(|(_, s)| s.is_past())
        .map(|(id, _)| id.to_string())
        .collect()
}

#[test]
fn each_region_is_judged_by_its_own_rule_tags_first_then_the_deployments() {
    let five: Vec<Image> = (0..5)
        .map(|d| web(&format!("ami-{d}"), d, ImageState::Available))
        .collect();
    let c = config("count=4", "eu-west-1=count=2");
    // RETAIN_BY_REGION's entry rules its region, RETAIN the others
    assert_eq!(past_under(&five, &c), ["ami-4"]);
    assert_eq!(
        past_under(&in_region(&five, "eu-west-1"), &c),
        ["ami-2", "ami-3", "ami-4"]
    );
    assert_eq!(past_under(&in_region(&five, "us-west-2"), &c), ["ami-4"]);
    // the head's retain tag overrides both settings, everywhere
    let mut tagged = five.clone();
    tagged[0]
        .tags
        .insert(key::RETAIN.to_owned(), "count=3".to_owned());
    assert_eq!(
        past_under(&in_region(&tagged, "eu-west-1"), &c),
        ["ami-3", "ami-4"]
    );
    assert_eq!(past_under(&tagged, &c), ["ami-3", "ami-4"]);
    // and the head's retain-in entry for a region overrides its retain tag there only
    tagged[0].tags.insert(
        key::RETAIN_IN.to_owned(),
        "us-west-2=count=1; eu-west-1=count=4".to_owned(),
    );
    assert_eq!(
        past_under(&in_region(&tagged, "us-west-2"), &c),
        ["ami-1", "ami-2", "ami-3", "ami-4"]
    );
    assert_eq!(past_under(&in_region(&tagged, "eu-west-1"), &c), ["ami-4"]);
    assert_eq!(past_under(&tagged, &c), ["ami-3", "ami-4"]);
    // only the head's tags count: a retain-in on an older image changes nothing
    let mut old_tag = five.clone();
    old_tag[1]
        .tags
        .insert(key::RETAIN_IN.to_owned(), "eu-west-1=count=1".to_owned());
    assert_eq!(
        past_under(&in_region(&old_tag, "eu-west-1"), &c),
        ["ami-2", "ami-3", "ami-4"]
    );
}

#[test]
fn the_rule_says_where_it_comes_from_and_any_region_is_asked_from_one_head() {
    let imgs = [web("ami-0", 0, ImageState::Available)];
    let c = config("count=4", "eu-west-1=count=2");
    let mut head = Head::default();
    let member = Member {
        id: &imgs[0].id,
        time: retention_time(&imgs[0]),
        state: ImageState::Available,
    };
    head.offer_image(&member, &imgs[0]);
    let text = |r: Option<&str>| {
        applied_rule_in(&head, r.map(Region::new).as_ref(), &c)
            .map(|r| r.to_string())
            .unwrap_or_else(|b| format!("bad: {}", b.error))
    };
    assert_eq!(
        text(Some("eu-west-1")),
        "count=2 (RETAIN_BY_REGION eu-west-1)"
    );
    assert_eq!(text(Some("us-west-2")), "count=4 (RETAIN)");
    assert_eq!(
        applied_rule(&head, &c).map(|r| r.to_string()),
        Ok("count=4 (RETAIN)".to_owned())
    );
    let mut tagged = imgs[0].clone();
    tagged
        .tags
        .insert(key::RETAIN_IN.to_owned(), "eu-west-1=days=90".to_owned());
    let mut head = Head::default();
    head.offer_image(&member, &tagged);
    assert_eq!(
        applied_rule_in(&head, Some(&Region::new("eu-west-1")), &c).map(|r| r.to_string()),
        Ok("days=90 (ami-lifecycle:retain-in eu-west-1 on ami-0)".to_owned())
    );
}

#[test]
fn a_bad_retain_in_tag_on_the_head_keeps_the_lineage_whole_in_every_region() {
    let mut imgs: Vec<Image> = (0..3)
        .map(|d| web(&format!("ami-{d}"), d, ImageState::Available))
        .collect();
    imgs[0]
        .tags
        .insert(key::RETAIN_IN.to_owned(), "eu-west-1=count=zero".to_owned());
    let c = config("count=1", "");
    for region in ["us-east-1", "eu-west-1"] {
        let mut lineages = Lineages::new();
        for i in in_region(&imgs, region) {
            lineages.add(&i, DEPLOYMENT);
        }
        let s = lineages.standings(&c, NOW);
        assert!(
            s.values().all(
                |s| matches!(s, Standing::BadRule(b) if b.error.key == key::RETAIN_IN
                && b.error.to_string().contains("eu-west-1=count=3;us-west-2=days=90"))
            ),
            "{region}: {s:?}"
        );
    }
}

#[test]
fn rules_by_region_parse_region_rule_pairs_and_name_what_is_wrong() {
    let rules = parse_rules_by_region(" eu-west-1=count=3 ; us-west-2=daily=7,weekly=4;")
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(rules[&Region::new("eu-west-1")], rule("count=3"));
    assert_eq!(rules[&Region::new("us-west-2")], rule("daily=7,weekly=4"));
    assert!(parse_rules_by_region("").is_ok_and(|r| r.is_empty()));
    for (value, words) in [
        ("eu-west-1", "not region=rule"),
        ("Europe=count=1", "not a region name"),
        ("eu-west-1=often", "eu-west-1:"),
        ("eu-west-1=count=1;eu-west-1=count=2", "named twice"),
    ] {
        let e = parse_rules_by_region(value)
            .err()
            .unwrap_or_else(|| panic!("{value}"));
        assert!(e.problem.contains(words), "{value}: {}", e.problem);
    }
}

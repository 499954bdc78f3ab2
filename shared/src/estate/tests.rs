//! The estate's builder and renderer: sections per region and lineage, the SVG charts, the
//! plan's lines copied (never re-judged), and every user-controlled text escaped.

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::config::Config;
use crate::model::{
    AccountId, DeviceName, Grantee, Image, ImageDisk, ImageId, ImageState, Region, SnapshotId, Tags,
};
use crate::report::{Outcome, RunReport};
use crate::tags::key;

const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);
const EVIL: &str = "<script>alert('x')</script>&\"";

fn image(id: &str, region: &str, instance: &str, days_ago: i64, state: ImageState) -> Image {
    let slot = NOW - Duration::days(days_ago);
    let tags: Tags = [
        (key::MANAGED_BY, "ami-lifecycle"),
        (key::SOURCE_INSTANCE, instance),
        (key::SCHEDULE, "daily"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain([(key::SLOT.to_owned(), crate::time_util::rfc3339(slot))])
    .collect();
    Image {
        id: ImageId::new(id),
        region: Region::new(region),
        name: format!("ami-lifecycle/{instance}/daily/{days_ago}"),
        state,
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

fn grantee() -> Grantee {
    Grantee::Account(AccountId::parse("222233334444").unwrap_or_else(|| panic!("account id")))
}

fn config() -> Config {
    Config::from_lookup(|k| match k {
        "AWS_REGION" => Some("us-east-1".to_owned()),
        "AMI_LIFECYCLE_REGIONS" => Some("us-east-1,eu-west-1,ap-south-1".to_owned()),
        "PRICE_PER_GIB_MONTH" => Some("0.05".to_owned()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Two lineages in us-east-1 (one named with markup), a copy in eu-west-1, nothing in
/// ap-south-1; the dry run retires the oldest image and reports an orphan snapshot.
fn estate() -> Estate {
    let mut old = image("ami-0001", "us-east-1", "i-web", 3, ImageState::Available);
    old.deprecation_time = Some(NOW - Duration::days(1));
    let mut evil = image("ami-0003", "us-east-1", "i-evil", 1, ImageState::Available);
    evil.name = EVIL.to_owned();
    let mut copy = image("ami-0004", "eu-west-1", "i-web", 1, ImageState::Available);
    copy.source = Some((ImageId::new("ami-0002"), Region::new("us-east-1")));
    let images = vec![
        (old, vec![]),
        (
            image("ami-0002", "us-east-1", "i-web", 1, ImageState::Available),
            vec![grantee()],
        ),
        (evil, vec![grantee()]),
        (copy, vec![]),
    ];
    let east = Region::new("us-east-1");
    let mut plan = RunReport::new("cleanup", true, NOW);
    plan.push(
        &east,
        "ami-0001",
        None,
        Outcome::Planned,
        "would deregister: past retention",
    );
    plan.push(&east, "ami-0002", None, Outcome::Kept, "newest <b>kept</b>");
    plan.push(
        &east,
        "ami-0003",
        None,
        Outcome::Deferred,
        "not yet checked",
    );
    plan.push(
        &east,
        "snap-orphan",
        None,
        Outcome::Planned,
        "would delete orphan",
    );
    plan.push(
        &Region::new("eu-west-1"),
        "ami-0004",
        None,
        Outcome::Kept,
        "newest",
    );
    let config = config();
    build(Inputs {
        config: &config,
        regions: vec!["us-east-1".into(), "eu-west-1".into(), "ap-south-1".into()],
        images,
        plan: &plan,
        notes: vec!["deleted images are not shown".into()],
        now: NOW,
    })
}

#[test]
fn the_builder_groups_by_region_and_lineage_and_copies_the_plan() {
    let e = estate();
    let names: Vec<&str> = e.regions.iter().map(|r| r.region.as_str()).collect();
    assert_eq!(names, ["us-east-1", "eu-west-1", "ap-south-1"]);
    let east = &e.regions[0];
    let lineages: Vec<&str> = east.lineages.iter().map(|l| l.lineage.as_str()).collect();
    assert_eq!(lineages, ["i-evil/daily", "i-web/daily"]);
    let web = &east.lineages[1];
    let ids: Vec<&str> = web.images.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["ami-0001", "ami-0002"], "oldest first");
    assert_eq!(web.gib, 16);
    assert!((web.monthly_cost_usd - 0.8).abs() < 1e-9);
    assert_eq!(
        web.images[0].next_cleanup,
        NextCleanup::Retire("would deregister: past retention".into())
    );
    assert_eq!(
        web.images[1].next_cleanup,
        NextCleanup::Keep("newest <b>kept</b>".into())
    );
    assert_eq!(
        east.lineages[0].images[0].next_cleanup,
        NextCleanup::Other {
            outcome: "deferred".into(),
            reason: "not yet checked".into()
        }
    );
    assert_eq!(web.planned().count(), 1);
    // the line about a snapshot is the region's, not an image's
    assert_eq!(east.other_plan.len(), 1);
    assert_eq!(east.other_plan[0].subject, "snap-orphan");
    // the copy knows where it came from; a copy is in its source's lineage
    let west = &e.regions[1];
    assert_eq!(west.lineages[0].lineage, "i-web/daily");
    assert_eq!(
        west.lineages[0].images[0].origin,
        Origin::Copied {
            from_region: "us-east-1".into(),
            from_image: "ami-0002".into()
        }
    );
    assert_eq!(
        west.lineages[0].images[0].next_cleanup,
        NextCleanup::Keep("newest".into())
    );
    assert!(e.regions[2].lineages.is_empty());
    // shares per grantee
    assert_eq!(e.shares.len(), 1);
    assert_eq!(e.shares[0].grantee, "222233334444");
    assert_eq!(e.shares[0].images.len(), 2);
}

#[test]
fn the_page_has_a_section_per_region_and_lineage_with_svg_charts() {
    let html = render_html(&estate());
    assert!(html.starts_with("<!DOCTYPE html>"));
    for region in ["us-east-1", "eu-west-1", "ap-south-1"] {
        assert!(
            html.contains(&format!("<section class=\"region\" id=\"region-{region}\"")),
            "{region}"
        );
    }
    assert_eq!(html.matches("<article class=\"lineage\"").count(), 3);
    assert!(html.contains("data-lineage=\"i-web/daily\""));
    // a timeline per lineage, a storage chart per region with images
    assert_eq!(html.matches("<svg class=\"timeline\"").count(), 3);
    assert_eq!(html.matches("<svg class=\"storage\"").count(), 2);
    // a copy is a diamond, an image made here a circle; the retired image is marked so
    assert!(html.contains("<polygon class=\"mark kept\""));
    assert!(html.contains("<circle class=\"mark retire\""));
    assert!(html.contains("<line class=\"deprecation\""));
    assert!(html.contains("<li class=\"planned\">ami-0001: would deregister: past retention</li>"));
    assert!(html.contains("id=\"shares\""));
    assert!(html.contains("data-grantee=\"222233334444\""));
    assert!(html.contains("No images of this deployment in this region."));
    assert!(html.contains("deleted images are not shown"));
    // self-contained: no script, no external resource
    for banned in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(banned), "{banned}");
    }
}

#[test]
fn every_user_controlled_text_is_escaped() {
    let html = render_html(&estate());
    assert!(!html.contains(EVIL));
    assert!(!html.contains("<b>kept</b>"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
    assert!(html.contains("newest &lt;b&gt;kept&lt;/b&gt;"));
    assert_eq!(html::escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
}

#[test]
fn an_empty_estate_still_renders_every_region_and_says_nothing_is_shared() {
    let config = config();
    let plan = RunReport::new("cleanup", true, NOW);
    let e = build(Inputs {
        config: &config,
        regions: vec!["us-east-1".into()],
        images: Vec::new(),
        plan: &plan,
        notes: Vec::new(),
        now: NOW,
    });
    let html = render_html(&e);
    assert!(html.contains("id=\"region-us-east-1\""));
    assert!(html.contains("No image of this deployment is shared."));
    assert!(!html.contains("<svg"));
}

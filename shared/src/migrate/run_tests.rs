//! The apply step against the in-memory fakes: a zone move that stops at a pending image
//! and continues on the next run without a second image or launch; the source stopped
//! only after the new instance is healthy; the Elastic IP moved only when asked.

use std::sync::Arc;
use std::time::Duration;

use time::macros::datetime;
use time::OffsetDateTime;

use super::plan::{plan, Inputs};
use super::run::{apply, Waits};
use super::tests::{home_network, source};
use super::*;
use crate::config::Config;
use crate::context::Context;
use crate::fake::{FakeCloud, FakeFleet};
use crate::model::InstanceId;
use crate::report::{Outcome, RunReport};
use crate::tags::key;

const NOW: OffsetDateTime = datetime!(2026-12-02 03:00 UTC);
const QUICK: Waits = Waits {
    poll: Duration::from_millis(1),
    max: Duration::from_millis(20),
};

struct World {
    cloud: FakeCloud,
    fleet: FakeFleet,
    ctx: Context,
    source: SourceInstance,
}

/// A running instance of the `daily` schedule in us-east-1a, known to both fakes.
fn world() -> World {
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(NOW);
    let id = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily"), ("Name", "web-1")]);
    let mut src = source();
    src.id = id;
    let fleet = FakeFleet::new();
    fleet.add_source(src.clone());
    fleet.add_network(home_network());
    let config =
        Config::from_lookup(|k| (k == "AMI_LIFECYCLE_REGIONS").then(|| "us-east-1".to_owned()))
            .unwrap_or_else(|e| panic!("{e}"));
    let ctx = Context::new(Arc::new(cloud.clone()), config);
    World {
        cloud,
        fleet,
        ctx,
        source: src,
    }
}

fn planned(w: &World, target: &Target) -> MigrationPlan {
    let net = w.fleet.state().networks[&w.source.region].clone();
    let inputs = Inputs {
        network: &net,
        proven_images: &[],
        target_key: None,
        deployment: "ami-lifecycle",
        now: NOW,
    };
    plan(&w.source, target, &inputs).unwrap_or_else(|e| panic!("{e}"))
}

fn has(report: &RunReport, outcome: Outcome, text: &str) -> bool {
    report
        .items
        .iter()
        .any(|i| i.outcome == outcome && i.reason.contains(text))
}

#[tokio::test]
async fn a_zone_move_resumes_after_a_pending_image_and_never_launches_twice() {
    let w = world();
    let p = planned(&w, &Target::zone("us-east-1b"));

    // First run: the image is made (sealed, tagged with the token) and still pending.
    let first = apply(&w.ctx, &w.fleet, &p, QUICK, NOW).await;
    assert!(has(&first, Outcome::Created, "for the move"), "{first:#?}");
    assert!(
        has(&first, Outcome::Deferred, "still pending"),
        "{first:#?}"
    );
    assert!(first.incomplete.is_some());
    assert_eq!(
        w.fleet.state().run_calls,
        0,
        "nothing launched before the image is available"
    );
    let images = w.cloud.live_images("us-east-1");
    assert_eq!(images.len(), 1);
    let image = &images[0];
    assert_eq!(image.tag(MIGRATION), Some(p.token.as_str()));
    assert_eq!(
        image.tag(key::SCHEDULE),
        Some("daily"),
        "the source's lineage"
    );
    assert_eq!(image.tag(key::CONSISTENCY), Some("rebooted"));

    // Second run: the same image is found again, the instance launched and healthy.
    w.cloud.complete_pending();
    let second = apply(&w.ctx, &w.fleet, &p, QUICK, NOW).await;
    assert!(
        has(&second, Outcome::AlreadyExisted, "earlier run"),
        "{second:#?}"
    );
    assert!(has(&second, Outcome::Created, "launched"), "{second:#?}");
    assert!(has(&second, Outcome::Migrated, "moved"), "{second:#?}");
    assert!(second.incomplete.is_none(), "{second:#?}");
    assert_eq!(w.cloud.live_images("us-east-1").len(), 1, "no second image");
    let launched: Vec<InstanceId> = w
        .fleet
        .state()
        .launched
        .values()
        .map(|(_, id, _)| id.clone())
        .collect();
    assert_eq!(launched.len(), 1);
    let (_, _, launch) = w.fleet.state().launched.values().next().cloned().unwrap();
    assert_eq!(launch.image, image.id);
    assert_eq!(launch.spec.subnet.id, "subnet-b");

    // Third run: everything is found again; RunInstances is not even called.
    let third = apply(&w.ctx, &w.fleet, &p, QUICK, NOW).await;
    assert!(
        has(
            &third,
            Outcome::AlreadyExisted,
            "launched by an earlier run"
        ),
        "{third:#?}"
    );
    assert_eq!(w.fleet.state().run_calls, 1);
    assert_eq!(w.fleet.state().launched.len(), 1);
    assert!(
        w.fleet.state().stopped.is_empty(),
        "the source keeps running without --stop-source"
    );
    assert!(
        has(&third, Outcome::Kept, "stays with"),
        "the Elastic IP is reported: {third:#?}"
    );
}

#[tokio::test]
async fn the_source_is_stopped_only_once_the_new_instance_is_healthy() {
    let w = world();
    let target = Target {
        stop_source: true,
        move_eip: true,
        ..Target::zone("us-east-1b")
    };
    let p = planned(&w, &target);
    w.fleet.state().healthy_after = None;
    let _ = apply(&w.ctx, &w.fleet, &p, QUICK, NOW).await;
    w.cloud.complete_pending();
    let unhealthy = apply(&w.ctx, &w.fleet, &p, QUICK, NOW).await;
    assert!(
        has(&unhealthy, Outcome::Deferred, "not healthy"),
        "{unhealthy:#?}"
    );
    assert!(
        w.fleet.state().stopped.is_empty(),
        "never stopped before both checks pass"
    );
    assert_eq!(
        w.fleet.state().addresses["eipalloc-1"],
        w.source.id,
        "the address stays"
    );

    w.fleet.state().healthy_after = Some(0);
    let healthy = apply(&w.ctx, &w.fleet, &p, QUICK, NOW).await;
    assert!(healthy.incomplete.is_none(), "{healthy:#?}");
    assert_eq!(w.fleet.state().stopped, vec![w.source.id.clone()]);
    let new = w
        .fleet
        .state()
        .launched
        .values()
        .next()
        .map(|(_, id, _)| id.clone())
        .unwrap();
    assert_eq!(
        w.fleet.state().addresses["eipalloc-1"],
        new,
        "moved with --move-eip"
    );
    assert_eq!(w.fleet.state().run_calls, 1);
}

#[tokio::test]
async fn a_reused_image_is_launched_without_making_another() {
    let w = world();
    let mut p = planned(&w, &Target::zone("us-east-1b"));
    let id = w.cloud.add_image(
        "us-east-1",
        "ami-lifecycle/web/daily/1",
        NOW,
        &[("ami-lifecycle:consistency", "rebooted")],
    );
    p.image = ImageStep::Reuse {
        image: id.clone(),
        age_seconds: 600,
        consistency: "rebooted".into(),
    };
    let report = apply(&w.ctx, &w.fleet, &p, QUICK, NOW).await;
    assert!(report.incomplete.is_none(), "{report:#?}");
    assert_eq!(w.cloud.calls("CreateImage"), 0);
    let (_, _, launch) = w.fleet.state().launched.values().next().cloned().unwrap();
    assert_eq!(launch.image, id);
}

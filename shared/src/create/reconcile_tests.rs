//! The reconcile against the fake: a lost schedule event caught up, a missed slot and a
//! stale lineage reported, a lost continuation recovered.

use std::sync::Arc;

use time::macros::datetime;
use time::OffsetDateTime;

use super::reconcile;
use crate::config::Config;
use crate::context::Context;
use crate::fake::FakeCloud;
use crate::model::{InstanceId, InstanceState};
use crate::report::{Outcome, RunReport};
use crate::tags::key;

fn ctx(cloud: &FakeCloud, extra: &[(&str, &str)]) -> Context {
    let mut pairs = vec![
        ("AWS_REGION", "us-east-1"),
        ("SCHEDULE_EXPRESSIONS", "daily=cron(0 3 * * ? *)"),
    ];
    pairs.extend_from_slice(extra);
    let config = Config::from_lookup(|k| {
        pairs
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    Context::new(Arc::new(cloud.clone()), config)
}

fn outcome(report: &RunReport, instance: &InstanceId) -> Vec<Outcome> {
    report
        .items
        .iter()
        .filter(|i| i.subject == instance.as_str())
        .map(|i| i.outcome)
        .collect()
}

#[tokio::test]
async fn a_lost_schedule_event_is_caught_up_within_the_window_and_reported_missed_after() {
    let cloud = FakeCloud::new("123456789012");
    let web = cloud.add_instance(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), (key::REBOOT, "false")],
    );
    let c = ctx(&cloud, &[]);

    // 03:00's event never arrived; at 03:30 the reconcile makes the image.
    let at = datetime!(2026-11-24 03:30 UTC);
    cloud.set_now(at);
    let report = reconcile(&c, at).await;
    assert_eq!(outcome(&report, &web), vec![Outcome::Created], "{report:?}");
    assert!(report.items[0].reason.contains("caught up"));
    // Again: nothing to do.
    let again = reconcile(&c, at + time::Duration::minutes(60)).await;
    assert_eq!(outcome(&again, &web), vec![Outcome::AlreadyExisted]);

    // A new instance opted in, but the next reconcile runs past the window (12 h): missed.
    let db = cloud.add_instance(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), (key::REBOOT, "false")],
    );
    // (and one launched only at 19:00: it cannot have missed 03:00)
    let fresh = cloud.add_instance(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), (key::REBOOT, "false")],
    );
    if let Some(i) = cloud.state().instances.get_mut(&fresh) {
        i.launched = Some(datetime!(2026-11-24 19:00 UTC));
    }
    let late = datetime!(2026-11-24 20:00 UTC);
    let report = reconcile(&c, late).await;
    assert!(outcome(&report, &fresh).is_empty(), "{report:?}");
    let missed: Vec<_> = report
        .items
        .iter()
        .filter(|i| i.subject == db.as_str())
        .collect();
    assert_eq!(missed.len(), 1, "{report:?}");
    assert_eq!(missed[0].outcome, Outcome::Missed);
    assert!(missed[0]
        .reason
        .contains("amictl create-images --schedule daily --slot 2026-11-24T03:00:00Z"));
    assert_eq!(
        cloud.live_images("us-east-1").len(),
        1,
        "nothing made out of the window"
    );
}

#[tokio::test]
async fn a_lineage_without_a_recent_image_is_reported_stale() {
    let cloud = FakeCloud::new("123456789012");
    let web = cloud.add_instance(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), (key::REBOOT, "false")],
    );
    let old_slot = "2026-11-21T03:00:00Z";
    cloud.add_image(
        "us-east-1",
        "ami-lifecycle/web/daily/old",
        datetime!(2026-11-21 03:00 UTC),
        &[
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_INSTANCE, web.as_str()),
            (key::SCHEDULE, "daily"),
            (key::SLOT, old_slot),
        ],
    );
    // Past the catch-up window of today's slot: today's is missed, and the lineage is stale.
    let now: OffsetDateTime = datetime!(2026-11-24 20:00 UTC);
    let report = reconcile(&ctx(&cloud, &[]), now).await;
    let got = outcome(&report, &web);
    assert!(got.contains(&Outcome::Missed), "{report:?}");
    assert!(got.contains(&Outcome::Stale), "{report:?}");
    // With a recent image it is not.
    let fresh = reconcile(&ctx(&cloud, &[("STALE_GRACE", "10000")]), now).await;
    assert!(!outcome(&fresh, &web).contains(&Outcome::Stale));
}

#[tokio::test]
async fn a_lost_continuation_is_recovered_by_the_reconcile() {
    // A reboot group of two, one at a time: the first wave ran, its continuation was lost.
    let cloud = FakeCloud::new("123456789012").without_continuations();
    let group = [(key::SCHEDULE, "daily"), (key::REBOOT_GROUP, "db")];
    let a = cloud.add_instance("us-east-1", &group);
    let b = cloud.add_instance("us-east-1", &group);
    let c = ctx(&cloud, &[]);
    let slot = datetime!(2026-11-24 03:00 UTC);
    cloud.set_now(slot);
    let first = crate::create::run_wave(
        &c,
        crate::create::CreateRequest::Schedule(crate::create::ScheduleRun::new(
            "daily".into(),
            slot,
        )),
        slot,
    )
    .await;
    assert!(first.more, "{:?}", first.report);
    assert_eq!(cloud.live_images("us-east-1").len(), 1);
    // The rebooted member is running again; at 03:40 the reconcile runs the next wave.
    for id in [&a, &b] {
        cloud.set_instance_state(id, InstanceState::Running);
    }
    let later = datetime!(2026-11-24 03:40 UTC);
    cloud.set_now(later);
    cloud.complete_pending();
    let report = reconcile(&c, later).await;
    assert!(
        report
            .items
            .iter()
            .any(|i| i.outcome == Outcome::Created && i.reason.contains("caught up")),
        "{report:?}"
    );
    assert_eq!(cloud.live_images("us-east-1").len(), 2);
}

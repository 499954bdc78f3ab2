//! Quiesced images against the fake: the order freeze → CreateImage (no reboot) → thaw,
//! the thaw that always follows a freeze, the fallbacks, the deadline, Windows, groups.

use std::sync::Arc;
use std::time::Duration;

use time::macros::datetime;
use time::OffsetDateTime;

use super::{run, CreateRequest, ScheduleRun};
use crate::config::Config;
use crate::context::Context;
use crate::deadline::Deadline;
use crate::fake::{FakeAgent, FakeCloud, FakeOutcome};
use crate::model::InstanceId;
use crate::report::{Outcome, RunReport};
use crate::tags::key;

const SLOT: OffsetDateTime = datetime!(2026-11-22 03:00 UTC);

fn ctx(cloud: &FakeCloud, pairs: &[(&str, &str)]) -> Context {
    let mut all = vec![("AWS_REGION", "us-east-1")];
    all.extend_from_slice(pairs);
    let config = Config::from_lookup(|k| {
        all.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    Context::new(Arc::new(cloud.clone()), config)
}

fn daily() -> CreateRequest {
    CreateRequest::Schedule(ScheduleRun::new("daily".into(), SLOT))
}

fn quiesced(cloud: &FakeCloud, extra: &[(&str, &str)]) -> InstanceId {
    let mut tags = vec![
        (key::SCHEDULE, "daily"),
        (key::METHOD, "quiesce"),
        (key::FREEZE_MOUNTS, "/data"),
    ];
    tags.extend_from_slice(extra);
    cloud.add_instance("us-east-1", &tags)
}

fn reason_of<'a>(report: &'a RunReport, id: &InstanceId) -> Vec<(Outcome, &'a str)> {
    report
        .items
        .iter()
        .filter(|i| i.subject == id.as_str())
        .map(|i| (i.outcome, i.reason.as_str()))
        .collect()
}

fn timeline(cloud: &FakeCloud) -> Vec<String> {
    cloud.state().timeline.clone()
}

#[tokio::test]
async fn a_quiesced_instance_is_frozen_imaged_without_a_reboot_then_thawed() {
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(SLOT);
    let id = quiesced(&cloud, &[]);
    cloud.set_agent(&id, FakeAgent::default());
    let report = run(&ctx(&cloud, &[]), daily(), SLOT).await;
    let items = reason_of(&report, &id);
    assert_eq!(items.len(), 1, "{report:?}");
    assert_eq!(items[0].0, Outcome::Created);
    assert!(
        items[0].1.contains("application-consistent") && items[0].1.contains("frozen"),
        "{}",
        items[0].1
    );
    let t = timeline(&cloud);
    assert_eq!(t.len(), 3, "{t:?}");
    assert!(
        t[0].starts_with("SendCommand ami-lifecycle-quiesce-linux freeze"),
        "{t:?}"
    );
    assert_eq!(t[1], format!("CreateImage {id} no-reboot=true"));
    assert!(
        t[2].starts_with("SendCommand ami-lifecycle-quiesce-linux thaw"),
        "{t:?}"
    );
    let s = cloud.state();
    assert!(s.reboots.is_empty(), "never rebooted");
    let image = s.images.values().next().cloned();
    assert_eq!(
        image.as_ref().and_then(|i| i.tag(key::CONSISTENCY)),
        Some("application-consistent")
    );
}

#[tokio::test]
async fn a_failed_freeze_is_thawed_and_falls_back_as_configured() {
    for (fallback, want) in [
        ("skip", None),
        ("no-reboot", Some("crash-consistent")),
        ("reboot", Some("rebooted")),
    ] {
        let cloud = FakeCloud::new("123456789012");
        cloud.set_now(SLOT);
        let id = quiesced(&cloud, &[]);
        cloud.set_agent(
            &id,
            FakeAgent {
                freeze: FakeOutcome::Fail("pre-freeze.d/10-db exited 1".into()),
                ..FakeAgent::default()
            },
        );
        let report = run(
            &ctx(&cloud, &[("QUIESCE_FALLBACK", fallback)]),
            daily(),
            SLOT,
        )
        .await;
        let t = timeline(&cloud);
        assert!(
            t.iter().any(|l| l.contains(" thaw ")),
            "{fallback}: thaw sent after a failed freeze: {t:?}"
        );
        let items = reason_of(&report, &id);
        assert!(
            items.iter().any(|(_, r)| r.contains("10-db exited 1")),
            "{fallback}: {items:?}"
        );
        let s = cloud.state();
        let got = s
            .images
            .values()
            .next()
            .and_then(|i| i.tag(key::CONSISTENCY).map(str::to_owned));
        assert_eq!(got.as_deref(), want, "{fallback}: {items:?}");
        assert_eq!(
            s.reboots.len(),
            usize::from(fallback == "reboot"),
            "{fallback}"
        );
        if fallback == "skip" {
            assert_eq!(items[0].0, Outcome::Skipped);
        }
    }
}

#[tokio::test]
async fn an_instance_without_an_online_agent_is_never_frozen() {
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(SLOT);
    let unmanaged = quiesced(&cloud, &[]);
    let offline = quiesced(&cloud, &[]);
    cloud.set_agent(
        &offline,
        FakeAgent {
            online: false,
            ..FakeAgent::default()
        },
    );
    let report = run(
        &ctx(&cloud, &[("QUIESCE_FALLBACK", "no-reboot")]),
        daily(),
        SLOT,
    )
    .await;
    assert!(
        timeline(&cloud)
            .iter()
            .all(|l| !l.starts_with("SendCommand")),
        "{:?}",
        timeline(&cloud)
    );
    assert!(reason_of(&report, &unmanaged)[0]
        .1
        .contains("not managed by Systems Manager"));
    assert!(reason_of(&report, &offline)[0].1.contains("not online"));
    assert_eq!(
        cloud.state().images.len(),
        2,
        "both imaged without a reboot (the fallback)"
    );
}

#[tokio::test]
async fn a_freeze_that_never_finishes_times_out_and_is_thawed() {
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(SLOT);
    let id = quiesced(&cloud, &[]);
    cloud.set_agent(
        &id,
        FakeAgent {
            freeze: FakeOutcome::Hang,
            ..FakeAgent::default()
        },
    );
    let started = std::time::Instant::now();
    let report = run(
        &ctx(
            &cloud,
            &[("QUIESCE_TIMEOUT", "5"), ("QUIESCE_MAX_FREEZE", "30")],
        ),
        daily(),
        SLOT,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "bounded by QUIESCE_TIMEOUT"
    );
    let items = reason_of(&report, &id);
    assert!(items[0].1.contains("QUIESCE_TIMEOUT=5"), "{items:?}");
    assert!(timeline(&cloud)
        .last()
        .is_some_and(|l| l.contains(" thaw ")));
    assert!(cloud.state().images.is_empty());
}

#[tokio::test]
async fn a_failed_create_image_after_the_freeze_still_thaws() {
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(SLOT);
    let id = quiesced(&cloud, &[]);
    cloud.set_agent(&id, FakeAgent::default());
    cloud.fail("CreateImage", Some(id.as_str()), "InternalError", None);
    let report = run(&ctx(&cloud, &[]), daily(), SLOT).await;
    assert_eq!(
        reason_of(&report, &id)[0].0,
        Outcome::Deferred,
        "{report:?}"
    );
    let t = timeline(&cloud);
    assert!(
        t[0].contains(" freeze ") && t[1].starts_with("CreateImage") && t[2].contains(" thaw "),
        "{t:?}"
    );
}

#[tokio::test]
async fn too_close_to_the_deadline_nothing_is_frozen() {
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(SLOT);
    let id = quiesced(&cloud, &[]);
    cloud.set_agent(&id, FakeAgent::default());
    let ctx = ctx(&cloud, &[]).with_deadline(Deadline::after(
        Duration::from_secs(60),
        Duration::from_secs(5),
    ));
    let report = run(&ctx, daily(), SLOT).await;
    let items = reason_of(&report, &id);
    assert_eq!(items[0].0, Outcome::Deferred);
    assert!(items[0].1.contains("not frozen"), "{items:?}");
    assert!(timeline(&cloud).is_empty(), "no freeze sent");
}

#[tokio::test]
async fn windows_is_quiesced_through_vss_and_a_missing_vss_is_named() {
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(SLOT);
    let id = quiesced(&cloud, &[]);
    cloud.set_agent(
        &id,
        FakeAgent {
            platform: "Windows".into(),
            freeze: FakeOutcome::Fail("VSS components are not installed".into()),
            ..FakeAgent::default()
        },
    );
    let report = run(&ctx(&cloud, &[]), daily(), SLOT).await;
    let t = timeline(&cloud);
    assert!(
        t[0].starts_with("SendCommand AWSEC2-ManageVssIO freeze"),
        "{t:?}"
    );
    assert!(
        t[1].starts_with("SendCommand AWSEC2-ManageVssIO thaw"),
        "{t:?}"
    );
    assert!(
        reason_of(&report, &id)[0].1.contains("AWS VSS components"),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_reboot_group_may_mix_methods() {
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(SLOT);
    let q = quiesced(&cloud, &[(key::REBOOT_GROUP, "db")]);
    cloud.set_agent(&q, FakeAgent::default());
    let r1 = cloud.add_instance(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), (key::REBOOT_GROUP, "db")],
    );
    let r2 = cloud.add_instance(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), (key::REBOOT_GROUP, "db")],
    );
    let report = run(&ctx(&cloud, &[("REBOOT_CONCURRENCY", "1")]), daily(), SLOT).await;
    // The quiesced member never reboots: it is imaged at once, outside the waves; one of
    // the two rebooting members goes first, the other waits.
    assert_eq!(reason_of(&report, &q)[0].0, Outcome::Created, "{report:?}");
    let outcomes: Vec<Outcome> = [&r1, &r2]
        .iter()
        .map(|id| reason_of(&report, id)[0].0)
        .collect();
    assert!(
        outcomes.contains(&Outcome::Created) && outcomes.contains(&Outcome::Deferred),
        "{outcomes:?}"
    );
    assert_eq!(cloud.state().reboots.len(), 1);
}

#[test]
fn the_method_tag_and_reboot_false_agree_or_are_refused() {
    use crate::tags::{InstanceSettings, Method};
    let settings = |pairs: &[(&str, &str)]| {
        InstanceSettings::from_tags(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    };
    assert!(settings(&[(key::REBOOT, "false")]).is_ok_and(|s| s.method == Method::NoReboot));
    assert!(
        settings(&[(key::METHOD, "quiesce"), (key::REBOOT, "false")])
            .is_ok_and(|s| s.method == Method::Quiesce)
    );
    assert!(settings(&[(key::METHOD, "reboot"), (key::REBOOT, "false")])
        .is_err_and(|e| e.to_string().contains("contradicts")));
    assert!(settings(&[(key::METHOD, "snapshot")]).is_err());
    assert!(settings(&[(key::FREEZE_MOUNTS, "/data,/")])
        .is_err_and(|e| e.to_string().contains("root filesystem")));
    assert!(settings(&[(key::FREEZE_MOUNTS, "/data;rm -rf")]).is_err());
    assert!(settings(&[(key::FREEZE_MOUNTS, "/data, /var/lib/mysql/")])
        .is_ok_and(|s| s.freeze_mounts == ["/data", "/var/lib/mysql"]));
}

#[tokio::test]
async fn a_failed_vss_thaw_takes_back_the_application_consistent_claim() {
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(SLOT);
    let id = quiesced(&cloud, &[]);
    cloud.set_agent(
        &id,
        FakeAgent {
            platform: "Windows".into(),
            thaw: FakeOutcome::Fail("Thaw came more than 10 seconds after the Freeze".into()),
            ..FakeAgent::default()
        },
    );
    let report = run(&ctx(&cloud, &[]), daily(), SLOT).await;
    let items = reason_of(&report, &id);
    assert!(
        items
            .iter()
            .any(|(o, r)| *o == Outcome::Failed && r.contains("tagged crash-consistent")),
        "{items:?}"
    );
    let s = cloud.state();
    let image = s.images.values().next().cloned();
    assert_eq!(
        image.as_ref().and_then(|i| i.tag(key::CONSISTENCY)),
        Some("crash-consistent")
    );
    for snap in image.iter().flat_map(|i| i.snapshot_ids()) {
        assert_eq!(
            s.snapshots
                .get(snap)
                .and_then(|x| x.tags.get(key::CONSISTENCY))
                .map(String::as_str),
            Some("crash-consistent")
        );
    }
    // The image line says how long the freeze held.
    assert!(
        items
            .iter()
            .any(|(o, r)| *o == Outcome::Created && r.contains("held frozen")),
        "{items:?}"
    );
}

//! publish against the in-memory fake: events in through [`runner::handle`], rollback and
//! unpin as `amictl` calls them.
use std::sync::Arc;

use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

use super::rollback::{rollback, unpin, Target};
use super::{latest_parameter, pin_parameter, Publish};
use crate::config::Config;
use crate::context::Context;
use crate::fake::FakeCloud;
use crate::model::{ImageId, InstanceId, Region};
use crate::runner::{self, RequestError};
use crate::tags::key;
use crate::time_util::slot_compact;

const NOW: OffsetDateTime = datetime!(2026-11-26 04:00 UTC);
const LATEST: &str = "/ami-lifecycle/ami-lifecycle/web-1/latest";

struct World {
    cloud: FakeCloud,
    ctx: Context,
    instance: InstanceId,
}

fn world(extra: &[(&str, &str)]) -> World {
    let cloud = FakeCloud::new("123456789012");
    let instance = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily"), ("Name", "web-1")]);
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let config = Config::from_lookup(move |k| match k {
        "AWS_REGION" => Some("us-east-1".to_owned()),
        "REPLICA_REGIONS" => Some("eu-west-1".to_owned()),
        _ => extra.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.clone()),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let ctx = Context::new(Arc::new(cloud.clone()), config);
    World {
        cloud,
        ctx,
        instance,
    }
}

impl World {
    /// The lineage's image of `day` (slot 03:00 that day) in `region`, as create-image
    /// (or, in another region, replicate) would have made it.
    fn image(&self, region: &str, day: u8, consistency: &str) -> ImageId {
        let slot = datetime!(2026-11-20 03:00 UTC) + time::Duration::days(i64::from(day) - 20);
        let slot_text = crate::time_util::rfc3339(slot);
        let name = format!(
            "ami-lifecycle/{}/daily/{}",
            self.instance,
            slot_compact(slot)
        );
        let mut tags = vec![
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_INSTANCE, self.instance.as_str()),
            (key::SCHEDULE, "daily"),
            (key::SLOT, slot_text.as_str()),
            (key::CONSISTENCY, consistency),
        ];
        let source;
        if region != "us-east-1" {
            source = self.image("us-east-1", day, consistency).to_string();
            tags.push((key::SOURCE_IMAGE, source.as_str()));
            tags.push((key::SOURCE_REGION, "us-east-1"));
        }
        self.cloud
            .add_image(region, &name, slot + time::Duration::minutes(5), &tags)
    }

    async fn event(&self, image: &ImageId, region: &str) -> Result<Value, RequestError> {
        let event = json!({
            "version": "0", "id": "e-1", "detail-type": "EC2 AMI State Change",
            "source": "aws.ec2", "account": "123456789012", "time": "2026-11-26T03:10:00Z",
            "region": region, "resources": [format!("arn:aws:ec2:{region}::image/{image}")],
            "detail": {"RequestId": "r-1", "ImageId": image.as_str(), "State": "available", "ErrorMessage": ""}
        });
        runner::handle::<Publish>(&self.ctx, event, NOW).await
    }

    async fn reconcile(&self) -> Result<Value, RequestError> {
        runner::handle::<Publish>(&self.ctx, json!({}), NOW).await
    }

    fn latest(&self, region: &str) -> Option<String> {
        self.cloud.parameter(region, LATEST)
    }
}

#[tokio::test]
async fn a_new_image_is_published_in_its_region_labelled_with_its_slot() -> Result<(), RequestError>
{
    let w = world(&[]);
    let image = w.image("us-east-1", 25, "rebooted");
    let detail = w.event(&image, "us-east-1").await?;
    assert_eq!(detail["counts"]["published"], 1, "{detail}");
    assert_eq!(w.latest("us-east-1").as_deref(), Some(image.as_str()));
    let history = w.cloud.parameter_history("us-east-1", LATEST);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].labels, ["slot-20261125T0300Z"]);
    let description = history[0].description.clone().unwrap_or_default();
    assert!(
        description.contains(image.as_str())
            && description.contains("us-east-1")
            && description.contains("web-1"),
        "{description}"
    );
    Ok(())
}

#[tokio::test]
async fn a_replica_is_published_in_its_own_region_with_its_own_id() -> Result<(), RequestError> {
    let w = world(&[]);
    let replica = w.image("eu-west-1", 25, "rebooted");
    let detail = w.event(&replica, "eu-west-1").await?;
    assert_eq!(detail["counts"]["published"], 1, "{detail}");
    assert_eq!(w.latest("eu-west-1").as_deref(), Some(replica.as_str()));
    // The event names one region: the source region is left to its own event.
    assert_eq!(w.latest("us-east-1"), None);
    let all = w.reconcile().await?;
    assert_eq!(all["counts"]["published"], 1, "{all}");
    assert_ne!(w.latest("us-east-1"), w.latest("eu-west-1"));
    Ok(())
}

#[tokio::test]
async fn late_and_duplicate_events_never_move_the_parameter_back() -> Result<(), RequestError> {
    let w = world(&[]);
    let newer = w.image("eu-west-1", 25, "rebooted");
    w.event(&newer, "eu-west-1").await?;
    // The replica of an older slot completes late.
    let older = w.image("eu-west-1", 24, "rebooted");
    let late = w.event(&older, "eu-west-1").await?;
    assert_eq!(late["counts"]["unchanged"], 1, "{late}");
    let again = w.event(&newer, "eu-west-1").await?;
    assert_eq!(again["counts"]["unchanged"], 1, "{again}");
    assert_eq!(w.latest("eu-west-1").as_deref(), Some(newer.as_str()));
    assert_eq!(
        w.cloud.parameter_history("eu-west-1", LATEST).len(),
        1,
        "one version, whatever the events"
    );
    Ok(())
}

#[tokio::test]
async fn crash_consistent_images_are_published_only_when_asked() -> Result<(), RequestError> {
    let w = world(&[]);
    let consistent = w.image("us-east-1", 24, "rebooted");
    let crashy = w.image("us-east-1", 25, "crash-consistent");
    w.reconcile().await?;
    assert_eq!(w.latest("us-east-1").as_deref(), Some(consistent.as_str()));
    let opted = world(&[("PUBLISH_CONSISTENCY", "rebooted,crash-consistent")]);
    let w2 = World {
        cloud: w.cloud.clone(),
        ctx: Context::new(Arc::new(w.cloud.clone()), (*opted.ctx.config).clone()),
        instance: w.instance.clone(),
    };
    w2.reconcile().await?;
    assert_eq!(w2.latest("us-east-1").as_deref(), Some(crashy.as_str()));
    Ok(())
}

#[tokio::test]
async fn a_name_collision_publishes_neither_and_is_alarmed() -> Result<(), RequestError> {
    let w = world(&[]);
    let other = w.cloud.add_instance(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), (key::LINEAGE_NAME, "web-1")],
    );
    w.image("us-east-1", 25, "rebooted");
    let detail = w.reconcile().await?;
    assert_eq!(detail["counts"]["name-collision"], 2, "{detail}");
    assert_eq!(w.latest("us-east-1"), None);
    let text = detail.to_string();
    assert!(
        text.contains(w.instance.as_str()) && text.contains(other.as_str()),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn rollback_pins_holds_new_images_and_unpin_publishes_the_newest() -> Result<(), RequestError>
{
    let w = world(&[]);
    let template = w.cloud.add_launch_template(
        "us-east-1",
        "web",
        "ami-00000000000000001",
        &[(key::TRACK, "web-1"), (key::TRACK_DEFAULT, "true")],
    );
    let day5 = w.image("us-east-1", 25, "rebooted");
    let day6 = w.image("us-east-1", 26, "rebooted");
    w.reconcile().await?;
    assert_eq!(w.latest("us-east-1").as_deref(), Some(day6.as_str()));
    let t = w
        .cloud
        .launch_template("us-east-1", &template)
        .unwrap_or_default();
    assert_eq!(
        t.versions.last().and_then(|v| v.1.clone()).as_deref(),
        Some(day6.as_str())
    );
    assert_eq!(t.default_version, 2);

    // The dry run changes nothing and says what would change.
    let regions = [Region::new("us-east-1")];
    let dry_config = Config {
        dry_run: true,
        ..(*w.ctx.config).clone()
    };
    let dry = Context::new(Arc::new(w.cloud.clone()), dry_config);
    let plan = rollback(&dry, "web-1", Target::Previous, &regions, NOW).await;
    assert!(
        plan.items
            .iter()
            .any(|i| i.reason.contains(&format!("would pin web-1 to {day5}"))),
        "{plan:?}"
    );
    assert_eq!(w.latest("us-east-1").as_deref(), Some(day6.as_str()));

    let done = rollback(&w.ctx, "web-1", Target::Previous, &regions, NOW).await;
    assert_eq!(done.counts().get("rolled-back"), Some(&1), "{done:?}");
    assert_eq!(w.latest("us-east-1").as_deref(), Some(day5.as_str()));
    assert_eq!(
        w.cloud
            .parameter("us-east-1", &pin_parameter("ami-lifecycle", "web-1"))
            .as_deref(),
        Some(day5.as_str())
    );
    let t = w
        .cloud
        .launch_template("us-east-1", &template)
        .unwrap_or_default();
    assert_eq!(
        t.versions.len(),
        3,
        "a new version with the old image: none deleted"
    );
    assert_eq!(
        t.versions.last().and_then(|v| v.1.clone()).as_deref(),
        Some(day5.as_str())
    );
    assert_eq!(t.default_version, 3);

    // Day 7: a new image is held while pinned, whatever runs.
    let day7 = w.image("us-east-1", 27, "rebooted");
    let held = w.event(&day7, "us-east-1").await?;
    assert_eq!(held["counts"]["held"], 1, "{held}");
    assert_eq!(w.latest("us-east-1").as_deref(), Some(day5.as_str()));

    let lifted = unpin(&w.ctx, "web-1", &regions, NOW).await;
    assert_eq!(lifted.counts().get("unpinned"), Some(&1), "{lifted:?}");
    assert_eq!(w.latest("us-east-1").as_deref(), Some(day7.as_str()));
    assert_eq!(
        w.cloud
            .parameter("us-east-1", &pin_parameter("ami-lifecycle", "web-1")),
        None
    );
    Ok(())
}

#[tokio::test]
async fn rollback_to_a_slot_that_is_not_there_changes_nothing() {
    let w = world(&[]);
    let day6 = w.image("us-east-1", 26, "rebooted");
    let _ = w.reconcile().await;
    let report = rollback(
        &w.ctx,
        "web-1",
        Target::Slot(datetime!(2026-11-01 03:00 UTC)),
        &[Region::new("us-east-1")],
        NOW,
    )
    .await;
    assert_eq!(report.counts().get("refused"), Some(&1), "{report:?}");
    assert!(
        report.items[0].reason.contains("20261101T0300Z")
            && report.items[0].reason.contains("20261126T0300Z")
    );
    assert_eq!(w.latest("us-east-1").as_deref(), Some(day6.as_str()));
}

#[tokio::test]
async fn a_template_without_track_default_gets_a_version_but_keeps_its_default(
) -> Result<(), RequestError> {
    let w = world(&[]);
    let template = w.cloud.add_launch_template(
        "us-east-1",
        "web",
        "ami-00000000000000001",
        &[(key::TRACK, "web-1")],
    );
    let follows = w.cloud.add_launch_template(
        "us-east-1",
        "web-ssm",
        &format!("resolve:ssm:{LATEST}"),
        &[(key::TRACK, "web-1")],
    );
    let unknown = w.cloud.add_launch_template(
        "us-east-1",
        "db",
        "ami-00000000000000001",
        &[(key::TRACK, "db-9")],
    );
    let image = w.image("us-east-1", 25, "rebooted");
    let detail = w.reconcile().await?;
    let t = w
        .cloud
        .launch_template("us-east-1", &template)
        .unwrap_or_default();
    assert_eq!(t.default_version, 1);
    assert_eq!(
        t.versions.last().and_then(|v| v.1.clone()).as_deref(),
        Some(image.as_str())
    );
    assert!(t
        .versions
        .last()
        .and_then(|v| v.2.clone())
        .is_some_and(|d| d.starts_with("ami-lifecycle")));
    assert_eq!(
        w.cloud
            .launch_template("us-east-1", &follows)
            .map(|t| t.versions.len()),
        Some(1)
    );
    assert_eq!(
        w.cloud
            .launch_template("us-east-1", &unknown)
            .map(|t| t.versions.len()),
        Some(1)
    );
    assert!(detail.to_string().contains("db-9"), "{detail}");
    // Again: nothing new.
    w.reconcile().await?;
    assert_eq!(
        w.cloud
            .launch_template("us-east-1", &template)
            .map(|t| t.versions.len()),
        Some(2)
    );
    Ok(())
}

#[tokio::test]
async fn the_labelled_oldest_of_100_versions_is_unlabelled_before_writing(
) -> Result<(), RequestError> {
    let w = world(&[]);
    let mut last = None;
    for day in 0..101u8 {
        // 101 daily images from 2026-08-17: each reconcile publishes the next one.
        let slot = datetime!(2026-08-17 03:00 UTC) + time::Duration::days(i64::from(day));
        let name = format!("ami-lifecycle/{}/daily/{}", w.instance, slot_compact(slot));
        let slot_text = crate::time_util::rfc3339(slot);
        last = Some(w.cloud.add_image(
            "us-east-1",
            &name,
            slot,
            &[
                (key::MANAGED_BY, "ami-lifecycle"),
                (key::SOURCE_INSTANCE, w.instance.as_str()),
                (key::SCHEDULE, "daily"),
                (key::SLOT, slot_text.as_str()),
                (key::CONSISTENCY, "rebooted"),
            ],
        ));
        let detail = runner::handle::<Publish>(
            &w.ctx,
            json!({"lineage": "web-1"}),
            slot + time::Duration::hours(1),
        )
        .await?;
        assert_eq!(detail["counts"]["published"], 1, "day {day}: {detail}");
    }
    let history = w.cloud.parameter_history("us-east-1", LATEST);
    assert_eq!(history.len(), 100);
    assert_eq!(w.latest("us-east-1"), last.map(|i| i.to_string()));
    // Version 1 (labelled) made way for version 101: SSM refuses a new version while the
    // oldest of 100 is labelled, so the write succeeded only because its label was moved off.
    assert_eq!(history.first().map(|v| v.version), Some(2));
    assert_eq!(
        history.last().map(|v| v.labels.clone()),
        Some(vec!["slot-20261125T0300Z".to_owned()])
    );
    assert_eq!(w.cloud.calls("UnlabelParameterVersion"), 1);
    Ok(())
}

#[tokio::test]
async fn direct_payloads_are_checked() {
    let w = world(&[]);
    let bad = runner::handle::<Publish>(&w.ctx, json!({"lineage": "web 1"}), NOW).await;
    assert!(bad.is_err_and(|e| e.to_string().contains("lineage")));
    let unknown = runner::handle::<Publish>(&w.ctx, json!({"image": "ami-1"}), NOW).await;
    assert!(unknown.is_err_and(|e| e.to_string().contains("unknown key")));
    assert_eq!(
        latest_parameter("prod", "web-1"),
        "/ami-lifecycle/prod/web-1/latest"
    );
}

#[tokio::test]
async fn cleanup_keeps_the_published_history_and_says_so() -> Result<(), RequestError> {
    let w = world(&[("RETAIN", "count=1"), ("PUBLISHED_KEEP", "2")]);
    let mut days = Vec::new();
    for day in 22..=25u8 {
        days.push(w.image("us-east-1", day, "rebooted"));
        w.reconcile().await?;
    }
    w.cloud.add_launch_template(
        "us-east-1",
        "pinned-old",
        days[0].as_str(),
        &[(key::TRACK, "web-1")],
    );
    let cleanup = runner::handle::<crate::runner::Cleanup>(&w.ctx, json!({}), NOW).await?;
    let text = cleanup.to_string();
    let alive = |id: &ImageId| {
        w.cloud
            .image(id)
            .is_some_and(|i| i.state != crate::model::ImageState::Deregistered)
    };
    // Day 25 is the current value (and the newest); day 24 the other of the last two
    // values PUBLISHED_KEEP=2 keeps; day 22 the tracked template's default version's image.
    assert!(
        alive(&days[3]) && alive(&days[2]) && alive(&days[0]),
        "{text}"
    );
    assert!(
        !alive(&days[1]),
        "day 23 is past retention and no longer published: {text}"
    );
    assert!(
        text.contains("one of its last 2 values (PUBLISHED_KEEP)"),
        "{text}"
    );
    assert!(
        text.contains("tracked launch template pinned-old"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn a_template_waits_where_its_lineage_has_no_image_yet() -> Result<(), RequestError> {
    let w = world(&[]);
    w.image("us-east-1", 25, "rebooted");
    let template = w.cloud.add_launch_template(
        "eu-west-1",
        "web",
        "ami-00000000000000001",
        &[(key::TRACK, "web-1")],
    );
    let detail = w.reconcile().await?;
    assert_eq!(detail["counts"].get("refused"), None, "{detail}");
    assert!(
        detail
            .to_string()
            .contains("nothing to publish in eu-west-1"),
        "{detail}"
    );
    assert_eq!(
        w.cloud
            .launch_template("eu-west-1", &template)
            .map(|t| t.versions.len()),
        Some(1)
    );
    Ok(())
}

#[tokio::test]
async fn a_version_written_earlier_without_its_label_is_labelled_by_the_next_run(
) -> Result<(), RequestError> {
    use crate::ports::NewParameterVersion;
    let w = world(&[]);
    let image = w.image("us-east-1", 25, "rebooted");
    // What an unconfirmed run leaves once SSM has validated the value: no label.
    w.cloud.set_now(NOW);
    let params = crate::ports::Cloud::parameters(&w.cloud, &Region::new("us-east-1"));
    params
        .put(&NewParameterVersion {
            name: LATEST.into(),
            value: image.to_string(),
            description: "x".into(),
            data_type: "aws:ec2:image",
        })
        .await
        .map_err(|e| RequestError::invalid("test", e.to_string()))?;
    let detail = w.reconcile().await?;
    assert_eq!(detail["counts"]["published"], 1, "{detail}");
    assert_eq!(
        w.cloud.parameter_history("us-east-1", LATEST)[0].labels,
        ["slot-20261125T0300Z"]
    );
    let again = w.reconcile().await?;
    assert_eq!(again["counts"]["unchanged"], 1, "{again}");
    Ok(())
}

#[tokio::test]
async fn an_unknown_lineage_and_a_text_parameter_are_refused_by_name() -> Result<(), RequestError> {
    use crate::ports::NewParameterVersion;
    let w = world(&[]);
    w.image("us-east-1", 25, "rebooted");
    let unknown = runner::handle::<Publish>(&w.ctx, json!({"lineage": "web-2"}), NOW).await?;
    assert_eq!(unknown["counts"]["refused"], 1, "{unknown}");
    assert!(unknown.to_string().contains("\\\"web-2\\\""), "{unknown}");
    let params = crate::ports::Cloud::parameters(&w.cloud, &Region::new("us-east-1"));
    params
        .put(&NewParameterVersion {
            name: LATEST.into(),
            value: "ami-0123".into(),
            description: "by hand".into(),
            data_type: "text",
        })
        .await
        .map_err(|e| RequestError::invalid("test", e.to_string()))?;
    let detail = w.reconcile().await?;
    assert_eq!(detail["counts"]["refused"], 1, "{detail}");
    assert!(detail.to_string().contains("delete-parameter"), "{detail}");
    assert_eq!(
        w.latest("us-east-1").as_deref(),
        Some("ami-0123"),
        "nothing written"
    );
    Ok(())
}

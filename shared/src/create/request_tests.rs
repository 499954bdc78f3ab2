//! Runner tests: AWS-shaped events in through [`handle`] (what the Lambda function runs),
//! reports out, against the in-memory fake.

use std::sync::Arc;

use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

use super::CreateImage;
use crate::config::Config;
use crate::context::Context;
use crate::fake::FakeCloud;
use crate::model::{ImageId, InstanceId};
use crate::runner::{self, RequestError};
use crate::tags::key;

const NOW: OffsetDateTime = datetime!(2026-11-22 03:00:07 UTC);

async fn handle(ctx: &Context, payload: Value, now: OffsetDateTime) -> Result<Value, RequestError> {
    runner::handle::<CreateImage>(ctx, payload, now).await
}

fn fixture(dir: &str, name: &str) -> Value {
    let path = format!("{}/{dir}/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Fixtures shared by the suite, and the repository's own.
fn shared(name: &str) -> Value {
    fixture("../tests/fixtures/events", name)
}
fn repo(name: &str) -> Value {
    fixture("../tests/fixtures/events", name)
}

fn ctx(cloud: &FakeCloud) -> Context {
    let config = Config::from_lookup(|k| (k == "AWS_REGION").then(|| "us-east-1".to_owned()))
        .unwrap_or_else(|e| panic!("{e}"));
    Context::new(Arc::new(cloud.clone()), config)
}

fn daily_instance(cloud: &FakeCloud) -> InstanceId {
    cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")])
}

#[tokio::test]
async fn a_scheduled_event_images_its_schedule_at_the_event_slot() -> Result<(), RequestError> {
    // GIVEN a daily and a weekly instance
    let cloud = FakeCloud::new("123456789012");
    let daily = daily_instance(&cloud);
    cloud.add_instance("us-east-1", &[(key::SCHEDULE, "weekly")]);
    // WHEN the daily rule fires (rule ami-lifecycle-daily, 03:00)
    let detail = handle(&ctx(&cloud), shared("scheduled-event.json"), NOW).await?;
    // THEN the daily instance is imaged for the 03:00 slot, and the report is published
    assert_eq!(detail["counts"]["created"], 1, "{detail}");
    let images = cloud.live_images("us-east-1");
    assert_eq!(images.len(), 1);
    assert_eq!(
        images[0].name,
        format!("ami-lifecycle/{daily}/daily/20261122T0300Z")
    );
    assert_eq!(cloud.state().reports.len(), 1);
    // AND the weekly rule (ami-lifecycle-schedule-weekly) images only the weekly one
    // (its event fires at 04:00: delivered then)
    let weekly_now = NOW + time::Duration::hours(1);
    let detail = handle(
        &ctx(&cloud),
        repo("scheduled-event-schedule-weekly.json"),
        weekly_now,
    )
    .await?;
    assert_eq!(detail["counts"]["created"], 1, "{detail}");
    assert_eq!(cloud.live_images("us-east-1").len(), 2);
    Ok(())
}

#[tokio::test]
async fn slots_in_the_future_are_refused_at_the_edge_and_old_ones_need_force() {
    let cloud = FakeCloud::new("123456789012");
    daily_instance(&cloud);
    let c = ctx(&cloud);
    // A scheduled event (or a forged one) for 2036: refused, nothing imaged.
    let mut future = shared("scheduled-event.json");
    future["time"] = json!("2036-11-22T03:00:00Z");
    let direct_future = json!({"schedule": "daily", "slot": "2036-11-22T03:00:00Z", "force": true});
    let old = json!({"schedule": "daily", "slot": "2026-11-20T03:00:00Z"});
    let continuation = json!({"continue": {"schedule": "daily", "slot": "2026-11-22T03:00:00Z"}});
    for (payload, words) in [
        (future, "is in the future"),
        (direct_future, "is in the future"),
        (old.clone(), "older than SLOT_WINDOW=60 min"),
        (continuation, "only from the continuation queue"),
    ] {
        match handle(&c, payload.clone(), NOW).await {
            Err(e) => assert!(e.to_string().contains(words), "{payload}: {e}"),
            Ok(detail) => panic!("{payload} was accepted: {detail}"),
        }
    }
    assert!(cloud.live_images("us-east-1").is_empty());
    assert_eq!(cloud.calls("CreateImage"), 0);

    // An operator's `force` may image a past slot.
    let mut forced = old;
    forced["force"] = json!(true);
    let detail = handle(&c, forced, NOW)
        .await
        .unwrap_or_else(|e| panic!("forced: {e}"));
    assert_eq!(detail["counts"]["created"], 1, "{detail}");
}

#[tokio::test]
async fn a_duplicated_scheduled_event_makes_no_second_image() -> Result<(), RequestError> {
    let cloud = FakeCloud::new("123456789012");
    daily_instance(&cloud);
    let event = shared("scheduled-event.json");
    handle(&ctx(&cloud), event.clone(), NOW).await?;
    let detail = handle(&ctx(&cloud), event, NOW + time::Duration::minutes(3)).await?;
    assert_eq!(detail["counts"]["already-existed"], 1, "{detail}");
    assert_eq!(cloud.live_images("us-east-1").len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_rule_of_no_known_schedule_is_reported_and_creates_nothing() -> Result<(), RequestError> {
    let cloud = FakeCloud::new("123456789012");
    daily_instance(&cloud);
    let mut other = shared("scheduled-event.json");
    other["resources"] = json!(["arn:aws:events:us-east-1:123456789012:rule/someone-else-daily"]);
    let detail = handle(&ctx(&cloud), other, NOW).await?;
    assert_eq!(detail["failed"], 1);
    let reason = detail["items"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("someone-else-daily") && reason.contains("SCHEDULES=daily,weekly"),
        "{reason}"
    );

    let mut hourly = shared("scheduled-event.json");
    hourly["resources"] =
        json!(["arn:aws:events:us-east-1:123456789012:rule/ami-lifecycle-schedule-hourly"]);
    let detail = handle(&ctx(&cloud), hourly, NOW).await?;
    let reason = detail["items"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("\"hourly\"") && reason.contains("SCHEDULES=daily,weekly"),
        "{reason}"
    );
    assert_eq!(cloud.calls("CreateImage"), 0);
    Ok(())
}

#[tokio::test]
async fn continuations_arrive_as_an_sqs_batch() -> Result<(), RequestError> {
    // GIVEN a reboot group of two: the first invocation images one and continues
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(NOW);
    for _ in 0..2 {
        cloud.add_instance(
            "us-east-1",
            &[(key::SCHEDULE, "daily"), (key::REBOOT_GROUP, "db")],
        );
    }
    let detail = handle(
        &ctx(&cloud),
        json!({"schedule": "daily", "slot": "2026-11-22T03:00:00Z"}),
        NOW,
    )
    .await?;
    assert_eq!(
        (
            detail["counts"]["created"].as_u64(),
            detail["counts"]["deferred"].as_u64()
        ),
        (Some(1), Some(1)),
        "{detail}"
    );
    let (body, _) = cloud
        .state()
        .continuations
        .first()
        .cloned()
        .unwrap_or_default();
    // WHEN the queue delivers the continuation a minute later
    let sqs = json!({"Records": [{"messageId": "1", "eventSource": "aws:sqs", "body": body.to_string()}]});
    let detail = handle(&ctx(&cloud), sqs, NOW + time::Duration::minutes(1)).await?;
    // THEN the second member is imaged for the same slot
    assert_eq!(
        (
            detail["counts"]["created"].as_u64(),
            detail["counts"]["already-existed"].as_u64()
        ),
        (Some(1), Some(1)),
        "{detail}"
    );
    assert!(cloud
        .live_images("us-east-1")
        .iter()
        .all(|i| i.name.ends_with("/daily/20261122T0300Z")));
    Ok(())
}

#[tokio::test]
async fn a_failed_ami_state_change_is_reported_and_cleaned_up_only_when_ours(
) -> Result<(), RequestError> {
    let cloud = FakeCloud::new("123456789012");
    let inst = daily_instance(&cloud);
    handle(&ctx(&cloud), shared("scheduled-event.json"), NOW).await?;
    let img = cloud.live_images("us-east-1")[0].id.clone();
    cloud.edit_image(&img, |i| i.state = crate::model::ImageState::Failed);
    let mut event = shared("ami-state-change-failed.json");
    event["region"] = json!("us-east-1");
    event["detail"]["ImageId"] = json!(img.as_str());
    let detail = handle(&ctx(&cloud), event.clone(), NOW).await?;
    assert_eq!(detail["items"][0]["subject"], inst.as_str(), "{detail}");
    assert!(detail["items"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("Description of failure"));
    assert_eq!(detail["counts"]["deleted"], 2, "image and its snapshot");

    // a failed image that is not ours is left alone
    let foreign: ImageId = cloud.add_image("us-east-1", "theirs", NOW, &[]);
    cloud.edit_image(&foreign, |i| i.state = crate::model::ImageState::Failed);
    event["detail"]["ImageId"] = json!(foreign.as_str());
    let detail = handle(&ctx(&cloud), event, NOW).await?;
    assert_eq!(detail["counts"]["skipped"], 1, "{detail}");
    assert_eq!(cloud.calls("DeregisterImage"), 1);
    Ok(())
}

#[tokio::test]
async fn an_available_state_change_is_skipped() -> Result<(), RequestError> {
    let cloud = FakeCloud::new("123456789012");
    let detail = handle(&ctx(&cloud), shared("ami-state-change-available.json"), NOW).await?;
    assert_eq!(detail["counts"]["skipped"], 1, "{detail}");
    assert_eq!(
        cloud
            .state()
            .calls
            .iter()
            .filter(|(_, op)| op != "PutEvents")
            .count(),
        0
    );
    Ok(())
}

#[tokio::test]
async fn malformed_and_foreign_events_are_errors_that_change_nothing() {
    let cloud = FakeCloud::new("123456789012");
    daily_instance(&cloud);
    let mut bad_time = shared("scheduled-event.json");
    bad_time["time"] = json!("yesterday");
    for (payload, words) in [
        (bad_time, "time"),
        (json!([1, 2]), "expected a JSON object"),
        (
            json!({"Records": [{"body": "not json"}]}),
            "(at Records[0].body)",
        ),
        (
            json!({"Records": [{"body": "{\"continue\": {\"schedule\": \"daily\"}}"}]}),
            "Records[0].body: continue.slot is missing",
        ),
        (
            json!({"schedule": "daily", "slot": "soon"}),
            "not an RFC 3339 time",
        ),
        (shared("tag-change-on-image.json"), "for share"),
    ] {
        match handle(&ctx(&cloud), payload.clone(), NOW).await {
            Ok(v) => panic!("{payload} accepted: {v}"),
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains(words) && text.contains("not retryable"),
                    "{text:?} lacks {words:?}"
                );
                assert!(
                    e.error_type().starts_with("NotRetryable."),
                    "{}",
                    e.error_type()
                );
            }
        }
    }
    assert_eq!(cloud.state().calls.len(), 0, "nothing was called");
}

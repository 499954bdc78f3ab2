//! Runner tests: replicate's events in through [`runner::handle`] (what the Lambda
//! function runs), against the in-memory fake.
use std::sync::Arc;

use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

use super::Replicate;
use crate::config::Config;
use crate::context::Context;
use crate::fake::FakeCloud;
use crate::runner::{self, RequestError};
use crate::tags::key;

const NOW: OffsetDateTime = datetime!(2026-11-22 03:05 UTC);

async fn handle(ctx: &Context, payload: Value, now: OffsetDateTime) -> Result<Value, RequestError> {
    runner::handle::<Replicate>(ctx, payload, now).await
}

fn fixture(dir: &str, name: &str) -> Value {
    let _ = dir; // every fixture lives in the repository's tests/fixtures/events
    let path = format!(
        "{}/../tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn setup() -> (FakeCloud, Context, String) {
    let cloud = FakeCloud::new("123456789012");
    cloud.add_key("eu-west-1", Some("alias/replicas"), false);
    let src = cloud.add_image(
        "us-east-1",
        "ami-lifecycle/i-1/daily/20261122T0300Z",
        NOW,
        &[(key::MANAGED_BY, "ami-lifecycle")],
    );
    let config = Config::from_lookup(|k| match k {
        "AWS_REGION" => Some("us-east-1".to_owned()),
        "REPLICA_REGIONS" => Some("eu-west-1".to_owned()),
        "REPLICA_KMS_KEYS" => Some("eu-west-1=alias/replicas".to_owned()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let ctx = Context::new(Arc::new(cloud.clone()), config);
    (cloud, ctx, src.to_string())
}

#[tokio::test]
async fn an_available_event_copies_and_publishes_the_report() -> Result<(), RequestError> {
    let (cloud, ctx, src) = setup();
    let mut event = fixture("shared", "ami-state-change-available.json");
    event["region"] = json!("us-east-1");
    event["detail"]["ImageId"] = json!(src);
    let detail = handle(&ctx, event.clone(), NOW).await?;
    assert_eq!(detail["counts"]["copied"], 1, "{detail}");
    assert_eq!(detail["function"], "replicate");
    assert_eq!(cloud.state().reports.len(), 1, "the report is published");
    // The same event again: already there.
    let again = handle(&ctx, event, NOW).await?;
    assert_eq!(again["counts"]["already-existed"], 1, "{again}");
    assert_eq!(cloud.calls("CopyImage"), 1);
    Ok(())
}

#[tokio::test]
async fn the_reconcile_schedule_and_an_empty_payload_reconcile() -> Result<(), RequestError> {
    let (cloud, ctx, _) = setup();
    let mut schedule = fixture("shared", "scheduled-event.json");
    schedule["resources"] =
        json!(["arn:aws:events:us-east-1:123456789012:rule/ami-lifecycle-replicate-reconcile"]);
    let detail = handle(&ctx, schedule, NOW).await?;
    assert_eq!(detail["counts"]["copied"], 1, "{detail}");
    let direct = handle(&ctx, json!({}), NOW).await?;
    assert_eq!(direct["counts"]["already-existed"], 1, "{direct}");
    assert_eq!(cloud.calls("CopyImage"), 1);
    Ok(())
}

#[tokio::test]
async fn a_replicas_event_copies_nothing() -> Result<(), RequestError> {
    let (cloud, ctx, src) = setup();
    let replica = cloud.add_image(
        "ap-southeast-2",
        "copy",
        NOW,
        &[
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_IMAGE, &src),
        ],
    );
    let mut event = fixture("tests", "ami-state-change-available-replica.json");
    event["detail"]["ImageId"] = json!(replica.to_string());
    let detail = handle(&ctx, event, NOW).await?;
    assert_eq!(detail["counts"]["skipped"], 1, "{detail}");
    assert_eq!(cloud.calls("CopyImage"), 0);
    Ok(())
}

#[tokio::test]
async fn malformed_events_are_errors_that_change_nothing() {
    let (cloud, ctx, _) = setup();
    let mut bad = fixture("shared", "ami-state-change-available.json");
    bad["detail"]["ImageId"] = json!(42);
    let other_rule = fixture("shared", "scheduled-event.json");
    for (event, words) in [
        (bad, "detail.ImageId"),
        (other_rule, "ami-lifecycle-replicate-reconcile"),
        (json!({"image": "i-123"}), "not an image id"),
        (json!([1]), "JSON object"),
    ] {
        match handle(&ctx, event, NOW).await {
            Ok(v) => panic!("accepted: {v}"),
            Err(e) => {
                let message = e.to_string();
                assert!(message.contains(words), "{message} lacks {words}");
                assert!(!e.is_retryable());
                assert!(
                    e.error_type().starts_with("NotRetryable."),
                    "{}",
                    e.error_type()
                );
            }
        }
    }
    assert_eq!(cloud.calls("CopyImage"), 0);
    assert!(cloud.state().reports.is_empty());
}

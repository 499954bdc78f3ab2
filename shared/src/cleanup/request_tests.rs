//! Runner tests: cleanup's events in through [`runner::handle`] (what the Lambda function
//! runs), against the in-memory fake.
use std::sync::Arc;

use serde_json::Value;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::Cleanup;
use crate::config::Config;
use crate::context::Context;
use crate::fake::FakeCloud;
use crate::model::ImageState;
use crate::runner::{self, RequestError};
use crate::tags::key;

const NOW: OffsetDateTime = datetime!(2026-11-22 05:30 UTC);

async fn handle(ctx: &Context, payload: Value, now: OffsetDateTime) -> Result<Value, RequestError> {
    runner::handle::<Cleanup>(ctx, payload, now).await
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// GIVEN a lineage of three daily images with RETAIN=count=1.
fn setup() -> (FakeCloud, Context) {
    let cloud = FakeCloud::new("123456789012");
    for d in 0..3 {
        let slot = crate::time_util::rfc3339(NOW - Duration::days(d));
        cloud.add_image(
            "us-east-1",
            &format!("web-{d}"),
            NOW - Duration::days(d),
            &[
                (key::MANAGED_BY, "ami-lifecycle"),
                (key::SOURCE_INSTANCE, "i-1"),
                (key::SCHEDULE, "daily"),
                (key::SLOT, &slot),
            ],
        );
    }
    let config = Config::from_lookup(|k| match k {
        "AWS_REGION" => Some("us-east-1".to_owned()),
        "RETAIN" => Some("count=1".to_owned()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let ctx = Context::new(Arc::new(cloud.clone()), config);
    (cloud, ctx)
}

#[tokio::test]
async fn the_schedule_retires_what_retention_no_longer_keeps() -> Result<(), RequestError> {
    let (cloud, ctx) = setup();
    let detail = handle(&ctx, fixture("scheduled-event-cleanup.json"), NOW).await?;
    assert_eq!(cloud.live_images("us-east-1").len(), 1);
    assert_eq!(detail["counts"]["deleted"], 2);
    assert_eq!(detail["metrics"]["gib_freed"], 16.0);
    // Three 8 GiB images before, one after: what stays stored and what it costs a month.
    assert_eq!(detail["metrics"]["gib_stored"], 8.0);
    let price = ctx.config.price_per_gib_month;
    assert_eq!(detail["metrics"]["monthly_cost_usd"], 8.0 * price);
    assert_eq!(cloud.state().reports.len(), 1, "the report is published");
    Ok(())
}

#[tokio::test]
async fn a_direct_dry_run_plans_without_changing_anything() -> Result<(), RequestError> {
    let (cloud, ctx) = setup();
    let detail = handle(
        &ctx,
        serde_json::json!({"dry_run": true, "regions": ["us-east-1"]}),
        NOW,
    )
    .await?;
    assert_eq!(cloud.live_images("us-east-1").len(), 3);
    assert_eq!(detail["counts"]["planned"], 2);
    assert_eq!(detail["dry_run"], true);
    assert_eq!(
        detail["metrics"]["gib_stored"], 24.0,
        "a dry run stores what was there"
    );
    assert_eq!(
        cloud.calls("DeregisterImage") + cloud.calls("EnableImageDeprecation"),
        0
    );
    Ok(())
}

#[tokio::test]
async fn malformed_or_foreign_events_are_refused_and_change_nothing() {
    let (cloud, ctx) = setup();
    for (payload, words) in [
        (
            serde_json::json!({"dry_run": "yes"}),
            "dry_run=\"yes\" is not true or false",
        ),
        (
            serde_json::json!({"regions": ["mars-1"]}),
            "region \"mars-1\" is not managed",
        ),
        (
            serde_json::json!({"force": true}),
            "unknown field \"force\"",
        ),
        (serde_json::json!([1]), "expected a JSON object"),
        (
            fixture("ami-state-change-deregistered.json"),
            "not on an AMI state change",
        ),
    ] {
        match handle(&ctx, payload.clone(), NOW).await {
            Ok(v) => panic!("{payload} accepted: {v}"),
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains(words) && text.contains("nothing was done"),
                    "{text}"
                );
                assert!(
                    e.error_type().starts_with("NotRetryable."),
                    "{}",
                    e.error_type()
                );
            }
        }
    }
    assert!(cloud
        .live_images("us-east-1")
        .iter()
        .all(|i| i.state == ImageState::Available));
    assert_eq!(cloud.live_images("us-east-1").len(), 3);
    assert_eq!(cloud.calls("DescribeImages"), 0);
}

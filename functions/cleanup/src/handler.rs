//! The cleanup handler: event → [`CleanupRequest`] → [`ami_core::cleanup::run`] → report.
//!
//! Accepted events: the cleanup schedule (`Scheduled Event`, rule `<deployment>-cleanup`)
//! and direct invocations `{}`, `{"dry_run": true}`, `{"regions": ["eu-west-1"]}`.
//! Anything else is refused with a non-retryable error that says what was wrong; nothing
//! is done for it.

use std::sync::Arc;

use ami_core::cleanup::{run, CleanupRequest};
use ami_core::context::Context;
use ami_core::events::{parse_trigger, EventError, Trigger};
use ami_core::model::Region;
use lambda_runtime::Diagnostic;
use serde_json::Value;
use time::OffsetDateTime;

/// Why an invocation was refused. Never retryable: the same event would fail again.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("cleanup: {0}; nothing was done")]
    Event(#[from] EventError),
    #[error("cleanup: {0}; nothing was done")]
    Request(String),
}

impl HandlerError {
    pub fn into_diagnostic(self) -> Diagnostic {
        let error_type = match &self {
            Self::Event(_) => "NonRetryable.UnreadableEvent",
            Self::Request(_) => "NonRetryable.BadRequest",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: self.to_string(),
        }
    }
}

/// Handles one invocation; returns the report's event detail.
pub async fn handle(
    ctx: &Context,
    payload: Value,
    now: OffsetDateTime,
) -> Result<Value, HandlerError> {
    let (request, ctx) = match parse_trigger(&payload)? {
        Trigger::Schedule { .. } => (CleanupRequest::default(), ctx.clone()),
        Trigger::Direct(body) => direct(ctx, &body)?,
        Trigger::AmiState { image, .. } => {
            return Err(HandlerError::Request(format!(
                "cleanup runs on its schedule or a direct invocation, not on an AMI state change ({image})"
            )))
        }
        Trigger::ImageTags { image, .. } => {
            return Err(HandlerError::Request(format!(
                "cleanup runs on its schedule or a direct invocation, not on a tag change ({image})"
            )))
        }
    };
    let report = run(&ctx, request, now).await;
    Ok(ctx.finish(report).await.event_detail())
}

/// `{"dry_run": bool, "regions": [...]}`, both optional; regions must be ones the suite touches.
fn direct(ctx: &Context, body: &Value) -> Result<(CleanupRequest, Context), HandlerError> {
    let bad = |m: String| {
        HandlerError::Request(format!(
            "{m}. Accepted: {{\"dry_run\": true, \"regions\": [\"eu-west-1\"]}}"
        ))
    };
    let Some(fields) = body.as_object() else {
        return Err(bad("expected a JSON object".to_owned()));
    };
    let mut request = CleanupRequest::default();
    let mut ctx = ctx.clone();
    for (k, v) in fields {
        match k.as_str() {
            "dry_run" => {
                let dry = v
                    .as_bool()
                    .ok_or_else(|| bad(format!("dry_run={v} is not true or false")))?;
                if dry && !ctx.config.dry_run {
                    let mut config = (*ctx.config).clone();
                    config.dry_run = true;
                    ctx.config = Arc::new(config);
                }
            }
            "regions" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| bad(format!("regions={v} is not a list")))?;
                let known = ctx.config.all_regions();
                for r in list {
                    let name = r
                        .as_str()
                        .ok_or_else(|| bad(format!("region {r} is not a string")))?;
                    let region = Region::new(name);
                    if !known.contains(&region) {
                        let names: Vec<&str> = known.iter().map(Region::as_str).collect();
                        return Err(bad(format!(
                            "region {name:?} is not managed by this deployment (AMI_LIFECYCLE_REGIONS and REPLICA_REGIONS: {})",
                            names.join(",")
                        )));
                    }
                    request.regions.push(region);
                }
            }
            other => return Err(bad(format!("unknown field {other:?}"))),
        }
    }
    Ok((request, ctx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_core::config::Config;
    use ami_core::fake::FakeCloud;
    use ami_core::model::ImageState;
    use ami_core::tags::key;
    use time::macros::datetime;
    use time::Duration;

    const NOW: OffsetDateTime = datetime!(2026-11-22 05:30 UTC);

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../tests/fixtures/events/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// GIVEN a lineage of three daily images with RETAIN=count=1.
    fn setup() -> (FakeCloud, Context) {
        let cloud = FakeCloud::new("123456789012");
        for d in 0..3 {
            let slot = ami_core::time_util::rfc3339(NOW - Duration::days(d));
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
    async fn the_schedule_retires_what_retention_no_longer_keeps() -> Result<(), HandlerError> {
        let (cloud, ctx) = setup();
        let detail = handle(&ctx, fixture("scheduled-event-cleanup.json"), NOW).await?;
        assert_eq!(cloud.live_images("us-east-1").len(), 1);
        assert_eq!(detail["counts"]["deleted"], 2);
        assert_eq!(detail["metrics"]["gib_freed"], 16.0);
        assert_eq!(cloud.state().reports.len(), 1, "the report is published");
        Ok(())
    }

    #[tokio::test]
    async fn a_direct_dry_run_plans_without_changing_anything() -> Result<(), HandlerError> {
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
                    assert!(e.into_diagnostic().error_type.starts_with("NonRetryable"));
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
}

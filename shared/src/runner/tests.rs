//! The dispatch table and the error contract, against the in-memory fake.

use std::sync::Arc;

use serde_json::json;
use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::fake::FakeCloud;

const NOW: OffsetDateTime = datetime!(2026-11-22 05:30 UTC);

fn ctx(cloud: &FakeCloud) -> Context {
    Context::new(Arc::new(cloud.clone()), Config::for_region("us-east-1"))
}

#[tokio::test]
async fn every_runner_is_invoked_by_its_name_and_reports_under_it() -> Result<(), RequestError> {
    // GIVEN an empty cloud
    let cloud = FakeCloud::new("123456789012");
    for name in RUNNERS {
        // WHEN each runner is invoked with a direct payload it accepts
        let payload = match name {
            "create-image" => json!({"schedule": "daily"}),
            _ => json!({}),
        };
        let detail = invoke(name, &ctx(&cloud), payload, NOW).await?;
        // THEN the report is that runner's, and it was published
        assert_eq!(detail["function"], name, "{detail}");
    }
    assert_eq!(cloud.state().reports.len(), RUNNERS.len());
    Ok(())
}

#[tokio::test]
async fn an_unknown_name_is_refused_and_calls_nothing() {
    let cloud = FakeCloud::new("123456789012");
    let e = invoke("create-images", &ctx(&cloud), json!({}), NOW)
        .await
        .err()
        .map(|e| (e.error_type(), e.to_string()));
    let (error_type, message) = e.unwrap_or_default();
    assert_eq!(error_type, "NotRetryable.UnknownRunner");
    assert!(
        message.contains("\"create-images\"") && message.contains("create-image, replicate"),
        "{message}"
    );
    assert!(cloud.state().calls.is_empty());
}

#[tokio::test]
async fn one_payload_means_the_same_to_every_runner_that_refuses_it() {
    // An SQS continuation batch is create-image's only: the others refuse it, unread.
    let cloud = FakeCloud::new("123456789012");
    let batch = json!({"Records": [{"body": "{}"}]});
    for name in ["replicate", "cleanup", "share"] {
        match invoke(name, &ctx(&cloud), batch.clone(), NOW).await {
            Ok(v) => panic!("{name} accepted a continuation batch: {v}"),
            Err(e) => {
                assert_eq!(e.runner(), name);
                assert_eq!(e.error_type(), "NotRetryable.UnexpectedEvent", "{e}");
                assert!(e.to_string().contains("continuation"), "{e}");
            }
        }
    }
    // An unreadable event is the same error type for all four.
    for name in RUNNERS {
        let e = invoke(name, &ctx(&cloud), json!("not an object"), NOW)
            .await
            .err()
            .map(|e| e.error_type());
        assert_eq!(e.as_deref(), Some("NotRetryable.UnreadableEvent"), "{name}");
    }
    assert!(cloud.state().calls.is_empty(), "nothing was called");
}

#[test]
fn error_types_follow_one_scheme_and_keep_their_source() {
    use std::error::Error as _;
    let unreadable = RequestError::unreadable(
        "share",
        EventError {
            path: "detail.ImageId".into(),
            problem: "missing".into(),
        },
    );
    assert_eq!(unreadable.error_type(), "NotRetryable.UnreadableEvent");
    assert_eq!(unreadable.kind(), RequestErrorKind::BadRequest);
    assert!(unreadable
        .source()
        .is_some_and(|s| s.to_string().contains("detail.ImageId")));
    assert_eq!(
        RequestError::invalid("cleanup", "x").error_type(),
        "NotRetryable.BadRequest"
    );
    let later = RequestError::retryable("create-image", "the queue is unavailable");
    assert!(later.is_retryable());
    assert_eq!(later.error_type(), "Retryable.Unavailable");
    assert!(
        later
            .to_string()
            .starts_with("create-image: the queue is unavailable; nothing was done (retryable)"),
        "{later}"
    );
}

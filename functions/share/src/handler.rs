//! One invocation: parse the event, run share, finish (log + publish) the report.

use ami_core::context::Context;
use ami_core::events::{parse_trigger, EventError, Trigger};
use ami_core::model::{ImageId, Region};
use ami_core::share::{run, ShareRequest};
use lambda_runtime::Diagnostic;
use serde_json::Value;
use time::OffsetDateTime;

/// Why an invocation did nothing. Every variant is final: retrying the same event cannot help.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("{0}; the event was not acted on (not retryable: fix the sender or the rule)")]
    MalformedEvent(#[from] EventError),
    #[error("{0}; the request was not acted on (not retryable). Send {{}} to reconcile everything or {{\"image\": \"ami-…\", \"region\": \"us-east-1\"}} for one image")]
    BadRequest(String),
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match e {
            HandlerError::MalformedEvent(_) => "MalformedEvent.NotRetryable",
            HandlerError::BadRequest(_) => "BadRequest.NotRetryable",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// What a trigger asks of share.
pub fn request_of(trigger: Trigger) -> Result<ShareRequest, HandlerError> {
    match trigger {
        // The reconcile rule (`<deployment>-share-reconcile`); any schedule means "reconcile".
        Trigger::Schedule { .. } => Ok(ShareRequest::Reconcile),
        Trigger::ImageTags {
            image,
            region,
            changed_keys,
            ..
        } => Ok(ShareRequest::TagChange {
            image,
            region,
            changed_keys,
        }),
        Trigger::AmiState { image, region, .. } => Ok(ShareRequest::Image {
            image,
            region: Some(region),
        }),
        Trigger::Direct(v) => direct(&v),
    }
}

fn direct(v: &Value) -> Result<ShareRequest, HandlerError> {
    let obj = v.as_object().ok_or_else(|| {
        HandlerError::BadRequest("a direct invocation must be a JSON object".to_owned())
    })?;
    if let Some(unknown) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "image" | "region"))
    {
        return Err(HandlerError::BadRequest(format!("unknown key {unknown:?}")));
    }
    let text = |k: &str| match obj.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(HandlerError::BadRequest(format!("{k:?} must be a string"))),
    };
    let region = match text("region")? {
        Some(r) if ami_core::tags::is_region_name(&r) => Some(Region::new(r)),
        Some(r) => {
            return Err(HandlerError::BadRequest(format!(
                "region {r:?} is not a region name"
            )))
        }
        None => None,
    };
    match text("image")? {
        Some(id)
            if id
                .strip_prefix("ami-")
                .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit())) =>
        {
            Ok(ShareRequest::Image {
                image: ImageId::new(id),
                region,
            })
        }
        Some(id) => Err(HandlerError::BadRequest(format!(
            "image {id:?} is not an image id"
        ))),
        None if region.is_some() => Err(HandlerError::BadRequest(
            "region given without image".to_owned(),
        )),
        None => Ok(ShareRequest::Reconcile),
    }
}

/// Handles one event; returns the report's event detail.
pub async fn handle(
    ctx: &Context,
    payload: Value,
    now: OffsetDateTime,
) -> Result<Value, HandlerError> {
    let request = request_of(parse_trigger(&payload)?)?;
    tracing::info!(request = ?request, "share");
    let report = run(ctx, request, now).await;
    let report = ctx.finish(report).await;
    Ok(report.event_detail())
}

#[cfg(test)]
mod tests;

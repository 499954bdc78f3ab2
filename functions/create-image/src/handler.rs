//! The create-image handler: event → [`CreateRequest`] → [`ami_core::create::run`] → report.
//!
//! Accepted payloads: a `Scheduled Event` (the rule name says which schedule; the event's
//! time, truncated to the minute, is the slot), an `EC2 AMI State Change` (`failed` images
//! are reported and cleaned up), an SQS batch of continuation messages
//! (`Records[].body` = `{"continue": {"schedule", "slot"}}`), and a direct invocation
//! `{"schedule": "daily", "slot": "2026-11-22T03:00:00Z"}` (slot optional).

use std::fmt;

use ami_core::context::Context;
use ami_core::create::{self, request_from_direct, CreateRequest, ScheduleRun};
use ami_core::events::{parse_trigger, schedule_of_rule, Trigger};
use ami_core::model::ImageState;
use ami_core::report::{Outcome, RunReport};
use ami_core::time_util::slot_of;
use serde_json::Value;
use time::OffsetDateTime;

/// An event create-image cannot act on. Retrying the same event will not help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerError {
    /// The payload is not readable (bad JSON shape, bad field).
    MalformedEvent(String),
    /// A readable event that is not for create-image.
    UnexpectedEvent(String),
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedEvent(m) => {
                write!(f, "malformed event (not retryable, nothing changed): {m}")
            }
            Self::UnexpectedEvent(m) => write!(
                f,
                "unexpected event for create-image (not retryable, nothing changed): {m}"
            ),
        }
    }
}

impl std::error::Error for HandlerError {}

impl HandlerError {
    /// The Lambda error: the type says it is not worth retrying.
    pub fn into_diagnostic(self) -> lambda_runtime::Diagnostic {
        let error_type = match self {
            Self::MalformedEvent(_) => "MalformedEvent.NotRetryable",
            Self::UnexpectedEvent(_) => "UnexpectedEvent.NotRetryable",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: self.to_string(),
        }
    }
}

/// What one payload asks for: requests to run, or reports already decided (bad rule,
/// a state change create-image does not act on).
enum Work {
    Run(CreateRequest),
    Report(RunReport),
}

fn one_item_report(
    ctx: &Context,
    now: OffsetDateTime,
    subject: String,
    outcome: Outcome,
    reason: String,
) -> RunReport {
    let mut report = RunReport::new(create::run::FUNCTION, ctx.dry_run(), now);
    let home = ctx
        .config
        .regions
        .first()
        .cloned()
        .unwrap_or_else(|| "us-east-1".into());
    report.push(&home, subject, None, outcome, reason);
    report
}

fn work_of(ctx: &Context, payload: &Value, now: OffsetDateTime) -> Result<Vec<Work>, HandlerError> {
    // An SQS batch (the continuation queue): one request per record.
    if let Some(records) = payload.get("Records") {
        let records = records.as_array().ok_or_else(|| {
            HandlerError::MalformedEvent("Records must be an array of SQS messages".to_owned())
        })?;
        let mut out = Vec::new();
        for (n, record) in records.iter().enumerate() {
            let body = record.get("body").and_then(Value::as_str).ok_or_else(|| {
                HandlerError::MalformedEvent(format!(
                    "Records[{n}].body is missing or not a string"
                ))
            })?;
            let v: Value = serde_json::from_str(body).map_err(|e| {
                HandlerError::MalformedEvent(format!("Records[{n}].body is not JSON: {e}"))
            })?;
            let request = request_from_direct(&v, now)
                .map_err(|e| HandlerError::MalformedEvent(format!("Records[{n}].body: {e}")))?;
            out.push(Work::Run(request));
        }
        return Ok(out);
    }
    let trigger =
        parse_trigger(payload).map_err(|e| HandlerError::MalformedEvent(e.to_string()))?;
    let work = match trigger {
        Trigger::Schedule { rule, time, .. } => match schedule_of_rule(&rule, &ctx.config.deployment) {
            Some(schedule) => Work::Run(CreateRequest::Schedule(ScheduleRun::new(schedule, slot_of(time)))),
            None => Work::Report(one_item_report(
                ctx,
                now,
                format!("rule {rule}"),
                Outcome::Failed,
                format!(
                    "rule {rule:?} does not name a schedule of deployment {d:?}: name create-image rules {d}-schedule-NAME with NAME in SCHEDULES={s}; nothing was imaged",
                    d = ctx.config.deployment,
                    s = ctx.config.schedules.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
                ),
            )),
        },
        Trigger::AmiState { image, state: ImageState::Failed, region, error, .. } => Work::Run(CreateRequest::ImageFailed { region, image, error }),
        Trigger::AmiState { image, state, region, .. } => {
            let mut report = RunReport::new(create::run::FUNCTION, ctx.dry_run(), now);
            report.push(&region, image.as_str(), Some(&image), Outcome::Skipped, format!("state {}: create-image acts on failed images only", state.as_str()));
            Work::Report(report)
        }
        Trigger::ImageTags { image, .. } => {
            return Err(HandlerError::UnexpectedEvent(format!("a tag change on {image} is for share, not create-image")));
        }
        Trigger::Direct(v) => Work::Run(request_from_direct(&v, now).map_err(|e| HandlerError::MalformedEvent(e.to_string()))?),
    };
    Ok(vec![work])
}

/// Handles one invocation; the returned value is the report's event detail.
pub async fn handle(
    ctx: &Context,
    payload: Value,
    now: OffsetDateTime,
) -> Result<Value, HandlerError> {
    let work = work_of(ctx, &payload, now)?;
    let mut report: Option<RunReport> = None;
    for w in work {
        let r = match w {
            Work::Run(request) => create::run(ctx, request, now).await,
            Work::Report(r) => r,
        };
        match report.as_mut() {
            Some(all) => all.merge(r),
            None => report = Some(r),
        }
    }
    let report =
        report.unwrap_or_else(|| RunReport::new(create::run::FUNCTION, ctx.dry_run(), now));
    let report = ctx.finish(report).await;
    Ok(report.event_detail())
}

#[cfg(test)]
mod tests;

//! The runner contract: one way in for every caller — the Lambda shell, `amictl`, the
//! simulator and the tests — so an event means the same thing everywhere.
//!
//! - [`Runner`]: what each of the four runners provides — its [`Runner::NAME`], its request
//!   type read from a [`Trigger`] ([`Runner::request`], the one place where an event becomes
//!   a request) and [`Runner::run`], which applies it and returns the [`RunReport`].
//!   The implementations: [`CreateImage`], [`Replicate`], [`Cleanup`], [`Share`], [`Publish`].
//! - [`handle`] (one runner, by type) and [`invoke`] (by name, [`RUNNERS`]): parse the
//!   payload ([`parse_trigger`]), read the request, run it, finish the report (log and
//!   publish) and return its event detail — what the Lambda function returns.
//! - [`RequestError`]: the one error an invocation can end in. A payload that cannot be read
//!   or is not for this runner is [`RequestErrorKind::BadRequest`]: nothing was done, and
//!   the same payload would fail again. Everything that goes wrong while running is an item
//!   of the report instead (per-item outcomes), so no run ends in an error.
//!
//! ```
//! use std::sync::Arc;
//! use ami_core::config::Config;
//! use ami_core::context::Context;
//! use ami_core::fake::FakeCloud;
//! use ami_core::runner::invoke;
//! use time::macros::datetime;
//!
//! let ctx = Context::new(Arc::new(FakeCloud::new("123456789012")), Config::for_region("us-east-1"));
//! let now = datetime!(2026-11-22 05:30 UTC);
//! let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! let detail = rt.block_on(invoke("cleanup", &ctx, serde_json::json!({}), now))?;
//! assert_eq!(detail["function"], "cleanup");
//! let refused = rt.block_on(invoke("cleanup", &ctx, serde_json::json!({"force": true}), now));
//! assert_eq!(refused.err().map(|e| e.error_type()).as_deref(), Some("NotRetryable.BadRequest"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::future::Future;

use serde_json::Value;
use time::OffsetDateTime;

use crate::config::Config;
use crate::context::Context;
use crate::events::{parse_trigger, EventError, Trigger};
use crate::model::Region;
use crate::report::RunReport;

pub mod accounts;
pub use self::accounts::Scope;
pub use crate::cleanup::Cleanup;
pub use crate::create::CreateImage;
pub use crate::publish::Publish;
pub use crate::replicate::Replicate;
pub use crate::share::Share;

/// The runners [`invoke`] knows, by the name of their Lambda function.
pub const RUNNERS: [&str; 5] = [
    CreateImage::NAME,
    Replicate::NAME,
    Cleanup::NAME,
    Share::NAME,
    Publish::NAME,
];

/// One runner: how a trigger becomes its request, and how the request is applied.
pub trait Runner {
    /// The function's name: in reports, in [`RUNNERS`], in error messages.
    const NAME: &'static str;
    /// What one invocation asks of this runner.
    type Request: std::fmt::Debug + Clone;

    /// Reads the request a trigger stands for. An event that is not for this runner, or a
    /// direct payload with a bad field, is a [`RequestErrorKind::BadRequest`] that names
    /// the value and what is accepted; nothing has been done.
    fn request(
        trigger: Trigger,
        config: &Config,
        now: OffsetDateTime,
    ) -> Result<Self::Request, RequestError>;

    /// Applies a request and returns its report (not yet finished: [`handle`] logs and
    /// publishes it). Failures are items of the report, never an error.
    fn run(
        ctx: &Context,
        request: Self::Request,
        now: OffsetDateTime,
    ) -> impl Future<Output = RunReport>;

    /// How `request` fans out when a work queue is configured (issue 18,
    /// [`crate::fanout`]); `None`: it runs as one (events, one image, continuations, and
    /// every run of a runner that never fans out).
    fn split(_request: &Self::Request, _config: &Config) -> Option<Split> {
        None
    }

    /// `request` as one work item runs it: narrowed to `region` (`None` for
    /// [`Split::PerAccount`]), in the request or in the item's own copy of the config.
    fn narrow(
        request: Self::Request,
        _config: &mut Config,
        _region: Option<&Region>,
    ) -> Self::Request {
        request
    }
}

/// How a scheduled or direct run splits into work items, one per account and …
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    /// … region: the regions of the run (each region's decisions are its own).
    PerRegion(Vec<Region>),
    /// … nothing more: the decisions span the account's regions (create-image's reboot
    /// groups and waves may cross regions).
    PerAccount,
}

/// One invocation of runner `R`: parse, read the request, run, finish the report; returns
/// the report. Nothing is called when the payload is refused.
pub async fn handle_report<R: Runner>(
    ctx: &Context,
    payload: Value,
    now: OffsetDateTime,
) -> Result<RunReport, RequestError> {
    let trigger = parse_trigger(&payload).map_err(|e| RequestError::unreadable(R::NAME, e))?;
    if let Trigger::WorkItems(batch) = trigger {
        let report = crate::fanout::consume::<R>(ctx, batch, now).await?;
        return Ok(ctx.finish(report).await);
    }
    let scope = match &trigger {
        Trigger::AmiState { .. } | Trigger::ImageTags { .. } => Scope::of_event(&payload),
        _ => Scope::Selected,
    };
    let run_id = crate::fanout::run_id(R::NAME, &trigger, now);
    let request = R::request(trigger, &ctx.config, now)?;
    if scope == Scope::Selected && crate::fanout::enabled(&ctx.config) {
        if let Some(split) = R::split(&request, &ctx.config) {
            let report = crate::fanout::fan_out::<R>(ctx, &run_id, &payload, &split, now).await;
            return Ok(ctx.finish(report).await);
        }
    }
    Ok(run_request_in::<R>(ctx, request, now, scope).await)
}

/// Runs a request already read (from a payload by [`handle_report`], or from command-line
/// flags by `amictl`) and finishes its report: the one path from a request to a published
/// report, whatever the entry point.
///
/// With `AMI_LIFECYCLE_ACCOUNTS` set, the request runs in every selected account
/// ([`accounts::run_in_accounts`]) and the merged report is finished once; unset, it runs
/// in this account exactly as it always did.
pub async fn run_request<R: Runner>(
    ctx: &Context,
    request: R::Request,
    now: OffsetDateTime,
) -> RunReport {
    run_request_in::<R>(ctx, request, now, Scope::Selected).await
}

async fn run_request_in<R: Runner>(
    ctx: &Context,
    request: R::Request,
    now: OffsetDateTime,
    scope: Scope,
) -> RunReport {
    tracing::info!(request = ?request, runner = R::NAME, "request");
    let report = if ctx.config.accounts.is_empty() {
        R::run(ctx, request, now).await
    } else {
        accounts::run_in_accounts::<R>(ctx, request, now, scope).await
    };
    ctx.finish(report).await
}

/// One invocation of runner `R`; returns the report's event detail (what Lambda returns).
pub async fn handle<R: Runner>(
    ctx: &Context,
    payload: Value,
    now: OffsetDateTime,
) -> Result<Value, RequestError> {
    Ok(handle_report::<R>(ctx, payload, now).await?.event_detail())
}

/// [`handle_report`] for the runner named `name` (one of [`RUNNERS`]).
pub async fn invoke_report(
    name: &str,
    ctx: &Context,
    payload: Value,
    now: OffsetDateTime,
) -> Result<RunReport, RequestError> {
    match name {
        CreateImage::NAME => handle_report::<CreateImage>(ctx, payload, now).await,
        Replicate::NAME => handle_report::<Replicate>(ctx, payload, now).await,
        Cleanup::NAME => handle_report::<Cleanup>(ctx, payload, now).await,
        Share::NAME => handle_report::<Share>(ctx, payload, now).await,
        Publish::NAME => handle_report::<Publish>(ctx, payload, now).await,
        other => Err(RequestError::unknown_runner(other)),
    }
}

/// One invocation of the runner named `name` (one of [`RUNNERS`]); returns the report's
/// event detail, exactly what the Lambda function returns for `payload`.
pub async fn invoke(
    name: &str,
    ctx: &Context,
    payload: Value,
    now: OffsetDateTime,
) -> Result<Value, RequestError> {
    Ok(invoke_report(name, ctx, payload, now).await?.event_detail())
}

/// Whether sending the same invocation again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestErrorKind {
    /// The payload is wrong: the same payload fails again. Fix the sender, the rule or the
    /// request.
    BadRequest,
    /// A transient failure: the same payload may succeed later.
    Retryable,
}

/// Why an invocation was refused.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// The payload is not a readable event (bad JSON shape, bad field).
    #[error(transparent)]
    UnreadableEvent(#[from] EventError),
    /// A readable event that this runner does not act on.
    #[error("{0}")]
    UnexpectedEvent(String),
    /// A direct invocation (or continuation) with a missing, unknown or invalid field.
    #[error("{0}")]
    BadRequest(String),
    /// [`invoke`] was given a name that is not one of [`RUNNERS`].
    #[error("no runner is named {0:?}; runners: create-image, replicate, cleanup, share")]
    UnknownRunner(String),
    /// A failure outside the request that a later invocation may not meet.
    #[error("{0}")]
    Unavailable(String),
}

impl Cause {
    /// The last part of [`RequestError::error_type`].
    fn name(&self) -> &'static str {
        match self {
            Self::UnreadableEvent(_) => "UnreadableEvent",
            Self::UnexpectedEvent(_) => "UnexpectedEvent",
            Self::BadRequest(_) => "BadRequest",
            Self::UnknownRunner(_) => "UnknownRunner",
            Self::Unavailable(_) => "Unavailable",
        }
    }
}

/// The one error of an invocation: which runner refused, whether retrying can help, and why.
#[derive(Debug, thiserror::Error)]
#[error("{runner}: {cause}; nothing was done ({})", self.retry_hint())]
pub struct RequestError {
    runner: String,
    kind: RequestErrorKind,
    #[source]
    cause: Cause,
}

impl RequestError {
    /// A refusal of `runner` for `cause`; nothing was done.
    pub fn bad_request(runner: &str, cause: Cause) -> Self {
        Self {
            runner: runner.to_owned(),
            kind: RequestErrorKind::BadRequest,
            cause,
        }
    }

    /// A payload that is not a readable event.
    pub fn unreadable(runner: &str, e: EventError) -> Self {
        Self::bad_request(runner, Cause::UnreadableEvent(e))
    }

    /// A readable event this runner does not act on; `why` says which runner does.
    pub fn unexpected(runner: &str, why: impl Into<String>) -> Self {
        Self::bad_request(runner, Cause::UnexpectedEvent(why.into()))
    }

    /// A direct payload with a bad field; `why` names the field, the value and what is
    /// accepted.
    pub fn invalid(runner: &str, why: impl Into<String>) -> Self {
        Self::bad_request(runner, Cause::BadRequest(why.into()))
    }

    fn unknown_runner(name: &str) -> Self {
        let shown = crate::tags::truncate(name, 80).to_owned();
        Self::bad_request(&shown.clone(), Cause::UnknownRunner(shown))
    }

    /// A transient failure: the same payload may succeed later.
    pub fn retryable(runner: &str, why: impl Into<String>) -> Self {
        Self {
            runner: runner.to_owned(),
            kind: RequestErrorKind::Retryable,
            cause: Cause::Unavailable(why.into()),
        }
    }

    pub fn runner(&self) -> &str {
        &self.runner
    }

    pub fn kind(&self) -> RequestErrorKind {
        self.kind
    }

    pub fn cause(&self) -> &Cause {
        &self.cause
    }

    pub fn is_retryable(&self) -> bool {
        self.kind == RequestErrorKind::Retryable
    }

    /// The stable error type the Lambda diagnostic carries: `NotRetryable.<Cause>` or
    /// `Retryable.<Cause>`, e.g. `NotRetryable.UnreadableEvent` — one scheme for every
    /// runner, so alarms and a dead-letter queue's consumer can match on the prefix.
    pub fn error_type(&self) -> String {
        let retry = match self.kind {
            RequestErrorKind::BadRequest => "NotRetryable",
            RequestErrorKind::Retryable => "Retryable",
        };
        format!("{retry}.{}", self.cause.name())
    }

    fn retry_hint(&self) -> &'static str {
        match self.kind {
            RequestErrorKind::BadRequest => {
                "not retryable: fix the sender, the rule or the request"
            }
            RequestErrorKind::Retryable => "retryable",
        }
    }
}

#[cfg(test)]
mod tests;

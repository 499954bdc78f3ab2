//! [`dispatch`]: the one place the simulator hands an event to a function, as Lambda
//! would: the demo's bus and the lifecycle driver both call it, so they cannot drift.
//! It goes through the runner contract the Lambda shell uses ([`ami_core::runner::invoke`]).

use ami_core::context::Context;
use serde_json::Value;
use time::OffsetDateTime;

/// Invokes function `name` (one of [`ami_core::runner::RUNNERS`], the template's binary
/// names) with `payload` at `now`; returns what the Lambda returns, or its
/// error as the Lambda reports it. An unknown name is an error, never a silent no-op.
pub async fn dispatch(
    name: &str,
    ctx: &Context,
    payload: Value,
    now: OffsetDateTime,
) -> Result<Value, String> {
    ami_core::runner::invoke(name, ctx, payload, now)
        .await
        .map_err(|e| e.to_string())
}

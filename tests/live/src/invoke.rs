//! [`invoke_function`]: the one place the live test enters the suite, exactly as Lambda
//! would (a function name, a JSON payload, the clock), so the live run exercises the same
//! code the emulator tests and the deployed functions run.

use ami_core::context::Context;
use serde_json::Value;
use time::OffsetDateTime;

/// Invokes the function `name` with `payload`; returns the report's event detail, or the
/// function's error message.
pub async fn invoke_function(name: &str, ctx: &Context, payload: Value) -> Result<Value, String> {
    ami_core::runner::invoke(name, ctx, payload, OffsetDateTime::now_utc())
        .await
        .map_err(|e| e.to_string())
}

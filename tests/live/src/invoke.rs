//! [`invoke_function`]: the one place the live test enters the suite, exactly as Lambda
//! would (a function name, a JSON payload, the clock), so the live run exercises the same
//! code the emulator tests and the deployed functions run.

use ami_core::context::Context;
use serde_json::Value;
use time::OffsetDateTime;

/// Invokes the function `name` with `payload`; returns the report's event detail, or the
/// function's error message.
pub async fn invoke_function(name: &str, ctx: &Context, payload: Value) -> Result<Value, String> {
    let now = OffsetDateTime::now_utc();
    match name {
        "create-image" => create_image::handler::handle(ctx, payload, now)
            .await
            .map_err(|e| e.to_string()),
        "replicate" => replicate::handler::handle(ctx, payload, now)
            .await
            .map_err(|e| e.to_string()),
        "cleanup" => cleanup::handler::handle(ctx, payload, now)
            .await
            .map_err(|e| e.to_string()),
        "share" => share::handler::handle(ctx, payload, now)
            .await
            .map_err(|e| e.to_string()),
        other => Err(format!("no function named {other:?}")),
    }
}

//! [`dispatch`]: the one place the simulator hands an event to a function, as Lambda
//! would: the demo's bus and the lifecycle driver both call it, so they cannot drift.

use ami_core::context::Context;
use serde_json::Value;
use time::OffsetDateTime;

/// The functions, by binary name (the template's `BuildProperties.Binary`).
pub const FUNCTIONS: [&str; 4] = ["create-image", "replicate", "cleanup", "share"];

/// Invokes function `name` with `payload` at `now`; returns what the Lambda returns, or its
/// error as the Lambda reports it. An unknown name is an error, never a silent no-op.
pub async fn dispatch(
    name: &str,
    ctx: &Context,
    payload: Value,
    now: OffsetDateTime,
) -> Result<Value, String> {
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
        other => Err(format!(
            "no function {other:?} (the functions are {})",
            FUNCTIONS.join(", ")
        )),
    }
}

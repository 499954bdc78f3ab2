//! The create-image Lambda function: scheduled, consistent AMIs (see `ami_core::create`).

use std::time::{Duration, SystemTime};

use ami_core::deadline::Deadline;
use create_image::handler::{handle, HandlerError};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use time::OffsetDateTime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ami_core::bootstrap::init_json_logging();
    let ctx = match ami_core::bootstrap::context_from_env().await {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("create-image: {e}");
            std::process::exit(1);
        }
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let remaining = event
            .context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        let ctx = ctx
            .clone()
            .with_deadline(Deadline::after(remaining, Duration::from_secs(10)));
        async move {
            handle(&ctx, event.payload, OffsetDateTime::now_utc())
                .await
                .map_err(HandlerError::into_diagnostic)
        }
    }))
    .await
}

use std::time::{Duration, Instant, SystemTime};

use ami_core::deadline::Deadline;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ami_core::bootstrap::init_json_logging();
    let ctx = match ami_core::bootstrap::context_from_env().await {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("replicate: {e}");
            std::process::exit(1);
        }
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let remaining = event
            .context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let ctx = ctx.clone().with_deadline(Deadline::at(
            Instant::now() + remaining,
            Duration::from_secs(10),
        ));
        async move {
            replicate::handler::handle(&ctx, event.payload, time::OffsetDateTime::now_utc())
                .await
                .map_err(Diagnostic::from)
        }
    }))
    .await
}

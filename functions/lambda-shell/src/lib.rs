//! lambda-shell: the start-up every ami-lifecycle function shares, so each `main.rs` only
//! names its handler.
//!
//! [`serve`] sets up JSON logs, reads and validates the configuration (a bad setting ends
//! start-up with its message, before any event is taken), builds the AWS clients, and
//! runs the Lambda loop, giving each invocation a [`Deadline`] ten seconds before
//! Lambda's own so a run stops cleanly and the next one continues.

use std::future::Future;
use std::time::{Duration, SystemTime};

use ami_core::context::Context;
use ami_core::deadline::Deadline;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use time::OffsetDateTime;

/// Time kept back from Lambda's deadline for finishing the report.
const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// Runs `handler` for every invocation of the function `name`.
pub async fn serve<F, Fut>(name: &str, handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Context, Value, OffsetDateTime) -> Fut,
    Fut: Future<Output = Result<Value, Diagnostic>>,
{
    ami_core::bootstrap::init_json_logging();
    let ctx = match ami_core::bootstrap::context_from_env().await {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("{name}: {e}");
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
            .with_deadline(Deadline::after(remaining, DEADLINE_MARGIN));
        handler(ctx, event.payload, OffsetDateTime::now_utc())
    }))
    .await
}

//! lambda-shell: everything the four ami-lifecycle functions share that is about Lambda,
//! so each `main.rs` only names its runner and `ami-core` knows nothing of the runtime.
//!
//! [`serve`] sets up JSON logs, reads and validates the configuration (a bad setting ends
//! start-up with its message, before any event is taken), builds the AWS clients, and
//! runs the Lambda loop: each invocation goes through [`ami_core::runner::handle`] with a
//! [`Deadline`] ten seconds before Lambda's own, so a run stops cleanly and the next one
//! continues. A refused invocation becomes a Lambda error through [`diagnostic`].
//! [`startup::StartupTrace`] times the start-up's phases for the bench
//! (`AMI_LIFECYCLE_STARTUP_TRACE=1`).
//!
//! ```no_run
//! fn main() -> Result<(), lambda_shell::Error> {
//!     lambda_shell::serve::<ami_core::runner::Cleanup>()
//! }
//! ```

mod bootstrap;
pub mod startup;

use std::time::{Duration, SystemTime};

use ami_core::deadline::Deadline;
use ami_core::runner::{self, RequestError, Runner};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use startup::StartupTrace;
use time::OffsetDateTime;

pub use lambda_runtime::Error;

/// Time kept back from Lambda's deadline for finishing the report.
const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// Runs runner `R` for every invocation of this function, on a multi-threaded runtime.
pub fn serve<R: Runner>() -> Result<(), Error> {
    let mut trace = StartupTrace::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    trace.mark("runtime");
    runtime.block_on(serve_async::<R>(trace))
}

async fn serve_async<R: Runner>(mut trace: StartupTrace) -> Result<(), Error> {
    bootstrap::init_json_logging();
    trace.mark("logging");
    let ctx = match bootstrap::context_from_env(&mut trace).await {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("{}: {e}", R::NAME);
            std::process::exit(1);
        }
    };
    trace.finish();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let remaining = event
            .context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        let ctx = ctx
            .clone()
            .with_deadline(Deadline::after(remaining, DEADLINE_MARGIN));
        async move {
            runner::handle::<R>(&ctx, event.payload, OffsetDateTime::now_utc())
                .await
                .map_err(|e| diagnostic(&e))
        }
    }))
    .await
}

/// The Lambda error for a refused invocation: its type says whether retrying can help
/// (`NotRetryable.…` or `Retryable.…`, [`RequestError::error_type`]), its message names the
/// function, the value and the fix.
pub fn diagnostic(e: &RequestError) -> Diagnostic {
    Diagnostic {
        error_type: e.error_type(),
        error_message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_maps_to_a_diagnostic_that_says_whether_to_retry() {
        let refused = diagnostic(&RequestError::invalid(
            "share",
            "image \"snap-1\" is not an image id",
        ));
        assert_eq!(refused.error_type, "NotRetryable.BadRequest");
        assert!(
            refused.error_message.starts_with("share: image \"snap-1\"")
                && refused.error_message.contains("not retryable"),
            "{}",
            refused.error_message
        );
        let later = diagnostic(&RequestError::retryable("cleanup", "throttled"));
        assert_eq!(later.error_type, "Retryable.Unavailable");
    }
}

//! Start-up: JSON logs, config, AWS clients.
//!
//! [`crate::serve`] calls [`init_json_logging`] and [`context_from_env`]; a bad setting
//! stops start-up with the [`ConfigError`] message (variable, value, what is accepted)
//! before any event is taken. Each step is a phase of the [`StartupTrace`].

use std::sync::Arc;

use ami_core::aws::AwsCloud;
use ami_core::config::{Config, ConfigError};
use ami_core::context::Context;

use crate::startup::StartupTrace;

/// One JSON object per log line (what CloudWatch Logs' JSON log format expects), and each
/// run's CloudWatch metrics as embedded-metric-format lines of their own on stdout
/// ([`ami_core::report::emf`]: the `tracing` lines nest their fields, EMF needs `_aws` at
/// the root).
pub fn init_json_logging() {
    ami_core::report::emf::to_stdout();
    let filter = tracing_subscriber::EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        .without_time()
        .try_init();
}

/// Reads and validates the configuration, loads the SDK's configuration chain, then builds
/// the AWS clients; each step is a phase of `trace`. No AWS request is made here: the
/// credentials resolve, and TLS is set up, at the first request
/// ([`ami_core::aws::http::DeferredTlsClient`]).
pub async fn context_from_env(trace: &mut StartupTrace) -> Result<Context, ConfigError> {
    let config = Config::from_env()?;
    trace.mark("config");
    let sdk = AwsCloud::sdk_from_env().await;
    trace.mark("sdk_config");
    let cloud = AwsCloud::from_sdk_env(sdk, &config);
    let ctx = Context::new(Arc::new(cloud), config);
    trace.mark("clients");
    Ok(ctx)
}

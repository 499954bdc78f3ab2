//! The cleanup Lambda function: retention of managed AMIs (see `ami_core::cleanup`).

use cleanup::handler::{handle, HandlerError};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_shell::serve("cleanup", |ctx, payload, now| async move {
        handle(&ctx, payload, now)
            .await
            .map_err(HandlerError::into_diagnostic)
    })
    .await
}

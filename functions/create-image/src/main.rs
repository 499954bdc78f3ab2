//! The create-image Lambda function: scheduled, consistent AMIs (see `ami_core::create`).

use create_image::handler::{handle, HandlerError};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_shell::serve("create-image", |ctx, payload, now| async move {
        handle(&ctx, payload, now)
            .await
            .map_err(HandlerError::into_diagnostic)
    })
    .await
}

//! The share Lambda function: share-on-tag with KMS and an allow-list (see `ami_core::share`).

use lambda_runtime::Diagnostic;
use share::handler::handle;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_shell::serve("share", |ctx, payload, now| async move {
        handle(&ctx, payload, now).await.map_err(Diagnostic::from)
    })
    .await
}

//! The replicate Lambda function: cross-region copies of managed AMIs (see `ami_core::replicate`).

use lambda_runtime::Diagnostic;
use replicate::handler::handle;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_shell::serve("replicate", |ctx, payload, now| async move {
        handle(&ctx, payload, now).await.map_err(Diagnostic::from)
    })
    .await
}

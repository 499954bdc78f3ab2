//! `amictl`: the operator's command line over the same core code the Lambda functions run.
mod app;
mod commands;
mod output;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    app::main().await
}

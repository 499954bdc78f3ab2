//! `live-test`: the suite's lifecycle on a real AWS account (opt-in; see `live_test`).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    live_test::app::main(std::env::args().skip(1).collect()).await
}

//! `ami-sim`: the simulator's command line (`ami-sim demo`, what `make demo` runs).
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The lifecycle on the local emulator; never against a real account.
#[derive(Debug, Parser)]
#[command(name = "ami-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Play the whole lifecycle on the local emulator (AWS_ENDPOINT_URL), through the
    /// template's own wiring.
    Demo(ami_sim::demo::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The functions' warnings on stderr, as amictl shows them (AMI_SIM_LOG to change).
    let filter = tracing_subscriber::EnvFilter::try_from_env("AMI_SIM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match &cli.command {
        Command::Demo(args) => ami_sim::demo::run(args).await,
    };
    result.unwrap_or_else(|e| {
        eprintln!("ami-sim: {e:#}");
        ExitCode::from(2)
    })
}
